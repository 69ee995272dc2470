"""The PostgreSQL store: one registry, one request log and one budget for several geri daemons.

Chosen with a `postgresql://` URL (`GERI_STORE`, or `store` in the settings). It implements the
same `Store` protocol as SQLite, and its migrations carry the same names in the same order; they
run inside one transaction holding a transaction-scoped advisory lock, so daemons starting
together migrate the database exactly once. One connection per store object, in autocommit
mode, guarded by a lock, like the SQLite store. The URL's password never appears in a message.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Sequence
from datetime import UTC
from typing import Any, TypeVar

from geri.errors import StoreError
from geri.store.base import (
    HealthCheck,
    Outcome,
    RequestRecord,
    model_from_json,
    model_to_json,
)
from geri.store.shared import Execute, LedgerAndCache, Rows
from geri.types import ModelInfo

T = TypeVar("T")
MIGRATION_LOCK = 0x6765726901  # any constant shared by every geri process


def m001_initial(cur: Any) -> None:
    cur.execute(
        """
        CREATE TABLE requests (
            id TEXT PRIMARY KEY,
            seq BIGSERIAL,
            created_at TIMESTAMPTZ NOT NULL,
            model TEXT NOT NULL,
            provider TEXT,
            prompt TEXT,
            response TEXT,
            input_tokens BIGINT,
            output_tokens BIGINT,
            latency_ms DOUBLE PRECISION,
            ttft_ms DOUBLE PRECISION,
            cost_micros BIGINT,
            status TEXT NOT NULL,
            error TEXT,
            streamed BOOLEAN
        )
        """
    )
    cur.execute("CREATE INDEX requests_created_at ON requests (created_at)")
    cur.execute(
        """
        CREATE TABLE models (
            id TEXT PRIMARY KEY,
            seq BIGSERIAL,
            provider TEXT NOT NULL,
            source TEXT NOT NULL,
            info TEXT NOT NULL,
            added_at TIMESTAMPTZ NOT NULL DEFAULT now()
        )
        """
    )
    cur.execute("CREATE TABLE state (key TEXT PRIMARY KEY, value TEXT)")


def m002_health(cur: Any) -> None:
    cur.execute(
        """
        CREATE TABLE health (
            seq BIGSERIAL PRIMARY KEY,
            model_id TEXT NOT NULL,
            checked_at TIMESTAMPTZ NOT NULL,
            ok BOOLEAN NOT NULL,
            latency_ms DOUBLE PRECISION,
            error TEXT
        )
        """
    )
    cur.execute("CREATE INDEX health_model ON health (model_id, checked_at)")
    cur.execute("CREATE INDEX requests_model ON requests (model, created_at)")


def m003_budgets_and_cache(cur: Any) -> None:
    cur.execute("ALTER TABLE requests ADD COLUMN cached BOOLEAN NOT NULL DEFAULT false")
    cur.execute(
        """
        CREATE TABLE budgets (
            scope TEXT NOT NULL,
            period TEXT NOT NULL,
            limit_micros BIGINT NOT NULL,
            PRIMARY KEY (scope, period)
        )
        """
    )
    cur.execute(
        """
        CREATE TABLE ledger (
            id TEXT PRIMARY KEY,
            at_us BIGINT NOT NULL,
            provider TEXT NOT NULL,
            model TEXT,
            amount_micros BIGINT NOT NULL,
            settled SMALLINT NOT NULL,
            expires_us BIGINT NOT NULL
        )
        """
    )
    cur.execute("CREATE INDEX ledger_at ON ledger (at_us)")
    cur.execute("CREATE TABLE claims (key TEXT PRIMARY KEY, at TIMESTAMPTZ)")
    cur.execute(
        """
        CREATE TABLE cache (
            key TEXT PRIMARY KEY,
            model TEXT NOT NULL,
            created_us BIGINT NOT NULL,
            expires_us BIGINT NOT NULL,
            value TEXT NOT NULL
        )
        """
    )
    cur.execute("CREATE INDEX cache_created ON cache (created_us)")
    cur.execute("CREATE INDEX cache_model ON cache (model)")


def m004_trace_ids(cur: Any) -> None:
    cur.execute("ALTER TABLE requests ADD COLUMN trace_id TEXT")


MIGRATIONS: list[Callable[[Any], None]] = [
    m001_initial,
    m002_health,
    m003_budgets_and_cache,
    m004_trace_ids,
]


def safe_url(url: str) -> str:
    """`url` with its password replaced, for messages.

    >>> safe_url("postgresql://geri:s3cret@db:5432/geri")
    'postgresql://geri:***@db:5432/geri'
    """
    return re.sub(r"(://[^:/@]+:)[^@]*@", r"\1***@", url)


class PostgresStore(LedgerAndCache):
    """`Store` on a PostgreSQL database."""

    _FOR_UPDATE = " FOR UPDATE"

    def __init__(self, url: str) -> None:
        try:
            import psycopg
        except ImportError as exc:
            raise StoreError(
                "A postgresql:// store needs psycopg: pip install 'geri[postgres]'."
            ) from exc
        self.url = safe_url(url)
        self._error: type[Exception] = psycopg.Error
        self._lock = threading.Lock()
        try:
            self._conn = psycopg.connect(url, autocommit=True, connect_timeout=10)
            self._migrate()
        except psycopg.Error as exc:
            raise StoreError(
                f"Cannot use the PostgreSQL store at {self.url}: {_first_line(exc)}. Check "
                "GERI_STORE (or 'store' in the settings) and that the server is running."
            ) from None

    def _migrate(self) -> list[str]:
        applied = []
        with self._conn.transaction(), self._conn.cursor() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
            cur.execute(
                "CREATE TABLE IF NOT EXISTS migrations (name TEXT PRIMARY KEY, applied_at "
                "TIMESTAMPTZ NOT NULL DEFAULT now())"
            )
            cur.execute("SELECT name FROM migrations")
            done = {row[0] for row in cur.fetchall()}
            for migration in MIGRATIONS:
                if migration.__name__ not in done:
                    migration(cur)
                    cur.execute("INSERT INTO migrations (name) VALUES (%s)", (migration.__name__,))
                    applied.append(migration.__name__)
        return applied

    def _run(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            try:
                with self._conn.cursor() as cur:
                    cur.execute(sql, params)
                    return cur.fetchall() if cur.description else [(cur.rowcount,)]
            except self._error as exc:
                raise StoreError(f"The PostgreSQL store failed: {_first_line(exc)}.") from None

    def _tx(self, work: Callable[[Execute], T]) -> T:
        with self._lock:
            try:
                with self._conn.transaction(), self._conn.cursor() as cur:

                    def execute(sql: str, params: Sequence[Any]) -> Rows:
                        cur.execute(sql.replace("?", "%s"), tuple(params))
                        return cur.fetchall() if cur.description else [(cur.rowcount,)]

                    return work(execute)
            except self._error as exc:
                raise StoreError(f"The PostgreSQL store failed: {_first_line(exc)}.") from None

    def _query(self, sql: str, params: Sequence[Any] = ()) -> Rows:
        return self._run(sql.replace("?", "%s"), tuple(params))

    def record_request(self, record: RequestRecord) -> None:
        names = RequestRecord.__slots__
        self._run(
            f"INSERT INTO requests ({', '.join(names)}) VALUES ({', '.join(['%s'] * len(names))})",
            tuple(getattr(record, n) for n in names),
        )

    def recent_requests(self, limit: int = 20) -> list[RequestRecord]:
        names = RequestRecord.__slots__
        rows = self._run(
            f"SELECT {', '.join(names)} FROM requests ORDER BY created_at DESC, seq DESC LIMIT %s",
            (max(limit, 0),),
        )
        return [RequestRecord(*row) for row in rows]

    def add_model(self, info: ModelInfo) -> bool:
        [(count,)] = self._run(
            "INSERT INTO models (id, provider, source, info) VALUES (%s, %s, %s, %s) "
            "ON CONFLICT (id) DO NOTHING",
            (info.id, info.provider, info.source, model_to_json(info)),
        )
        return bool(count == 1)

    def put_model(self, info: ModelInfo) -> None:
        self._run(
            "INSERT INTO models (id, provider, source, info) VALUES (%s, %s, %s, %s) "
            "ON CONFLICT (id) DO UPDATE SET provider = excluded.provider, "
            "source = excluded.source, info = excluded.info",
            (info.id, info.provider, info.source, model_to_json(info)),
        )

    def remove_model(self, model_id: str) -> bool:
        [(count,)] = self._run("DELETE FROM models WHERE id = %s", (model_id,))
        return bool(count == 1)

    def get_model(self, model_id: str) -> ModelInfo | None:
        rows = self._run("SELECT info FROM models WHERE id = %s", (model_id,))
        return model_from_json(rows[0][0]) if rows else None

    def list_models(self) -> list[ModelInfo]:
        return [model_from_json(r[0]) for r in self._run("SELECT info FROM models ORDER BY seq")]

    def request_outcomes(self, model_id: str, limit: int = 200) -> list[Outcome]:
        rows = self._run(
            "SELECT status, latency_ms, ttft_ms FROM requests WHERE model = %s "
            "ORDER BY created_at DESC, seq DESC LIMIT %s",
            (model_id, limit),
        )
        return [Outcome(status, latency, ttft) for status, latency, ttft in rows]

    def record_health(self, check: HealthCheck) -> None:
        self._run(
            "INSERT INTO health (model_id, checked_at, ok, latency_ms, error) "
            "VALUES (%s, %s, %s, %s, %s)",
            (check.model_id, check.checked_at, check.ok, check.latency_ms, check.error),
        )

    def health_history(self, model_id: str, limit: int = 100) -> list[HealthCheck]:
        rows = self._run(
            "SELECT model_id, checked_at, ok, latency_ms, error FROM health WHERE model_id = %s "
            "ORDER BY checked_at DESC, seq DESC LIMIT %s",
            (model_id, limit),
        )
        return [HealthCheck(m, at.astimezone(UTC), ok, lat, err) for m, at, ok, lat, err in rows]

    def get_state(self, key: str) -> str | None:
        rows = self._run("SELECT value FROM state WHERE key = %s", (key,))
        return str(rows[0][0]) if rows else None

    def set_state(self, key: str, value: str | None) -> None:
        if value is None:
            self._run("DELETE FROM state WHERE key = %s", (key,))
        else:
            self._run(
                "INSERT INTO state (key, value) VALUES (%s, %s) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (key, value),
            )

    def close(self) -> None:
        with self._lock:
            self._conn.close()


def _first_line(exc: Exception) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
