"""The daemon's VisionService over a real gRPC channel, with a mock OpenAI on 127.0.0.1."""

from __future__ import annotations

import asyncio
import base64
import io
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import grpc
import pytest
from PIL import Image

from geri.daemon.server import DaemonServer
from geri.engine import Engine
from geri.paths import Paths
from geri.settings import Settings
from geri.store import open_store
from geri.wire._pb.geri.v1 import vision_pb2 as pb
from geri.wire._pb.geri.v1 import vision_pb2_grpc, wolf_pb2
from tests.mockserver import MockServer, Reply
from tests.vision.media import BLUE, GREEN, RED, image_bytes, make_video

ANSWER = {
    "choices": [{"message": {"content": "A flat colour."}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 30, "completion_tokens": 4},
}


@pytest.fixture
def cloud() -> Iterator[MockServer]:
    with MockServer() as server:
        server.default = Reply(json=ANSWER)
        yield server


@pytest.fixture
async def vision(
    paths: Paths, cloud: MockServer, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[vision_pb2_grpc.VisionServiceStub]:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-daemon-vision")
    settings = Settings.model_validate(
        {
            "providers": {"openai": {"base_url": f"{cloud.url}/v1"}},
            "daemon": {"port": 0, "preload": False},
        }
    )
    server = DaemonServer(paths, settings, Engine(settings, open_store(paths.database)))
    ready: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(server.run(on_ready=lambda up: ready.set_result(up.address)))
    channel = grpc.aio.insecure_channel(await asyncio.wait_for(ready, 20))
    yield vision_pb2_grpc.VisionServiceStub(channel)
    await channel.close()
    server.stopping.set()
    await task


def chat_calls(cloud: MockServer) -> list:  # type: ignore[type-arg]
    """The model calls the mock received (the daemon's health probes left out)."""
    return [r for r in cloud.requests if r.path.endswith("/chat/completions")]


def images_sent(cloud: MockServer) -> list[bytes]:
    found = []
    for request in chat_calls(cloud):
        for part in request.json["messages"][-1]["content"]:
            if part["type"] == "image_url":
                found.append(base64.b64decode(part["image_url"]["url"].split(",", 1)[1]))
    return found


async def test_analyze_image(vision: vision_pb2_grpc.VisionServiceStub, cloud: MockServer) -> None:
    png = image_bytes("PNG")
    reply = await vision.AnalyzeImage(pb.ImageAnalysisRequest(image=png, question="Colour?"))
    assert reply.text == "A flat colour."
    assert reply.details.model_used == "gpt-4o"
    assert reply.details.tokens_in == 30
    assert images_sent(cloud) == [png]


async def test_a_non_image_is_invalid_argument(
    vision: vision_pb2_grpc.VisionServiceStub, cloud: MockServer
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as failed:
        await vision.AnalyzeImage(pb.ImageAnalysisRequest(image=b"%PDF-1.7 not an image"))
    assert failed.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "the image is not an image" in (failed.value.details() or "")
    assert chat_calls(cloud) == []


async def test_analyze_video(
    vision: vision_pb2_grpc.VisionServiceStub, cloud: MockServer, tmp_path: Path
) -> None:
    clip = make_video(tmp_path / "c.mp4", [(RED, 1.0), (GREEN, 1.0), (BLUE, 1.0)]).read_bytes()
    reply = await vision.AnalyzeVideo(pb.VideoAnalysisRequest(video=clip, question="Colour?"))
    assert [round(f.timestamp_seconds, 1) for f in reply.frames] == [0.0, 1.0, 2.0]
    assert reply.summary.splitlines()[1] == "[00:01] A flat colour."
    assert reply.model_used == "gpt-4o"
    fixed = await vision.AnalyzeVideo(
        pb.VideoAnalysisRequest(video=clip, frames_per_second=2, max_frames=3)
    )
    assert [round(f.timestamp_seconds, 1) for f in fixed.frames] == [0.0, 1.0, 2.0]  # spread
    with pytest.raises(grpc.aio.AioRpcError) as failed:
        await vision.AnalyzeVideo(pb.VideoAnalysisRequest(video=b"no video here" * 20))
    assert failed.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_analyze_video_stream_answers_each_new_scene_as_it_comes(
    vision: vision_pb2_grpc.VisionServiceStub, cloud: MockServer
) -> None:
    red, blue = image_bytes("PNG", size=(32, 32)), None

    out = io.BytesIO()
    Image.new("RGB", (32, 32), BLUE).save(out, "PNG")
    blue = out.getvalue()
    sent = asyncio.Queue[pb.VideoStreamChunk | None]()

    async def frames() -> AsyncIterator[pb.VideoStreamChunk]:
        while (chunk := await sent.get()) is not None:
            yield chunk

    call = vision.AnalyzeVideoStream(frames())
    await sent.put(pb.VideoStreamChunk(frame=red, timestamp_seconds=0.0, question="What now?"))
    first = await call.read()
    assert (first.frame.timestamp_seconds, first.frame.text) == (0.0, "A flat colour.")
    await sent.put(pb.VideoStreamChunk(frame=red, timestamp_seconds=0.5))  # the same picture
    await sent.put(pb.VideoStreamChunk(frame=blue, timestamp_seconds=1.0))
    second = await call.read()
    assert second.frame.timestamp_seconds == 1.0
    await sent.put(None)
    assert await call.read() == grpc.aio.EOF
    calls = chat_calls(cloud)
    assert len(calls) == 2  # the repeated frame was not sent
    assert calls[0].json["messages"][-1]["content"][0]["text"].startswith("What now?")


async def test_analyze_image_with_a_local_vision_model(
    paths: Paths, smollm_path: Path, tmp_path: Path
) -> None:
    """The real SmolLM2 model with a tiny random projector (tests/tinyclip.py): the daemon
    encodes the image with llama.cpp's multimodal path and the model answers."""
    from tests.tinyclip import write_projector

    projector = write_projector(tmp_path / "mmproj.gguf")
    settings = Settings.model_validate(
        {
            "models": [
                {"kind": "local", "id": "vlm", "path": str(smollm_path), "mmproj": str(projector)}
            ],
            "daemon": {"port": 0, "preload": False},
        }
    )
    server = DaemonServer(paths, settings, Engine(settings, open_store(paths.database)))
    ready: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(server.run(on_ready=lambda up: ready.set_result(up.address)))
    try:
        async with grpc.aio.insecure_channel(await asyncio.wait_for(ready, 20)) as channel:
            stub = vision_pb2_grpc.VisionServiceStub(channel)
            reply = await stub.AnalyzeImage(
                pb.ImageAnalysisRequest(
                    image=image_bytes("PNG"),
                    question="What is in this image?",
                    model="vlm",
                    parameters=wolf_pb2.Parameters(max_tokens=8, temperature=0.0),
                )
            )
    finally:
        server.stopping.set()
        await task
    assert reply.text.strip()
    assert reply.details.model_used == "vlm"
    assert 0 < reply.details.tokens_out <= 8
    assert reply.details.tokens_in > 4  # the prompt's text and the image's 4 patch tokens
