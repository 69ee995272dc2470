"""The store suite, run against SQLite and against a real PostgreSQL server.

Every behaviour of the `Store` protocol is checked on both backends; then each backend's own
promises: WAL for SQLite, and for both, many processes creating and writing one store at once.
"""

from __future__ import annotations

import multiprocessing
import sqlite3
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from geri.errors import StoreError
from geri.store import HealthCheck, Outcome, RequestRecord, Store, open_store, postgres
from geri.store import migrations as sqlite_migrations
from geri.store.shared import ROWS_PER_INSERT
from geri.store.sqlite import SQLiteStore
from geri.types import ModelInfo

WRITERS, WRITES_EACH = 8, 40
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def record(n: int, **changes: object) -> RequestRecord:
    fields: dict[str, object] = {
        "id": f"req-{n}",
        "created_at": T0 + timedelta(seconds=n),
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


def test_records_round_trip_newest_first(store: Store) -> None:
    for n in range(5):
        store.record_request(record(n, ttft_ms=2.5 if n == 3 else None, streamed=n == 3))
    got = store.recent_requests(3)
    assert [r.id for r in got] == ["req-4", "req-3", "req-2"]
    assert got[1] == record(3, ttft_ms=2.5, streamed=True)
    assert store.recent_requests(0) == []


@pytest.mark.parametrize("count", [1, ROWS_PER_INSERT, ROWS_PER_INSERT * 4 + 3])
def test_a_batch_of_records_is_written_whole(store: Store, count: int) -> None:
    """One INSERT up to ROWS_PER_INSERT rows, several in one transaction beyond: every row
    comes back as it went in."""
    batch = [
        record(n, ttft_ms=0.5 * n, end_user=f"user-{n}" if n % 2 else None) for n in range(count)
    ]
    store.record_requests(batch)
    assert store.recent_requests(count + 1) == batch[::-1]


@pytest.mark.parametrize("count", [3, ROWS_PER_INSERT * 2 + 1])
def test_a_batch_with_a_bad_record_writes_nothing(store: Store, count: int) -> None:
    """All or none: a batch whose last record repeats an id already written leaves the log as
    it was (the writer then bisects it, so the good records are written once, never twice)."""
    store.record_request(record(0))
    batch = [record(n) for n in range(1, count)] + [record(0)]
    with pytest.raises(StoreError):
        store.record_requests(batch)
    assert [r.id for r in store.recent_requests(count + 1)] == ["req-0"]


def test_models_register_once_replace_and_unregister(store: Store) -> None:
    info = ModelInfo("a", "llama.cpp", "/m/a.gguf", parameters=7, metadata={"k": "v"})
    assert store.add_model(info)
    assert not store.add_model(ModelInfo("a", "llama.cpp", "/other.gguf"))
    assert store.get_model("a") == info
    assert store.add_model(ModelInfo("b", "llama.cpp", "/m/b.gguf"))
    assert [m.id for m in store.list_models()] == ["a", "b"]
    moved = ModelInfo("a", "openai_compatible", "a", location="lan")
    store.put_model(moved)
    store.put_model(ModelInfo("c", "openai_compatible", "c", location="lan"))
    assert store.get_model("a") == moved
    assert [m.id for m in store.list_models()] == ["a", "b", "c"]
    assert store.remove_model("a")
    assert not store.remove_model("a")
    assert store.get_model("a") is None


def test_state_values_set_replace_and_clear(store: Store) -> None:
    store.set_state("k", "1")
    store.set_state("k", "2")
    assert store.get_state("k") == "2"
    store.set_state("k", None)
    assert store.get_state("k") is None


def test_outcomes_per_model_newest_first(store: Store) -> None:
    store.record_request(record(1, model="x", status="error", latency_ms=5.0))
    store.record_request(record(2, model="y"))
    store.record_request(record(3, model="x", latency_ms=7.0, ttft_ms=1.0))
    assert store.request_outcomes("x") == [Outcome("ok", 7.0, 1.0), Outcome("error", 5.0, None)]
    assert store.request_outcomes("x", limit=1) == [Outcome("ok", 7.0, 1.0)]
    assert store.request_outcomes("nobody") == []


def test_health_checks_newest_first(store: Store) -> None:
    checks = [
        HealthCheck("x", T0, True, 12.5),
        HealthCheck("x", T0 + timedelta(minutes=5), False, None, "connection refused"),
        HealthCheck("y", T0, True, 1.0),
    ]
    for check in checks:
        store.record_health(check)
    assert store.health_history("x") == [checks[1], checks[0]]
    assert store.health_history("x", limit=1) == [checks[1]]


def test_both_backends_share_migration_names() -> None:
    assert [m.__name__ for m in sqlite_migrations.MIGRATIONS] == [
        m.__name__ for m in postgres.MIGRATIONS
    ]


def test_migrations_are_recorded_once(location: str) -> None:
    open_store(location).close()
    reopened = open_store(location)
    reopened.close()
    names = _migration_names(location)
    assert names == [m.__name__ for m in sqlite_migrations.MIGRATIONS]


def _migration_names(location: str) -> list[str]:
    if location.startswith("postgresql://"):
        import psycopg

        with psycopg.connect(location) as conn:
            return [
                r[0] for r in conn.execute("SELECT name FROM migrations ORDER BY applied_at, name")
            ]
    return [r[0] for r in sqlite3.connect(location).execute("SELECT name FROM migrations")]


def test_sqlite_runs_in_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "g.db"
    open_store(path).close()
    assert sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_an_unwritable_location_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(StoreError, match="Cannot create"):
        SQLiteStore(blocker / "sub" / "g.db")


def test_an_unreachable_postgres_is_a_clear_error_without_the_password() -> None:
    with pytest.raises(StoreError) as err:
        open_store("postgresql://geri:hunter2@127.0.0.1:9/geri")
    assert "postgresql://geri:***@127.0.0.1:9/geri" in str(err.value)
    assert "hunter2" not in str(err.value)


def _writer(location: str, worker: int, start: multiprocessing.synchronize.Event) -> None:
    start.wait()
    store = open_store(location)  # every process migrates a brand-new store at once
    for i in range(WRITES_EACH):
        store.record_request(record(worker * 1000 + i))
    store.close()


def test_many_processes_create_and_write_one_store(location: str) -> None:
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Event()
    workers = [ctx.Process(target=_writer, args=(location, w, start)) for w in range(WRITERS)]
    for w in workers:
        w.start()
    start.set()
    for w in workers:
        w.join(120)
    assert [w.exitcode for w in workers] == [0] * WRITERS
    store = open_store(location)
    assert len(store.recent_requests(10_000)) == WRITERS * WRITES_EACH
    store.close()
    assert len(_migration_names(location)) == len(sqlite_migrations.MIGRATIONS)


def test_a_database_from_a_newer_geri_is_refused_by_name(location: str) -> None:
    open_store(location).close()
    if location.startswith("postgresql://"):
        import psycopg

        with psycopg.connect(location, autocommit=True) as conn:
            conn.execute("INSERT INTO migrations (name) VALUES ('m999_from_the_future')")
    else:
        with sqlite3.connect(location) as conn:
            conn.execute("INSERT INTO migrations (name) VALUES ('m999_from_the_future')")
    with pytest.raises(StoreError, match=r"newer geri.*m999_from_the_future"):
        open_store(location)


def test_an_unknown_store_scheme_is_refused() -> None:
    with pytest.raises(StoreError, match="Unknown store 'mysql://u:\\*\\*\\*@h/db'"):
        open_store("mysql://u:p@h/db")


def test_a_sqlite_file_removed_under_a_running_store_is_never_written_silently(
    tmp_path: Path,
) -> None:
    path = tmp_path / "g.db"
    store = open_store(path)
    store.set_state("k", "v")
    for sidecar in (path, path.with_name("g.db-wal"), path.with_name("g.db-shm")):
        sidecar.unlink(missing_ok=True)
    with pytest.raises(StoreError, match="removed or replaced"):
        store.set_state("k", "w")
    open_store(path).close()  # a new file at the same path: still not the one this store had
    with pytest.raises(StoreError, match="removed or replaced"):
        store.get_state("k")


def _drop_connections(postgres_url: str) -> int:
    """End every connection to `postgres_url`'s database from the server's side, as a restart,
    a failover or a proxy's idle timeout does, and wait until each is gone (the server ends
    them asynchronously); how many there were."""
    import psycopg

    database = postgres_url.rpartition("/")[2]
    with psycopg.connect(postgres_url, autocommit=True) as admin:
        ended = admin.execute(
            "SELECT pg_terminate_backend(pid, 10000) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()",
            (database,),
        ).fetchall()
    assert all(gone for (gone,) in ended)
    return len(ended)


def test_a_postgres_store_outlives_its_connection_being_dropped(postgres_url: str) -> None:
    """The server ends the store's idle connection (a restart, a failover, an idle timeout):
    the next call reconnects, rather than every call failing until geri is restarted."""
    store = open_store(postgres_url)
    try:
        store.set_state("kept", "yes")
        assert _drop_connections(postgres_url) == 1
        assert store.get_state("kept") == "yes"  # read on a new connection
        store.set_state("written", "after")  # and written
        assert store.get_state("written") == "after"
    finally:
        store.close()


def test_a_postgres_call_cut_mid_way_fails_alone(postgres_url: str) -> None:
    """A connection dropped while a call runs fails that call (whether it was done cannot be
    known, so it is not repeated); the next call reconnects."""
    store = open_store(postgres_url)
    try:
        sleeping = threading.Thread(target=_drop_connections_soon, args=(postgres_url,))
        sleeping.start()
        with pytest.raises(StoreError, match="The PostgreSQL store failed"):
            store._query("SELECT pg_sleep(5)")  # type: ignore[attr-defined]
        sleeping.join()
        store.set_state("next", "works")
        assert store.get_state("next") == "works"
    finally:
        store.close()


def _drop_connections_soon(postgres_url: str) -> None:
    time.sleep(0.5)
    _drop_connections(postgres_url)
