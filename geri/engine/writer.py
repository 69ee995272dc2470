"""The request log's writer: calls that end together are written in one transaction.

Every call leaves a row in the request log and settles its budget reservation. Done one call at
a time, each costs a hand-off to a worker thread and a transaction of its own; under many
concurrent calls those dominate what geri adds to a cloud call. So one writer thread takes
whatever has finished since its last write, settles each reservation, and inserts all their rows
in a single transaction (group commit).

A call's answer is returned only after its row is committed, so nothing is lost when the process
is killed, even with SIGKILL: a caller that has its answer has its row. A call is queued the
moment it is submitted, before its caller waits, so a caller cancelled while it waits still
leaves its row. On shutdown, `close` writes what is queued before it returns. A batch that fails
is split in halves and each half written again, down to single calls, so one bad row fails alone
and costs a few extra transactions rather than one per call in its batch.

The waiters are plain asyncio futures, settled from the writer thread with one wake-up per
event loop per batch: neither a task per call (as `asyncio.shield` would make) nor a
`concurrent.futures` bridge with a wake-up per call.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Generic, TypeVar

log = logging.getLogger("geri.engine")
MAX_BATCH = 256
T = TypeVar("T")
R = TypeVar("R")


@dataclass(slots=True)
class _Item(Generic[T, R]):
    work: T
    loop: asyncio.AbstractEventLoop
    waiter: asyncio.Future[R]


@dataclass(slots=True)
class _Settled(Generic[R]):
    """What one run hands back to one event loop: the waiters with their results or errors."""

    done: list[tuple[asyncio.Future[R], R]] = field(default_factory=list)
    failed: list[tuple[asyncio.Future[R], BaseException]] = field(default_factory=list)

    def deliver(self) -> None:
        """In the waiters' event loop: each result or error, unless nobody waits any more."""
        for waiter, result in self.done:
            if not waiter.cancelled():
                waiter.set_result(result)
        for waiter, error in self.failed:
            if not waiter.cancelled():
                waiter.set_exception(error)


class GroupWriter(Generic[T, R]):
    """Runs `write(items)` in its own thread over everything submitted since the last run; each
    submitter waits for the run that holds its item and gets that item's result."""

    def __init__(self, write: Callable[[list[T]], list[R]], name: str = "geri-writer") -> None:
        self._write = write
        self._queue: queue.SimpleQueue[_Item[T, R] | None] = queue.SimpleQueue()
        self._closed = False
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._serve, name=name, daemon=True)
        self._thread.start()
        self.batches = 0  # runs of `write`, for tests and metrics

    def submit(self, work: T) -> asyncio.Future[R]:
        """Queue `work` now; a future for its result, or its error, once it is written. The work
        is written even if nobody waits for it any more (the future cancelled)."""
        loop = asyncio.get_running_loop()
        item: _Item[T, R] = _Item(work, loop, loop.create_future())
        with self._lock:
            if self._closed:
                raise RuntimeError("the request log's writer is closed")
            self._queue.put(item)
        return item.waiter

    def close(self) -> None:
        """Write everything queued, then stop the thread."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._queue.put(None)
        self._thread.join()

    def _serve(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch = [first]
            stop = False
            while len(batch) < MAX_BATCH:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stop = True
                    break
                batch.append(item)
            settled: dict[asyncio.AbstractEventLoop, _Settled[R]] = {}
            self._run(batch, settled)
            for loop, waiters in settled.items():
                with suppress(RuntimeError):  # the loop is closed: nobody is waiting there
                    loop.call_soon_threadsafe(waiters.deliver)
            if stop:
                return

    def _run(
        self, batch: list[_Item[T, R]], settled: dict[asyncio.AbstractEventLoop, _Settled[R]]
    ) -> None:
        self.batches += 1
        try:
            results = self._write([item.work for item in batch])
        except Exception as exc:
            error = exc
        else:
            for item, result in zip(batch, results, strict=True):
                settled.setdefault(item.loop, _Settled()).done.append((item.waiter, result))
            return
        if len(batch) == 1:
            log.error("the request log could not be written", exc_info=error)
            only = batch[0]
            settled.setdefault(only.loop, _Settled()).failed.append((only.waiter, error))
            return
        half = len(batch) // 2  # bisect: the good rows are written, the bad one fails alone
        self._run(batch[:half], settled)
        self._run(batch[half:], settled)
