"""Schema migrations for the SQLite store: an ordered list of functions, each applied once.

Applied names are recorded in the `migrations` table. The whole check-and-apply runs inside one
`BEGIN IMMEDIATE` transaction, so when several geri processes open a new database at the same
moment exactly one of them migrates it and the others wait, then find nothing left to do.
New migrations are appended, never edited or reordered.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from sqlite_utils import Database

Migration = Callable[[Database], None]


def m001_initial(db: Database) -> None:
    db.table("requests").create(
        {
            "id": str,
            "created_at": str,
            "model": str,
            "provider": str,
            "prompt": str,
            "response": str,
            "input_tokens": int,
            "output_tokens": int,
            "latency_ms": float,
            "ttft_ms": float,
            "cost_micros": int,
            "status": str,
            "error": str,
            "streamed": int,
        },
        pk="id",
        not_null={"created_at", "model", "status"},
    )
    db.table("requests").create_index(["created_at"])
    db.table("models").create(
        {
            "id": str,
            "provider": str,
            "source": str,
            "info": str,
            "added_at": str,
        },
        pk="id",
        not_null={"provider", "source", "info"},
    )
    db.table("state").create({"key": str, "value": str}, pk="key")


def m002_health(db: Database) -> None:
    db.table("health").create(
        {"model_id": str, "checked_at": str, "ok": int, "latency_ms": float, "error": str},
        not_null={"model_id", "checked_at", "ok"},
    )
    db.table("health").create_index(["model_id", "checked_at"])
    db.table("requests").create_index(["model", "created_at"])


def m003_budgets_and_cache(db: Database) -> None:
    db.execute("ALTER TABLE requests ADD COLUMN cached INTEGER NOT NULL DEFAULT 0")
    db.table("budgets").create(
        {"scope": str, "period": str, "limit_micros": int},
        pk=("scope", "period"),
        not_null={"limit_micros"},
    )
    db.table("ledger").create(
        {
            "id": str,
            "at_us": int,
            "provider": str,
            "model": str,
            "amount_micros": int,
            "settled": int,
            "expires_us": int,
        },
        pk="id",
        not_null={"at_us", "provider", "amount_micros", "settled", "expires_us"},
    )
    db.table("ledger").create_index(["at_us"])
    db.table("claims").create({"key": str, "at": str}, pk="key")
    db.table("cache").create(
        {"key": str, "model": str, "created_us": int, "expires_us": int, "value": str},
        pk="key",
        not_null={"model", "created_us", "expires_us", "value"},
    )
    db.table("cache").create_index(["created_us"])
    db.table("cache").create_index(["model"])


MIGRATIONS: list[Migration] = [m001_initial, m002_health, m003_budgets_and_cache]


def migrate(db: Database, migrations: list[Migration] = MIGRATIONS) -> list[str]:
    """Apply the migrations `db` has not seen; return their names."""
    conn = db.conn
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
            migration(db)
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
