"""Every query of the store, in SQL that SQLite and PostgreSQL both speak.

Written once, with `?` placeholders; what the two spell differently (column types, the
insertion-order column, how a moment is kept) is the store's `Dialect`. Each store supplies a
connection: `_tx`, which runs a function inside one transaction that excludes other writers
of the budget (SQLite: `BEGIN IMMEDIATE` locks the database; PostgreSQL: `_FOR_UPDATE` adds row
locks on the limits a reservation touches, so reservations against different providers only meet
on the shared all-cloud limit), and `_query` for one statement.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar, cast

from geri.store.base import (
    ALL_CLOUD,
    FINISHED_COLUMNS,
    BudgetLimit,
    CacheStats,
    Finished,
    HealthCheck,
    Outcome,
    Refusal,
    RequestRecord,
    Reservation,
    Spend,
    model_from_json,
    model_to_json,
)
from geri.store.migrations import Dialect
from geri.types import ModelInfo, Period

Rows = list[tuple[Any, ...]]
Execute = Callable[[str, Sequence[Any]], Rows]
T = TypeVar("T")
# request-log rows per INSERT statement: 17 values each stay under 999, the oldest SQLite's limit
# on a statement's parameters
ROWS_PER_INSERT = 999 // len(RequestRecord.__slots__)

_SPENT = (
    "SELECT COALESCE(SUM(CASE WHEN settled = 1 THEN amount_micros ELSE 0 END), 0), "
    "COALESCE(SUM(CASE WHEN settled = 0 THEN amount_micros ELSE 0 END), 0) FROM ledger "
    "WHERE at_us >= ? AND (settled = 1 OR expires_us > ?) AND (? = '*' OR provider = ?)"
)


class SqlStore(ABC):
    """`Store`, on top of a connection's `_tx` and `_query` and the store's `dialect`."""

    dialect: Dialect
    _FOR_UPDATE = ""

    @abstractmethod
    def _tx(self, work: Callable[[Execute], T]) -> T:
        """`work(execute)` in one transaction that excludes other writers of the budget."""

    @abstractmethod
    def _query(self, sql: str, params: Sequence[Any] = ()) -> Rows:
        """One statement; rows, or `[(rowcount,)]` for a statement that returns none."""

    @abstractmethod
    def close(self) -> None: ...

    def record_request(self, record: RequestRecord) -> None:
        self.record_requests([record])

    def record_requests(self, records: Sequence[RequestRecord]) -> None:
        """Insert `records`, all or none. Up to `ROWS_PER_INSERT` go in one multi-row INSERT
        (atomic on its own, so no transaction around it); more, in one transaction."""
        names = RequestRecord.__slots__
        values = [
            [
                self.dialect.moment_in(record.created_at) if k == "created_at" else v
                for k, v in ((k, getattr(record, k)) for k in names)
            ]
            for record in records
        ]
        row = f"({', '.join('?' * len(names))})"
        into = f"INSERT INTO requests ({', '.join(names)}) VALUES "

        def insert(execute: Execute, rows: Sequence[list[Any]]) -> None:
            execute(into + ", ".join([row] * len(rows)), [v for one in rows for v in one])

        if len(values) <= ROWS_PER_INSERT:
            if values:  # one statement: the common case, and the cheapest for the writer
                insert(self._query, values)
            return

        def all_parts(execute: Execute) -> None:
            for i in range(0, len(values), ROWS_PER_INSERT):
                insert(execute, values[i : i + ROWS_PER_INSERT])

        self._tx(all_parts)

    def recent_requests(self, limit: int = 20) -> list[RequestRecord]:
        names = RequestRecord.__slots__
        rows = self._query(
            f"SELECT {', '.join(names)} FROM requests "
            f"ORDER BY created_at DESC, {self.dialect.order} DESC LIMIT ?",
            (max(limit, 0),),
        )
        found = [dict(zip(names, values, strict=True)) for values in rows]
        return [
            RequestRecord(
                **{
                    **row,
                    "created_at": self.dialect.moment_out(row["created_at"]),
                    "streamed": bool(row["streamed"]),
                    "cached": bool(row["cached"]),
                }
            )
            for row in found
        ]

    def prune_requests(self, before: datetime) -> int:
        [(count,)] = self._query(
            "DELETE FROM requests WHERE created_at < ?", (self.dialect.moment_in(before),)
        )
        return int(count)

    def request_outcomes(self, model_id: str, limit: int = 200) -> list[Outcome]:
        rows = self._query(
            "SELECT status, latency_ms, ttft_ms FROM requests WHERE model = ? "
            f"ORDER BY created_at DESC, {self.dialect.order} DESC LIMIT ?",
            (model_id, limit),
        )
        return [Outcome(status, latency, ttft) for status, latency, ttft in rows]

    def add_model(self, info: ModelInfo) -> bool:
        [(count,)] = self._query(
            "INSERT INTO models (id, provider, source, info, added_at) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (id) DO NOTHING",
            self._model_row(info),
        )
        return bool(count == 1)

    def put_model(self, info: ModelInfo) -> None:
        self._query(
            "INSERT INTO models (id, provider, source, info, added_at) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (id) DO UPDATE SET provider = excluded.provider, "
            "source = excluded.source, info = excluded.info",
            self._model_row(info),
        )

    def remove_model(self, model_id: str) -> bool:
        [(count,)] = self._query("DELETE FROM models WHERE id = ?", (model_id,))
        return bool(count == 1)

    def get_model(self, model_id: str) -> ModelInfo | None:
        rows = self._query("SELECT info FROM models WHERE id = ?", (model_id,))
        return model_from_json(rows[0][0]) if rows else None

    def list_models(self) -> list[ModelInfo]:
        rows = self._query(f"SELECT info FROM models ORDER BY added_at, {self.dialect.order}")
        return [model_from_json(r[0]) for r in rows]

    def _model_row(self, info: ModelInfo) -> tuple[Any, ...]:
        added = self.dialect.moment_in(datetime.now(UTC))
        return (info.id, info.provider, info.source, model_to_json(info), added)

    def record_health(self, check: HealthCheck) -> None:
        self._query(
            "INSERT INTO health (model_id, checked_at, ok, latency_ms, error) "
            "VALUES (?, ?, ?, ?, ?)",
            (
                check.model_id,
                self.dialect.moment_in(check.checked_at),
                check.ok,
                check.latency_ms,
                check.error,
            ),
        )

    def health_history(self, model_id: str, limit: int = 100) -> list[HealthCheck]:
        rows = self._query(
            "SELECT model_id, checked_at, ok, latency_ms, error FROM health WHERE model_id = ? "
            f"ORDER BY checked_at DESC, {self.dialect.order} DESC LIMIT ?",
            (model_id, limit),
        )
        moment = self.dialect.moment_out
        return [HealthCheck(m, moment(at), bool(ok), lat, err) for m, at, ok, lat, err in rows]

    def get_state(self, key: str) -> str | None:
        rows = self._query("SELECT value FROM state WHERE key = ?", (key,))
        return str(rows[0][0]) if rows else None

    def set_state(self, key: str, value: str | None) -> None:
        if value is None:
            self._query("DELETE FROM state WHERE key = ?", (key,))
        else:
            self._query(
                "INSERT INTO state (key, value) VALUES (?, ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (key, value),
            )

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
            (self.dialect.moment_in(since),),
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
