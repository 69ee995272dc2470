"""An OpenAI-compatible HTTP API on the daemon: `/v1/chat/completions`, `/v1/models`, `/healthz`.

Every server a geri user might otherwise run (Ollama, llama.cpp's server, vLLM, LM Studio,
LiteLLM) speaks this API, and so do the official `openai` client, LangChain's `ChatOpenAI`,
editors and scripts. It is served by Starlette on uvicorn in the daemon's own event loop, from
the same engine as gRPC: the same queue and priorities (`x-geri-priority`), budgets, fallback,
cache, request log, metrics and trace ids (`x-geri-trace-id`).

The rules are gRPC's: loopback by default, and the daemon's token as `Authorization: Bearer`
wherever it has one; bodies over `daemon.max_message_mb` are refused before they are read
whole; a client that disconnects cancels its generation, streamed or not. Errors have OpenAI's
shape (`{"error": {"message", "type", "code"}}`) and status: 400 bad input, 401 no or wrong token,
404 unknown model, 413 too large, 429 (with `Retry-After`) when the queue is full or a
provider throttles, 402 over budget, 503 while draining or when the upstream is down. geri's
own facts travel as `x-geri-*` response headers (cost, cache hit, trace id, notices) and in
an `x_geri` field of the body.

`response_format` (`text`, `json_object`, `json_schema`) asks for structured output, as
`geri ask --schema` does. Tools are not served: a request with them gets a clear 400.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hmac
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any, TypeVar

from starlette.applications import Starlette
from starlette.requests import Request as HttpRequest
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from geri import errors
from geri.inputs import json_loads
from geri.prompt.structured import JSON_OBJECT, schema_text
from geri.redaction import redact
from geri.types import Chunk, Image, Message, Request, Result

if TYPE_CHECKING:
    from geri.daemon.inflight import InFlight
    from geri.daemon.servicers import DaemonState

log = logging.getLogger("geri.daemon.http")
T = TypeVar("T")
CLIENT_GONE = 499  # nginx's "client closed request": never seen by a client, kept for logs
STATUS: tuple[tuple[type[errors.GeriError], int, str], ...] = (
    (errors.ModelNotFound, 404, "model_not_found"),
    (errors.InputError, 400, "invalid_request_error"),
    (errors.BadRequest, 400, "invalid_request_error"),
    (errors.ContextTooLong, 400, "context_length_exceeded"),
    (errors.AuthError, 502, "upstream_auth_error"),  # the upstream refused geri's key
    (errors.KeyProblem, 503, "no_api_key"),
    (errors.ModelError, 503, "model_unavailable"),
    (errors.BudgetExhausted, 402, "budget_exhausted"),
    (errors.RateLimited, 429, "rate_limit_exceeded"),
    (errors.ProviderTimeout, 504, "timeout"),
    (errors.Unavailable, 503, "upstream_unavailable"),
    (errors.IncompleteAnswer, 502, "incomplete_answer"),
    (errors.SchemaMismatch, 502, "schema_mismatch"),
    (errors.GeriError, 500, "server_error"),
)
FINISH = {"cancelled": "stop", "error": "stop", "refusal": "stop"}  # as OpenAI names them
DEFAULT_MAX_TOKENS = Request("").max_tokens


class ApiError(Exception):
    """An error to answer in OpenAI's shape."""

    def __init__(self, status: int, message: str, code: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.code, self.headers = status, code, headers or {}


def error_response(
    status: int, message: str, code: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    kind = "invalid_request_error" if status in (400, 404, 413) else code
    body = {"error": {"message": redact(message), "type": kind, "code": code, "param": None}}
    return JSONResponse(body, status_code=status, headers=headers)


def from_geri(error: errors.GeriError) -> ApiError:
    status, code = next((s, c) for kind, s, c in STATUS if isinstance(error, kind))
    headers = {}
    if isinstance(error, errors.Retryable) and error.retry_after is not None:
        headers["retry-after"] = f"{max(1, round(error.retry_after))}"
    elif isinstance(error, errors.QueueFull):
        headers["retry-after"] = "1"
    return ApiError(status, str(error), code, headers)


def build_app(
    state: DaemonState,
    *,
    token: str | None,
    max_bytes: int,
    inflight: InFlight | None = None,
    metrics: Callable[[], str] | None = None,
) -> ASGIApp:
    """The ASGI app; `token`, when set, is required as `Authorization: Bearer`."""

    def authorised(request: HttpRequest) -> bool:
        if token is None:
            return True
        scheme, _, sent = request.headers.get("authorization", "").strip().partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(
            sent.strip().encode(), token.encode()
        )

    def guarded(
        handler: Callable[[HttpRequest], Any],
    ) -> Callable[[HttpRequest], Any]:
        async def endpoint(request: HttpRequest) -> Response:
            if not authorised(request):
                return error_response(
                    401,
                    "This daemon needs a token: send 'Authorization: Bearer <token>'.",
                    "invalid_api_key",
                )
            if inflight is not None and inflight.closing:
                return error_response(503, "The daemon is shutting down.", "shutting_down")
            try:
                return await handler(request)  # type: ignore[no-any-return]
            except ApiError as exc:
                return error_response(exc.status, str(exc), exc.code, exc.headers)
            except errors.GeriError as exc:
                api = from_geri(exc)
                return error_response(api.status, str(api), api.code, api.headers)

        return endpoint

    async def chat(request: HttpRequest) -> Response:
        body = await read_json(request, max_bytes)
        asked, streamed, include_usage = chat_request(body)
        engine = state.engine
        info = await engine.resolve(asked)
        model_id = state.admit(info)
        priority = _priority(request.headers.get("x-geri-priority"))
        trace = request.headers.get("x-geri-trace-id")
        asked = replace(
            asked,
            model=model_id,
            trace_id=trace if trace and len(trace) <= 64 and trace.isprintable() else None,
        )
        completion_id = f"chatcmpl-{uuid.uuid4().hex}"
        created = int(time.time())
        if not streamed:

            async def answer() -> Result:
                async with state.scheduler.slot(model_id, priority):
                    return await engine.ask(asked)

            result = await unless_gone(request, answer())
            if result is None:  # the client hung up; nobody reads this
                return Response(status_code=CLIENT_GONE)
            return JSONResponse(
                completion_json(result, completion_id, created), headers=geri_headers(result)
            )
        return StreamingResponse(
            stream_chunks(state, asked, model_id, priority, completion_id, created, include_usage),
            media_type="text/event-stream",
            headers={"cache-control": "no-cache", "x-accel-buffering": "no"},
        )

    async def models(request: HttpRequest) -> Response:
        listed = await state.engine.list_models()
        data = [
            {
                "id": m.id,
                "object": "model",
                "created": 0,
                "owned_by": m.provider,
                "max_model_len": m.context_window,
            }
            for m in listed
        ]
        return JSONResponse({"object": "list", "data": data})

    async def healthz(request: HttpRequest) -> Response:
        if inflight is not None and inflight.closing:
            return PlainTextResponse("draining\n", status_code=503)
        return PlainTextResponse("ok\n")

    async def prometheus(request: HttpRequest) -> Response:
        assert metrics is not None
        return PlainTextResponse(metrics(), media_type="text/plain; version=0.0.4")

    routes = [
        Route("/v1/chat/completions", guarded(chat), methods=["POST"]),
        Route("/v1/models", guarded(models), methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
    ]
    if metrics is not None:
        routes.append(Route("/metrics", guarded(prometheus), methods=["GET"]))
    app = Starlette(routes=routes)
    return app if inflight is None else _Counted(app, inflight)


class _Counted:
    """ASGI: each call to the API's work routes counted in flight until its response has been
    sent in full (a stream included), so that a stop drains HTTP calls with the gRPC ones."""

    WATCHERS = ("/healthz", "/metrics")

    def __init__(self, app: ASGIApp, inflight: InFlight) -> None:
        self.app, self.inflight = app, inflight

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.WATCHERS:
            await self.app(scope, receive, send)
            return
        with self.inflight.counting():
            await self.app(scope, receive, send)


async def unless_gone(request: HttpRequest, work: Awaitable[T]) -> T | None:
    """`work`'s result, or None once the client has disconnected, `work` then cancelled.

    A streamed answer notices a client that hangs up when its next chunk cannot be written; a
    whole one writes nothing until it is done, so without this a client that timed out (and an
    SDK that then retries) would leave the daemon generating answers nobody reads, holding
    their place in the queue and the model. Cancelled, the call is logged as such.
    """
    task = asyncio.ensure_future(work)
    gone = asyncio.ensure_future(_disconnected(request))
    try:
        await asyncio.wait((task, gone), return_when=asyncio.FIRST_COMPLETED)
    finally:  # also when this request is cancelled itself (a stop's drain ran out)
        gone.cancel()
        if not task.done():
            task.cancel()
            await asyncio.gather(task, gone, return_exceptions=True)
    return task.result() if not task.cancelled() else None


async def _disconnected(request: HttpRequest) -> None:
    """Return when the client disconnects (its body has been read: nothing else can come)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


async def read_json(request: HttpRequest, max_bytes: int) -> dict[str, Any]:
    """The request body as a JSON object, refused past `max_bytes` as it arrives."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise ApiError(413, f"The request is over {max_bytes // 2**20} MiB.", "request_too_large")
    body = bytearray()
    async for piece in request.stream():
        body += piece
        if len(body) > max_bytes:
            raise ApiError(
                413, f"The request is over {max_bytes // 2**20} MiB.", "request_too_large"
            )
    try:
        data = json_loads(body)
    except ValueError:
        raise ApiError(400, "The body is not JSON.", "invalid_json") from None
    if not isinstance(data, dict):
        raise ApiError(400, "The body must be a JSON object.", "invalid_json")
    return data


def _number(body: dict[str, Any], name: str, default: float) -> float:
    value = body.get(name, default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ApiError(400, f"'{name}' must be a number.", "invalid_value")
    return float(value)


def _string(body: dict[str, Any], name: str) -> str | None:
    value = body.get(name)
    if value is not None and not isinstance(value, str):
        raise ApiError(400, f"'{name}' must be a string.", "invalid_value")
    return value or None


def _integer(body: dict[str, Any], *names: str) -> int | None:
    for name in names:
        value = body.get(name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int):
            raise ApiError(400, f"'{name}' must be an integer.", "invalid_value")
        return value
    return None


def chat_request(body: dict[str, Any]) -> tuple[Request, bool, bool]:
    """The geri request a chat completion body asks for; whether to stream; whether to send
    a usage chunk at the end of the stream."""
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise ApiError(400, "'messages' must be a non-empty list.", "invalid_value")
    parsed = [_message(m, n) for n, m in enumerate(messages)]
    if parsed[-1].role != "user":
        raise ApiError(400, "The last message must be the user's.", "invalid_value")
    system = "\n\n".join(m.content for m in parsed if m.role == "system") or None
    turns = tuple(m for m in parsed[:-1] if m.role != "system")
    last = parsed[-1]
    schema = _response_format(body.get("response_format"))
    if body.get("tools") or body.get("functions"):
        raise ApiError(400, "Tools are not served by geri.", "unsupported_value")
    if _integer(body, "n") not in (None, 1):
        raise ApiError(400, "Only n = 1 is served.", "unsupported_value")
    stop = body.get("stop")
    if isinstance(stop, str):
        stop = [stop]
    if stop is not None and (
        not isinstance(stop, list) or not all(isinstance(s, str) for s in stop) or len(stop) > 4
    ):
        raise ApiError(
            400, "'stop' must be a string or a list of up to 4 strings.", "invalid_value"
        )
    model = body.get("model")
    if model is not None and not isinstance(model, str):
        raise ApiError(400, "'model' must be a string.", "invalid_value")
    max_tokens = _integer(body, "max_completion_tokens", "max_tokens")
    streamed = body.get("stream") is True
    options = body.get("stream_options") or {}
    include_usage = isinstance(options, dict) and options.get("include_usage") is True
    seed = _integer(body, "seed")
    request = Request(
        prompt=last.content,
        system=system,
        model=model or None,
        max_tokens=max_tokens if max_tokens is not None else DEFAULT_MAX_TOKENS,
        temperature=_number(body, "temperature", 0.7),
        top_p=_number(body, "top_p", 0.95),
        seed=seed,
        stop=tuple(stop or ()),
        images=last.images,
        history=turns,
        json_schema=schema,
        end_user=_string(body, "user"),
    )
    return request, streamed, include_usage


def _response_format(form: Any) -> str | None:
    """`response_format` as the JSON Schema the answer must follow (None: free text)."""
    if form is None:
        return None
    kind = form.get("type") if isinstance(form, dict) else None
    if kind == "text":
        return None
    if kind == "json_object":
        return JSON_OBJECT
    if kind == "json_schema":
        spec = form.get("json_schema")
        schema = spec.get("schema") if isinstance(spec, dict) else None
        try:
            return schema_text(schema if schema is not None else {}, "response_format")
        except errors.InputError as exc:
            raise ApiError(400, str(exc), "invalid_value") from None
    raise ApiError(
        400, "response_format.type must be text, json_object or json_schema.", "invalid_value"
    )


def _message(data: Any, n: int) -> Message:
    if not isinstance(data, dict):
        raise ApiError(400, f"messages[{n}] must be an object.", "invalid_value")
    role = data.get("role")
    if role == "developer":
        role = "system"
    if role not in ("system", "user", "assistant"):
        raise ApiError(
            400, f"messages[{n}].role must be system, user or assistant.", "invalid_value"
        )
    content = data.get("content")
    if isinstance(content, str):
        return Message(role, content)
    if not isinstance(content, list):
        raise ApiError(
            400, f"messages[{n}].content must be a string or a list of parts.", "invalid_value"
        )
    texts, images = [], []
    for part in content:
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text" and isinstance(part.get("text"), str):
            texts.append(part["text"])
        elif kind == "image_url" and role == "user":
            images.append(_image(part.get("image_url"), n))
        else:
            raise ApiError(
                400, f"messages[{n}] has a part geri does not take ({kind!r}).", "invalid_value"
            )
    return Message(role, "\n".join(texts), images=tuple(images))


def _image(data: Any, n: int) -> Image:
    url = data.get("url") if isinstance(data, dict) else data
    if not isinstance(url, str) or not url.startswith("data:image/") or ";base64," not in url:
        raise ApiError(
            400,
            f"messages[{n}]: images must be data: URLs (data:image/png;base64,…); the daemon "
            "fetches nothing from the network on a client's behalf.",
            "invalid_value",
        )
    header, _, payload = url.partition(",")
    try:
        raw = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise ApiError(
            400, f"messages[{n}]: the image is not valid base64.", "invalid_value"
        ) from None
    return Image(raw, header[5:].split(";")[0])


def _priority(value: str | None) -> int:
    try:
        return max(-100, min(100, int(value))) if value is not None else 0
    except ValueError:
        raise ApiError(400, "x-geri-priority must be an integer.", "invalid_value") from None


def usage_json(result: Result) -> dict[str, Any]:
    usage = result.usage
    return {
        "prompt_tokens": usage.input_tokens,
        "completion_tokens": usage.output_tokens,
        "total_tokens": usage.total_tokens,
        "completion_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
    }


def x_geri(result: Result) -> dict[str, Any]:
    return {
        "cost_usd": result.cost_micros / 1_000_000,
        "cached": result.cached,
        "trace_id": result.trace_id,
        "notices": [{"kind": n.kind, "message": n.message} for n in result.notices],
        "finish_reason": result.finish_reason,
        "usage_estimated": result.usage.estimated,
    }


def _finish(result: Result) -> str:
    return FINISH.get(result.finish_reason, result.finish_reason)


def completion_json(result: Result, completion_id: str, created: int) -> dict[str, Any]:
    refused = result.finish_reason == "refusal"
    message: dict[str, Any] = {
        "role": "assistant",
        "content": None if refused else result.text,
        "refusal": result.text if refused else None,
    }
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": created,
        "model": result.model,
        "choices": [
            {"index": 0, "message": message, "finish_reason": _finish(result), "logprobs": None}
        ],
        "usage": usage_json(result),
        "x_geri": x_geri(result),
    }


def geri_headers(result: Result) -> dict[str, str]:
    headers = {
        "x-geri-cost-usd": f"{result.cost_micros / 1_000_000:.6f}",
        "x-geri-cache": "hit" if result.cached else "miss",
        "x-geri-model": result.model,
    }
    if result.trace_id:
        headers["x-geri-trace-id"] = result.trace_id
    if result.notices:  # header values are Latin-1: notices travel JSON-escaped
        headers["x-geri-notices"] = json.dumps([n.message for n in result.notices])
    return headers


async def stream_chunks(
    state: DaemonState,
    asked: Request,
    model_id: str,
    priority: int,
    completion_id: str,
    created: int,
    include_usage: bool,
) -> AsyncIterator[bytes]:
    """The SSE body of a streamed completion. Starlette cancels this generator when the client
    disconnects, which cancels the generation (and leaves its 'cancelled' row in the log)."""

    def event(choices: list[dict[str, Any]], **extra: Any) -> bytes:
        data = {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model_id,
            "choices": choices,
            **extra,
        }
        return f"data: {json.dumps(data, ensure_ascii=False)}\n\n".encode()

    yield event(
        [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]
    )
    try:
        async with state.scheduler.slot(model_id, priority):
            chunk: Chunk
            async for chunk in state.engine.stream(asked):
                result = chunk.result
                if result is not None:
                    finish = {"index": 0, "delta": {}, "finish_reason": _finish(result)}
                    yield event([finish], x_geri=x_geri(result))
                    if include_usage:
                        yield event([], usage=usage_json(result))
                elif chunk.text:
                    yield event(
                        [{"index": 0, "delta": {"content": chunk.text}, "finish_reason": None}]
                    )
    except errors.GeriError as exc:  # mid-stream: the status is sent; an error event says it
        api = from_geri(exc)
        error = {"message": redact(str(exc)), "type": api.code, "code": api.code}
        yield f"data: {json.dumps({'error': error})}\n\n".encode()
    yield b"data: [DONE]\n\n"


class HttpServer:
    """uvicorn serving `app` in the running event loop, without its own signal handling (the
    daemon's handles SIGTERM and stops this with the rest)."""

    def __init__(self, app: ASGIApp, host: str, port: int) -> None:
        import socket

        import uvicorn

        # bound here, not by uvicorn (which exits the process when the port is taken)
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._socket = socket.socket(family, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self._socket.bind((host, port))
        except OSError as exc:
            self._socket.close()
            raise errors.ConfigError(
                f"Cannot serve HTTP on {host}:{port}: {exc.strerror}. Choose another port with "
                "--http-port (or daemon.http_port), or stop what holds it."
            ) from None
        self._socket.listen(128)

        class Quiet(uvicorn.Server):
            @contextlib.contextmanager
            def capture_signals(self) -> Any:
                yield

        config = uvicorn.Config(
            app,
            log_config=None,
            access_log=False,
            lifespan="off",
        )
        self._server = Quiet(config)
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> str:
        """Start serving; the address it listens on."""
        self._task = asyncio.create_task(self._server.serve(sockets=[self._socket]))
        while not self._server.started:
            if self._task.done():
                self._task.result()  # raises why it could not start
                raise errors.ConfigError("The HTTP listener stopped at once.")
            await asyncio.sleep(0.01)
        host, port = self._socket.getsockname()[:2]
        return f"http://{host}:{port}"

    async def stop(self) -> None:
        """Stop listening and end every request still running: the daemon's drain has given
        them their time already (`InFlight` counts them)."""
        self._server.config.timeout_graceful_shutdown = 0
        self._server.should_exit = True
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
