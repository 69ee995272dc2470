"""The settings file: its schema (`geri.settings.schema`), loading and validation, and how
collaborators read the settings in effect (`live`).

Settings live in one JSON file (`geri config path` shows where). A missing file means the
defaults; a present one must match the schema exactly. A validation error names the file, the
field and what is allowed there.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from geri.errors import ConfigError, InputError
from geri.inputs import read_file
from geri.settings.schema import (
    BitNet,
    Budgets,
    Cache,
    CloudModel,
    Daemon,
    Fallback,
    Keys,
    LevelName,
    LocalModel,
    Logging,
    ModelEntry,
    ModelId,
    Network,
    Notifications,
    Peer,
    Performance,
    Price,
    PromptSettings,
    ProviderOptions,
    Routing,
    Settings,
    Vision,
    Weights,
)

T = TypeVar("T")
SETTINGS_LIMIT = 1 << 20  # a settings file is a few KiB; a larger one is not a settings file


def load_settings(path: Path) -> Settings:
    """Read and validate the settings file; a missing file gives the defaults."""
    if not os.path.lexists(path):
        return Settings()
    try:
        raw = read_file(path, SETTINGS_LIMIT, "Settings file")
    except InputError as exc:
        raise ConfigError(str(exc)) from None
    try:
        data = json.loads(raw)
    except UnicodeDecodeError as exc:
        raise ConfigError(f"Settings file {path} is not UTF-8 text.") from exc
    except RecursionError:
        raise ConfigError(f"Settings file {path} is nested too deeply to be settings.") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"Settings file {path} is not valid JSON: {exc.msg} at line {exc.lineno}, "
            f"column {exc.colno}."
        ) from exc
    return parse_settings(data, source=str(path))


def parse_settings(data: Any, source: str = "settings") -> Settings:
    """Validate already-decoded settings; errors name `source`, the field and what is allowed."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the top level must be a JSON object.")
    try:
        settings = Settings.model_validate(data)
    except ValidationError as exc:
        lines = [_describe(err) for err in exc.errors()]
        raise ConfigError(f"Invalid settings in {source}:\n" + "\n".join(lines)) from exc
    ids = [m.id for m in settings.models]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise ConfigError(f"Invalid settings in {source}: duplicate model id {duplicates[0]!r}.")
    return settings


def _describe(err: Any) -> str:
    where = ".".join(str(p) for p in err["loc"]) or "(top level)"
    if err["type"] == "extra_forbidden":
        return f"  {where}: unknown field; {_allowed_fields(err['loc'])}"
    return f"  {where}: {err['msg']}"


def _allowed_fields(loc: tuple[Any, ...]) -> str:
    """The fields of the section `loc` points into (list indexes and union tags included)."""
    tagged: dict[str, type[BaseModel]] = {"local": LocalModel, "cloud": CloudModel}
    model: type[BaseModel] = Settings
    for part in loc[:-1]:
        field = model.model_fields.get(str(part))
        annotation = field.annotation if field else None
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            model = annotation
        elif isinstance(part, str) and part in tagged:
            model = tagged[part]
    return "allowed: " + ", ".join(model.model_fields)


def live(value: T | Callable[[], T]) -> Callable[[], T]:
    """How a collaborator reads its settings: through a reader, called each time it acts.

    The engine hands each collaborator a reader of its own current settings (or section), so a
    reload is one assignment in the engine and nothing keeps a stale copy. A plain value (tests,
    scripts) reads as itself.

    >>> fixed = live(Budgets(timezone="UTC"))
    >>> fixed().timezone
    'UTC'
    """
    if callable(value):
        return value
    return lambda: value


__all__ = [
    "BitNet",
    "Budgets",
    "Cache",
    "CloudModel",
    "Daemon",
    "Fallback",
    "Keys",
    "LevelName",
    "LocalModel",
    "Logging",
    "ModelEntry",
    "ModelId",
    "Network",
    "Notifications",
    "Peer",
    "Performance",
    "Price",
    "PromptSettings",
    "ProviderOptions",
    "Routing",
    "Settings",
    "Vision",
    "Weights",
    "live",
    "load_settings",
    "parse_settings",
]
