"""`geri stats`: what each model has done, from the request log and the running daemon."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Annotated

import typer

from geri.cli import render
from geri.cli.common import with_engine
from geri.errors import InputError

if TYPE_CHECKING:
    from geri.engine import Engine
    from geri.types import ModelStats, Snapshot

UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def stats(
    since: Annotated[str, typer.Option(help="The period to report on: 30m, 24h, 7d, 4w.")] = "24h",
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Requests, errors, latency percentiles, time to first token, tokens/s, cache hits and
    spend per model over a period; with a daemon running, its queue and resources too.

    Examples:

    \b
      geri stats
      geri stats --since 7d --json | jq '.models[] | {model, latency_p95_ms}'
    """
    period = _period(since)

    async def work(engine: Engine) -> tuple[list[ModelStats], Snapshot | None]:
        from geri.engine.metrics import summarize

        start = datetime.now(UTC) - period
        calls = await engine.finished_since(start)
        return summarize(calls), await _daemon()

    models, live = with_engine(work)
    if json_output:
        render.print_json(
            {
                "since": since,
                "models": [m.as_dict() for m in models],
                "daemon": live.as_dict() if live else None,
            }
        )
        return
    if not models:
        render.line(f"No requests in the last {since}.")
    else:
        render.model_stats(f"Last {since}", models)
    if live is not None:
        render.daemon_stats(live)


def _period(text: str) -> timedelta:
    match = re.fullmatch(r"\s*(\d+)\s*([mhdw])\s*", text)
    if not match or int(match[1]) == 0:
        raise InputError(f"--since takes a period like 30m, 24h, 7d or 4w (got {text!r}).")
    return timedelta(**{UNITS[match[2]]: int(match[1])})


async def _daemon() -> Snapshot | None:
    from geri.daemon.control import running
    from geri.paths import Paths

    found = running(Paths.from_env())
    if found is None:
        return None
    from geri.wire.client import DaemonClient

    async with DaemonClient(found) as client:
        return await client.stats()
