"""What each provider is, as data: its implementation (named, imported on first use), label,
key needs and environment variables, default endpoint and the images it accepts.

The engine, the key store, the ledger, routing and vision all read this table; nothing
branches on a provider's name. It sits low in the layers, with the settings, because it is data
every layer reads; the implementations live in `geri.providers`, which adds the factory. A new
provider is one module there and one entry here.
"""

from __future__ import annotations

from dataclasses import dataclass

from geri.errors import ModelError


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


def provider_spec(name: str) -> ProviderSpec:
    try:
        return PROVIDERS[name]
    except KeyError:
        known = ", ".join(sorted(PROVIDERS))
        raise ModelError(f"Unknown provider {name!r}; known providers: {known}.") from None
