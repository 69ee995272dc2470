"""Schema migrations for the SQLite store: an ordered list of functions, each applied once.

Applied names are recorded in the `migrations` table. The whole check-and-apply runs inside one
`BEGIN IMMEDIATE` transaction, so when several geri processes open a new database at the same
moment exactly one of them migrates it and the others wait, then find nothing left to do.
New migrations are appended, never edited or reordered.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime

Migration = Callable[[sqlite3.Connection], None]


def m001_initial(db: sqlite3.Connection) -> None:
    db.execute(
        """
        CREATE TABLE requests (
            id TEXT PRIMARY KEY,
            created_at TEXT NOT NULL,
            model TEXT NOT NULL,
            provider TEXT,
            prompt TEXT,
            response TEXT,
            input_tokens INTEGER,
            output_tokens INTEGER,
            latency_ms FLOAT,
            ttft_ms FLOAT,
            cost_micros INTEGER,
            status TEXT NOT NULL,
            error TEXT,
            streamed INTEGER
        )
        """
    )
    db.execute("CREATE INDEX idx_requests_created_at ON requests (created_at)")
    db.execute(
        """
        CREATE TABLE models (
            id TEXT PRIMARY KEY,
            provider TEXT NOT NULL,
            source TEXT NOT NULL,
            info TEXT NOT NULL,
            added_at TEXT
        )
        """
    )
    db.execute("CREATE TABLE state (key TEXT PRIMARY KEY, value TEXT)")


def m002_health(db: sqlite3.Connection) -> None:
    db.execute(
        """
        CREATE TABLE health (
            model_id TEXT NOT NULL,
            checked_at TEXT NOT NULL,
            ok INTEGER NOT NULL,
            latency_ms FLOAT,
            error TEXT
        )
        """
    )
    db.execute("CREATE INDEX idx_health_model_id_checked_at ON health (model_id, checked_at)")
    db.execute("CREATE INDEX idx_requests_model_created_at ON requests (model, created_at)")


def m003_budgets_and_cache(db: sqlite3.Connection) -> None:
    db.execute("ALTER TABLE requests ADD COLUMN cached INTEGER NOT NULL DEFAULT 0")
    db.execute(
        """
        CREATE TABLE budgets (
            scope TEXT NOT NULL,
            period TEXT NOT NULL,
            limit_micros INTEGER NOT NULL,
            PRIMARY KEY (scope, period)
        )
        """
    )
    db.execute(
        """
        CREATE TABLE ledger (
            id TEXT PRIMARY KEY,
            at_us INTEGER NOT NULL,
            provider TEXT NOT NULL,
            model TEXT,
            amount_micros INTEGER NOT NULL,
            settled INTEGER NOT NULL,
            expires_us INTEGER NOT NULL
        )
        """
    )
    db.execute("CREATE INDEX idx_ledger_at_us ON ledger (at_us)")
    db.execute("CREATE TABLE claims (key TEXT PRIMARY KEY, at TEXT)")
    db.execute(
        """
        CREATE TABLE cache (
            key TEXT PRIMARY KEY,
            model TEXT NOT NULL,
            created_us INTEGER NOT NULL,
            expires_us INTEGER NOT NULL,
            value TEXT NOT NULL
        )
        """
    )
    db.execute("CREATE INDEX idx_cache_created_us ON cache (created_us)")
    db.execute("CREATE INDEX idx_cache_model ON cache (model)")


def m004_trace_ids(db: sqlite3.Connection) -> None:
    db.execute("ALTER TABLE requests ADD COLUMN trace_id TEXT")


MIGRATIONS: list[Migration] = [
    m001_initial,
    m002_health,
    m003_budgets_and_cache,
    m004_trace_ids,
]


def migrate(conn: sqlite3.Connection, migrations: list[Migration] = MIGRATIONS) -> list[str]:
    """Apply the migrations `conn`'s database has not seen; return their names."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS migrations (name TEXT PRIMARY KEY, applied_at TEXT)"
        )
        done = {row[0] for row in conn.execute("SELECT name FROM migrations")}
        applied = []
        for migration in migrations:
            if migration.__name__ in done:
                continue
            migration(conn)
            conn.execute(
                "INSERT INTO migrations (name, applied_at) VALUES (?, ?)",
                (migration.__name__, datetime.now(UTC).isoformat()),
            )
            applied.append(migration.__name__)
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return applied
