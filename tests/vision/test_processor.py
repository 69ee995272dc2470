"""Choosing the vision model, and the engine refusing images for models that cannot see."""

from __future__ import annotations

from pathlib import Path

import pytest

from geri.engine import Engine
from geri.errors import InputError, ModelNotFound
from geri.settings import LocalModel, Settings
from geri.store import open_store
from geri.types import Image, Request, Result, Usage
from geri.vision.processor import FrameAnswer, VisionProcessor, merge


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    settings = Settings(models=(LocalModel(id="text-only", path=tmp_path / "m.gguf"),))
    return Engine(settings, open_store(tmp_path / "g.db"))


async def test_a_model_that_cannot_see_is_refused(engine: Engine) -> None:
    with pytest.raises(InputError, match=r"'text-only' does not take images\. Vision models:"):
        await VisionProcessor(engine).choose("text-only")
    with pytest.raises(InputError, match="does not take images: choose a vision model"):
        await engine.ask(Request("what is it?", model="text-only", images=(Image(b"x"),)))


async def test_the_first_usable_vision_model_wins(engine: Engine) -> None:
    processor = VisionProcessor(engine)
    with pytest.raises(ModelNotFound, match=r"gpt-4o: no API key — .*OPENAI_API_KEY"):
        await processor.choose(None)
    engine.keys.get = lambda provider: "k" if provider == "anthropic" else None  # type: ignore[method-assign]
    engine.settings = engine.settings.model_copy(
        update={"vision_models": ("gpt-4o", "claude-haiku-4-5")}
    )
    assert (await processor.choose(None)).id == "claude-haiku-4-5"


def test_answers_merge_into_a_timeline_in_video_order() -> None:
    def answer(at: float, text: str) -> FrameAnswer:
        return FrameAnswer(at, Result("id", f" {text}\n", "m", "p", Usage(), 1.0))

    assert merge([answer(75, "a car leaves"), answer(0.4, "a car waits")]) == (
        "[00:00] a car waits\n[01:15] a car leaves"
    )
