"""Registering services so that a request which is not a valid message is INVALID_ARGUMENT.

grpcio decodes each request before the servicer sees it, and a message that does not parse
ends the call with its own status (UNKNOWN), outside geri's table. So the generated
`add_*_to_server` functions register onto a `_Recorder` instead of the server; each method's
handler is then registered again with the raw bytes passed through and decoded inside the call,
where a failure is answered with INVALID_ARGUMENT and a message that says what was wrong.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc
from google.protobuf.message import DecodeError

from geri.redaction import redact

Parse = Callable[[bytes], Any]


def add_checked(add_to_server: Callable[[Any, Any], None], servicer: Any, server: Any) -> None:
    """`add_to_server(servicer, server)`, with every request decoded inside the call."""
    recorder = _Recorder()
    add_to_server(servicer, recorder)
    for service, handlers in recorder.services.items():
        checked = {name: _checked(service, name, h) for name, h in handlers.items()}
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(service, checked),))
        server.add_registered_method_handlers(service, checked)


class _Recorder:
    """Stands in for the server while a generated function registers its handlers."""

    def __init__(self) -> None:
        self.services: dict[str, dict[str, Any]] = {}

    def add_generic_rpc_handlers(self, handlers: Any) -> None:
        """The same handlers arrive through `add_registered_method_handlers`."""

    def add_registered_method_handlers(self, service: str, handlers: dict[str, Any]) -> None:
        self.services[service] = handlers


def _checked(service: str, method: str, handler: Any) -> Any:
    """`handler` taking raw bytes, decoded inside the call (an async generator stays one)."""
    parse: Parse = handler.request_deserializer
    what = f"a valid {service}.{method} request"
    kind = (
        ("stream" if handler.request_streaming else "unary")
        + "_"
        + ("stream" if handler.response_streaming else "unary")
    )
    behaviour = getattr(handler, kind)

    async def request(raw: Any, context: Any) -> Any:
        if handler.request_streaming:
            return _parsed_stream(raw, context, parse, what)
        return await _parse(raw, context, parse, what)

    if handler.response_streaming:

        async def streaming(raw: Any, context: Any) -> AsyncIterator[Any]:
            async for reply in behaviour(await request(raw, context), context):
                yield reply

        return handler._replace(request_deserializer=None, **{kind: streaming})

    async def unary(raw: Any, context: Any) -> Any:
        return await behaviour(await request(raw, context), context)

    return handler._replace(request_deserializer=None, **{kind: unary})


async def _parse(raw: bytes, context: Any, parse: Parse, what: str) -> Any:
    try:
        return parse(raw)
    except DecodeError as exc:
        await context.abort(
            grpc.StatusCode.INVALID_ARGUMENT, redact(f"The request is not {what}: {exc}.")
        )


async def _parsed_stream(
    requests: AsyncIterator[bytes], context: Any, parse: Parse, what: str
) -> AsyncIterator[Any]:
    async for raw in requests:
        yield await _parse(raw, context, parse, what)
