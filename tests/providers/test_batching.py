"""Continuous batching on the real SmolLM2 test model: concurrent requests decoded together.

Greedy decoding (temperature 0) makes a lone sequence's answer exact, so the batcher is checked
against geri's unbatched path token for token. Sequences decoded side by side are not compared
that way: llama.cpp's matrix kernels round differently for a batch of one and a batch of
several (llama-server behaves the same), so the tests there check what must hold regardless:
each answer is its own prompt's, complete, and counted.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from geri.providers.llamacpp import LlamaCppProvider
from geri.settings import Settings
from geri.types import ChatRequest, Message, ModelInfo
from tests.providers.test_llamacpp import context

WORDS = ["banana", "cherry", "mango", "apple", "grape", "lemon", "peach", "plum"]


def provider(
    path: Path, parallel: int, window: int = 2048, attention: str = "auto"
) -> LlamaCppProvider:
    settings = Settings.model_validate(
        {"performance": {"parallel": parallel, "threads": 2, "flash_attention": attention}}
    )
    info = ModelInfo("smol", "llamacpp", str(path), context_window=window, location="local")
    return LlamaCppProvider(info, context(settings))


def secret(word: str, max_tokens: int = 24, system: str | None = None) -> ChatRequest:
    question = Message(
        "user", f"The secret word is {word}. What is the secret word? Answer in one sentence."
    )
    messages = (Message("system", system), question) if system else (question,)
    return ChatRequest(messages, max_tokens=max_tokens, temperature=0.0)


def story(word: str, max_tokens: int) -> ChatRequest:
    return ChatRequest(
        (Message("user", f"Write a long story about a {word}."),),
        max_tokens=max_tokens,
        temperature=0.0,
    )


@pytest.fixture
async def batched(smollm_path: Path) -> AsyncIterator[LlamaCppProvider]:
    p = provider(smollm_path, parallel=4)
    yield p
    await p.aclose()


@pytest.mark.parametrize("attention", ["auto", "off"])
async def test_a_lone_sequence_decodes_exactly_as_unbatched(
    smollm_path: Path, attention: str
) -> None:
    """With flash attention (auto is on, on a CPU) and without it, a greedy answer from the
    batcher is the unbatched path's, token for token."""
    single = provider(smollm_path, parallel=1, attention=attention)
    batched = provider(smollm_path, parallel=4, attention=attention)
    try:
        for word in WORDS[:3]:
            alone = await single.generate(story(word, 32))
            together = await batched.generate(story(word, 32))
            assert together == alone
    finally:
        await single.aclose()
        await batched.aclose()


async def test_concurrent_requests_each_get_their_own_answer(
    batched: LlamaCppProvider,
) -> None:
    """Eight requests at once on four slots: every answer names its own word, none another's
    (the sequences' caches are apart), and each is counted on its own."""
    answers = await asyncio.gather(*(batched.generate(secret(w)) for w in WORDS))
    for word, answer in zip(WORDS, answers, strict=True):
        said = answer.text.lower()
        assert word in said, (word, answer.text)
        assert not [w for w in WORDS if w != word and w in said], (word, answer.text)
        assert answer.finish_reason in ("stop", "length")
        assert 0 < answer.usage.output_tokens <= 24
    assert len({a.usage.input_tokens for a in answers}) <= 2  # same template, similar prompts


async def test_a_request_joins_while_another_is_decoding(batched: LlamaCppProvider) -> None:
    """A request arriving mid-answer is answered before the long one ends: it joins the batch
    between two steps instead of waiting for the slot."""
    events: list[str] = []
    started = asyncio.Event()

    async def long() -> None:
        async for chunk in batched.stream(story("lighthouse", 200)):
            if chunk.text and not started.is_set():
                events.append("long-first")
                started.set()
        events.append("long-end")

    async def short() -> None:
        await started.wait()
        answer = await batched.generate(secret("mango", 16))
        assert "mango" in answer.text.lower()
        events.append("short-end")

    await asyncio.gather(long(), short())
    assert events == ["long-first", "short-end", "long-end"]


async def test_a_cancelled_sequence_leaves_and_the_others_finish(
    batched: LlamaCppProvider,
) -> None:
    async def cancelled() -> int:
        pieces = 0
        stream = batched.stream(story("volcano", 400))
        async for chunk in stream:
            pieces += bool(chunk.text)
            if pieces == 3:
                break
        await stream.aclose()
        return pieces

    others = asyncio.gather(*(batched.generate(story(w, 40)) for w in WORDS[:3]))
    pieces, finished = await asyncio.gather(cancelled(), others)
    assert pieces == 3
    assert [(r.usage.output_tokens, r.finish_reason) for r in finished] == [(40, "length")] * 3
    # its slot is free again: a full set of new requests is served
    again = await asyncio.gather(*(batched.generate(secret(w)) for w in WORDS[:4]))
    assert all(w in a.text.lower() for w, a in zip(WORDS, again, strict=False))


async def test_a_shared_prefix_is_read_once(batched: LlamaCppProvider, smollm_path: Path) -> None:
    """A second request that begins like the first (a long system prompt) reuses its cells:
    only the part after the shared prefix is read, and the answer is the one read whole."""
    system = "You are a careful assistant. " + "Answer briefly and exactly. " * 40
    await batched.generate(secret("peach", system=system))
    loaded = batched._loaded
    assert loaded is not None
    assert loaded.batcher is not None
    read_before = loaded.batcher.tokens_read
    second = await batched.generate(secret("plum", system=system))
    read = loaded.batcher.tokens_read - read_before
    assert read < second.usage.input_tokens / 4, (read, second.usage.input_tokens)
    assert loaded.batcher.tokens_reused >= second.usage.input_tokens - read
    whole = provider(smollm_path, parallel=1)
    try:
        assert await whole.generate(secret("plum", system=system)) == second
    finally:
        await whole.aclose()


async def test_requests_wait_for_cells_rather_than_fail(smollm_path: Path) -> None:
    """Four requests whose prompts and budgets together exceed the window: those that do not
    fit wait for cells and are served when others finish; none fails."""
    small = provider(smollm_path, parallel=4, window=512)
    try:
        answers = await asyncio.gather(*(small.generate(story(w, 200)) for w in WORDS[:4]))
    finally:
        await small.aclose()
    assert [a.usage.output_tokens for a in answers] == [200] * 4


async def eventually(check: Callable[[], object], seconds: float = 60) -> None:
    for _ in range(int(seconds / 0.01)):
        if check():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("it did not happen in time")


async def test_a_request_cancelled_while_it_waits_for_cells_leaves_the_queue(
    smollm_path: Path,
) -> None:
    """Behind a waiting request that does not fit yet, a cancelled one leaves at once rather
    than when the one ahead of it is admitted."""
    small = provider(smollm_path, parallel=4, window=512)
    try:
        first = asyncio.ensure_future(small.generate(story("lighthouse", 400)))
        await eventually(lambda: small._loaded and small._loaded.batcher._running)  # type: ignore[union-attr]
        assert small._loaded is not None
        batcher = small._loaded.batcher
        assert batcher is not None
        ahead = asyncio.ensure_future(small.generate(story("volcano", 400)))  # does not fit
        behind = asyncio.ensure_future(small.generate(story("glacier", 400)))
        await eventually(lambda: len(batcher._waiting) == 2)
        behind.cancel()
        await eventually(lambda: len(batcher._waiting) == 1)
        assert not first.done()  # it left while the first was still answering
        assert [(await first).usage.output_tokens, (await ahead).usage.output_tokens] == [400] * 2
    finally:
        await small.aclose()
