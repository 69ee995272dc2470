"""Image input: real format by content, limits, conversion and resizing to the provider's rules."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image as Pillow

from geri.errors import InputError
from geri.settings import Vision
from geri.specs import PROVIDERS, ImageRules
from geri.vision.image import open_image, prepare_image, read_media
from tests.mockserver import MockServer, Reply
from tests.vision.media import animated_gif, image_bytes, make_video, png_declaring

OPENAI = PROVIDERS["openai"].images
ANTHROPIC = PROVIDERS["anthropic"].images
LOCAL = PROVIDERS["llama.cpp"].images
PIXELS = 50_000_000


def decoded(data: bytes) -> Pillow.Image:
    return Pillow.open(io.BytesIO(data))


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP"])
def test_an_accepted_image_goes_out_unchanged(fmt: str) -> None:
    data = image_bytes(fmt)
    image = prepare_image(data, "x", OPENAI, max_pixels=PIXELS)
    assert image.data == data
    assert image.mime_type == f"image/{fmt.lower()}"


def test_the_format_comes_from_the_content_not_the_name(tmp_path: Path) -> None:
    misnamed = tmp_path / "photo.jpg"
    misnamed.write_bytes(image_bytes("PNG"))
    media = read_media(str(misnamed), stdin=None, limits=Vision())
    assert prepare_image(media.data, media.name, OPENAI, max_pixels=PIXELS).mime_type == "image/png"


@pytest.mark.parametrize(("fmt", "mime"), [("BMP", "image/jpeg"), ("TIFF", "image/jpeg")])
def test_formats_no_provider_takes_are_converted(fmt: str, mime: str) -> None:
    image = prepare_image(image_bytes(fmt), "x", OPENAI, max_pixels=PIXELS)
    assert image.mime_type == mime
    assert decoded(image.data).size == (64, 48)


def test_transparency_is_kept_as_png() -> None:
    image = prepare_image(image_bytes("WEBP", mode="RGBA"), "x", LOCAL, max_pixels=PIXELS)
    assert image.mime_type == "image/png"
    assert decoded(image.data).mode == "RGBA"


def test_an_animated_gif_sends_its_first_frame() -> None:
    image = prepare_image(animated_gif(), "x", OPENAI, max_pixels=PIXELS)
    assert image.mime_type in ("image/png", "image/jpeg")
    assert not getattr(decoded(image.data), "is_animated", False)


def test_large_images_are_scaled_to_the_providers_longest_side() -> None:
    big = image_bytes("PNG", size=(4000, 1000))
    anthropic = decoded(prepare_image(big, "x", ANTHROPIC, max_pixels=PIXELS).data)
    assert anthropic.size == (1568, 392)
    local = decoded(prepare_image(big, "x", LOCAL, max_pixels=PIXELS).data)
    assert max(local.size) == LOCAL.max_side


def test_an_image_over_the_byte_limit_is_recompressed() -> None:
    noisy = Pillow.effect_noise((1000, 1000), 100).convert("RGB")
    out = io.BytesIO()
    noisy.save(out, "PNG")
    rules = ImageRules(max_side=2048, max_bytes=300_000)
    assert len(out.getvalue()) > rules.max_bytes
    image = prepare_image(out.getvalue(), "x", rules, max_pixels=PIXELS)
    assert image.mime_type == "image/jpeg"
    assert len(image.data) <= rules.max_bytes


def test_exif_orientation_is_applied() -> None:
    exif = Pillow.Exif()
    exif[0x0112] = 6  # rotated 90 degrees
    data = image_bytes("JPEG", size=(80, 40), exif=exif.tobytes())
    assert decoded(prepare_image(data, "x", OPENAI, max_pixels=PIXELS).data).size == (40, 80)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "x is empty"),
        (b"just some text, not pixels", "x is not an image. Give a PNG, JPEG"),
        (image_bytes("PNG")[:60], "x is damaged or truncated"),
        (png_declaring(10_000, 6_000), "10000x6000 pixels, over the limit of 50,000,000"),
        (png_declaring(30_000, 30_000), "declares too many pixels to decode safely"),
        (image_bytes("PPM"), "x is a PPM image, which geri does not send"),
    ],
    ids=["empty", "text", "truncated", "over-the-limit", "decompression-bomb", "unsupported"],
)
def test_bad_images_get_clear_errors(data: bytes, message: str) -> None:
    with pytest.raises(InputError, match=message.replace(".", r"\.")):
        prepare_image(data, "x", OPENAI, max_pixels=PIXELS)


def test_a_video_given_as_an_image_says_so(tmp_path: Path) -> None:
    video = make_video(tmp_path / "v.mp4", [((1, 2, 3), 0.5)]).read_bytes()
    with pytest.raises(InputError, match="It looks like a video"):
        prepare_image(video, "v", OPENAI, max_pixels=PIXELS)


def test_sources_files_stdin_and_urls(tmp_path: Path) -> None:
    png = image_bytes("PNG")
    (tmp_path / "a.png").write_bytes(png)
    assert read_media(str(tmp_path / "a.png"), stdin=None, limits=Vision()).data == png
    from_stdin = read_media("-", stdin=io.BytesIO(png), limits=Vision())
    assert (from_stdin.name, from_stdin.data, from_stdin.video) == ("stdin", png, False)
    video = make_video(tmp_path / "v.mp4", [((1, 2, 3), 0.5)])
    on_disk = read_media(str(video), stdin=None, limits=Vision())
    assert (on_disk.video, on_disk.path, on_disk.data) == (True, video, b"")  # not read whole
    with MockServer() as server:
        server.add(Reply(body=png, headers={"content-type": "image/png"}))
        assert read_media(f"{server.url}/a.png", stdin=None, limits=Vision()).data == png
        server.add(Reply(404, body=b"nope"))
        with pytest.raises(InputError, match="answered 404"):
            read_media(f"{server.url}/missing.png", stdin=None, limits=Vision())


@pytest.mark.parametrize(
    ("source", "message"),
    [("missing.png", "No such file"), (".", "is a directory"), ("-", "Nothing on stdin")],
)
def test_bad_sources(source: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        read_media(source, stdin=None, limits=Vision())


def test_an_image_over_the_size_limit_is_refused_before_reading(tmp_path: Path) -> None:
    big = tmp_path / "big.png"
    big.write_bytes(image_bytes("PNG") + b"\0" * (2 * 2**20))
    with pytest.raises(InputError, match="over the 1 MiB image limit"):
        read_media(str(big), stdin=None, limits=Vision(max_input_mb=1))


def test_formats_outside_the_allow_list_never_reach_a_decoder(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Decoding an EPS file starts Ghostscript; it is refused before any decoder runs."""
    from PIL import EpsImagePlugin

    def ghostscript(*args: object, **kwargs: object) -> None:
        raise AssertionError("Ghostscript was started")

    monkeypatch.setattr(EpsImagePlugin, "Ghostscript", ghostscript)
    eps = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n"
    with pytest.raises(InputError, match="is a EPS image, which geri does not send"):
        open_image(eps, "drawing.eps", max_pixels=10**6)


def test_a_url_that_trickles_is_cut_at_the_overall_deadline() -> None:
    import threading
    import time
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Trickle(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", "1000")
            self.end_headers()
            for _ in range(1000):  # one byte every 0.2 s: each read is quick, the whole is not
                try:
                    self.wfile.write(b"x")
                    self.wfile.flush()
                except OSError:
                    return
                time.sleep(0.2)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Trickle)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    started = time.monotonic()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/slow.png"
        with pytest.raises(InputError, match="took longer than 1 s"):
            read_media(url, stdin=None, limits=Vision(url_timeout=1.0))
    finally:
        server.shutdown()
    assert time.monotonic() - started < 5
