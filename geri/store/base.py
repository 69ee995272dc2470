"""The store protocol: what geri persists, independent of the database behind it.

The store holds the request log and the registered models. It is synchronous on purpose:
each implementation owns one connection guarded by a lock, and the engine calls it from worker
threads (`asyncio.to_thread`), so a slow disk never stalls the event loop.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from datetime import datetime
from typing import Literal, Protocol

from geri.types import ModelInfo

Status = Literal["ok", "error", "cancelled"]


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """One engine call as the request log keeps it."""

    id: str
    created_at: datetime
    model: str
    provider: str
    prompt: str
    response: str
    input_tokens: int
    output_tokens: int
    latency_ms: float
    ttft_ms: float | None
    cost_micros: int
    status: Status
    error: str | None
    streamed: bool


@dataclass(frozen=True, slots=True)
class Outcome:
    """One logged call, as the selector weighs it."""

    status: Status
    latency_ms: float
    ttft_ms: float | None


@dataclass(frozen=True, slots=True)
class HealthCheck:
    """One probe of a model: could it be reached, and how fast."""

    model_id: str
    checked_at: datetime
    ok: bool
    latency_ms: float | None = None
    error: str | None = None


class Store(Protocol):
    """Persistence for geri. Every method is safe to call from any thread."""

    def record_request(self, record: RequestRecord) -> None: ...

    def recent_requests(self, limit: int = 20) -> list[RequestRecord]:
        """The newest `limit` records, newest first."""
        ...

    def add_model(self, info: ModelInfo) -> bool:
        """Register `info`; False if a model with that id already exists (nothing changes)."""
        ...

    def remove_model(self, model_id: str) -> bool:
        """Unregister; False if there was no such model."""
        ...

    def get_model(self, model_id: str) -> ModelInfo | None: ...

    def list_models(self) -> list[ModelInfo]:
        """All registered models, oldest first."""
        ...

    def put_model(self, info: ModelInfo) -> None:
        """Register `info`, replacing a model with the same id (discovered models change)."""
        ...

    def request_outcomes(self, model_id: str, limit: int = 200) -> list[Outcome]:
        """The newest `limit` logged calls of a model, newest first (for reliability, latency)."""
        ...

    def record_health(self, check: HealthCheck) -> None: ...

    def health_history(self, model_id: str, limit: int = 100) -> list[HealthCheck]:
        """The newest `limit` health checks of a model, newest first."""
        ...

    def get_state(self, key: str) -> str | None: ...

    def set_state(self, key: str, value: str | None) -> None: ...

    def close(self) -> None: ...


def model_to_json(info: ModelInfo) -> str:
    """`info` as the JSON text stores keep, so a new field needs no migration."""
    return json.dumps(asdict(info), sort_keys=True)


def model_from_json(text: str) -> ModelInfo:
    data = json.loads(text)
    known = {f.name for f in fields(ModelInfo)}
    return ModelInfo(**{k: v for k, v in data.items() if k in known})
