"""The daemon under hostile conditions: a settings file that breaks the parser, a socket path
that is not a socket, a port another process holds, options out of range."""

from __future__ import annotations

import asyncio
import json
import socket
from pathlib import Path

import pytest

from geri.daemon.server import DaemonServer
from geri.errors import ConfigError
from geri.paths import Paths
from geri.settings import Daemon, LocalModel, Settings
from geri.wire._pb.geri.v1 import wolf_pb2 as wolf
from tests.daemon.test_daemon import (  # noqa: F401 (reset_gate is autouse)
    Running,
    _has,
    _until_async,
    ask,
    reset_gate,
    settings_with,
    start,
)


async def test_the_settings_watcher_survives_a_file_that_breaks_the_parser(
    paths: Paths, tmp_path: Path
) -> None:
    running = await start(paths, settings_with(tmp_path))
    try:

        async def ids() -> set[str]:
            listed = await running.wolf.ListModels(wolf.ListModelsRequest())
            return {m.id for m in listed.models}

        paths.config_dir.mkdir(parents=True, exist_ok=True)
        paths.settings_file.write_text("[" * 100_000 + "]" * 100_000)  # nested 100k deep
        await asyncio.sleep(0.5)
        paths.settings_file.write_text(
            json.dumps({"models": [{"kind": "local", "id": "later", "path": "/x.gguf"}]})
        )
        await _until_async(lambda: _has(ids, "later"), True)  # still watching, and applies it
    finally:
        await running.stop()


async def test_a_socket_path_that_holds_a_file_or_a_directory_is_refused(
    paths: Paths, tmp_path: Path
) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("my notes")
    for taken in (notes, tmp_path):
        server = DaemonServer(paths, settings_with(tmp_path, socket=taken))
        with pytest.raises(ConfigError, match="is not a socket"):
            server.bind()
    assert notes.read_text() == "my notes"


async def test_a_stale_socket_is_replaced_and_a_live_one_refused(
    paths: Paths, tmp_path: Path
) -> None:
    path = tmp_path / "geri.sock"
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(str(path))
    stale.close()  # bound, never listening: what a killed daemon leaves behind
    assert (
        DaemonServer(paths, settings_with(tmp_path, socket=path))
        .bind()
        .address.endswith("geri.sock")
    )
    path.unlink()
    with socket.socket(socket.AF_UNIX) as live:
        live.bind(str(path))
        live.listen()
        with pytest.raises(ConfigError, match="Another process is listening"):
            DaemonServer(paths, settings_with(tmp_path, socket=path)).bind()


async def test_a_port_in_use_is_refused_not_shared(paths: Paths, tmp_path: Path) -> None:
    first = await start(paths, settings_with(tmp_path))
    try:
        port = int(first.address.rsplit(":", 1)[1])
        second = DaemonServer(paths, settings_with(tmp_path, port=port))
        with pytest.raises(ConfigError, match="in use"):
            second.bind()
        reply = await first.wolf.ProcessPrompt(ask("still mine"))
        assert reply.text == "echo: still mine"
    finally:
        await first.stop()


@pytest.mark.parametrize("port", ["99999", "-1"])
def test_ports_out_of_range_are_refused(geri_cli, port: str) -> None:  # type: ignore[no-untyped-def]
    proc = geri_cli("daemon", "--port", port)
    assert proc.returncode == 2
    assert "--port" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_settings_validation_covers_the_daemon_section() -> None:
    with pytest.raises(ValueError, match="less than or equal to 65535"):
        Daemon(port=70000)
    assert Settings(models=(LocalModel(id="m", path=Path("/m.gguf")),)).daemon.port == 50051


@pytest.mark.parametrize(
    ("method", "kind"),
    [
        ("/geri.v1.WolfService/ProcessPrompt", "unary_unary"),
        ("/geri.v1.WolfService/StreamPrompt", "unary_stream"),
        ("/geri.v1.VisionService/AnalyzeImage", "unary_unary"),
        ("/geri.v1.VisionService/AnalyzeVideoStream", "stream_stream"),
        ("/geri.v1.StatsService/GetStats", "unary_unary"),
    ],
)
async def test_a_request_that_is_not_a_valid_message_is_invalid_argument(
    paths: Paths, tmp_path: Path, method: str, kind: str
) -> None:
    import grpc

    running = await start(paths, settings_with(tmp_path))
    garbage = b"\xff\xff\xff\xff\xff"  # not a protobuf message of any type
    try:
        call = getattr(running.channel, kind)(method)
        with pytest.raises(grpc.aio.AioRpcError) as failed:
            if kind == "unary_unary":
                await call(garbage)
            elif kind == "unary_stream":
                async for _ in call(garbage):
                    pass
            else:
                async for _ in call(iter([garbage])):
                    pass
        assert failed.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "is not a valid" in (failed.value.details() or "")
        assert (await running.wolf.ProcessPrompt(ask("still fine"))).text == "echo: still fine"
    finally:
        await running.stop()
