"""Token authentication for a daemon that listens beyond loopback.

Every call, to every service, must carry `authorization: Bearer <token>`; anything else ends
with UNAUTHENTICATED before reaching a servicer. Tokens are compared in constant time.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from typing import Any

import grpc

MESSAGE = "This daemon needs a token: send 'authorization: Bearer <token>' metadata."


class TokenAuth(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    def __init__(self, token: str) -> None:
        self._expected = token.encode()

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(details)
        sent = str(dict(details.invocation_metadata or ()).get("authorization", ""))
        scheme, _, token = sent.strip().partition(" ")
        # the scheme is case-insensitive (RFC 6750 via RFC 7235), the token is not
        valid = scheme.lower() == "bearer" and hmac.compare_digest(
            token.strip().encode(), self._expected
        )
        if valid or handler is None:
            return handler
        return _refusing(handler)


def _refusing(handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
    async def unary(request: Any, context: grpc.aio.ServicerContext) -> None:
        await context.abort(grpc.StatusCode.UNAUTHENTICATED, MESSAGE)

    async def streaming(request: Any, context: grpc.aio.ServicerContext) -> Any:
        await context.abort(grpc.StatusCode.UNAUTHENTICATED, MESSAGE)
        yield  # pragma: no cover - makes this an async generator, as the RPC kind requires

    kinds = {
        (False, False): grpc.unary_unary_rpc_method_handler,
        (False, True): grpc.unary_stream_rpc_method_handler,
        (True, False): grpc.stream_unary_rpc_method_handler,
        (True, True): grpc.stream_stream_rpc_method_handler,
    }
    make = kinds[(handler.request_streaming, handler.response_streaming)]
    return make(
        streaming if handler.response_streaming else unary,
        request_deserializer=handler.request_deserializer,
        response_serializer=handler.response_serializer,
    )
