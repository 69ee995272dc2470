"""Metrics: percentiles, per-model summaries, live counters, Prometheus text, the log as source."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

from geri.engine import Engine
from geri.engine.metrics import Metrics, percentile, summarize
from geri.providers import ProviderContext
from geri.settings import LocalModel, Settings
from geri.store import RequestRecord, Store
from geri.store.base import Finished
from geri.types import ModelInfo, Request
from tests.fakes import FakeProvider


def call(
    model: str = "m",
    status: str = "ok",
    latency: float = 100.0,
    ttft: float | None = 20.0,
    out: int = 10,
    cached: bool = False,
    cost: int = 0,
) -> Finished:
    return Finished(model, "p", status, latency, ttft, 5, out, cost, cached)


def test_percentiles_are_nearest_rank() -> None:
    values = list(range(1, 101))
    assert (percentile(values, 50), percentile(values, 95), percentile(values, 99)) == (50, 95, 99)
    assert percentile([7.0], 99) == 7.0


def test_a_summary_per_model() -> None:
    [a, b] = summarize(
        [
            call("a", latency=100, ttft=20, out=8),  # 8 tokens in 80 ms of generation
            call("a", latency=300, ttft=100, out=40, cost=7),  # 40 tokens in 200 ms
            call("a", status="error", latency=5, ttft=None, out=0),
            call("a", latency=0.3, ttft=0.3, out=8, cached=True),  # not a latency sample
            call("b", status="cancelled"),
        ]
    )
    assert (a.model, a.requests, a.errors, a.cancelled, a.cached) == ("a", 4, 1, 0, 1)
    assert (a.latency_p50_ms, a.latency_p99_ms, a.ttft_p50_ms) == (100, 300, 20)
    assert a.tokens_per_second == (8 + 40) / 0.28
    assert a.spend_micros == 7
    assert a.cache_hit_rate == 0.25
    assert (b.requests, b.cancelled, b.latency_p50_ms, b.tokens_per_second) == (1, 1, None, None)


def test_prometheus_text() -> None:
    metrics = Metrics(clock=iter([0.0, 10.0, 10.0]).__next__)
    metrics.queue = lambda: (3, 1)
    for latency in (4, 40, 400, 4000):
        metrics.record(call(latency=latency, ttft=2))
    metrics.record(call(status="error"))
    metrics.record(call(cached=True, cost=0))
    text = metrics.prometheus()
    samples = dict(re.findall(r"^(\S+) (\S+)$", text, re.MULTILINE))
    labels = 'model="m",provider="p"'
    assert samples[f'geri_requests_total{{{labels},status="ok"}}'] == "5"
    assert samples[f'geri_requests_total{{{labels},status="error"}}'] == "1"
    assert samples[f"geri_cache_hits_total{{{labels}}}"] == "1"
    buckets = {
        le: int(v)
        for le, v in re.findall(
            rf'geri_request_duration_seconds_bucket{{{labels},le="([^"]+)"}} (\d+)', text
        )
    }
    assert (buckets["0.005"], buckets["0.05"], buckets["0.5"], buckets["5.0"]) == (1, 2, 3, 4)
    assert buckets["+Inf"] == 4  # cached and failed calls are no latency samples
    assert samples[f"geri_request_duration_seconds_count{{{labels}}}"] == "4"
    assert float(samples[f"geri_request_duration_seconds_sum{{{labels}}}"]) == 4.444
    assert samples["geri_queue_waiting"] == "3"
    assert int(samples["geri_process_resident_memory_bytes"]) > 0
    assert all(line.startswith("#") or " " in line for line in text.splitlines())


async def test_the_engine_counts_every_call_and_the_log_keeps_them(
    tmp_path: Path, store: Store
) -> None:
    settings = Settings(models=(LocalModel(id="fake", path=tmp_path / "f.gguf"),))
    provider: list[FakeProvider] = []

    def build(info: ModelInfo, context: ProviderContext) -> FakeProvider:
        provider.append(FakeProvider(info))
        return provider[-1]

    engine = Engine(settings, store, providers=build)
    before = datetime.now(UTC) - timedelta(seconds=1)
    for text in ("one", "two"):
        engine._provider(await engine.resolve(Request(text)))
        provider[-1].enqueue("answer ", text)
        await engine.ask(Request(text))
    await engine.ask(Request("one"))  # from the cache
    [live] = engine.metrics.models()
    assert (live.model, live.requests, live.cached, live.output_tokens) == ("fake", 3, 1, 6)
    logged = summarize(store.finished_since(before))
    assert logged == [live]
    assert store.finished_since(datetime.now(UTC) + timedelta(seconds=5)) == []
    snapshot = engine.metrics.snapshot()
    assert snapshot.requests == 3
    assert snapshot.as_dict()["queue"] == {"waiting": 0, "running": 0}


def test_the_log_keeps_trace_ids(store: Store) -> None:
    record = RequestRecord(
        "r1",
        datetime.now(UTC),
        "m",
        "p",
        "[]",
        "",
        1,
        1,
        1.0,
        None,
        0,
        "ok",
        None,
        False,
        trace_id="abc123",
    )
    store.record_request(record)
    assert store.recent_requests(1)[0].trace_id == "abc123"
