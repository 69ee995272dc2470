"""The PostgreSQL store: one registry, one request log and one budget for several geri daemons.

Chosen with a `postgresql://` URL (`GERI_STORE`, or `store` in the settings). The queries and the
migrations are the shared ones (`geri.store.shared`, `geri.store.migrations`), in PostgreSQL's
dialect; migrations run inside one transaction holding a transaction-scoped advisory lock, so
daemons starting together migrate the database exactly once. One connection per store object,
in autocommit mode, guarded by a lock, like the SQLite store. The URL's password never appears
in a message.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from geri.errors import StoreError
from geri.store.migrations import MIGRATIONS, POSTGRES, apply
from geri.store.shared import Execute, Rows, SqlStore

T = TypeVar("T")
MIGRATION_LOCK = 0x6765726901  # any constant shared by every geri process

__all__ = ["MIGRATIONS", "PostgresStore", "safe_url"]


def safe_url(url: str) -> str:
    """`url` with its password replaced, for messages.

    >>> safe_url("postgresql://geri:s3cret@db:5432/geri")
    'postgresql://geri:***@db:5432/geri'
    """
    return re.sub(r"(://[^:/@]+:)[^@]*@", r"\1***@", url)


class PostgresStore(SqlStore):
    """`Store` on a PostgreSQL database."""

    dialect = POSTGRES
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
        except psycopg.Error as exc:
            raise StoreError(
                f"Cannot use the PostgreSQL store at {self.url}: {_first_line(exc)}. Check "
                "GERI_STORE (or 'store' in the settings) and that the server is running."
            ) from None
        self._tx(self._migrate)

    @staticmethod
    def _migrate(execute: Execute) -> list[str]:
        execute("SELECT pg_advisory_xact_lock(?)", (MIGRATION_LOCK,))
        return apply(execute, POSTGRES)

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
        with self._lock:
            try:
                with self._conn.cursor() as cur:
                    cur.execute(sql.replace("?", "%s"), tuple(params))
                    return cur.fetchall() if cur.description else [(cur.rowcount,)]
            except self._error as exc:
                raise StoreError(f"The PostgreSQL store failed: {_first_line(exc)}.") from None

    def close(self) -> None:
        with self._lock:
            self._conn.close()


def _first_line(exc: Exception) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
