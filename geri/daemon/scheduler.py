"""The daemon's request queue: bounded, priority-ordered, with per-model concurrency limits.

A request asks for a slot for its model. It runs at once when the daemon and the model have
room and nobody of higher or equal priority is waiting for that model; otherwise it waits.
Waiting is bounded: past `max_waiting` the request is refused at once (`QueueFull`, sent to the
client as RESOURCE_EXHAUSTED with the queue's length), because a queue that only grows answers
nobody in time. When a slot frees, the highest priority waiter that its model allows goes next,
first come first served within a priority. A waiter whose client goes away (cancellation, or its
deadline) leaves the queue.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from geri.errors import QueueFull


@dataclass(order=True)
class _Waiter:
    priority: int  # negated: heapq pops the smallest
    seq: int
    model: str = field(compare=False)
    ready: asyncio.Future[None] = field(compare=False)


class Scheduler:
    def __init__(
        self, max_waiting: int, max_running: int, model_limit: Callable[[str], int]
    ) -> None:
        self.max_waiting = max_waiting
        self.max_running = max_running
        self._limit = model_limit
        self._heap: list[_Waiter] = []
        self._seq = itertools.count()
        self.running: Counter[str] = Counter()

    @property
    def waiting(self) -> int:
        return sum(1 for w in self._heap if not w.ready.done())

    def would_wait(self, model: str, priority: int = 0) -> bool:
        """Whether a call for `model` at `priority` would have to queue right now."""
        return not self._free(model) or any(
            w.model == model and -w.priority >= priority for w in self._heap
        )

    @asynccontextmanager
    async def slot(self, model: str, priority: int = 0) -> AsyncIterator[None]:
        """Hold a slot for `model` for the duration of the block."""
        if not self.would_wait(model, priority):
            self.running[model] += 1
        else:
            if self.waiting >= self.max_waiting:
                raise QueueFull(self.waiting)
            waiter = _Waiter(
                -priority, next(self._seq), model, asyncio.get_running_loop().create_future()
            )
            heapq.heappush(self._heap, waiter)
            try:
                await waiter.ready
            except asyncio.CancelledError:
                if waiter.ready.done() and not waiter.ready.cancelled():
                    self._release(model)  # the slot came just as the caller left
                else:
                    self._heap.remove(waiter)
                    heapq.heapify(self._heap)
                raise
        try:
            yield
        finally:
            self._release(model)

    def _free(self, model: str) -> bool:
        return sum(self.running.values()) < self.max_running and self.running[model] < self._limit(
            model
        )

    def _release(self, model: str) -> None:
        self.running[model] -= 1
        self._dispatch()

    def _dispatch(self) -> None:
        """Start waiters in priority order while there is room for their models."""
        kept: list[_Waiter] = []
        while self._heap and sum(self.running.values()) < self.max_running:
            waiter = heapq.heappop(self._heap)
            if waiter.ready.done():
                continue
            if self.running[waiter.model] < self._limit(waiter.model):
                self.running[waiter.model] += 1
                waiter.ready.set_result(None)
            else:
                kept.append(waiter)
        for waiter in kept:
            heapq.heappush(self._heap, waiter)
