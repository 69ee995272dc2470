"""The engine: one async object that turns a `Request` into a `Result` or a stream of chunks.

Both front-ends (the CLI in-process, and the gRPC daemon) call exactly this. The engine is built
with its collaborators passed in (settings, store, a provider factory, clocks), so tests build
one from fakes and nothing here reaches for globals.

Every call, whether it succeeds, fails or is cancelled half-way, leaves one record in the
store's request log. Providers are created on first use and kept, so a local model stays
loaded between requests (unless `performance.keep_loaded` is off).
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncGenerator, Callable
from contextlib import aclosing
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType

from geri.cost import request_cost
from geri.engine.registry import ModelRegistry
from geri.errors import GeriError, InputError
from geri.prompt import build_messages
from geri.providers import Provider, ProviderContext, provider_factory
from geri.settings import Settings
from geri.store import RequestRecord, Store
from geri.store.base import Status
from geri.types import ChatRequest, Chunk, FinishReason, ModelInfo, Request, Result, Usage

ProviderBuilder = Callable[[ModelInfo], Provider]


@dataclass(frozen=True, slots=True)
class _Call:
    """One request on its way through the engine."""

    id: str
    info: ModelInfo
    provider: Provider
    chat: ChatRequest
    created_at: datetime
    started: float


class Engine:
    """The request pipeline. Use as `async with Engine(...) as engine:` or call `aclose()`."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        *,
        providers: ProviderBuilder | None = None,
        clock: Callable[[], float] = time.perf_counter,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.settings = settings
        self.store = store
        self.registry = ModelRegistry(settings, store)
        self._build_provider = providers or self._default_provider
        self._clock = clock
        self._now = now
        self._providers: dict[str, Provider] = {}

    async def __aenter__(self) -> Engine:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def ask(self, request: Request) -> Result:
        """Answer `request` in one piece."""
        call = await self._start(request)
        try:
            completion = await call.provider.generate(call.chat)
        except BaseException as exc:
            await self._finish(call, "", None, None, None, streamed=False, failure=exc)
            raise
        return await self._finish(
            call, completion.text, completion.usage, completion.finish_reason, None, streamed=False
        )

    async def stream(self, request: Request) -> AsyncGenerator[Chunk, None]:
        """Answer `request` chunk by chunk; the last chunk has `done=True` and the `result`."""
        call = await self._start(request)
        parts: list[str] = []
        usage: Usage | None = None
        finish: FinishReason | None = None
        ttft: float | None = None
        try:
            async with aclosing(call.provider.stream(call.chat)) as chunks:
                async for chunk in chunks:
                    usage = chunk.usage or usage
                    finish = chunk.finish_reason or finish
                    if chunk.text:
                        if ttft is None:
                            ttft = (self._clock() - call.started) * 1000
                        parts.append(chunk.text)
                        yield Chunk(chunk.text)
        except BaseException as exc:
            await self._finish(
                call, "".join(parts), usage, finish, ttft, streamed=True, failure=exc
            )
            raise
        result = await self._finish(call, "".join(parts), usage, finish, ttft, streamed=True)
        yield Chunk(
            usage=result.usage, finish_reason=result.finish_reason, done=True, result=result
        )

    async def list_models(self) -> list[ModelInfo]:
        return await asyncio.to_thread(self.registry.list)

    async def aclose(self) -> None:
        """Release every provider (unloading local models) and close the store."""
        providers, self._providers = list(self._providers.values()), {}
        for provider in providers:
            await provider.aclose()
        self.store.close()

    async def _start(self, request: Request) -> _Call:
        _validate(request)
        info = await asyncio.to_thread(self.registry.get, request.model)
        provider = self._providers.get(info.id)
        if provider is None or provider.info() != info:
            provider = self._build_provider(info)
            self._providers[info.id] = provider
        chat = ChatRequest(
            messages=build_messages(request),
            max_tokens=request.max_tokens,
            temperature=request.temperature,
            top_p=request.top_p,
            seed=request.seed,
            stop=request.stop,
        )
        return _Call(uuid.uuid4().hex, info, provider, chat, self._now(), self._clock())

    async def _finish(
        self,
        call: _Call,
        text: str,
        usage: Usage | None,
        finish: FinishReason | None,
        ttft_ms: float | None,
        *,
        streamed: bool,
        failure: BaseException | None = None,
    ) -> Result:
        """Build the result and log the call, whatever its outcome."""
        usage = usage or Usage()
        status: Status = "ok"
        error = None
        if isinstance(failure, asyncio.CancelledError | GeneratorExit):
            status, finish = "cancelled", "cancelled"
            error = "cancelled before the answer was complete"
        elif failure is not None:
            status, finish = "error", "error"
            error = str(failure) if isinstance(failure, GeriError) else repr(failure)
        result = Result(
            id=call.id,
            text=text,
            model=call.info.id,
            provider=call.info.provider,
            usage=usage,
            latency_ms=(self._clock() - call.started) * 1000,
            ttft_ms=ttft_ms,
            cost_micros=request_cost(usage, call.info),
            finish_reason=finish or "stop",
        )
        record = RequestRecord(
            id=call.id,
            created_at=call.created_at,
            model=result.model,
            provider=result.provider,
            prompt=json.dumps([{"role": m.role, "content": m.content} for m in call.chat.messages]),
            response=text,
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            latency_ms=result.latency_ms,
            ttft_ms=ttft_ms,
            cost_micros=result.cost_micros,
            status=status,
            error=error,
            streamed=streamed,
        )
        # shielded: a cancelled caller must still leave its record behind
        await asyncio.shield(asyncio.to_thread(self.store.record_request, record))
        if not self.settings.performance.keep_loaded:
            provider = self._providers.pop(call.info.id, None)
            if provider is not None:
                await provider.aclose()
        return result

    def _default_provider(self, info: ModelInfo) -> Provider:
        return provider_factory(info.provider)(info, ProviderContext(self.settings))


def _validate(request: Request) -> None:
    if not request.prompt.strip():
        raise InputError("The prompt is empty: pass it as an argument or pipe it on stdin.")
    if request.max_tokens < 1:
        raise InputError(f"--max-tokens must be at least 1 (got {request.max_tokens}).")
    if not 0.0 <= request.temperature <= 2.0:
        raise InputError(f"--temperature must be between 0 and 2 (got {request.temperature}).")
    if not 0.0 < request.top_p <= 1.0:
        raise InputError(f"top_p must be in (0, 1] (got {request.top_p}).")
