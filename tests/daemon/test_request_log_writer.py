"""The request log's group-commit writer: batched under load, and nothing lost when killed.

A real daemon answers many concurrent calls from a scripted cloud upstream; it is then killed
with SIGKILL (no chance to flush anything) or stopped with SIGTERM or SIGHUP, and the rows in
its SQLite request log are counted against the answers the clients received.
"""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import threading
from pathlib import Path

import httpx
import pytest

from geri.engine.writer import GroupWriter
from tests.daemon.httpd import daemon_process
from tests.mockserver import MockServer, Reply

ANSWER = {
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}}],
    "usage": {"prompt_tokens": 5, "completion_tokens": 1},
}


def settings(cloud: MockServer) -> dict[str, object]:
    return {
        "models": [
            {
                "kind": "cloud",
                "id": "mock",
                "provider": "openai",
                "model": "m",
                "base_url": f"{cloud.url}/v1",
            }
        ],
        "default_model": "mock",
        "cache": {"enabled": False},
        "routing": {"capacity": {"mock": 64}},
        "daemon": {"max_running": 64, "max_queue": 1000},
    }


async def hammer(base: str, until: threading.Event, answered: list[str]) -> None:
    """32 clients asking until `until` is set (or the daemon dies); the trace ids answered."""
    body = {"model": "mock", "messages": [{"role": "user", "content": "hi"}]}

    async def client(n: int) -> None:
        async with httpx.AsyncClient(base_url=base, timeout=30) as http:
            i = 0
            while not until.is_set():
                trace = f"c{n}-{i}"
                i += 1
                try:
                    reply = await http.post(
                        "/chat/completions", json=body, headers={"x-geri-trace-id": trace}
                    )
                except httpx.HTTPError:
                    return  # the daemon is gone
                if reply.status_code == 200:
                    answered.append(trace)

    await asyncio.gather(*(client(n) for n in range(32)))


def logged(home: Path) -> set[str]:
    with sqlite3.connect(home / "data" / "geri.db") as db:
        return {row[0] for row in db.execute("SELECT trace_id FROM requests")}


@pytest.mark.parametrize(
    "how", [signal.SIGKILL, signal.SIGTERM, signal.SIGHUP], ids=["SIGKILL", "SIGTERM", "SIGHUP"]
)
def test_every_answered_call_is_in_the_log_however_the_daemon_ends(
    tmp_path: Path, how: signal.Signals
) -> None:
    with MockServer() as cloud:
        cloud.default = Reply(json=ANSWER)
        env = {"OPENAI_API_KEY": "sk-test-writer-000000000000"}
        with daemon_process(tmp_path, settings(cloud), env) as (base, proc):
            answered: list[str] = []
            stop = threading.Event()
            runner = threading.Thread(target=lambda: asyncio.run(hammer(base, stop, answered)))
            runner.start()
            while len(answered) < 300 and runner.is_alive():
                threading.Event().wait(0.05)
            proc.send_signal(how)  # mid-load: calls are in flight
            ended = proc.wait(60)
            stop.set()
            runner.join(60)
    rows = logged(tmp_path)
    assert ended == (-signal.SIGKILL if how == signal.SIGKILL else 0)  # else a graceful stop
    assert len(answered) >= 300
    missing = set(answered) - rows
    assert not missing, f"{len(missing)} answered calls are not in the request log"


async def test_calls_that_end_together_share_a_write_and_a_bad_one_fails_alone() -> None:
    written: list[list[int]] = []
    gate = threading.Event()

    def write(items: list[int]) -> list[int]:
        gate.wait(5)  # hold the first write, so the others queue up behind it
        if 13 in items:
            raise ValueError("row 13 is refused")
        written.append(items)
        return [i * 2 for i in items]

    writer: GroupWriter[int, int] = GroupWriter(write)
    try:
        calls = [asyncio.ensure_future(writer.submit(i)) for i in range(40)]
        await asyncio.sleep(0.2)
        gate.set()
        results = await asyncio.gather(*calls, return_exceptions=True)
    finally:
        writer.close()
    assert [r for r in results if isinstance(r, BaseException)] == [results[13]]
    assert isinstance(results[13], ValueError)
    assert [r for i, r in enumerate(results) if i != 13] == [i * 2 for i in range(40) if i != 13]
    assert sorted(i for items in written for i in items) == [i for i in range(40) if i != 13]
    # A few transactions, not one per call: the queued calls share one, and the bad row is
    # found by bisecting it (at most 2·log2(40) ≈ 11 more runs), not by retrying each call.
    assert writer.batches <= 16


async def test_a_caller_that_stops_waiting_still_has_its_row_written() -> None:
    written: list[int] = []
    gate = threading.Event()

    def write(items: list[int]) -> list[int]:
        gate.wait(5)
        written.extend(items)
        return items

    writer: GroupWriter[int, int] = GroupWriter(write)
    try:
        waiting = asyncio.ensure_future(writer.submit(1))
        other = asyncio.ensure_future(writer.submit(2))
        await asyncio.sleep(0.05)
        waiting.cancel()  # the caller gives up (a client went away) while its row is queued
        gate.set()
        assert await other == 2
        with pytest.raises(asyncio.CancelledError):
            await waiting
    finally:
        writer.close()
    assert sorted(written) == [1, 2]
    assert writer.batches <= 2
