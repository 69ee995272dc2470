"""The llama.cpp provider on the real SmolLM2-135M-Instruct model."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator
from contextlib import aclosing
from pathlib import Path
from typing import Any

import psutil
import pytest

from geri.errors import ContextTooLong, ModelFileError
from geri.keys import KeyStore
from geri.providers.base import Provider, ProviderContext
from geri.providers.decoding import stop_prefix_at_end
from geri.providers.llamacpp import LlamaCppProvider, default_threads
from geri.settings import Performance, Settings
from geri.types import ChatRequest, Message, ModelInfo

QUESTION = ChatRequest(
    (
        Message("system", "Answer briefly."),
        Message("user", "The secret word is banana. What is the secret word?"),
    ),
    max_tokens=24,
    temperature=0.0,
)


def context(settings: Settings) -> ProviderContext:
    def no_http() -> object:
        raise AssertionError("a local model must not use HTTP")

    return ProviderContext.of(settings, "llama.cpp", KeyStore({}, {}), no_http)  # type: ignore[arg-type]


def make(path: Path, *, window: int = 2048, **metadata: str) -> LlamaCppProvider:
    info = ModelInfo("smol", "llama.cpp", str(path), context_window=window, metadata=metadata)
    return LlamaCppProvider(info, context(Settings(performance=Performance(threads=2))))


@pytest.fixture
async def smol(smollm_path: Path) -> AsyncIterator[LlamaCppProvider]:
    provider = make(smollm_path)
    yield provider
    await provider.aclose()


async def test_it_is_a_provider(smol: LlamaCppProvider) -> None:
    assert isinstance(smol, Provider)


async def test_answers_from_the_prompt(smol: LlamaCppProvider) -> None:
    completion = await smol.generate(QUESTION)
    assert "banana" in completion.text.lower()
    assert completion.finish_reason == "stop"
    assert completion.usage.input_tokens > 10
    assert 0 < completion.usage.output_tokens <= 24


async def test_matches_a_direct_llama_cpp_call_token_for_token(
    smol: LlamaCppProvider, smollm_path: Path
) -> None:
    from llama_cpp import Llama

    direct = Llama(model_path=str(smollm_path), n_ctx=2048, n_threads=2, verbose=False)
    messages: Any = [{"role": m.role, "content": m.content} for m in QUESTION.messages]
    expected: Any = direct.create_chat_completion(
        messages,
        max_tokens=QUESTION.max_tokens,
        temperature=0.0,
    )
    direct.close()
    completion = await smol.generate(QUESTION)
    assert completion.text == expected["choices"][0]["message"]["content"]
    assert completion.usage.input_tokens == expected["usage"]["prompt_tokens"]
    assert completion.usage.output_tokens == expected["usage"]["completion_tokens"]


async def test_stream_equals_generate_and_reports_usage_last(smol: LlamaCppProvider) -> None:
    request = ChatRequest(QUESTION.messages, max_tokens=4, temperature=0.0)
    whole = await smol.generate(request)
    chunks = [c async for c in smol.stream(request)]
    assert "".join(c.text for c in chunks) == whole.text
    assert len([c for c in chunks if c.text]) > 1, "tokens arrive one by one"
    assert chunks[-1].usage == whole.usage
    assert chunks[-1].finish_reason == whole.finish_reason == "length"


async def test_stop_strings_end_the_answer_without_leaking(smol: LlamaCppProvider) -> None:
    free = await smol.generate(QUESTION)
    word = free.text.split()[2]  # cut the known answer at its third word
    stopped = await smol.generate(
        ChatRequest(QUESTION.messages, max_tokens=24, temperature=0.0, stop=(word,))
    )
    assert stopped.finish_reason == "stop"
    assert word not in stopped.text
    assert free.text.startswith(stopped.text)


def test_a_stop_string_split_across_tokens_is_held_back() -> None:
    assert stop_prefix_at_end("Hello <|im", ["<|im_end|>"]) == 4
    assert stop_prefix_at_end("Hello", ["<|im_end|>"]) == 0
    assert stop_prefix_at_end("ab", ["b", "bcd"]) == 1


async def test_counts_tokens_with_the_model_tokenizer(smol: LlamaCppProvider) -> None:
    from llama_cpp import Llama

    text = "Tokenizers split words into pieces."
    assert await smol.count_tokens(text) == len(
        _vocab(smol).tokenize(text.encode(), add_bos=False, special=False)
    )
    assert isinstance(_vocab(smol), Llama)


def _vocab(provider: LlamaCppProvider):  # type: ignore[no-untyped-def]
    assert provider._loaded is not None
    return provider._loaded.llm


async def test_keeps_the_loaded_model_between_requests(smol: LlamaCppProvider) -> None:
    await smol.generate(QUESTION)
    first = _vocab(smol)
    await smol.generate(QUESTION)
    assert _vocab(smol) is first
    await smol.aclose()
    assert smol._loaded is None
    await smol.aclose()  # twice is fine


async def test_threads_follow_the_physical_cores(smollm_path: Path) -> None:
    assert default_threads() == (psutil.cpu_count(logical=False) or psutil.cpu_count())
    info = ModelInfo("smol", "llama.cpp", str(smollm_path), context_window=512)
    provider = LlamaCppProvider(info, context(Settings()))
    await provider.count_tokens("load")
    assert _vocab(provider).n_threads == default_threads()
    await provider.aclose()


async def test_the_event_loop_stays_free_during_inference(smol: LlamaCppProvider) -> None:
    await smol.count_tokens("warm up")
    ticks = 0
    done = asyncio.Event()

    async def ticker() -> None:
        nonlocal ticks
        while not done.is_set():
            ticks += 1
            await asyncio.sleep(0.001)

    task = asyncio.create_task(ticker())
    chunks = 0
    async for chunk in smol.stream(ChatRequest(QUESTION.messages, max_tokens=16, temperature=0)):
        chunks += bool(chunk.text)
    done.set()
    await task
    # a loop blocked by inference would tick at most once per chunk
    assert ticks > 2 * chunks


async def test_an_abandoned_stream_stops_generating(smol: LlamaCppProvider) -> None:
    long_request = ChatRequest(
        (Message("user", "Write a long story about a dragon."),), max_tokens=400, temperature=0
    )
    async with aclosing(smol.stream(long_request)) as chunks:
        async for _ in chunks:
            break
    # the model is free again at once: the next request is not queued behind 400 tokens
    completion = await asyncio.wait_for(smol.generate(QUESTION), timeout=60)
    assert "banana" in completion.text.lower()


async def test_a_prompt_longer_than_the_window_is_refused(smollm_path: Path) -> None:
    small = make(smollm_path, window=256)
    request = ChatRequest((Message("user", "word " * 400),), max_tokens=8)
    with pytest.raises(ContextTooLong, match="context window of 256"):
        await small.generate(request)
    await small.aclose()


async def test_a_configured_chat_template_replaces_the_files(smollm_path: Path) -> None:
    bare = make(smollm_path, chat_template="{{ messages[-1]['content'] }}")
    completion = await bare.generate(ChatRequest((Message("user", "Hello there"),), max_tokens=2))
    # only the user's words reach the model: no role markers, no default system prompt
    assert completion.usage.input_tokens == await bare.count_tokens("Hello there")
    await bare.aclose()


async def test_files_without_a_template_get_chatml(smol: LlamaCppProvider) -> None:
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    from geri.providers.llamacpp import CHATML_TEMPLATE

    rendered = Jinja2ChatFormatter(CHATML_TEMPLATE, "</s>", "<s>")(
        messages=[{"role": "system", "content": "S"}, {"role": "user", "content": "U"}]
    ).prompt
    assert rendered == "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nU<|im_end|>\n" + (
        "<|im_start|>assistant\n"
    )


async def test_a_truncated_file_fails_cleanly_before_loading(
    smollm_path: Path, tmp_path: Path
) -> None:
    cut = tmp_path / "cut.gguf"
    with smollm_path.open("rb") as src, cut.open("wb") as dst:
        shutil.copyfileobj(src, dst)
        dst.truncate(smollm_path.stat().st_size // 2)
    provider = make(cut)
    with pytest.raises(ModelFileError, match="truncated"):
        await provider.generate(QUESTION)
