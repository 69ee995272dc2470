"""The gRPC services: thin adapters from messages to the engine, through the request queue.

Each call resolves its model (so the queue can apply that model's concurrency limit), waits
for a slot in priority order, and runs on the engine exactly as `geri ask` would. The engine is
read from the daemon's state on every call, so a settings reload takes effect for the next
request. geri's errors become gRPC status codes here, once, with their message intact; anything
else is INTERNAL, with the details in the daemon's log and not sent to the client.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, replace
from typing import Any, NoReturn

import grpc

from geri import errors
from geri.daemon._pb.geri.v1 import wolf_pb2 as pb
from geri.daemon._pb.geri.v1 import wolf_pb2_grpc
from geri.daemon.convert import (
    model_to_proto,
    notice_to_proto,
    request_from_proto,
    result_to_proto,
)
from geri.daemon.scheduler import QueueFull, Scheduler
from geri.engine import Engine
from geri.logs import TRACE_METADATA
from geri.types import Request

log = logging.getLogger("geri.daemon")

# most specific first: the first matching class decides
STATUS: tuple[tuple[type[Exception], grpc.StatusCode], ...] = (
    (errors.InputError, grpc.StatusCode.INVALID_ARGUMENT),
    (errors.BadRequest, grpc.StatusCode.INVALID_ARGUMENT),
    (errors.ContextTooLong, grpc.StatusCode.OUT_OF_RANGE),
    (errors.ModelNotFound, grpc.StatusCode.NOT_FOUND),
    (errors.ModelError, grpc.StatusCode.FAILED_PRECONDITION),
    (errors.KeyProblem, grpc.StatusCode.FAILED_PRECONDITION),
    (errors.AuthError, grpc.StatusCode.FAILED_PRECONDITION),
    (errors.ConfigError, grpc.StatusCode.FAILED_PRECONDITION),
    (errors.RateLimited, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (errors.BudgetExhausted, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (errors.ProviderTimeout, grpc.StatusCode.DEADLINE_EXCEEDED),
    (errors.IncompleteAnswer, grpc.StatusCode.ABORTED),
    (errors.Unavailable, grpc.StatusCode.UNAVAILABLE),
    (errors.GeriError, grpc.StatusCode.INTERNAL),
)


def status_for(error: Exception) -> grpc.StatusCode:
    return next(
        (code for kind, code in STATUS if isinstance(error, kind)), grpc.StatusCode.INTERNAL
    )


@dataclass
class DaemonState:
    """What the services share; `engine` is replaced when the settings are reloaded."""

    engine: Engine
    scheduler: Scheduler


class CallFailed(Exception):
    """Raised inside a call to end it with a status (mapped by `failures`)."""

    def __init__(self, code: grpc.StatusCode, message: str, trailers: Any = ()) -> None:
        super().__init__(message)
        self.code, self.message, self.trailers = code, message, trailers


@contextmanager
def failures() -> Iterator[None]:
    """geri's exceptions as gRPC statuses."""
    try:
        yield
    except QueueFull as exc:
        raise CallFailed(
            grpc.StatusCode.RESOURCE_EXHAUSTED, str(exc), (("queue-length", str(exc.waiting)),)
        ) from exc
    except errors.GeriError as exc:
        raise CallFailed(status_for(exc), str(exc)) from exc


def trace_id(context: grpc.aio.ServicerContext) -> str | None:
    """The caller's trace id (`x-geri-trace-id` metadata), if it sent a sensible one."""
    sent = dict(context.invocation_metadata() or ()).get(TRACE_METADATA)
    if isinstance(sent, str) and 0 < len(sent) <= 64 and sent.isprintable():
        return sent
    return None


async def end(context: grpc.aio.ServicerContext, failure: CallFailed) -> NoReturn:
    """End the call with `failure`'s status (grpc.aio's abort raises)."""
    if failure.trailers:
        context.set_trailing_metadata(failure.trailers)
    await context.abort(failure.code, failure.message)
    raise AssertionError("unreachable: abort raises")


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

    async def _pinned(self, request: Request, context: grpc.aio.ServicerContext) -> Request:
        model = await self.state.engine.resolve(request)
        return replace(request, model=model.id, trace_id=trace_id(context))

    async def ProcessPrompt(
        self, message: pb.WolfRequest, context: grpc.aio.ServicerContext
    ) -> pb.WolfResponse:
        try:
            with failures():
                request = await self._pinned(request_from_proto(message), context)
                async with self._slot(request, message.priority):
                    result = await self.state.engine.ask(request)
                return result_to_proto(result)
        except CallFailed as failure:
            await end(context, failure)

    async def StreamPrompt(
        self, message: pb.WolfRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.WolfChunk]:
        try:
            with failures():
                request = await self._pinned(request_from_proto(message), context)
                async with self._slot(request, message.priority):
                    async for chunk in self.state.engine.stream(request):
                        if chunk.result is not None:
                            yield pb.WolfChunk(done=True, response=result_to_proto(chunk.result))
                        elif chunk.notice is not None:
                            yield pb.WolfChunk(notice=notice_to_proto(chunk.notice))
                        else:
                            yield pb.WolfChunk(text=chunk.text)
        except CallFailed as failure:
            await end(context, failure)

    async def ListModels(
        self, message: pb.ListModelsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListModelsResponse:
        engine = self.state.engine
        default = engine.registry.default_id()
        models = await engine.list_models()
        return pb.ListModelsResponse(models=[model_to_proto(m, m.id == default) for m in models])
