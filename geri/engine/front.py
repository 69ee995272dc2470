"""The engine's front door: what the CLI and the daemon ask of it besides answers.

Every method is async and is the one place where the blocking work behind it (SQL on the store,
the OS keyring over D-Bus, reading model files) hops to a worker thread, so neither front-end
reaches into the engine's collaborators and the daemon's event loop never waits on them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import ParamSpec, TypeVar

from geri.cost.ledger import BudgetState, Ledger
from geri.engine.cache import ResponseCache
from geri.keys import KeyStatus, KeyStore
from geri.registry import ModelRegistry
from geri.store import RequestRecord, Store
from geri.store.base import BudgetLimit, CacheStats, Finished
from geri.types import ModelInfo

P = ParamSpec("P")
T = TypeVar("T")


async def off_loop(function: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """`function(*args, **kwargs)` in a worker thread."""
    return await asyncio.to_thread(function, *args, **kwargs)


class FrontDoor:
    """Mixed into `Engine`, whose collaborators these are."""

    registry: ModelRegistry
    store: Store
    ledger: Ledger
    cache: ResponseCache
    keys: KeyStore

    def forget_models(self) -> None: ...

    async def list_models(self) -> list[ModelInfo]:
        """Every model geri knows: settings, registered, built-in cloud."""
        return await off_loop(self.registry.models)

    async def registered_models(self) -> list[ModelInfo]:
        return await off_loop(self.registry.registered)

    async def default_model(self) -> str | None:
        return await off_loop(self.registry.default_id)

    async def get_model(self, model_id: str | None = None) -> ModelInfo:
        """The model called `model_id`, or the default one."""
        return await off_loop(self.registry.get, model_id)

    async def add_model(self, path: Path, model_id: str | None = None) -> tuple[ModelInfo, bool]:
        """Check and register a GGUF file; whether it was new."""
        try:
            return await off_loop(self.registry.add_local, path, model_id)
        finally:
            self.forget_models()

    async def remove_model(self, model_id: str) -> bool:
        try:
            return await off_loop(self.registry.remove, model_id)
        finally:
            self.forget_models()

    async def set_budget(self, scope: str, period: str, micros: int) -> BudgetLimit:
        return await off_loop(self.ledger.set_limit, scope, period, micros)

    async def remove_budget(self, scope: str, period: str) -> bool:
        return await off_loop(self.ledger.remove_limit, scope, period)

    async def budgets(self) -> list[BudgetState]:
        return await off_loop(self.ledger.status)

    async def cache_stats(self) -> CacheStats:
        return await off_loop(self.cache.stats)

    async def clear_cache(self, model_id: str | None = None) -> int:
        return await off_loop(self.cache.clear, model_id)

    async def recent_requests(self, count: int) -> list[RequestRecord]:
        return await off_loop(self.store.recent_requests, count)

    async def finished_since(self, since: datetime) -> list[Finished]:
        return await off_loop(self.store.finished_since, since)

    async def set_key(self, provider: str, key: str) -> None:
        await off_loop(self.keys.set, provider, key)

    async def remove_key(self, provider: str) -> bool:
        return await off_loop(self.keys.remove, provider)

    async def key_status(self) -> tuple[list[KeyStatus], str | None]:
        """Each provider's key (masked) and where it comes from; why the keyring is unusable."""
        return await off_loop(self.keys.status), await off_loop(self.keys.keyring_problem)
