"""The default store: one SQLite file, shared safely by every geri process on the machine.

WAL mode lets readers proceed while one process writes; a busy timeout makes concurrent writers
wait their turn instead of failing; migrations run under `BEGIN IMMEDIATE`. One connection per
store object, guarded by a lock, so the engine may call it from any worker thread.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from geri.errors import StoreError
from geri.store.base import (
    HealthCheck,
    Outcome,
    RequestRecord,
    model_from_json,
    model_to_json,
)
from geri.store.migrations import migrate
from geri.store.shared import Execute, LedgerAndCache, Rows
from geri.types import ModelInfo

BUSY_TIMEOUT_S = 30.0
T = TypeVar("T")


class SQLiteStore(LedgerAndCache):
    """`Store` on a SQLite file (created, with its directory, on first use)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(
                path, timeout=BUSY_TIMEOUT_S, check_same_thread=False, isolation_level=None
            )
            conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
            _wal(conn)
            conn.execute("PRAGMA synchronous = NORMAL")
            self._conn = conn
            migrate(conn)
        except sqlite3.Error as exc:
            raise StoreError(
                f"Cannot open the database {path}: {exc}. Check that the directory is writable "
                "and the disk is not full; set GERI_HOME to use another location."
            ) from exc
        except OSError as exc:
            raise StoreError(f"Cannot create {path.parent}: {exc.strerror}.") from exc

    def _write(self, sql: str, params: tuple[Any, ...]) -> int:
        with self._lock:
            try:
                return self._conn.execute(sql, params).rowcount
            except sqlite3.Error as exc:
                raise StoreError(f"Cannot write to {self.path}: {exc}.") from exc

    def _tx(self, work: Callable[[Execute], T]) -> T:
        """Run `work` in a `BEGIN IMMEDIATE` transaction: no other writer, in any process."""
        with self._lock:
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

    def _moment(self, moment: datetime) -> str:
        return moment.astimezone(UTC).isoformat()  # timestamps are stored as UTC ISO text

    def _query(self, sql: str, params: Sequence[Any] = ()) -> Rows:
        with self._lock:
            try:
                return _execute(self._conn)(sql, params)
            except sqlite3.Error as exc:
                raise StoreError(f"Cannot use {self.path}: {exc}.") from exc

    def _read(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            try:
                return self._conn.execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                raise StoreError(f"Cannot read {self.path}: {exc}.") from exc

    def record_request(self, record: RequestRecord) -> None:
        row = {
            **{k: getattr(record, k) for k in RequestRecord.__slots__},
            "created_at": record.created_at.astimezone(UTC).isoformat(),
            "streamed": int(record.streamed),
            "cached": int(record.cached),
        }
        self._write(
            f"INSERT INTO requests ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})",
            tuple(row.values()),
        )

    def recent_requests(self, limit: int = 20) -> list[RequestRecord]:
        names = RequestRecord.__slots__
        found = self._read(
            f"SELECT {', '.join(names)} FROM requests ORDER BY created_at DESC, rowid DESC LIMIT ?",
            (max(limit, 0),),
        )
        rows = [dict(zip(names, values, strict=True)) for values in found]
        return [
            RequestRecord(
                **{
                    **row,
                    "created_at": datetime.fromisoformat(row["created_at"]),
                    "streamed": bool(row["streamed"]),
                    "cached": bool(row["cached"]),
                }
            )
            for row in rows
        ]

    def add_model(self, info: ModelInfo) -> bool:
        added = self._write(
            "INSERT INTO models (id, provider, source, info, added_at) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (id) DO NOTHING",
            (info.id, info.provider, info.source, model_to_json(info), _now()),
        )
        return added == 1

    def remove_model(self, model_id: str) -> bool:
        return self._write("DELETE FROM models WHERE id = ?", (model_id,)) == 1

    def get_model(self, model_id: str) -> ModelInfo | None:
        rows = self._read("SELECT info FROM models WHERE id = ?", (model_id,))
        return model_from_json(rows[0][0]) if rows else None

    def list_models(self) -> list[ModelInfo]:
        rows = self._read("SELECT info FROM models ORDER BY added_at, rowid")
        return [model_from_json(r[0]) for r in rows]

    def put_model(self, info: ModelInfo) -> None:
        self._write(
            "INSERT INTO models (id, provider, source, info, added_at) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (id) DO UPDATE SET provider = excluded.provider, "
            "source = excluded.source, info = excluded.info",
            (info.id, info.provider, info.source, model_to_json(info), _now()),
        )

    def request_outcomes(self, model_id: str, limit: int = 200) -> list[Outcome]:
        rows = self._read(
            "SELECT status, latency_ms, ttft_ms FROM requests WHERE model = ? "
            "ORDER BY created_at DESC, rowid DESC LIMIT ?",
            (model_id, limit),
        )
        return [Outcome(status, latency, ttft) for status, latency, ttft in rows]

    def record_health(self, check: HealthCheck) -> None:
        self._write(
            "INSERT INTO health (model_id, checked_at, ok, latency_ms, error) "
            "VALUES (?, ?, ?, ?, ?)",
            (
                check.model_id,
                check.checked_at.astimezone(UTC).isoformat(),
                int(check.ok),
                check.latency_ms,
                check.error,
            ),
        )

    def health_history(self, model_id: str, limit: int = 100) -> list[HealthCheck]:
        rows = self._read(
            "SELECT model_id, checked_at, ok, latency_ms, error FROM health WHERE model_id = ? "
            "ORDER BY checked_at DESC, rowid DESC LIMIT ?",
            (model_id, limit),
        )
        return [
            HealthCheck(m, datetime.fromisoformat(at), bool(ok), latency, error)
            for m, at, ok, latency, error in rows
        ]

    def get_state(self, key: str) -> str | None:
        rows = self._read("SELECT value FROM state WHERE key = ?", (key,))
        return str(rows[0][0]) if rows else None

    def set_state(self, key: str, value: str | None) -> None:
        if value is None:
            self._write("DELETE FROM state WHERE key = ?", (key,))
        else:
            self._write(
                "INSERT INTO state (key, value) VALUES (?, ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (key, value),
            )

    def close(self) -> None:
        with self._lock:
            self._conn.close()


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


def _now() -> str:
    return datetime.now(UTC).isoformat()
