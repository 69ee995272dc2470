"""Client mode: with a daemon running, `geri ask` is answered by it (the model stays loaded)."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from geri.errors import Unavailable
from geri.types import Request
from geri.wire import DaemonAddress
from geri.wire.client import DaemonClient
from tests.conftest import run_geri, telling_a_story

QUESTION = "The secret word is banana. What is the secret word? Answer in one sentence."


@pytest.fixture
def daemon(geri_home: Path, smollm_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    settings = geri_home / "config" / "settings.json"  # read by the daemon and the CLI alike
    settings.parent.mkdir(parents=True)
    model = {"kind": "local", "id": "smol", "path": str(smollm_path)}
    settings.write_text(json.dumps({"models": [model]}))
    env = {
        **os.environ,
        "GERI_HOME": str(geri_home),
        "GERI_STORE": str(geri_home / "daemon.db"),  # the daemon logs apart from the CLI
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "geri", "daemon", "--port", "0"],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    state = geri_home / "data" / "daemon.json"
    deadline = time.monotonic() + 60
    while not state.exists():
        assert proc.poll() is None, proc.stderr.read().decode()  # type: ignore[union-attr]
        assert time.monotonic() < deadline, "the daemon did not start"
        time.sleep(0.1)
    yield proc
    if proc.poll() is None:
        proc.kill()
        proc.wait(10)


def logged(db: Path) -> list[str]:
    if not db.exists():
        return []
    return [r[0] for r in sqlite3.connect(db).execute("SELECT response FROM requests")]


def test_ask_goes_through_the_daemon(daemon: subprocess.Popen[bytes], geri_home: Path) -> None:
    proc = run_geri("ask", QUESTION, "-m", "smol", "-t", "0", "--json", home=geri_home)
    assert proc.returncode == 0, proc.stderr
    answer = json.loads(proc.stdout)
    assert "banana" in answer["text"].lower()
    assert logged(geri_home / "daemon.db") == [answer["text"]]  # answered by the daemon
    assert logged(geri_home / "data" / "geri.db") == []
    streamed = run_geri("ask", QUESTION, "-m", "smol", "-t", "0", home=geri_home)
    assert streamed.stdout.strip() == answer["text"]

    local = run_geri("ask", QUESTION, "-m", "smol", "-t", "0", "--no-daemon", home=geri_home)
    assert local.stdout.strip() == answer["text"]  # same answer either way
    assert logged(geri_home / "data" / "geri.db") == [answer["text"]]


def test_status_and_stop(daemon: subprocess.Popen[bytes], geri_home: Path) -> None:
    status = json.loads(run_geri("daemon", "status", "--json", home=geri_home).stdout)
    assert status["running"]
    assert status["health"] == "SERVING"
    assert status["address"].startswith("127.0.0.1:")
    assert status["pid"] == daemon.pid
    stopped = run_geri("daemon", "stop", home=geri_home)
    assert stopped.returncode == 0, stopped.stderr
    assert daemon.wait(30) == 0
    assert not (geri_home / "data" / "daemon.json").exists()
    after = run_geri("daemon", "status", home=geri_home)
    assert after.returncode == 1
    assert "No daemon is running" in after.stdout
    # with no daemon, ask answers in-process again
    assert run_geri("ask", "hi", "-m", "smol", "--max-tokens", "4", home=geri_home).returncode == 0


def test_a_daemon_that_dies_mid_answer_is_a_clear_error(
    daemon: subprocess.Popen[bytes], geri_home: Path
) -> None:
    """The daemon killed while it streams an answer: the text so far stays on stdout, and the
    error says the connection broke and what to do, not the transport's bare words."""
    with telling_a_story(geri_home, "-m", "smol") as (proc, shown):
        daemon.kill()
        _, err = proc.communicate(timeout=60)
    said = err.decode()
    assert proc.returncode == 1, said
    assert "Traceback" not in said
    assert "The connection to the daemon" in said
    assert "--no-daemon" in said
    assert len(shown) == 100  # the answer so far was written before the daemon died


@pytest.mark.parametrize("address", ["127.0.0.1:9", "unix:/nonexistent/geri.sock"])
async def test_a_daemon_that_is_not_there_says_how_to_start_one(address: str) -> None:
    async with DaemonClient(DaemonAddress(address)) as client:
        with pytest.raises(Unavailable, match="does not answer; start it with 'geri daemon'"):
            await client.ask(Request("hi"))
        with pytest.raises(Unavailable, match="does not answer; start it with 'geri daemon'"):
            async for _ in client.stream(Request("hi")):
                pass
