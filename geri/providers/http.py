"""What every HTTP provider shares: the client, error mapping, SSE reading, the call loop.

A provider module supplies only pure translation (`build_payload`, `parse_response`,
`parse_event`) and its URL and headers; `HttpProvider` does the network part once: one shared
`aiohttp.ClientSession` (pooled keep-alive connections), a read timeout for whole answers and a
separate idle timeout for streams, and every failure mapped to a `geri.errors` type at this
boundary, with the API key scrubbed from anything the server sent back.

The client is aiohttp rather than httpx, by measurement (`benchmarks/bench_http_client.py`): on
this project's reference machine httpx spent about 1.9 ms of CPU per pooled POST under 32
concurrent calls (its connection pool's bookkeeping), aiohttp about 0.1 ms, and a daemon pays
that CPU on every cloud call.

A stream counts as complete only when the provider's own end marker arrived; a connection that
closes early is an error, never a silently shortened answer.

Redirects are not followed, as the official SDKs do not follow them: a redirected request would
carry the prompt, and a key in any header but `Authorization` (which is all aiohttp drops on a
change of host), to an address the user never chose. A 3xx answer is a `BadRequest` naming the
address, for the user to put in `base_url` if it is right.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import AsyncGenerator, Callable, Mapping, Sequence
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar

import aiohttp

from geri._version import __version__
from geri.errors import (
    AuthError,
    BadRequest,
    ContextTooLong,
    MalformedReply,
    ProviderError,
    ProviderTimeout,
    RateLimited,
    Unavailable,
)
from geri.inputs import json_loads
from geri.prompt.tokens import estimate_tokens
from geri.providers import sse
from geri.providers.base import ProviderContext
from geri.redaction import redact
from geri.settings import Network
from geri.types import (
    REFUSED,
    ChatRequest,
    Chunk,
    Completion,
    FinishReason,
    Message,
    ModelInfo,
    Usage,
)

# what the connection itself may raise (a refused connection, a cut, a timeout, a malformed
# status line or header); a body geri refuses is a MalformedReply raised by geri
TRANSPORT_ERRORS = (aiohttp.ClientError, TimeoutError)
T = TypeVar("T")
R = TypeVar("R")
MAX_ERROR_BODY = 64 * 1024  # of an error body, only the start says anything
KEY_HINTS = ("api key not valid", "api_key_invalid", "invalid api key", "incorrect api key")
CONTEXT_HINTS = (
    "context length",
    "context_length",
    "maximum context",
    "too long",
    "too many tokens",
    "exceeds the maximum",
)


def make_session(network: Network) -> aiohttp.ClientSession:
    """The shared session (call it in the event loop that uses it): pooled keep-alive
    connections, the settings' connect and read timeouts, proxies from the environment as
    curl and httpx honour them. (aiohttp reads the environment on every request when told to:
    half its cost per call here, so only when a proxy is set at all.)"""
    import urllib.request

    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=64, ttl_dns_cache=300),
        timeout=timeouts(network.read_timeout, network.connect_timeout),
        headers={"user-agent": f"geri/{__version__}"},
        trust_env=bool(urllib.request.getproxies()),
    )


def timeouts(read: float, connect: float) -> aiohttp.ClientTimeout:
    """`read` seconds for any one read from the server, `connect` to reach it; the total is
    bounded by the caller (`network.total_timeout`)."""
    return aiohttp.ClientTimeout(total=None, connect=connect, sock_read=read)


def retry_after(headers: Mapping[str, str], now: datetime | None = None) -> float | None:
    """The server's wait hint in seconds: `retry-after-ms`, or `Retry-After` as seconds or date.

    >>> retry_after({"retry-after": "7"})
    7.0
    """
    if "retry-after-ms" in headers:
        try:
            return max(float(headers["retry-after-ms"]) / 1000, 0.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max((when - (now or datetime.now(UTC))).total_seconds(), 0.0)


def error_message(body: str, clean: Callable[[str], str] = str) -> str:
    """The human part of an error body, whatever its shape; the text itself otherwise.

    `clean` runs before the text is cut to length, so a secret it removes cannot be left
    half in the message by the cut.

    >>> hide = lambda text: text.replace("sk-abc", "***")
    >>> error_message('{"error": {"message": "bad key sk-abc"}}', hide)
    'bad key ***'
    """
    try:
        data = json_loads(body)
    except ValueError:
        return clean(" ".join(body.split()))[:300] or "no details"
    if isinstance(data, list) and data:
        data = data[0]
    if isinstance(data, dict):
        error = data.get("error", data)
        if isinstance(error, dict):
            return clean(str(error.get("message") or error.get("status") or error))[:500]
        return clean(str(error))[:500]
    return clean(str(data))[:300]


def error_for_status(
    status: int,
    message: str,
    label: str,
    provider: str,
    wait: float | None = None,
    *,
    event: str | None = None,
) -> ProviderError:
    """The geri error for an HTTP error status, with a message that names the fix.

    `event` names an error that arrived as a stream event (after a 200): the message then says
    so instead of inventing the status it stands for.
    """
    said = (
        f"{label} sent an error event ({event}): {message}"
        if event
        else (f"{label} answered {status}: {message}")
    )
    if status in (401, 403) or any(hint in message.lower() for hint in KEY_HINTS):
        return AuthError(
            f"{said}. The API key was refused: check it with 'geri keys list', "
            f"or set a new one with 'geri keys set {provider}'."
        )
    if status == 429:
        return RateLimited(f"{said}. Rate limited.", retry_after=wait)
    if status == 408:
        return ProviderTimeout(f"{said}.", retry_after=wait)
    if status == 409 or status >= 500:
        return Unavailable(f"{said}.", retry_after=wait)
    if any(hint in message.lower() for hint in CONTEXT_HINTS):
        return ContextTooLong(f"{said}. Shorten the prompt or choose a model with a larger window.")
    if status == 404:
        return BadRequest(f"{said}. Check the model name and base_url in the settings.")
    return BadRequest(f"{said}.")


class HttpProvider(ABC):
    """A provider reached over HTTP. Subclasses give the translation and the endpoints."""

    def __init__(self, info: ModelInfo, context: ProviderContext) -> None:
        from geri.specs import provider_spec

        spec = provider_spec(info.provider)
        self._info = info
        self._context = context
        self._provider = info.provider
        self._label = spec.label
        self._needs_key = spec.needs_key
        options = context.options
        base = info.metadata.get("base_url") or (options.base_url if options else None)
        base = base or spec.base_url
        if not base:
            raise BadRequest(
                f"Model {info.id!r} has no base_url: set one for it (or for provider "
                f"{info.provider!r} under 'providers') in the settings."
            )
        self.base_url = base.rstrip("/")
        network = context.network
        self._total = network.total_timeout
        self._read_seconds = network.read_timeout
        self._idle_seconds = network.stream_idle_timeout
        self._connect_seconds = network.connect_timeout
        self._read_timeout = timeouts(network.read_timeout, network.connect_timeout)
        self._idle_timeout = timeouts(network.stream_idle_timeout, network.connect_timeout)

    # what subclasses provide: the endpoints and the pure translation to and from JSON

    @abstractmethod
    def endpoint(self, stream: bool) -> str: ...

    @abstractmethod
    def models_endpoint(self) -> str: ...

    @abstractmethod
    def headers(self, key: str | None) -> dict[str, str]: ...

    @abstractmethod
    def build_payload(self, request: ChatRequest, stream: bool) -> dict[str, Any]: ...

    @abstractmethod
    def parse_response(self, data: Any) -> Completion: ...

    @abstractmethod
    def parse_event(self, data: str) -> Chunk | None: ...

    def info(self) -> ModelInfo:
        return self._info

    def _read(self, parse: Callable[[T], R], data: T, key: str | None) -> R:
        """`parse(data)` at the boundary: whatever a reply of the wrong shape makes the parser
        raise, or a result with impossible figures, is one clear error naming the provider,
        quoting the reply with every key redacted before it is cut."""
        try:
            out = parse(data)
            if isinstance(out, Completion | Chunk):
                _check(out.text)
        except (
            MalformedReply,
            KeyError,
            TypeError,
            ValueError,
            AttributeError,
            IndexError,
            OverflowError,
        ) as exc:
            quoted = redact(str(data), [key, *self._context.keys.known()])[:200]
            said = str(exc) if isinstance(exc, MalformedReply) else f"{type(exc).__name__}: {exc}"
            raise MalformedReply(
                f"{self._label} answered in a shape geri cannot read ({said}): {quoted}"
            ) from None
        return out

    async def generate(self, request: ChatRequest) -> Completion:
        try:
            async with asyncio.timeout(self._total):
                return await self._generate(request)
        except TimeoutError:
            raise self._overtime() from None

    async def _generate(self, request: ChatRequest) -> Completion:
        key = self._key()
        try:
            async with self._context.http().post(
                self.endpoint(stream=False),
                json=self.build_payload(request, stream=False),
                headers=self.headers(key),
                timeout=self._read_timeout,
                allow_redirects=False,
            ) as response:
                body = await self._body(response)
            if response.status >= 300:
                raise self._status_error(response, body.decode("utf-8", "replace"), key)
            try:
                data = json_loads(body)
            except ValueError as exc:
                raise Unavailable(f"{self._label} sent a reply that is not JSON.") from exc
            return self._read(self.parse_response, data, key)
        except TRANSPORT_ERRORS as exc:
            raise self._transport_error(exc, key, streaming=False) from exc

    async def _body(self, response: aiohttp.ClientResponse) -> bytes:
        """The whole body of `response`, refused past `sse.MAX_TOTAL` bytes as it arrives (an
        error body past `MAX_ERROR_BODY`: only its start is needed)."""
        limit = MAX_ERROR_BODY if response.status >= 400 else sse.MAX_TOTAL
        body = bytearray()
        async for chunk in response.content.iter_any():
            body += chunk
            if len(body) > limit:
                if response.status >= 400:
                    return bytes(body[:limit])
                raise MalformedReply(
                    f"{self._label} sent a reply of more than {limit // (1024 * 1024)} MB; "
                    "geri reads no more."
                )
        return bytes(body)

    async def stream(self, request: ChatRequest) -> AsyncGenerator[Chunk, None]:
        key = self._key()
        finish: FinishReason | None = None
        usage = Usage()
        deadline = asyncio.get_running_loop().time() + self._total
        # a server that ignores max_tokens is cut off here (the estimate errs high, so twice)
        budget, produced, events = 2 * request.max_tokens + 16, 0, 0
        try:
            async with self._context.http().post(
                self.endpoint(stream=True),
                json=self.build_payload(request, stream=True),
                headers=self.headers(key),
                timeout=self._idle_timeout,
                allow_redirects=False,
            ) as response:
                if response.status >= 300:
                    body = (await self._body(response)).decode("utf-8", "replace")
                    raise self._status_error(response, body, key)
                async for event in self._events(response):
                    events += 1
                    chunk = self._read(self.parse_event, event.data.strip(), key)
                    if chunk is None:
                        continue
                    if chunk.usage is not None:
                        usage = merge_usage(usage, chunk.usage)
                    if finish not in REFUSED:  # a refusal said mid-stream stays one
                        finish = chunk.finish_reason or finish
                    if chunk.text:
                        yield Chunk(chunk.text)
                        produced += estimate_tokens(chunk.text)
                        if produced > budget:
                            finish = "length"
                            break
                    if asyncio.get_running_loop().time() > deadline:
                        raise self._overtime()
        except TRANSPORT_ERRORS as exc:
            raise self._transport_error(exc, key, streaming=True) from exc
        if finish is None and not events and self._provider == "openai_compatible":
            # llama.cpp's server answers a prompt longer than its context with an empty stream
            raise ContextTooLong(
                f"{self._label} at {self.base_url} sent an empty stream: llama.cpp's server does "
                "that when the prompt does not fit its context. Shorten the prompt, or give "
                "the model a larger context_window on the server and in the settings."
            )
        if finish is None:
            raise Unavailable(f"{self._label} closed the stream before the answer was complete.")
        yield Chunk(usage=usage, finish_reason=finish)

    async def _events(self, response: aiohttp.ClientResponse) -> AsyncGenerator[sse.Event, None]:
        try:
            async for event in sse.events(response.content.iter_any()):
                yield event
        except sse.TooLarge as exc:
            raise MalformedReply(
                f"{self._label} sent a stream geri will not read further: {exc}."
            ) from None

    def _overtime(self) -> ProviderTimeout:
        return ProviderTimeout(
            f"{self._label} did not finish within {self._total:g} s (network.total_timeout)."
        )

    async def probe(self) -> None:
        """Raise unless the API answers an authenticated model listing (a health check)."""
        key = self._key()
        await self._list_models(key)

    async def verify_key(self, key: str) -> None:
        """Check `key` with the cheapest authenticated call there is: listing the models."""
        await self._list_models(key)

    async def _list_models(self, key: str | None) -> None:
        try:
            async with self._context.http().get(
                self.models_endpoint(),
                headers=self.headers(key),
                timeout=self._read_timeout,
                allow_redirects=False,
            ) as response:
                body = await self._body(response)
        except TRANSPORT_ERRORS as exc:
            raise self._transport_error(exc, key, streaming=False) from exc
        if response.status >= 300:
            raise self._status_error(response, body.decode("utf-8", "replace"), key)

    async def count_tokens(self, text: str) -> int:
        """Exact with a locally available tiktoken encoding, else a high estimate."""
        from geri.prompt.tokens import estimate_tokens, local_tiktoken

        name = self._info.metadata.get("tokenizer")
        encoding = local_tiktoken(name) if name else None
        if encoding is None:
            return estimate_tokens(text)
        return len(encoding.encode(text, disallowed_special=()))

    async def count_messages(self, messages: Sequence[Message]) -> int:
        from geri.prompt.tokens import chat_tokens

        counts = {m.content: await self.count_tokens(m.content) for m in messages}
        return chat_tokens(messages, counts.__getitem__)

    async def aclose(self) -> None:  # noqa: B027 - nothing to release: the client is shared
        """Nothing to release: the HTTP client is the engine's."""

    def _key(self) -> str | None:
        keys = self._context.keys
        return keys.require(self._provider) if self._needs_key else keys.get(self._provider)

    def _status_error(
        self, response: aiohttp.ClientResponse, body: str, key: str | None
    ) -> ProviderError:
        secrets = [key, *self._context.keys.known()]
        if response.status < 400:  # not followed (see the module's docstring)
            to = redact(response.headers.get("location", "no address"), secrets)[:200]
            return BadRequest(
                f"{self._label} answered {response.status}, a redirect to {to}. geri does not "
                "follow redirects, so that the prompt and the key go only to the base_url in "
                "the settings: if that address is the right one, set base_url to it."
            )
        message = error_message(body, lambda text: redact(text, secrets))
        return error_for_status(
            response.status,
            message,
            self._label,
            self._provider,
            retry_after(response.headers),
        )

    def _transport_error(
        self, exc: BaseException, key: str | None, streaming: bool
    ) -> ProviderError:
        detail = redact(str(exc) or type(exc).__name__, [key])
        if isinstance(exc, TimeoutError):  # aiohttp's timeouts are TimeoutErrors too
            limit = self._idle_seconds if streaming else self._read_seconds
            what = "went quiet mid-stream" if streaming else "did not answer"
            if isinstance(exc, aiohttp.ConnectionTimeoutError):
                what, limit = "could not be reached", self._connect_seconds
            return ProviderTimeout(
                f"{self._label} at {self.base_url} {what} for {limit:g} s. Raise "
                "network timeouts in the settings if the model is just slow."
            )
        if isinstance(exc, aiohttp.ClientConnectorError | aiohttp.InvalidURL):
            return Unavailable(
                f"Cannot reach {self._label} at {self.base_url} ({detail}). Check the network "
                "and the base_url in the settings."
            )
        return Unavailable(f"The connection to {self._label} failed: {detail}.")


def _check(text: object) -> None:
    if not isinstance(text, str):
        raise MalformedReply(f"text of type {type(text).__name__}")


def merge_usage(old: Usage, new: Usage) -> Usage:
    """Usage reported in pieces (input first, output at the end) combined."""
    return Usage(
        max(old.input_tokens, new.input_tokens),
        max(old.output_tokens, new.output_tokens),
        old.anomaly or new.anomaly,
        max(old.reasoning_tokens, new.reasoning_tokens),
    )
