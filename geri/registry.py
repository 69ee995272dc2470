"""The model registry: every model geri can use, from the settings file and the store.

Models come from three places, in order of precedence on an id clash: entries in the settings
file, models registered in the store (`geri models add`, `geri install`), and the built-in cloud
models (`geri/providers/cloud_models.json`). The registry resolves a requested id, or the
default when none is given, into a `ModelInfo` with the effective context window and price (the
shipped price table, overridden per model by the settings' `prices`). Unknown ids fail with the
nearest known ones as suggestions.
"""

from __future__ import annotations

import difflib
import functools
import json
import re
from collections.abc import Callable
from dataclasses import replace
from importlib import resources
from pathlib import Path

from geri.cost import dollars_to_micros
from geri.errors import InputError, ModelNotFound
from geri.providers import trial
from geri.providers.gguf import read_gguf
from geri.settings import CloudModel, LocalModel, Settings, live
from geri.store import Store
from geri.types import ModelInfo

DEFAULT_KEY = "default_model"
NO_MODEL_HINT = (
    "run 'geri install' to download one, or 'geri models add PATH.gguf' to register a file"
)


class ModelRegistry:
    """Models from `settings` and `store`; reads the store on every call, so it stays current."""

    def __init__(self, settings: Settings | Callable[[], Settings], store: Store) -> None:
        self._settings = live(settings)
        self.store = store

    @property
    def settings(self) -> Settings:
        return self._settings()

    def models(self) -> list[ModelInfo]:
        models = [self._from_settings(m) for m in self.settings.models]
        models += [self._effective(m) for m in self.store.list_models()]
        models += [self._from_settings(m) for m in builtin_cloud_models()]
        unique: dict[str, ModelInfo] = {}
        for model in models:
            unique.setdefault(model.id, model)
        return [self._priced(m) for m in unique.values()]

    def registered(self) -> list[ModelInfo]:
        """The models registered in the store (`geri models add`, `geri install`)."""
        return [self._effective(m) for m in self.store.list_models()]

    def filter(
        self,
        *,
        kind: str | None = None,
        location: str | None = None,
        provider: str | None = None,
        min_context: int | None = None,
    ) -> list[ModelInfo]:
        """The known models that match every criterion given."""
        return [
            m
            for m in self.models()
            if (kind is None or m.kind == kind)
            and (location is None or m.location == location)
            and (provider is None or m.provider == provider)
            and (min_context is None or m.context_window >= min_context)
        ]

    def default_id(self) -> str | None:
        """The model used when a request names none: settings, then the store's choice."""
        return self.settings.default_model or self.store.get_state(DEFAULT_KEY)

    def get(self, model_id: str | None = None) -> ModelInfo:
        """The model called `model_id`, or the default one, with its effective price."""
        return self._priced(self._get(model_id))

    def _get(self, model_id: str | None) -> ModelInfo:
        if model_id is None:
            model_id = self.default_id()
            if model_id is None:
                local = [m for m in self.models() if m.location == "local"]
                if not local:
                    raise ModelNotFound(f"No local model is installed: {NO_MODEL_HINT}.")
                return local[0]
        entry = self.settings.model_entry(model_id)
        if entry is not None:
            return self._from_settings(entry)
        stored = self.store.get_model(model_id)
        if stored is not None:
            return self._effective(stored)
        builtin = next((m for m in builtin_cloud_models() if m.id == model_id), None)
        if builtin is not None:
            return self._from_settings(builtin)
        known = [m.id for m in self.models()]
        close = difflib.get_close_matches(model_id, known, n=3, cutoff=0.5)
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        listing = "see 'geri models list'" if known else NO_MODEL_HINT
        raise ModelNotFound(
            f"Unknown model {model_id!r}.{hint} For the models there are, {listing}."
        )

    def add_local(
        self,
        path: Path,
        model_id: str | None = None,
        *,
        provider: str = "llama.cpp",
        metadata: dict[str, str] | None = None,
    ) -> tuple[ModelInfo, bool]:
        """Check and register a GGUF file; returns the model and whether it was new.

        The first model registered becomes the default.
        """
        path = path.expanduser().resolve()
        header = read_gguf(path)
        if provider == "llama.cpp":  # a file llama.cpp would refuse, or abort on, is not added
            trial.verify(path)
        model_id = model_id or _id_from_path(path)
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._:/@+-]{0,127}", model_id):
            raise InputError(
                f"Invalid model id {model_id!r}: use letters, digits and . _ : / @ + - "
                "(starting with a letter or digit)."
            )
        existing = self.store.get_model(model_id)
        if existing is not None:
            if Path(existing.source) == path:
                return existing, False
            raise InputError(
                f"A model called {model_id!r} is already registered for {existing.source}. "
                "Choose another id with --id, or remove the old one with "
                f"'geri models remove {model_id}'."
            )
        info = ModelInfo(
            id=model_id,
            provider=provider,
            source=str(path),
            name=header.name,
            context_window=header.context_length or self.settings.performance.context_size,
            parameters=header.parameters,
            quantization=header.quantization,
            size_bytes=header.size_bytes,
            metadata={"architecture": header.architecture, **(metadata or {})},
        )
        added = self.store.add_model(info)
        if added and self.store.get_state(DEFAULT_KEY) is None:
            self.store.set_state(DEFAULT_KEY, model_id)
        return info, added

    def remove(self, model_id: str) -> bool:
        """Unregister a stored model and drop its cached answers; the default moves to the
        oldest remaining one."""
        if self.settings.model_entry(model_id) is not None:
            raise InputError(
                f"Model {model_id!r} is defined in the settings file; remove it there "
                "('geri config path' shows where)."
            )
        removed = self.store.remove_model(model_id)
        if removed:
            self.store.cache_clear(model_id)
        if removed and self.store.get_state(DEFAULT_KEY) == model_id:
            remaining = self.store.list_models()
            self.store.set_state(DEFAULT_KEY, remaining[0].id if remaining else None)
        return removed

    def _priced(self, info: ModelInfo) -> ModelInfo:
        """`info` with the settings' price override for it, if there is one."""
        price = self.settings.prices.get(info.id)
        if price is None:
            return info
        return replace(
            info,
            input_price=dollars_to_micros(price.input),
            output_price=dollars_to_micros(price.output),
        )

    def _effective(self, info: ModelInfo) -> ModelInfo:
        if info.location != "local":
            return info
        window = min(info.context_window, self.settings.performance.context_size)
        return replace(info, context_window=window)

    def _from_settings(self, entry: LocalModel | CloudModel) -> ModelInfo:
        if isinstance(entry, LocalModel):
            metadata = {"chat_template": entry.chat_template} if entry.chat_template else {}
            if entry.mmproj is not None:
                metadata["mmproj"] = str(entry.mmproj.expanduser())
                metadata["vision_handler"] = entry.vision_handler
            return ModelInfo(
                id=entry.id,
                provider=entry.provider,
                source=str(entry.path.expanduser()),
                name=entry.path.stem,
                kind="vision" if entry.mmproj is not None else "text",
                context_window=entry.context_window or self.settings.performance.context_size,
                metadata=metadata,
            )
        return ModelInfo(
            id=entry.id,
            provider=entry.provider,
            source=entry.model,
            name=entry.model,
            kind="vision" if entry.vision else "text",
            location="cloud",
            context_window=entry.context_window,
            input_price=dollars_to_micros(entry.input_price),
            output_price=dollars_to_micros(entry.output_price),
            metadata={
                key: value
                for key, value in (("base_url", entry.base_url), ("tokenizer", entry.tokenizer))
                if value
            },
        )


@functools.cache
def builtin_cloud_models() -> tuple[CloudModel, ...]:
    """The cloud models geri knows out of the box, from the shipped data file."""
    raw = resources.files("geri.providers").joinpath("cloud_models.json").read_text("utf-8")
    return tuple(CloudModel(kind="cloud", **entry) for entry in json.loads(raw)["models"])


def _id_from_path(path: Path) -> str:
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", path.stem).strip("-.").lower()
    return stem or "model"
