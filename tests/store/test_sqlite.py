"""The SQLite store: schema migrations, the request log, models, and many writers at once."""

from __future__ import annotations

import multiprocessing
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from geri.errors import StoreError
from geri.store import RequestRecord, open_store
from geri.store.migrations import MIGRATIONS
from geri.store.sqlite import SQLiteStore
from geri.types import ModelInfo

WRITERS, WRITES_EACH = 8, 40


def record(n: int, when: datetime | None = None, **changes: object) -> RequestRecord:
    fields: dict[str, object] = {
        "id": f"req-{n}",
        "created_at": when or datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=n),
        "model": "m",
        "provider": "llama.cpp",
        "prompt": "[]",
        "response": f"answer {n}",
        "input_tokens": n,
        "output_tokens": 2 * n,
        "latency_ms": 1.5,
        "ttft_ms": None,
        "cost_micros": 0,
        "status": "ok",
        "error": None,
        "streamed": False,
    }
    fields.update(changes)
    return RequestRecord(**fields)  # type: ignore[arg-type]


def test_records_round_trip_newest_first(tmp_path: Path) -> None:
    store = open_store(tmp_path / "g.db")
    for n in range(5):
        store.record_request(record(n, ttft_ms=2.5 if n == 3 else None, streamed=n == 3))
    got = store.recent_requests(3)
    assert [r.id for r in got] == ["req-4", "req-3", "req-2"]
    assert got[1] == record(3, ttft_ms=2.5, streamed=True)


def test_opens_in_wal_mode_with_migrations_recorded_once(tmp_path: Path) -> None:
    path = tmp_path / "g.db"
    open_store(path).close()
    open_store(path).close()
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    names = [r[0] for r in conn.execute("SELECT name FROM migrations")]
    assert names == [m.__name__ for m in MIGRATIONS]


def test_models_register_once_and_unregister(tmp_path: Path) -> None:
    store = open_store(tmp_path / "g.db")
    info = ModelInfo("a", "llama.cpp", "/m/a.gguf", parameters=7, metadata={"k": "v"})
    assert store.add_model(info)
    assert not store.add_model(info)
    assert store.get_model("a") == info
    assert store.add_model(ModelInfo("b", "llama.cpp", "/m/b.gguf"))
    assert [m.id for m in store.list_models()] == ["a", "b"]
    assert store.remove_model("a")
    assert not store.remove_model("a")
    assert store.get_model("a") is None


def test_state_values_set_replace_and_clear(tmp_path: Path) -> None:
    store = open_store(tmp_path / "g.db")
    store.set_state("k", "1")
    store.set_state("k", "2")
    assert store.get_state("k") == "2"
    store.set_state("k", None)
    assert store.get_state("k") is None


def test_an_unwritable_location_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(StoreError, match="Cannot create"):
        SQLiteStore(blocker / "sub" / "g.db")


def _writer(path: str, worker: int, start: multiprocessing.synchronize.Event) -> None:
    start.wait()
    store = open_store(Path(path))  # every process migrates a brand-new file at once
    for i in range(WRITES_EACH):
        store.record_request(record(worker * 1000 + i))
    store.close()


def test_many_processes_create_and_write_one_database(tmp_path: Path) -> None:
    path = tmp_path / "shared.db"
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Event()
    workers = [ctx.Process(target=_writer, args=(str(path), w, start)) for w in range(WRITERS)]
    for w in workers:
        w.start()
    start.set()
    for w in workers:
        w.join(120)
    assert [w.exitcode for w in workers] == [0] * WRITERS
    store = open_store(path)
    assert len(store.recent_requests(10_000)) == WRITERS * WRITES_EACH
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT count(*) FROM migrations").fetchone()[0] == len(MIGRATIONS)
