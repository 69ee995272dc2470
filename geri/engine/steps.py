"""The steps a request takes on each model it tries, between the cache and the call.

Fitting the prompt to the model's window (moving to a larger model when the question alone does
not fit), reserving the projected cost in the budget, and, when a model is over budget or keeps
failing, choosing the next one with a notice; after a budget fallback, saying once when the
cloud is back. Mixed into `Engine`, whose collaborators these read.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING

from geri.cost import input_margin, projected_cost
from geri.cost.ledger import Ledger
from geri.engine.calls import Call
from geri.engine.fallback import describe, fallback_text, next_model
from geri.engine.front import off_loop
from geri.engine.requests import chat_request
from geri.errors import BudgetExhausted, QuestionTooLong, Retryable
from geri.prompt import Prompt, build_prompt
from geri.prompt.tokens import TokenCounter
from geri.registry import ModelRegistry
from geri.selection.router import Router
from geri.settings import Settings
from geri.store import Store
from geri.types import ModelInfo, Notice, Request, Result

BUDGET_FALLBACK_KEY = "budget_fallback_until"


class Steps:
    """Mixed into `Engine`, whose collaborators and methods these are."""

    settings: Settings
    store: Store
    registry: ModelRegistry
    ledger: Ledger
    router: Router
    _now: Callable[[], datetime]

    if TYPE_CHECKING:  # the engine's own, which these steps call

        def counter(self, model: ModelInfo) -> TokenCounter: ...

        async def list_models(self) -> list[ModelInfo]: ...

        def _notify(self, call: Call, notice: Notice) -> None: ...

        async def _finish(self, call: Call, *, failure: BaseException | None = None) -> Result: ...

    async def _prepare(self, call: Call) -> None:
        """Fit the prompt (maybe on a larger model) and reserve its projected cost.

        The caller logs a fitting failure like any other; a budget refusal is not logged (no
        call was made, and it says nothing about the model's reliability).
        """
        request, info = call.request, call.info
        try:
            prompt = await self._prompt(request, info)
        except QuestionTooLong as exc:
            bigger = await self._larger_model(request, info, exc.needed)
            if bigger is None:
                raise
            prompt = await self._prompt(request, bigger)
            prompt = Prompt(prompt.messages, replace(prompt.report, switched_from=info.id))
            call.info = bigger
        report = call.report = prompt.report
        call.chat = chat_request(
            request,
            prompt.messages,
            max_tokens=min(request.max_tokens, report.window - report.prompt_tokens),
        )
        # an honest upper bound: the provider may count the prompt a little higher than geri
        sent = report.prompt_tokens + input_margin(report.prompt_tokens)
        projected = projected_cost(sent, call.chat.max_tokens, call.info)
        if projected > 0 and call.info.location != "local":  # else nothing to hold
            call.hold = await off_loop(self.ledger.reserve, call.info, projected)
            await self._back_in_budget(call)

    async def _back_in_budget(self, call: Call) -> None:
        """After a budget fallback, say once (across processes) when cloud calls resume."""
        pending = await off_loop(self.store.get_state, BUDGET_FALLBACK_KEY)
        if pending is None or datetime.fromisoformat(pending) > self._now():
            return
        await off_loop(self.store.set_state, BUDGET_FALLBACK_KEY, None)
        if await off_loop(self.store.claim, f"{BUDGET_FALLBACK_KEY}:{pending}"):
            self._notify(
                call,
                Notice(
                    "budget_reset",
                    f"The budget has reset — answering with {describe(call.info)} again.",
                ),
            )

    async def _fall_back(
        self, call: Call, error: BudgetExhausted | Retryable, tried: list[str]
    ) -> ModelInfo:
        """The next model for `call`'s request, with a notice; or re-raise `error`."""
        if isinstance(error, Retryable):
            await self._finish(call, failure=error)

        async def ranked() -> list[ModelInfo]:
            ranking = await self.router.route(replace(call.request, model=None))
            return [c.model for c in ranking.candidates]

        async def pinned(model_id: str) -> ModelInfo:
            return await off_loop(self.registry.get, model_id)

        chosen = await next_model(
            self.settings.fallback, call.info, error, tried, ranked=ranked, pinned=pinned
        )
        if chosen is None:
            raise error
        if isinstance(error, BudgetExhausted):
            until = error.resets_at.isoformat()
            await off_loop(self.store.set_state, BUDGET_FALLBACK_KEY, until)
        self._notify(call, Notice("fallback", fallback_text(call.info, chosen, error, self.ledger)))
        return chosen

    async def _prompt(self, request: Request, info: ModelInfo) -> Prompt:
        counter = self.counter(info)
        return await build_prompt(
            request, info.id, info.context_window, counter, self.settings.prompt
        )

    async def _larger_model(
        self, request: Request, info: ModelInfo, needed: int
    ) -> ModelInfo | None:
        """The smallest-window model of the same kind (local or cloud) the prompt may fit."""
        if request.model is not None or not self.settings.prompt.switch_to_larger_model:
            return None
        share = 1 - self.settings.prompt.response_reserve
        fitting = [
            m
            for m in await self.list_models()
            if m.location == info.location and m.context_window * share >= needed
        ]
        usable = [m for m in fitting if await off_loop(self.router.unusable, m) is None]
        return min(usable, key=lambda m: m.context_window, default=None)
