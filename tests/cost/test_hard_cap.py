"""A budget is a hard cap, whatever usage an upstream reports.

The upstream here is hostile about money: it reports five times the output geri allowed, a
hundred times the input geri sent, negative, fractional and astronomically large counts, or no
usage at all. Every call must still settle within what was reserved for it, never below zero,
with a notice and a log line for each figure geri did not believe. Then the same upstream faces
50 concurrent `geri ask` processes and two daemons sharing one store, on SQLite and on
PostgreSQL: the total charged stays within the limit, and no spend is ever negative.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc
import pytest
from hypothesis import given
from hypothesis import strategies as st

from geri.cost import charge, input_margin, projected_cost
from geri.cost.ledger import Ledger
from geri.engine import Engine
from geri.errors import MalformedReply
from geri.keys import KeyStore
from geri.settings import Budgets, CloudModel, Settings
from geri.store import open_store
from geri.types import ModelInfo, Request, Usage
from geri.wire._pb.geri.v1 import wolf_pb2 as pb
from geri.wire._pb.geri.v1 import wolf_pb2_grpc
from tests.daemon.test_shared_budget import address
from tests.mockserver import MockServer, Reply, Seen

MAX_TOKENS = 16
PRICES = {"input_price": 3, "output_price": 15}  # dollars per million tokens, as settings say
INPUT_PRICE, OUTPUT_PRICE = 3_000_000, 15_000_000  # the same in micro-dollars
HOSTILE_USAGE: list[dict[str, Any] | None] = [
    {"prompt_tokens": 9, "completion_tokens": 5 * MAX_TOKENS},  # inflated output
    {"prompt_tokens": 900, "completion_tokens": MAX_TOKENS},  # far more input than was sent
    {"prompt_tokens": -5, "completion_tokens": -100},  # negative
    {"prompt_tokens": 1.5, "completion_tokens": 2.5},  # fractional
    {"prompt_tokens": 1e30, "completion_tokens": 1e30},  # astronomically large
    None,  # no usage at all
]
ANOMALOUS = 5  # all but the last


def hostile(usages: Iterator[dict[str, Any] | None]) -> Any:
    """A reply per request, streamed or not as asked, with the next usage of `usages`."""

    def reply(seen: Seen) -> Reply:
        if seen.method != "POST":  # a daemon's health check lists the models
            return Reply(json={"data": [{"id": "gpt-test"}]})
        usage = next(usages)
        extra = {"usage": usage} if usage is not None else {}
        if seen.json.get("stream"):
            return Reply(
                events=[
                    '{"choices":[{"delta":{"content":"Four."}}]}',
                    '{"choices":[{"delta":{},"finish_reason":"stop"}]}',
                    json.dumps({"choices": [], **extra}).replace("1e+30", "1e30"),
                ]
            )
        body = {"choices": [{"message": {"content": "Four."}, "finish_reason": "stop"}], **extra}
        return Reply(json=body)

    return reply


def model(url: str) -> dict[str, Any]:
    return {
        "kind": "cloud",
        "id": "gpt",
        "provider": "openai",
        "model": "gpt-test",
        "base_url": f"{url}/v1",
        **PRICES,
    }


@given(
    st.one_of(st.none(), st.builds(Usage, st.integers(0, 10**9), st.integers(0, 10**9))),
    st.integers(1, 100_000),
    st.integers(1, 100_000),
    st.integers(0, 10**6),
    st.booleans(),
)
def test_no_reported_usage_settles_above_the_reservation_or_below_zero(
    reported: Usage | None, prompt: int, max_tokens: int, produced: int, flagged: bool
) -> None:
    info = ModelInfo("gpt", "openai", "gpt", input_price=INPUT_PRICE, output_price=OUTPUT_PRICE)
    reserved = projected_cost(prompt + input_margin(prompt), max_tokens, info)
    if reported is not None and flagged:
        reported = Usage(reported.input_tokens, reported.output_tokens, "input tokens -5")
    billed = charge(
        reported,
        info,
        prompt_tokens=prompt,
        max_tokens=max_tokens,
        produced_tokens=produced,
        reserved_micros=reserved,
    )
    assert 0 <= billed.cost_micros <= reserved
    assert billed.usage.output_tokens <= max_tokens
    if billed.anomaly:
        assert billed.cost_micros == reserved
    if produced and (reported is None or not reported.output_tokens):
        assert billed.estimated
        assert billed.usage.output_tokens > 0


async def test_each_hostile_report_is_charged_within_its_reservation_with_a_notice(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with MockServer() as server:
        server.default = hostile(iter(HOSTILE_USAGE * 2))
        settings = Settings(
            models=(CloudModel(**model(server.url)),),
            cache={"enabled": False},  # type: ignore[arg-type]
        )
        engine = Engine(
            settings,
            open_store(tmp_path / "g.db"),
            keys=KeyStore({"openai": ("OPENAI_API_KEY",)}, {"OPENAI_API_KEY": "sk-test-key-0"}),
        )
        results = []
        with caplog.at_level(logging.WARNING, logger="geri.engine"):
            for streamed in (False, True):
                for _ in HOSTILE_USAGE:
                    request = Request("What is 2+2?", model="gpt", max_tokens=MAX_TOKENS)
                    if streamed:
                        async for chunk in engine.stream(request):
                            results.append(chunk.result) if chunk.result else None
                    else:
                        results.append(await engine.ask(request))
        rows = {r.id: r for r in engine.store.recent_requests(limit=100)}
        await engine.aclose()

    prompt = results[0].context.prompt_tokens  # type: ignore[union-attr]
    info = ModelInfo("gpt", "openai", "gpt", input_price=INPUT_PRICE, output_price=OUTPUT_PRICE)
    reserved = projected_cost(prompt + input_margin(prompt), MAX_TOKENS, info)
    assert len(results) == 2 * len(HOSTILE_USAGE) == len(rows)
    for n, result in enumerate(results):
        anomalous = n % len(HOSTILE_USAGE) < ANOMALOUS
        kinds = [notice.kind for notice in result.notices]
        assert kinds == (["usage_anomaly"] if anomalous else []), (n, result)
        assert result.cost_micros == (reserved if anomalous else result.cost_micros)
        assert 0 < result.cost_micros <= reserved
        assert rows[result.id].cost_micros == result.cost_micros
        assert 0 < result.usage.output_tokens <= MAX_TOKENS  # never 0/0 for a real answer
    warned = [r for r in caplog.records if "does not believe" in r.getMessage()]
    assert len(warned) == 2 * ANOMALOUS
    assert {"reported_output", "charged_micros", "reserved_micros"} <= set(vars(warned[0]))


@pytest.mark.parametrize("streamed", [False, True])
async def test_every_unreadable_reply_the_upstream_may_have_billed_is_charged(
    tmp_path: Path, streamed: bool
) -> None:
    # 200 with a body of the wrong shape, every time: the provider billed each reply, and geri
    # cannot read what it billed. Retrying on the same reservation would leave every bill but
    # one uncounted; instead each reply reaches the ledger at its reservation.
    unreadable = {"choices": "not a list"}
    with MockServer() as server:
        server.default = (
            Reply(events=[json.dumps(unreadable)]) if streamed else Reply(json=unreadable)
        )
        settings = Settings.model_validate(
            {
                "models": [model(server.url)],
                "cache": {"enabled": False},
                "network": {"max_attempts": 3, "backoff_base": 0},
                "fallback": {"enabled": False},
            }
        )
        engine = Engine(
            settings,
            open_store(tmp_path / "g.db"),
            keys=KeyStore({"openai": ("OPENAI_API_KEY",)}, {"OPENAI_API_KEY": "sk-test-key-0"}),
        )
        engine.ledger.set_limit("*", "monthly", 10**6)
        request = Request("What is 2+2?", model="gpt", max_tokens=MAX_TOKENS)
        for _ in range(2):
            with pytest.raises(MalformedReply, match="shape geri cannot read"):
                if streamed:
                    async for _chunk in engine.stream(request):
                        pass
                else:
                    await engine.ask(request)
        rows = engine.store.recent_requests()
        [state] = engine.ledger.status()
        await engine.aclose()
    posts = [seen for seen in server.requests if seen.method == "POST"]
    assert len(posts) == len(rows) == 2
    reserved = rows[0].cost_micros
    assert reserved > 0
    assert [(row.status, row.cost_micros) for row in rows] == [("error", reserved)] * 2
    assert (state.spend.settled_micros, state.spend.reserved_micros) == (2 * reserved, 0)


WORKER_SETTINGS = {"cache": {"enabled": False}, "network": {"max_attempts": 1}}


def write_settings(home: Path, url: str, **extra: Any) -> None:
    settings = {"models": [model(url)], "default_model": "gpt", **WORKER_SETTINGS, **extra}
    (home / "config").mkdir(parents=True, exist_ok=True)
    (home / "config" / "settings.json").write_text(json.dumps(settings))


def environment(home: Path, location: str) -> dict[str, str]:
    return {
        **os.environ,
        "GERI_HOME": str(home),
        "GERI_STORE": location,
        "OPENAI_API_KEY": "sk-test-key-0",
    }


def reservation(location: str) -> int:
    """What one call of the workers' prompt reserves, read off a first call's request-log row."""
    store = open_store(location)
    try:
        [row] = store.recent_requests(limit=1)
    finally:
        store.close()
    return row.cost_micros  # an anomalous call is charged exactly its reservation


def assert_within(location: str, limit: int, upstream_calls: int) -> None:
    store = open_store(location)
    try:
        rows = store.recent_requests(limit=1000)
        ledger = Ledger(store, Budgets(), lambda: datetime.now(UTC))
        [state] = ledger.status()
    finally:
        store.close()
    assert all(row.cost_micros >= 0 for row in rows)
    assert state.spend.reserved_micros == 0  # every reservation settled
    assert 0 <= state.spend.settled_micros <= limit
    assert sum(r.cost_micros for r in rows if r.status == "ok") == state.spend.settled_micros
    assert len([r for r in rows if r.status == "ok"]) == upstream_calls  # each call has its row


def test_fifty_processes_against_a_hostile_upstream_stay_within_the_limit(
    location: str, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    with MockServer() as server:
        server.default = hostile(itertools.cycle(HOSTILE_USAGE))
        write_settings(home, server.url)
        env = environment(home, location)
        ask = [sys.executable, "-m", "geri", "ask", "What is 2+2?", "--max-tokens", "16"]
        first = subprocess.run(ask, env=env, capture_output=True, text=True, timeout=120)
        assert first.returncode == 0, first.stderr
        each = reservation(location)
        limit = 7 * each + each // 2  # room for 6 more calls, not 7
        set_limit = ["budget", "set", "daily", f"{limit / 1e6:.6f}"]
        done = subprocess.run(
            [sys.executable, "-m", "geri", *set_limit], env=env, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr
        workers = [
            subprocess.Popen(
                [*ask, *(["--no-stream"] if n % 2 else [])],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for n in range(50)
        ]
        outcomes = [w.communicate(timeout=300) for w in workers]
        calls = len([r for r in server.requests if r.method == "POST"])
    codes = [w.returncode for w in workers]
    refused = [err for code, (_, err) in zip(codes, outcomes, strict=True) if code]
    # six reservations fit at once; a call charged less than its reservation makes room again
    assert 6 <= codes.count(0) < 50, refused[:3]
    assert all("budget" in err.lower() and "reached" in err for err in refused)
    assert not any("Traceback" in out + err for out, err in outcomes)
    assert_within(location, limit, upstream_calls=calls)


def start_daemon(home: Path, location: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "geri", "daemon", "--port", "0"],
        env=environment(home, location),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


async def fire(addresses: list[str], requests: int) -> list[grpc.StatusCode]:
    channels = [grpc.aio.insecure_channel(a) for a in addresses]
    stubs = [wolf_pb2_grpc.WolfServiceStub(c) for c in channels]

    async def one(n: int) -> grpc.StatusCode:
        request = pb.WolfRequest(
            prompt="What is 2+2?", parameters=pb.Parameters(max_tokens=MAX_TOKENS)
        )
        try:
            if n % 2:
                await stubs[n % len(stubs)].ProcessPrompt(request, timeout=60)
            else:
                async for _ in stubs[n % len(stubs)].StreamPrompt(request, timeout=60):
                    pass
        except grpc.aio.AioRpcError as exc:
            return exc.code()
        return grpc.StatusCode.OK

    try:
        return await asyncio.gather(*(one(n) for n in range(requests)))
    finally:
        for channel in channels:
            await channel.close()


def test_two_daemons_against_a_hostile_upstream_stay_within_the_limit(
    location: str, tmp_path: Path
) -> None:
    homes = [tmp_path / "one", tmp_path / "two"]
    with MockServer() as server:
        server.default = hostile(itertools.cycle(HOSTILE_USAGE))
        for home in homes:
            write_settings(home, server.url, daemon={"max_running": 16, "max_queue": 64})
        env = environment(homes[0], location)
        ask = [sys.executable, "-m", "geri", "ask", "What is 2+2?", "--max-tokens", "16"]
        first = subprocess.run(ask, env=env, capture_output=True, text=True, timeout=120)
        assert first.returncode == 0, first.stderr
        each = reservation(location)
        limit = 5 * each + each // 2
        budget = ["budget", "set", "daily", f"{limit / 1e6:.6f}"]
        subprocess.run([sys.executable, "-m", "geri", *budget], env=env, check=True)
        procs = [start_daemon(home, location) for home in homes]
        try:
            addresses = [address(home, proc) for home, proc in zip(homes, procs, strict=True)]
            codes = asyncio.run(fire(addresses, 20))
        finally:
            for proc in procs:
                proc.terminate()
            for proc in procs:
                proc.wait(30)
        calls = len([r for r in server.requests if r.method == "POST"])
    ok, refused = codes.count(grpc.StatusCode.OK), codes.count(grpc.StatusCode.RESOURCE_EXHAUSTED)
    assert ok >= 4
    assert refused >= 1
    assert ok + refused == 20
    assert_within(location, limit, upstream_calls=calls)


def test_a_daemon_whose_database_was_deleted_fails_closed(tmp_path: Path) -> None:
    home, location = tmp_path / "home", str(tmp_path / "geri.db")
    with MockServer() as server:
        server.default = hostile(itertools.cycle([{"prompt_tokens": 9, "completion_tokens": 4}]))
        write_settings(home, server.url)
        env = environment(home, location)
        budget = [sys.executable, "-m", "geri", "budget", "set", "daily", "1000"]
        subprocess.run(budget, env=env, check=True, capture_output=True)
        proc = start_daemon(home, location)
        try:
            target = address(home, proc)
            assert asyncio.run(fire([target], 1)) == [grpc.StatusCode.OK]
            for name in ("geri.db", "geri.db-wal", "geri.db-shm"):
                (tmp_path / name).unlink(missing_ok=True)
            # a new file the daemon never reads, with a budget that would let calls through
            subprocess.run(budget, env=env, check=True, capture_output=True)
            before = len(server.requests)
            codes = asyncio.run(fire([target], 5))
            after = len(server.requests)
        finally:
            proc.terminate()
            _, stderr = proc.communicate(timeout=30)
    assert codes == [grpc.StatusCode.INTERNAL] * 5
    assert after == before  # fail closed: no call left the machine unbudgeted
    log = (home / "logs" / "geri.log").read_text() + stderr.decode()
    assert "was removed or replaced while geri was using it" in log
