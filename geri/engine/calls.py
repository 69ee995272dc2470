"""One call to one model: its state, its attempts, and what it leaves behind.

`Call` is a request on its way to one model; when it ends, `outcome` says what the request log
keeps (and what the cache may keep) and `result` what the caller gets. `Caller` makes the
attempts, streamed or not in one loop (a whole answer is one chunk): it waits for the provider's
rate limit, reports each attempt's outcome to the load balancer, and on a `Retryable` failure
backs off (full jitter, Retry-After honoured) and tries again until the policy gives up. A
stream that fails after text was passed on is never retried: that is an `IncompleteAnswer`,
carrying the partial text.

Nor is a priced call whose reply arrived but could not be read (`MalformedReply`) retried on
the same reservation: the provider has most likely billed that reply, for an amount geri cannot
know, so the call is charged what was reserved for it (`Call.outcome`), and another attempt
would need a reservation of its own. The call ends there, and the engine falls back as it does
for any unavailable model, with a new reservation for the next one. A budget then holds against
an upstream that answers garbage: every reply it may have billed is charged, and no call is
charged beyond what it reserved.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncGenerator, Awaitable, Callable
from contextlib import aclosing
from dataclasses import dataclass, field
from datetime import datetime
from typing import TypeVar

from geri.cost import charge
from geri.cost.ledger import Hold
from geri.engine.cache import Cached
from geri.engine.ratelimit import RateLimiter
from geri.engine.retry import RetryPolicy
from geri.errors import GeriError, IncompleteAnswer, MalformedReply, ProviderError, Retryable
from geri.prompt.tokens import estimate_tokens
from geri.providers import Provider
from geri.selection.balancer import LoadBalancer
from geri.settings import Settings
from geri.store import RequestRecord
from geri.store.base import Status
from geri.types import (
    REFUSED,
    ChatRequest,
    Chunk,
    ContextReport,
    FinishReason,
    ModelInfo,
    Notice,
    Request,
    Result,
    Usage,
)

T = TypeVar("T")
log = logging.getLogger("geri.engine")


@dataclass(slots=True)
class Call:
    """One request to one model on its way through the engine, and what has come back so far.

    A fallback starts a new `Call` for the next model; `notices` is shared by all of them.
    """

    id: str
    request: Request
    info: ModelInfo
    chat: ChatRequest
    created_at: datetime
    started: float
    streamed: bool
    notices: list[Notice]
    key: str | None = None
    hold: Hold | None = None
    report: ContextReport | None = None
    parts: list[str] = field(default_factory=list)
    usage: Usage | None = None
    finish: FinishReason | None = None
    ttft_ms: float | None = None
    anomaly: str | None = None  # why the usage reported was not believed (set by `outcome`)
    reasoning: int = 0  # of the output tokens charged, the reasoning ones (set by `outcome`)
    estimated: bool = False  # the usage charged was counted by geri (set by `outcome`)
    produced: int | None = None  # the answer's tokens as the model counts them, when unreported

    def outcome(
        self, now: float, failure: BaseException | None, cached: Cached | None
    ) -> tuple[RequestRecord, Cached | None, FinishReason]:
        """The call as the request log keeps it, the answer to cache (a complete one, and only
        if the cache is on for it), and why the answer ended."""
        text = "".join(self.parts)
        status: Status = "ok"
        error = None
        finish = self.finish
        if isinstance(failure, asyncio.CancelledError | GeneratorExit):
            status, finish = "cancelled", "cancelled"
            error = "cancelled before the answer was complete"
        elif failure is not None:
            status, finish = "error", "error"
            error = str(failure) if isinstance(failure, GeriError) else repr(failure)
        finish = finish or "stop"
        if status == "ok" and finish in REFUSED:
            status = "refused"
        latency = (now - self.started) * 1000
        reserved = self.hold.amount_micros if self.hold else 0
        billed = charge(
            self.usage,
            self.info,
            prompt_tokens=self.report.prompt_tokens if self.report else 0,
            max_tokens=self.chat.max_tokens,
            produced_tokens=self.produced if self.produced is not None else estimate_tokens(text),
            reserved_micros=reserved,
        )
        usage, cost, self.anomaly = billed.usage, billed.cost_micros, billed.anomaly
        self.reasoning, self.estimated = usage.reasoning_tokens, usage.estimated
        if billed_unread(self, failure) and reserved > cost:  # what it billed is unknown
            cost, self.anomaly = reserved, "a reply geri could not read"
        if cached:
            usage, cost, self.anomaly = cached.usage, 0, None
            self.reasoning, self.estimated = usage.reasoning_tokens, usage.estimated
        record = RequestRecord(
            id=self.id,
            created_at=self.created_at,
            model=cached.model if cached else self.info.id,
            provider=self.info.provider,
            prompt=json.dumps([{"role": m.role, "content": m.content} for m in self.chat.messages]),
            response=text,
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            latency_ms=latency,
            ttft_ms=latency if cached else self.ttft_ms,
            cost_micros=cost,
            status=status,
            error=error,
            streamed=self.streamed,
            cached=cached is not None,
            trace_id=self.request.trace_id,
            end_user=self.request.end_user,
        )
        answer = None
        if status == "ok" and self.key is not None and finish in ("stop", "length"):
            answer = Cached(text, usage, finish, self.report, self.info.id)
        return record, answer, finish

    def result(self, record: RequestRecord, finish: FinishReason) -> Result:
        """What the caller gets back, notices so far included."""
        return Result(
            id=self.id,
            text=record.response,
            model=record.model,
            provider=record.provider,
            usage=Usage(
                record.input_tokens,
                record.output_tokens,
                reasoning_tokens=self.reasoning,
                estimated=self.estimated,
            ),
            latency_ms=record.latency_ms,
            ttft_ms=record.ttft_ms,
            cost_micros=record.cost_micros,
            finish_reason=finish,
            context=self.report,
            cached=record.cached,
            notices=tuple(self.notices),
            trace_id=record.trace_id,
        )


def billed_unread(call: Call, failure: BaseException | None) -> bool:
    """Whether `failure` is a reply that may have been billed but could not be read, on a call
    that holds money for it: charged its reservation, and never retried on it."""
    return (
        isinstance(failure, MalformedReply)
        and call.hold is not None
        and call.hold.amount_micros > 0
    )


class Caller:
    def __init__(
        self,
        settings: Callable[[], Settings],
        balancer: LoadBalancer,
        provider: Callable[[ModelInfo], Provider],
        *,
        clock: Callable[[], float],
        sleep: Callable[[float], Awaitable[None]],
        jitter: Callable[[], float],
    ) -> None:
        self._settings = settings
        self._balancer = balancer
        self._provider = provider
        self._clock = clock
        self._sleep = sleep
        self._jitter = jitter
        # derived from the settings in effect, and made again when they change
        self._retry: tuple[object, RetryPolicy] | None = None
        self._limiters: dict[str, tuple[object, RateLimiter]] = {}

    @property
    def retry(self) -> RetryPolicy:
        network = self._settings().network
        if self._retry is None or self._retry[0] is not network:
            self._retry = (network, RetryPolicy.from_settings(network))
        return self._retry[1]

    async def attempts(self, call: Call) -> AsyncGenerator[Chunk, None]:
        """`call`'s answer as text chunks, attempt after attempt until one succeeds or the
        policy gives up. A non-streamed call is one chunk; a streamed one that broke off after
        text was passed on is an `IncompleteAnswer`, never retried."""
        tries = 0
        while True:
            tries += 1
            call.usage = call.finish = None
            await self._throttle(call)
            try:
                with self._balancer.track(call.info) as report:
                    started = self._clock()
                    try:
                        async with aclosing(self._chunks(call)) as chunks:
                            async for chunk in chunks:
                                call.usage = chunk.usage or call.usage
                                call.finish = chunk.finish_reason or call.finish
                                if chunk.text:
                                    if call.streamed and call.ttft_ms is None:
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
                if not isinstance(exc, Retryable) or billed_unread(call, exc):
                    raise
                await self._back_off(tries, exc)

    async def _chunks(self, call: Call) -> AsyncGenerator[Chunk, None]:
        """One attempt: the provider's stream, or its whole answer as a single chunk."""
        provider = self._provider(call.info)
        if not call.streamed:
            done = await provider.generate(call.chat)
            yield Chunk(done.text, usage=done.usage, finish_reason=done.finish_reason)
            return
        async with aclosing(provider.stream(call.chat)) as chunks:
            async for chunk in chunks:
                yield chunk

    async def _back_off(self, tries: int, error: Retryable) -> None:
        delay = self.retry.delay(tries, error, self._jitter)
        if delay is None:
            raise error
        log.info("attempt %d failed (%s); retrying in %.2f s", tries, error, delay)
        await self._sleep(delay)

    async def _throttle(self, call: Call) -> None:
        options = self._settings().providers.get(call.info.provider)
        if options is None or not (options.requests_per_minute or options.tokens_per_minute):
            return
        kept = self._limiters.get(call.info.provider)
        if kept is not None and kept[0] is options:
            limiter = kept[1]
        else:  # new, or its provider's options changed
            limiter = RateLimiter(
                options.requests_per_minute,
                options.tokens_per_minute,
                clock=self._clock,
                sleep=self._sleep,
            )
            self._limiters[call.info.provider] = (options, limiter)
        prompt = sum(estimate_tokens(m.content) for m in call.chat.messages)
        await limiter.acquire(prompt + call.chat.max_tokens)
