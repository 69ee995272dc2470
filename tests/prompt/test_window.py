"""Fitting a prompt into the context window, through the engine with a word-counting model.

The fake model counts one token per word plus two per message, so budgets are easy to reason
about: a 500-token window keeps 100 for the answer (20 %) and allows 400 for the prompt.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from pathlib import Path

import pytest

from geri.engine import Engine
from geri.errors import ContextTooLong
from geri.prompt.context import DEFAULT_TEMPLATE
from geri.providers import ProviderContext
from geri.settings import LocalModel, PromptSettings, Settings
from geri.store import open_store
from geri.types import ContextReport, Document, ModelInfo, Request
from tests.fakes import FakeProvider, Script


@dataclass(frozen=True)
class Fitted:
    """Who answered, and how the prompt was fitted to its window."""

    model: str
    context: ContextReport


def words(n: int, word: str = "word") -> str:
    return " ".join([word] * n)


def sentences(n: int, length: int = 10) -> str:
    return " ".join(f"{words(length - 1, f's{i}')} end." for i in range(n))


class Rig:
    def __init__(self, tmp_path: Path, *windows: int, **prompt: object) -> None:
        self.scripts: deque[Script] = deque()
        self.built: list[FakeProvider] = []
        models = tuple(
            LocalModel(id=f"w{w}", path=tmp_path / f"w{w}.gguf", context_window=w) for w in windows
        )
        settings = Settings(
            models=models, default_model=models[0].id, prompt=PromptSettings(**prompt)
        )
        self.engine = Engine(settings, open_store(tmp_path / "g.db"), providers=self._build)

    def _build(self, info: ModelInfo, context: ProviderContext) -> FakeProvider:
        provider = FakeProvider(info, self.scripts)
        self.built.append(provider)
        return provider

    async def ask(self, request: Request) -> tuple[str, Fitted]:
        self.scripts.append(Script(["ok"]))
        result = await self.engine.ask(request)
        [sent] = [r for p in self.built for r in p.requests][-1:]
        assert result.context is not None  # every answer says how its prompt was fitted
        return sent.messages[-1].content, Fitted(result.model, result.context)


async def test_everything_fits(tmp_path: Path) -> None:
    rig = Rig(tmp_path, 1000)
    docs = (Document("a", "alpha text", 0.2), Document("b", "beta text", 0.9))
    content, result = await rig.ask(Request("question?", documents=docs))
    assert content.index("beta text") < content.index("alpha text")  # most relevant first
    report = result.context
    assert (report.window, report.reserve) == (1000, 200)
    assert [(u.id, u.status) for u in report.documents] == [("a", "included"), ("b", "included")]
    assert report.prompt_tokens == len(content.split()) + 2  # fake: words + 2 per message


async def test_least_relevant_dropped_then_last_kept_trimmed_at_a_sentence(
    tmp_path: Path,
) -> None:
    rig = Rig(tmp_path, 500)  # 400 tokens for the prompt
    docs = (
        Document("top", sentences(15), 0.9),  # 150 words
        Document("second", sentences(30), 0.8),  # 300 words: fits only in part
        Document("third", sentences(2), 0.7),  # no room left
    )
    content, result = await rig.ask(Request("question?", documents=docs))
    uses = {u.id: u for u in result.context.documents}
    assert uses["top"].status == "included"
    assert uses["second"].status == "trimmed"
    assert uses["third"].status == "dropped"
    assert uses["third"].reason == "no room left in the window"
    kept = content.split("[2] second\n")[1].split("\n\n")[0]
    assert kept.endswith("end. …")  # cut after a whole sentence, and marked
    assert sentences(30).startswith(kept.removesuffix(" …"))
    assert 150 < len(kept.split()) < 300
    assert result.context.prompt_tokens <= 400
    assert "s0 s0" in content
    assert "third" not in content


async def test_duplicates_are_reported_and_not_sent(tmp_path: Path) -> None:
    rig = Rig(tmp_path, 1000)
    docs = (Document("a", "same words here", 0.5), Document("b", "Same  words here", 0.9))
    content, result = await rig.ask(Request("q?", documents=docs))
    assert content.count("words here") == 1
    assert [(u.id, u.status, u.reason) for u in result.context.documents] == [
        ("a", "duplicate", "same text as b"),
        ("b", "included", ""),
    ]


async def test_the_answer_never_gets_more_than_the_window_leaves(tmp_path: Path) -> None:
    rig = Rig(tmp_path, 500)
    await rig.ask(Request(words(100), max_tokens=4096))
    [sent] = rig.built[0].requests
    assert sent.max_tokens == 500 - (100 + 2)


async def test_the_reserve_is_configurable(tmp_path: Path) -> None:
    rig = Rig(tmp_path, 500, response_reserve=0.5)
    with pytest.raises(ContextTooLong, match="500 tokens minus 250 kept for the answer"):
        await rig.ask(Request(words(300)))


async def test_a_question_too_long_moves_to_a_larger_model(tmp_path: Path) -> None:
    rig = Rig(tmp_path, 300, 1000, 5000)
    _, result = await rig.ask(Request(words(300)))
    assert result.model == "w1000"  # the smallest window that fits, not the largest
    assert result.context.switched_from == "w300"
    [record] = rig.engine.store.recent_requests()
    assert record.model == "w1000"


async def test_no_move_when_the_model_was_chosen_or_moves_are_off(tmp_path: Path) -> None:
    rig = Rig(tmp_path, 300, 1000)
    with pytest.raises(ContextTooLong, match="'w300'"):
        await rig.ask(Request(words(300), model="w300"))
    off = Rig(tmp_path / "off", 300, 1000, switch_to_larger_model=False)
    with pytest.raises(ContextTooLong):
        await off.ask(Request(words(300)))
    [record] = off.engine.store.recent_requests()
    assert record.status == "error"


async def test_a_template_from_the_settings_shapes_the_message(tmp_path: Path) -> None:
    rig = Rig(tmp_path, 1000, template="Q: {{ question }} | {{ documents|length }} docs")
    content, _ = await rig.ask(Request("why?", documents=(Document("a", "x"),)))
    assert content == "Q: why? | 1 docs"
    assert "documents" in DEFAULT_TEMPLATE
