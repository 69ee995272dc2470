"""`geri` as a user runs it: a subprocess, a real GGUF model, a real SQLite file."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from subprocess import CompletedProcess

import pytest

from tests.conftest import REPO, geri_env, telling_a_story

Geri = Callable[..., CompletedProcess[str]]
QUESTION = "The secret word is banana. What is the secret word? Answer in one sentence."


@pytest.fixture
def geri(geri_cli: Geri, smollm_path: Path) -> Geri:
    added = geri_cli("models", "add", str(smollm_path), "--id", "smol")
    assert added.returncode == 0, added.stderr
    return geri_cli


def no_traceback(proc: CompletedProcess[str]) -> None:
    assert "Traceback" not in proc.stderr
    assert "Traceback" not in proc.stdout


def test_answers_a_question_whose_answer_is_in_the_prompt(geri: Geri) -> None:
    proc = geri("ask", QUESTION, "--temperature", "0", "--max-tokens", "32")
    assert proc.returncode == 0, proc.stderr
    assert "banana" in proc.stdout.lower()


def test_streamed_output_equals_no_stream_output_at_temperature_zero(geri: Geri) -> None:
    args = ("ask", "Name three fruits.", "--temperature", "0", "--max-tokens", "40")
    streamed, whole = geri(*args), geri(*args, "--no-stream")
    assert streamed.returncode == whole.returncode == 0
    assert streamed.stdout == whole.stdout
    assert streamed.stdout.strip()


def test_json_carries_text_model_tokens_and_latency(geri: Geri) -> None:
    proc = geri("ask", QUESTION, "--json", "--temperature", "0", "--max-tokens", "32")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert "banana" in data["text"].lower()
    assert data["model"] == "smol"
    assert data["usage"]["input_tokens"] > 10
    assert data["usage"]["output_tokens"] > 0
    assert data["latency_ms"] > 0
    assert 0 < data["ttft_ms"] <= data["latency_ms"]
    assert data["finish_reason"] in {"stop", "length"}


def test_the_request_appears_in_the_logs(geri: Geri) -> None:
    answer = json.loads(geri("ask", QUESTION, "--json", "-t", "0", "--max-tokens", "16").stdout)
    logs = geri("logs", "--json", "-n", "5")
    assert logs.returncode == 0, logs.stderr
    [entry] = json.loads(logs.stdout)
    assert entry["id"] == answer["id"]
    assert entry["model"] == "smol"
    assert entry["prompt"][-1] == {"role": "user", "content": QUESTION}
    assert entry["response"] == answer["text"]
    assert entry["output_tokens"] == answer["usage"]["output_tokens"]
    table = geri("logs")
    assert "smol" in table.stdout
    assert "ok" in table.stdout


@pytest.mark.parametrize(
    ("stop", "status", "said"),
    [
        (signal.SIGINT, 130, "Interrupted"),
        (signal.SIGTERM, 143, "Stopped (SIGTERM)"),
        (signal.SIGHUP, 129, "Stopped (SIGHUP)"),
    ],
    ids=["ctrl-c", "sigterm", "sighup"],
)
def test_a_stopped_answer_ends_at_once_and_logs_what_was_shown(
    geri: Geri, geri_home: Path, stop: signal.Signals, status: int, said: str
) -> None:
    """Ctrl-C, SIGTERM (as `timeout`, CI runners and service managers send it) or SIGHUP (a
    closed terminal) in the middle of an answer: geri stops there, says so without a traceback,
    exits as shells expect (130, 143, 129), and the request log keeps the call, cancelled, with
    its text so far. (Python's default for SIGTERM and SIGHUP would end the process on the
    spot, logging nothing.)"""
    with telling_a_story(geri_home) as (proc, shown):
        proc.send_signal(stop)
        rest, err = proc.communicate(timeout=60)
    printed = (shown + rest).decode()
    assert proc.returncode == status, err
    assert "Traceback" not in err.decode()
    assert said in err.decode()
    [entry] = json.loads(geri("logs", "--json", "-n", "5").stdout)
    assert entry["status"] == "cancelled"
    assert entry["output_tokens"] < 2000  # stopped, not run to the end
    assert entry["response"].startswith(printed.rstrip())


@pytest.mark.parametrize("stdout", ["/dev/full", "closed"])
def test_an_answer_that_cannot_be_written_is_a_clear_error_and_logged(
    geri: Geri, geri_home: Path, stdout: str
) -> None:
    """stdout on a full disk (/dev/full) or closed (`>&-`): a message on stderr saying so, exit
    1, and the call in the request log as cancelled, rather than a traceback."""
    ask = [sys.executable, "-m", "geri", "ask", QUESTION, "-t", "0", "--no-cache"]
    redirect = ">/dev/full" if stdout == "/dev/full" else ">&-"
    done = subprocess.run(
        ["sh", "-c", f'exec "$@" {redirect}', "sh", *ask],
        stdin=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=geri_env(geri_home),
        cwd=REPO,
        timeout=120,
    )
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert "stdout" in done.stderr
    said = "No space left on device" if stdout == "/dev/full" else "stdout is closed"
    assert said in done.stderr
    [entry] = json.loads(geri("logs", "--json", "-n", "5").stdout)
    assert entry["status"] == "cancelled"


def test_piped_text_comes_first_and_the_prompt_after_it(geri: Geri) -> None:
    """`cat notes.txt | geri ask "... the text above ..."`, as the README shows it."""
    proc = geri(
        "ask",
        "What is the secret word in the text above? Answer in one sentence.",
        "--json",
        "-t",
        "0",
        stdin="Note: the secret word is pineapple.\n",
    )
    assert proc.returncode == 0, proc.stderr
    assert "pineapple" in json.loads(proc.stdout)["text"].lower()
    logged = json.loads(geri("logs", "--json").stdout)[0]["prompt"][-1]["content"]
    assert logged.startswith("Note: the secret word is pineapple.")
    assert logged.endswith("What is the secret word in the text above? Answer in one sentence.")


def test_stdin_alone_is_a_prompt(geri: Geri) -> None:
    proc = geri("ask", "--json", "-t", "0", "--max-tokens", "8", stdin="Say hello.")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["text"]


def _truncate(src: Path, dst: Path) -> None:
    dst.write_bytes(src.read_bytes()[: src.stat().st_size // 2])


def _text(src: Path, dst: Path) -> None:
    dst.write_text("just some notes\n")


@pytest.mark.parametrize(
    ("make", "message"),
    [(_truncate, "truncated"), (_text, "not a GGUF model file")],
    ids=["truncated", "text-file"],
)
def test_bad_model_files_give_clear_errors(
    geri_cli: Geri, smollm_path: Path, tmp_path: Path, make: Callable[..., object], message: str
) -> None:
    bad = tmp_path / "bad.gguf"
    make(smollm_path, bad)
    added = geri_cli("models", "add", str(bad))
    assert added.returncode != 0
    assert message in added.stderr
    no_traceback(added)
    # a file that breaks after it was registered fails the same way at ask time
    good = tmp_path / "good.gguf"
    shutil.copyfile(smollm_path, good)
    assert geri_cli("models", "add", str(good), "--id", "later").returncode == 0
    make(smollm_path, good)
    asked = geri_cli("ask", "hi", "--model", "later")
    assert asked.returncode != 0
    assert message in asked.stderr
    no_traceback(asked)
    assert json.loads(geri_cli("logs", "--json").stdout)[0]["status"] == "error"


def test_models_list_add_remove(geri: Geri, smollm_path: Path) -> None:
    listed = json.loads(geri("models", "list", "--json").stdout)
    local = [(m["id"], m["default"]) for m in listed if m["location"] == "local"]
    assert local == [("smol", True)]
    assert {"gpt-4o", "claude-sonnet-4-5", "gemini-2.5-flash"} <= {m["id"] for m in listed}
    again = geri("models", "add", str(smollm_path.parent), "--id", "smol")
    assert again.returncode == 0
    assert "already registered" in again.stdout
    assert geri("models", "remove", "smol").returncode == 0
    missing = geri("models", "remove", "smol")
    assert missing.returncode != 0
    assert "geri models list" in missing.stderr
    no_model = geri("ask", "hi")
    assert no_model.returncode != 0
    assert "geri models add" in no_model.stderr
    no_traceback(no_model)


def test_user_mistakes_exit_non_zero_without_traceback(geri: Geri) -> None:
    for args, message in [
        (("ask",), "Nothing to ask"),
        (("ask", "hi", "--model", "smoll"), "Did you mean 'smol'"),
        (("ask", "hi", "--temperature", "5"), "temperature"),
        (("models", "add", "/nonexistent/x.gguf"), "does not exist"),
    ]:
        proc = geri(*args)
        assert proc.returncode != 0, args
        assert message in proc.stderr, (args, proc.stderr)
        no_traceback(proc)
