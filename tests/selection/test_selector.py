"""Constraints: each one excludes the models it should, and says why."""

from __future__ import annotations

import pytest

from geri.errors import NoEligibleModel
from geri.selection.score import Observed
from geri.selection.selector import Exclusion, rank, require
from geri.settings import Weights
from geri.types import Constraints, ModelInfo

LOCAL = ModelInfo("local", "llama.cpp", "/l.gguf", parameters=10**9, size_bytes=10**9)
LAN = ModelInfo("lan", "openai_compatible", "x", location="lan", context_window=32_000)
CLOUD = ModelInfo(
    "cloud", "openai", "gpt", kind="vision", location="cloud", context_window=128_000,
    input_price=2_500_000, output_price=10_000_000,
)  # fmt: skip
MODELS = [LOCAL, LAN, CLOUD]


def ranking(constraints: Constraints, **kw: object):  # type: ignore[no-untyped-def]
    options: dict[str, object] = {
        "weights": Weights().normalised(),
        "observed": {},
        "free_ram": 16 * 10**9,
        "prompt_tokens": 100,
        "max_tokens": 500,
        "usable": lambda m: None,
    }
    options.update(kw)
    return rank(MODELS, constraints, **options)  # type: ignore[arg-type]


def test_all_eligible_best_first() -> None:
    result = ranking(Constraints())
    assert [c.model.id for c in result.candidates] == ["local", "lan", "cloud"]
    assert result.excluded == {}
    scores = [c.score for c in result.candidates]
    assert scores == sorted(scores, reverse=True)
    assert result.candidates[2].estimated_cost_micros == 5250  # 100 x 2.5 + 500 x 10 per M


@pytest.mark.parametrize(
    ("constraints", "left", "why"),
    [
        (
            Constraints(local_only=True),
            ["local"],
            {"lan": "lan, and only local", "cloud": "cloud, and only local"},
        ),
        (
            Constraints(remote_only=True),
            ["lan", "cloud"],
            {"local": "local, and only LAN or cloud models are allowed"},
        ),
        (Constraints(needs_vision=True), ["cloud"], {"local": "cannot read images"}),
        (
            Constraints(min_context=10_000),
            ["lan", "cloud"],
            {"local": "context window 4096 < 10000"},
        ),
        (
            Constraints(max_cost_micros=5000),
            ["local", "lan"],
            {"cloud": "estimated $0.005250 > the $0.005000"},
        ),
    ],
)
def test_each_constraint_excludes_with_a_reason(
    constraints: Constraints, left: list[str], why: dict[str, str]
) -> None:
    result = ranking(constraints)
    assert [c.model.id for c in result.candidates] == left
    for model, reason in why.items():
        assert reason in result.excluded[model]


def test_latency_ceiling_uses_observed_medians() -> None:
    slow = Observed(calls=3, p50_latency_ms=4000.0)
    result = ranking(Constraints(max_latency_ms=1000), observed={"lan": slow})
    assert "median latency 4000 ms > 1000 ms" in result.excluded["lan"]
    assert "local" not in result.excluded  # no history: not excluded on a guess


def test_a_prompt_larger_than_a_window_is_excluded() -> None:
    result = ranking(Constraints(), prompt_tokens=50_000)
    assert set(result.excluded) == {"local", "lan"}
    assert "does not fit its 4096" in result.excluded["local"]


def test_unusable_models_and_the_error_naming_every_exclusion() -> None:
    result = ranking(
        Constraints(local_only=True),
        usable=lambda m: (
            Exclusion("resting", "resting after 3 failures in a row") if m.id == "local" else None
        ),
    )
    with pytest.raises(NoEligibleModel) as err:
        require(result)
    message = str(err.value)
    assert "local: resting after 3 failures" in message
    assert "cloud: cloud, and only local models are allowed" in message
    assert "lan: lan, and only local models are allowed" in message
