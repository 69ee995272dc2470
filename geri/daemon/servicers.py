"""The gRPC services: thin adapters from messages to the engine, through the request queue.

Each call resolves its model (so the queue can apply that model's concurrency limit), waits
for a slot in priority order, and runs on the engine exactly as `geri ask` would. The engine is
read from the daemon's state on every call, so a settings reload takes effect for the next
request. `@rpc` and `@streaming_rpc` end a call that raised a geri error with its status (the
table in `geri.wire.convert`, with the error's class in a trailer); anything else is INTERNAL,
with the details in the daemon's log and not sent to the client.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from typing import NoReturn, TypeAlias, TypeVar

import grpc

from geri.daemon.scheduler import Scheduler
from geri.engine import Engine
from geri.errors import GeriError
from geri.logs import TRACE_METADATA
from geri.redaction import redact
from geri.types import ModelInfo, Request
from geri.wire._pb.geri.v1 import wolf_pb2 as pb
from geri.wire._pb.geri.v1 import wolf_pb2_grpc
from geri.wire.convert import (
    model_to_proto,
    notice_to_proto,
    request_from_proto,
    result_to_proto,
    status_of,
)

log = logging.getLogger("geri.daemon")
Servicer = TypeVar("Servicer")
Message = TypeVar("Message")
Reply = TypeVar("Reply")
Context: TypeAlias = grpc.aio.ServicerContext


@dataclass
class DaemonState:
    """What the services share; `engine` is replaced when the settings are reloaded.

    `capacities` holds each model's concurrency limit, noted when a call for it is admitted,
    so the scheduler reads it from memory rather than from the store on the event loop.
    """

    engine: Engine
    scheduler: Scheduler
    capacities: dict[str, int] = field(default_factory=dict)

    def admit(self, model: ModelInfo) -> str:
        """Note `model`'s limit before it is queued for; its id, the scheduler's key."""
        self.capacities[model.id] = self.engine.balancer.capacity(model)
        return model.id


def rpc(
    method: Callable[[Servicer, Message, Context], Awaitable[Reply]],
) -> Callable[[Servicer, Message, Context], Awaitable[Reply]]:
    """A unary method whose failures end the call with their status."""

    @functools.wraps(method)
    async def call(self: Servicer, message: Message, context: Context) -> Reply:
        try:
            return await method(self, message, context)
        except Exception as exc:
            await end(context, exc)

    return call


def streaming_rpc(
    method: Callable[[Servicer, Message, Context], AsyncIterator[Reply]],
) -> Callable[[Servicer, Message, Context], AsyncIterator[Reply]]:
    """A server-streaming method whose failures end the call with their status."""

    @functools.wraps(method)
    async def call(self: Servicer, message: Message, context: Context) -> AsyncIterator[Reply]:
        try:
            async for reply in method(self, message, context):
                yield reply
        except Exception as exc:
            await end(context, exc)

    return call


async def end(context: Context, failure: Exception) -> NoReturn:
    """End the call with `failure`'s status (grpc.aio's abort raises)."""
    if isinstance(failure, GeriError):
        code, trailers = status_of(failure)
        context.set_trailing_metadata(tuple((k, redact(v)) for k, v in trailers))
        await context.abort(code, redact(str(failure)))
    if isinstance(failure, grpc.aio.AbortError):  # the call was already ended
        raise failure
    log.exception("internal error", exc_info=failure)
    await context.abort(grpc.StatusCode.INTERNAL, "internal error; the daemon's log has details")
    raise AssertionError("unreachable: abort raises")


def trace_id(context: Context) -> str | None:
    """The caller's trace id (`x-geri-trace-id` metadata), if it sent a sensible one."""
    sent = dict(context.invocation_metadata() or ()).get(TRACE_METADATA)
    if isinstance(sent, str) and 0 < len(sent) <= 64 and sent.isprintable():
        return sent
    return None


class WolfServicer(wolf_pb2_grpc.WolfServiceServicer):  # type: ignore[misc]
    def __init__(self, state: DaemonState) -> None:
        self.state = state

    @asynccontextmanager
    async def _slot(self, request: Request, priority: int) -> AsyncIterator[None]:
        """A queue slot for `request`; when it would have to wait for one, a request the cache
        can answer skips the queue instead."""
        scheduler, model = self.state.scheduler, request.model or ""
        if scheduler.would_wait(model, priority) and await self.state.engine.is_cached(request):
            yield
            return
        async with scheduler.slot(model, priority):
            yield

    async def _pinned(self, request: Request, context: Context) -> Request:
        model = self.state.admit(await self.state.engine.resolve(request))
        return replace(request, model=model, trace_id=trace_id(context))

    @rpc
    async def ProcessPrompt(self, message: pb.WolfRequest, context: Context) -> pb.WolfResponse:
        request = await self._pinned(request_from_proto(message), context)
        async with self._slot(request, message.priority):
            result = await self.state.engine.ask(request)
        return result_to_proto(result)

    @streaming_rpc
    async def StreamPrompt(
        self, message: pb.WolfRequest, context: Context
    ) -> AsyncIterator[pb.WolfChunk]:
        request = await self._pinned(request_from_proto(message), context)
        async with self._slot(request, message.priority):
            async for chunk in self.state.engine.stream(request):
                if chunk.result is not None:
                    yield pb.WolfChunk(done=True, response=result_to_proto(chunk.result))
                elif chunk.notice is not None:
                    yield pb.WolfChunk(notice=notice_to_proto(chunk.notice))
                else:
                    yield pb.WolfChunk(text=chunk.text)

    @rpc
    async def ListModels(
        self, message: pb.ListModelsRequest, context: Context
    ) -> pb.ListModelsResponse:
        engine = self.state.engine
        default = await engine.default_model()
        models = await engine.list_models()
        return pb.ListModelsResponse(models=[model_to_proto(m, m.id == default) for m in models])
