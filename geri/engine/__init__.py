"""The engine and the one way to build it from a user's environment."""

from __future__ import annotations

import os

from geri.engine.core import Engine, ProviderBuilder
from geri.engine.registry import ModelRegistry
from geri.paths import Paths
from geri.settings import Settings, load_settings
from geri.store import open_store


def open_engine(paths: Paths | None = None, settings: Settings | None = None) -> Engine:
    """An engine on the user's settings file and store (or those under `paths`)."""
    paths = paths or Paths.from_env()
    settings = settings or load_settings(paths.settings_file)
    location = os.environ.get("GERI_STORE") or settings.store or paths.database
    return Engine(settings, open_store(location))


__all__ = ["Engine", "ModelRegistry", "ProviderBuilder", "open_engine"]
