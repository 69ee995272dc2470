"""The providers: one module per provider behind the `Provider` protocol, and the factory.

Which class implements a provider is data in `geri.specs`, named as a string and imported on
first use here, so listing providers (or running `geri --help`) imports neither llama.cpp nor
an HTTP client.
"""

from __future__ import annotations

import importlib
from typing import Protocol

from geri.providers.base import Provider, ProviderContext
from geri.specs import provider_spec
from geri.types import ModelInfo


class ProviderFactory(Protocol):
    def __call__(self, info: ModelInfo, context: ProviderContext) -> Provider: ...


def provider_factory(name: str) -> ProviderFactory:
    """The class registered as `name`, imported now."""
    module, _, attr = provider_spec(name).target.partition(":")
    factory: ProviderFactory = getattr(importlib.import_module(module), attr)
    return factory


__all__ = ["Provider", "ProviderContext", "ProviderFactory", "provider_factory"]
