"""Metrics: what each model has done, live in a process and over any period from the log.

Two sources, one shape (`ModelStats`):

* `Metrics` lives in the engine and sees every call as it finishes. It keeps monotonic counters
  and latency histograms (what Prometheus scrapes from the daemon) and a window of the latest
  calls per model for exact percentiles.
* `summarize` computes the same figures from rows of the request log, so `geri stats` can report
  on any period, whichever process served the requests.

Percentiles are exact over their sample (nearest rank); tokens per second is output tokens over
the time spent generating them (latency minus time to first token, when known).
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections import defaultdict, deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from geri.logs import CALL_EVENT
from geri.store.base import Finished, RequestRecord
from geri.types import ModelStats, ProcessStats, Snapshot

BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
WINDOW = 2000  # latest calls kept per model for percentiles
log = logging.getLogger("geri.engine")


def percentile(values: Sequence[float], q: float) -> float | None:
    """The nearest-rank `q`-th percentile (0-100) of `values`, or None when there are none.

    >>> percentile([5, 1, 4, 2, 3], 50), percentile([5, 1, 4, 2, 3], 99), percentile([], 50)
    (3, 5, None)
    """
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(math.ceil(q / 100 * len(ordered)) - 1, 0)]


def summarize(calls: Iterable[Finished]) -> list[ModelStats]:
    """Per model, in order of first appearance: counts, latency percentiles, speed, spend."""
    groups: dict[tuple[str, str], list[Finished]] = defaultdict(list)
    for call in calls:
        groups[(call.model, call.provider)].append(call)
    return [_stats(model, provider, rows) for (model, provider), rows in groups.items()]


def _stats(model: str, provider: str, rows: list[Finished]) -> ModelStats:
    answered = [r for r in rows if r.status == "ok" and not r.cached]
    latencies = [r.latency_ms for r in answered]
    generating = [
        (r.output_tokens, r.latency_ms - (r.ttft_ms or 0.0))
        for r in answered
        if r.output_tokens and r.latency_ms - (r.ttft_ms or 0.0) > 0
    ]
    seconds = sum(ms for _, ms in generating) / 1000
    return ModelStats(
        model=model,
        provider=provider,
        requests=len(rows),
        errors=sum(r.status == "error" for r in rows),
        cancelled=sum(r.status == "cancelled" for r in rows),
        cached=sum(r.cached for r in rows),
        latency_p50_ms=percentile(latencies, 50),
        latency_p95_ms=percentile(latencies, 95),
        latency_p99_ms=percentile(latencies, 99),
        ttft_p50_ms=percentile([r.ttft_ms for r in answered if r.ttft_ms is not None], 50),
        tokens_per_second=sum(t for t, _ in generating) / seconds if seconds > 0 else None,
        input_tokens=sum(r.input_tokens for r in rows),
        output_tokens=sum(r.output_tokens for r in rows),
        spend_micros=sum(r.cost_micros for r in rows),
    )


@dataclass
class _Series:
    """Monotonic counters and histograms of one model, since the process started."""

    requests: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    cached: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    spend_micros: int = 0
    latency: list[int] = field(default_factory=lambda: [0] * (len(BUCKETS_S) + 1))
    latency_sum: float = 0.0
    ttft: list[int] = field(default_factory=lambda: [0] * (len(BUCKETS_S) + 1))
    ttft_sum: float = 0.0
    recent: deque[Finished] = field(default_factory=lambda: deque(maxlen=WINDOW))


class Metrics:
    """Live metrics of one engine; `queue` reports (waiting, running) when a daemon has one."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self.started = clock()
        self._series: dict[tuple[str, str], _Series] = {}
        self.queue: Callable[[], tuple[int, int]] = lambda: (0, 0)

    def record(self, call: Finished) -> None:
        series = self._series.setdefault((call.model, call.provider), _Series())
        series.requests[call.status] += 1
        series.cached += call.cached
        series.input_tokens += call.input_tokens
        series.output_tokens += call.output_tokens
        series.spend_micros += call.cost_micros
        series.recent.append(call)
        if call.status == "ok" and not call.cached:
            _observe(series.latency, call.latency_ms / 1000)
            series.latency_sum += call.latency_ms / 1000
            if call.ttft_ms is not None:
                _observe(series.ttft, call.ttft_ms / 1000)
                series.ttft_sum += call.ttft_ms / 1000

    def observe(self, record: RequestRecord) -> None:
        """Count a finished call, and write one line for it in geri's log."""
        self.record(
            Finished(
                record.model,
                record.provider,
                record.status,
                record.latency_ms,
                record.ttft_ms,
                record.input_tokens,
                record.output_tokens,
                record.cost_micros,
                record.cached,
            )
        )
        level = logging.INFO if record.status == "ok" else logging.WARNING
        log.log(
            level,
            "%s %s in %.0f ms%s",
            record.status,
            record.model,
            record.latency_ms,
            f": {record.error}" if record.error else " (cached)" if record.cached else "",
            extra={
                "event": CALL_EVENT,
                "request_id": record.id,
                "model": record.model,
                "provider": record.provider,
                "status": record.status,
                "latency_ms": round(record.latency_ms, 3),
                "input_tokens": record.input_tokens,
                "output_tokens": record.output_tokens,
                "cost_micros": record.cost_micros,
                "cached": record.cached,
            },
        )

    def models(self) -> list[ModelStats]:
        """Per model over the latest calls (up to WINDOW each)."""
        return summarize(o for s in self._series.values() for o in s.recent)

    def snapshot(self) -> Snapshot:
        """Everything `geri stats` shows about a live process."""
        waiting, running = self.queue()
        uptime = self._clock() - self.started
        total = sum(sum(s.requests.values()) for s in self._series.values())
        return Snapshot(
            uptime_seconds=round(uptime, 3),
            requests=total,
            requests_per_second=round(total / uptime, 4) if uptime > 0 else 0.0,
            waiting=waiting,
            running=running,
            process=process_stats(),
            models=self.models(),
        )

    def prometheus(self) -> str:
        """The metrics in Prometheus' text exposition format (version 0.0.4)."""
        lines: list[str] = []

        def family(name: str, kind: str, text: str) -> None:
            lines.extend((f"# HELP {name} {text}", f"# TYPE {name} {kind}"))

        family("geri_requests_total", "counter", "Finished requests by call.")
        for (model, provider), s in self._series.items():
            for status, count in sorted(s.requests.items()):
                lines.append(
                    f'geri_requests_total{{{_labels(model, provider)},status="{status}"}} {count}'
                )
        for name, attr, text in (
            ("geri_cache_hits_total", "cached", "Requests answered from the response cache."),
            ("geri_input_tokens_total", "input_tokens", "Prompt tokens."),
            ("geri_output_tokens_total", "output_tokens", "Generated tokens."),
            ("geri_spend_micro_dollars_total", "spend_micros", "Cost in US dollars x 1e6."),
        ):
            family(name, "counter", text)
            for (model, provider), s in self._series.items():
                lines.append(f"{name}{{{_labels(model, provider)}}} {getattr(s, attr)}")
        for name, attr, text in (
            ("geri_request_duration_seconds", "latency", "Latency of answered requests."),
            ("geri_time_to_first_token_seconds", "ttft", "Time to the first streamed text."),
        ):
            family(name, "histogram", text)
            for (model, provider), s in self._series.items():
                labels = _labels(model, provider)
                counts: list[int] = getattr(s, attr)
                cumulative = 0
                for bound, count in zip((*BUCKETS_S, math.inf), counts, strict=True):
                    cumulative += count
                    le = "+Inf" if bound == math.inf else repr(bound)
                    lines.append(f'{name}_bucket{{{labels},le="{le}"}} {cumulative}')
                lines.append(f"{name}_sum{{{labels}}} {getattr(s, attr + '_sum'):.6f}")
                lines.append(f"{name}_count{{{labels}}} {cumulative}")
        waiting, running = self.queue()
        process = process_stats()
        for name, value, text in (
            ("geri_queue_waiting", waiting, "Requests waiting for a slot."),
            ("geri_queue_running", running, "Requests being served."),
            ("geri_process_resident_memory_bytes", process.rss_bytes, "Resident memory."),
            ("geri_process_cpu_percent", process.cpu_percent, "CPU use since the last look."),
            ("geri_process_threads", process.threads, "Threads."),
            ("geri_uptime_seconds", round(self._clock() - self.started, 3), "Seconds running."),
        ):
            family(name, "gauge", text)
            lines.append(f"{name} {value}")
        return "\n".join(lines) + "\n"


def process_stats() -> ProcessStats:
    """This process's memory, CPU (since the last call) and threads, from psutil."""
    import psutil

    process = psutil.Process(os.getpid())
    with process.oneshot():
        return ProcessStats(
            process.memory_info().rss, process.cpu_percent(interval=None), process.num_threads()
        )


def _observe(buckets: list[int], seconds: float) -> None:
    for i, bound in enumerate(BUCKETS_S):
        if seconds <= bound:
            buckets[i] += 1
            return
    buckets[-1] += 1


def _labels(model: str, provider: str) -> str:
    def quote(value: str) -> str:
        return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")

    return f'model="{quote(model)}",provider="{quote(provider)}"'
