"""The response cache through the engine: hits, misses, replayed streams, what is never kept,
and invalidation when a model or its provider's settings change."""

from __future__ import annotations

import os
from collections import deque
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from geri.engine import Engine
from geri.errors import Unavailable
from geri.providers import ProviderContext
from geri.settings import LocalModel, ProviderOptions, Settings
from geri.store import open_store
from geri.types import Document, ModelInfo, Request
from tests.fakes import FakeClock, FakeProvider, Script


class Rig:
    def __init__(self, tmp_path: Path, settings: Settings | None = None) -> None:
        self.model_file = tmp_path / "fake.gguf"
        self.model_file.write_bytes(b"weights v1")
        self.store = open_store(tmp_path / "g.db")
        self.at = datetime(2026, 11, 25, 12, tzinfo=UTC)
        self.scripts: deque[Script] = deque()
        self.calls = 0
        self.engine = self.build(
            settings
            or Settings(models=(LocalModel(id="fake", path=self.model_file),), default_model="fake")
        )

    def build(self, settings: Settings) -> Engine:
        return Engine(
            settings,
            self.store,
            providers=self._build,
            clock=FakeClock(step=0.001),
            now=lambda: self.at,
        )

    def _build(self, info: ModelInfo, context: ProviderContext) -> FakeProvider:
        rig = self

        class Counting(FakeProvider):
            def _next(self, request):  # type: ignore[no-untyped-def]
                rig.calls += 1
                return super()._next(request)

        return Counting(info, self.scripts)

    def enqueue(
        self, *chunks: str, error: BaseException | None = None, fail_after: int = 0
    ) -> None:
        self.scripts.append(Script(list(chunks), error, fail_after))


@pytest.fixture
def rig(tmp_path: Path) -> Rig:
    return Rig(tmp_path)


async def test_an_identical_request_is_answered_from_the_cache(rig: Rig) -> None:
    rig.enqueue("Paris", " it is.")
    first = await rig.engine.ask(Request("Capital of France?", temperature=0))
    second = await rig.engine.ask(Request("Capital of France?", temperature=0))
    assert rig.calls == 1
    assert (second.text, second.usage, second.model) == (first.text, first.usage, "fake")
    assert (first.cached, second.cached) == (False, True)
    assert second.cost_micros == 0
    assert second.id != first.id
    cached, original = rig.store.recent_requests()
    assert (cached.cached, original.cached) == (True, False)
    stats = rig.engine.cache.stats()
    assert (stats.entries, stats.hits, stats.requests) == (1, 1, 2)


@pytest.mark.parametrize(
    "changed",
    [
        Request("Capital of France?", temperature=0.5),
        Request("Capital of France?", system="Be terse."),
        Request("Capital of France?", max_tokens=7),
        Request("Capital of France?", seed=3),
        Request("Capital of Spain?"),
        Request("Capital of France?", documents=(Document("d", "France is in Europe."),)),
    ],
    ids=["temperature", "system", "max-tokens", "seed", "prompt", "rag-context"],
)
async def test_anything_that_shapes_the_answer_misses(rig: Rig, changed: Request) -> None:
    rig.enqueue("one")
    rig.enqueue("two")
    await rig.engine.ask(Request("Capital of France?"))
    assert (await rig.engine.ask(changed)).cached is False
    assert rig.calls == 2


async def test_a_cached_streamed_answer_replays_as_a_stream(rig: Rig) -> None:
    rig.enqueue("The", " capital", " is", " Paris.")
    first = [c async for c in rig.engine.stream(Request("Capital?"))]
    again = [c async for c in rig.engine.stream(Request("Capital?"))]
    assert rig.calls == 1
    texts = [c.text for c in again if c.text]
    assert len(texts) > 1
    assert "".join(texts) == "".join(c.text for c in first) == "The capital is Paris."
    final = again[-1].result
    assert final is not None
    assert final.cached
    # a non-streamed ask finds the same answer
    assert (await rig.engine.ask(Request("Capital?"))).text == "The capital is Paris."


async def test_errors_and_broken_streams_are_never_cached(rig: Rig) -> None:
    rig.enqueue(error=Unavailable("down"))
    rig.enqueue("ok")
    assert (await rig.engine.ask(Request("q"))).text == "ok"  # retried, then cached
    rig.enqueue("par", "tial", error=Unavailable("cut"), fail_after=1)
    with pytest.raises(Exception, match="broke off"):
        _ = [c async for c in rig.engine.stream(Request("other"))]
    rig.enqueue("a", "b", "c")
    stream = rig.engine.stream(Request("third"))
    await anext(stream)
    await stream.aclose()  # abandoned half-way
    assert rig.engine.cache.stats().entries == 1
    rig.enqueue("whole")
    assert (await rig.engine.ask(Request("other"))).cached is False


async def test_no_cache_neither_reads_nor_writes(rig: Rig) -> None:
    rig.enqueue("one")
    rig.enqueue("two")
    rig.enqueue("three")
    await rig.engine.ask(Request("q", use_cache=False))
    assert rig.engine.cache.stats().entries == 0
    await rig.engine.ask(Request("q"))
    assert (await rig.engine.ask(Request("q", use_cache=False))).text == "three"


async def test_entries_expire_after_the_ttl(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    rig.engine = rig.build(
        Settings(
            models=(LocalModel(id="fake", path=rig.model_file),),
            default_model="fake",
            cache={"ttl": 60},  # type: ignore[arg-type]
        )
    )
    rig.enqueue("old")
    rig.enqueue("new")
    await rig.engine.ask(Request("q"))
    rig.at += timedelta(seconds=59)
    assert (await rig.engine.ask(Request("q"))).text == "old"
    rig.at += timedelta(seconds=2)
    assert (await rig.engine.ask(Request("q"))).text == "new"


async def test_a_replaced_model_file_misses(rig: Rig) -> None:
    rig.enqueue("from v1")
    rig.enqueue("from v2")
    await rig.engine.ask(Request("q"))
    rig.model_file.write_bytes(b"weights v2, a new download")
    os.utime(rig.model_file, ns=(0, 10**18))
    assert (await rig.engine.ask(Request("q"))).text == "from v2"


async def test_a_changed_model_entry_or_provider_setting_misses(rig: Rig) -> None:
    for text in ("a", "b", "c"):
        rig.enqueue(text)
    await rig.engine.ask(Request("q"))
    template = LocalModel(id="fake", path=rig.model_file, chat_template="{{ messages }}")
    rig.engine.reload(Settings(models=(template,), default_model="fake"))
    assert (await rig.engine.ask(Request("q"))).text == "b"
    rig.engine.reload(
        Settings(
            models=(template,),
            default_model="fake",
            providers={"llama.cpp": ProviderOptions(requests_per_minute=1000)},
        )
    )
    assert (await rig.engine.ask(Request("q"))).text == "c"


async def test_removing_a_model_drops_its_answers(
    rig: Rig, tmp_path: Path, smollm_path: Path
) -> None:
    rig.engine.registry.add_local(smollm_path, "smol")
    rig.enqueue("kept")
    rig.enqueue("dropped")
    await rig.engine.ask(Request("q"))
    await rig.engine.ask(Request("q", model="smol"))
    assert rig.engine.cache.stats().entries == 2
    assert rig.engine.registry.remove("smol")
    assert rig.engine.cache.stats().entries == 1
    assert rig.engine.cache.clear() == 1


async def test_the_cache_can_be_switched_off(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    rig.engine = rig.build(
        Settings(
            models=(LocalModel(id="fake", path=rig.model_file),),
            default_model="fake",
            cache={"enabled": False},  # type: ignore[arg-type]
        )
    )
    rig.enqueue("one")
    rig.enqueue("two")
    await rig.engine.ask(Request("q"))
    assert (await rig.engine.ask(Request("q"))).text == "two"
