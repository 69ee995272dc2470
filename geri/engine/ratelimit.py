"""Client-side rate limits per provider: requests per minute and tokens per minute.

Two token buckets, refilled continuously; a call takes one request and its projected tokens
(prompt estimate + max output) before it is sent, waiting if either bucket is short. Waiters are
served in arrival order. Staying under a provider's limits costs a short wait here instead of a
429, a backoff and a retry there.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass


@dataclass(slots=True)
class _Bucket:
    capacity: float
    level: float
    per_second: float

    def refill(self, elapsed: float) -> None:
        self.level = min(self.capacity, self.level + elapsed * self.per_second)

    def wait_for(self, amount: float) -> float:
        return max(0.0, (min(amount, self.capacity) - self.level) / self.per_second)


class RateLimiter:
    """Requests/min and tokens/min limits; either may be None (unlimited)."""

    def __init__(
        self,
        requests_per_minute: int | None,
        tokens_per_minute: int | None,
        *,
        clock: Callable[[], float],
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._requests = _bucket(requests_per_minute)
        self._tokens = _bucket(tokens_per_minute)
        self._clock = clock
        self._sleep = sleep
        self._last = clock()
        self._lock = asyncio.Lock()

    async def acquire(self, tokens: int) -> float:
        """Wait until one request of `tokens` tokens is allowed; returns the seconds waited."""
        waited = 0.0
        async with self._lock:
            while True:
                now = self._clock()
                for bucket in (self._requests, self._tokens):
                    if bucket is not None:
                        bucket.refill(now - self._last)
                self._last = now
                wait = max(
                    self._requests.wait_for(1) if self._requests else 0.0,
                    self._tokens.wait_for(tokens) if self._tokens else 0.0,
                )
                if wait <= 0:
                    break
                await self._sleep(wait)
                waited += wait
            if self._requests is not None:
                self._requests.level -= 1
            if self._tokens is not None:
                self._tokens.level -= min(tokens, self._tokens.capacity)
        return waited


def _bucket(per_minute: int | None) -> _Bucket | None:
    if per_minute is None:
        return None
    return _Bucket(capacity=float(per_minute), level=float(per_minute), per_second=per_minute / 60)
