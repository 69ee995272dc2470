"""`geri daemon`: run the gRPC daemon, or ask about the running one."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from geri.cli import render
from geri.errors import InputError

if TYPE_CHECKING:
    from geri.settings import Daemon

app = typer.Typer(
    help="Serve the engine over gRPC (WolfService, VisionService, StatsService; see "
    "proto/geri/v1/), models kept warm.",
    invoke_without_command=True,
    rich_markup_mode=None,
    add_completion=False,
)


@app.callback()
def daemon(
    ctx: typer.Context,
    host: Annotated[
        str | None, typer.Option(help="Address to listen on (default 127.0.0.1).")
    ] = None,
    port: Annotated[
        int | None, typer.Option(min=0, max=65535, help="TCP port (default 50051; 0: any free).")
    ] = None,
    socket: Annotated[
        Path | None, typer.Option(help="Listen on this Unix socket (mode 0600) instead.")
    ] = None,
    token_file: Annotated[
        Path | None,
        typer.Option(help="Token clients must send; required beyond loopback."),
    ] = None,
    metrics_port: Annotated[
        int | None,
        typer.Option(
            min=0, max=65535, help="Serve Prometheus metrics at http://127.0.0.1:PORT/metrics."
        ),
    ] = None,
    http_port: Annotated[
        int | None,
        typer.Option(
            min=0,
            max=65535,
            help="Also serve the OpenAI-compatible API at http://HOST:PORT/v1 (0: any free "
            "port), for the openai client, LangChain and other tools.",
        ),
    ] = None,
) -> None:
    """Run the daemon in the foreground until SIGTERM or Ctrl-C.

    While it runs, 'geri ask' sends its requests to it, so models stay loaded between calls.
    Listening beyond 127.0.0.1 needs a token (--token-file, or GERI_DAEMON_TOKEN).
    """
    if ctx.invoked_subcommand is not None:
        return
    from geri.daemon.server import DaemonServer
    from geri.paths import Paths
    from geri.settings import load_settings

    paths = Paths.from_env()
    settings = load_settings(paths.settings_file)
    overrides = {
        key: value
        for key, value in {
            "host": host,
            "port": port,
            "socket": socket,
            "token_file": token_file,
            "metrics_port": metrics_port,
            "http_port": http_port,
        }.items()
        if value is not None
    }
    settings = settings.model_copy(update={"daemon": _daemon_options(settings.daemon, overrides)})

    async def run() -> None:
        server = DaemonServer(paths, settings, own_logging=True)
        await server.run()  # it logs where it listens

    import asyncio

    from geri.daemon.loops import loop_factory

    with asyncio.Runner(loop_factory=loop_factory(settings.daemon.event_loop)) as runner:
        runner.run(run())


def _daemon_options(options: Daemon, overrides: Mapping[str, object]) -> Daemon:
    """`options` with the command line's values, validated like the settings file."""
    from pydantic import ValidationError

    from geri.settings import Daemon

    try:
        return Daemon.model_validate({**options.model_dump(), **overrides})
    except ValidationError as exc:
        problems = "; ".join(f"--{'-'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise InputError(f"Invalid daemon option: {problems}.") from None


@app.command("status")
def status(
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Is a daemon running, where, and what does it serve?"""
    from geri.daemon.control import http_address, running
    from geri.paths import Paths
    from geri.wire.client import DaemonClient

    found = running(Paths.from_env())
    if found is None:
        if json_output:
            render.print_json({"running": False})
        else:
            render.line("No daemon is running. Start one with 'geri daemon'.")
        raise typer.Exit(1)

    async def ask() -> tuple[str, int]:
        async with DaemonClient(found) as client:
            return await client.health(), len(await client.list_models())

    import asyncio

    health, models = asyncio.run(ask())
    http = http_address(Paths.from_env())
    if json_output:
        render.print_json(
            {
                "running": True,
                "address": found.address,
                "http": http,
                "pid": found.pid,
                "health": health,
                "models": models,
            }
        )
    else:
        render.line(f"running at {found.address} (pid {found.pid}): {health}, {models} models")
        if http:
            render.line(f"OpenAI-compatible API at {http}/v1")


@app.command("stop")
def stop(
    timeout: Annotated[float, typer.Option(help="Seconds to wait for it to finish.")] = 60.0,
) -> None:
    """Stop the running daemon gracefully (calls in flight may finish)."""
    from geri.daemon.control import stop as stop_daemon
    from geri.paths import Paths

    pid = stop_daemon(Paths.from_env(), timeout)
    render.line(f"Stopped the daemon (pid {pid}).")
