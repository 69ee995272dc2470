"""The engine: one async object that turns a `Request` into a `Result` or a stream of chunks.

Both front-ends (the CLI in-process, and the gRPC daemon) call exactly this. The engine is built
with its collaborators passed in (settings, store, key store, a provider factory, clocks), so
tests build one from fakes and nothing here reaches for globals.

Per request: resolve the model and build the messages; answer from the response cache when an
identical request was answered before; fit the prompt to the window; reserve the projected cost
in the budget ledger; wait for the provider's rate limit, call it, and on a `Retryable` failure
back off and try again (never once part of a streamed answer has been passed on: that becomes
`IncompleteAnswer`). A remote model that is over budget or keeps failing hands the request to
the next model (`engine/fallback.py`), with a notice saying so. Every call, whether it
succeeds, fails or is cancelled half-way, settles its reservation and leaves one record in the
store's request log. Providers are created on first use and kept, so a local model stays
loaded between requests.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
import uuid
from collections.abc import AsyncGenerator, Awaitable, Callable
from contextlib import aclosing, suppress
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import TYPE_CHECKING, cast

from geri.cost import dollars
from geri.cost.ledger import Hold, Ledger
from geri.engine.cache import Cached, ResponseCache
from geri.engine.calls import Call, Caller
from geri.engine.fallback import FALLBACK_ERRORS
from geri.engine.front import FrontDoor, off_loop
from geri.engine.loaded import Loaded
from geri.engine.metrics import Metrics
from geri.engine.notify import Notifier
from geri.engine.requests import (
    chat_request,
    replay_pieces,
    takes_images,
    traced,
    validate,
)
from geri.engine.steps import Steps
from geri.engine.writer import GroupWriter
from geri.errors import GeriError, InputError, StoreError
from geri.keys import KeyStore
from geri.logs import TRACE_ID
from geri.prompt import build_messages
from geri.prompt.structured import check_answer
from geri.prompt.tokens import TokenCounter
from geri.providers import Provider, ProviderContext, ProviderFactory, provider_factory
from geri.providers.base import KeyedProvider
from geri.redaction import StreamRedactor, redact
from geri.registry import ModelRegistry
from geri.selection.balancer import LoadBalancer
from geri.selection.router import Router
from geri.selection.selector import require
from geri.settings import Settings
from geri.specs import key_env_names, provider_spec
from geri.store import RequestRecord, Store
from geri.types import (
    REFUSED,
    Chunk,
    Constraints,
    ModelInfo,
    Notice,
    Request,
    Result,
    Usage,
)

if TYPE_CHECKING:
    import aiohttp
    import httpx

AUTO = "auto"
NO_CONSTRAINTS = Constraints()  # a request with constraints is routed, not sent to the default
EMPTY = Chunk()
log = logging.getLogger("geri.engine")
PRUNE_EVERY = timedelta(hours=1)
REMEMBER_MODELS = 5.0  # seconds a resolved model is reused (see Engine._remembered)
MAX_REMEMBERED = 256
COUNT_SECONDS = 2.0  # counting an answer the provider did not count may take this long
# a finished call as the request log's writer takes it: its row, its reservation, and its
# answer to cache under its cache key
Finishing = tuple[RequestRecord, Hold | None, str | None, Cached | None]


class Engine(Steps, FrontDoor):
    """The request pipeline. Use as `async with Engine(...) as engine:` or call `aclose()`."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        *,
        keys: KeyStore | None = None,
        providers: ProviderFactory | None = None,
        http: Callable[[], httpx.AsyncClient] | None = None,
        clock: Callable[[], float] = time.perf_counter,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        jitter: Callable[[], float] = random.random,
        rng: random.Random | None = None,
        free_ram: Callable[[], int] | None = None,
    ) -> None:
        self.settings = settings  # what every collaborator reads, through a reader
        self.store = store
        self.registry = ModelRegistry(lambda: self.settings, store)
        self.keys = keys or KeyStore(
            key_env_names(),
            allow_plaintext=lambda: self.settings.keys.allow_plaintext_keyring,
        )
        self._build_provider = providers or _build_provider
        self._http_factory = http
        self._http: httpx.AsyncClient | None = None
        self._session: aiohttp.ClientSession | None = None
        self._session_loop: asyncio.AbstractEventLoop | None = None
        self._clock = clock
        self._now = now
        self.balancer = LoadBalancer(
            lambda: self.settings.routing,
            clock=clock,
            rng=rng,
            local_capacity=lambda: self.settings.performance.parallel,
        )
        self.router = Router(
            lambda: self.settings,
            self.registry,
            store,
            self.keys,
            self.balancer,
            provider=self._probe_provider,
            http=self.http,
            free_ram=free_ram,
        )
        self.cache = ResponseCache(store, lambda: self.settings, now)
        self.ledger = Ledger(store, lambda: self.settings.budgets, now)
        self.notifier = Notifier(lambda: self.settings.notifications, self.http, now)
        self.metrics = Metrics()
        self._pruned_at = datetime.min.replace(tzinfo=UTC)
        self._loaded = Loaded(
            self._make_provider,
            cap=lambda: self.settings.performance.max_loaded_models,
            keep=lambda: self.settings.performance.keep_loaded,
            clock=clock,
        )
        self._models: dict[str | None, tuple[float, Settings, ModelInfo | None]] = {}
        self._writer: GroupWriter[Finishing, list[str]] = GroupWriter(self._persist)
        self._counters: dict[str, TokenCounter] = {}
        self.caller = Caller(
            lambda: self.settings,
            self.balancer,
            self._provider,
            clock=clock,
            sleep=sleep,
            jitter=jitter,
        )

    async def __aenter__(self) -> Engine:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def ask(self, request: Request) -> Result:
        """Answer `request` in one piece: the pipeline of `stream`, drained."""
        result = None
        async with aclosing(self._traced(request, streamed=False)) as chunks:
            async for chunk in chunks:
                result = chunk.result or result
        if result is None:  # the pipeline always ends with its result
            raise asyncio.InvalidStateError("the answer ended without a result")
        return result

    async def stream(self, request: Request) -> AsyncGenerator[Chunk, None]:
        """Answer `request` chunk by chunk; the last chunk has `done=True` and the `result`.

        Notices (a fallback, a budget alert) arrive as chunks with `notice` set, when they
        happen.
        """
        async with aclosing(self._traced(request, streamed=True)) as chunks:
            async for chunk in chunks:
                yield chunk

    async def _traced(self, request: Request, *, streamed: bool) -> AsyncGenerator[Chunk, None]:
        """The pipeline under the request's trace id."""
        request, token = traced(request)
        redactor = StreamRedactor()
        try:
            async with aclosing(self._pipeline(request, streamed)) as chunks:
                async for chunk in chunks:
                    if chunk.text:
                        chunk = replace(chunk, text=redactor.feed(chunk.text))
                        if not chunk.text and chunk == EMPTY:
                            continue  # held back: it may be the start of a key
                    if chunk.done and (tail := redactor.flush()):
                        yield Chunk(tail)
                    yield _redacted(chunk)
        except Exception:
            if tail := redactor.flush():  # what arrived before the failure is not lost
                yield Chunk(tail)
            raise
        finally:
            # closed from another context (garbage collection): nothing there to restore
            with suppress(ValueError):
                TRACE_ID.reset(token)

    async def _pipeline(self, request: Request, streamed: bool) -> AsyncGenerator[Chunk, None]:
        """The one request pipeline: resolve, then per model (a fallback moves to the next)
        the cache, or fit, reserve and call; notices as they happen; the result last."""
        validate(request)
        info = takes_images(request, await self.resolve(request))
        notices: list[Notice] = []
        tried: list[str] = []
        sent = 0
        while True:
            tried.append(info.id)
            async with self._loaded.using(info.id):  # not unloaded while this call needs it
                call = self._open(request, info, notices, streamed=streamed)
                hit = await self._lookup(call)
                if hit is not None:
                    result = await self._record_hit(call, hit)
                    for notice in notices[sent:]:  # a fallback's notice comes before the text
                        yield Chunk(notice=notice)
                    sent = len(notices)
                    for piece in replay_pieces(hit.text) if streamed else (hit.text,):
                        yield Chunk(piece)
                else:
                    try:
                        await self._prepare(call)
                        for notice in notices[sent:]:
                            yield Chunk(notice=notice)
                        sent = len(notices)
                        # the model answering, which fitting may have made a larger one
                        async with (
                            self._loaded.using(call.info.id),
                            aclosing(self.caller.attempts(call)) as chunks,
                        ):
                            async for chunk in chunks:
                                yield chunk
                        if call.chat.json_schema and call.finish not in REFUSED:
                            check_answer(
                                "".join(call.parts),
                                call.chat.json_schema,
                                call.info.id,
                                cut=call.finish == "length",
                            )
                    except FALLBACK_ERRORS as exc:
                        if call.parts:
                            raise
                        info = await self._fall_back(call, exc, tried)
                        continue
                    except BaseException as exc:
                        await self._finish(call, failure=exc)
                        raise
                    result = await self._finish(call)
                for notice in notices[sent:]:  # budget alerts, once the cost is known
                    yield Chunk(notice=notice)
                yield Chunk(
                    usage=result.usage, finish_reason=result.finish_reason, done=True, result=result
                )
                return

    async def is_cached(self, request: Request) -> bool:
        """Whether `request` would be answered from the response cache right now.

        The daemon asks before queueing, so a cached answer never waits behind a generation.
        """
        if not (request.use_cache and self.cache.enabled) or not request.prompt.strip():
            return False
        info = await self.resolve(request)
        call = self._open(request, info, [], streamed=False)
        return await self._lookup(call) is not None

    def reload(self, settings: Settings) -> None:
        """Serve the next requests with `settings` (the daemon's hot reload).

        Models whose entries changed are rebuilt on their next use; a model already loaded
        keeps its runtime options (threads, context size) until it is unloaded.
        """
        self.settings = settings

    def counter(self, model: ModelInfo) -> TokenCounter:
        """The token counter of `model` (building its provider, which loads nothing yet)."""
        self._provider(model)
        return self._counters[model.id]

    async def verify_key(self, provider: str, key: str) -> None:
        """Raise unless `provider` accepts `key` (a cheap authenticated call, nothing stored)."""
        if not provider_spec(provider).takes_key:
            raise InputError(f"Provider {provider!r} takes no API key.")
        models = [m for m in await self.list_models() if m.provider == provider]
        info = models[0] if models else ModelInfo(provider, provider, "", location="cloud")
        client = self._build_provider(
            info, ProviderContext.of(self.settings, info.provider, self.keys, self.session)
        )
        await cast(KeyedProvider, client).verify_key(key)

    async def aclose(self) -> None:
        """Release every provider (unloading local models), the HTTP client and the store."""
        await self._loaded.aclose()
        await self.notifier.drain()
        await asyncio.to_thread(self._writer.close)  # every finished call's row is written
        if self._http is not None:
            await self._http.aclose()
            self._http = None
        if self._session is not None:
            await self._session.close()
            self._session = None
        self.store.close()

    def session(self) -> aiohttp.ClientSession:
        """The HTTP session every cloud provider shares, created on first use (in the event
        loop that serves requests; made anew if that loop has changed)."""
        session, loop = self._session, asyncio.get_running_loop()
        if session is None or session.closed or self._session_loop is not loop:
            from geri.providers.http import make_session

            session = self._session = make_session(self.settings.network)
            self._session_loop = loop
        return session

    def http(self) -> httpx.AsyncClient:
        """The httpx client of peer discovery and notification webhooks, created on first
        use. (Providers use `session`: their hot path is cheaper on aiohttp.)"""
        if self._http is None:
            if self._http_factory is not None:
                self._http = self._http_factory()
            else:
                import httpx

                from geri._version import __version__

                network = self.settings.network
                self._http = httpx.AsyncClient(
                    timeout=httpx.Timeout(network.read_timeout, connect=network.connect_timeout),
                    headers={"user-agent": f"geri/{__version__}"},
                )
        return self._http

    async def resolve(self, request: Request) -> ModelInfo:
        """The model named, else the default one (unless the request sets constraints, such
        as local or remote only), else the best by score ('auto')."""
        named = request.model not in (None, AUTO)
        if named or (request.model is None and request.constraints == NO_CONSTRAINTS):
            info = await self._remembered(request.model)  # a named model is found, or raises
            if info is not None:
                return info
        return self.balancer.choose(require(await self.router.route(request)))

    async def _remembered(self, model_id: str | None) -> ModelInfo | None:
        """`registry.get(model_id)` (None: the default model, or None without one), from
        memory when asked in the last `REMEMBER_MODELS` seconds under the same settings: a
        call is resolved by the daemon and again by the engine, and neither should cost a
        thread hop and a store query. Models added or removed here forget at once; changes
        made elsewhere (another daemon on a shared store) are seen within those seconds."""
        now = self._clock()
        kept = self._models.get(model_id)
        if kept is not None and kept[1] is self.settings and now - kept[0] < REMEMBER_MODELS:
            return kept[2]

        def look_up() -> ModelInfo | None:
            if model_id is not None:
                return self.registry.get(model_id)
            default = self.registry.default_id()
            return self.registry.get(default) if default is not None else None

        info = await off_loop(look_up)
        if len(self._models) >= MAX_REMEMBERED:
            self._models.clear()
        self._models[model_id] = (now, self.settings, info)
        return info

    def forget_models(self) -> None:
        """Resolve every model afresh (after the registry changed)."""
        self._models.clear()

    def _open(
        self, request: Request, info: ModelInfo, notices: list[Notice], *, streamed: bool
    ) -> Call:
        return Call(
            uuid.uuid4().hex,
            request,
            info,
            chat_request(request, build_messages(request)),
            self._now(),
            self._clock(),
            streamed,
            notices,
        )

    async def _lookup(self, call: Call) -> Cached | None:
        """The cached answer to `call`, if the cache is on for it and has one."""
        if not (call.request.use_cache and self.cache.enabled):
            return None
        call.key = self.cache.key(call.info, call.chat, call.request.documents)
        return await off_loop(self.cache.get, call.key)

    def _notify(self, call: Call, notice: Notice) -> None:
        log.warning(notice.message, extra={"notice": notice.kind, "request_id": call.id})
        if self.notifier.enabled:
            call.notices.append(notice)
            self.notifier.send(notice)

    async def _record_hit(self, call: Call, hit: Cached) -> Result:
        """A result from the cache, logged as a cached request that cost nothing."""
        call.parts, call.usage, call.finish, call.report = (
            [hit.text],
            hit.usage,
            hit.finish_reason,
            hit.context,
        )
        call.key = None  # nothing new to store
        return await self._finish(call, cached=hit)

    def _provider(self, info: ModelInfo) -> Provider:
        provider, new = self._loaded.get(info)
        if new:
            self._counters[info.id] = TokenCounter(provider)
        return provider

    def _probe_provider(self, info: ModelInfo) -> Provider:
        """The provider a health check probes `info` with: the kept one, else one built for the
        probe alone. A probe loads nothing (a local model's file header is read), so it keeps
        nothing either, and never displaces a loaded model."""
        return self._loaded.peek(info) or self._make_provider(info)

    def _make_provider(self, info: ModelInfo) -> Provider:
        context = ProviderContext.of(self.settings, info.provider, self.keys, self.session)
        return self._build_provider(info, context)

    async def _finish(
        self,
        call: Call,
        *,
        failure: BaseException | None = None,
        cached: Cached | None = None,
    ) -> Result:
        """Settle the budget, log the call and cache a complete answer, whatever the outcome."""
        if failure is None and cached is None:
            await self._count_unreported(call)
        record, answer, finish = call.outcome(self._clock(), failure, cached)
        if call.anomaly:
            self._usage_anomaly(call, record)
        # queued before the wait: a caller cancelled while it waits still settles its
        # reservation and leaves its record
        try:
            alerts = await self._writer.submit((record, call.hold, call.key, answer))
        except StoreError as exc:
            alerts = []
            if failure is None:  # else the failure is what the caller must hear about
                self._unlogged(call, exc)
        call.hold = None
        self.metrics.observe(record)
        for alert in alerts:
            self._notify(call, Notice("budget_alert", alert))
        return call.result(record, finish)

    async def _count_unreported(self, call: Call) -> None:
        """When the provider reported no output tokens, count the answer with the model's own
        tokenizer (a local model's, a server's `/tokenize`) rather than estimate it."""
        if (call.usage and call.usage.output_tokens) or not call.parts:
            return
        counter = self._counters.get(call.info.id)
        if counter is None:
            return
        try:
            async with asyncio.timeout(COUNT_SECONDS):
                call.produced = await counter.text("".join(call.parts))
        except (TimeoutError, GeriError):
            pass  # the estimate, which errs high, stands

    def _unlogged(self, call: Call, error: StoreError) -> None:
        """Say that `call` was answered but could not be logged (a full disk, say).

        The answer is the caller's all the same: it was generated, and perhaps paid for, and
        withholding it would lose it without unspending anything. Its reservation, if it had
        one, stays in the ledger until `budgets.reservation_timeout`; the next priced call
        needs the store to reserve, so it fails before anything is spent.
        """
        message = (
            f"This answer is not in the request log, and its cost is not settled in the "
            f"budget, because the store could not be written: {error}"
        )
        call.notices.append(Notice("unlogged", message))
        if self.notifier.enabled:
            self.notifier.send(call.notices[-1])

    def _usage_anomaly(self, call: Call, record: RequestRecord) -> None:
        """Say that `call`'s reported usage was not believed, and what was charged instead."""
        reported = call.usage or Usage()
        reserved = call.hold.amount_micros if call.hold else 0
        message = (
            f"{call.info.id} reported usage geri does not believe ({call.anomaly}); it was "
            f"charged {dollars(record.cost_micros)} (reserved {dollars(reserved)}) for "
            f"{record.input_tokens} input and {record.output_tokens} output tokens."
        )
        log.warning(
            message,
            extra={
                "request_id": call.id,
                "reported_input": reported.input_tokens,
                "reported_output": reported.output_tokens,
                "charged_micros": record.cost_micros,
                "reserved_micros": reserved,
            },
        )
        call.notices.append(Notice("usage_anomaly", message))
        if self.notifier.enabled:
            self.notifier.send(call.notices[-1])

    def _persist(self, finished: list[Finishing]) -> list[list[str]]:
        """The store's side of `_finish` for every call that ended since the writer's last
        run (`GroupWriter`, in its thread): each reservation settled, all the rows inserted in
        one transaction, the answers cached. Returns each call's budget alerts.

        The request log keeps the texts only if `logging.request_text` says so, and at most
        `logging.retention` days of calls (pruned at most hourly per process).
        """
        alerts = [
            self.ledger.settle(hold, record.cost_micros) if hold is not None else []
            for record, hold, _, _ in finished
        ]
        options = self.settings.logging
        records, answers = [], []
        for record, _, key, answer in finished:
            # a key an upstream echoed, or one pasted into a prompt, is not kept
            if not options.request_text:
                record = replace(record, prompt="[]", response="")
            else:
                record = replace(
                    record, prompt=redact(record.prompt), response=redact(record.response)
                )
            records.append(
                replace(
                    record,
                    error=redact(record.error) if record.error else None,
                    end_user=redact(record.end_user) if record.end_user else None,
                )
            )
            if key is not None and answer is not None:
                answers.append((key, replace(answer, text=redact(answer.text))))
        self.store.record_requests(records)
        now = self._now()
        if options.retention and now - self._pruned_at >= PRUNE_EVERY:
            self._pruned_at = now
            self.store.prune_requests(now - timedelta(days=options.retention))
        for key, answer in answers:
            self.cache.put(key, answer)
        return alerts


def _redacted(chunk: Chunk) -> Chunk:
    """`chunk` with its notice and result redacted (its text went through the stream's own)."""
    if chunk.notice is not None:
        chunk = replace(chunk, notice=replace(chunk.notice, message=redact(chunk.notice.message)))
    if chunk.result is not None:
        notices = tuple(replace(n, message=redact(n.message)) for n in chunk.result.notices)
        chunk = replace(
            chunk, result=replace(chunk.result, text=redact(chunk.result.text), notices=notices)
        )
    return chunk


def _build_provider(info: ModelInfo, context: ProviderContext) -> Provider:
    return provider_factory(info.provider)(info, context)
