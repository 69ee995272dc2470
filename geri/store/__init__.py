"""Persistence: the `Store` protocol and its implementations; `open_store` picks one.

A `postgresql://` URL opens the PostgreSQL store (shared by several daemons); anything else is
the path of a SQLite file, the default.
"""

from __future__ import annotations

import re
from pathlib import Path

from geri.errors import StoreError
from geri.store.base import HealthCheck, Outcome, RequestRecord, Store

POSTGRES_SCHEMES = ("postgresql://", "postgres://")


def open_store(location: Path | str) -> Store:
    """The store at `location`, created and migrated if needed.

    >>> open_store("mysql://u:p@h/db")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    geri.errors.StoreError: Unknown store 'mysql://u:***@h/db': use a postgresql:// URL, ...
    """
    if isinstance(location, str) and re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", location):
        if not location.startswith(POSTGRES_SCHEMES):
            from geri.store.postgres import safe_url

            raise StoreError(
                f"Unknown store {safe_url(location)!r}: use a postgresql:// URL, or the path "
                "of a SQLite file."
            )
        from geri.store.postgres import PostgresStore

        return PostgresStore(location)
    from geri.store.sqlite import SQLiteStore

    return SQLiteStore(Path(location).expanduser())


__all__ = ["HealthCheck", "Outcome", "RequestRecord", "Store", "open_store"]
