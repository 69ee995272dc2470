"""`geri vision` from the command line, against mock OpenAI, Anthropic and Google servers."""

from __future__ import annotations

import base64
import io
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from subprocess import CompletedProcess

import pytest
from PIL import Image

from tests.mockserver import MockServer, Reply
from tests.providers.test_cloud_http import CASES
from tests.vision.media import BLUE, GREEN, RED, image_bytes, make_video

Geri = Callable[..., CompletedProcess[str]]
OK = {case.provider: case.ok for case in CASES}
KEYS = {"openai": "OPENAI_API_KEY", "anthropic": "ANTHROPIC_API_KEY", "google": "GEMINI_API_KEY"}


@pytest.fixture
def server() -> Iterator[MockServer]:
    with MockServer() as srv:
        yield srv


@pytest.fixture
def geri(geri_cli: Geri, geri_home: Path, server: MockServer) -> Geri:
    settings = {
        "providers": {
            "openai": {"base_url": f"{server.url}/v1"},
            "anthropic": {"base_url": server.url},
            "google": {"base_url": server.url},
        }
    }
    (geri_home / "config").mkdir(parents=True)
    (geri_home / "config" / "settings.json").write_text(json.dumps(settings))

    def run(*args: str, stdin: str | None = None, keys: bool = True) -> CompletedProcess[str]:
        env = {name: "sk-vision-test" for name in KEYS.values()} if keys else {}
        return geri_cli(*args, stdin=stdin, env=env)

    return run


def sent_images(body: dict) -> list[tuple[str, bytes]]:  # type: ignore[type-arg]
    """(mime type, bytes) of every image in an OpenAI, Anthropic or Gemini request body."""
    found = []
    for message in body.get("messages", []) + body.get("contents", []):
        parts = message.get("content") or message.get("parts") or []
        for part in parts if isinstance(parts, list) else []:
            if part.get("type") == "image_url":
                header, data = part["image_url"]["url"].split(",", 1)
                found.append((header[5:].split(";")[0], base64.b64decode(data)))
            elif part.get("type") == "image":
                found.append(
                    (part["source"]["media_type"], base64.b64decode(part["source"]["data"]))
                )
            elif "inline_data" in part:
                inline = part["inline_data"]
                found.append((inline["mime_type"], base64.b64decode(inline["data"])))
    return found


def test_an_image_goes_to_the_default_vision_model(
    geri: Geri, server: MockServer, tmp_path: Path
) -> None:
    png = image_bytes("PNG")
    (tmp_path / "shot.png").write_bytes(png)
    server.add(Reply(json=OK["openai"]))
    result = geri("vision", str(tmp_path / "shot.png"), "What is in it?", "--no-stream", "--json")
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert (answer["model"], answer["text"]) == ("gpt-4o", "Hello there")
    [request] = server.requests
    assert request.path == "/v1/chat/completions"
    assert request.json["model"] == "gpt-4o"
    assert sent_images(request.json) == [("image/png", png)]  # accepted as it is: unchanged
    assert request.json["messages"][-1]["content"][0] == {"type": "text", "text": "What is in it?"}


@pytest.mark.parametrize(
    ("model", "provider", "path"),
    [
        ("claude-sonnet-4-5", "anthropic", "/v1/messages"),
        ("gemini-2.5-flash", "google", "/v1beta/models/gemini-2.5-flash:generateContent"),
    ],
)
def test_claude_and_gemini_get_the_image_in_their_own_shape(
    geri: Geri, server: MockServer, tmp_path: Path, model: str, provider: str, path: str
) -> None:
    (tmp_path / "scan.bmp").write_bytes(image_bytes("BMP", size=(3000, 600)))
    server.add(Reply(json=OK[provider]))
    result = geri("vision", str(tmp_path / "scan.bmp"), "-m", model, "--no-stream")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "Hello there"
    [request] = server.requests
    assert request.path == path
    [(mime, data)] = sent_images(request.json)
    sent = Image.open(io.BytesIO(data))
    assert (mime, sent.format) == ("image/jpeg", "JPEG")  # BMP is accepted by neither
    longest = 1568 if provider == "anthropic" else 3000  # Anthropic's limit; Gemini's is 3072
    assert sent.width == longest
    assert abs(sent.height - longest / 5) <= 1


def test_an_image_on_stdin(geri: Geri, server: MockServer, geri_home: Path) -> None:
    server.add(Reply(json=OK["openai"]))
    png = image_bytes("PNG")
    keys = {name: "sk-vision-test" for name in KEYS.values()}
    proc = subprocess.run(  # bytes on stdin: the text-only helper will not do
        [sys.executable, "-m", "geri", "vision", "-", "Describe", "--no-stream"],
        input=png,
        capture_output=True,
        env={**os.environ, "GERI_HOME": str(geri_home), **keys},
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr.decode()
    assert proc.stdout.decode().strip() == "Hello there"
    assert sent_images(server.requests[0].json) == [("image/png", png)]


def test_a_video_is_analysed_frame_by_frame(geri: Geri, server: MockServer, tmp_path: Path) -> None:
    clip = make_video(tmp_path / "clip.mp4", [(RED, 1.0), (GREEN, 1.0), (BLUE, 1.0)])
    server.default = Reply(json=OK["openai"])
    result = geri("vision", str(clip), "What colour is it?", "--json")
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert [f["timestamp"] for f in answer["frames"]] == [0.0, 1.0, 2.0]
    assert answer["summary"].splitlines() == [
        "[00:00] Hello there",
        "[00:01] Hello there",
        "[00:02] Hello there",
    ]
    assert len(server.requests) == 3
    first = server.requests[0].json["messages"][-1]["content"][0]["text"]
    assert first.startswith("What colour is it?")
    assert "frame at 00:00" in first
    [(_, frame)] = sent_images(server.requests[1].json)
    pixel = Image.open(io.BytesIO(frame)).convert("RGB").resize((1, 1)).getpixel((0, 0))
    assert isinstance(pixel, tuple)
    assert pixel[1] > 150 > pixel[0]  # the second frame is the green scene

    lines = geri("vision", str(clip), "--fps", "1", "--max-frames", "2")
    assert lines.returncode == 0, lines.stderr
    assert lines.stdout.splitlines() == ["[00:00] Hello there", "[00:01] Hello there"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"name,age\nada,36\n", "is not an image. Give a PNG, JPEG"),
        (image_bytes("PNG")[:70], "is damaged or truncated"),
        (b"", "is empty"),
    ],
    ids=["csv", "truncated-png", "empty"],
)
def test_bad_input_fails_clearly_before_any_request(
    geri: Geri, server: MockServer, tmp_path: Path, content: bytes, message: str
) -> None:
    (tmp_path / "input.png").write_bytes(content)
    result = geri("vision", str(tmp_path / "input.png"))
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert server.requests == []


def test_no_key_and_wrong_models_name_the_fix(geri: Geri, tmp_path: Path) -> None:
    (tmp_path / "a.png").write_bytes(image_bytes("PNG"))
    no_key = geri("vision", str(tmp_path / "a.png"), keys=False)
    assert no_key.returncode != 0
    assert "gpt-4o: no API key — " in no_key.stderr
    assert "OPENAI_API_KEY" in no_key.stderr
    (tmp_path / "notes.txt").write_text("not an image")
    bad_and_no_key = geri("vision", str(tmp_path / "notes.txt"), keys=False)
    assert bad_and_no_key.returncode == 2  # the file is checked before a model is needed
    assert "is not an image" in bad_and_no_key.stderr
    unknown = geri("vision", str(tmp_path / "a.png"), "-m", "gpt-4x")
    assert "Unknown model 'gpt-4x'" in unknown.stderr
    missing = geri("vision", str(tmp_path / "nope.png"))
    assert missing.returncode == 2
    assert "No such file" in missing.stderr
