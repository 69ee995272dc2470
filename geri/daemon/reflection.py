"""Server reflection under its stable name, `grpc.reflection.v1`, beside `v1alpha`.

grpcio-reflection serves only `grpc.reflection.v1alpha.ServerReflection`, and clients that speak
the stable `v1` name (newer grpcurl, grpc-js tooling, Postman) get UNIMPLEMENTED. The two
versions are the same protocol under two package names, with the same messages and field
numbers, so the `v1` service is the library's own servicer behind a second name.
"""

from __future__ import annotations

from collections.abc import Sequence

import grpc
from grpc_reflection.v1alpha import reflection_pb2
from grpc_reflection.v1alpha._async import ReflectionServicer

REFLECTION_V1 = "grpc.reflection.v1.ServerReflection"


def serve_reflection_v1(names: Sequence[str], server: grpc.aio.Server) -> None:
    """Add `grpc.reflection.v1` to `server`, listing `names` (as `v1alpha` does)."""
    servicer = ReflectionServicer(tuple(names))
    handler = grpc.stream_stream_rpc_method_handler(
        servicer.ServerReflectionInfo,
        request_deserializer=reflection_pb2.ServerReflectionRequest.FromString,
        response_serializer=reflection_pb2.ServerReflectionResponse.SerializeToString,
    )
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(REFLECTION_V1, {"ServerReflectionInfo": handler}),)
    )
