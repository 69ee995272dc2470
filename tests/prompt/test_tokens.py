"""Token counts: the estimate errs high against a real tokenizer; tiktoken only from disk."""

from __future__ import annotations

import importlib.util
import tempfile
from pathlib import Path

import pytest

from geri.prompt.tokens import TokenCounter, estimate_tokens, local_tiktoken
from geri.types import Message, ModelInfo
from tests.fakes import FakeProvider

SAMPLES = {
    "english": "The quick brown fox jumps over the lazy dog. " * 20,
    "code": "def f(x: int) -> int:\n    return {k: v**2 for k, v in enumerate(range(x))}\n" * 10,
    "german": "Die Kündigungsfrist beträgt drei Monate zum Quartalsende. " * 10,
    "japanese": "東京は日本の首都であり、世界最大の都市圏の一つです。" * 10,
    "numbers": "3.14159 2.71828 1.41421 0xDEADBEEF 1e-9 " * 20,
    "json": '{"id": "a1b2", "values": [1, 2, 3], "ok": true, "name": "Zoë"}\n' * 10,
    "emoji": "Great job 🎉🎉 let's ship it 🚀 👍 " * 10,
    "urls": "https://example.com/path/to/resource?query=value&other=123 " * 10,
}


@pytest.fixture(scope="module")
def cloud_tokenizers() -> dict[str, object]:
    """Real cloud tokenizers, from the files LiteLLM ships: cl100k, o200k and Claude's."""
    import tiktoken
    from tokenizers import Tokenizer

    files = _litellm_encodings()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TIKTOKEN_CACHE_DIR", str(files))
        encodings = {name: tiktoken.get_encoding(name) for name in ("cl100k_base", "o200k_base")}
    claude = Tokenizer.from_file(str(files / "anthropic_tokenizer.json"))
    return {
        **{name: (lambda t, e=e: len(e.encode(t))) for name, e in encodings.items()},
        "claude": lambda t: len(claude.encode(t, add_special_tokens=False).ids),
    }


@pytest.mark.parametrize("kind", list(SAMPLES))
def test_the_estimate_errs_high_against_real_cloud_tokenizers(
    kind: str, cloud_tokenizers: dict[str, object]
) -> None:
    text = SAMPLES[kind]
    estimate = estimate_tokens(text)
    real = {name: count(text) for name, count in cloud_tokenizers.items()}  # type: ignore[operator]
    assert all(estimate >= n for n in real.values()), (kind, estimate, real)
    if kind == "english":
        assert estimate <= 1.6 * real["o200k_base"]  # high, but still a useful number


def _litellm_encodings() -> Path:
    spec = importlib.util.find_spec("litellm")
    if spec is None or not spec.submodule_search_locations:
        pytest.fail("the dev dependency litellm is missing: run 'bash scripts/test.sh'")
    return Path(next(iter(spec.submodule_search_locations))) / "litellm_core_utils" / "tokenizers"


def test_tiktoken_is_used_when_its_encoding_is_on_disk(monkeypatch: pytest.MonkeyPatch) -> None:
    import tiktoken

    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(_litellm_encodings()))
    local_tiktoken.cache_clear()
    encoding = local_tiktoken("o200k_base")
    assert encoding is not None
    text = SAMPLES["english"]
    assert len(encoding.encode(text)) == len(tiktoken.get_encoding("o200k_base").encode(text))
    local_tiktoken.cache_clear()


def test_tiktoken_never_downloads(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv("DATA_GYM_CACHE_DIR", raising=False)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    local_tiktoken.cache_clear()
    assert local_tiktoken("o200k_base") is None
    local_tiktoken.cache_clear()


async def test_cloud_models_count_exactly_with_a_local_encoding(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import tiktoken

    from geri.keys import KeyStore
    from geri.providers.base import ProviderContext
    from geri.providers.openai import OpenAIProvider
    from geri.settings import Settings

    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(_litellm_encodings()))
    local_tiktoken.cache_clear()
    context = ProviderContext.of(Settings(), "llama.cpp", KeyStore({}, {}), lambda: None)  # type: ignore[arg-type,return-value]
    exact = OpenAIProvider(
        ModelInfo("g", "openai", "gpt-4o", metadata={"tokenizer": "o200k_base"}), context
    )
    guess = OpenAIProvider(ModelInfo("o", "openai", "other"), context)
    text = SAMPLES["code"]
    assert await exact.count_tokens(text) == len(tiktoken.get_encoding("o200k_base").encode(text))
    assert await guess.count_tokens(text) == estimate_tokens(text)
    local_tiktoken.cache_clear()


async def test_counts_are_cached_per_text() -> None:
    calls: list[str] = []

    class Counting(FakeProvider):
        async def count_tokens(self, text: str) -> int:
            calls.append(text)
            return await super().count_tokens(text)

    counter = TokenCounter(Counting(ModelInfo("m", "p", "s")), capacity=2)
    assert await counter.text("a b c") == 3
    assert await counter.text("a b c") == 3
    assert calls == ["a b c"]
    await counter.text("d")
    await counter.text("e")  # capacity 2: "a b c" is evicted
    await counter.text("a b c")
    assert calls == ["a b c", "d", "e", "a b c"]
    chat = (Message("user", "one two"),)
    assert await counter.messages(chat) == await counter.messages(chat) == 4
