"""Translation between the gRPC messages and geri's own types, in both directions, pure.

Errors cross too: `STATUS` is the one table of geri's errors and gRPC status codes. The server
reads it forwards (`status_of`), naming the error's class in the `geri-error` trailer and a wait
hint in `retry-after`; the client reads it backwards (`error_from_status`), so a peer's
`RateLimited` is a `RateLimited` here, retried and fallen back from like any other. A status
from a server that is not geri maps to the first class listed for its code.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, fields, replace

import grpc

from geri import errors
from geri.prompt.rag import validate_documents
from geri.prompt.structured import parse_schema
from geri.types import (
    Constraints,
    Document,
    Location,
    ModelInfo,
    ModelStats,
    Notice,
    NoticeKind,
    ProcessStats,
    Request,
    Result,
    Snapshot,
)
from geri.wire._pb.geri.v1 import stats_pb2
from geri.wire._pb.geri.v1 import wolf_pb2 as pb

Code = grpc.StatusCode
# most specific first: the first class an error is an instance of decides its code, and the
# first class listed for a code is what a client makes of that code when no class is named
STATUS: tuple[tuple[type[errors.GeriError], grpc.StatusCode], ...] = (
    (errors.InputError, Code.INVALID_ARGUMENT),
    (errors.BadRequest, Code.INVALID_ARGUMENT),
    (errors.ContextTooLong, Code.OUT_OF_RANGE),
    (errors.ModelNotFound, Code.NOT_FOUND),
    (errors.ModelError, Code.FAILED_PRECONDITION),
    (errors.KeyProblem, Code.FAILED_PRECONDITION),
    (errors.AuthError, Code.FAILED_PRECONDITION),
    (errors.ConfigError, Code.FAILED_PRECONDITION),
    (errors.RateLimited, Code.RESOURCE_EXHAUSTED),
    (errors.BudgetExhausted, Code.RESOURCE_EXHAUSTED),
    (errors.ProviderTimeout, Code.DEADLINE_EXCEEDED),
    (errors.IncompleteAnswer, Code.ABORTED),
    (errors.SchemaMismatch, Code.DATA_LOSS),
    (errors.Unavailable, Code.UNAVAILABLE),
    (errors.GeriError, Code.INTERNAL),
)
BY_CODE: dict[grpc.StatusCode, type[errors.GeriError]] = {
    # statuses geri's servers send before a call reaches the engine (the token check)
    Code.UNAUTHENTICATED: errors.AuthError,
    Code.PERMISSION_DENIED: errors.AuthError,
}
for _kind, _code in STATUS:
    BY_CODE.setdefault(_code, _kind)
ERROR_TRAILER, RETRY_TRAILER, QUEUE_TRAILER = "geri-error", "retry-after", "queue-length"


def code_of(kind: type[errors.GeriError]) -> grpc.StatusCode:
    return next(code for listed, code in STATUS if issubclass(kind, listed))


def status_of(error: errors.GeriError) -> tuple[grpc.StatusCode, tuple[tuple[str, str], ...]]:
    """The status code for `error`, and the trailers that let a client rebuild it."""
    code = code_of(type(error))
    trailers = [(ERROR_TRAILER, type(error).__name__)]
    if isinstance(error, errors.Retryable) and error.retry_after is not None:
        trailers.append((RETRY_TRAILER, f"{error.retry_after:g}"))
    if isinstance(error, errors.QueueFull):
        trailers.append((QUEUE_TRAILER, str(error.waiting)))
    return code, tuple(trailers)


def error_from_status(
    code: grpc.StatusCode, details: str, trailers: Sequence[tuple[str, str | bytes]] = ()
) -> errors.GeriError:
    """The geri error a status stands for: the class the server named, if it is one of geri's
    that the table sends with this code, else the code's own.

    Classes that need more than a message (a budget's scope and reset time, a question's token
    count) come back as the nearest class that does not: a peer's spent budget is a rate
    limit from here.
    """
    sent = {k: v.decode() if isinstance(v, bytes) else v for k, v in trailers}
    named = getattr(errors, sent.get(ERROR_TRAILER, ""), None)
    kind = BY_CODE.get(code)
    if kind is None:
        return errors.DaemonError(f"{details} (status {code.name})")
    if isinstance(named, type) and issubclass(named, errors.GeriError) and code_of(named) == code:
        kind = named
    if issubclass(kind, errors.QueueFull):
        return errors.QueueFull(int(_number(sent.get(QUEUE_TRAILER)) or 0))
    if issubclass(kind, errors.Retryable):
        return kind(details, _number(sent.get(RETRY_TRAILER)))
    if issubclass(kind, errors.BudgetExhausted):
        return errors.RateLimited(details)
    if issubclass(kind, errors.QuestionTooLong):
        return errors.ContextTooLong(details)
    return kind(details)


def _number(text: str | None) -> float | None:
    try:
        return float(text) if text is not None else None
    except ValueError:
        return None


DEFAULTS = Request("")
LOCATIONS: dict[str, Location] = {"local": "local", "lan": "lan", "cloud": "cloud"}
KINDS: dict[str, NoticeKind] = {
    "fallback": "fallback",
    "budget_alert": "budget_alert",
    "budget_reset": "budget_reset",
    "usage_anomaly": "usage_anomaly",
    "unlogged": "unlogged",
}


def sampling_from_proto(params: pb.Parameters, prompt: str = "") -> Request:
    """A request carrying only `params` (defaults where unset), to be filled in."""
    return Request(
        prompt=prompt,
        max_tokens=params.max_tokens if params.HasField("max_tokens") else DEFAULTS.max_tokens,
        temperature=(
            params.temperature if params.HasField("temperature") else DEFAULTS.temperature
        ),
        top_p=params.top_p if params.HasField("top_p") else DEFAULTS.top_p,
        seed=params.seed if params.HasField("seed") else None,
        stop=tuple(params.stop),
    )


def documents_from_proto(context: Sequence[pb.ContextDocument]) -> tuple[Document, ...]:
    """Context documents, checked by the same rules as a `--rag` file (an empty or duplicate
    id, blank content or a score that is not a finite number is an `InputError`)."""
    items = [
        {
            "id": d.id,
            "content": d.content,
            **({"score": d.score} if d.HasField("score") else {}),
            **({"source": d.source} if d.source else {}),
            **({"title": d.title} if d.title else {}),
            **({"metadata": dict(d.metadata)} if d.metadata else {}),
        }
        for d in context
    ]
    return validate_documents(items, "context")


def request_from_proto(message: pb.WolfRequest) -> Request:
    return replace(
        sampling_from_proto(message.parameters, message.prompt),
        system=message.system_prompt or None,
        model=message.model or None,
        documents=documents_from_proto(message.context),
        constraints=Constraints(
            local_only=message.model_type == pb.MODEL_TYPE_LOCAL,
            remote_only=message.model_type == pb.MODEL_TYPE_REMOTE,
        ),
        use_cache=not message.no_cache,
        json_schema=parse_schema(message.json_schema, "json_schema")
        if message.json_schema
        else None,
        end_user=message.user or None,
    )


def request_to_proto(request: Request, priority: int = 0) -> pb.WolfRequest:
    params = pb.Parameters(
        max_tokens=request.max_tokens,
        temperature=request.temperature,
        top_p=request.top_p,
        stop=list(request.stop),
    )
    if request.seed is not None:
        params.seed = request.seed
    return pb.WolfRequest(
        prompt=request.prompt,
        system_prompt=request.system or "",
        model=request.model or "",
        model_type=pb.MODEL_TYPE_LOCAL
        if request.constraints.local_only
        else pb.MODEL_TYPE_REMOTE
        if request.constraints.remote_only
        else pb.MODEL_TYPE_UNSPECIFIED,
        parameters=params,
        priority=priority,
        no_cache=not request.use_cache,
        json_schema=request.json_schema or "",
        user=request.end_user or "",
        context=[
            pb.ContextDocument(
                id=d.id,
                content=d.content,
                source=d.source or "",
                title=d.title or "",
                metadata={k: str(v) for k, v in d.metadata.items()},
                **({"score": d.score} if d.score is not None else {}),
            )
            for d in request.documents
        ],
    )


def notice_to_proto(notice: Notice) -> pb.Notice:
    return pb.Notice(kind=notice.kind, message=notice.message)


def notice_from_proto(message: pb.Notice) -> Notice:
    kind = KINDS.get(message.kind, "fallback")
    return Notice(kind, message.message)


def result_to_proto(result: Result) -> pb.WolfResponse:
    fallbacks = [n.message for n in result.notices if n.kind == "fallback"]
    return pb.WolfResponse(
        text=result.text,
        tokens_in=result.usage.input_tokens,
        tokens_out=result.usage.output_tokens,
        reasoning_tokens=result.usage.reasoning_tokens,
        usage_estimated=result.usage.estimated,
        latency_ms=result.latency_ms,
        ttft_ms=result.ttft_ms or 0.0,
        cost_micros=result.cost_micros,
        model_used=result.model,
        provider=result.provider,
        finish_reason=result.finish_reason,
        fallback_notice="\n".join(fallbacks),
        notices=[notice_to_proto(n) for n in result.notices],
        cached=result.cached,
        trace_id=result.trace_id or "",
        request_id=result.id,
        context=[
            pb.ContextUse(id=u.id, status=u.status, tokens=u.tokens, reason=u.reason)
            for u in (result.context.documents if result.context else ())
        ],
        budget=pb.ContextBudget(
            window=result.context.window,
            response_reserve=result.context.reserve,
            prompt_tokens=result.context.prompt_tokens,
            switched_from=result.context.switched_from or "",
        )
        if result.context
        else None,
    )


def result_from_proto(message: pb.WolfResponse) -> Result:
    from geri.types import ContextReport, DocumentUse, Usage

    context = None
    if message.HasField("budget"):
        context = ContextReport(
            window=message.budget.window,
            reserve=message.budget.response_reserve,
            prompt_tokens=message.budget.prompt_tokens,
            documents=tuple(
                DocumentUse(u.id, u.status, u.tokens, u.reason) for u in message.context
            ),
            switched_from=message.budget.switched_from or None,
        )
    return Result(
        id=message.request_id,
        text=message.text,
        model=message.model_used,
        provider=message.provider,
        usage=Usage(
            message.tokens_in,
            message.tokens_out,
            reasoning_tokens=message.reasoning_tokens,
            estimated=message.usage_estimated,
        ),
        latency_ms=message.latency_ms,
        ttft_ms=message.ttft_ms or None,
        cost_micros=message.cost_micros,
        finish_reason=message.finish_reason or "stop",  # type: ignore[arg-type]
        context=context,
        cached=message.cached,
        notices=tuple(notice_from_proto(n) for n in message.notices),
        trace_id=message.trace_id or None,
    )


def model_to_proto(model: ModelInfo, default: bool) -> pb.ModelDescription:
    return pb.ModelDescription(
        id=model.id,
        name=model.name,
        provider=model.provider,
        kind=model.kind,
        location=model.location,
        context_window=model.context_window,
        parameters=model.parameters or 0,
        quantization=model.quantization or "",
        input_price_micros=model.input_price,
        output_price_micros=model.output_price,
        is_default=default,
    )


def model_from_proto(message: pb.ModelDescription) -> ModelInfo:
    return ModelInfo(
        id=message.id,
        provider=message.provider,
        source=message.id,
        name=message.name,
        kind="vision" if message.kind == "vision" else "text",
        location=LOCATIONS.get(message.location, "lan"),
        context_window=message.context_window,
        parameters=message.parameters or None,
        quantization=message.quantization or None,
        input_price=message.input_price_micros,
        output_price=message.output_price_micros,
    )


def stats_to_proto(stats: ModelStats) -> stats_pb2.ModelStats:
    """The message has the dataclass's fields, by name; unknown figures stay unset."""
    return stats_pb2.ModelStats(**{k: v for k, v in asdict(stats).items() if v is not None})


def stats_from_proto(message: stats_pb2.ModelStats) -> ModelStats:
    def value(name: str) -> object:
        optional = message.DESCRIPTOR.fields_by_name[name].has_presence
        return None if optional and not message.HasField(name) else getattr(message, name)

    return ModelStats(**{f.name: value(f.name) for f in fields(ModelStats)})  # type: ignore[arg-type]


def snapshot_to_proto(snapshot: Snapshot) -> stats_pb2.StatsResponse:
    return stats_pb2.StatsResponse(
        uptime_seconds=snapshot.uptime_seconds,
        requests=snapshot.requests,
        requests_per_second=snapshot.requests_per_second,
        queue_waiting=snapshot.waiting,
        queue_running=snapshot.running,
        process=stats_pb2.ProcessStats(**asdict(snapshot.process)),
        models=[stats_to_proto(m) for m in snapshot.models],
    )


def snapshot_from_proto(message: stats_pb2.StatsResponse) -> Snapshot:
    process = message.process
    return Snapshot(
        uptime_seconds=message.uptime_seconds,
        requests=message.requests,
        requests_per_second=message.requests_per_second,
        waiting=message.queue_waiting,
        running=message.queue_running,
        process=ProcessStats(process.rss_bytes, process.cpu_percent, process.threads),
        models=[stats_from_proto(m) for m in message.models],
    )
