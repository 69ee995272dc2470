"""`geri vision`: ask a vision model about an image or a video."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from geri.cli import render
from geri.cli.common import piped, with_engine
from geri.cli.constraints import AnswerOptions

if TYPE_CHECKING:
    from geri.engine import Engine
    from geri.types import ModelInfo, Request, Result
    from geri.vision.image import Media
    from geri.vision.processor import FrameAnswer, VisionProcessor


def vision(
    source: Annotated[
        str,
        typer.Argument(
            help="An image or video file, an http(s) URL, or - for stdin. The format is read "
            "from the content, not the name.",
            show_default=False,
        ),
    ],
    question: Annotated[
        str | None,
        typer.Argument(help="What to ask about it; describes it if unset.", show_default=False),
    ] = None,
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            "-m",
            help="Vision model id; the first usable of vision_models (gpt-4o) if unset, "
            "'auto' for the best by efficiency score.",
        ),
    ] = None,
    max_tokens: Annotated[
        int, typer.Option("--max-tokens", min=1, help="Most tokens per answer.")
    ] = 512,
    temperature: Annotated[
        float, typer.Option("--temperature", "-t", min=0.0, max=2.0, help="0 is deterministic.")
    ] = 0.2,
    fps: Annotated[
        float | None,
        typer.Option(
            "--fps",
            min=0.0,
            help="Video: frames analysed per second; 0 picks frames at scene changes "
            "(vision.frames_per_second).",
        ),
    ] = None,
    max_frames: Annotated[
        int | None,
        typer.Option(
            "--max-frames", min=1, help="Video: most frames analysed (vision.max_frames)."
        ),
    ] = None,
    json_output: AnswerOptions.json_output = False,
    no_stream: AnswerOptions.no_stream = False,
    no_cache: AnswerOptions.no_cache = False,
) -> None:
    """Ask a vision model about an image, or about a video frame by frame.

    Images are checked and converted before anything is sent: PNG, JPEG, WebP, GIF, BMP and
    TIFF are read, scaled to what the model's provider accepts. Videos are cut into frames at
    scene changes (or --fps), each frame is analysed, and the answers come back as a timeline.

    Examples:

    \b
      geri vision photo.jpg "What breed is this dog?"
      curl -s https://example.com/chart.png | geri vision - "Summarise this chart"
      geri vision clip.mp4 --max-frames 8 --json
    """
    from geri.types import Request

    template = Request("", max_tokens=max_tokens, temperature=temperature, use_cache=not no_cache)
    stdin = piped() if source == "-" else None

    async def work(engine: Engine) -> None:
        from geri.cli.answer import answer, exit_for
        from geri.vision.processor import VisionProcessor

        processor = VisionProcessor(engine)
        media = await processor.read(source, stdin)
        if media.video:
            info = await processor.choose(model)
            options = (fps, max_frames, json_output)
            await _video(processor, media, template, info, question, *options)
            return
        request, _ = await processor.image_request(
            media.data, media.name, model, template, question
        )
        result = await answer(engine, request, not no_stream, json_output)
        if json_output:
            render.print_json(result.as_dict())
        elif no_stream:
            render.write(result.text + "\n")
        exit_for(result)

    with_engine(work)


async def _video(
    processor: VisionProcessor,
    media: Media,
    template: Request,
    info: ModelInfo,
    question: str | None,
    fps: float | None,
    max_frames: int | None,
    json_output: bool,
) -> None:
    from geri.vision.processor import merge
    from geri.vision.video import extract_frames

    limits = processor.engine.settings.vision
    answers: list[FrameAnswer] = []
    with render.video_progress(f"Analysing {media.name}") as advance:
        frames = extract_frames(
            media.path or media.data,
            frames_per_second=limits.frames_per_second if fps is None else fps,
            max_frames=max_frames or limits.max_frames,
            scene_threshold=limits.scene_threshold,
            max_pixels=limits.max_pixels,
            name=media.name,
            progress=advance,
        )
        async for answer in processor.frames(frames, template, info, question):
            answers.append(answer)
            for notice in answer.result.notices:
                render.notice(notice.message)
            if not json_output:
                render.write(answer.line() + "\n")
    if json_output:
        render.print_json(_video_json(answers, merge(answers)))


def _video_json(answers: list[FrameAnswer], summary: str) -> dict[str, object]:
    results: list[Result] = [a.result for a in answers]
    return {
        "model": results[-1].model if results else None,
        "frames": [{"timestamp": round(a.timestamp, 3), **a.result.as_dict()} for a in answers],
        "summary": summary,
        "cost_usd": sum(r.cost_micros for r in results) / 1_000_000,
    }
