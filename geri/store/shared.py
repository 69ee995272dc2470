"""The budget ledger, the response cache and the metrics query, in SQL that SQLite and
PostgreSQL both speak.

Written once, with `?` placeholders; each store supplies `_tx`, which runs a function inside
one transaction that excludes other writers of the budget (SQLite: `BEGIN IMMEDIATE` locks
the database; PostgreSQL: `_FOR_UPDATE` adds row locks on the limits a reservation touches,
so reservations against different providers only meet on the shared all-cloud limit).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, TypeVar, cast

from geri.store.base import (
    ALL_CLOUD,
    FINISHED_COLUMNS,
    BudgetLimit,
    CacheStats,
    Finished,
    Refusal,
    Reservation,
    Spend,
)
from geri.types import Period

Rows = list[tuple[Any, ...]]
Execute = Callable[[str, Sequence[Any]], Rows]
T = TypeVar("T")

_SPENT = (
    "SELECT COALESCE(SUM(CASE WHEN settled = 1 THEN amount_micros ELSE 0 END), 0), "
    "COALESCE(SUM(CASE WHEN settled = 0 THEN amount_micros ELSE 0 END), 0) FROM ledger "
    "WHERE at_us >= ? AND (settled = 1 OR expires_us > ?) AND (? = '*' OR provider = ?)"
)


class LedgerAndCache:
    """Budget, cache and metrics methods of `Store`, on top of a store's `_tx` and `_query`."""

    _FOR_UPDATE = ""

    def _moment(self, moment: datetime) -> Any:
        """`moment` as the store compares it with `requests.created_at`."""
        return moment

    def _tx(self, work: Callable[[Execute], T]) -> T:
        raise NotImplementedError

    def _query(self, sql: str, params: Sequence[Any] = ()) -> Rows:
        return self._tx(lambda execute: execute(sql, params))

    def claim(self, key: str) -> bool:
        [(count,)] = self._query(
            "INSERT INTO claims (key, at) VALUES (?, CURRENT_TIMESTAMP) "
            "ON CONFLICT (key) DO NOTHING",
            (key,),
        )
        return bool(count == 1)

    def set_budget(self, limit: BudgetLimit) -> None:
        self._query(
            "INSERT INTO budgets (scope, period, limit_micros) VALUES (?, ?, ?) "
            "ON CONFLICT (scope, period) DO UPDATE SET limit_micros = excluded.limit_micros",
            (limit.scope, limit.period, limit.limit_micros),
        )

    def remove_budget(self, scope: str, period: Period) -> bool:
        [(count,)] = self._query(
            "DELETE FROM budgets WHERE scope = ? AND period = ?", (scope, period)
        )
        return bool(count == 1)

    def budgets(self) -> list[BudgetLimit]:
        rows = self._query("SELECT scope, period, limit_micros FROM budgets ORDER BY scope, period")
        return [BudgetLimit(scope, period, int(limit)) for scope, period, limit in rows]

    def reserve(self, reservation: Reservation, since_us: dict[Period, int]) -> Refusal | None:
        r = reservation

        def work(execute: Execute) -> Refusal | None:
            limits = execute(
                "SELECT scope, period, limit_micros FROM budgets WHERE scope IN (?, ?) "
                "ORDER BY scope, period" + self._FOR_UPDATE,
                (ALL_CLOUD, r.provider),
            )
            for scope, period, limit in limits:
                spent = _spend(execute, scope, since_us[period], r.at_us)
                if spent.total_micros + r.amount_micros > limit:
                    return Refusal(BudgetLimit(scope, period, int(limit)), spent.total_micros)
            execute(
                "INSERT INTO ledger (id, at_us, provider, model, amount_micros, settled, "
                "expires_us) VALUES (?, ?, ?, ?, ?, 0, ?)",
                (r.id, r.at_us, r.provider, r.model, r.amount_micros, r.expires_us),
            )
            return None

        return self._tx(work)

    def settle(self, reservation_id: str, amount_micros: int) -> None:
        self._query(
            "UPDATE ledger SET amount_micros = ?, settled = 1 WHERE id = ?",
            (amount_micros, reservation_id),
        )

    def spend(self, scope: str, since_us: int, now_us: int) -> Spend:
        return self._tx(lambda execute: _spend(execute, scope, since_us, now_us))

    def cache_get(self, key: str, now_us: int) -> str | None:
        rows = self._query(
            "SELECT value FROM cache WHERE key = ? AND expires_us > ?", (key, now_us)
        )
        return cast(str, rows[0][0]) if rows else None

    def cache_put(
        self, key: str, model_id: str, value: str, now_us: int, expires_us: int, keep: int
    ) -> None:
        def work(execute: Execute) -> None:
            execute(
                "INSERT INTO cache (key, model, created_us, expires_us, value) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (key) DO UPDATE SET model = excluded.model, "
                "created_us = excluded.created_us, expires_us = excluded.expires_us, "
                "value = excluded.value",
                (key, model_id, now_us, expires_us, value),
            )
            execute("DELETE FROM cache WHERE expires_us <= ?", (now_us,))
            execute(
                "DELETE FROM cache WHERE created_us < (SELECT created_us FROM cache "
                "ORDER BY created_us DESC LIMIT 1 OFFSET ?)",
                (keep - 1,),
            )

        self._tx(work)

    def cache_clear(self, model_id: str | None = None) -> int:
        if model_id is None:
            [(count,)] = self._query("DELETE FROM cache", ())
        else:
            [(count,)] = self._query("DELETE FROM cache WHERE model = ?", (model_id,))
        return int(count)

    def finished_since(self, since: datetime) -> list[Finished]:
        rows = self._query(
            f"SELECT {FINISHED_COLUMNS} FROM requests WHERE created_at >= ? ORDER BY created_at",
            (self._moment(since),),
        )
        return [Finished(m, p, s, lat, t, i, o, c, bool(h)) for m, p, s, lat, t, i, o, c, h in rows]

    def cache_stats(self, now_us: int) -> CacheStats:
        [(entries, size, expired)] = self._query(
            "SELECT COUNT(*), COALESCE(SUM(LENGTH(value)), 0), "
            "COALESCE(SUM(CASE WHEN expires_us <= ? THEN 1 ELSE 0 END), 0) FROM cache",
            (now_us,),
        )
        [(hits, requests)] = self._query(
            "SELECT COALESCE(SUM(CASE WHEN cached THEN 1 ELSE 0 END), 0), COUNT(*) "
            "FROM requests WHERE status = 'ok'",
            (),
        )
        return CacheStats(int(entries), int(size), int(expired), int(hits), int(requests))


def _spend(execute: Execute, scope: str, since_us: int, now_us: int) -> Spend:
    [(settled, reserved)] = execute(_SPENT, (since_us, now_us, scope, scope))
    return Spend(int(settled), int(reserved))
