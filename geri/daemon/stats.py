"""The daemon's metrics: the StatsService over gRPC, and Prometheus text over plain HTTP.

Both read the engine's live `Metrics`. The HTTP endpoint is opt-in (`daemon.metrics_port`),
answers `GET /metrics` only, and listens on `daemon.metrics_host` (loopback by default); it is a
few lines on asyncio's streams rather than a web framework, because that is all it needs to do.
"""

from __future__ import annotations

import asyncio
import logging

from geri.daemon.servicers import Context, DaemonState, rpc
from geri.wire._pb.geri.v1 import stats_pb2 as pb
from geri.wire._pb.geri.v1 import stats_pb2_grpc
from geri.wire.convert import snapshot_to_proto

log = logging.getLogger("geri.daemon")
PROMETHEUS_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class StatsServicer(stats_pb2_grpc.StatsServiceServicer):  # type: ignore[misc]
    def __init__(self, state: DaemonState) -> None:
        self.state = state

    @rpc
    async def GetStats(self, message: pb.StatsRequest, context: Context) -> pb.StatsResponse:
        return snapshot_to_proto(self.state.engine.metrics.snapshot())


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
