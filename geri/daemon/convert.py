"""Translation between the gRPC messages and geri's own types, in both directions, pure."""

from __future__ import annotations

from dataclasses import replace

from geri.daemon._pb.geri.v1 import wolf_pb2 as pb
from geri.types import (
    Constraints,
    Document,
    Location,
    ModelInfo,
    Notice,
    NoticeKind,
    Request,
    Result,
)

DEFAULTS = Request("")
LOCATIONS: dict[str, Location] = {"local": "local", "lan": "lan", "cloud": "cloud"}
KINDS: dict[str, NoticeKind] = {
    "fallback": "fallback",
    "budget_alert": "budget_alert",
    "budget_reset": "budget_reset",
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


def request_from_proto(message: pb.WolfRequest) -> Request:
    return replace(
        sampling_from_proto(message.parameters, message.prompt),
        system=message.system_prompt or None,
        model=message.model or None,
        documents=tuple(
            Document(
                d.id,
                d.content,
                d.score if d.HasField("score") else None,
                d.source or None,
                d.title or None,
                dict(d.metadata),
            )
            for d in message.context
        ),
        constraints=Constraints(
            local_only=message.model_type == pb.MODEL_TYPE_LOCAL,
            remote_only=message.model_type == pb.MODEL_TYPE_REMOTE,
        ),
        use_cache=not message.no_cache,
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
        usage=Usage(message.tokens_in, message.tokens_out),
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
