"""The response cache: an identical request to an unchanged model is answered from the store.

The key is a SHA-256 over everything that shapes an answer: the model's full description (for a
local file also its size and modification time, so a replaced file misses), the provider's
settings, the sampling parameters, every message as built from the request, and the RAG
documents with the settings that fit them into the prompt. A model that is updated, or a
provider whose settings change, therefore simply stops matching its old entries; removing a
model also deletes them. Only complete answers are stored (never errors, cancellations or broken
streams), for `cache.ttl` seconds.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

from geri.cost.periods import epoch_micros
from geri.settings import Settings, live
from geri.store.base import AnswerCache, CacheStats
from geri.types import ChatRequest, ContextReport, Document, FinishReason, ModelInfo, Usage


@dataclass(frozen=True, slots=True)
class Cached:
    """An answer as the cache keeps it."""

    text: str
    usage: Usage
    finish_reason: FinishReason
    context: ContextReport | None
    model: str

    def dumps(self) -> str:
        return json.dumps(
            {
                "text": self.text,
                "usage": [self.usage.input_tokens, self.usage.output_tokens],
                "finish_reason": self.finish_reason,
                "context": self.context.as_dict() if self.context else None,
                "model": self.model,
            }
        )

    @classmethod
    def loads(cls, text: str) -> Cached:
        data = json.loads(text)
        context = data["context"]
        return cls(
            data["text"],
            Usage(*data["usage"]),
            data["finish_reason"],
            ContextReport.from_dict(context) if context else None,
            data["model"],
        )


class ResponseCache:
    """Lookups and stores on the store's cache table (synchronous: call from a worker thread)."""

    def __init__(
        self,
        store: AnswerCache,
        settings: Settings | Callable[[], Settings],
        now: Callable[[], datetime],
    ) -> None:
        self.store = store
        self._settings = live(settings)
        self._now = now

    @property
    def settings(self) -> Settings:
        return self._settings()

    @property
    def enabled(self) -> bool:
        return self.settings.cache.enabled

    def key(self, info: ModelInfo, chat: ChatRequest, documents: tuple[Document, ...]) -> str:
        """The key of `chat` with its RAG `documents` sent to `info`, as things stand now.

        The documents and the prompt settings are part of it because the prompt is fitted
        from them (after the lookup, so a hit never loads a tokenizer).
        """
        options = self.settings.providers.get(info.provider)
        material = {
            "documents": [asdict(d) for d in documents],
            "prompt": self.settings.prompt.model_dump(mode="json") if documents else None,
            "model": asdict(info),
            "file": _file_identity(info),
            "provider": options.model_dump(mode="json") if options else None,
            "messages": [
                [m.role, m.content, [hashlib.sha256(i.data).hexdigest() for i in m.images]]
                for m in chat.messages
            ],
            "parameters": [chat.max_tokens, chat.temperature, chat.top_p, chat.seed, chat.stop],
            "schema": chat.json_schema,
        }
        encoded = json.dumps(material, sort_keys=True, default=str).encode()
        return hashlib.sha256(encoded).hexdigest()

    def get(self, key: str) -> Cached | None:
        value = self.store.cache_get(key, epoch_micros(self._now()))
        return Cached.loads(value) if value is not None else None

    def put(self, key: str, answer: Cached) -> None:
        now = self._now()
        expires = now + timedelta(seconds=self.settings.cache.ttl)
        self.store.cache_put(
            key,
            answer.model,
            answer.dumps(),
            epoch_micros(now),
            epoch_micros(expires),
            self.settings.cache.max_entries,
        )

    def clear(self, model_id: str | None = None) -> int:
        return self.store.cache_clear(model_id)

    def stats(self) -> CacheStats:
        return self.store.cache_stats(epoch_micros(self._now()))


def _file_identity(info: ModelInfo) -> list[int] | None:
    if info.location != "local":
        return None
    try:
        st = os.stat(info.source)
    except OSError:
        return None
    return [st.st_size, st.st_mtime_ns]
