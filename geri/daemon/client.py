"""Talking to a running daemon: how `geri ask` and `geri daemon status|stop` reach it.

The daemon leaves a state file (address, pid) while it runs. `running()` reads it and checks
the process is alive; `DaemonClient` then speaks gRPC to it and hands back geri's own types, so
the CLI renders a daemon's answer exactly like an in-process one.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import grpc

from geri.daemon._pb.geri.v1 import wolf_pb2 as pb
from geri.daemon._pb.geri.v1 import wolf_pb2_grpc
from geri.daemon.convert import (
    model_from_proto,
    notice_from_proto,
    request_to_proto,
    result_from_proto,
)
from geri.errors import GeriError, Unavailable
from geri.logs import TRACE_ID, TRACE_METADATA

if TYPE_CHECKING:
    from geri.engine.metrics import Snapshot
from geri.paths import Paths
from geri.types import Chunk, ModelInfo, Request, Result


@dataclass(frozen=True, slots=True)
class Found:
    address: str
    pid: int
    token: str | None


def running(paths: Paths) -> Found | None:
    """The daemon this user runs, if its state file names a live process."""
    from geri.daemon.server import state_file

    try:
        state = json.loads(state_file(paths).read_text())
        pid, address = int(state["pid"]), str(state["address"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not alive(pid):
        return None
    token = os.environ.get("GERI_DAEMON_TOKEN")
    if token is None and state.get("token_file"):
        try:
            token = Path(state["token_file"]).expanduser().read_text().strip()
        except OSError:
            token = None
    return Found(address, pid, token)


def alive(pid: int) -> bool:
    """Is process `pid` running (an exited one its parent has not reaped yet is not)?"""
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


class DaemonError(GeriError):
    """The daemon answered with an error status; the message is the daemon's."""


class DaemonClient:
    def __init__(self, found: Found) -> None:
        self.found = found
        self.channel = grpc.aio.insecure_channel(found.address)
        self.stub = wolf_pb2_grpc.WolfServiceStub(self.channel)
        self.metadata = (("authorization", f"Bearer {found.token}"),) if found.token else ()

    async def __aenter__(self) -> DaemonClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.channel.close()

    async def ask(self, request: Request, priority: int = 0) -> Result:
        try:
            response = await self.stub.ProcessPrompt(
                request_to_proto(request, priority), metadata=self._traced(request)
            )
        except grpc.aio.AioRpcError as exc:
            raise _error(exc, self.found) from None
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
            raise _error(exc, self.found) from None
        finally:
            call.cancel()

    def _traced(self, request: Request) -> tuple[tuple[str, str], ...]:
        """The call's metadata with the trace id: the request's, or the one in context (a
        request this process is serving, handed on to a peer)."""
        trace = request.trace_id or TRACE_ID.get()
        return (*self.metadata, (TRACE_METADATA, trace)) if trace else self.metadata

    async def stats(self) -> Snapshot:
        """The daemon's live metrics."""
        from geri.daemon._pb.geri.v1 import stats_pb2, stats_pb2_grpc
        from geri.daemon.stats import stats_from_proto
        from geri.engine.metrics import ProcessStats, Snapshot

        stub = stats_pb2_grpc.StatsServiceStub(self.channel)
        try:
            reply = await stub.GetStats(stats_pb2.StatsRequest(), metadata=self.metadata)
        except grpc.aio.AioRpcError as exc:
            raise _error(exc, self.found) from None
        process = reply.process
        return Snapshot(
            uptime_seconds=reply.uptime_seconds,
            requests=reply.requests,
            requests_per_second=reply.requests_per_second,
            waiting=reply.queue_waiting,
            running=reply.queue_running,
            process=ProcessStats(process.rss_bytes, process.cpu_percent, process.threads),
            models=[stats_from_proto(m) for m in reply.models],
        )

    async def list_models(self) -> list[ModelInfo]:
        try:
            response = await self.stub.ListModels(pb.ListModelsRequest(), metadata=self.metadata)
        except grpc.aio.AioRpcError as exc:
            raise _error(exc, self.found) from None
        return [model_from_proto(m) for m in response.models]

    async def health(self) -> str:
        from grpc_health.v1 import health_pb2, health_pb2_grpc

        stub = health_pb2_grpc.HealthStub(self.channel)
        try:
            reply = await stub.Check(
                health_pb2.HealthCheckRequest(), metadata=self.metadata, timeout=5
            )
        except grpc.aio.AioRpcError as exc:
            raise _error(exc, self.found) from None
        return str(health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status))


def _error(exc: grpc.aio.AioRpcError, found: Found) -> GeriError:
    code = exc.code()
    if code == grpc.StatusCode.UNAVAILABLE and "connect" in (exc.details() or "").lower():
        return Unavailable(
            f"The daemon at {found.address} does not answer; start it with 'geri daemon', "
            "or use --no-daemon."
        )
    return DaemonError(f"{exc.details()} (daemon status {code.name})")
