"""Schema migrations, one ordered list for both stores: functions applied once each.

Each migration writes its SQL once, with the column types and the insertion-order column that
differ between SQLite and PostgreSQL taken from the store's `Dialect`. Applied names are recorded
in the `migrations` table; the whole check-and-apply runs in one transaction that excludes other
writers (SQLite: `BEGIN IMMEDIATE`; PostgreSQL: an advisory lock), so when several geri processes
open a new database at the same moment exactly one migrates it and the others find nothing left
to do. New migrations are appended, never edited or reordered.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from geri.errors import StoreError

Execute = Callable[[str, Sequence[Any]], list[tuple[Any, ...]]]


@dataclass(frozen=True, slots=True)
class Dialect:
    """What SQLite and PostgreSQL spell differently; the SQL itself is shared."""

    integer: str  # a 64-bit count or amount
    real: str
    flag: str  # a boolean column
    false: str
    moment: str  # a point in time
    small: str  # a 0/1 state
    serial: str  # the column that keeps insertion order ("" where the rowid does)
    order: str  # that column's name in ORDER BY
    moments_as_text: bool  # SQLite keeps UTC ISO text; PostgreSQL a TIMESTAMPTZ

    def moment_in(self, moment: datetime) -> Any:
        utc = moment.astimezone(UTC)
        return utc.isoformat() if self.moments_as_text else utc

    def moment_out(self, value: Any) -> datetime:
        moment = datetime.fromisoformat(value) if isinstance(value, str) else value
        return moment.astimezone(UTC)


SQLITE = Dialect("INTEGER", "FLOAT", "INTEGER", "0", "TEXT", "INTEGER", "", "rowid", True)
POSTGRES = Dialect(
    "BIGINT",
    "DOUBLE PRECISION",
    "BOOLEAN",
    "false",
    "TIMESTAMPTZ",
    "SMALLINT",
    "seq BIGSERIAL,",
    "seq",
    False,
)
Run = Callable[[str], object]
Migration = Callable[[Run, Dialect], None]


def m001_initial(run: Run, d: Dialect) -> None:
    run(
        f"""
        CREATE TABLE requests (
            id TEXT PRIMARY KEY,
            {d.serial}
            created_at {d.moment} NOT NULL,
            model TEXT NOT NULL,
            provider TEXT,
            prompt TEXT,
            response TEXT,
            input_tokens {d.integer},
            output_tokens {d.integer},
            latency_ms {d.real},
            ttft_ms {d.real},
            cost_micros {d.integer},
            status TEXT NOT NULL,
            error TEXT,
            streamed {d.flag}
        )
        """
    )
    run("CREATE INDEX requests_created_at ON requests (created_at)")
    run(
        f"""
        CREATE TABLE models (
            id TEXT PRIMARY KEY,
            {d.serial}
            provider TEXT NOT NULL,
            source TEXT NOT NULL,
            info TEXT NOT NULL,
            added_at {d.moment}
        )
        """
    )
    run("CREATE TABLE state (key TEXT PRIMARY KEY, value TEXT)")


def m002_health(run: Run, d: Dialect) -> None:
    run(
        f"""
        CREATE TABLE health (
            {d.serial}
            model_id TEXT NOT NULL,
            checked_at {d.moment} NOT NULL,
            ok {d.flag} NOT NULL,
            latency_ms {d.real},
            error TEXT
        )
        """
    )
    run("CREATE INDEX health_model ON health (model_id, checked_at)")
    run("CREATE INDEX requests_model ON requests (model, created_at)")


def m003_budgets_and_cache(run: Run, d: Dialect) -> None:
    run(f"ALTER TABLE requests ADD COLUMN cached {d.flag} NOT NULL DEFAULT {d.false}")
    run(
        f"""
        CREATE TABLE budgets (
            scope TEXT NOT NULL,
            period TEXT NOT NULL,
            limit_micros {d.integer} NOT NULL,
            PRIMARY KEY (scope, period)
        )
        """
    )
    run(
        f"""
        CREATE TABLE ledger (
            id TEXT PRIMARY KEY,
            at_us {d.integer} NOT NULL,
            provider TEXT NOT NULL,
            model TEXT,
            amount_micros {d.integer} NOT NULL,
            settled {d.small} NOT NULL,
            expires_us {d.integer} NOT NULL
        )
        """
    )
    run("CREATE INDEX ledger_at ON ledger (at_us)")
    run(f"CREATE TABLE claims (key TEXT PRIMARY KEY, at {d.moment})")
    run(
        f"""
        CREATE TABLE cache (
            key TEXT PRIMARY KEY,
            model TEXT NOT NULL,
            created_us {d.integer} NOT NULL,
            expires_us {d.integer} NOT NULL,
            value TEXT NOT NULL
        )
        """
    )
    run("CREATE INDEX cache_created ON cache (created_us)")
    run("CREATE INDEX cache_model ON cache (model)")


def m004_trace_ids(run: Run, d: Dialect) -> None:
    run("ALTER TABLE requests ADD COLUMN trace_id TEXT")


def m005_end_users(run: Run, d: Dialect) -> None:
    run("ALTER TABLE requests ADD COLUMN end_user TEXT")


MIGRATIONS: list[Migration] = [
    m001_initial,
    m002_health,
    m003_budgets_and_cache,
    m004_trace_ids,
    m005_end_users,
]


def apply(
    execute: Execute, dialect: Dialect, migrations: list[Migration] = MIGRATIONS
) -> list[str]:
    """Apply the migrations the database has not seen, inside the caller's transaction; return
    their names."""
    table = f"migrations (name TEXT PRIMARY KEY, applied_at {dialect.moment})"
    execute(f"CREATE TABLE IF NOT EXISTS {table}", ())
    done = {row[0] for row in execute("SELECT name FROM migrations", ())}
    unknown = sorted(done - {m.__name__ for m in migrations})
    if unknown:
        raise StoreError(
            f"The database was set up by a newer geri (its schema has {unknown[-1]}, which "
            "this version does not know): upgrade geri, or point GERI_STORE or GERI_HOME at "
            "another database."
        )
    applied = []
    for migration in migrations:
        if migration.__name__ in done:
            continue
        migration(lambda sql: execute(sql, ()), dialect)
        execute(
            "INSERT INTO migrations (name, applied_at) VALUES (?, ?)",
            (migration.__name__, dialect.moment_in(datetime.now(UTC))),
        )
        applied.append(migration.__name__)
    return applied
