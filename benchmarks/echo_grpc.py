"""A bare grpc.aio WolfService that answers at once: the ceiling for the daemon benchmark.

python benchmarks/echo_grpc.py PORT
"""

from __future__ import annotations

import asyncio
import sys

import grpc

from geri.wire._pb.geri.v1 import wolf_pb2 as pb
from geri.wire._pb.geri.v1 import wolf_pb2_grpc


class Echo(wolf_pb2_grpc.WolfServiceServicer):  # type: ignore[misc]
    async def ProcessPrompt(self, request: pb.WolfRequest, context: object) -> pb.WolfResponse:
        return pb.WolfResponse(text=request.prompt)


async def main(port: int) -> None:
    server = grpc.aio.server()
    wolf_pb2_grpc.add_WolfServiceServicer_to_server(Echo(), server)
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    await server.wait_for_termination()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
