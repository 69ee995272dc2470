"""The settings schema: every section of the settings file, its fields, defaults and limits.

Sections are frozen pydantic models with `extra="forbid"`, because a misspelt key that is
silently ignored is a setting the user thinks they have and do not. Each field's description
is what `docs/configuration.md` shows (scripts/gen_docs.py).
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

ModelId = Annotated[
    str,
    Field(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._:/@+-]{0,127}$",
        description="Name used to pick the model, e.g. with `geri ask --model`.",
    ),
]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LocalModel(_Section):
    """A GGUF file run in-process."""

    kind: Literal["local"] = Field("local", description="A model run on this machine.")
    id: ModelId
    path: Path = Field(description="Path to the .gguf file.")
    provider: Literal["llama.cpp"] = Field("llama.cpp", description="Local runtime.")
    context_window: int | None = Field(
        None, ge=256, description="Context size to load with; defaults to performance.context_size."
    )
    chat_template: str | None = Field(
        None,
        description="Jinja chat template used instead of the one stored in the file "
        "(rendered in a sandbox).",
    )
    mmproj: Path | None = Field(
        None,
        description="The vision projector (mmproj / CLIP GGUF) of a llava-style model; with it "
        "the model takes images.",
    )
    vision_handler: Literal[
        "llava15",
        "llava16",
        "moondream",
        "nanollava",
        "minicpmv26",
        "qwen25vl",
        "llama3-vision-alpha",
        "mtmd",
    ] = Field(
        "llava15",
        description="llama-cpp-python's chat handler for the model family (with mmproj).",
    )


class CloudModel(_Section):
    """A model reached over HTTP."""

    kind: Literal["cloud"] = Field(description="A model behind a remote API.")
    id: ModelId
    provider: str = Field(description="Provider that speaks to it, e.g. 'openai'.")
    model: str = Field(description="The provider's name for the model.")
    base_url: str | None = Field(None, description="API base URL; the provider's own if unset.")
    context_window: int = Field(8192, ge=256, description="Context window in tokens.")
    input_price: Decimal = Field(
        Decimal(0), ge=0, description="US dollars per million input tokens."
    )
    output_price: Decimal = Field(
        Decimal(0), ge=0, description="US dollars per million output tokens."
    )
    vision: bool = Field(False, description="Whether the model accepts images.")
    tokenizer: str | None = Field(
        None, description="tiktoken encoding for exact counts (e.g. 'o200k_base'), if known."
    )


ModelEntry = Annotated[LocalModel | CloudModel, Field(discriminator="kind")]


class Fallback(_Section):
    """What happens when a cloud model cannot answer: over budget, rate-limited, unreachable."""

    enabled: bool = Field(
        True,
        description="Answer with another model (local last) when a cloud budget is exhausted "
        "or a remote model keeps failing after its retries.",
    )
    local_model: str | None = Field(
        None, description="Local model to fall back to; the best by efficiency score if unset."
    )
    max_hops: int = Field(3, ge=1, le=10, description="Most models tried for one request.")


class Budgets(_Section):
    """How spending limits behave; the limits themselves are set with `geri budget set`."""

    timezone: str = Field(
        "UTC", description="IANA time zone whose calendar days, weeks and months reset budgets."
    )
    alerts: tuple[float, ...] = Field(
        (0.5, 0.8, 1.0), description="Shares of a limit at which to notify (0.5 = 50 %)."
    )
    reservation_timeout: float = Field(
        600.0,
        gt=0,
        description="Seconds a reserved cost counts if its call never reports back "
        "(a process killed mid-call).",
    )

    @model_validator(mode="after")
    def _check(self) -> Budgets:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {self.timezone!r}; use an IANA name like 'Europe/Berlin'"
            ) from None
        if any(not 0 < a <= 10 for a in self.alerts):
            raise ValueError("alerts are shares of the limit, above 0 (0.8 means 80 %)")
        return self


class Notifications(_Section):
    """Where notices (fallbacks, budget alerts) go besides the terminal or the daemon client."""

    enabled: bool = Field(True, description="Send notices at all.")
    command: tuple[str, ...] = Field(
        (),
        description="Program and arguments run for each notice (no shell); it gets the text on "
        "stdin and in GERI_NOTICE, and the kind in GERI_NOTICE_KIND.",
    )
    webhook: str | None = Field(
        None, description="URL that receives each notice as a JSON POST {kind, message, at}."
    )
    timeout: float = Field(10.0, gt=0, description="Seconds a command or webhook may take.")


class Cache(_Section):
    """The response cache: identical requests to an unchanged model are answered from it."""

    enabled: bool = Field(True, description="Look up and store answers.")
    ttl: float = Field(86400.0, gt=0, description="Seconds an answer stays valid.")
    max_entries: int = Field(10_000, ge=1, description="Entries kept; the oldest go first.")


class Vision(_Section):
    """How images and videos are read before a vision model sees them."""

    max_input_mb: int = Field(50, ge=1, description="Largest image file accepted, in MiB.")
    max_video_mb: int = Field(2048, ge=1, description="Largest video accepted, in MiB.")
    max_pixels: int = Field(
        50_000_000, ge=1, description="Most pixels in an image (a decompression-bomb guard)."
    )
    frames_per_second: float = Field(
        0.0, ge=0, description="Video frames analysed per second; 0 picks frames at scene changes."
    )
    max_frames: int = Field(16, ge=1, le=1000, description="Most video frames analysed.")
    scene_threshold: float = Field(
        0.12, gt=0, le=1, description="How different (0-1) a frame must be to count as a new scene."
    )
    url_timeout: float = Field(
        30.0, gt=0, description="Seconds the whole transfer of an image or video URL may take."
    )


LevelName = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]


class Logging(_Section):
    """Where geri's own log goes, and how long the request log (in the store) keeps what."""

    format: Literal["human", "json"] = Field(
        "human", description="Lines for people, or one JSON object per record."
    )
    level: LevelName = Field("INFO", description="Least severe level written to the log file.")
    console_level: LevelName = Field(
        "WARNING",
        description="Least severe level shown on stderr. The daemon shows INFO, a line per "
        "call among it, unless this is set.",
    )
    levels: dict[str, LevelName] = Field(
        default_factory=dict,
        description='Levels per component, e.g. {"geri.providers": "DEBUG"}.',
    )
    file: bool = Field(True, description="Write geri.log in the log directory.")
    max_bytes: int = Field(10 * 2**20, ge=4096, description="Size at which the file rotates.")
    backups: int = Field(5, ge=0, description="Rotated files kept.")
    redact: tuple[str, ...] = Field(
        (),
        description="Regular expressions of further secrets to strip from every record "
        "(API keys geri knows are always stripped).",
    )
    retention: int | None = Field(
        None,
        ge=1,
        description="Days the request log keeps each call; older ones are deleted. "
        "Unset: kept until removed.",
    )
    request_text: bool = Field(
        True,
        description="Keep each prompt and answer in the request log; false keeps only what "
        "a call was (model, tokens, latency, cost, status, error).",
    )


class Price(_Section):
    """A model's price, overriding the shipped one."""

    input: Decimal = Field(ge=0, description="US dollars per million input tokens.")
    output: Decimal = Field(ge=0, description="US dollars per million output tokens.")


class Performance(_Section):
    """How local models run: threads, context and batch sizes, GPU offload, staying loaded."""

    threads: int | None = Field(
        None, ge=1, le=512, description="CPU threads for local inference; physical cores if unset."
    )
    context_size: int = Field(4096, ge=256, description="Default context size for local models.")
    batch_size: int = Field(512, ge=1, description="Prompt-processing batch size.")
    parallel: int = Field(
        4,
        ge=1,
        le=64,
        description="Requests one local model decodes together (continuous batching); they "
        "share its context window's cells. 1: one at a time.",
    )
    gpu_layers: int = Field(0, ge=-1, description="Layers to offload to a GPU (-1: all).")
    flash_attention: Literal["auto", "on", "off"] = Field(
        "auto",
        description="llama.cpp's flash attention kernel. auto: on wherever the model's layers run "
        "on a backend that has it (every CPU), as llama-server decides; on a CPU it decodes "
        "about a quarter faster.",
    )
    keep_loaded: bool = Field(True, description="Keep local models in memory between requests.")
    max_loaded_models: int = Field(
        2,
        ge=1,
        le=64,
        description="Local models kept loaded at once; loading another unloads the least "
        "recently used one that no request is using.",
    )


class ProviderOptions(_Section):
    """Per-provider overrides, keyed by provider name (e.g. 'openai')."""

    base_url: str | None = Field(None, description="API base URL for every model of it.")
    requests_per_minute: int | None = Field(
        None, ge=1, description="Client-side cap on requests per minute."
    )
    tokens_per_minute: int | None = Field(
        None, ge=1, description="Client-side cap on tokens (prompt + max output) per minute."
    )


class Network(_Section):
    """Timeouts and retries for every remote call."""

    connect_timeout: float = Field(10.0, gt=0, description="Seconds to establish a connection.")
    read_timeout: float = Field(
        120.0, gt=0, description="Seconds to wait for a complete non-streamed answer."
    )
    stream_idle_timeout: float = Field(
        60.0, gt=0, description="Seconds a stream may stay silent before it is abandoned."
    )
    total_timeout: float = Field(
        600.0,
        gt=0,
        description="Seconds one attempt may take in all, streamed or not, however steadily "
        "the server keeps sending.",
    )
    max_attempts: int = Field(
        4, ge=1, le=10, description="Attempts per call, first included, on retryable errors."
    )
    backoff_base: float = Field(0.5, ge=0, description="First retry delay in seconds.")
    backoff_max: float = Field(8.0, ge=0, description="Longest backoff delay in seconds.")
    max_retry_after: float = Field(
        60.0, ge=0, description="Longest server-requested wait (Retry-After) geri honours."
    )


class PromptSettings(_Section):
    """How prompts are built: the RAG template, the answer's share of the window, limits."""

    template: str | None = Field(
        None,
        description="Jinja template of the user message when documents are given; sees "
        "`question` and `documents` (each with number, citation, content, id, source, title, "
        "score). Rendered in a sandbox.",
    )
    response_reserve: float = Field(
        0.2, gt=0, lt=1, description="Share of the context window kept free for the answer."
    )
    switch_to_larger_model: bool = Field(
        True,
        description="When the question alone does not fit and no --model was given, use a "
        "model with a larger window of the same kind (local or cloud).",
    )
    max_rag_bytes: int = Field(
        16 * 1024 * 1024, ge=1, description="Largest RAG file accepted, in bytes."
    )
    max_documents: int = Field(1000, ge=1, description="Most documents in one RAG file.")


class BitNet(_Section):
    """How 1-bit BitNet models run: in-process through llama.cpp, or in bitnet.cpp's server."""

    server: Path | None = Field(
        None,
        description="bitnet.cpp's llama-server binary. When set, BitNet models run in it, "
        "started on demand on 127.0.0.1 and stopped with geri; needed for its i2_s format.",
    )
    server_args: tuple[str, ...] = Field((), description="Extra arguments for the server.")
    threads: int | None = Field(None, ge=1, description="CPU threads; physical cores if unset.")
    context_size: int = Field(2048, ge=256, description="Context size (smaller saves memory).")
    batch_size: int = Field(256, ge=1, description="Prompt batch size (smaller saves memory).")
    startup_timeout: float = Field(120.0, gt=0, description="Seconds to wait for the server.")


class Weights(_Section):
    """How much each factor counts in a model's efficiency score (normalised to sum to 1)."""

    size: float = Field(0.20, ge=0, description="Smaller models are cheaper to run.")
    hardware: float = Field(0.15, ge=0, description="How comfortably the model fits this machine.")
    reliability: float = Field(0.20, ge=0, description="Observed success rate and uptime.")
    latency: float = Field(0.25, ge=0, description="Observed time to first token and latency.")
    distance: float = Field(0.10, ge=0, description="Local before LAN before cloud (round trip).")
    cost: float = Field(0.10, ge=0, description="Estimated price of the request.")

    @model_validator(mode="after")
    def _not_all_zero(self) -> Weights:
        if sum(self.model_dump().values()) <= 0:
            raise ValueError("at least one routing weight must be above zero")
        return self

    def normalised(self) -> dict[str, float]:
        raw = self.model_dump()
        total = sum(raw.values())
        return {name: value / total for name, value in raw.items()}


class Routing(_Section):
    """Choosing a model when the request names none ('auto')."""

    weights: Weights = Weights()
    spread: float = Field(
        0.1, ge=0, le=1, description="Models scoring within this of the best share the load."
    )
    candidates: int = Field(3, ge=1, description="Most models sharing the load.")
    capacity: dict[str, int] = Field(
        default_factory=dict,
        description="Concurrent requests per model id; default performance.parallel for local "
        "models, 16 remote.",
    )
    failure_threshold: int = Field(
        3, ge=1, description="Consecutive failures that take a model out of rotation."
    )
    cooldown: float = Field(30.0, gt=0, description="Seconds before such a model is tried again.")
    health_interval: float = Field(300.0, gt=0, description="Seconds between health checks.")
    local_only: bool = Field(False, description="Never route to a remote model.")
    max_cost: Decimal | None = Field(
        None, ge=0, description="Most US dollars one request may be estimated to cost."
    )
    max_latency_ms: float | None = Field(
        None, gt=0, description="Skip models whose observed median latency is above this."
    )


class Peer(_Section):
    """A machine on the LAN whose models geri may use."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$", description="Short name.")
    url: str = Field(
        description="Base URL of its OpenAI-compatible API (http://host:8080/v1), or the "
        "host:port of a geri daemon."
    )
    kind: Literal["openai_compatible", "geri"] = Field(
        "openai_compatible", description="The API the peer speaks."
    )
    token_file: Path | None = Field(None, description="A geri peer's daemon token, if it has one.")


class Daemon(_Section):
    """`geri daemon`: where it listens and how much it takes on."""

    host: str = Field("127.0.0.1", description="Address to listen on; loopback by default.")
    port: int = Field(50051, ge=0, le=65535, description="TCP port (0: any free port).")
    socket: Path | None = Field(
        None, description="Listen on this Unix socket (mode 0600) instead of TCP."
    )
    token_file: Path | None = Field(
        None,
        description="File holding the token clients must send; required when host is not "
        "a loopback address. GERI_DAEMON_TOKEN works too.",
    )
    max_queue: int = Field(64, ge=1, description="Requests that may wait; more are refused.")
    max_running: int = Field(8, ge=1, description="Requests served at once, all models.")
    max_message_mb: int = Field(64, ge=1, description="Largest gRPC message, in MiB.")
    event_loop: Literal["auto", "uvloop", "asyncio"] = Field(
        "auto",
        description="The daemon's event loop: uvloop (less CPU per call) when installed, or "
        "asyncio's own.",
    )
    drain_seconds: float = Field(
        30.0, ge=0, description="On SIGTERM, how long in-flight calls may finish."
    )
    reload_interval: float = Field(
        2.0, gt=0, description="Seconds between checks of the settings file for changes."
    )
    preload: bool = Field(True, description="Load the default local model at start.")
    metrics_port: int | None = Field(
        None, ge=0, le=65535, description="Serve Prometheus metrics over HTTP on this port."
    )
    metrics_host: str = Field("127.0.0.1", description="Address of the metrics endpoint.")
    http_port: int | None = Field(
        None,
        ge=0,
        le=65535,
        description="Also serve the OpenAI-compatible HTTP API (/v1/chat/completions, "
        "/v1/models, /healthz, /metrics) on this port of `host` (0: any free port); off if unset.",
    )


class Keys(_Section):
    """Where API keys may be kept (`geri keys set`)."""

    allow_plaintext_keyring: bool = Field(
        False,
        description="Accept a keyring backend that stores keys unencrypted on disk "
        "(keyrings.alt). Off by default.",
    )


class Settings(_Section):
    """Everything a user can configure. Every field has a default."""

    store: str | None = Field(
        None,
        description="Where geri keeps its registry, request log and budgets: a SQLite file "
        "path, or a postgresql:// URL to share one store between daemons. GERI_STORE wins.",
    )
    models: tuple[ModelEntry, ...] = Field((), description="Models beyond the registered ones.")
    default_model: str | None = Field(None, description="Model used when none is given.")
    vision_models: tuple[str, ...] = Field(
        ("gpt-4o",),
        description="Vision models for `geri vision`, preferred first; the first usable one "
        "(with a key, or local) answers.",
    )
    vision: Vision = Vision()
    fallback: Fallback = Fallback()
    budgets: Budgets = Budgets()
    notifications: Notifications = Notifications()
    cache: Cache = Cache()
    logging: Logging = Logging()
    prices: dict[str, Price] = Field(
        default_factory=dict, description="Price overrides, keyed by model id."
    )
    performance: Performance = Performance()
    providers: dict[str, ProviderOptions] = Field(
        default_factory=dict, description="Per-provider options, keyed by provider name."
    )
    network: Network = Network()
    keys: Keys = Keys()
    prompt: PromptSettings = PromptSettings()
    bitnet: BitNet = BitNet()
    routing: Routing = Routing()
    daemon: Daemon = Daemon()
    peers: tuple[Peer, ...] = Field((), description="LAN servers whose models geri may use.")

    def model_entry(self, model_id: str) -> LocalModel | CloudModel | None:
        return next((m for m in self.models if m.id == model_id), None)
