"""A client of a geri daemon: how the CLI, and a peer provider, reach one over gRPC.

`DaemonClient` speaks to the address in a `DaemonAddress` and hands back geri's own types, so
the CLI renders a daemon's answer exactly like an in-process one. A failed call raises the
geri error the daemon raised (through `convert.error_from_status`), so retries and fallback act
on a remote failure as on a local one.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable
from typing import TypeVar

import grpc

from geri.errors import GeriError, Unavailable
from geri.logs import TRACE_ID, TRACE_METADATA
from geri.types import Chunk, ModelInfo, Request, Result, Snapshot
from geri.wire import DaemonAddress
from geri.wire._pb.geri.v1 import wolf_pb2 as pb
from geri.wire._pb.geri.v1 import wolf_pb2_grpc
from geri.wire.convert import (
    ERROR_TRAILER,
    error_from_status,
    model_from_proto,
    notice_from_proto,
    request_to_proto,
    result_from_proto,
    snapshot_from_proto,
)

T = TypeVar("T")


class DaemonClient:
    def __init__(self, daemon: DaemonAddress) -> None:
        self.daemon = daemon
        self.channel = grpc.aio.insecure_channel(daemon.address)
        self.stub = wolf_pb2_grpc.WolfServiceStub(self.channel)
        self.metadata = (("authorization", f"Bearer {daemon.token}"),) if daemon.token else ()

    async def __aenter__(self) -> DaemonClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.channel.close()

    async def ask(self, request: Request, priority: int = 0) -> Result:
        message = request_to_proto(request, priority)
        response = await self._call(
            self.stub.ProcessPrompt(message, metadata=self._traced(request))
        )
        return result_from_proto(response)

    async def stream(self, request: Request, priority: int = 0) -> AsyncGenerator[Chunk, None]:
        call = self.stub.StreamPrompt(
            request_to_proto(request, priority), metadata=self._traced(request)
        )
        try:
            async for chunk in call:
                if chunk.done:
                    result = result_from_proto(chunk.response)
                    yield Chunk(usage=result.usage, done=True, result=result)
                elif chunk.HasField("notice"):
                    yield Chunk(notice=notice_from_proto(chunk.notice))
                else:
                    yield Chunk(chunk.text)
        except grpc.aio.AioRpcError as exc:
            raise self._error(exc) from None
        finally:
            call.cancel()

    async def stats(self) -> Snapshot:
        """The daemon's live metrics."""
        from geri.wire._pb.geri.v1 import stats_pb2, stats_pb2_grpc

        stub = stats_pb2_grpc.StatsServiceStub(self.channel)
        reply = await self._call(stub.GetStats(stats_pb2.StatsRequest(), metadata=self.metadata))
        return snapshot_from_proto(reply)

    async def list_models(self) -> list[ModelInfo]:
        listing = self.stub.ListModels(pb.ListModelsRequest(), metadata=self.metadata)
        return [model_from_proto(m) for m in (await self._call(listing)).models]

    async def health(self) -> str:
        from grpc_health.v1 import health_pb2, health_pb2_grpc

        stub = health_pb2_grpc.HealthStub(self.channel)
        check = stub.Check(health_pb2.HealthCheckRequest(), metadata=self.metadata, timeout=5)
        reply = await self._call(check)
        return str(health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status))

    def _traced(self, request: Request) -> tuple[tuple[str, str], ...]:
        """The call's metadata with the trace id: the request's, or the one in context (a
        request this process is serving, handed on to a peer)."""
        trace = request.trace_id or TRACE_ID.get()
        return (*self.metadata, (TRACE_METADATA, trace)) if trace else self.metadata

    async def _call(self, call: Awaitable[T]) -> T:
        try:
            return await call
        except grpc.aio.AioRpcError as exc:
            raise self._error(exc) from None

    def _error(self, exc: grpc.aio.AioRpcError) -> GeriError:
        details = exc.details() or ""
        trailers = tuple(exc.trailing_metadata() or ())
        from_daemon = any(key == ERROR_TRAILER for key, _ in trailers)
        if exc.code() == grpc.StatusCode.UNAVAILABLE and not from_daemon:
            # grpc's words when nothing listens there ("Connection reset", with "connect" in
            # it too, is a daemon gone mid-call)
            if "failed to connect" in details.lower():
                return Unavailable(
                    f"The daemon at {self.daemon.address} does not answer; start it with "
                    "'geri daemon', or use --no-daemon."
                )
            # the transport's words ("Socket closed"): the daemon went away mid-call
            return Unavailable(
                f"The connection to the daemon at {self.daemon.address} broke ({details}); it "
                "may have stopped. Ask again, or use --no-daemon."
            )
        return error_from_status(exc.code(), details, trailers)
