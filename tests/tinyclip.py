"""A tiny vision projector (mmproj) for the SmolLM2 test model, written with random weights.

No vision model ships on PyPI and the model hubs are offline here, so to run llama.cpp's
multimodal path for real the tests write the smallest projector its CLIP loader accepts, in the
LLaVA-1.5 layout that llama.cpp's converter (`tools/mtmd/legacy-models/
convert_image_encoder_to_gguf.py`) produces: a ViT image encoder (32x32 images in 16x16 patches,
two blocks of width 64) and the two-layer MLP projector into the language model's embedding
width (576 for SmolLM2-135M). The weights are random: a test with it proves that an image is
decoded, encoded by the ViT, projected and embedded into the prompt, and that tokens are then
generated; it says nothing about whether the answer describes the image.
"""

from __future__ import annotations

from pathlib import Path

IMAGE_SIZE, PATCH_SIZE, WIDTH, FF, HEADS, BLOCKS = 32, 16, 64, 128, 4, 2
CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
CLIP_STD = [0.26862954, 0.26130258, 0.27577711]


def write_projector(
    path: Path, text_width: int = 576, seed: int = 7, image_size: int = IMAGE_SIZE
) -> Path:
    """Write the projector to `path`; an image becomes (image_size / 16)^2 prompt tokens."""
    import gguf
    import numpy as np

    rng = np.random.default_rng(seed)

    def weight(*shape: int) -> object:  # matrices in f16, as the converter writes them
        return (rng.standard_normal(shape) * 0.02).astype(np.float16)

    def vector(n: int, value: float | None = None) -> object:
        data = np.full(n, value) if value is not None else rng.standard_normal(n) * 0.02
        return data.astype(np.float32)

    writer = gguf.GGUFWriter(str(path), "clip")
    writer.add_name("geri test projector (random weights)")
    writer.add_bool("clip.has_text_encoder", False)
    writer.add_bool("clip.has_vision_encoder", True)
    writer.add_bool("clip.has_llava_projector", True)
    writer.add_string("clip.projector_type", "mlp")
    writer.add_bool("clip.use_gelu", True)
    writer.add_uint32("clip.vision.image_size", image_size)
    writer.add_uint32("clip.vision.patch_size", PATCH_SIZE)
    writer.add_uint32("clip.vision.embedding_length", WIDTH)
    writer.add_uint32("clip.vision.feed_forward_length", FF)
    writer.add_uint32("clip.vision.projection_dim", text_width)
    writer.add_uint32("clip.vision.attention.head_count", HEADS)
    writer.add_float32("clip.vision.attention.layer_norm_epsilon", 1e-5)
    writer.add_uint32("clip.vision.block_count", BLOCKS)
    writer.add_array("clip.vision.image_mean", CLIP_MEAN)
    writer.add_array("clip.vision.image_std", CLIP_STD)

    patches = (image_size // PATCH_SIZE) ** 2
    tensors: dict[str, object] = {
        "v.class_embd": vector(WIDTH),
        "v.patch_embd.weight": weight(WIDTH, 3, PATCH_SIZE, PATCH_SIZE),
        "v.position_embd.weight": weight(patches + 1, WIDTH),
        "v.pre_ln.weight": vector(WIDTH, 1.0),
        "v.pre_ln.bias": vector(WIDTH, 0.0),
    }
    for n in range(BLOCKS):
        block = f"v.blk.{n}"
        for part in ("attn_q", "attn_k", "attn_v", "attn_out"):
            tensors[f"{block}.{part}.weight"] = weight(WIDTH, WIDTH)
            tensors[f"{block}.{part}.bias"] = vector(WIDTH)
        for norm in ("ln1", "ln2"):
            tensors[f"{block}.{norm}.weight"] = vector(WIDTH, 1.0)
            tensors[f"{block}.{norm}.bias"] = vector(WIDTH, 0.0)
        # the converter's legacy names: CLIP's fc1 is "ffn_down", fc2 "ffn_up"
        tensors[f"{block}.ffn_down.weight"] = weight(FF, WIDTH)
        tensors[f"{block}.ffn_down.bias"] = vector(FF)
        tensors[f"{block}.ffn_up.weight"] = weight(WIDTH, FF)
        tensors[f"{block}.ffn_up.bias"] = vector(WIDTH)
    tensors["mm.0.weight"] = weight(text_width, WIDTH)
    tensors["mm.0.bias"] = vector(text_width)
    tensors["mm.2.weight"] = weight(text_width, text_width)
    tensors["mm.2.bias"] = vector(text_width)
    for name, data in tensors.items():
        writer.add_tensor(name, data)  # type: ignore[arg-type]
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path
