"""A tiny BitNet-architecture model for the tests, written here: random weights in llama.cpp's
`bitnet` layout (with the real test model's tokenizer), then quantized to the ternary TQ1_0 or
TQ2_0 types by llama.cpp's own quantize API, the way a real BitNet file is made. It proves the
in-process path loads and runs such a file; its answers are noise."""

from __future__ import annotations

import ctypes
from pathlib import Path

import numpy as np

N_EMBD, N_FF, N_LAYER, N_HEAD = 256, 512, 2, 4  # ternary blocks hold 256 values: rows of 256


def write_f16(tokenizer_from: Path, out: Path) -> Path:
    from gguf import GGUFReader, GGUFValueType, GGUFWriter

    reader = GGUFReader(tokenizer_from)
    writer = GGUFWriter(str(out), "bitnet")
    writer.add_name("tiny-bitnet-test")
    writer.add_context_length(512)
    writer.add_embedding_length(N_EMBD)
    writer.add_feed_forward_length(N_FF)
    writer.add_block_count(N_LAYER)
    writer.add_head_count(N_HEAD)
    writer.add_head_count_kv(N_HEAD)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_rope_freq_base(10000.0)
    writer.add_rope_dimension_count(N_EMBD // N_HEAD)
    writer.add_file_type(1)  # mostly F16
    vocab = 0
    for field in reader.fields.values():
        if not field.name.startswith("tokenizer."):
            continue
        kind = field.types[0]
        if kind == GGUFValueType.ARRAY:
            if field.types[1] == GGUFValueType.STRING:
                values: list[object] = [bytes(field.parts[i]).decode() for i in field.data]
            else:
                values = [field.parts[i].tolist()[0] for i in field.data]
            if field.name == "tokenizer.ggml.tokens":
                vocab = len(values)
            writer.add_array(field.name, values)
        elif kind == GGUFValueType.STRING:
            writer.add_string(field.name, bytes(field.parts[field.data[0]]).decode())
        elif kind == GGUFValueType.UINT32:
            writer.add_uint32(field.name, int(field.parts[field.data[0]][0]))
        elif kind == GGUFValueType.INT32:
            writer.add_int32(field.name, int(field.parts[field.data[0]][0]))
        elif kind == GGUFValueType.BOOL:
            writer.add_bool(field.name, bool(field.parts[field.data[0]][0]))
    rng = np.random.default_rng(0)

    def weight(name: str, rows: int, cols: int) -> None:
        writer.add_tensor(name, (rng.standard_normal((rows, cols)) * 0.02).astype(np.float16))

    def norm(name: str, size: int) -> None:
        writer.add_tensor(name, np.ones(size, dtype=np.float32))

    weight("token_embd.weight", vocab, N_EMBD)
    norm("output_norm.weight", N_EMBD)
    for i in range(N_LAYER):
        p = f"blk.{i}."
        norm(p + "attn_norm.weight", N_EMBD)
        norm(p + "attn_sub_norm.weight", N_EMBD)
        for name in ("attn_q", "attn_k", "attn_v", "attn_output"):
            weight(p + name + ".weight", N_EMBD, N_EMBD)
        norm(p + "ffn_norm.weight", N_EMBD)
        norm(p + "ffn_sub_norm.weight", N_FF)
        weight(p + "ffn_gate.weight", N_FF, N_EMBD)
        weight(p + "ffn_up.weight", N_FF, N_EMBD)
        weight(p + "ffn_down.weight", N_EMBD, N_FF)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return out


def quantize(source: Path, out: Path, kind: str) -> Path:
    """`source` quantized to `kind` (TQ1_0 or TQ2_0) by llama.cpp's `llama_model_quantize`."""
    import llama_cpp

    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = getattr(llama_cpp, f"LLAMA_FTYPE_MOSTLY_{kind}")
    params.nthread = 2
    failed = llama_cpp.llama_model_quantize(
        str(source).encode(), str(out).encode(), ctypes.byref(params)
    )
    assert failed == 0, f"llama_model_quantize returned {failed}"
    return out
