"""Fallback: which model answers when the chosen one cannot, and how to tell the user.

A remote model that is over budget (`BudgetExhausted`), keeps rate-limiting or cannot be reached
after its retries (`Retryable`) hands the request on: to `fallback.local_model` if set, else to
the next model by efficiency score that the failure does not also rule out (the same provider
for a retryable failure, the exhausted budget's scope for a budget), with local models last.
Every hop goes through the budget again. Local models never fall back: nothing is left below.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from geri.cost.ledger import Ledger
from geri.errors import BudgetExhausted, ModelNotFound, ProviderTimeout, RateLimited, Retryable
from geri.settings import Fallback
from geri.specs import PROVIDERS
from geri.store.base import ALL_CLOUD
from geri.types import ModelInfo

FALLBACK_ERRORS = (BudgetExhausted, Retryable)


async def next_model(
    settings: Fallback,
    failed: ModelInfo,
    error: BudgetExhausted | Retryable,
    tried: Sequence[str],
    *,
    ranked: Callable[[], Awaitable[list[ModelInfo]]],
    pinned: Callable[[str], Awaitable[ModelInfo]],
) -> ModelInfo | None:
    """The model to try after `failed` failed with `error`, or None when there is none.

    `ranked` gives the eligible models best first; `pinned` looks up `fallback.local_model`.
    """
    if not settings.enabled or failed.location == "local" or len(tried) >= settings.max_hops:
        return None
    if settings.local_model and settings.local_model not in tried:
        try:
            return await pinned(settings.local_model)
        except ModelNotFound:
            pass  # a stale setting: fall back by score rather than not at all

    def allowed(model: ModelInfo) -> bool:
        if model.id in tried:
            return False
        if isinstance(error, BudgetExhausted):
            return model.location != "cloud" or error.scope not in (ALL_CLOUD, model.provider)
        return model.location == "local" or model.provider != failed.provider

    candidates = [m for m in await ranked() if allowed(m)]
    candidates.sort(key=lambda m: m.location == "local")  # stable: score order, local last
    return candidates[0] if candidates else None


def fallback_text(
    failed: ModelInfo, chosen: ModelInfo, error: BudgetExhausted | Retryable, ledger: Ledger
) -> str:
    """The notice for a fallback, e.g. 'Cloud budget for November reached — answering with
    local Llama 3 8B until 1 December'."""
    target = describe(chosen)
    if isinstance(error, BudgetExhausted):
        reached = ledger.reached(error.scope, error.period)
        return f"{reached} — answering with {target} until {ledger.until(error.resets_at)}"
    label = _label(failed)
    if isinstance(error, RateLimited):
        trouble = f"{label} keeps rate-limiting {failed.id}"
    elif isinstance(error, ProviderTimeout):
        trouble = f"{label} is not answering in time for {failed.id}"
    else:
        trouble = f"{label} is unavailable for {failed.id}"
    return f"{trouble} — answering with {target} for this request"


def describe(model: ModelInfo) -> str:
    """'local SmolLM2 135M', 'LAN model x on peer', 'OpenAI gpt-4o'."""
    name = model.name or model.id
    if model.location == "local":
        return f"local {name}"
    if model.location == "lan":
        return f"{model.id} on the LAN"
    return f"{_label(model)} {model.id}"


def _label(model: ModelInfo) -> str:
    spec = PROVIDERS.get(model.provider)
    return spec.label if spec else model.provider
