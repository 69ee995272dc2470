"""The daemon's metrics (StatsService, Prometheus text), trace ids across gRPC, and its own log."""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest

from geri.logs import TRACE_METADATA
from geri.paths import Paths
from geri.settings import Settings
from geri.types import Request
from geri.wire import DaemonAddress
from geri.wire._pb.geri.v1 import stats_pb2, stats_pb2_grpc
from geri.wire._pb.geri.v1 import wolf_pb2 as pb
from geri.wire.client import DaemonClient
from tests.daemon.test_daemon import Running, reset_gate, settings_with, start

__all__ = ["reset_gate"]  # the gate fixture of the daemon tests, used here too


@pytest.fixture
async def daemon(paths: Paths, tmp_path: Path) -> AsyncIterator[Running]:
    running = await start(paths, settings_with(tmp_path, metrics_port=0))
    yield running
    await running.stop()


async def test_get_stats_reports_models_queue_and_process(daemon: Running) -> None:
    for prompt in ("one", "two", "one"):
        await daemon.wolf.ProcessPrompt(pb.WolfRequest(prompt=prompt))
    stub = stats_pb2_grpc.StatsServiceStub(daemon.channel)
    stats = await stub.GetStats(stats_pb2.StatsRequest())
    assert stats.requests == 3
    [echo] = stats.models
    assert (echo.model, echo.requests, echo.cached, echo.errors) == ("echo", 3, 1, 0)
    assert echo.HasField("latency_p50_ms")
    assert echo.output_tokens == 6
    assert (stats.queue_waiting, stats.queue_running) == (0, 0)
    assert stats.process.rss_bytes > 10 * 2**20
    live = await DaemonClient(DaemonAddress(daemon.address)).stats()
    assert live.models[0].requests == 3


async def test_prometheus_text_over_http(daemon: Running) -> None:
    await daemon.wolf.ProcessPrompt(pb.WolfRequest(prompt="hello"))
    server = daemon.server.metrics_server
    assert server is not None
    host, port = server.sockets[0].getsockname()[:2]
    async with httpx.AsyncClient() as http:
        page = await http.get(f"http://{host}:{port}/metrics")
        missing = await http.get(f"http://{host}:{port}/other")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/plain; version=0.0.4")
    assert re.search(
        r'^geri_requests_total\{model="echo",provider="llama.cpp",status="ok"\} 1$',
        page.text,
        re.MULTILINE,
    )
    assert (
        'geri_request_duration_seconds_bucket{model="echo",provider="llama.cpp",le="+Inf"} 1'
        in (page.text)
    )
    assert missing.status_code == 404


async def test_the_callers_trace_id_follows_the_request(daemon: Running) -> None:
    reply = await daemon.wolf.ProcessPrompt(
        pb.WolfRequest(prompt="traced"), metadata=((TRACE_METADATA, "trace-from-client"),)
    )
    assert reply.trace_id == "trace-from-client"
    fresh = await daemon.wolf.ProcessPrompt(pb.WolfRequest(prompt="untraced"))
    assert len(fresh.trace_id) == 16
    client = DaemonClient(DaemonAddress(daemon.address))
    result = await client.ask(Request("through the client", trace_id="abc"))
    assert result.trace_id == "abc"
    logged = {r.response: r.trace_id for r in daemon.server.state.engine.store.recent_requests()}
    assert logged["echo: traced"] == "trace-from-client"
    too_long = await daemon.wolf.ProcessPrompt(
        pb.WolfRequest(prompt="long id"), metadata=((TRACE_METADATA, "x" * 500),)
    )
    assert len(too_long.trace_id) == 16  # not taken: a new one is made


@asynccontextmanager
async def logging_daemon(paths: Paths, settings: Settings) -> AsyncIterator[str]:
    """A daemon that sets up this process's logging as `geri daemon` does; its address. The
    logging is taken down after, so later tests log as before."""
    from geri.daemon.server import DaemonServer
    from geri.engine import Engine
    from geri.store import open_store
    from tests.daemon.test_daemon import Gated

    engine = Engine(settings, open_store(paths.database), providers=Gated)
    server = DaemonServer(paths, settings, engine, own_logging=True)
    ready: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(server.run(on_ready=lambda up: ready.set_result(up.address)))
    try:
        yield await asyncio.wait_for(ready, 20)
    finally:
        server.stopping.set()
        await task
        for handler in list(logging.getLogger("geri").handlers):
            logging.getLogger("geri").removeHandler(handler)
            handler.close()


async def test_the_daemons_log_follows_its_settings(paths: Paths, tmp_path: Path) -> None:
    from tests.daemon.test_daemon import _until

    async with logging_daemon(paths, settings_with(tmp_path)):
        log_file = paths.log_dir / "geri.log"
        assert " INFO " in log_file.read_text()  # human lines to begin with
        paths.config_dir.mkdir(parents=True, exist_ok=True)
        paths.settings_file.write_text(
            json.dumps(
                {
                    "models": [{"kind": "local", "id": "echo", "path": "/e.gguf"}],
                    "logging": {"format": "json"},
                    "daemon": {"reload_interval": 0.1},
                }
            )
        )
        await _until(lambda: log_file.read_text().rstrip().endswith("}"))
        last = json.loads(log_file.read_text().splitlines()[-1])
        assert last["message"].startswith("settings reloaded")


@pytest.mark.parametrize("console_level", [None, "WARNING"])
async def test_the_daemon_shows_each_call_on_stderr_unless_its_settings_say_otherwise(
    paths: Paths, tmp_path: Path, capsys: pytest.CaptureFixture[str], console_level: str | None
) -> None:
    settings = settings_with(tmp_path)
    if console_level is not None:
        quieter = settings.logging.model_copy(update={"console_level": console_level})
        settings = settings.model_copy(update={"logging": quieter})
    async with (
        logging_daemon(paths, settings) as address,
        DaemonClient(DaemonAddress(address)) as client,
    ):
        await client.ask(Request("hello"))
    shown = capsys.readouterr().err
    logged = (paths.log_dir / "geri.log").read_text()
    assert "ok echo in" in logged  # the file keeps every call either way
    if console_level is None:
        assert "listening on" in shown
        assert "ok echo in" in shown
    else:
        assert "ok echo in" not in shown
        assert "listening on" not in shown  # INFO, below the level asked for
