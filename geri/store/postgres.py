"""The PostgreSQL store: one registry, one request log and one budget for several geri daemons.

Chosen with a `postgresql://` URL (`GERI_STORE`, or `store` in the settings). The queries and the
migrations are the shared ones (`geri.store.shared`, `geri.store.migrations`), in PostgreSQL's
dialect; migrations run inside one transaction holding a transaction-scoped advisory lock, so
daemons starting together migrate the database exactly once. One connection per store object,
in autocommit mode, guarded by a lock, like the SQLite store; made anew when the server has
ended it (a restart or failover), so a daemon outlives its database's restart. The URL's
password never appears in a message.
"""

from __future__ import annotations

import re
import select
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
        self._dsn = url  # kept to reconnect; only `url` (no password) is ever shown
        self._error: type[Exception] = psycopg.Error
        self._lock = threading.Lock()
        self._conn = self._connect()
        self._tx(self._migrate)

    def _connect(self) -> Any:
        import psycopg

        try:
            return psycopg.connect(self._dsn, autocommit=True, connect_timeout=10)
        except psycopg.Error as exc:
            raise StoreError(
                f"Cannot use the PostgreSQL store at {self.url}: {_first_line(exc)}. Check "
                "GERI_STORE (or 'store' in the settings) and that the server is running."
            ) from None

    def _live(self) -> Any:
        """The connection (under the lock), made anew if the last call broke it or the server
        ended it while it sat idle (a restart, a failover, a proxy's idle timeout): the server
        then left a last message, or the end of the stream, waiting on the socket. Nothing had
        been sent on it since, so no call is repeated; a call cut while it ran fails alone, as
        whether it took effect cannot be known."""
        conn = self._conn
        if conn.closed or conn.broken or select.select([conn.fileno()], [], [], 0)[0]:
            conn.close()
            self._conn = conn = self._connect()
        return conn

    @staticmethod
    def _migrate(execute: Execute) -> list[str]:
        execute("SELECT pg_advisory_xact_lock(?)", (MIGRATION_LOCK,))
        return apply(execute, POSTGRES)

    def _tx(self, work: Callable[[Execute], T]) -> T:
        with self._lock:
            conn = self._live()
            try:
                with conn.transaction(), conn.cursor() as cur:

                    def execute(sql: str, params: Sequence[Any]) -> Rows:
                        cur.execute(sql.replace("?", "%s"), tuple(params))
                        return cur.fetchall() if cur.description else [(cur.rowcount,)]

                    return work(execute)
            except self._error as exc:
                raise StoreError(f"The PostgreSQL store failed: {_first_line(exc)}.") from None

    def _query(self, sql: str, params: Sequence[Any] = ()) -> Rows:
        with self._lock:
            conn = self._live()
            try:
                with conn.cursor() as cur:
                    cur.execute(sql.replace("?", "%s"), tuple(params))
                    return cur.fetchall() if cur.description else [(cur.rowcount,)]
            except self._error as exc:
                raise StoreError(f"The PostgreSQL store failed: {_first_line(exc)}.") from None

    def close(self) -> None:
        with self._lock:
            self._conn.close()


def _first_line(exc: Exception) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
