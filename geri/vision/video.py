"""Video frames for vision models: decoded with PyAV, picked at scene changes or a fixed rate.

Scene mode (the default, `frames_per_second = 0`) keeps the first frame and then each frame
that differs enough from the last one kept (the mean absolute difference of 16x16 colour
thumbnails, 0-1, against `scene_threshold`), at most one per `min_gap` seconds. Fixed-rate mode
keeps one frame per 1/fps seconds, spread further when the video is long enough that `max_frames`
would otherwise stop it early. Either way no more than `max_frames` frames come out. Frames are
yielded as they are decoded, so their analysis can start before the video is read to the end.
`SceneFilter` is the same choice for frames that arrive one by one (the daemon's video stream).
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from geri.errors import InputError
from geri.settings import Vision

if TYPE_CHECKING:
    from PIL.Image import Image as PILImage

Progress = Callable[[float, float | None], None]


@dataclass(frozen=True, slots=True)
class Frame:
    """One picked frame and where it sits in the video."""

    timestamp: float
    image: PILImage


class SceneFilter:
    """Decides, frame by frame, whether a frame starts a new scene."""

    def __init__(self, threshold: float, min_gap: float = 0.5) -> None:
        self.threshold = threshold
        self.min_gap = min_gap
        self._last: PILImage | None = None
        self._last_at: float | None = None

    def keep(self, image: PILImage, timestamp: float) -> bool:
        from PIL import ImageChops, ImageStat

        thumb = image.convert("RGB").resize((16, 16))
        if self._last is not None and self._last_at is not None:
            if timestamp - self._last_at < self.min_gap:
                return False
            bands = ImageStat.Stat(ImageChops.difference(thumb, self._last)).mean
            diff = sum(bands) / len(bands) / 255
            if diff < self.threshold:
                return False
        self._last, self._last_at = thumb, timestamp
        return True


DEFAULT_MAX_PIXELS: int = Vision.model_fields["max_pixels"].default


def _check_size(width: int, height: int, max_pixels: int, name: str) -> None:
    if width * height > max_pixels:
        raise InputError(
            f"{name} has {width}x{height} frames, over the limit of {max_pixels:,} pixels "
            "(vision.max_pixels); scale it down first."
        )


def extract_frames(
    source: Path | bytes,
    *,
    frames_per_second: float,
    max_frames: int,
    scene_threshold: float,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    name: str = "the video",
    progress: Progress | None = None,
) -> Iterator[Frame]:
    """The frames of `source` (a file, or a whole file's bytes) worth analysing, in order.

    A video whose frames are larger than `max_pixels` is refused before one is decoded, and
    so is any frame that grows past it later (a stream may change its size).
    """
    import av

    try:
        container = av.open(
            io.BytesIO(source) if isinstance(source, bytes) else str(source), mode="r"
        )
    except (av.error.FFmpegError, UnicodeDecodeError) as exc:
        raise InputError(
            f"{name} is neither an image nor a video geri can decode ({_reason(exc)})."
        ) from None
    with container:
        if not container.streams.video:
            raise InputError(f"{name} has no video stream (audio only?).")
        stream = container.streams.video[0]
        _check_size(stream.codec_context.width, stream.codec_context.height, max_pixels, name)
        stream.thread_type = "AUTO"
        duration = _duration(container, stream)
        interval = 1 / frames_per_second if frames_per_second > 0 else None
        if interval is not None and duration:
            interval = max(interval, duration / max_frames)
        due = _fixed_rate(interval) if interval is not None else None
        scenes = SceneFilter(scene_threshold)
        kept = 0
        try:
            for decoded in container.decode(stream):
                at = float(decoded.time or 0.0)
                if progress is not None:
                    progress(at, duration)
                if due is not None and not due(at):
                    continue  # decided by time alone: no need to convert the picture
                _check_size(decoded.width, decoded.height, max_pixels, name)
                image: PILImage = decoded.to_image()  # type: ignore[no-untyped-call]
                if due is None and not scenes.keep(image, at):
                    continue
                yield Frame(at, image)
                kept += 1
                if kept >= max_frames:
                    break
        except av.error.FFmpegError as exc:
            if kept == 0:
                raise InputError(f"{name} is damaged: {_reason(exc)}.") from None
        if kept == 0:
            raise InputError(f"{name} has no frames that could be decoded.")
        if progress is not None and duration:
            progress(duration, duration)


def timestamp(seconds: float) -> str:
    """'01:05' or '1:02:03' for a position in a video.

    >>> timestamp(65.4), timestamp(3723)
    ('01:05', '1:02:03')
    """
    whole = int(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"


def _fixed_rate(interval: float) -> Callable[[float], bool]:
    """A test that passes one frame per `interval` seconds."""
    due = 0.0

    def keep(at: float) -> bool:
        nonlocal due
        if at + 1e-6 < due:
            return False
        due = at + interval
        return True

    return keep


def _duration(container: object, stream: object) -> float | None:
    import av

    if getattr(stream, "duration", None) and getattr(stream, "time_base", None):
        return float(stream.duration * stream.time_base)  # type: ignore[attr-defined]
    total = getattr(container, "duration", None)
    return total / av.time_base if total else None


def _reason(exc: BaseException) -> str:
    return getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
