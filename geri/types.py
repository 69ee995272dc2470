"""The plain data that flows through geri: requests in, chunks and results out.

These are frozen dataclasses, not pydantic models: they are built and read on hot paths (one
`Chunk` per token) and never come straight from a user's file. Validation of user input
happens at the edges (settings, CLI options, RAG files) before these are built.

`Request` is what a caller asks for; `ChatRequest` is what a provider receives once the engine
has resolved the model and built the messages; `Completion` is a provider's answer and `Result`
the engine's, with latency, cost and the request id added.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Role = Literal["system", "user", "assistant"]
# why an answer ended: "refusal" (the model declined) and "content_filter" (the provider's safety
# system blocked the prompt or answer) are answers too, with whatever text the provider gave
FinishReason = Literal[
    "stop", "length", "refusal", "content_filter", "tool_calls", "error", "cancelled"
]
REFUSED: tuple[FinishReason, ...] = ("refusal", "content_filter")


@dataclass(frozen=True, slots=True)
class Image:
    """An image ready to send: encoded bytes and their MIME type."""

    data: bytes
    mime_type: str = "image/png"

    def base64(self) -> str:
        import base64

        return base64.b64encode(self.data).decode("ascii")

    def data_url(self) -> str:
        return f"data:{self.mime_type};base64,{self.base64()}"


@dataclass(frozen=True, slots=True)
class Message:
    """One chat message; user messages may carry images for vision models."""

    role: Role
    content: str
    images: tuple[Image, ...] = ()


@dataclass(frozen=True, slots=True)
class Document:
    """A retrieved passage to ground an answer in (RAG). Higher `score` is more relevant."""

    id: str
    content: str
    score: float | None = None
    source: str | None = None
    title: str | None = None
    metadata: dict[str, str | int | float | bool] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class DocumentUse:
    """What became of one document when the prompt was fitted to the context window."""

    id: str
    status: Literal["included", "trimmed", "dropped", "duplicate"]
    tokens: int = 0
    reason: str = ""


@dataclass(frozen=True, slots=True)
class ContextReport:
    """How the prompt was built: the token budget and each document's fate."""

    window: int
    reserve: int
    prompt_tokens: int
    documents: tuple[DocumentUse, ...] = ()
    switched_from: str | None = None

    def as_dict(self) -> dict[str, object]:
        return {
            "window": self.window,
            "response_reserve": self.reserve,
            "prompt_tokens": self.prompt_tokens,
            "available": self.window - self.reserve - self.prompt_tokens,
            "switched_from": self.switched_from,
            "documents": [
                {"id": d.id, "status": d.status, "tokens": d.tokens, "reason": d.reason}
                for d in self.documents
            ],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ContextReport:
        """The inverse of `as_dict` (how the response cache keeps a report)."""
        return cls(
            window=data["window"],
            reserve=data["response_reserve"],
            prompt_tokens=data["prompt_tokens"],
            documents=tuple(DocumentUse(**d) for d in data.get("documents") or ()),
            switched_from=data.get("switched_from"),
        )


NoticeKind = Literal["fallback", "budget_alert", "budget_reset", "usage_anomaly", "unlogged"]
Period = Literal["daily", "weekly", "monthly"]  # of a budget


@dataclass(frozen=True, slots=True)
class Notice:
    """Something the user should know about how a request was served, in plain words."""

    kind: NoticeKind
    message: str


@dataclass(frozen=True, slots=True)
class Constraints:
    """Limits on which model may answer, when geri chooses it ('auto')."""

    local_only: bool = False
    remote_only: bool = False
    needs_vision: bool = False
    min_context: int | None = None
    max_cost_micros: int | None = None
    max_latency_ms: float | None = None


@dataclass(frozen=True, slots=True)
class Request:
    """A prompt as a caller states it.

    >>> Request("What is 2 + 2?", max_tokens=16, temperature=0.0)  # doctest: +ELLIPSIS
    Request(prompt='What is 2 + 2?', ...)
    """

    prompt: str
    system: str | None = None
    model: str | None = None
    max_tokens: int = 512
    temperature: float = 0.7
    top_p: float = 0.95
    seed: int | None = None
    stop: tuple[str, ...] = ()
    documents: tuple[Document, ...] = ()
    constraints: Constraints = field(default_factory=Constraints)
    use_cache: bool = True
    images: tuple[Image, ...] = ()
    trace_id: str | None = None
    # earlier turns of a conversation (user and assistant), between the system prompt and this
    history: tuple[Message, ...] = ()
    # structured output: the answer must be JSON valid against this JSON Schema (as JSON text)
    json_schema: str | None = None
    # who the calling program acts for (OpenAI's `user`): kept in the request log, never sent on
    end_user: str | None = None


@dataclass(frozen=True, slots=True)
class ChatRequest:
    """What a provider is asked to complete: messages and sampling parameters."""

    messages: tuple[Message, ...]
    max_tokens: int = 512
    temperature: float = 0.7
    top_p: float = 0.95
    seed: int | None = None
    stop: tuple[str, ...] = ()
    json_schema: str | None = None  # JSON text of the schema the answer must follow


@dataclass(frozen=True, slots=True)
class Usage:
    """Token counts as the model reports them."""

    input_tokens: int = 0
    output_tokens: int = 0
    # why the figures reported were not believed (then they are clamped to 0…MAX_USAGE)
    anomaly: str | None = None
    # of the output, how many were reasoning ("thinking"): billed, but not in the text
    reasoning_tokens: int = 0
    # counted by geri (the model's or server's tokenizer, else a high estimate): none reported
    estimated: bool = False

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens


@dataclass(frozen=True, slots=True)
class Completion:
    """A provider's complete answer."""

    text: str
    usage: Usage
    finish_reason: FinishReason = "stop"


@dataclass(frozen=True, slots=True)
class Result:
    """The engine's answer to a `Request`, as logged in the store."""

    id: str
    text: str
    model: str
    provider: str
    usage: Usage
    latency_ms: float
    ttft_ms: float | None = None
    cost_micros: int = 0
    finish_reason: FinishReason = "stop"
    context: ContextReport | None = None
    cached: bool = False
    notices: tuple[Notice, ...] = ()
    trace_id: str | None = None

    @property
    def tokens_per_second(self) -> float:
        seconds = self.latency_ms / 1000
        return self.usage.output_tokens / seconds if seconds > 0 else 0.0

    def as_dict(self) -> dict[str, object]:
        """A JSON-ready view, as `geri ask --json` prints it."""
        return {
            "id": self.id,
            "text": self.text,
            "model": self.model,
            "provider": self.provider,
            "usage": {
                "input_tokens": self.usage.input_tokens,
                "output_tokens": self.usage.output_tokens,  # reasoning included, as billed
                "reasoning_tokens": self.usage.reasoning_tokens,
                "estimated": self.usage.estimated,
            },
            "latency_ms": round(self.latency_ms, 3),
            "ttft_ms": None if self.ttft_ms is None else round(self.ttft_ms, 3),
            # a cached answer was not generated now: no rate to report
            "tokens_per_second": None if self.cached else round(self.tokens_per_second, 2),
            "cost_usd": self.cost_micros / 1_000_000,
            "finish_reason": self.finish_reason,
            "context": self.context.as_dict() if self.context else None,
            "cached": self.cached,
            "trace_id": self.trace_id,
            "notices": [{"kind": n.kind, "message": n.message} for n in self.notices],
        }


@dataclass(frozen=True, slots=True)
class Chunk:
    """A piece of a streamed answer.

    Providers yield chunks with `text`; the last one may carry `usage` and `finish_reason`.
    The engine's stream may also carry a `notice` (a fallback, a budget alert) as it happens,
    and ends with one extra chunk with `done=True` and the full `result`.
    """

    text: str = ""
    usage: Usage | None = None
    finish_reason: FinishReason | None = None
    done: bool = False
    result: Result | None = None
    notice: Notice | None = None


ModelKind = Literal["text", "vision"]
Location = Literal["local", "lan", "cloud"]


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """What geri knows about one model: enough to choose it, load it and price it.

    `provider` names an entry of the provider registry (`geri.providers.PROVIDERS`);
    `source` is what that provider needs to reach the model: a file path for local models,
    the remote model name for cloud ones. Prices are micro-dollars per million tokens.
    """

    id: str
    provider: str
    source: str
    name: str = ""
    kind: ModelKind = "text"
    location: Location = "local"
    context_window: int = 4096
    parameters: int | None = None
    quantization: str | None = None
    size_bytes: int | None = None
    input_price: int = 0
    output_price: int = 0
    metadata: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ModelStats:
    model: str
    provider: str
    requests: int
    errors: int
    cancelled: int
    cached: int
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    latency_p99_ms: float | None
    ttft_p50_ms: float | None
    tokens_per_second: float | None
    input_tokens: int
    output_tokens: int
    spend_micros: int

    @property
    def cache_hit_rate(self) -> float:
        return self.cached / self.requests if self.requests else 0.0

    def as_dict(self) -> dict[str, object]:
        return {**asdict(self), "cache_hit_rate": round(self.cache_hit_rate, 4)}


@dataclass(frozen=True, slots=True)
class ProcessStats:
    rss_bytes: int
    cpu_percent: float
    threads: int


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A live process right now: its throughput, queue, resources and models."""

    uptime_seconds: float
    requests: int
    requests_per_second: float
    waiting: int
    running: int
    process: ProcessStats
    models: list[ModelStats]

    def as_dict(self) -> dict[str, object]:
        return {
            "uptime_seconds": self.uptime_seconds,
            "requests": self.requests,
            "requests_per_second": self.requests_per_second,
            "queue": {"waiting": self.waiting, "running": self.running},
            "process": asdict(self.process),
            "models": [m.as_dict() for m in self.models],
        }
