"""Vision requests through the engine: pick the vision model, fit the image, merge video answers.

An image is checked first (a bad file is reported before anything else), then the model is
chosen (an explicit `--model`, else the first usable entry of `vision_models`, else the best
vision model by efficiency score), then the image is fitted to what that model's provider
accepts (`ImageRules`). A video is analysed frame by frame as frames are picked, and
the per-frame answers are merged into one timeline: '[00:12] a dog enters from the left'. The
CLI (`geri vision`) and the daemon's VisionService both use this class.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, BinaryIO

from geri.engine import Engine
from geri.errors import InputError, ModelNotFound
from geri.selection.selector import require
from geri.specs import provider_spec
from geri.types import Constraints, Image, ModelInfo, Request, Result
from geri.vision.image import Media, fit_image, open_image, read_media
from geri.vision.video import Frame, timestamp

if TYPE_CHECKING:
    from PIL.Image import Image as PILImage

IMAGE_QUESTION = "Describe this image in detail."
VIDEO_QUESTION = "Describe what is happening in this frame."


@dataclass(frozen=True, slots=True)
class FrameAnswer:
    timestamp: float
    result: Result

    def line(self) -> str:
        return f"[{timestamp(self.timestamp)}] {self.result.text.strip()}"


def merge(answers: list[FrameAnswer]) -> str:
    """The per-frame answers as one timeline, in video order."""
    return "\n".join(a.line() for a in sorted(answers, key=lambda a: a.timestamp))


class VisionProcessor:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    async def choose(self, model: str | None) -> ModelInfo:
        """The vision model to use: `model`, else the first usable of `vision_models`, else auto."""
        registry, router = self.engine.registry, self.engine.router
        if model is not None and model != "auto":
            info = await asyncio.to_thread(registry.get, model)
            if info.kind != "vision":
                raise InputError(
                    f"Model {model!r} does not take images. Vision models: "
                    f"{', '.join(await self._vision_ids()) or 'none'}."
                )
            return info
        refusals = []
        if model is None:
            for candidate in self.engine.settings.vision_models:
                try:
                    info = await asyncio.to_thread(registry.get, candidate)
                except ModelNotFound:
                    refusals.append(f"{candidate}: not a known model")
                    continue
                why = await asyncio.to_thread(router.unusable, info)
                if why is None and info.kind == "vision":
                    return info
                refusals.append(f"{candidate}: {why or 'does not take images'}")
        ranking = await router.route(Request("image", constraints=Constraints(needs_vision=True)))
        if not ranking.candidates and refusals:
            raise ModelNotFound(
                f"No vision model is usable: {'; '.join(refusals)}. Or pick one with --model."
            )
        return self.engine.balancer.choose(require(ranking))

    async def open(self, data: bytes, name: str) -> PILImage:
        """`data` checked and decoded (in a worker thread), before any model is chosen."""
        limit = self.engine.settings.vision.max_pixels
        return await asyncio.to_thread(open_image, data, name, max_pixels=limit)

    async def fit(self, image: PILImage, data: bytes, info: ModelInfo) -> Image:
        """A decoded image as `info`'s provider accepts it (the original bytes if they do)."""
        rules = provider_spec(info.provider).images
        return await asyncio.to_thread(fit_image, image, rules, original=data)

    def request(self, template: Request, info: ModelInfo, image: Image, question: str) -> Request:
        return replace(template, prompt=question, images=(image,), model=info.id)

    async def image_request(
        self, data: bytes, name: str, model: str | None, template: Request, question: str | None
    ) -> tuple[Request, ModelInfo]:
        """The one image flow of `geri vision` and AnalyzeImage: the image checked and decoded
        first, then the model chosen, then the image fitted to it; the request for it."""
        decoded = await self.open(data, name)
        info = await self.choose(model)
        image = await self.fit(decoded, data, info)
        return self.request(template, info, image, question or IMAGE_QUESTION), info

    async def read(self, source: str, stdin: BinaryIO | None) -> Media:
        """An image or video from a path, a URL or stdin (`-`), within the vision limits."""
        return await asyncio.to_thread(
            read_media, source, stdin=stdin, limits=self.engine.settings.vision
        )

    async def frames(
        self,
        frames: Iterator[Frame] | AsyncIterator[Frame],
        template: Request,
        info: ModelInfo,
        question: str | None,
    ) -> AsyncIterator[FrameAnswer]:
        """Each frame's answer as soon as it is ready, in video order."""
        rules = provider_spec(info.provider).images
        question = question or VIDEO_QUESTION
        async for frame in _aiter(frames):
            image = await asyncio.to_thread(fit_image, frame.image, rules)
            prompt = (
                f"{question}\n\n(This is the frame at {timestamp(frame.timestamp)} of a video.)"
            )
            result = await self.engine.ask(self.request(template, info, image, prompt))
            yield FrameAnswer(frame.timestamp, result)

    async def _vision_ids(self) -> list[str]:
        return [m.id for m in await self.engine.list_models() if m.kind == "vision"][:8]


async def _aiter(frames: Iterator[Frame] | AsyncIterator[Frame]) -> AsyncIterator[Frame]:
    """Frames from a blocking iterator (decoding runs in a worker thread) or an async one."""
    if isinstance(frames, AsyncIterator):
        async for frame in frames:
            yield frame
        return
    while True:
        picked = await asyncio.to_thread(_next_or_none, frames)
        if picked is None:
            return
        yield picked


def _next_or_none(frames: Iterator[Frame]) -> Frame | None:
    return next(frames, None)
