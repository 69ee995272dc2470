"""The router: ranks models for a request, probes their health, finds models on the LAN.

It gathers what the selector needs (every known model, what the store has seen of each, free
memory, a token estimate, the constraints from the request and the settings) and what keeps a
model out right now (no key, a resting circuit). The engine asks it when a request names no
model; `geri route --explain` shows its full reasoning.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING

from geri.cost import dollars_to_micros
from geri.keys import KeyStore
from geri.prompt.tokens import estimate_tokens
from geri.providers import Provider
from geri.registry import ModelRegistry
from geri.selection.balancer import LoadBalancer
from geri.selection.discovery import PeerListing, discover, down
from geri.selection.health import probe
from geri.selection.score import Observed
from geri.selection.selector import Exclusion, Ranking, rank
from geri.settings import Settings, live
from geri.specs import provider_spec
from geri.store import HealthCheck, Store
from geri.types import Constraints, ModelInfo, Request

if TYPE_CHECKING:
    import httpx


class Router:
    def __init__(
        self,
        settings: Settings | Callable[[], Settings],
        registry: ModelRegistry,
        store: Store,
        keys: KeyStore,
        balancer: LoadBalancer,
        *,
        provider: Callable[[ModelInfo], Provider],
        http: Callable[[], httpx.AsyncClient],
        free_ram: Callable[[], int] | None = None,
    ) -> None:
        self._settings = live(settings)
        self.registry = registry
        self.store = store
        self.keys = keys
        self.balancer = balancer
        self._provider = provider
        self._http = http
        self._free_ram = free_ram or _free_ram

    @property
    def settings(self) -> Settings:
        return self._settings()

    async def route(self, request: Request) -> Ranking:
        """Every model ranked for `request` by efficiency score, and why others were left out."""
        models, observed, unusable = await asyncio.to_thread(self._survey)
        text = " ".join(
            [request.system or "", request.prompt, *(d.content for d in request.documents)]
        )
        given = request.constraints
        if request.images and not given.needs_vision:
            given = replace(given, needs_vision=True)
        return rank(
            models,
            self.constraints(given),
            weights=self.settings.routing.weights.normalised(),
            observed=observed,
            free_ram=self._free_ram(),
            prompt_tokens=estimate_tokens(text),
            max_tokens=request.max_tokens,
            usable=lambda model: unusable[model.id],
        )

    def constraints(self, given: Constraints) -> Constraints:
        """The request's constraints, tightened by the settings' `routing` section."""
        routing = self.settings.routing
        cost = given.max_cost_micros
        if cost is None and routing.max_cost is not None:
            cost = dollars_to_micros(routing.max_cost)
        return replace(
            given,
            local_only=given.local_only or routing.local_only,
            max_cost_micros=cost,
            max_latency_ms=given.max_latency_ms or routing.max_latency_ms,
        )

    def unusable(self, model: ModelInfo) -> Exclusion | None:
        """Why `model` cannot take a request right now (no key, resting), or None."""
        spec = provider_spec(model.provider)
        if spec.needs_key and not self.keys.get(model.provider):
            return Exclusion("no_key", f"no API key — {self.keys.how_to_add(model.provider)}")
        resting = self.balancer.unavailable(model)
        return Exclusion("resting", resting) if resting else None

    async def check_health(self) -> list[HealthCheck]:
        """Probe every usable model once and log the results (they feed reliability)."""
        checks = []
        for model in await asyncio.to_thread(self.registry.models):
            if model.location != "local" and self.unusable(model):
                continue  # no key: not configured, rather than down
            check = await probe(model, functools.partial(self._provider, model))
            await asyncio.to_thread(self.store.record_health, check)
            checks.append(check)
        return checks

    async def discover(self) -> list[PeerListing]:
        """Ask every peer in the settings for its models; register them, or mark them down."""
        results = []
        for peer in self.settings.peers:
            found = await discover(peer, self._http(), self.keys.get("openai_compatible"))
            if found.error is None:
                for model in found.models:
                    await asyncio.to_thread(self.store.put_model, model)
            else:
                known = [
                    m
                    for m in await asyncio.to_thread(self.registry.models)
                    if m.metadata.get("peer") == peer.name
                ]
                for model in known:
                    await asyncio.to_thread(self.store.record_health, down(model, found.error))
            results.append(found)
        return results

    def _survey(
        self,
    ) -> tuple[list[ModelInfo], dict[str, Observed], dict[str, Exclusion | None]]:
        """Every model, what the store has seen of each, and what keeps each out now (keys
        come from the keyring): the blocking part of routing, in one worker thread."""
        models = self.registry.models()
        observed = {
            m.id: Observed.from_history(
                self.store.request_outcomes(m.id), self.store.health_history(m.id)
            )
            for m in models
        }
        return models, observed, {m.id: self.unusable(m) for m in models}


def _free_ram() -> int:
    import psutil

    return int(psutil.virtual_memory().available)
