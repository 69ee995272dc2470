"""The provider registry: provider name -> the class that implements it.

Entries name their module as a string and are imported on first use, so listing the registry
(or running `geri --help`) never imports llama.cpp or an HTTP client. Adding a provider is one
module and one line here.
"""

from __future__ import annotations

import importlib
from typing import Protocol

from geri.errors import ModelError
from geri.providers.base import Provider, ProviderContext
from geri.types import ModelInfo

PROVIDERS: dict[str, str] = {
    "llama.cpp": "geri.providers.llamacpp:LlamaCppProvider",
}


class ProviderFactory(Protocol):
    def __call__(self, info: ModelInfo, context: ProviderContext) -> Provider: ...


def provider_factory(name: str) -> ProviderFactory:
    """The class registered as `name`, imported now."""
    try:
        target = PROVIDERS[name]
    except KeyError:
        known = ", ".join(sorted(PROVIDERS))
        raise ModelError(f"Unknown provider {name!r}; known providers: {known}.") from None
    module, _, attr = target.partition(":")
    factory: ProviderFactory = getattr(importlib.import_module(module), attr)
    return factory


__all__ = ["PROVIDERS", "Provider", "ProviderContext", "ProviderFactory", "provider_factory"]
