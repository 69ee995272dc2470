"""The store protocol: what geri persists, independent of the database behind it.

The store holds the request log, the registered models, the budget ledger and the response
cache. It is synchronous on purpose:
each implementation owns one connection guarded by a lock, and the engine calls it from worker
threads (`asyncio.to_thread`), so a slow disk never stalls the event loop.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from datetime import datetime
from typing import Literal, Protocol

from geri.types import ModelInfo, Period

Status = Literal["ok", "refused", "error", "cancelled"]  # refused: a refusal or a filter
ALL_CLOUD = "*"


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
    cached: bool = False
    trace_id: str | None = None
    end_user: str | None = None  # who the calling program acted for, as it said


@dataclass(frozen=True, slots=True)
class Outcome:
    """One logged call, as the selector weighs it."""

    status: Status
    latency_ms: float
    ttft_ms: float | None


@dataclass(frozen=True, slots=True)
class Finished:
    """One logged call, as metrics see it (no prompt or answer)."""

    model: str
    provider: str
    status: str
    latency_ms: float
    ttft_ms: float | None
    input_tokens: int
    output_tokens: int
    cost_micros: int
    cached: bool


FINISHED_COLUMNS = (
    "model, provider, status, latency_ms, ttft_ms, input_tokens, output_tokens, cost_micros, cached"
)


@dataclass(frozen=True, slots=True)
class HealthCheck:
    """One probe of a model: could it be reached, and how fast."""

    model_id: str
    checked_at: datetime
    ok: bool
    latency_ms: float | None = None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class BudgetLimit:
    """A spending limit: `scope` is a provider name, or ALL_CLOUD for every cloud call."""

    scope: str
    period: Period
    limit_micros: int


@dataclass(frozen=True, slots=True)
class Reservation:
    """The projected cost of one cloud call, held in the ledger until the call reports back.

    Times are integer microseconds since the epoch. An unsettled reservation stops counting
    at `expires_us`, so a process killed mid-call does not hold budget forever.
    """

    id: str
    provider: str
    model: str
    amount_micros: int
    at_us: int
    expires_us: int


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a reservation was refused: the limit it would break and what was already spent."""

    limit: BudgetLimit
    spent_micros: int


@dataclass(frozen=True, slots=True)
class Spend:
    """Money counted against a limit in a period: settled calls and live reservations."""

    settled_micros: int
    reserved_micros: int

    @property
    def total_micros(self) -> int:
        return self.settled_micros + self.reserved_micros


@dataclass(frozen=True, slots=True)
class CacheStats:
    """The response cache's size, and how often the request log says it answered."""

    entries: int
    characters: int
    expired: int
    hits: int
    requests: int


class RequestLog(Protocol):
    """Every call geri made, and what it did: the request log, health checks, metrics."""

    def record_request(self, record: RequestRecord) -> None: ...

    def record_requests(self, records: Sequence[RequestRecord]) -> None:
        """All of `records`, in one transaction."""
        ...

    def recent_requests(self, limit: int = 20) -> list[RequestRecord]:
        """The newest `limit` records, newest first."""
        ...

    def request_outcomes(self, model_id: str, limit: int = 200) -> list[Outcome]:
        """The newest `limit` logged calls of a model, newest first (for reliability, latency)."""
        ...

    def finished_since(self, since: datetime) -> list[Finished]:
        """Every call logged at or after `since`, oldest first (for `geri stats`)."""
        ...

    def prune_requests(self, before: datetime) -> int:
        """Delete the calls logged before `before`; how many."""
        ...

    def record_health(self, check: HealthCheck) -> None: ...

    def health_history(self, model_id: str, limit: int = 100) -> list[HealthCheck]:
        """The newest `limit` health checks of a model, newest first."""
        ...


class ModelTable(Protocol):
    """The registered models, and small named values shared across processes."""

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

    def get_state(self, key: str) -> str | None: ...

    def set_state(self, key: str, value: str | None) -> None: ...


class BudgetBook(Protocol):
    """Spending limits, the ledger of what calls reserved and spent, and one-time claims (so a
    budget alert or notice is given once across processes)."""

    def claim(self, key: str) -> bool:
        """Record `key` once: True for the one caller, across processes, that recorded it."""
        ...

    def set_budget(self, limit: BudgetLimit) -> None: ...

    def remove_budget(self, scope: str, period: Period) -> bool: ...

    def budgets(self) -> list[BudgetLimit]: ...

    def reserve(self, reservation: Reservation, since_us: dict[Period, int]) -> Refusal | None:
        """Hold `reservation` unless it would take a limit on its provider (or ALL_CLOUD) past
        its amount in the period starting at `since_us[period]`.

        Atomic across processes: SQLite under `BEGIN IMMEDIATE`, PostgreSQL under row locks
        on the limits involved. Returns None when held, else the limit it would break.
        """
        ...

    def settle(self, reservation_id: str, amount_micros: int) -> None:
        """Replace a reservation's projected cost with what the call really cost."""
        ...

    def spend(self, scope: str, since_us: int, now_us: int) -> Spend:
        """What counts against `scope` since `since_us`: settled, and reserved and still live."""
        ...


class AnswerCache(Protocol):
    """Complete answers kept for identical requests."""

    def cache_get(self, key: str, now_us: int) -> str | None:
        """The cached answer under `key`, unless it expired."""
        ...

    def cache_put(
        self, key: str, model_id: str, value: str, now_us: int, expires_us: int, keep: int
    ) -> None:
        """Store an answer, dropping expired entries and the oldest beyond `keep`."""
        ...

    def cache_clear(self, model_id: str | None = None) -> int:
        """Drop every cached answer (or those of one model); returns how many."""
        ...

    def cache_stats(self, now_us: int) -> CacheStats: ...


class Store(RequestLog, ModelTable, BudgetBook, AnswerCache, Protocol):
    """Persistence for geri, by concern. Every method is safe to call from any thread."""

    def close(self) -> None: ...


def model_to_json(info: ModelInfo) -> str:
    """`info` as the JSON text stores keep, so a new field needs no migration."""
    return json.dumps(asdict(info), sort_keys=True)


def model_from_json(text: str) -> ModelInfo:
    data = json.loads(text)
    known = {f.name for f in fields(ModelInfo)}
    return ModelInfo(**{k: v for k, v in data.items() if k in known})
