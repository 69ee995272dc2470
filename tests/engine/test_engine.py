"""Engine behaviour with scripted providers: results, streams, the request log, failures."""

from __future__ import annotations

import asyncio
import json
from collections import deque
from contextlib import aclosing
from pathlib import Path

import pytest

from geri.engine import Engine
from geri.errors import InputError, ModelNotFound, Unavailable
from geri.settings import LocalModel, Performance, Settings
from geri.store import open_store
from geri.types import ModelInfo, Request
from tests.fakes import FakeClock, FakeProvider, Script


class Harness:
    def __init__(self, tmp_path: Path, settings: Settings | None = None) -> None:
        self.settings = settings or Settings(
            models=(LocalModel(id="fake", path=tmp_path / "fake.gguf"),),
            default_model="fake",
        )
        self.store = open_store(tmp_path / "geri.db")
        self.clock = FakeClock(step=0.01)
        self.built: list[FakeProvider] = []
        self.engine = Engine(self.settings, self.store, providers=self._build, clock=self.clock)
        self.scripts: deque[Script] = deque()

    def _build(self, info: ModelInfo) -> FakeProvider:
        provider = FakeProvider(info, self.scripts)
        self.built.append(provider)
        return provider

    def enqueue(
        self, *chunks: str, error: BaseException | None = None, fail_after: int = 0
    ) -> None:
        self.scripts.append(Script(list(chunks), error, fail_after))


@pytest.fixture
def h(tmp_path: Path) -> Harness:
    return Harness(tmp_path)


async def test_ask_returns_the_answer_and_logs_it(h: Harness) -> None:
    h.enqueue("Paris", " is the capital.")
    result = await h.engine.ask(Request("Capital of France?", system="Be brief."))

    assert result.text == "Paris is the capital."
    assert result.model == "fake"
    assert result.usage.output_tokens == 2
    assert result.latency_ms > 0
    [record] = h.store.recent_requests()
    assert record.id == result.id
    assert record.status == "ok"
    assert record.error is None
    assert record.response == "Paris is the capital."
    assert json.loads(record.prompt) == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Capital of France?"},
    ]
    assert not record.streamed


async def test_stream_yields_chunks_then_a_final_result(h: Harness) -> None:
    h.enqueue("one", " two", " three")
    chunks = [c async for c in h.engine.stream(Request("count"))]

    assert [c.text for c in chunks[:-1]] == ["one", " two", " three"]
    final = chunks[-1]
    assert final.done
    assert final.result is not None
    assert final.result.text == "one two three"
    assert final.result.ttft_ms is not None
    assert final.result.ttft_ms > 0
    assert final.result.ttft_ms < final.result.latency_ms
    [record] = h.store.recent_requests()
    assert record.streamed
    assert record.response == "one two three"
    assert record.ttft_ms == final.result.ttft_ms


async def test_provider_error_is_raised_and_logged(h: Harness) -> None:
    h.enqueue(error=Unavailable("backend down"))
    with pytest.raises(Unavailable):
        await h.engine.ask(Request("hi"))
    [record] = h.store.recent_requests()
    assert record.status == "error"
    assert record.error == "backend down"


async def test_error_mid_stream_keeps_the_partial_answer_in_the_log(h: Harness) -> None:
    h.enqueue("par", "tial", " never", error=Unavailable("dropped"), fail_after=2)
    seen = []
    with pytest.raises(Unavailable):
        async for chunk in h.engine.stream(Request("hi")):
            seen.append(chunk.text)
    assert seen == ["par", "tial"]
    [record] = h.store.recent_requests()
    assert (record.status, record.response, record.error) == ("error", "partial", "dropped")


async def test_a_stream_abandoned_half_way_is_logged_as_cancelled(h: Harness) -> None:
    h.enqueue("a", "b", "c", "d")
    stream = h.engine.stream(Request("hi"))
    assert (await anext(stream)).text == "a"
    await stream.aclose()
    [record] = h.store.recent_requests()
    assert record.status == "cancelled"
    assert record.response == "a"


async def test_a_cancelled_task_still_leaves_its_record(h: Harness) -> None:
    h.enqueue("a", "b")
    started = asyncio.Event()

    async def consume() -> None:
        async with aclosing(h.engine.stream(Request("hi"))) as chunks:
            async for _ in chunks:
                started.set()
                await asyncio.sleep(10)

    task = asyncio.create_task(consume())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    [record] = h.store.recent_requests()
    assert record.status == "cancelled"


async def test_the_provider_is_built_once_and_reused(h: Harness) -> None:
    h.enqueue("1")
    await h.engine.ask(Request("a"))
    h.enqueue("2")
    await h.engine.ask(Request("b"))
    assert len(h.built) == 1
    await h.engine.aclose()
    assert h.built[0].closed == 1


async def test_keep_loaded_off_releases_the_model_after_each_request(tmp_path: Path) -> None:
    settings = Settings(
        models=(LocalModel(id="fake", path=tmp_path / "f.gguf"),),
        performance=Performance(keep_loaded=False),
    )
    h = Harness(tmp_path, settings)
    h.enqueue("1")
    await h.engine.ask(Request("a"))
    assert h.built[0].closed == 1
    h.enqueue("2")
    await h.engine.ask(Request("b"))
    assert len(h.built) == 2


async def test_request_parameters_reach_the_provider(h: Harness) -> None:
    h.enqueue("x")
    await h.engine.ask(Request("q", max_tokens=7, temperature=0.0, seed=3, stop=("END",)))
    [sent] = h.built[0].requests
    assert (sent.max_tokens, sent.temperature, sent.seed, sent.stop) == (7, 0.0, 3, ("END",))


@pytest.mark.parametrize(
    ("request_", "message"),
    [
        (Request("   "), "prompt is empty"),
        (Request("q", max_tokens=0), "--max-tokens"),
        (Request("q", temperature=3.0), "--temperature"),
    ],
)
async def test_bad_requests_fail_before_any_model_is_touched(
    h: Harness, request_: Request, message: str
) -> None:
    with pytest.raises(InputError, match=message):
        await h.engine.ask(request_)
    assert h.built == []
    assert h.store.recent_requests() == []


async def test_unknown_model_suggests_the_nearest(h: Harness) -> None:
    with pytest.raises(ModelNotFound, match="Did you mean 'fake'"):
        await h.engine.ask(Request("q", model="fakr"))


async def test_no_model_at_all_says_how_to_get_one(tmp_path: Path) -> None:
    h = Harness(tmp_path, Settings())
    with pytest.raises(ModelNotFound, match="geri install"):
        await h.engine.ask(Request("q"))
