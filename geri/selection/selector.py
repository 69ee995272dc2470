"""Choosing among models: constraints first, then the efficiency score.

An explicit model always wins and never reaches this module. Otherwise every known model is a
candidate; the constraints (local only, vision, a minimum window, a cost ceiling, a latency
ceiling, a key for providers that need one, room for the prompt) exclude some, each with the
reason, and the rest are ranked by their efficiency score. When nothing is left, the error
lists which constraint excluded which model.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from geri.cost import request_cost
from geri.errors import NoEligibleModel
from geri.selection.score import Factors, Observed, factors
from geri.types import Constraints, ModelInfo, Usage


@dataclass(frozen=True, slots=True)
class Candidate:
    model: ModelInfo
    factors: Factors
    score: float
    estimated_cost_micros: int
    observed: Observed

    def as_dict(self) -> dict[str, object]:
        return {
            "model": self.model.id,
            "provider": self.model.provider,
            "location": self.model.location,
            "factors": self.factors.as_dict(),
            "score": round(self.score, 4),
            "estimated_cost_usd": self.estimated_cost_micros / 1_000_000,
        }


Reason = Literal[
    "local_only",
    "remote_only",
    "no_vision",
    "window",
    "prompt",
    "cost",
    "latency",
    "no_key",
    "resting",
]


class Exclusion(str):
    """Why a model was left out: the text people read, with `reason` for code to act on."""

    reason: Reason

    def __new__(cls, reason: Reason, detail: str) -> Exclusion:
        made = super().__new__(cls, detail)
        made.reason = reason
        return made


@dataclass(frozen=True, slots=True)
class Ranking:
    candidates: tuple[Candidate, ...]  # eligible, best first
    excluded: Mapping[str, Exclusion] = field(default_factory=dict)  # by model id
    weights: Mapping[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        return {
            "weights": dict(self.weights),
            "candidates": [c.as_dict() for c in self.candidates],
            "excluded": {model: str(why) for model, why in self.excluded.items()},
            "winner": self.candidates[0].model.id if self.candidates else None,
        }


def rank(
    models: Sequence[ModelInfo],
    constraints: Constraints,
    *,
    weights: Mapping[str, float],
    observed: Mapping[str, Observed],
    free_ram: int,
    prompt_tokens: int,
    max_tokens: int,
    usable: Callable[[ModelInfo], Exclusion | None],
) -> Ranking:
    """Eligible models by score, best first, and the reason each other one was left out.

    `usable(model)` returns why a model cannot be used right now (no key, cooling down), or None.
    """
    ranked: list[Candidate] = []
    excluded: dict[str, Exclusion] = {}
    for model in models:
        cost = request_cost(Usage(prompt_tokens, max_tokens), model)
        seen = observed.get(model.id, Observed())
        reason = _exclusion(model, constraints, cost, seen, prompt_tokens) or usable(model)
        if reason:
            excluded[model.id] = reason
            continue
        found = factors(model, seen, free_ram, cost)
        ranked.append(Candidate(model, found, found.total(dict(weights)), cost, seen))
    ranked.sort(key=lambda c: -c.score)
    return Ranking(tuple(ranked), excluded, dict(weights))


def require(ranking: Ranking) -> Ranking:
    """`ranking`, or `NoEligibleModel` naming what excluded each model."""
    if ranking.candidates:
        return ranking
    if all(why.reason == "no_key" for why in ranking.excluded.values()):
        raise NoEligibleModel(
            "No local model is installed and no cloud provider has a key: run 'geri install' "
            "(or 'geri models add PATH.gguf'), or add a key with 'geri keys set openai'."
        )
    reasons = "; ".join(f"{model}: {why}" for model, why in ranking.excluded.items())
    raise NoEligibleModel(f"No model meets the request's constraints. {reasons}.")


def _exclusion(
    model: ModelInfo, constraints: Constraints, cost: int, seen: Observed, prompt_tokens: int
) -> Exclusion | None:
    if constraints.local_only and model.location != "local":
        return Exclusion("local_only", f"{model.location}, and only local models are allowed")
    if constraints.remote_only and model.location == "local":
        return Exclusion("remote_only", "local, and only LAN or cloud models are allowed")
    if constraints.needs_vision and model.kind != "vision":
        return Exclusion("no_vision", "cannot read images")
    if constraints.min_context and model.context_window < constraints.min_context:
        return Exclusion(
            "window", f"context window {model.context_window} < {constraints.min_context} required"
        )
    if prompt_tokens >= model.context_window:
        return Exclusion(
            "prompt", f"the prompt ({prompt_tokens} tokens) does not fit its {model.context_window}"
        )
    if constraints.max_cost_micros is not None and cost > constraints.max_cost_micros:
        allowed = constraints.max_cost_micros / 1e6
        return Exclusion("cost", f"estimated ${cost / 1e6:.6f} > the ${allowed:.6f} allowed")
    if (
        constraints.max_latency_ms is not None
        and seen.p50_latency_ms is not None
        and seen.p50_latency_ms > constraints.max_latency_ms
    ):
        slow = f"median latency {seen.p50_latency_ms:.0f} ms > {constraints.max_latency_ms:.0f} ms"
        return Exclusion("latency", slow)
    return None
