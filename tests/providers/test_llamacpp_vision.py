"""Local vision models (llava-style, with an mmproj projector) through llama-cpp-python.

No llava model and projector can be fetched here (the model hubs are offline and none ships on
PyPI), so the tests write a tiny projector with random weights for the real SmolLM2 model
(`tests/tinyclip.py`) and run llama.cpp's multimodal path (libmtmd, through llama-cpp-python's
Llava15ChatHandler) end to end: the image is decoded, encoded by the projector's ViT, embedded
into the prompt, and tokens are generated. What that cannot show is answer quality: the
projector's weights are random, so the words do not describe the image. Also run: the message
shape the chat handlers read, the registry making such a model a vision model, and a projector
file that is missing or is not a projector.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from subprocess import CompletedProcess

import pytest

from geri.providers.llamacpp import VISION_HANDLERS, vision_messages
from geri.registry import ModelRegistry
from geri.settings import LocalModel, Settings
from geri.store import open_store
from geri.types import Image, Message
from tests.tinyclip import IMAGE_SIZE, PATCH_SIZE, write_projector
from tests.vision.media import image_bytes

Geri = Callable[..., CompletedProcess[str]]


def test_images_are_sent_as_data_urls_in_the_openai_shape() -> None:
    messages = [
        Message("system", "Be brief."),
        Message("user", "What is this?", (Image(b"\x89PNG", "image/png"),)),
    ]
    assert vision_messages(messages) == [
        {"role": "system", "content": "Be brief."},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is this?"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw=="}},
            ],
        },
    ]


def test_every_handler_name_exists_in_llama_cpp() -> None:
    from llama_cpp import llama_chat_format

    assert all(hasattr(llama_chat_format, cls) for cls in VISION_HANDLERS.values())


def test_a_model_with_a_projector_is_a_vision_model(tmp_path: Path) -> None:
    settings = Settings(
        models=(
            LocalModel(
                id="llava",
                path=tmp_path / "l.gguf",
                mmproj=tmp_path / "mm.gguf",
                vision_handler="llava16",
            ),
            LocalModel(id="plain", path=tmp_path / "p.gguf"),
        )
    )
    registry = ModelRegistry(settings, open_store(tmp_path / "g.db"))
    llava = registry.get("llava")
    assert llava.kind == "vision"
    assert llava.metadata["mmproj"] == str(tmp_path / "mm.gguf")
    assert llava.metadata["vision_handler"] == "llava16"
    assert registry.get("plain").kind == "text"


@pytest.mark.parametrize(
    ("projector", "message"),
    [
        (None, "The vision projector of model 'smolvision' is missing"),
        (b"GGUF but not really a projector" * 100, "could not use the vision projector"),
    ],
    ids=["missing", "not-a-projector"],
)
def test_a_bad_projector_is_a_clear_error(
    geri_cli: Geri,
    geri_home: Path,
    smollm_path: Path,
    tmp_path: Path,
    projector: bytes | None,
    message: str,
) -> None:
    mmproj = tmp_path / "mmproj.gguf"
    if projector is not None:
        mmproj.write_bytes(projector)
    model = {"kind": "local", "id": "smolvision", "path": str(smollm_path), "mmproj": str(mmproj)}
    (geri_home / "config").mkdir(parents=True)
    (geri_home / "config" / "settings.json").write_text(json.dumps({"models": [model]}))
    (tmp_path / "a.png").write_bytes(image_bytes("PNG"))
    result = geri_cli("vision", str(tmp_path / "a.png"), "-m", "smolvision")
    assert result.returncode != 0
    assert message in result.stderr
    assert "Traceback" not in result.stderr


@pytest.fixture(scope="module")
def projectors(tmp_path_factory: pytest.TempPathFactory) -> dict[int, Path]:
    """Two projectors that cut an image into 2x2 and 3x3 patches: 4 and 9 prompt tokens."""
    folder = tmp_path_factory.mktemp("mmproj")
    return {
        (size // PATCH_SIZE) ** 2: write_projector(folder / f"mmproj-{size}.gguf", image_size=size)
        for size in (IMAGE_SIZE, IMAGE_SIZE + PATCH_SIZE)
    }


def test_an_image_is_answered_by_a_local_model_end_to_end(
    geri_cli: Geri, geri_home: Path, smollm_path: Path, projectors: dict[int, Path], tmp_path: Path
) -> None:
    models = [
        {"kind": "local", "id": f"vlm-{n}", "path": str(smollm_path), "mmproj": str(projector)}
        for n, projector in projectors.items()
    ]
    (geri_home / "config").mkdir(parents=True)
    (geri_home / "config" / "settings.json").write_text(json.dumps({"models": models}))
    (tmp_path / "photo.png").write_bytes(image_bytes("PNG"))
    prompt_tokens = {}
    for n in projectors:
        seen = geri_cli(
            "vision", str(tmp_path / "photo.png"), "What is in this image?", "-m", f"vlm-{n}",
            "--max-tokens", "8", "--json",
        )  # fmt: skip
        assert seen.returncode == 0, seen.stderr
        answer = json.loads(seen.stdout)
        assert answer["model"] == f"vlm-{n}"
        assert answer["text"].strip()
        assert 0 < answer["usage"]["output_tokens"] <= 8
        prompt_tokens[n] = answer["usage"]["input_tokens"]
    # the same question and image: the prompts differ by exactly the image's extra patches,
    # so the image was encoded and embedded in the prompt, one token per patch
    assert prompt_tokens[9] - prompt_tokens[4] == 9 - 4
