"""When to try a failed call again, and how long to wait first.

Only `Retryable` errors are retried (rate limits, 5xx, overload, timeouts, lost connections),
a bounded number of times, with exponential backoff and full jitter so that many clients hit by
the same outage do not come back in step. A server's own Retry-After is honoured up to a limit;
a server asking for longer than that is not retried, since the caller is better served by the
error (or by another model) than by a minute of silence.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from geri.errors import Retryable
from geri.settings import Network


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    attempts: int = 4
    base: float = 0.5
    cap: float = 8.0
    max_retry_after: float = 60.0

    @classmethod
    def from_settings(cls, network: Network) -> RetryPolicy:
        return cls(
            network.max_attempts, network.backoff_base, network.backoff_max, network.max_retry_after
        )

    def delay(self, attempt: int, error: Retryable, random: Callable[[], float]) -> float | None:
        """Seconds to wait after failed attempt number `attempt` (from 1), or None to give up.

        >>> RetryPolicy(attempts=3, base=1.0).delay(1, Retryable("x"), lambda: 0.5)
        0.5
        >>> RetryPolicy(attempts=3).delay(3, Retryable("x"), lambda: 0.5) is None
        True
        """
        if attempt >= self.attempts:
            return None
        if error.retry_after is not None:
            wait = float(error.retry_after)
            return wait if wait <= self.max_retry_after else None
        return float(random() * min(self.cap, self.base * 2 ** (attempt - 1)))
