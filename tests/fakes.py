"""Scripted stand-ins for providers and clocks, for engine tests that need no real model."""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass, field

from geri.types import ChatRequest, Chunk, Completion, Message, ModelInfo, Usage


@dataclass
class Script:
    """One scripted answer: text split into chunks, or an error raised after `fail_after`."""

    chunks: list[str]
    error: BaseException | None = None
    fail_after: int = 0


class FakeProvider:
    """A provider whose answers are queued by the test with `enqueue`."""

    def __init__(self, info: ModelInfo, scripts: deque[Script] | None = None) -> None:
        self._info = info
        self.scripts: deque[Script] = deque() if scripts is None else scripts
        self.requests: list[ChatRequest] = []
        self.closed = 0

    def enqueue(
        self, *chunks: str, error: BaseException | None = None, fail_after: int = 0
    ) -> None:
        self.scripts.append(Script(list(chunks), error, fail_after))

    def info(self) -> ModelInfo:
        return self._info

    def _next(self, request: ChatRequest) -> Script:
        self.requests.append(request)
        if not self.scripts:
            raise AssertionError("FakeProvider called with nothing enqueued")
        return self.scripts.popleft()

    async def generate(self, request: ChatRequest) -> Completion:
        script = self._next(request)
        if script.error is not None:
            raise script.error
        text = "".join(script.chunks)
        return Completion(text, Usage(_words(request), len(script.chunks)), "stop")

    async def stream(self, request: ChatRequest) -> AsyncGenerator[Chunk, None]:
        script = self._next(request)
        for i, piece in enumerate(script.chunks):
            if script.error is not None and i == script.fail_after:
                raise script.error
            yield Chunk(piece)
        if script.error is not None and script.fail_after >= len(script.chunks):
            raise script.error
        yield Chunk(usage=Usage(_words(request), len(script.chunks)), finish_reason="stop")

    async def count_tokens(self, text: str) -> int:
        return len(text.split())

    async def count_messages(self, messages: Sequence[Message]) -> int:
        return sum(len(m.content.split()) + 2 for m in messages)

    async def probe(self) -> None:
        pass

    async def aclose(self) -> None:
        self.closed += 1


def _words(request: ChatRequest) -> int:
    return sum(len(m.content.split()) for m in request.messages)


@dataclass
class FakeClock:
    """A monotonic clock that moves only when told to (or by `step` on every reading)."""

    now: float = 1000.0
    step: float = 0.0
    readings: list[float] = field(default_factory=list)

    def __call__(self) -> float:
        self.now += self.step
        self.readings.append(self.now)
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
