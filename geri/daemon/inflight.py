"""Calls in flight, so that a shutdown waits for work and not for watchers.

grpc's own graceful stop waits for every open call, and a load balancer's health `Watch` stream
never ends by itself: a daemon told to stop would wait out its whole drain time for a call that
does no work. `InFlight` counts the calls that do work (everything but health and reflection),
on gRPC through its interceptor and on the HTTP API through `counting` (`daemon/http.py`, for the
whole response, a stream included). On shutdown the daemon refuses new ones on both (UNAVAILABLE
or 503, "shutting down"), waits until the count is zero or the drain time has passed, and only
then stops the servers, which ends the watchers. One count for both APIs is one drain time for
both: draining one and then the other would let a stop take twice `daemon.drain_seconds`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any

import grpc

from geri.errors import Unavailable
from geri.wire.convert import status_of

WATCHERS = ("/grpc.health.", "/grpc.reflection.")
CLOSING = "The daemon is shutting down; retry on another instance or once it is back."
TRAILERS = status_of(Unavailable(CLOSING))[1]


class InFlight(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    def __init__(self) -> None:
        self.count = 0
        self.closing = False
        self._idle = asyncio.Event()
        self._idle.set()

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(details)
        if handler is None or details.method.startswith(WATCHERS):
            return handler
        return self._counted(handler)

    async def drained(self, seconds: float) -> bool:
        """Refuse new calls; wait until none is in flight, at most `seconds`."""
        self.closing = True
        try:
            async with asyncio.timeout(seconds):
                await self._idle.wait()
        except TimeoutError:
            return False
        return True

    @contextmanager
    def counting(self) -> Iterator[None]:
        """Count the work done inside (an HTTP call) as a call in flight."""
        self._enter()
        try:
            yield
        finally:
            self._leave()

    def _enter(self) -> None:
        self.count += 1
        self._idle.clear()

    def _leave(self) -> None:
        self.count -= 1
        if self.count == 0:
            self._idle.set()

    def _counted(self, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
        """`handler` with its calls counted (and refused once closing)."""

        async def admitted(context: grpc.aio.ServicerContext) -> None:
            """Refuse a new call once closing (named as geri's refusal, so clients tell it
            from a broken connection)."""
            if self.closing:
                await context.abort(grpc.StatusCode.UNAVAILABLE, CLOSING, TRAILERS)

        def whole(behaviour: Any) -> Any:
            async def call(request: Any, context: grpc.aio.ServicerContext) -> Any:
                await admitted(context)
                with self.counting():
                    return await behaviour(request, context)

            return call

        def streamed(behaviour: Any) -> Any:
            async def call(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
                await admitted(context)
                with self.counting():
                    async for reply in behaviour(request, context):
                        yield reply

            return call

        kinds = (
            ("unary_unary", grpc.unary_unary_rpc_method_handler, whole),
            ("stream_unary", grpc.stream_unary_rpc_method_handler, whole),
            ("unary_stream", grpc.unary_stream_rpc_method_handler, streamed),
            ("stream_stream", grpc.stream_stream_rpc_method_handler, streamed),
        )
        for name, make, wrap in kinds:
            behaviour = getattr(handler, name)
            if behaviour is not None:
                return make(
                    wrap(behaviour),
                    request_deserializer=handler.request_deserializer,
                    response_serializer=handler.response_serializer,
                )
        return handler
