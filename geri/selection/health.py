"""Health checks: can each model be reached right now, and how fast?

The probes are the cheapest honest ones: a local model's file is re-read (header and size,
nothing loaded); a remote model's API is asked for its model listing, with the key it would use,
which costs no tokens. Results go to the store, where they feed each model's uptime and so its
reliability factor. The daemon runs a round every `routing.health_interval` seconds; `geri
models health` runs one on demand.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from geri.errors import GeriError
from geri.providers.base import Provider
from geri.redaction import redact
from geri.store.base import HealthCheck
from geri.types import ModelInfo


async def probe(model: ModelInfo, provider: Callable[[], Provider]) -> HealthCheck:
    """One check of `model`; never raises for the model's own failure."""
    started = time.perf_counter()
    try:
        await provider().probe()
    except GeriError as exc:
        return HealthCheck(model.id, datetime.now(UTC), False, None, redact(str(exc))[:500])
    latency = (time.perf_counter() - started) * 1000
    return HealthCheck(model.id, datetime.now(UTC), True, round(latency, 3))


async def run_periodically(
    check_all: Callable[[], Awaitable[object]], interval: float, stop: asyncio.Event
) -> None:
    """Call `check_all` every `interval` seconds until `stop` is set."""
    while not stop.is_set():
        await check_all()
        try:
            await asyncio.wait_for(stop.wait(), timeout=interval)
        except TimeoutError:
            continue
