"""Reading and checking GGUF model files before a runtime touches them.

llama.cpp trusts the file it is given: a download cut short or a text file renamed `.gguf`
ends in an obscure loader error or worse. So before loading, geri reads the whole header itself
(magic, version, every metadata entry, every tensor description) and checks that the tensor data
the header promises is really in the file. The same pass yields the metadata geri shows and
uses: architecture, context length, chat template, quantisation and parameter count.

The reader works on a memory map and bounds every length against the bytes that remain, so a
hostile or corrupt header fails fast with `ModelFileError` instead of allocating or looping.
"""

from __future__ import annotations

import mmap
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from geri.errors import InputError, ModelFileError
from geri.inputs import open_regular

MAGIC = b"GGUF"
MAX_CONTEXT = 1 << 24  # 16M tokens: beyond any model there is
DEFAULT_ALIGNMENT = 32

# value type -> struct format of a scalar
_SCALARS: dict[int, str] = {
    0: "<B",
    1: "<b",
    2: "<H",
    3: "<h",
    4: "<I",
    5: "<i",
    6: "<f",
    7: "<?",
    10: "<Q",
    11: "<q",
    12: "<d",
}
_STRING, _ARRAY = 8, 9

# ggml tensor type -> (elements per block, bytes per block), from ggml's type traits
GGML_BLOCKS: dict[int, tuple[int, int]] = {
    0: (1, 4),  # F32
    1: (1, 2),  # F16
    2: (32, 18),  # Q4_0
    3: (32, 20),  # Q4_1
    6: (32, 22),  # Q5_0
    7: (32, 24),  # Q5_1
    8: (32, 34),  # Q8_0
    9: (32, 40),  # Q8_1
    10: (256, 84),  # Q2_K
    11: (256, 110),  # Q3_K
    12: (256, 144),  # Q4_K
    13: (256, 176),  # Q5_K
    14: (256, 210),  # Q6_K
    15: (256, 292),  # Q8_K
    16: (256, 66),  # IQ2_XXS
    17: (256, 74),  # IQ2_XS
    18: (256, 98),  # IQ3_XXS
    19: (256, 50),  # IQ1_S
    20: (32, 18),  # IQ4_NL
    21: (256, 110),  # IQ3_S
    22: (256, 82),  # IQ2_S
    23: (256, 136),  # IQ4_XS
    24: (1, 1),  # I8
    25: (1, 2),  # I16
    26: (1, 4),  # I32
    27: (1, 8),  # I64
    28: (1, 8),  # F64
    29: (256, 56),  # IQ1_M
    30: (1, 2),  # BF16
    34: (256, 54),  # TQ1_0
    35: (256, 66),  # TQ2_0
    39: (32, 17),  # MXFP4
    40: (64, 36),  # NVFP4
    41: (128, 18),  # Q1_0
}

# llama.cpp's general.file_type values -> the usual quantisation names
FILE_TYPES: dict[int, str] = {
    0: "F32",
    1: "F16",
    2: "Q4_0",
    3: "Q4_1",
    7: "Q8_0",
    8: "Q5_0",
    9: "Q5_1",
    10: "Q2_K",
    11: "Q3_K_S",
    12: "Q3_K_M",
    13: "Q3_K_L",
    14: "Q4_K_S",
    15: "Q4_K_M",
    16: "Q5_K_S",
    17: "Q5_K_M",
    18: "Q6_K",
    32: "BF16",
    36: "TQ1_0",
    37: "TQ2_0",
}


@dataclass(frozen=True, slots=True)
class GGUFInfo:
    """The parts of a GGUF header geri uses. Arrays in `metadata` are replaced by their length."""

    path: Path
    version: int
    size_bytes: int
    tensor_count: int
    data_offset: int
    metadata: dict[str, Any] = field(repr=False)
    parameters: int

    @property
    def architecture(self) -> str:
        return str(self.metadata.get("general.architecture", "unknown"))

    @property
    def name(self) -> str:
        return str(self.metadata.get("general.name") or self.path.stem)

    @property
    def context_length(self) -> int | None:
        value = self.metadata.get(f"{self.architecture}.context_length")
        return int(value) if isinstance(value, int) else None

    @property
    def chat_template(self) -> str | None:
        value = self.metadata.get("tokenizer.chat_template")
        return value if isinstance(value, str) and value.strip() else None

    @property
    def quantization(self) -> str | None:
        file_type = self.metadata.get("general.file_type")
        return FILE_TYPES.get(file_type) if isinstance(file_type, int) else None


class _Cursor:
    """Bounds-checked little-endian reads over a buffer."""

    def __init__(self, buf: mmap.mmap, path: Path) -> None:
        self.buf, self.pos, self.end, self.path = buf, 0, len(buf), path

    def fail(self, what: str) -> ModelFileError:
        return ModelFileError(
            f"{self.path} is truncated or corrupt ({what} at byte {self.pos}). "
            "Download it again, or run 'geri install' to fetch a verified copy."
        )

    def need(self, n: int, what: str) -> None:
        if n < 0 or self.pos + n > self.end:
            raise self.fail(what)

    def scalar(self, fmt: str, what: str) -> Any:
        size = struct.calcsize(fmt)
        self.need(size, what)
        (value,) = struct.unpack_from(fmt, self.buf, self.pos)
        self.pos += size
        return value

    def u32(self, what: str) -> int:
        return int(self.scalar("<I", what))

    def u64(self, what: str) -> int:
        return int(self.scalar("<Q", what))

    def string(self, what: str) -> str:
        n = self.u64(what)
        self.need(n, what)
        raw = self.buf[self.pos : self.pos + n]
        self.pos += n
        return raw.decode("utf-8", errors="replace")

    def skip_string(self, what: str) -> None:
        n = self.u64(what)
        self.need(n, what)
        self.pos += n

    def value(self, vtype: int, what: str) -> Any:
        if vtype in _SCALARS:
            return self.scalar(_SCALARS[vtype], what)
        if vtype == _STRING:
            return self.string(what)
        if vtype == _ARRAY:
            item_type, count = self.u32(what), self.u64(what)
            if item_type in _SCALARS:
                self.need(count * struct.calcsize(_SCALARS[item_type]), what)
                self.pos += count * struct.calcsize(_SCALARS[item_type])
            elif item_type == _STRING:
                self.need(count * 8, what)
                for _ in range(count):
                    self.skip_string(what)
            else:
                raise self.fail(f"unsupported array item type {item_type} in {what}")
            return count
        raise self.fail(f"unknown value type {vtype} in {what}")


def read_gguf(path: Path) -> GGUFInfo:
    """Check `path` is a complete GGUF file and return its header.

    Raises `ModelFileError` naming the problem and the fix when the file is missing, is not
    GGUF, has an unreadable header, or is shorter than its tensors need.
    """
    path = Path(path)
    try:
        with open_regular(path, "Model file") as fh:
            size = os.fstat(fh.fileno()).st_size
            head = fh.read(4)
            if head != MAGIC:
                raise ModelFileError(
                    f"{path} is not a GGUF model file (it starts with {head!r}, not b'GGUF'). "
                    "geri runs GGUF files: convert the model with llama.cpp's converter or "
                    "download a .gguf build of it."
                )
            with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as buf:
                return _parse(buf, path, size)
    except InputError as exc:  # missing, unreadable, or not a regular file (never opened)
        if not path.exists():
            raise ModelFileError(
                f"Model file {path} does not exist. Check the path, or run 'geri models list'."
            ) from None
        raise ModelFileError(str(exc)) from None


def _parse(buf: mmap.mmap, path: Path, size: int) -> GGUFInfo:
    cur = _Cursor(buf, path)
    cur.pos = 4
    version = cur.u32("version")
    if version not in (2, 3):
        raise ModelFileError(
            f"{path} uses GGUF version {version}; geri reads versions 2 and 3. "
            "Convert it again with a current llama.cpp."
        )
    tensor_count = cur.u64("tensor count")
    kv_count = cur.u64("metadata count")
    # every entry and tensor description takes more than 8 bytes: reject absurd counts early
    cur.need(min(tensor_count, kv_count) * 8, "header counts")
    metadata: dict[str, Any] = {}
    for _ in range(kv_count):
        key = cur.string("metadata key")
        metadata[key] = cur.value(cur.u32(key), key)

    tensors: list[tuple[int, int]] = []  # (offset, bytes); bytes -1 when the type is unknown
    names: set[str] = set()
    parameters = 0
    for _ in range(tensor_count):
        name = cur.string("tensor name")
        names.add(name)
        n_dims = cur.u32(name)
        cur.need(n_dims * 8, name)
        elements = 1
        for _ in range(n_dims):
            elements *= cur.u64(name)
        ggml_type, offset = cur.u32(name), cur.u64(name)
        parameters += elements
        block = GGML_BLOCKS.get(ggml_type)
        tensors.append((offset, elements // block[0] * block[1] if block else -1))

    alignment = metadata.get("general.alignment", DEFAULT_ALIGNMENT)
    if not isinstance(alignment, int) or alignment <= 0:
        raise cur.fail("invalid general.alignment")
    data_offset = -(-cur.pos // alignment) * alignment
    known = [offset + nbytes for offset, nbytes in tensors if nbytes >= 0]
    needed = data_offset + max(known) if known else cur.pos
    if needed > size:
        raise ModelFileError(
            f"{path} is truncated: its tensors need {needed:,} bytes but the file has {size:,}. "
            "The download was probably cut short; run 'geri install' again to resume it, "
            "or download the file again."
        )
    _check_structure(path, metadata, names)
    return GGUFInfo(path, version, size, tensor_count, data_offset, metadata, parameters)


def _check_structure(path: Path, metadata: dict[str, Any], names: set[str]) -> None:
    """The hyperparameters agree with the tensors, and are within sane bounds.

    llama.cpp believes the header: a `block_count` larger than the layers present, or an
    absurd context length, aborts the whole process (SIGABRT) or asks for terabytes. Checked
    here, such a file is refused with a message, before llama.cpp sees it.
    """
    arch = str(metadata.get("general.architecture", ""))
    if arch == "clip":  # a vision projector: another layout, checked by its loader
        return
    broken = f"{path} is not a model llama.cpp can load"
    blocks = metadata.get(f"{arch}.block_count")
    if isinstance(blocks, int):
        present = {n.split(".")[1] for n in names if n.startswith("blk.") and n.count(".") >= 2}
        if present != {str(i) for i in range(blocks)}:
            raise ModelFileError(
                f"{broken}: its header declares {blocks} layers but it holds tensors for "
                f"{len(present)}. The file is damaged or was written wrongly."
            )
    window = metadata.get(f"{arch}.context_length")
    if window is not None and not (isinstance(window, int) and 0 < window <= MAX_CONTEXT):
        raise ModelFileError(
            f"{broken}: its context length {window!r} is not a sane number of tokens "
            f"(1 to {MAX_CONTEXT:,})."
        )
    lengths = {
        key: metadata[key]
        for key in ("tokenizer.ggml.tokens", "tokenizer.ggml.scores", "tokenizer.ggml.token_type")
        if isinstance(metadata.get(key), int)
    }
    if len(set(lengths.values())) > 1:
        found = ", ".join(f"{k.rsplit('.', 1)[1]} {v:,}" for k, v in lengths.items())
        raise ModelFileError(f"{broken}: its vocabulary arrays disagree in length ({found}).")
    if names and "token_embd.weight" not in names:
        raise ModelFileError(f"{broken}: it has no token embeddings (token_embd.weight).")
