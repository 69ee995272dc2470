"""Models on the LAN: peers from the settings, found through their model listings.

Each peer is asked for `GET {url}/models` (the OpenAI-compatible listing), with the key geri
holds for OpenAI-compatible servers (or the peer's `token_file`) as a Bearer token, as a keyed
proxy requires. Every model it lists is registered as a LAN model named `peer/model`, with the
round trip of that request as its measured distance; a peer that does not answer has each of its
known models marked down in the health log, so they lose reliability until it is back.

A model's context window is what the server says: vLLM's `max_model_len` in the listing, else
llama.cpp's server's `/props` (`default_generation_settings.n_ctx`); a server that says neither
gets `DEFAULT_WINDOW`, deliberately small. A listed name that carries a key (an upstream echoing
it back) is not registered.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import PurePosixPath
from typing import TYPE_CHECKING

from geri.inputs import json_loads
from geri.redaction import redact
from geri.settings import Peer
from geri.store.base import HealthCheck
from geri.types import ModelInfo

if TYPE_CHECKING:
    import httpx

DEFAULT_WINDOW = 2048  # when the server does not say: small, so a prompt is not cut off by it


@dataclass(frozen=True, slots=True)
class PeerListing:
    peer: str
    models: tuple[ModelInfo, ...]
    error: str | None = None
    rtt_ms: float | None = None


async def discover(peer: Peer, client: httpx.AsyncClient, key: str | None = None) -> PeerListing:
    """The models `peer` serves now, or why it could not be asked; `key` is sent as a Bearer
    token to an OpenAI-compatible peer (its `token_file` wins)."""
    if peer.kind == "geri":
        return await _discover_daemon(peer)
    import httpx

    base = peer.url.rstrip("/")
    token = peer.token_file.expanduser().read_text().strip() if peer.token_file else key
    headers = {"authorization": f"Bearer {token}"} if token else {}
    started = time.perf_counter()
    try:
        response = await client.get(f"{base}/models", headers=headers, timeout=5.0)
        rtt = (time.perf_counter() - started) * 1000
        response.raise_for_status()
        listed = [
            (str(m["id"]), m.get("max_model_len"))
            for m in json_loads(response.content).get("data", [])
            if isinstance(m, dict) and "id" in m
        ]
    except (httpx.HTTPError, ValueError, KeyError, TypeError, AttributeError) as exc:
        return PeerListing(peer.name, (), redact(f"{type(exc).__name__}: {exc}")[:300])
    served = await _served_window(client, base, headers)
    models = tuple(
        ModelInfo(
            id=f"{peer.name}/{_slug(name)}",
            provider="openai_compatible",
            source=name,
            name=name,
            location="lan",
            context_window=_window(window) or served or DEFAULT_WINDOW,
            metadata={"base_url": base, "rtt_ms": f"{rtt:.2f}", "peer": peer.name},
        )
        for name, window in listed
        if redact(name) == name  # a name that quotes a key is no model name
    )
    return PeerListing(peer.name, models, None, rtt)


async def _served_window(
    client: httpx.AsyncClient, base: str, headers: dict[str, str]
) -> int | None:
    """The context size a llama.cpp server says it serves (`/props`), if it says."""
    import httpx

    root = base.removesuffix("/v1")
    try:
        response = await client.get(f"{root}/props", headers=headers, timeout=5.0)
        if response.status_code != 200:
            return None
        return _window(json_loads(response.content)["default_generation_settings"]["n_ctx"])
    except (httpx.HTTPError, ValueError, KeyError, TypeError):
        return None


def _window(value: object) -> int | None:
    """A context size a server stated, if it is a plausible one."""
    if isinstance(value, int) and not isinstance(value, bool) and 256 <= value <= 2**24:
        return value
    return None


async def _discover_daemon(peer: Peer) -> PeerListing:
    """A geri daemon's models, through its ListModels RPC."""
    from geri.errors import GeriError
    from geri.wire import DaemonAddress
    from geri.wire.client import DaemonClient

    token = peer.token_file.expanduser().read_text().strip() if peer.token_file else None
    started = time.perf_counter()
    try:
        async with DaemonClient(DaemonAddress(peer.url, token=token)) as remote:
            listed = await remote.list_models()
    except (GeriError, OSError) as exc:
        return PeerListing(peer.name, (), redact(str(exc))[:300])
    rtt = (time.perf_counter() - started) * 1000
    # the token stays in its file: the registry (a database) never holds a secret
    metadata = {"address": peer.url, "rtt_ms": f"{rtt:.2f}", "peer": peer.name}
    models = tuple(
        ModelInfo(
            id=f"{peer.name}/{_slug(m.id)}",
            provider="geri_peer",
            source=m.id,
            name=m.name or m.id,
            kind=m.kind,
            location="lan",
            context_window=m.context_window,
            parameters=m.parameters,
            quantization=m.quantization,
            metadata=metadata,
        )
        for m in listed
        if m.location == "local"  # a peer's own machine; its cloud models are ours to call too
    )
    return PeerListing(peer.name, models, None, rtt)


def down(model: ModelInfo, error: str) -> HealthCheck:
    return HealthCheck(model.id, datetime.now(UTC), False, None, error)


def _slug(name: str) -> str:
    """
    >>> _slug("/models/Llama 3.gguf")
    'Llama-3.gguf'
    """
    tail = PurePosixPath(name).name or name
    return re.sub(r"[^A-Za-z0-9._:@+-]+", "-", tail).strip("-") or "model"
