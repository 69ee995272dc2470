"""The budget ledger: spending limits per period, reserved before each cloud call.

A call's projected cost (`projected_cost`) is reserved in the store before the call and
settled to its real cost after it, inside one transaction that no other writer shares (see
`Store.reserve`), so any number of processes or daemons on one store cannot overspend a limit
together. Limits are global (every cloud provider, scope '*') or per provider, and reset on the
calendar of `budgets.timezone`. Crossing an alert share of a limit (50/80/100 % by default)
produces one notice per limit and period, however many processes see it.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from geri.cost import dollars
from geri.cost.periods import (
    PERIODS,
    describe_moment,
    describe_period,
    epoch_micros,
    next_reset,
    period_start,
)
from geri.errors import BudgetExhausted, InputError
from geri.settings import Budgets, live
from geri.specs import PROVIDERS
from geri.store.base import ALL_CLOUD, BudgetBook, BudgetLimit, Reservation, Spend
from geri.types import ModelInfo, Period


@dataclass(frozen=True, slots=True)
class Hold:
    """A reservation the engine must settle once its call is over."""

    id: str
    provider: str
    amount_micros: int


@dataclass(frozen=True, slots=True)
class BudgetState:
    """One limit right now: what counts against it, what is left, when it starts over."""

    limit: BudgetLimit
    spend: Spend
    period_label: str
    resets_at: datetime

    @property
    def remaining_micros(self) -> int:
        return max(self.limit.limit_micros - self.spend.total_micros, 0)

    @property
    def share(self) -> float:
        return self.spend.total_micros / self.limit.limit_micros if self.limit.limit_micros else 1.0

    def as_dict(self) -> dict[str, object]:
        return {
            "scope": self.limit.scope,
            "period": self.limit.period,
            "limit_usd": self.limit.limit_micros / 1_000_000,
            "spent_usd": self.spend.settled_micros / 1_000_000,
            "reserved_usd": self.spend.reserved_micros / 1_000_000,
            "remaining_usd": self.remaining_micros / 1_000_000,
            "used": round(self.share, 4),
            "resets_at": self.resets_at.isoformat(),
        }


def scope_label(scope: str) -> str:
    """'Cloud' for every provider together, else the provider's name ('OpenAI')."""
    if scope == ALL_CLOUD:
        return "Cloud"
    spec = PROVIDERS.get(scope)
    return spec.label if spec else scope


class Ledger:
    """Budgets on top of a store; `now` is injectable so tests can move through periods."""

    def __init__(
        self,
        store: BudgetBook,
        settings: Budgets | Callable[[], Budgets],
        now: Callable[[], datetime],
    ) -> None:
        self.store = store
        self._settings = live(settings)
        self._now = now

    @property
    def settings(self) -> Budgets:
        return self._settings()

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.settings.timezone)

    def set_limit(self, scope: str, period: str, micros: int) -> BudgetLimit:
        """Set (or replace) the limit of `scope` for `period`."""
        limit = BudgetLimit(scope, _period(period), micros)
        if micros < 0:
            raise InputError("A budget limit cannot be negative.")
        if scope != ALL_CLOUD and scope not in PROVIDERS:
            raise InputError(
                f"Unknown provider {scope!r}: choose one of {', '.join(sorted(PROVIDERS))}."
            )
        self.store.set_budget(limit)
        return limit

    def remove_limit(self, scope: str, period: str) -> bool:
        return self.store.remove_budget(scope, _period(period))

    def status(self) -> list[BudgetState]:
        """Every limit with its spend in the current period."""
        now = self._now()
        states = []
        for limit in self.store.budgets():
            since = period_start(limit.period, now, self.zone)
            states.append(
                BudgetState(
                    limit,
                    self.store.spend(limit.scope, epoch_micros(since), epoch_micros(now)),
                    describe_period(limit.period, now, self.zone),
                    next_reset(limit.period, now, self.zone),
                )
            )
        return states

    def reserve(self, info: ModelInfo, amount_micros: int) -> Hold | None:
        """Hold `amount_micros` for a call to `info`, or raise `BudgetExhausted`.

        Local models, and calls that cannot cost anything, need no hold (None).
        """
        if info.location == "local" or amount_micros <= 0:
            return None
        now = self._now()
        at = epoch_micros(now)
        expires = epoch_micros(now + timedelta(seconds=self.settings.reservation_timeout))
        reservation = Reservation(
            uuid.uuid4().hex, info.provider, info.id, amount_micros, at, expires
        )
        since = {p: epoch_micros(period_start(p, now, self.zone)) for p in PERIODS}
        refusal = self.store.reserve(reservation, since)
        if refusal is None:
            return Hold(reservation.id, info.provider, amount_micros)
        limit = refusal.limit
        resets = next_reset(limit.period, now, self.zone)
        raise BudgetExhausted(
            f"{self.reached(limit.scope, limit.period)}: {dollars(refusal.spent_micros)} of "
            f"{dollars(limit.limit_micros)} is spent or reserved, and this call to {info.id} "
            f"may cost up to {dollars(amount_micros)}. It resets on "
            f"{describe_moment(resets, self.zone)}; see 'geri budget status', or raise it "
            f"with 'geri budget set {limit.period} AMOUNT'"
            + ("" if limit.scope == ALL_CLOUD else f" --provider {limit.scope}")
            + ".",
            scope=limit.scope,
            period=limit.period,
            resets_at=resets,
        )

    def reached(self, scope: str, period: Period) -> str:
        """'Cloud budget for November reached', for the period containing now."""
        label = describe_period(period, self._now(), self.zone)
        return f"{scope_label(scope)} budget for {label} reached"

    def until(self, moment: datetime) -> str:
        return describe_moment(moment, self.zone)

    def settle(self, hold: Hold, cost_micros: int) -> list[str]:
        """Record what the held call really cost; returns any budget alerts it set off."""
        cost_micros = max(0, cost_micros)  # the ledger never goes down
        self.store.settle(hold.id, cost_micros)
        return self._alerts(hold.provider) if cost_micros > 0 else []

    def _alerts(self, provider: str) -> list[str]:
        alerts = []
        for state in self.status():
            if state.limit.scope not in (ALL_CLOUD, provider):
                continue
            crossed = [a for a in sorted(self.settings.alerts) if state.share >= a]
            if not crossed:
                continue
            since = epoch_micros(period_start(state.limit.period, self._now(), self.zone))
            claimed = [
                a
                for a in crossed
                if self.store.claim(f"alert:{state.limit.scope}:{state.limit.period}:{since}:{a}")
            ]
            if claimed:
                alerts.append(self._alert_text(state, max(claimed)))
        return alerts

    def _alert_text(self, state: BudgetState, share: float) -> str:
        limit = state.limit
        return (
            f"{scope_label(limit.scope)} budget for {state.period_label} is {share:.0%} used: "
            f"{dollars(state.spend.total_micros)} of {dollars(limit.limit_micros)} "
            f"({limit.period}, resets on {describe_moment(state.resets_at, self.zone)})."
        )


def _period(text: str) -> Period:
    for period in PERIODS:
        if text == period:
            return period
    raise InputError(f"Unknown budget period {text!r}: use one of {', '.join(PERIODS)}.")
