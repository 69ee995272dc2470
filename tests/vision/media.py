"""Test images and videos, generated on the spot with Pillow and PyAV."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

from PIL import Image

RED, GREEN, BLUE = (220, 30, 30), (30, 200, 40), (40, 40, 220)


def image_bytes(
    fmt: str, size: tuple[int, int] = (64, 48), mode: str = "RGB", **save: object
) -> bytes:
    image = Image.new(mode, size, (200, 100, 50) if mode == "RGB" else (200, 100, 50, 128))
    for x in range(0, size[0], 8):  # some detail, so encoders have work to do
        image.putpixel((x, x * size[1] // size[0]), (0, 0, 0) if mode == "RGB" else (0, 0, 0, 255))
    out = io.BytesIO()
    image.save(out, fmt, **save)
    return out.getvalue()


def animated_gif() -> bytes:
    frames = [Image.new("RGB", (32, 32), colour) for colour in (RED, GREEN, BLUE)]
    out = io.BytesIO()
    frames[0].save(out, "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    return out.getvalue()


def png_declaring(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims `width` x `height` pixels (a decompression bomb)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\x00" * 16)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


def make_video(
    path: Path,
    scenes: list[tuple[tuple[int, int, int], float]],
    fps: int = 10,
    size: tuple[int, int] = (64, 48),
) -> Path:
    """An MP4 whose picture is one flat colour per scene, for the given seconds each."""
    import av

    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("mpeg4", rate=fps)
        stream.width, stream.height = size
        stream.pix_fmt = "yuv420p"
        for colour, seconds in scenes:
            for _ in range(round(seconds * fps)):
                frame = av.VideoFrame.from_image(Image.new("RGB", size, colour))
                for packet in stream.encode(frame):
                    container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path
