"""The provider registry: provider name -> what implements it and what it needs.

Capabilities are data here (does it need a key, which environment variables hold it, its
default endpoint), read by the engine, the key store and the CLI; nothing branches on a
provider's name. Entries name their class as a string, imported on first use, so listing the
registry (or running `geri --help`) imports neither llama.cpp nor an HTTP client. A new
provider is one module and one entry here.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Protocol

from geri.errors import ModelError
from geri.providers.base import Provider, ProviderContext
from geri.types import ModelInfo


@dataclass(frozen=True, slots=True)
class ImageRules:
    """What a provider accepts as an image: formats (Pillow's names), longest side, size."""

    formats: tuple[str, ...] = ("PNG", "JPEG", "WEBP", "GIF")
    max_side: int = 2048
    max_bytes: int = 20 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class ProviderSpec:
    target: str
    label: str
    needs_key: bool = False
    takes_key: bool = False
    key_env: tuple[str, ...] = ()
    base_url: str | None = None
    images: ImageRules = ImageRules()


PROVIDERS: dict[str, ProviderSpec] = {
    "llama.cpp": ProviderSpec(
        "geri.providers.llamacpp:LlamaCppProvider",
        "llama.cpp",
        images=ImageRules(formats=("PNG", "JPEG"), max_side=1344),
    ),
    "bitnet": ProviderSpec("geri.providers.bitnet:BitNetProvider", "BitNet"),
    "openai": ProviderSpec(
        "geri.providers.openai:OpenAIProvider",
        "OpenAI",
        needs_key=True,
        takes_key=True,
        key_env=("OPENAI_API_KEY",),
        base_url="https://api.openai.com/v1",
    ),
    "geri_peer": ProviderSpec("geri.providers.peer:PeerProvider", "geri daemon on the LAN"),
    "openai_compatible": ProviderSpec(
        "geri.providers.openai:OpenAIProvider", "OpenAI-compatible server", takes_key=True
    ),
    "anthropic": ProviderSpec(
        "geri.providers.anthropic:AnthropicProvider",
        "Anthropic",
        needs_key=True,
        takes_key=True,
        key_env=("ANTHROPIC_API_KEY",),
        base_url="https://api.anthropic.com",
        images=ImageRules(max_side=1568, max_bytes=5 * 1024 * 1024),
    ),
    "google": ProviderSpec(
        "geri.providers.google:GoogleProvider",
        "Google Gemini",
        needs_key=True,
        takes_key=True,
        key_env=("GOOGLE_API_KEY", "GEMINI_API_KEY"),
        base_url="https://generativelanguage.googleapis.com",
        images=ImageRules(formats=("PNG", "JPEG", "WEBP"), max_side=3072),
    ),
}


def key_env_names() -> dict[str, tuple[str, ...]]:
    """Providers that use a key, with their usual environment variables."""
    return {name: spec.key_env for name, spec in PROVIDERS.items() if spec.takes_key}


class ProviderFactory(Protocol):
    def __call__(self, info: ModelInfo, context: ProviderContext) -> Provider: ...


def provider_spec(name: str) -> ProviderSpec:
    try:
        return PROVIDERS[name]
    except KeyError:
        known = ", ".join(sorted(PROVIDERS))
        raise ModelError(f"Unknown provider {name!r}; known providers: {known}.") from None


def provider_factory(name: str) -> ProviderFactory:
    """The class registered as `name`, imported now."""
    module, _, attr = provider_spec(name).target.partition(":")
    factory: ProviderFactory = getattr(importlib.import_module(module), attr)
    return factory


__all__ = [
    "PROVIDERS",
    "Provider",
    "ProviderContext",
    "ProviderFactory",
    "ProviderSpec",
    "key_env_names",
    "provider_factory",
    "provider_spec",
]
