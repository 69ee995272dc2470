"""Budget periods: when a daily, weekly or monthly budget started and when it starts over.

Periods follow the calendar of one configured time zone (`budgets.timezone`): a day starts at
local midnight, a week on Monday, a month on its first day. Daylight-saving changes are handled
by building each boundary as a local wall-clock time and converting it back to UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import get_args
from zoneinfo import ZoneInfo

from geri.types import Period

PERIODS: tuple[Period, ...] = get_args(Period)


def period_start(period: Period, now: datetime, zone: ZoneInfo) -> datetime:
    """The moment (UTC) the `period` containing `now` began.

    >>> period_start("monthly", datetime(2026, 11, 25, 12, tzinfo=UTC), ZoneInfo("UTC"))
    datetime.datetime(2026, 11, 1, 0, 0, tzinfo=datetime.timezone.utc)
    """
    local = now.astimezone(zone)
    day = local.date()
    if period == "weekly":
        day -= timedelta(days=day.weekday())
    elif period == "monthly":
        day = day.replace(day=1)
    return datetime(day.year, day.month, day.day, tzinfo=zone).astimezone(UTC)


def next_reset(period: Period, now: datetime, zone: ZoneInfo) -> datetime:
    """The moment (UTC) the `period` containing `now` ends and the next one begins."""
    start = period_start(period, now, zone).astimezone(zone).date()
    if period == "daily":
        day = start + timedelta(days=1)
    elif period == "weekly":
        day = start + timedelta(days=7)
    else:
        day = (start.replace(day=28) + timedelta(days=4)).replace(day=1)
    return datetime(day.year, day.month, day.day, tzinfo=zone).astimezone(UTC)


def describe_period(period: Period, now: datetime, zone: ZoneInfo) -> str:
    """The period containing `now` in words: 'November', 'the week of 23 November', or
    '25 November'."""
    start = period_start(period, now, zone).astimezone(zone)
    if period == "monthly":
        return f"{start:%B}"
    if period == "weekly":
        return f"the week of {start.day} {start:%B}"
    return f"{start.day} {start:%B}"


def describe_moment(moment: datetime, zone: ZoneInfo) -> str:
    """A reset time in words, local to `zone`: '1 December', or '1 December 06:30' off midnight."""
    local = moment.astimezone(zone)
    text = f"{local.day} {local:%B}"
    if local.hour or local.minute:
        text += f" {local:%H:%M}"
    return text


def epoch_micros(moment: datetime) -> int:
    """`moment` as integer microseconds since the Unix epoch (how the ledger keeps time)."""
    delta = moment.astimezone(UTC) - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
