"""Helpers shared by the command modules: running the engine, reading stdin."""

from __future__ import annotations

import asyncio
import os
import stat
import sys
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from geri.engine import Engine

T = TypeVar("T")


def with_engine(work: Callable[[Engine], Awaitable[T]]) -> T:
    """Open the user's engine, run `work` on it, and close it, all in one event loop."""
    from geri.engine import open_engine
    from geri.logs import configure
    from geri.paths import Paths

    paths = Paths.from_env()

    async def run() -> T:
        async with open_engine(paths) as engine:
            configure(
                engine.settings.logging, paths.log_dir, secrets=engine.keys.known, echo_calls=False
            )
            return await work(engine)

    return asyncio.run(run())


def piped_stdin() -> str | None:
    """The text piped into stdin (see `piped_bytes`), decoded as UTF-8."""
    data = piped_bytes()
    return data.decode("utf-8", errors="replace") if data else None


def piped_bytes() -> bytes | None:
    """The text piped or redirected into stdin, or None when stdin is a terminal or empty device.

    Only pipes and regular files are read, so a terminal, /dev/null or a closed stdin never
    makes geri wait for input that will not come.
    """
    try:
        mode = os.fstat(sys.stdin.fileno()).st_mode
    except (OSError, ValueError, AttributeError):
        return None
    if not (stat.S_ISFIFO(mode) or stat.S_ISREG(mode)):
        return None
    return sys.stdin.buffer.read() or None
