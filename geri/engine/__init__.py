"""The engine and the one way to build it from a user's environment."""

from __future__ import annotations

import os
from pathlib import Path

from geri.engine.core import Engine
from geri.paths import Paths
from geri.providers import ProviderFactory
from geri.registry import ModelRegistry
from geri.settings import Settings, load_settings
from geri.store import open_store


def open_engine(paths: Paths | None = None, settings: Settings | None = None) -> Engine:
    """An engine on the user's settings file and store (or those under `paths`)."""
    paths = paths or Paths.from_env()
    settings = settings or load_settings(paths.settings_file)
    return Engine(settings, open_store(store_location(paths, settings)))


def store_location(paths: Paths, settings: Settings) -> str | Path:
    """Where the store is: GERI_STORE, else the settings' `store`, else geri.db in the data
    directory."""
    return os.environ.get("GERI_STORE") or settings.store or paths.database


__all__ = ["Engine", "ModelRegistry", "ProviderFactory", "open_engine", "store_location"]
