"""Helpers shared by the command modules: running the engine, reading stdin."""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, BinaryIO, TypeVar

from geri.errors import InputError
from geri.inputs import read_capped

if TYPE_CHECKING:
    from geri.engine import Engine

T = TypeVar("T")
PIPED_TEXT_LIMIT = 16 * 2**20  # a prompt or a key on stdin; far beyond any context window


def with_engine(work: Callable[[Engine], Awaitable[T]]) -> T:
    """Open the user's engine, run `work` on it, and close it, all in one event loop."""
    from geri.engine import open_engine
    from geri.logs import configure
    from geri.paths import Paths
    from geri.settings import load_settings

    paths = Paths.from_env()
    settings = load_settings(paths.settings_file)
    # a command serves its own requests one at a time: a batching context (parallel > 1)
    # would only add its allocation to the start-up
    performance = settings.performance.model_copy(update={"parallel": 1})
    settings = settings.model_copy(update={"performance": performance})

    async def run() -> T:
        async with open_engine(paths, settings) as engine:
            configure(
                engine.settings.logging, paths.log_dir, secrets=engine.keys.known, echo_calls=False
            )
            return await work(engine)

    import asyncio

    return asyncio.run(run())


def piped() -> BinaryIO | None:
    """stdin when something is piped or redirected into it, else None.

    Only pipes and regular files count, so a terminal, /dev/null or a closed stdin never makes
    geri wait for input that will not come.
    """
    try:
        mode = os.fstat(sys.stdin.fileno()).st_mode
    except (OSError, ValueError, AttributeError):
        return None
    if not (stat.S_ISFIFO(mode) or stat.S_ISREG(mode)):
        return None
    return sys.stdin.buffer


def piped_bytes(limit: int, setting: str | None = None) -> bytes | None:
    """What is piped into stdin, read up to `limit` bytes and refused beyond; None if nothing."""
    stream = piped()
    return (read_capped(stream, limit, "stdin", setting) or None) if stream else None


def piped_text(limit: int = PIPED_TEXT_LIMIT) -> str | None:
    """The text piped into stdin, which must be UTF-8, like a file's; None if nothing."""
    data = piped_bytes(limit)
    if data is None:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(
            f"The text on stdin is not valid UTF-8 (byte {exc.start}); convert it to UTF-8."
        ) from None
