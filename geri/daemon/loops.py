"""The daemon's event loop: uvloop where it is installed, else asyncio's own.

The daemon's serving thread is its bottleneck under many concurrent calls (every request's
gRPC callbacks, the upstream HTTP call, the engine's steps run on it). uvloop, libuv under
asyncio's interface, spends less CPU per callback and per socket operation: through a mock
upstream at 32 concurrent calls, the daemon answered about a tenth more calls per second with
it, at a higher p99 (benchmarks/bench_daemon.py runs both loops side by side; the figures are in
benchmarks/README.md). grpc.aio, aiohttp and uvicorn all run on it unchanged.
`daemon.event_loop` chooses: "auto" (uvloop when importable), "uvloop" or "asyncio".
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from geri.errors import ConfigError

EventLoopFactory = Callable[[], asyncio.AbstractEventLoop]


def loop_factory(choice: str) -> EventLoopFactory | None:
    """The factory of the loop `choice` names; None for asyncio's default."""
    if choice == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:
        if choice == "uvloop":
            raise ConfigError(
                "daemon.event_loop is 'uvloop', but uvloop is not installed: "
                "pip install uvloop, or set daemon.event_loop to 'auto'."
            ) from None
        return None
    factory: EventLoopFactory = uvloop.new_event_loop
    return factory


def loop_name(loop: asyncio.AbstractEventLoop) -> str:
    """'uvloop' or 'asyncio': which implementation `loop` is, for the start-up line."""
    return "uvloop" if type(loop).__module__.startswith("uvloop") else "asyncio"
