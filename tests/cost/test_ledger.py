"""The budget ledger on SQLite and PostgreSQL: limits, reservations, settling, resets, alerts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from geri.cost.ledger import Ledger
from geri.errors import BudgetExhausted, InputError
from geri.settings import Budgets
from geri.store import Store, open_store
from geri.types import ModelInfo

DOLLAR = 1_000_000
GPT = ModelInfo("gpt", "openai", "gpt-x", location="cloud")
CLAUDE = ModelInfo("claude", "anthropic", "claude-x", location="cloud")
LOCAL = ModelInfo("smol", "llama.cpp", "/m.gguf")


class Now:
    def __init__(self) -> None:
        self.at = datetime(2026, 11, 25, 12, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.at


@pytest.fixture
def now() -> Now:
    return Now()


@pytest.fixture
def ledger(store: Store, now: Now) -> Ledger:
    return Ledger(store, Budgets(), now)


def test_limits_are_set_listed_and_removed(ledger: Ledger) -> None:
    ledger.set_limit("*", "monthly", 20 * DOLLAR)
    ledger.set_limit("openai", "daily", 2 * DOLLAR)
    ledger.set_limit("openai", "daily", 3 * DOLLAR)  # replaces
    assert [(s.limit.scope, s.limit.period, s.limit.limit_micros) for s in ledger.status()] == [
        ("*", "monthly", 20 * DOLLAR),
        ("openai", "daily", 3 * DOLLAR),
    ]
    assert ledger.remove_limit("openai", "daily")
    assert not ledger.remove_limit("openai", "daily")
    with pytest.raises(InputError, match="daily, weekly, monthly"):
        ledger.set_limit("*", "yearly", DOLLAR)
    with pytest.raises(InputError, match="Unknown provider 'opnai'"):
        ledger.set_limit("opnai", "daily", DOLLAR)


def test_a_reservation_that_would_pass_the_limit_is_refused(ledger: Ledger) -> None:
    ledger.set_limit("*", "monthly", 5 * DOLLAR)
    assert ledger.reserve(GPT, 3 * DOLLAR) is not None
    with pytest.raises(BudgetExhausted) as refused:
        ledger.reserve(GPT, 3 * DOLLAR)  # 3 reserved + 3 > 5
    error = refused.value
    assert (error.scope, error.period) == ("*", "monthly")
    assert error.resets_at == datetime(2026, 12, 1, tzinfo=UTC)
    assert str(error).startswith("Cloud budget for November reached: $3.00 of $5.00")
    assert "resets on 1 December" in str(error)
    assert "geri budget set monthly AMOUNT" in str(error)
    assert ledger.reserve(GPT, 2 * DOLLAR) is not None  # exactly up to the limit is fine


def test_settling_replaces_the_projection_with_the_real_cost(ledger: Ledger) -> None:
    ledger.set_limit("*", "daily", 5 * DOLLAR)
    hold = ledger.reserve(GPT, 4 * DOLLAR)
    assert hold is not None
    [state] = ledger.status()
    assert (state.spend.settled_micros, state.spend.reserved_micros) == (0, 4 * DOLLAR)
    ledger.settle(hold, DOLLAR)
    [state] = ledger.status()
    assert (state.spend.settled_micros, state.spend.reserved_micros) == (DOLLAR, 0)
    assert state.remaining_micros == 4 * DOLLAR
    assert ledger.reserve(GPT, 4 * DOLLAR) is not None


def test_provider_limits_apply_to_that_provider_and_the_global_one_to_all(
    ledger: Ledger,
) -> None:
    ledger.set_limit("openai", "daily", 1 * DOLLAR)
    ledger.set_limit("*", "daily", 3 * DOLLAR)
    assert ledger.reserve(GPT, DOLLAR) is not None
    with pytest.raises(BudgetExhausted) as refused:
        ledger.reserve(GPT, 1)
    assert refused.value.scope == "openai"
    assert "--provider openai" in str(refused.value)
    assert ledger.reserve(CLAUDE, 2 * DOLLAR) is not None
    with pytest.raises(BudgetExhausted) as refused:
        ledger.reserve(CLAUDE, 1)
    assert refused.value.scope == "*"


def test_local_models_and_free_calls_need_no_reservation(ledger: Ledger) -> None:
    ledger.set_limit("*", "daily", 0)
    assert ledger.reserve(LOCAL, 10 * DOLLAR) is None
    assert ledger.reserve(GPT, 0) is None


def test_the_budget_starts_over_with_the_next_period(ledger: Ledger, now: Now) -> None:
    ledger.set_limit("*", "monthly", 5 * DOLLAR)
    hold = ledger.reserve(GPT, 5 * DOLLAR)
    assert hold is not None
    ledger.settle(hold, 5 * DOLLAR)
    now.at = datetime(2026, 11, 30, 23, 59, 59, tzinfo=UTC)
    with pytest.raises(BudgetExhausted):
        ledger.reserve(GPT, 1)
    now.at = datetime(2026, 12, 1, tzinfo=UTC)
    [state] = ledger.status()
    assert state.spend.total_micros == 0
    assert state.resets_at == datetime(2027, 1, 1, tzinfo=UTC)
    assert ledger.reserve(GPT, 5 * DOLLAR) is not None


def test_an_abandoned_reservation_stops_counting_after_its_timeout(store: Store, now: Now) -> None:
    ledger = Ledger(store, Budgets(reservation_timeout=60), now)
    ledger.set_limit("*", "daily", 5 * DOLLAR)
    assert ledger.reserve(GPT, 5 * DOLLAR) is not None  # its process dies: never settled
    with pytest.raises(BudgetExhausted):
        ledger.reserve(GPT, 1)
    now.at += timedelta(seconds=61)
    assert ledger.reserve(GPT, DOLLAR) is not None


def test_alerts_fire_once_per_threshold_and_period_across_processes(
    store: Store, location: str, now: Now
) -> None:
    ledger = Ledger(store, Budgets(), now)
    other = Ledger(open_store(location), Budgets(), now)  # a second process on the same store
    ledger.set_limit("*", "monthly", 10 * DOLLAR)

    def spend(on: Ledger, amount: int) -> list[str]:
        hold = on.reserve(GPT, amount)
        assert hold is not None
        return on.settle(hold, amount)

    assert spend(ledger, 4 * DOLLAR) == []
    assert spend(other, DOLLAR) == [
        "Cloud budget for November is 50% used: $5.00 of $10.00 (monthly, resets on 1 December)."
    ]
    assert spend(ledger, DOLLAR) == []  # 60 %: already told
    [eighty] = spend(ledger, 3 * DOLLAR)  # 90 %
    assert "is 80% used: $9.00" in eighty
    [full] = spend(other, DOLLAR)
    assert "is 100% used" in full
    now.at = datetime(2026, 12, 2, tzinfo=UTC)
    assert "December is 50% used" in spend(ledger, 5 * DOLLAR)[0]  # a new period alerts again
