"""Two daemons on one PostgreSQL store share one budget: together they cannot overspend it.

Both are real `geri daemon` processes with their own homes, one PostgreSQL database between
them, and one mock cloud on 127.0.0.1 that answers slowly so their calls overlap. Each call
costs exactly its reservation (output-only pricing, the server reporting max_tokens), so the
limit admits exactly five calls however the twenty requests interleave; daemons that did not
share the budget would admit five each. (Fifty processes racing for one limit, the locking
itself, is `tests/cost/test_races.py`.)
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import grpc
import pytest

from geri.cost.ledger import Ledger
from geri.settings import Budgets
from geri.store import open_store
from geri.wire._pb.geri.v1 import wolf_pb2 as pb
from geri.wire._pb.geri.v1 import wolf_pb2_grpc
from tests.mockserver import MockServer, Reply

MAX_TOKENS, PRICE = 16, 30  # $30 per million output tokens: 480 micro-dollars a call
CALL = MAX_TOKENS * PRICE
ADMITTED, REQUESTS = 5, 20


@pytest.fixture
def cloud() -> Iterator[MockServer]:
    with MockServer() as server:
        server.default = Reply(
            json={
                "choices": [{"message": {"content": "ok"}, "finish_reason": "length"}],
                "usage": {"prompt_tokens": 9, "completion_tokens": MAX_TOKENS},
            },
            delay=0.3,
        )
        yield server


def start_daemon(home: Path, store: str, cloud: MockServer) -> subprocess.Popen[bytes]:
    settings = {
        "models": [
            {
                "kind": "cloud",
                "id": "gpt",
                "provider": "openai",
                "model": "gpt-test",
                "base_url": f"{cloud.url}/v1",
                "output_price": PRICE,
            }
        ],
        "default_model": "gpt",
        "fallback": {"enabled": False},
        "cache": {"enabled": False},
        "network": {"max_attempts": 1},
        "daemon": {"max_running": 16, "max_queue": 64},
    }
    (home / "config").mkdir(parents=True)
    (home / "config" / "settings.json").write_text(json.dumps(settings))
    env = {**os.environ, "GERI_HOME": str(home), "GERI_STORE": store, "OPENAI_API_KEY": "sk-t"}
    return subprocess.Popen(
        [sys.executable, "-m", "geri", "daemon", "--port", "0"],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def address(home: Path, proc: subprocess.Popen[bytes]) -> str:
    state = home / "data" / "daemon.json"
    deadline = time.monotonic() + 60
    while not state.exists():
        assert proc.poll() is None, proc.stderr.read().decode()  # type: ignore[union-attr]
        assert time.monotonic() < deadline, "the daemon did not start"
        time.sleep(0.1)
    return str(json.loads(state.read_text())["address"])


async def fire(addresses: list[str]) -> list[grpc.StatusCode]:
    channels = [grpc.aio.insecure_channel(a) for a in addresses]
    stubs = [wolf_pb2_grpc.WolfServiceStub(c) for c in channels]

    async def one(n: int) -> grpc.StatusCode:
        request = pb.WolfRequest(
            prompt=f"question {n}", parameters=pb.Parameters(max_tokens=MAX_TOKENS)
        )
        try:
            await stubs[n % 2].ProcessPrompt(request, timeout=60)
        except grpc.aio.AioRpcError as exc:
            return exc.code()
        return grpc.StatusCode.OK

    try:
        return await asyncio.gather(*(one(n) for n in range(REQUESTS)))
    finally:
        for channel in channels:
            await channel.close()


def test_two_daemons_on_postgres_share_one_budget(
    postgres_url: str, tmp_path: Path, cloud: MockServer
) -> None:
    ledger = Ledger(open_store(postgres_url), Budgets(), lambda: datetime.now(UTC))
    ledger.set_limit("*", "daily", ADMITTED * CALL)
    homes = [tmp_path / "one", tmp_path / "two"]
    procs = [start_daemon(home, postgres_url, cloud) for home in homes]
    try:
        addresses = [address(home, proc) for home, proc in zip(homes, procs, strict=True)]
        codes = asyncio.run(fire(addresses))
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(30)
    assert codes.count(grpc.StatusCode.OK) == ADMITTED
    assert codes.count(grpc.StatusCode.RESOURCE_EXHAUSTED) == REQUESTS - ADMITTED
    calls = [r for r in cloud.requests if r.path.endswith("/chat/completions")]
    assert len(calls) == ADMITTED  # the refused ones never left the machine
    [state] = ledger.status()
    assert state.spend.settled_micros == ADMITTED * CALL
    assert state.spend.reserved_micros == 0
