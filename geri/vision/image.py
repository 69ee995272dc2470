"""Image input: read from a file, URL or stdin; check with Pillow; fit to the provider's rules.

The format is whatever the bytes are, never what the name says. Before any pixel is decoded the
declared size is checked against `vision.max_pixels`, so a small file that would expand to
gigabytes (a decompression bomb) is refused cheaply. An image the provider accepts as it is goes
out byte for byte; otherwise it is turned upright (EXIF), cut to its first frame if animated,
scaled so its longest side fits, and encoded as PNG (transparency) or JPEG.
"""

from __future__ import annotations

import io
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from geri.errors import InputError
from geri.inputs import open_regular, read_capped, spool
from geri.settings import Vision as VisionSettings
from geri.specs import ImageRules
from geri.types import Image

if TYPE_CHECKING:
    from PIL.Image import Image as PILImage

READABLE = ("PNG", "JPEG", "WEBP", "GIF", "BMP", "TIFF")
ORIENTATION = 0x0112  # the EXIF tag
MIME = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp", "GIF": "image/gif"}


@dataclass(frozen=True, slots=True)
class Media:
    """An image or video to analyse: a local video stays a path (it may be gigabytes)."""

    name: str
    video: bool
    data: bytes = b""
    path: Path | None = None


def read_media(source: str, *, stdin: BinaryIO | None, limits: VisionSettings) -> Media:
    """`source` (a file path, an http(s) URL, or '-' for stdin) sniffed as image or video.

    Stdin is read within the image limit, or spooled to a temporary file within the video limit
    for a video; a file must be a regular file within the same limits.
    """
    image_max, video_max = limits.max_input_mb * 2**20, limits.max_video_mb * 2**20
    if source == "-":
        head = stdin.read(64) if stdin else b""
        if not head:
            raise InputError("Nothing on stdin: pipe an image or video in, or give a file.")
        assert stdin is not None
        if looks_like_video(head):
            path = spool(stdin, head, video_max, "The video on stdin", "vision.max_video_mb")
            return Media("stdin", True, path=path)
        rest = read_capped(
            stdin, image_max - len(head), "The image on stdin", "vision.max_input_mb"
        )
        return Media("stdin", False, head + rest)
    if source.startswith(("http://", "https://")):
        return _sniffed(source, _fetch(source, video_max, limits.url_timeout), image_max)
    path = Path(source).expanduser()
    if not path.exists():
        raise InputError(f"No such file: {source}.")
    with open_regular(path, "The input") as file:
        head = file.read(64)
        size = os.fstat(file.fileno()).st_size
        video = looks_like_video(head)
        limit, setting = (video_max, "max_video_mb") if video else (image_max, "max_input_mb")
        if size > limit:
            raise InputError(
                f"{source} is {size / 2**20:.0f} MiB, over the {limit // 2**20} MiB "
                f"{'video' if video else 'image'} limit (vision.{setting})."
            )
        if video:
            return Media(source, True, path=path)
        return Media(source, False, head + read_capped(file, image_max, source))


def _sniffed(name: str, data: bytes, image_max: int) -> Media:
    if looks_like_video(data):
        return Media(name, True, data)
    return Media(name, False, _capped(data, name, image_max))


def looks_like_video(data: bytes) -> bool:
    """True when `data` starts like a common video container (MP4/MOV, MKV/WebM, AVI, MPEG)."""
    if data[4:8] == b"ftyp":  # ISO media, except the still-image brands (HEIC, AVIF)
        return data[8:11] not in (b"hei", b"mif", b"avi")
    if data.startswith(b"RIFF"):
        return data[8:12] == b"AVI "
    return data.startswith((b"\x1aE\xdf\xa3", b"OggS", b"\x00\x00\x01\xba"))


def open_image(data: bytes, name: str, *, max_pixels: int) -> PILImage:
    """`data` decoded by Pillow, or an `InputError` that says what is wrong with it."""
    from PIL import Image as Pillow
    from PIL import UnidentifiedImageError

    if not data:
        raise InputError(f"{name} is empty.")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Pillow.DecompressionBombWarning)
            image = Pillow.open(io.BytesIO(data))  # reads the header only
            if image.format not in READABLE:  # before any decoder runs (EPS starts Ghostscript)
                raise InputError(
                    f"{name} is a {image.format} image, which geri does not send to vision "
                    "models: convert it to PNG or JPEG."
                )
            width, height = image.size
            if width * height > max_pixels:
                raise InputError(
                    f"{name} is {width}x{height} pixels, over the limit of {max_pixels:,} "
                    "(vision.max_pixels); scale it down first."
                )
            image.load()
    except UnidentifiedImageError:
        hint = (
            " It looks like a video: geri vision reads videos too, if PyAV can decode it."
            if looks_like_video(data)
            else " Give a PNG, JPEG, WebP, GIF, BMP or TIFF file."
        )
        raise InputError(f"{name} is not an image.{hint}") from None
    except (Pillow.DecompressionBombError, Pillow.DecompressionBombWarning):
        raise InputError(
            f"{name} declares too many pixels to decode safely (over {max_pixels:,}, "
            "vision.max_pixels)."
        ) from None
    except OSError as exc:
        raise InputError(f"{name} is damaged or truncated: {exc}.") from None
    return image


def prepare_image(data: bytes, name: str, rules: ImageRules, *, max_pixels: int) -> Image:
    """`data` as an `Image` the provider with `rules` accepts."""
    image = open_image(data, name, max_pixels=max_pixels)
    return fit_image(image, rules, original=data)


def fit_image(image: PILImage, rules: ImageRules, original: bytes | None = None) -> Image:
    """`image` converted, turned upright and scaled to `rules`; the original bytes if it fits."""
    from PIL import Image as Pillow
    from PIL import ImageOps

    fmt = image.format or ""
    animated = getattr(image, "is_animated", False)
    turned = image.getexif().get(ORIENTATION, 1) not in (None, 1)
    fits = max(image.size) <= rules.max_side
    if (
        original is not None
        and fmt in rules.formats
        and not (animated or turned)
        and fits
        and len(original) <= rules.max_bytes
    ):
        return Image(original, MIME[fmt])
    if animated:
        image.seek(0)
    frame = ImageOps.exif_transpose(image) if turned else image.copy()
    if not fits:
        frame.thumbnail((rules.max_side, rules.max_side), Pillow.Resampling.LANCZOS)
    alpha = frame.mode in ("RGBA", "LA") or (frame.mode == "P" and "transparency" in frame.info)
    if alpha and "PNG" in rules.formats:
        encoded = _encode(frame.convert("RGBA"), "PNG")
        if len(encoded) <= rules.max_bytes:
            return Image(encoded, "image/png")
    rgb = frame.convert("RGB")
    for scale in (1.0, 0.75, 0.5, 0.35, 0.25):
        smaller = (
            rgb
            if scale == 1.0
            else rgb.resize(
                (max(1, round(rgb.width * scale)), max(1, round(rgb.height * scale))),
                Pillow.Resampling.LANCZOS,
            )
        )
        for quality in (90, 75, 60):
            encoded = _encode(smaller, "JPEG", quality=quality)
            if len(encoded) <= rules.max_bytes:
                return Image(encoded, "image/jpeg")
    raise InputError(
        f"The image stays over the provider's limit of {rules.max_bytes:,} bytes even "
        "compressed and scaled down; crop or shrink it first."
    )


def _encode(image: PILImage, fmt: str, **options: int) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **options)
    return out.getvalue()


def _capped(data: bytes, name: str, max_bytes: int) -> bytes:
    if len(data) > max_bytes:
        raise InputError(f"{name} holds over {max_bytes // 2**20} MiB, the limit for this input.")
    return data


def _fetch(url: str, max_bytes: int, timeout: float) -> bytes:
    """`url`'s body, streamed: refused past `max_bytes`, or when the whole transfer takes
    longer than `timeout` seconds (a server that trickles bytes never resets the clock)."""
    import time

    import httpx

    deadline = time.monotonic() + timeout
    try:
        with httpx.stream("GET", url, timeout=timeout, follow_redirects=True) as response:
            if response.status_code >= 400:
                raise InputError(f"{url} answered {response.status_code}; check the address.")
            chunks, size = [], 0
            for chunk in response.iter_bytes():
                size += len(chunk)
                if size > max_bytes:
                    raise InputError(f"{url} is over the {max_bytes // 2**20} MiB limit.")
                if time.monotonic() > deadline:
                    raise InputError(
                        f"{url} took longer than {timeout:g} s to arrive (vision.url_timeout)."
                    )
                chunks.append(chunk)
    except httpx.HTTPError as exc:
        raise InputError(f"Cannot fetch {url}: {type(exc).__name__} ({exc}).") from None
    return b"".join(chunks)
