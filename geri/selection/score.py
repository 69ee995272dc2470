"""The efficiency score: six factors, each normalised to 0..1, weighed into one number.

Factors are absolute, not relative to the other candidates, so a model's score does not move
when an unrelated model is added, and each number can be explained on its own:

* size: 1 at 100 M parameters or fewer, 0 at 1 T, on a log scale (unknown: 0.25, assumed large);
* hardware: for a local model, 1 while it needs at most half the free RAM, falling to 0 when it
  needs all of it; remote models need nothing here (1);
* reliability: smoothed success rate of recent calls times smoothed health-check uptime (a model
  with no history starts at 0.95 for each);
* latency: the mean of h/(h+x) for the median time to first token (h = 500 ms) and median
  latency (h = 5 s); a model with no history gets 0.5;
* distance: 1/(1 + round trip / 25 ms), with the round trip measured where known, else 0 for
  local, 10 ms for LAN and 100 ms for cloud;
* cost: 1/(1 + c / $0.001), c the request's estimated price (local: free).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, fields

from geri.store.base import HealthCheck, Outcome
from geri.types import ModelInfo

PRIOR, PRIOR_WEIGHT = 0.95, 5.0
TTFT_HALF_MS, LATENCY_HALF_MS = 500.0, 5000.0
DISTANCE_HALF_MS = 25.0
DEFAULT_RTT_MS = {"local": 0.0, "lan": 10.0, "cloud": 100.0}
COST_HALF_MICROS = 1000.0
UNKNOWN_SIZE = 0.25


@dataclass(frozen=True, slots=True)
class Observed:
    """What geri has seen of a model: from its request log and health checks."""

    calls: int = 0
    failures: int = 0
    p50_latency_ms: float | None = None
    p50_ttft_ms: float | None = None
    checks: int = 0
    checks_ok: int = 0

    @classmethod
    def from_history(cls, outcomes: Sequence[Outcome], checks: Sequence[HealthCheck]) -> Observed:
        done = [o for o in outcomes if o.status != "cancelled"]
        ok = [o for o in done if o.status in ("ok", "refused")]  # a refusal is an answer
        ttfts = [o.ttft_ms for o in ok if o.ttft_ms is not None]
        return cls(
            calls=len(done),
            failures=len(done) - len(ok),
            p50_latency_ms=statistics.median(o.latency_ms for o in ok) if ok else None,
            p50_ttft_ms=statistics.median(ttfts) if ttfts else None,
            checks=len(checks),
            checks_ok=sum(c.ok for c in checks),
        )


@dataclass(frozen=True, slots=True)
class Factors:
    size: float
    hardware: float
    reliability: float
    latency: float
    distance: float
    cost: float

    def total(self, weights: dict[str, float]) -> float:
        return float(sum(getattr(self, f.name) * weights[f.name] for f in fields(self)))

    def as_dict(self) -> dict[str, float]:
        return {f.name: round(getattr(self, f.name), 4) for f in fields(self)}


def factors(
    model: ModelInfo, observed: Observed, free_ram: int, estimated_cost_micros: int
) -> Factors:
    """The six factors of `model` for one request."""
    return Factors(
        size=size_factor(model.parameters),
        hardware=hardware_factor(model, free_ram),
        reliability=_smoothed(observed.calls - observed.failures, observed.calls)
        * _smoothed(observed.checks_ok, observed.checks),
        latency=latency_factor(observed),
        distance=distance_factor(model),
        cost=1.0 / (1.0 + estimated_cost_micros / COST_HALF_MICROS),
    )


def size_factor(parameters: int | None) -> float:
    """
    >>> size_factor(100_000_000), size_factor(10**10), size_factor(10**12)
    (1.0, 0.5, 0.0)
    """
    if not parameters:
        return UNKNOWN_SIZE
    return _clamp(1.0 - (math.log10(parameters) - 8.0) / 4.0)


def hardware_factor(model: ModelInfo, free_ram: int) -> float:
    if model.location != "local":
        return 1.0
    need = ram_needed(model)
    if free_ram <= 0:
        return 0.0
    share = need / free_ram
    return _clamp(2.0 * (1.0 - share)) if share > 0.5 else 1.0


def ram_needed(model: ModelInfo) -> int:
    """The weights plus a KV cache estimate (a quarter of the weights at a 4 k window)."""
    weights = model.size_bytes or 0
    return int(weights * (1.0 + 0.25 * model.context_window / 4096))


def latency_factor(observed: Observed) -> float:
    parts = []
    if observed.p50_ttft_ms is not None:
        parts.append(TTFT_HALF_MS / (TTFT_HALF_MS + observed.p50_ttft_ms))
    if observed.p50_latency_ms is not None:
        parts.append(LATENCY_HALF_MS / (LATENCY_HALF_MS + observed.p50_latency_ms))
    return sum(parts) / len(parts) if parts else 0.5


def distance_factor(model: ModelInfo) -> float:
    """
    >>> from geri.types import ModelInfo
    >>> distance_factor(ModelInfo("m", "p", "s", location="cloud"))
    0.2
    """
    measured = model.metadata.get("rtt_ms")
    rtt = float(measured) if measured else DEFAULT_RTT_MS[model.location]
    return 1.0 / (1.0 + rtt / DISTANCE_HALF_MS)


def _smoothed(good: int, total: int) -> float:
    return (good + PRIOR * PRIOR_WEIGHT) / (total + PRIOR_WEIGHT)


def _clamp(value: float) -> float:
    return min(1.0, max(0.0, value))
