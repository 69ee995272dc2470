"""The OpenAI-compatible provider against a real server: llama-cpp-python's own, on loopback."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from subprocess import CompletedProcess

import httpx
import pytest

Geri = Callable[..., CompletedProcess[str]]
QUESTION = "The secret word is banana. What is the secret word? Answer in one sentence."


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def llama_server(smollm_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    log = tmp_path_factory.mktemp("llama-server") / "server.log"
    # the server logs a lot while loading: a file, not a pipe nobody drains
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "llama_cpp.server",
            "--model",
            str(smollm_path),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--n_ctx",
            "2048",
        ],
        stdout=subprocess.DEVNULL,
        stderr=log.open("wb"),
    )
    base = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"llama_cpp.server exited: {log.read_text()[-2000:]}")
        try:
            if httpx.get(f"{base}/models", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.2)
    else:
        proc.kill()
        pytest.fail("llama_cpp.server did not start within 120 s")
    yield base
    proc.terminate()
    proc.wait(30)


@pytest.fixture
def geri(geri_cli: Geri, geri_home: Path, llama_server: str) -> Geri:
    settings = geri_home / "config" / "settings.json"
    settings.parent.mkdir(parents=True)
    model = {
        "kind": "cloud",
        "id": "lan-smol",
        "provider": "openai_compatible",
        "model": "smollm2",
        "base_url": llama_server,
        "context_window": 2048,
    }
    settings.write_text(json.dumps({"models": [model], "default_model": "lan-smol"}))
    return geri_cli


def test_answers_through_a_real_openai_compatible_server(geri: Geri) -> None:
    proc = geri(
        "ask", QUESTION, "--json", "--temperature", "0", "--max-tokens", "32", "--no-stream"
    )
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert "banana" in data["text"].lower()
    assert data["model"] == "lan-smol"
    assert data["provider"] == "openai_compatible"
    assert data["usage"]["input_tokens"] > 10
    assert data["usage"]["estimated"] is False  # the server reported it


def test_streams_through_a_real_openai_compatible_server(geri: Geri) -> None:
    streamed = geri("ask", QUESTION, "--temperature", "0", "--max-tokens", "32")
    whole = geri("ask", QUESTION, "--temperature", "0", "--max-tokens", "32", "--no-stream")
    assert streamed.returncode == 0, streamed.stderr
    assert "banana" in streamed.stdout.lower()
    assert streamed.stdout == whole.stdout
    [entry, _] = json.loads(geri("logs", "--json", "-n", "2").stdout)
    assert entry["status"] == "ok"


def test_a_stream_without_usage_is_counted_by_the_servers_tokenizer(
    geri: Geri, llama_server: str
) -> None:
    """llama_cpp.server streams no usage: geri counts the answer with the server's own
    tokenizer (`/extras/tokenize/count`), and says the figure is its count."""
    proc = geri("ask", QUESTION, "--json", "--temperature", "0", "--max-tokens", "32")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    usage = data["usage"]
    root = llama_server.removesuffix("/v1")
    count = httpx.post(f"{root}/extras/tokenize/count", json={"input": data["text"]}).json()
    assert usage["output_tokens"] == count["count"] > 0
    asked = httpx.post(f"{root}/extras/tokenize/count", json={"input": QUESTION}).json()
    assert usage["input_tokens"] == data["context"]["prompt_tokens"] > asked["count"]
    assert usage["estimated"] is True


def test_discovery_sends_no_window_larger_than_the_server_holds(
    geri_cli: Geri, geri_home: Path, llama_server: str
) -> None:
    """llama_cpp.server states no window (no /props, no max_model_len): geri assumes a small
    one, never more than the server's n_ctx (2048 here)."""
    settings = geri_home / "config" / "settings.json"
    settings.parent.mkdir(parents=True)
    settings.write_text(json.dumps({"peers": [{"name": "box", "url": llama_server}]}))
    assert geri_cli("models", "discover").returncode == 0
    listed = json.loads(geri_cli("models", "list", "--json").stdout)
    [peer] = [m for m in listed if m["location"] == "lan"]
    assert peer["context_window"] <= 2048
