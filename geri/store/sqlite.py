"""The default store: one SQLite file, shared safely by every geri process on the machine.

WAL mode lets readers proceed while one process writes; a busy timeout makes concurrent writers
wait their turn instead of failing; migrations run under `BEGIN IMMEDIATE`. One connection per
store object, guarded by a lock, so the engine may call it from any worker thread. The queries
are the shared ones (`geri.store.shared`); this module is the connection.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from geri.errors import StoreError
from geri.store.migrations import SQLITE, apply
from geri.store.shared import Execute, Rows, SqlStore

BUSY_TIMEOUT_S = 30.0
T = TypeVar("T")
log = logging.getLogger("geri.store")


class SQLiteStore(SqlStore):
    """`Store` on a SQLite file (created, with its directory, on first use)."""

    dialect = SQLITE

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._vanished = False
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(
                path, timeout=BUSY_TIMEOUT_S, check_same_thread=False, isolation_level=None
            )
            conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
            _wal(conn)
            conn.execute("PRAGMA synchronous = NORMAL")
            self._conn = conn
            self._file = _identity(path)
            self._tx(lambda execute: apply(execute, SQLITE))
        except sqlite3.Error as exc:
            raise StoreError(
                f"Cannot open the database {path}: {exc}. Check that the directory is writable "
                "and the disk is not full; set GERI_HOME to use another location."
            ) from exc
        except OSError as exc:
            raise StoreError(f"Cannot create {path.parent}: {exc.strerror}.") from exc

    def _tx(self, work: Callable[[Execute], T]) -> T:
        """Run `work` in a `BEGIN IMMEDIATE` transaction: no other writer, in any process."""
        with self._lock:
            self._still_there()
            conn = self._conn
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    result = work(_execute(conn))
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                conn.execute("COMMIT")
                return result
            except sqlite3.Error as exc:
                raise StoreError(f"Cannot write to {self.path}: {exc}.") from exc

    def _query(self, sql: str, params: Sequence[Any] = ()) -> Rows:
        with self._lock:
            self._still_there()
            try:
                return _execute(self._conn)(sql, params)
            except sqlite3.Error as exc:
                raise StoreError(f"Cannot use {self.path}: {exc}.") from exc

    def _still_there(self) -> None:
        """Refuse to go on when the file was deleted or replaced under this process: SQLite
        would keep writing to the vanished file, and every row would be lost."""
        if _identity(self.path) != self._file:
            message = (
                f"The database {self.path} was removed or replaced while geri was using it; "
                "nothing more is written to it, and no call that needs it (a budget, the "
                "request log) is made. Restart geri (or the daemon) to use the file that is "
                "there now."
            )
            if not self._vanished:  # said once in the log; every call gets the error
                self._vanished = True
                log.error(message)
            raise StoreError(message)

    def close(self) -> None:
        with self._lock:
            self._conn.close()


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def _wal(conn: sqlite3.Connection) -> None:
    """Switch to WAL mode. While another process is creating the same new file, SQLite can
    answer 'locked' here at once, without waiting the busy timeout: wait and ask again."""
    deadline = time.monotonic() + BUSY_TIMEOUT_S
    while True:
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def _execute(conn: sqlite3.Connection) -> Execute:
    def execute(sql: str, params: Sequence[Any]) -> Rows:
        cursor = conn.execute(sql, tuple(params))
        return cursor.fetchall() if cursor.description else [(cursor.rowcount,)]

    return execute
