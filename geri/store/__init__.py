"""Persistence: the `Store` protocol and its implementations; `open_store` picks one."""

from __future__ import annotations

from pathlib import Path

from geri.store.base import RequestRecord, Store


def open_store(path: Path) -> Store:
    """The SQLite store at `path`, created and migrated if needed."""
    from geri.store.sqlite import SQLiteStore

    return SQLiteStore(path)


__all__ = ["RequestRecord", "Store", "open_store"]
