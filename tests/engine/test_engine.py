"""Engine behaviour with scripted providers: results, streams, the request log, failures."""

from __future__ import annotations

import asyncio
import json
from collections import deque
from collections.abc import Callable
from contextlib import aclosing
from dataclasses import replace
from pathlib import Path

import pytest

from geri.engine import Engine
from geri.errors import (
    AuthError,
    IncompleteAnswer,
    InputError,
    ModelNotFound,
    ProviderError,
    RateLimited,
    Unavailable,
)
from geri.providers import ProviderContext
from geri.settings import LocalModel, Performance, ProviderOptions, Settings
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
        self.slept: list[float] = []
        self.engine = Engine(
            self.settings,
            self.store,
            providers=self._build,
            clock=self.clock,
            sleep=self._sleep,
            jitter=lambda: 0.5,
        )
        self.scripts: deque[Script] = deque()

    async def _sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.clock.advance(seconds)

    def _build(self, info: ModelInfo, context: ProviderContext) -> FakeProvider:
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


async def test_retryable_errors_are_retried_with_backoff_until_attempts_run_out(
    h: Harness,
) -> None:
    for _ in range(4):
        h.enqueue(error=Unavailable("backend down"))
    with pytest.raises(Unavailable):
        await h.engine.ask(Request("hi"))
    # 4 attempts (the default), full jitter fixed at 0.5: 0.5 * 0.5, 0.5 * 1, 0.5 * 2
    assert h.slept == [0.25, 0.5, 1.0]
    [record] = h.store.recent_requests()
    assert record.status == "error"
    assert record.error == "backend down"


async def test_a_rate_limit_then_success_honours_retry_after(h: Harness) -> None:
    h.enqueue(error=RateLimited("slow down", retry_after=7.0))
    h.enqueue("fine")
    result = await h.engine.ask(Request("hi"))
    assert result.text == "fine"
    assert h.slept == [7.0]
    assert result.latency_ms > 7000  # the wait is part of the call


async def test_a_retry_after_beyond_the_limit_is_not_waited_for(h: Harness) -> None:
    h.enqueue(error=RateLimited("come back tomorrow", retry_after=3600.0))
    with pytest.raises(RateLimited):
        await h.engine.ask(Request("hi"))
    assert h.slept == []


async def test_non_retryable_errors_fail_at_once(h: Harness) -> None:
    h.enqueue(error=AuthError("bad key"))
    with pytest.raises(AuthError):
        await h.engine.ask(Request("hi"))
    assert h.slept == []


async def test_a_stream_is_retried_while_nothing_was_shown(h: Harness) -> None:
    h.enqueue("never shown", error=Unavailable("503"), fail_after=0)
    h.enqueue("second", " try")
    chunks = [c async for c in h.engine.stream(Request("hi"))]
    assert "".join(c.text for c in chunks) == "second try"
    assert len(h.slept) == 1


async def test_error_mid_stream_is_incomplete_and_never_retried(h: Harness) -> None:
    h.enqueue("par", "tial", " never", error=Unavailable("dropped"), fail_after=2)
    h.enqueue("would duplicate")
    seen = []
    with pytest.raises(IncompleteAnswer) as err:
        async for chunk in h.engine.stream(Request("hi")):
            seen.append(chunk.text)
    assert seen == ["par", "tial"]
    assert err.value.partial == "partial"
    assert "incomplete" in str(err.value)
    assert "dropped" in str(err.value)
    assert h.slept == []
    [record] = h.store.recent_requests()
    assert (record.status, record.response) == ("error", "partial")
    assert "incomplete" in (record.error or "")


async def test_client_side_rate_limit_spaces_out_requests(tmp_path: Path) -> None:
    settings = Settings(
        models=(LocalModel(id="fake", path=tmp_path / "f.gguf"),),
        providers={"llama.cpp": ProviderOptions(requests_per_minute=2)},
    )
    h = Harness(tmp_path, settings)
    for n in range(3):
        h.enqueue(str(n))
    for n in range(3):
        await h.engine.ask(Request(f"q{n}"))
    # two requests fit the bucket; the third waits for one to refill (60 s / 2)
    assert len(h.slept) == 1
    assert h.slept[0] == pytest.approx(30, abs=0.5)


async def test_tokens_per_minute_counts_the_prompt_and_the_output_reserve(
    tmp_path: Path,
) -> None:
    settings = Settings(
        models=(LocalModel(id="fake", path=tmp_path / "f.gguf"),),
        providers={"llama.cpp": ProviderOptions(tokens_per_minute=600)},
    )
    h = Harness(tmp_path, settings)
    h.enqueue("a")
    h.enqueue("b")
    await h.engine.ask(Request("q", max_tokens=400))
    assert h.slept == []
    await h.engine.ask(Request("p", max_tokens=400))  # 2 x ~401 > 600: wait for ~201 tokens
    assert h.slept[0] == pytest.approx(201 / 10, abs=1)


async def test_a_stream_abandoned_half_way_is_logged_as_cancelled(h: Harness) -> None:
    h.enqueue("one", " two", " three", " four")
    stream = h.engine.stream(Request("hi"))
    assert (await anext(stream)).text == "one"
    await stream.aclose()
    [record] = h.store.recent_requests()
    assert record.status == "cancelled"
    assert record.response == "one"


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


def _fill_the_disk(h: Harness) -> Callable[[], None]:
    """Make the store's SQLite file unable to grow, as on a full disk (SQLite's own
    SQLITE_FULL, through its page limit); the function returned frees the space again."""
    connection = h.store._conn  # type: ignore[attr-defined]
    pages = connection.execute("PRAGMA page_count").fetchone()[0]
    connection.execute(f"PRAGMA max_page_count = {pages}")
    return lambda: connection.execute("PRAGMA max_page_count = 4294967294")


async def test_an_answer_the_store_cannot_log_still_reaches_the_caller(h: Harness) -> None:
    """A full disk must not cost the user an answer already generated (and maybe paid for):
    it arrives with a notice saying it is not logged and why; once there is space again,
    calls are logged as before."""
    h.enqueue("warm")
    await h.engine.ask(Request("the store's tables exist"))
    free_space = _fill_the_disk(h)
    long = "word " * 5000  # more than the file's free pages hold
    h.enqueue(long)
    whole = await h.engine.ask(Request("one"))
    h.enqueue(long)
    async with aclosing(h.engine.stream(Request("two"))) as chunks:
        streamed = [chunk async for chunk in chunks]
    assert whole.text == long
    assert "".join(c.text for c in streamed) == long
    said = [c.notice for c in streamed if c.notice is not None]
    for notices in (whole.notices, tuple(said)):
        [notice] = notices
        assert notice.kind == "unlogged"
        assert "database or disk is full" in notice.message
    assert len(h.store.recent_requests()) == 1  # only the warm-up

    free_space()
    h.enqueue(long)
    logged = await h.engine.ask(Request("three"))
    assert logged.notices == ()
    assert h.store.recent_requests()[0].id == logged.id


async def test_a_failure_the_store_cannot_log_is_still_the_failure_reported(
    h: Harness,
) -> None:
    h.enqueue("warm")
    await h.engine.ask(Request("the store's tables exist"))
    _fill_the_disk(h)
    h.enqueue(error=AuthError("the key was refused " + "x" * 20000))
    with pytest.raises(AuthError, match="the key was refused"):
        await h.engine.ask(Request("one"))


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


def _local_models(tmp_path: Path, *names: str, **performance: object) -> Settings:
    return Settings(
        models=tuple(LocalModel(id=n, path=tmp_path / f"{n}.gguf") for n in names),
        default_model=names[0],
        performance=Performance(**performance),  # type: ignore[arg-type]
    )


def _built(h: Harness) -> dict[str, list[int]]:
    """Each model's providers in the order they were built, as how often each was closed."""
    built: dict[str, list[int]] = {}
    for provider in h.built:
        built.setdefault(provider.info().id, []).append(provider.closed)
    return built


async def test_at_most_max_loaded_models_local_models_stay_loaded(tmp_path: Path) -> None:
    """A daemon asked for one local model after another keeps the most recently used ones,
    up to the cap, and unloads the rest: memory stays bounded however many are registered."""
    h = Harness(tmp_path, _local_models(tmp_path, "a", "b", "c", max_loaded_models=2))
    for name in "abc":
        h.enqueue(name)
        assert (await h.engine.ask(Request("q", model=name, use_cache=False))).text == name
    await h.engine._loaded.settled()
    assert _built(h) == {"a": [1], "b": [0], "c": [0]}  # a went when c came
    h.enqueue("a again")
    await h.engine.ask(Request("q", model="a", use_cache=False))  # anew; b is now the oldest
    await h.engine._loaded.settled()
    assert _built(h) == {"a": [1, 0], "b": [1], "c": [0]}
    assert h.engine._loaded.loaded() == ["c", "a"]


async def test_health_checks_never_displace_a_loaded_model(tmp_path: Path) -> None:
    """The daemon probes every model periodically; a probe reads a local model's file and
    loads nothing, so it must not count as a model kept loaded and push the warm one out."""
    h = Harness(tmp_path, _local_models(tmp_path, "a", "b", "c", max_loaded_models=1))
    h.enqueue("warm")
    await h.engine.ask(Request("q", model="a", use_cache=False))
    checks = await h.engine.router.check_health()
    await h.engine._loaded.settled()
    assert sorted(c.model_id for c in checks if c.ok) == ["a", "b", "c"]
    assert h.engine._loaded.loaded() == ["a"]
    assert _built(h)["a"] == [0]  # still the same, loaded, provider


async def test_a_model_in_use_is_never_unloaded_under_its_call(tmp_path: Path) -> None:
    h = Harness(tmp_path, _local_models(tmp_path, "a", "b", max_loaded_models=1))
    h.enqueue("one", " two", " three")
    async with aclosing(h.engine.stream(Request("q", model="a"))) as stream:
        assert (await anext(stream)).text == "one"  # a is answering
        h.enqueue("b")
        assert (await h.engine.ask(Request("q", model="b", use_cache=False))).text == "b"
        await h.engine._loaded.settled()
        assert _built(h) == {"a": [0], "b": [1]}  # over the cap: the idle one went
        rest = "".join([c.text async for c in stream])
    assert rest == " two three"
    assert _built(h) == {"a": [0], "b": [1]}
    assert h.engine._loaded.loaded() == ["a"]


async def test_keep_loaded_off_waits_for_the_last_call_on_a_model(tmp_path: Path) -> None:
    h = Harness(tmp_path, _local_models(tmp_path, "a", keep_loaded=False))
    h.enqueue("first", " call")
    h.enqueue("second")
    async with aclosing(h.engine.stream(Request("q"))) as first:
        assert (await anext(first)).text == "first"
        assert (await h.engine.ask(Request("q", use_cache=False))).text == "second"
        assert _built(h) == {"a": [0]}  # the first call still uses it
        assert "".join([c.text async for c in first]) == " call"
    assert _built(h) == {"a": [1]}


async def test_a_model_whose_entry_changed_releases_its_old_provider(tmp_path: Path) -> None:
    h = Harness(tmp_path, _local_models(tmp_path, "a"))
    h.enqueue("old")
    await h.engine.ask(Request("q", use_cache=False))
    moved = LocalModel(id="a", path=tmp_path / "elsewhere.gguf")
    h.engine.reload(h.settings.model_copy(update={"models": (moved,)}))
    h.enqueue("new")
    assert (await h.engine.ask(Request("q", use_cache=False))).text == "new"
    await h.engine._loaded.settled()
    assert _built(h) == {"a": [1, 0]}


async def test_request_parameters_reach_the_provider(h: Harness) -> None:
    h.enqueue("x")
    await h.engine.ask(Request("q", max_tokens=7, temperature=0.0, seed=3, stop=("END",)))
    [sent] = h.built[0].requests
    assert (sent.max_tokens, sent.temperature, sent.seed, sent.stop) == (7, 0.0, 3, ("END",))


@pytest.mark.parametrize(
    ("request_", "message"),
    [
        (Request("   "), "prompt is empty"),
        (Request("q", max_tokens=0), "max_tokens must be at least 1"),
        (Request("q", temperature=3.0), "temperature must be between 0 and 2"),
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


async def test_a_reload_reaches_every_collaborator_the_key_store_included(tmp_path: Path) -> None:
    from geri.errors import KeyringUnavailable
    from geri.settings import Budgets, Keys, Network, Routing
    from tests.test_keys import PlaintextKeyring

    engine = Engine(Settings(), open_store(tmp_path / "g.db"))
    engine.keys._backend = PlaintextKeyring()  # a keyring that keeps keys unencrypted
    with pytest.raises(KeyringUnavailable, match="unencrypted"):
        engine.keys.set("openai", "sk-test-0000000000000000")
    new = Settings(
        keys=Keys(allow_plaintext_keyring=True),
        network=Network(max_attempts=7),
        routing=Routing(spread=0.2),
        budgets=Budgets(timezone="Europe/Berlin"),
    )
    engine.reload(new)
    engine.keys.set("openai", "sk-test-0000000000000000")
    assert engine.keys.get("openai") == "sk-test-0000000000000000"
    assert engine.registry.settings is new
    assert engine.router.settings is new
    assert engine.cache.settings is new
    assert engine.balancer.routing is new.routing
    assert engine.ledger.settings is new.budgets
    assert engine.caller.retry.attempts == 7
    await engine.aclose()


async def test_the_request_log_keeps_metadata_only_when_told(tmp_path: Path) -> None:
    from geri.settings import Cache, Logging

    h = Harness(
        tmp_path,
        Settings(
            models=(LocalModel(id="fake", path=tmp_path / "fake.gguf"),),
            default_model="fake",
            logging=Logging(request_text=False),
            cache=Cache(enabled=False),  # the response cache keeps answers, by design
        ),
    )
    h.enqueue("the secret answer")
    result = await h.engine.ask(Request("my private question"))
    assert result.text == "the secret answer"  # the caller still gets it
    [logged] = h.store.recent_requests()
    assert (logged.prompt, logged.response) == ("[]", "")
    assert (logged.model, logged.status, logged.output_tokens) == ("fake", "ok", 1)
    raw = (tmp_path / "geri.db").read_bytes() + (tmp_path / "geri.db-wal").read_bytes()
    assert b"private question" not in raw
    assert b"secret answer" not in raw


async def test_calls_older_than_the_retention_are_pruned(tmp_path: Path) -> None:
    from datetime import UTC, datetime, timedelta

    from geri.settings import Logging

    now = [datetime(2026, 11, 1, tzinfo=UTC)]
    settings = Settings(
        models=(LocalModel(id="fake", path=tmp_path / "fake.gguf"),),
        default_model="fake",
        logging=Logging(retention=7),
    )
    store = open_store(tmp_path / "geri.db")
    scripts: deque[Script] = deque(Script(["a"]) for _ in range(3))
    engine = Engine(
        settings, store, providers=lambda i, c: FakeProvider(i, scripts), now=lambda: now[0]
    )
    await engine.ask(Request("first"))
    now[0] += timedelta(days=3)
    await engine.ask(Request("second"))
    assert len(store.recent_requests()) == 2  # both within 7 days
    now[0] += timedelta(days=5)
    await engine.ask(Request("third"))  # 8 days after the first
    kept = [json.loads(r.prompt)[-1]["content"] for r in store.recent_requests()]
    assert kept == ["third", "second"]
    await engine.aclose()


async def test_a_known_key_in_an_answer_or_prompt_reaches_neither_caller_nor_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = "sk-canary-0123456789abcdefghijklmn"
    monkeypatch.setenv("OPENAI_API_KEY", key)
    h = Harness(tmp_path)
    h.enqueue(f"your key is {key}")  # an upstream that echoes it
    answer = await h.engine.ask(Request(f"is {key} valid?"))
    assert answer.text == "your key is sk-…klmn"
    pieces = [key[i : i + 3] for i in range(0, len(key), 3)]  # one key, split every 3 characters
    h.enqueue("a key: ", *pieces, " — done")
    streamed = [c.text async for c in h.engine.stream(Request("stream it", use_cache=False))]
    assert "".join(streamed) == "a key: sk-…klmn — done"
    assert not any(key[i : i + 8] in "".join(streamed) for i in range(len(key) - 7))
    h.enqueue("x", error=ProviderError(f"refused {key}"))
    with pytest.raises(ProviderError):
        await h.engine.ask(Request("again", use_cache=False))
    await h.engine.aclose()
    for name in ("geri.db", "geri.db-wal"):
        raw = (tmp_path / name).read_bytes() if (tmp_path / name).exists() else b""
        assert key.encode() not in raw
        assert key[:16].encode() not in raw


async def test_a_model_is_resolved_from_memory_until_the_registry_or_settings_change(
    h: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    looked_up: list[str | None] = []
    real_get = h.engine.registry.get

    def counted(model_id: str | None = None) -> ModelInfo:
        looked_up.append(model_id)
        return real_get(model_id)

    monkeypatch.setattr(h.engine.registry, "get", counted)
    for _ in range(3):
        h.enqueue("ok")
        await h.engine.ask(Request("hi", model="fake"))
    assert looked_up == ["fake"]
    h.clock.advance(60)  # remembered for seconds only: another daemon may change the store
    h.enqueue("ok")
    await h.engine.ask(Request("hi", model="fake"))
    assert looked_up == ["fake", "fake"]
    h.engine.reload(h.settings.model_copy(update={"vision_models": ("fake",)}))
    h.enqueue("ok")
    await h.engine.ask(Request("hi", model="fake"))
    assert len(looked_up) == 3
    assert not await h.engine.remove_model("not-there")  # the registry changed here: forget
    h.enqueue("ok")
    await h.engine.ask(Request("hi", model="fake"))
    assert len(looked_up) == 4
    with pytest.raises(ModelNotFound):  # an unknown model is never remembered as anything
        await h.engine.ask(Request("hi", model="not-there"))


async def test_real_models_unloaded_over_the_cap_answer_alike_when_loaded_again(
    tmp_path: Path, smollm_path: Path
) -> None:
    """llama.cpp models unloaded to stay under the cap load again on their next request, and
    answer as before."""
    settings = Settings(
        models=(LocalModel(id="one", path=smollm_path), LocalModel(id="two", path=smollm_path)),
        performance=Performance(max_loaded_models=1, threads=2, context_size=512, parallel=1),
    )
    async with Engine(settings, open_store(tmp_path / "g.db")) as engine:

        async def ask(model: str) -> str:
            question = Request("Name a colour.", model=model, max_tokens=8, temperature=0.0)
            return (await engine.ask(replace(question, use_cache=False))).text

        first = await ask("one")
        assert await ask("two") == first  # the same file, loaded a second time
        await engine._loaded.settled()
        assert engine._loaded.loaded() == ["two"]
        assert await ask("one") == first  # unloaded, and loaded again
        await engine._loaded.settled()
        assert engine._loaded.loaded() == ["one"]
