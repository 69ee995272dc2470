"""The GGUF checker on the real test model, cut-down copies of it, and hand-made headers."""

from __future__ import annotations

import contextlib
import json
import struct
from collections.abc import Callable
from pathlib import Path
from subprocess import CompletedProcess

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from geri.errors import ModelFileError
from geri.providers.gguf import read_gguf


def test_reads_the_real_model_header(smollm_path: Path) -> None:
    info = read_gguf(smollm_path)
    assert info.version == 3
    assert info.architecture == "llama"
    assert info.context_length == 8192
    assert info.quantization == "Q4_1"
    assert info.tensor_count == 272
    assert 130_000_000 < info.parameters < 140_000_000  # a 135M model
    assert info.chat_template is not None
    assert "<|im_start|>" in info.chat_template
    assert info.size_bytes == smollm_path.stat().st_size


@pytest.mark.parametrize("fraction", [0.6, 0.999])
def test_a_truncated_copy_is_refused_with_the_fix(
    smollm_path: Path, tmp_path: Path, fraction: float
) -> None:
    data = smollm_path.read_bytes()
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(data[: int(len(data) * fraction)])
    with pytest.raises(ModelFileError, match=r"truncated.*download"):
        read_gguf(cut)


def test_a_header_cut_mid_metadata_is_refused(smollm_path: Path, tmp_path: Path) -> None:
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(smollm_path.read_bytes()[:5000])
    with pytest.raises(ModelFileError, match="truncated or corrupt"):
        read_gguf(cut)


def test_a_text_file_named_gguf_is_refused(tmp_path: Path) -> None:
    fake = tmp_path / "model.gguf"
    fake.write_text("this is not a model\n")
    with pytest.raises(ModelFileError, match="not a GGUF model file"):
        read_gguf(fake)


def test_an_empty_file_is_refused(tmp_path: Path) -> None:
    empty = tmp_path / "empty.gguf"
    empty.write_bytes(b"")
    with pytest.raises(ModelFileError, match="not a GGUF"):
        read_gguf(empty)


def test_a_missing_file_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(ModelFileError, match="does not exist"):
        read_gguf(tmp_path / "nope.gguf")


def test_an_old_version_is_refused(tmp_path: Path) -> None:
    old = tmp_path / "v1.gguf"
    old.write_bytes(b"GGUF" + struct.pack("<IQQ", 1, 0, 0))
    with pytest.raises(ModelFileError, match="version 1"):
        read_gguf(old)


def test_absurd_counts_fail_fast_instead_of_looping(tmp_path: Path) -> None:
    hostile = tmp_path / "hostile.gguf"
    hostile.write_bytes(b"GGUF" + struct.pack("<IQQ", 3, 2**62, 2**62) + b"\0" * 64)
    with pytest.raises(ModelFileError, match="truncated or corrupt"):
        read_gguf(hostile)


def test_a_huge_string_length_is_bounded(tmp_path: Path) -> None:
    hostile = tmp_path / "hostile.gguf"
    hostile.write_bytes(b"GGUF" + struct.pack("<IQQQ", 3, 0, 1, 2**60) + b"key")
    with pytest.raises(ModelFileError, match="metadata key"):
        read_gguf(hostile)


def test_a_minimal_valid_header_without_tensors(tmp_path: Path) -> None:
    key, value = b"general.name", b"tiny"
    body = (
        b"GGUF"
        + struct.pack("<IQQ", 3, 0, 1)
        + struct.pack("<Q", len(key))
        + key
        + struct.pack("<IQ", 8, len(value))
        + value
    )
    path = tmp_path / "tiny.gguf"
    path.write_bytes(body)
    info = read_gguf(path)
    assert (info.name, info.tensor_count, info.parameters) == ("tiny", 0, 0)


def _with_u32(source: Path, target: Path, key: str, value: int) -> Path:
    """A copy of the GGUF `source` whose uint32 metadata entry `key` holds `value`."""
    data = bytearray(source.read_bytes())
    name = key.encode()
    at = data.index(struct.pack("<Q", len(name)) + name) + 8 + len(name)
    assert struct.unpack_from("<I", data, at)[0] == 4  # the entry is a uint32
    struct.pack_into("<I", data, at + 4, value)
    target.write_bytes(data)
    return target


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("llama.block_count", 1000, "declares 1000 layers but it holds tensors for 30"),
        ("llama.context_length", 2**32 - 1, "context length 4294967295 is not a sane"),
    ],
    ids=["block_count", "context_length"],
)
def test_a_real_model_with_lying_hyperparameters_is_refused_before_llama_cpp_sees_it(
    smollm_path: Path,
    tmp_path: Path,
    geri_home: Path,
    geri_cli: Callable[..., CompletedProcess[str]],
    key: str,
    value: int,
    message: str,
) -> None:
    bad = _with_u32(smollm_path, tmp_path / "lying.gguf", key, value)
    with pytest.raises(ModelFileError, match=message):
        read_gguf(bad)
    added = geri_cli("models", "add", str(bad))
    assert added.returncode == 1
    assert message in added.stderr
    assert "Traceback" not in added.stderr
    (geri_home / "config").mkdir(parents=True)
    entry = {"kind": "local", "id": "lying", "path": str(bad)}  # in the settings: never added
    (geri_home / "config" / "settings.json").write_text(json.dumps({"models": [entry]}))
    asked = geri_cli("ask", "-m", "lying", "hello")  # llama.cpp would abort: geri refuses first
    assert asked.returncode == 1, asked.stderr
    assert message in asked.stderr


@pytest.fixture(scope="module")
def real_header(smollm_path: Path) -> bytes:
    """The real model's first 64 KiB: its magic, version, counts and first metadata."""
    with smollm_path.open("rb") as file:
        return file.read(64 * 1024)


@given(data=st.data())
@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_a_mutated_header_is_read_or_refused_never_anything_else(
    real_header: bytes, tmp_path: Path, data: st.DataObject
) -> None:
    """Bytes flipped, cut or inserted anywhere in a real header: a `ModelFileError` or a header,
    quickly, never another exception, a hang or a huge allocation."""
    blob = bytearray(real_header)
    for _ in range(data.draw(st.integers(1, 8))):
        at = data.draw(st.integers(0, len(blob) - 1))
        match data.draw(st.sampled_from(["flip", "cut", "insert"])):
            case "flip":
                blob[at] = data.draw(st.integers(0, 255))
            case "cut":
                del blob[at:]
                if not blob:
                    blob = bytearray(b"G")
            case "insert":
                blob[at:at] = data.draw(st.binary(min_size=1, max_size=16))
    path = tmp_path / "mutated.gguf"
    path.write_bytes(bytes(blob))
    with contextlib.suppress(ModelFileError):
        read_gguf(path)
