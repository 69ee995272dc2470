"""The GGUF checker on the real test model, cut-down copies of it, and hand-made headers."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

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
