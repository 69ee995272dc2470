"""The load balancer: weighted choice, load, adaptation and the circuit breaker."""

from __future__ import annotations

import asyncio
import math
import random
from collections import Counter

import pytest

from geri.selection.balancer import LoadBalancer
from geri.selection.score import Factors, Observed
from geri.selection.selector import Candidate, Ranking
from geri.settings import Routing
from geri.types import ModelInfo
from tests.fakes import FakeClock


def candidate(model_id: str, score: float, location: str = "cloud") -> Candidate:
    model = ModelInfo(model_id, "openai", model_id, location=location)  # type: ignore[arg-type]
    return Candidate(model, Factors(0, 0, 0, 0, 0, 0), score, 0, Observed())


def balancer(clock: FakeClock | None = None, **routing: object) -> LoadBalancer:
    return LoadBalancer(
        Routing(**routing),  # type: ignore[arg-type]
        clock=clock or FakeClock(),
        rng=random.Random(7),
    )


def within(count: int, n: int, p: float, sigmas: float = 5.0) -> bool:
    """Is `count` successes out of `n` within `sigmas` standard deviations of p * n?"""
    return abs(count - n * p) <= sigmas * math.sqrt(n * p * (1 - p))


def test_leaders_are_close_to_the_best_and_capped() -> None:
    ranking = Ranking(
        tuple(candidate(f"m{i}", s) for i, s in enumerate([0.9, 0.85, 0.82, 0.81, 0.5]))
    )
    assert [c.model.id for c in balancer(spread=0.1, candidates=3).leaders(ranking)] == [
        "m0",
        "m1",
        "m2",
    ]
    assert [c.model.id for c in balancer(spread=0.05).leaders(ranking)] == ["m0", "m1"]


def test_choices_follow_the_scores_under_concurrency() -> None:
    lb = balancer(spread=1.0)
    ranking = Ranking((candidate("a", 0.6), candidate("b", 0.3)))
    picks: Counter[str] = Counter()

    async def one() -> None:
        model = lb.choose(ranking)
        with lb.track(model) as report:
            picks[model.id] += 1
            await asyncio.sleep(0)
            report(True, 100.0)

    async def all_of_them() -> None:
        await asyncio.gather(*(one() for _ in range(3000)))

    asyncio.run(all_of_them())
    # capacity 16 each, so with 3000 tasks in flight both are saturated alike: 2 to 1 stays
    assert within(picks["a"], 3000, 2 / 3)
    assert lb.provider_in_flight["openai"] == 0


def test_a_busy_model_is_de_weighted() -> None:
    lb = balancer(spread=1.0, capacity={"a": 10, "b": 10})
    a, b = candidate("a", 0.5), candidate("b", 0.5)
    ranking = Ranking((a, b))
    held = [lb.track(a.model) for _ in range(8)]  # 80 % of a's capacity
    for h in held:
        h.__enter__()
    assert lb.weight(a) == pytest.approx(0.5 * 0.25)
    picks = Counter(lb.choose(ranking).id for _ in range(4000))
    assert within(picks["a"], 4000, 0.2)
    for h in held:
        h.__exit__(None, None, None)
    assert lb.weight(a) == pytest.approx(0.5)


def test_weights_adapt_to_errors_and_latency() -> None:
    lb = balancer()
    a = candidate("a", 0.8)
    before = lb.weight(a)
    lb.report("a", False, 0.0)
    assert lb.weight(a) < before
    lb.report("a", True, 8000.0)
    slow = lb.weight(a)
    for _ in range(10):
        lb.report("a", True, 100.0)
    assert lb.weight(a) > slow


def test_failures_open_the_circuit_until_the_cool_down() -> None:
    clock = FakeClock()
    lb = balancer(clock, failure_threshold=3, cooldown=30.0)
    model = candidate("a", 0.9).model
    for _ in range(2):
        lb.report("a", False, 1.0)
    assert lb.unavailable(model) is None
    lb.report("a", False, 1.0)
    assert "resting after 3 failures" in (lb.unavailable(model) or "")
    clock.advance(29.0)
    assert lb.unavailable(model) is not None
    clock.advance(1.0)
    assert lb.unavailable(model) is None  # half-open: one try allowed
    lb.report("a", False, 1.0)  # the try fails: rest again
    assert lb.unavailable(model) is not None
    clock.advance(30.0)
    lb.report("a", True, 1.0)  # the next try works: closed
    assert lb.unavailable(model) is None
    lb.report("a", False, 1.0)
    assert lb.unavailable(model) is None  # one failure after recovery is not enough
