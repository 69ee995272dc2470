"""The daemon's metrics: the StatsService over gRPC, and Prometheus text over plain HTTP.

Both read the engine's live `Metrics`. The HTTP endpoint is opt-in (`daemon.metrics_port`),
answers `GET /metrics` only, and listens on `daemon.metrics_host` (loopback by default); it is a
few lines on asyncio's streams rather than a web framework, because that is all it needs to do.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import asdict, fields

import grpc

from geri.daemon._pb.geri.v1 import stats_pb2 as pb
from geri.daemon._pb.geri.v1 import stats_pb2_grpc
from geri.daemon.servicers import DaemonState
from geri.engine.metrics import ModelStats

log = logging.getLogger("geri.daemon")
PROMETHEUS_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class StatsServicer(stats_pb2_grpc.StatsServiceServicer):  # type: ignore[misc]
    def __init__(self, state: DaemonState) -> None:
        self.state = state

    async def GetStats(
        self, message: pb.StatsRequest, context: grpc.aio.ServicerContext
    ) -> pb.StatsResponse:
        snapshot = self.state.engine.metrics.snapshot()
        return pb.StatsResponse(
            uptime_seconds=snapshot.uptime_seconds,
            requests=snapshot.requests,
            requests_per_second=snapshot.requests_per_second,
            queue_waiting=snapshot.waiting,
            queue_running=snapshot.running,
            process=pb.ProcessStats(**asdict(snapshot.process)),
            models=[stats_to_proto(m) for m in snapshot.models],
        )


def stats_to_proto(stats: ModelStats) -> pb.ModelStats:
    """The message has the dataclass's fields, by name; unknown figures stay unset."""
    return pb.ModelStats(**{k: v for k, v in asdict(stats).items() if v is not None})


def stats_from_proto(message: pb.ModelStats) -> ModelStats:
    def value(name: str) -> object:
        optional = message.DESCRIPTOR.fields_by_name[name].has_presence
        return None if optional and not message.HasField(name) else getattr(message, name)

    return ModelStats(**{f.name: value(f.name) for f in fields(ModelStats)})  # type: ignore[arg-type]


async def serve_prometheus(state: DaemonState, host: str, port: int) -> asyncio.Server:
    """Serve `GET /metrics` on `host:port` until the returned server is closed."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
            method, path, *_ = request.split(b"\r\n", 1)[0].decode("latin-1").split(" ")
            if method != "GET" or path.split("?")[0] != "/metrics":
                status, kind, body = "404 Not Found", "text/plain", b"only GET /metrics\n"
            else:
                status, kind = "200 OK", PROMETHEUS_TYPE
                body = state.engine.metrics.prometheus().encode()
            writer.write(
                f"HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {len(body)}\r\n"
                "Connection: close\r\n\r\n".encode()
                + body
            )
            await writer.drain()
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
            pass  # a client that sends no proper request gets nothing
        except ConnectionError:
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(answer, host, port)
    log.info("Prometheus metrics on http://%s:%s/metrics", host, port)
    return server
