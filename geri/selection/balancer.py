"""Spreading requests over the best models, and resting the ones that keep failing.

The balancer takes a ranking and picks at random among the leaders (at most `candidates`
models scoring within `spread` of the best), weighted by score and adjusted by what it sees:

* load: requests in flight are counted per model and per provider; a model at 80 % of its
  capacity is de-weighted to a quarter, one at capacity to a twentieth;
* adaptation: an exponential average of each model's errors and latency scales its weight, so
  a model that starts failing or slowing down gets less traffic before any threshold trips;
* circuit breaker: `failure_threshold` consecutive failures open the circuit, and the model is
  left out until `cooldown` has passed; then one request may try it (half-open): success closes
  the circuit, failure opens it for another cool-down.

State is in memory, per engine; the clock and the random source are injected for tests.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from geri.selection.selector import Candidate, Ranking
from geri.settings import Routing, live
from geri.types import ModelInfo

ALPHA = 0.3  # weight of the newest observation in the moving averages
LATENCY_SCALE_MS = 2000.0
BUSY, FULL = 0.8, 1.0
BUSY_FACTOR, FULL_FACTOR = 0.25, 0.05


@dataclass(slots=True)
class _State:
    in_flight: int = 0
    failures: int = 0  # consecutive
    open_until: float | None = None
    error_rate: float = 0.0
    latency_ms: float | None = None


class LoadBalancer:
    def __init__(
        self,
        routing: Routing | Callable[[], Routing],
        *,
        clock: Callable[[], float],
        rng: random.Random | None = None,
        local_capacity: Callable[[], int] = lambda: 1,
    ) -> None:
        self._routing = live(routing)
        self._local_capacity = local_capacity
        self._clock = clock
        self._rng = rng or random.Random()
        self._states: dict[str, _State] = {}
        self.provider_in_flight: Counter[str] = Counter()

    @property
    def routing(self) -> Routing:
        return self._routing()

    def state(self, model_id: str) -> _State:
        return self._states.setdefault(model_id, _State())

    def capacity(self, model: ModelInfo) -> int:
        default = self._local_capacity() if model.location == "local" else 16
        return self.routing.capacity.get(model.id, default)

    def unavailable(self, model: ModelInfo) -> str | None:
        """Why the circuit keeps `model` out right now, or None."""
        state = self._states.get(model.id)
        if state is None or state.open_until is None or self._clock() >= state.open_until:
            return None
        wait = state.open_until - self._clock()
        return f"resting after {state.failures} failures in a row ({wait:.0f} s left)"

    def weight(self, candidate: Candidate) -> float:
        state = self.state(candidate.model.id)
        load = state.in_flight / self.capacity(candidate.model)
        weight = candidate.score
        if load >= FULL:
            weight *= FULL_FACTOR
        elif load >= BUSY:
            weight *= BUSY_FACTOR
        weight *= 1.0 - 0.9 * state.error_rate
        if state.latency_ms is not None:
            weight *= LATENCY_SCALE_MS / (LATENCY_SCALE_MS + state.latency_ms)
        return weight

    def leaders(self, ranking: Ranking) -> list[Candidate]:
        """The candidates that share the load: close to the best, at most `candidates`."""
        if not ranking.candidates:
            return []
        best = ranking.candidates[0].score
        close = [c for c in ranking.candidates if c.score >= best - self.routing.spread]
        return close[: self.routing.candidates]

    def choose(self, ranking: Ranking) -> ModelInfo:
        leaders = self.leaders(ranking)
        weights = [max(self.weight(c), 1e-9) for c in leaders]
        return self._rng.choices(leaders, weights=weights)[0].model

    @contextmanager
    def track(self, model: ModelInfo) -> Iterator[Callable[[bool, float], None]]:
        """Count `model` as busy; the yielded callback reports the outcome (ok, latency ms)."""
        state = self.state(model.id)
        state.in_flight += 1
        self.provider_in_flight[model.provider] += 1
        try:
            yield lambda ok, latency_ms: self.report(model.id, ok, latency_ms)
        finally:
            state.in_flight -= 1
            self.provider_in_flight[model.provider] -= 1

    def report(self, model_id: str, ok: bool, latency_ms: float) -> None:
        state = self.state(model_id)
        state.error_rate = (1 - ALPHA) * state.error_rate + ALPHA * (0.0 if ok else 1.0)
        if ok:
            state.latency_ms = (
                latency_ms
                if state.latency_ms is None
                else (1 - ALPHA) * state.latency_ms + ALPHA * latency_ms
            )
            state.failures, state.open_until = 0, None
            return
        state.failures += 1
        half_open = state.open_until is not None and self._clock() >= state.open_until
        if half_open or state.failures >= self.routing.failure_threshold:
            state.open_until = self._clock() + self.routing.cooldown
