"""geri's own log: formats, levels per component, rotation, trace ids, and redaction."""

from __future__ import annotations

import json
import logging
import os
from collections import deque
from collections.abc import Iterator
from pathlib import Path

import pytest

from geri.engine import Engine
from geri.logs import TRACE_ID, configure
from geri.providers import ProviderContext
from geri.settings import LocalModel, Logging, Settings
from geri.store import open_store
from geri.types import ModelInfo, Request
from tests.fakes import FakeProvider, Script

KEY = "sk-live-SECRET0123456789abcdef"


@pytest.fixture(autouse=True)
def clean() -> Iterator[None]:
    yield
    for handler in list(logging.getLogger("geri").handlers):
        logging.getLogger("geri").removeHandler(handler)
        handler.close()


def lines(log_dir: Path) -> list[dict[str, object]]:
    for handler in logging.getLogger("geri").handlers:
        handler.flush()
    return [json.loads(line) for line in (log_dir / "geri.log").read_text().splitlines()]


def test_json_records_carry_the_trace_id_and_extra_fields(tmp_path: Path) -> None:
    configure(Logging(format="json"), tmp_path, secrets=list)
    token = TRACE_ID.set("trace-1")
    try:
        logging.getLogger("geri.engine").info("served %s", "m", extra={"latency_ms": 12.5})
    finally:
        TRACE_ID.reset(token)
    logging.getLogger("geri.engine").info("outside any request")
    first, second = lines(tmp_path)
    assert first["message"] == "served m"
    assert (first["level"], first["logger"], first["trace_id"]) == (
        "INFO",
        "geri.engine",
        "trace-1",
    )
    assert first["latency_ms"] == 12.5
    assert second["trace_id"] == "-"


def test_keys_never_reach_the_log(tmp_path: Path) -> None:
    configure(Logging(format="json", redact=(r"internal-\d+",)), tmp_path, secrets=lambda: [KEY])
    log = logging.getLogger("geri.providers")
    log.warning("calling with %s", KEY)
    log.warning("header", extra={"auth": f"Bearer {KEY}"})
    log.warning("an unknown key sk-proj-abcdefghijklmnopqrstuv and internal-42")
    try:
        raise RuntimeError(f"server said: bad key {KEY}")
    except RuntimeError:
        log.exception("failed")
    text = (tmp_path / "geri.log").read_text()
    assert KEY not in text
    assert "sk-proj-abcdefghijklmnopqrstuv" not in text
    assert "internal-42" not in text
    records = lines(tmp_path)
    assert records[0]["message"] == "calling with sk-…cdef"
    assert "[redacted]" in str(records[2]["message"])
    assert "RuntimeError" in str(records[3]["exception"])


def test_levels_per_component(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    settings = Logging(level="WARNING", levels={"geri.providers": "DEBUG"})
    configure(settings, tmp_path, secrets=list, console_level="ERROR")
    logging.getLogger("geri.providers.openai").debug("wire details")
    logging.getLogger("geri.engine").info("not wanted")
    logging.getLogger("geri.engine").error("wanted everywhere")
    text = (tmp_path / "geri.log").read_text()
    assert "wire details" in text
    assert "not wanted" not in text
    assert "wanted everywhere" in text
    err = capsys.readouterr().err
    assert "wanted everywhere" in err
    assert "wire details" in err  # the component's own level wins on stderr too


def test_the_file_rotates(tmp_path: Path) -> None:
    configure(Logging(max_bytes=4096, backups=2), tmp_path, secrets=list, console_level="ERROR")
    for n in range(200):
        logging.getLogger("geri.engine").info("line %d %s", n, "x" * 60)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["geri.log", "geri.log.1", "geri.log.2"]
    assert all(p.stat().st_size <= 4096 + 200 for p in tmp_path.iterdir())


def test_a_file_another_process_appends_to_rotates_at_its_true_size(tmp_path: Path) -> None:
    configure(Logging(max_bytes=4096, backups=2), tmp_path, secrets=list, console_level="ERROR")
    logging.getLogger("geri.engine").info("first")
    with (tmp_path / "geri.log").open("a") as other:  # a CLI run next to the daemon
        other.write("y" * 4000 + "\n")
    logging.getLogger("geri.engine").info("second %s", "x" * 60)
    assert (tmp_path / "geri.log.1").exists()
    assert "second" in (tmp_path / "geri.log").read_text()


def test_a_log_that_is_not_a_regular_file_is_never_rotated(tmp_path: Path) -> None:
    (tmp_path / "geri.log").symlink_to(os.devnull)
    configure(Logging(max_bytes=4096, backups=2), tmp_path, secrets=list, console_level="ERROR")
    for n in range(200):
        logging.getLogger("geri.engine").info("line %d %s", n, "x" * 60)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["geri.log"]
    assert (tmp_path / "geri.log").resolve() == Path(os.devnull)


async def test_the_engine_logs_each_call_under_its_trace_id(tmp_path: Path) -> None:
    configure(Logging(format="json"), tmp_path / "logs", secrets=list, console_level="ERROR")
    scripts = deque([Script(["hello"]), Script(["again"])])

    def build(info: ModelInfo, context: ProviderContext) -> FakeProvider:
        return FakeProvider(info, scripts)

    settings = Settings(models=(LocalModel(id="fake", path=tmp_path / "f.gguf"),))
    engine = Engine(settings, open_store(tmp_path / "g.db"), providers=build)
    given = await engine.ask(Request("q", trace_id="from-the-caller"))
    made = await engine.ask(Request("p"))
    records = [r for r in lines(tmp_path / "logs") if r["logger"] == "geri.engine"]
    assert [r["trace_id"] for r in records] == ["from-the-caller", made.trace_id]
    assert given.trace_id == "from-the-caller"
    assert len(made.trace_id or "") == 16
    assert records[0]["model"] == "fake"
    assert engine.store.recent_requests(2)[1].trace_id == "from-the-caller"
