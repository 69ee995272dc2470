"""The engine: one async object that turns a `Request` into a `Result` or a stream of chunks.

Both front-ends (the CLI in-process, and the gRPC daemon) call exactly this. The engine is built
with its collaborators passed in (settings, store, key store, a provider factory, clocks), so
tests build one from fakes and nothing here reaches for globals.

Per call: resolve the model, build the messages, wait for the provider's rate limit, call it,
and on a `Retryable` failure back off and try again (never once part of a streamed answer has
been passed on: that becomes `IncompleteAnswer`). Every call, whether it succeeds, fails or is
cancelled half-way, leaves one record in the store's request log. Providers are created on first
use and kept, so a local model stays loaded between requests.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
import uuid
from collections.abc import AsyncGenerator, Awaitable, Callable
from contextlib import aclosing
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from types import TracebackType
from typing import TYPE_CHECKING, TypeVar

from geri.cost import request_cost
from geri.engine.ratelimit import RateLimiter
from geri.engine.registry import ModelRegistry
from geri.engine.retry import RetryPolicy
from geri.errors import GeriError, IncompleteAnswer, InputError, ProviderError, Retryable
from geri.keys import KeyStore
from geri.prompt import Prompt, QuestionTooLong, build_messages, build_prompt
from geri.prompt.tokens import TokenCounter, estimate_tokens
from geri.providers import (
    Provider,
    ProviderContext,
    key_env_names,
    provider_factory,
)
from geri.selection.balancer import LoadBalancer
from geri.selection.router import Router
from geri.selection.selector import require
from geri.settings import Settings
from geri.store import RequestRecord, Store
from geri.store.base import Status
from geri.types import (
    ChatRequest,
    Chunk,
    ContextReport,
    FinishReason,
    Message,
    ModelInfo,
    Request,
    Result,
    Usage,
)

if TYPE_CHECKING:
    import httpx

ProviderBuilder = Callable[[ModelInfo, ProviderContext], Provider]
AUTO = "auto"
T = TypeVar("T")


@dataclass(slots=True)
class _Call:
    """One request on its way through the engine, and what has come back so far."""

    id: str
    info: ModelInfo
    chat: ChatRequest
    created_at: datetime
    started: float
    report: ContextReport | None = None
    parts: list[str] = field(default_factory=list)
    usage: Usage | None = None
    finish: FinishReason | None = None
    ttft_ms: float | None = None


class Engine:
    """The request pipeline. Use as `async with Engine(...) as engine:` or call `aclose()`."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        *,
        keys: KeyStore | None = None,
        providers: ProviderBuilder | None = None,
        http: Callable[[], httpx.AsyncClient] | None = None,
        clock: Callable[[], float] = time.perf_counter,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        jitter: Callable[[], float] = random.random,
        rng: random.Random | None = None,
        free_ram: Callable[[], int] | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.registry = ModelRegistry(settings, store)
        self.keys = keys or KeyStore(
            key_env_names(), allow_plaintext=settings.keys.allow_plaintext_keyring
        )
        self._build_provider = providers or _build_provider
        self._http_factory = http
        self._http: httpx.AsyncClient | None = None
        self._clock = clock
        self._now = now
        self._sleep = sleep
        self._jitter = jitter
        self._retry = RetryPolicy.from_settings(settings.network)
        self.balancer = LoadBalancer(settings.routing, clock=clock, rng=rng)
        self.router = Router(
            settings,
            self.registry,
            store,
            self.keys,
            self.balancer,
            provider=self._provider,
            http=self.http,
            free_ram=free_ram,
        )
        self._providers: dict[str, Provider] = {}
        self._counters: dict[str, TokenCounter] = {}
        self._limiters: dict[str, RateLimiter] = {}

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
        call = await self._start(request, streamed=False)
        try:
            completion = await self._with_retries(
                call, lambda: self._provider(call.info).generate(call.chat)
            )
        except BaseException as exc:
            await self._finish(call, streamed=False, failure=exc)
            raise
        call.parts, call.usage, call.finish = (
            [completion.text],
            completion.usage,
            completion.finish_reason,
        )
        return await self._finish(call, streamed=False)

    async def stream(self, request: Request) -> AsyncGenerator[Chunk, None]:
        """Answer `request` chunk by chunk; the last chunk has `done=True` and the `result`."""
        call = await self._start(request, streamed=True)
        try:
            async with aclosing(self._stream_attempts(call)) as chunks:
                async for chunk in chunks:
                    yield chunk
        except BaseException as exc:
            await self._finish(call, streamed=True, failure=exc)
            raise
        result = await self._finish(call, streamed=True)
        yield Chunk(
            usage=result.usage, finish_reason=result.finish_reason, done=True, result=result
        )

    def reload(self, settings: Settings) -> None:
        """Serve the next requests with `settings` (the daemon's hot reload).

        Models whose entries changed are rebuilt on their next use; a model already loaded
        keeps its runtime options (threads, context size) until it is unloaded.
        """
        self.settings = settings
        self.registry.settings = settings
        self.router.settings = settings
        self.balancer.routing = settings.routing
        self._retry = RetryPolicy.from_settings(settings.network)
        self._limiters.clear()

    def counter(self, model: ModelInfo) -> TokenCounter:
        """The token counter of `model` (building its provider, which loads nothing yet)."""
        self._provider(model)
        return self._counters[model.id]

    async def list_models(self) -> list[ModelInfo]:
        return await asyncio.to_thread(self.registry.list)

    async def verify_key(self, provider: str, key: str) -> None:
        """Raise unless `provider` accepts `key` (a cheap authenticated call, nothing stored)."""
        from geri.providers.http import HttpProvider

        models = [m for m in await self.list_models() if m.provider == provider]
        info = models[0] if models else ModelInfo(provider, provider, "", location="cloud")
        client = self._build_provider(info, ProviderContext(self.settings, self.keys, self.http))
        if not isinstance(client, HttpProvider):
            raise InputError(f"Provider {provider!r} takes no API key.")
        await client.verify_key(key)

    async def aclose(self) -> None:
        """Release every provider (unloading local models), the HTTP client and the store."""
        providers, self._providers = list(self._providers.values()), {}
        for provider in providers:
            await provider.aclose()
        if self._http is not None:
            await self._http.aclose()
            self._http = None
        self.store.close()

    def http(self) -> httpx.AsyncClient:
        """The HTTP client shared by every cloud provider, created on first use."""
        if self._http is None:
            if self._http_factory is not None:
                self._http = self._http_factory()
            else:
                from geri.providers.http import make_client

                self._http = make_client(self.settings.network)
        return self._http

    async def resolve(self, request: Request) -> ModelInfo:
        """The model named, else the default one, else the best by score ('auto')."""
        if request.model not in (None, AUTO):
            return await asyncio.to_thread(self.registry.get, request.model)
        if request.model is None:
            default = await asyncio.to_thread(self.registry.default_id)
            if default is not None:
                return await asyncio.to_thread(self.registry.get, default)
        return self.balancer.choose(require(await self.router.route(request)))

    async def _start(self, request: Request, *, streamed: bool) -> _Call:
        """Resolve the model and fit the prompt; a failure here is logged like any other."""
        _validate(request)
        info = await self.resolve(request)
        call = _Call(
            uuid.uuid4().hex,
            info,
            _chat(request, build_messages(request)),
            self._now(),
            self._clock(),
        )
        try:
            try:
                prompt = await self._prompt(request, info)
            except QuestionTooLong as exc:
                bigger = await self._larger_model(request, info, exc.needed)
                if bigger is None:
                    raise
                prompt = await self._prompt(request, bigger)
                prompt = Prompt(prompt.messages, replace(prompt.report, switched_from=info.id))
                call.info = bigger
        except BaseException as exc:
            await self._finish(call, streamed=streamed, failure=exc)
            raise
        report = call.report = prompt.report
        call.chat = _chat(
            request,
            prompt.messages,
            max_tokens=min(request.max_tokens, report.window - report.prompt_tokens),
        )
        return call

    def _provider(self, info: ModelInfo) -> Provider:
        provider = self._providers.get(info.id)
        if provider is None or provider.info() != info:
            context = ProviderContext(self.settings, self.keys, self.http)
            provider = self._build_provider(info, context)
            self._providers[info.id] = provider
            self._counters[info.id] = TokenCounter(provider)
        return provider

    async def _prompt(self, request: Request, info: ModelInfo) -> Prompt:
        counter = self.counter(info)
        return await build_prompt(
            request, info.id, info.context_window, counter, self.settings.prompt
        )

    async def _larger_model(
        self, request: Request, info: ModelInfo, needed: int
    ) -> ModelInfo | None:
        """The smallest-window model of the same kind (local or cloud) the prompt may fit."""
        if request.model is not None or not self.settings.prompt.switch_to_larger_model:
            return None
        share = 1 - self.settings.prompt.response_reserve
        candidates = [
            m
            for m in await self.list_models()
            if m.location == info.location
            and m.context_window * share >= needed
            and self.router.unusable(m) is None
        ]
        return min(candidates, key=lambda m: m.context_window, default=None)

    async def _with_retries(self, call: _Call, attempt: Callable[[], Awaitable[T]]) -> T:
        tries = 0
        while True:
            tries += 1
            await self._throttle(call)
            with self.balancer.track(call.info) as report:
                started = self._clock()
                try:
                    result = await attempt()
                except ProviderError as exc:
                    report(False, (self._clock() - started) * 1000)
                    if not isinstance(exc, Retryable):
                        raise
                    retry_after = exc
                else:
                    report(True, (self._clock() - started) * 1000)
                    return result
            await self._back_off(tries, retry_after)

    async def _stream_attempts(self, call: _Call) -> AsyncGenerator[Chunk, None]:
        tries = 0
        while True:
            tries += 1
            call.usage = call.finish = None
            await self._throttle(call)
            try:
                with self.balancer.track(call.info) as report:
                    started = self._clock()
                    try:
                        async with aclosing(self._provider(call.info).stream(call.chat)) as chunks:
                            async for chunk in chunks:
                                call.usage = chunk.usage or call.usage
                                call.finish = chunk.finish_reason or call.finish
                                if chunk.text:
                                    if call.ttft_ms is None:
                                        call.ttft_ms = (self._clock() - call.started) * 1000
                                    call.parts.append(chunk.text)
                                    yield Chunk(chunk.text)
                    except ProviderError:
                        report(False, (self._clock() - started) * 1000)
                        raise
                    report(True, (self._clock() - started) * 1000)
                return
            except ProviderError as exc:
                if call.parts:
                    partial = "".join(call.parts)
                    raise IncompleteAnswer(
                        f"The answer from {call.info.id} broke off after {len(partial)} "
                        f"characters, so what was shown is incomplete: {exc}",
                        partial,
                    ) from exc
                if not isinstance(exc, Retryable):
                    raise
                await self._back_off(tries, exc)

    async def _back_off(self, tries: int, error: Retryable) -> None:
        delay = self._retry.delay(tries, error, self._jitter)
        if delay is None:
            raise error
        await self._sleep(delay)

    async def _throttle(self, call: _Call) -> None:
        options = self.settings.providers.get(call.info.provider)
        if options is None or not (options.requests_per_minute or options.tokens_per_minute):
            return
        limiter = self._limiters.get(call.info.provider)
        if limiter is None:
            limiter = RateLimiter(
                options.requests_per_minute,
                options.tokens_per_minute,
                clock=self._clock,
                sleep=self._sleep,
            )
            self._limiters[call.info.provider] = limiter
        prompt = sum(estimate_tokens(m.content) for m in call.chat.messages)
        await limiter.acquire(prompt + call.chat.max_tokens)

    async def _finish(
        self, call: _Call, *, streamed: bool, failure: BaseException | None = None
    ) -> Result:
        """Build the result and log the call, whatever its outcome."""
        usage = call.usage or Usage()
        text = "".join(call.parts)
        status: Status = "ok"
        error = None
        finish = call.finish
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
            ttft_ms=call.ttft_ms,
            cost_micros=request_cost(usage, call.info),
            finish_reason=finish or "stop",
            context=call.report,
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
            ttft_ms=call.ttft_ms,
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


def _build_provider(info: ModelInfo, context: ProviderContext) -> Provider:
    return provider_factory(info.provider)(info, context)


def _chat(
    request: Request, messages: tuple[Message, ...], max_tokens: int | None = None
) -> ChatRequest:
    return ChatRequest(
        messages=messages,
        max_tokens=max_tokens or request.max_tokens,
        temperature=request.temperature,
        top_p=request.top_p,
        seed=request.seed,
        stop=request.stop,
    )


def _validate(request: Request) -> None:
    if not request.prompt.strip():
        raise InputError("The prompt is empty: pass it as an argument or pipe it on stdin.")
    if request.max_tokens < 1:
        raise InputError(f"--max-tokens must be at least 1 (got {request.max_tokens}).")
    if not 0.0 <= request.temperature <= 2.0:
        raise InputError(f"--temperature must be between 0 and 2 (got {request.temperature}).")
    if not 0.0 < request.top_p <= 1.0:
        raise InputError(f"top_p must be in (0, 1] (got {request.top_p}).")
