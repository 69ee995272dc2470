"""Cost arithmetic, the price table with its overrides, and calendar budget periods."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from geri.cost import dollars, dollars_to_micros, projected_cost, request_cost
from geri.cost.periods import describe_period, next_reset, period_start
from geri.registry import ModelRegistry
from geri.settings import CloudModel, Price, Settings
from geri.store import open_store
from geri.types import ModelInfo, Usage

GPT = ModelInfo(
    "gpt", "openai", "gpt-x", location="cloud", input_price=2_500_000, output_price=10_000_000
)  # $2.50 and $10 per million tokens


def test_cost_of_a_request_in_micro_dollars() -> None:
    assert request_cost(Usage(1_000_000, 0), GPT) == 2_500_000
    assert request_cost(Usage(1000, 500), GPT) == 2500 + 5000
    assert request_cost(Usage(0, 0), GPT) == 0
    assert request_cost(Usage(123, 45), ModelInfo("local", "llama.cpp", "x")) == 0


def test_fractions_of_a_micro_dollar_round_up_so_spend_never_hides() -> None:
    assert request_cost(Usage(1, 0), GPT) == 3  # 2.5 micro-dollars
    assert request_cost(Usage(1, 1), GPT) == 13  # 12.5
    # summing many tiny calls never drifts below the true total
    assert sum(request_cost(Usage(1, 0), GPT) for _ in range(1000)) >= 2500


def test_the_projection_bounds_the_real_cost() -> None:
    assert projected_cost(1000, 200, GPT) == request_cost(Usage(1000, 200), GPT)
    assert projected_cost(1000, 200, GPT) >= request_cost(Usage(1000, 37), GPT)


def test_money_for_people() -> None:
    assert dollars(5_000_000) == "$5.00"
    assert dollars(1_234_567) == "$1.23"
    assert dollars(1_500) == "$0.0015"
    assert dollars_to_micros(Decimal("12.50")) == 12_500_000
    assert dollars_to_micros(Decimal("0.0000004")) == 0


def test_shipped_prices_and_overrides(tmp_path: Path) -> None:
    own = CloudModel(
        kind="cloud",
        id="mine",
        provider="openai",
        model="m",
        input_price=Decimal("1.5"),
        output_price=Decimal(3),
    )
    settings = Settings(
        models=(own,), prices={"gpt-4o": Price(input=Decimal(1), output=Decimal(2))}
    )
    registry = ModelRegistry(settings, open_store(tmp_path / "g.db"))
    shipped = ModelRegistry(Settings(), open_store(tmp_path / "h.db")).get("gpt-4o")
    assert shipped.input_price > 0
    assert shipped.output_price > shipped.input_price
    overridden = registry.get("gpt-4o")
    assert (overridden.input_price, overridden.output_price) == (1_000_000, 2_000_000)
    assert next(m for m in registry.models() if m.id == "gpt-4o") == overridden
    assert (registry.get("mine").input_price, registry.get("mine").output_price) == (
        1_500_000,
        3_000_000,
    )


UTC_ZONE = ZoneInfo("UTC")
NEW_YORK = ZoneInfo("America/New_York")


@pytest.mark.parametrize(
    ("period", "start", "reset"),
    [
        ("daily", datetime(2026, 11, 25, tzinfo=UTC), datetime(2026, 11, 26, tzinfo=UTC)),
        ("weekly", datetime(2026, 11, 23, tzinfo=UTC), datetime(2026, 11, 30, tzinfo=UTC)),
        ("monthly", datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC)),
    ],
)
def test_calendar_periods(period: str, start: datetime, reset: datetime) -> None:
    now = datetime(2026, 11, 25, 13, 45, tzinfo=UTC)  # a Wednesday
    assert period_start(period, now, UTC_ZONE) == start  # type: ignore[arg-type]
    assert next_reset(period, now, UTC_ZONE) == reset  # type: ignore[arg-type]


def test_december_rolls_over_into_the_next_year() -> None:
    now = datetime(2026, 12, 31, 23, 59, tzinfo=UTC)
    assert next_reset("monthly", now, UTC_ZONE) == datetime(2027, 1, 1, tzinfo=UTC)
    assert describe_period("monthly", now, UTC_ZONE) == "December"


def test_periods_follow_the_configured_time_zone() -> None:
    # 02:00 UTC on 1 November is still 31 October in New York (EDT, UTC-4)
    now = datetime(2026, 11, 1, 2, tzinfo=UTC)
    assert period_start("monthly", now, NEW_YORK) == datetime(2026, 10, 1, 4, tzinfo=UTC)
    assert next_reset("monthly", now, NEW_YORK) == datetime(2026, 11, 1, 4, tzinfo=UTC)
    assert describe_period("monthly", now, NEW_YORK) == "October"


def test_a_day_with_a_daylight_saving_change_is_25_hours_long() -> None:
    now = datetime(2026, 11, 1, 12, tzinfo=UTC)  # DST ends in New York at 06:00 UTC
    start = period_start("daily", now, NEW_YORK)
    reset = next_reset("daily", now, NEW_YORK)
    assert start == datetime(2026, 11, 1, 4, tzinfo=UTC)
    assert (reset - start).total_seconds() == 25 * 3600
