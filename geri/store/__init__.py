"""Persistence: the `Store` protocol and its implementations; `open_store` picks one.

A `postgresql://` URL opens the PostgreSQL store (shared by several daemons); anything else is
the path of a SQLite file, the default.
"""

from __future__ import annotations

from pathlib import Path

from geri.store.base import HealthCheck, Outcome, RequestRecord, Store

POSTGRES_SCHEMES = ("postgresql://", "postgres://")


def open_store(location: Path | str) -> Store:
    """The store at `location`, created and migrated if needed."""
    if isinstance(location, str) and location.startswith(POSTGRES_SCHEMES):
        from geri.store.postgres import PostgresStore

        return PostgresStore(location)
    from geri.store.sqlite import SQLiteStore

    return SQLiteStore(Path(location).expanduser())


__all__ = ["HealthCheck", "Outcome", "RequestRecord", "Store", "open_store"]
