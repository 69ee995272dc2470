"""The providers an engine has built, and how many local models stay loaded.

A provider is built on a model's first use and kept, so a local model stays loaded between
requests. Left at that, a daemon asked by name for one local model after another would keep
every one of them in memory (weights and a context each) until the machine ran out. So at most
`performance.max_loaded_models` local models are kept: building another unloads the least
recently used one that no call is using, and so does a call's end while more are loaded than
that (a burst may load more for a while, as a model in use is never unloaded under its call).
With `performance.keep_loaded` off, a local model is unloaded as soon as no call uses it.

A model whose entry changed (a settings reload) gets a new provider, and the old one is
closed once no call uses that model. A call's end closes what it leaves over the cap before the
call is done; building a model closes the ones it displaces in tasks of their own (unloading
takes a thread), which `settled` and `aclose` wait for.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable
from types import TracebackType

from geri.providers import Provider
from geri.types import ModelInfo

log = logging.getLogger("geri.engine")


class Loaded:
    def __init__(
        self,
        build: Callable[[ModelInfo], Provider],
        *,
        cap: Callable[[], int],
        keep: Callable[[], bool],
        clock: Callable[[], float],
    ) -> None:
        self._build = build
        self._cap = cap
        self._keep = keep
        self._clock = clock
        self._providers: dict[str, Provider] = {}
        self._local: set[str] = set()  # of those, the local models
        self._in_use: Counter[str] = Counter()
        self._used_at: dict[str, float] = {}
        # replaced while their model was in use: closed once no call uses it
        self._retired: dict[str, list[Provider]] = {}
        self._closing: set[asyncio.Task[None]] = set()

    def get(self, info: ModelInfo) -> tuple[Provider, bool]:
        """`info`'s provider, and whether it was built just now."""
        provider = self._providers.get(info.id)
        if provider is not None and provider.info() == info:
            return provider, False
        if provider is not None:  # its entry changed: the old provider goes
            if self._in_use[info.id]:
                self._retired.setdefault(info.id, []).append(provider)
            else:
                self._close(provider)
        provider = self._providers[info.id] = self._build(info)
        self._used_at[info.id] = self._clock()
        if info.location == "local":
            self._local.add(info.id)
            for old in self._trim(spare=info.id):
                self._close(old)
        else:
            self._local.discard(info.id)
        return provider, True

    def peek(self, info: ModelInfo) -> Provider | None:
        """`info`'s provider if one is kept for it (for this entry), without building one."""
        provider = self._providers.get(info.id)
        return provider if provider is not None and provider.info() == info else None

    def using(self, model_id: str) -> _Using:
        """`async with` this while a call uses `model_id`, so it is not unloaded under it; on
        leaving, what is then over the cap is unloaded (this model too, if it is the one to
        go). On every call's path, so it costs a counter and a comparison when nothing goes."""
        return _Using(self, model_id)

    def loaded(self) -> list[str]:
        """The local models kept now, least recently used first."""
        return sorted(self._local, key=lambda m: self._used_at.get(m, 0.0))

    def _enter(self, model_id: str) -> None:
        self._in_use[model_id] += 1

    def _leave(self, model_id: str) -> list[Provider]:
        """The call on `model_id` is over; the providers to close now."""
        left = self._in_use[model_id] - 1
        self._used_at[model_id] = self._clock()
        if left:
            self._in_use[model_id] = left
            return self._trim()
        del self._in_use[model_id]
        return [*self._retired.pop(model_id, ()), *self._trim()]

    async def settled(self) -> None:
        """Wait until the providers being closed are closed."""
        while self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)

    async def aclose(self) -> None:
        """Close every provider, and wait for those already closing."""
        providers = [*self._providers.values(), *(p for r in self._retired.values() for p in r)]
        self._providers, self._retired, self._local = {}, {}, set()
        for provider in providers:
            await provider.aclose()
        await self.settled()

    def _trim(self, spare: str | None = None) -> list[Provider]:
        """Take out idle local models, least recently used first, down to the cap (to none
        with `keep_loaded` off), sparing `spare` (just built, for a call about to use it);
        the providers taken out, for the caller to close."""
        cap = self._cap() if self._keep() else 0
        excess = len(self._local) - cap
        if excess <= 0:
            return []
        out: list[Provider] = []
        for model_id in self.loaded():
            if excess <= 0:
                break
            if self._in_use[model_id] or model_id == spare:
                continue
            excess -= 1
            why = f"max_loaded_models is {cap}" if self._keep() else "keep_loaded is off"
            log.info("unloading %s (performance.%s)", model_id, why)
            self._local.discard(model_id)
            out.append(self._providers.pop(model_id))
        return out

    def _close(self, provider: Provider) -> None:
        task = asyncio.get_running_loop().create_task(provider.aclose())
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)


class _Using:
    __slots__ = ("_loaded", "_model")

    def __init__(self, loaded: Loaded, model_id: str) -> None:
        self._loaded, self._model = loaded, model_id

    async def __aenter__(self) -> None:
        self._loaded._enter(self._model)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for provider in self._loaded._leave(self._model):
            await provider.aclose()
