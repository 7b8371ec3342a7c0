"""How much memory a VLM run will need, from the model's shape and the encoding plans (no torch, no download).

The shape comes from the checkpoint's config.json (a local folder) or, for the released Qwen-VL hub ids, from
a built-in table of their config numbers (the hub is not reached). The estimate has four parts:

- weights: parameters counted from the shape, at the dtype's bytes (NF4: text-decoder linear layers at
  ~4.13 bits with double quantization, the vision tower, embeddings and lm_head kept in the compute dtype,
  as docvlm's hf engine loads them);
- vision-encoder activations for the largest planned tile, times the tiles encoded at once (batch size);
  attention through SDPA/flash (no patches x patches matrix is kept);
- decoder prefill activations for the longest prompt (visual + text tokens), times the batch;
- the KV cache at prompt + max new tokens, times the batch;

plus the CUDA context. `estimate_memory(...) -> MemoryEstimateResult` sums them and says whether they fit.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from docvlm.engines.device import GIB, HEADROOM_BYTES, WEIGHT_OVERHEAD

CUDA_CONTEXT_BYTES = int(0.6 * GIB)
"""CUDA context, cuBLAS workspaces and allocator slack of a torch process (measured ~0.5-0.7 GiB)."""
NF4_BITS = 4.127
"""NF4 with double quantization: 4 bits + 8-bit absmax per 64 weights, quantized again per 256 blocks."""
PROMPT_TEXT_TOKENS = 120
"""System + instruction + chat-template tokens around the image (docvlm's read/ground prompts)."""

Quantization = Literal["none", "8bit", "4bit"]


@dataclass(frozen=True)
class ModelShape:
    """The numbers of a Qwen-VL config that set its memory: decoder, vision tower, merger."""

    name: str
    family: Literal["qwen2", "qwen2.5", "qwen3"]
    hidden: int
    intermediate: int
    layers: int
    heads: int
    kv_heads: int
    head_dim: int
    vocab: int
    tied: bool
    v_depth: int
    v_hidden: int
    v_intermediate: int
    v_heads: int
    v_out: int
    patch: int
    merge: int = 2
    temporal_patch: int = 2
    v_gated: bool = False
    deepstack: int = 0
    pos_embeddings: int = 0
    weight_bits: int | None = None
    """Bits of a pre-quantized checkpoint's decoder weights (AWQ/GPTQ), from its quantization_config."""

    def text_params(self) -> tuple[int, int]:
        """(decoder linear-layer parameters, other decoder parameters: embeddings, lm_head, norms, biases)."""
        h, hd = self.hidden, self.head_dim
        q, kv = self.heads * hd, self.kv_heads * hd
        linear = self.layers * (h * q + 2 * h * kv + q * h + 3 * h * self.intermediate)
        other = self.vocab * h * (1 if self.tied else 2) + self.layers * (2 * h + q + 2 * kv) + h
        return linear, other

    def vision_params(self) -> int:
        d, m = self.v_hidden, self.v_intermediate
        mlp = (3 if self.v_gated else 2) * d * m + m + d
        block = 3 * d * d + 3 * d + d * d + d + mlp + 4 * d
        merged = d * self.merge**2
        merger = merged * merged + merged + merged * self.v_out + self.v_out + 2 * d
        patch = 3 * self.temporal_patch * self.patch**2 * d
        return self.v_depth * block + merger * (1 + self.deepstack) + patch + self.pos_embeddings * d

    @property
    def params(self) -> int:
        linear, other = self.text_params()
        return linear + other + self.vision_params()


def _qwen2(name: str, hidden: int, inter: int, layers: int, heads: int, kv: int, vocab: int, tied: bool) -> ModelShape:
    return ModelShape(name, "qwen2", hidden, inter, layers, heads, kv, hidden // heads, vocab, tied,
                      v_depth=32, v_hidden=1280, v_intermediate=5120, v_heads=16, v_out=hidden, patch=14)


def _qwen25(name: str, hidden: int, inter: int, layers: int, heads: int, kv: int, vocab: int, tied: bool) -> ModelShape:
    return ModelShape(name, "qwen2.5", hidden, inter, layers, heads, kv, hidden // heads, vocab, tied,
                      v_depth=32, v_hidden=1280, v_intermediate=3420, v_heads=16, v_out=hidden, patch=14,
                      v_gated=True)


def _qwen3(name: str, hidden: int, inter: int, layers: int, heads: int, tied: bool, v_depth: int, v_hidden: int,
           v_inter: int) -> ModelShape:
    return ModelShape(name, "qwen3", hidden, inter, layers, heads, 8, 128, 151936, tied,
                      v_depth=v_depth, v_hidden=v_hidden, v_intermediate=v_inter, v_heads=16, v_out=hidden,
                      patch=16, deepstack=3, pos_embeddings=2304)


KNOWN_MODELS: dict[str, ModelShape] = {
    s.name.lower(): s
    for s in (
        # config.json of the released checkpoints (text: hidden, intermediate, layers, heads, kv heads, vocab)
        _qwen2("Qwen/Qwen2-VL-2B-Instruct", 1536, 8960, 28, 12, 2, 151936, True),
        _qwen2("Qwen/Qwen2-VL-7B-Instruct", 3584, 18944, 28, 28, 4, 152064, False),
        _qwen2("Qwen/Qwen2-VL-72B-Instruct", 8192, 29568, 80, 64, 8, 152064, False),
        _qwen25("Qwen/Qwen2.5-VL-3B-Instruct", 2048, 11008, 36, 16, 2, 151936, True),
        _qwen25("Qwen/Qwen2.5-VL-7B-Instruct", 3584, 18944, 28, 28, 4, 152064, False),
        _qwen25("Qwen/Qwen2.5-VL-32B-Instruct", 5120, 27648, 64, 40, 8, 152064, False),
        _qwen25("Qwen/Qwen2.5-VL-72B-Instruct", 8192, 29568, 80, 64, 8, 152064, False),
        _qwen3("Qwen/Qwen3-VL-2B-Instruct", 2048, 6144, 28, 16, True, 24, 1024, 4096),
        _qwen3("Qwen/Qwen3-VL-4B-Instruct", 2560, 9728, 36, 32, True, 24, 1024, 4096),
        _qwen3("Qwen/Qwen3-VL-8B-Instruct", 4096, 12288, 36, 32, False, 27, 1152, 4304),
        _qwen3("Qwen/Qwen3-VL-32B-Instruct", 5120, 25600, 64, 64, False, 27, 1152, 4304),
    )
}
DEFAULT_MODELS = {"qwen2": "Qwen/Qwen2-VL-2B-Instruct", "qwen2.5": "Qwen/Qwen2.5-VL-3B-Instruct",
                  "qwen3": "Qwen/Qwen3-VL-2B-Instruct"}
"""The model `docvlm plan` sizes memory for when none is given: the family's smallest released size."""


def shape_from_config(config: dict, name: str) -> ModelShape:
    """A ModelShape from a Qwen-VL config.json (transformers 4.x flat text fields or 5.x `text_config`)."""
    kind = str(config.get("model_type", ""))
    family: Literal["qwen2", "qwen2.5", "qwen3"] = (
        "qwen3" if kind.startswith("qwen3") else "qwen2.5" if kind.startswith("qwen2_5") else "qwen2"
    )
    text = config.get("text_config") or config
    vis = config.get("vision_config") or {}
    hidden = int(text["hidden_size"])
    heads = int(text["num_attention_heads"])
    if family == "qwen2":
        v_hidden = int(vis.get("embed_dim", 1280))
        v_inter = int(v_hidden * float(vis.get("mlp_ratio", 4)))
        v_out = int(vis.get("hidden_size", hidden))
    else:
        v_hidden = int(vis.get("hidden_size", 1280))
        v_inter = int(vis.get("intermediate_size", 3420))
        v_out = int(vis.get("out_hidden_size", hidden))
    quant = config.get("quantization_config") or text.get("quantization_config") or {}
    bits = quant.get("bits") or (4 if quant.get("load_in_4bit") else 8 if quant.get("load_in_8bit") else None)
    return ModelShape(
        name=name, family=family, hidden=hidden, intermediate=int(text["intermediate_size"]),
        layers=int(text["num_hidden_layers"]), heads=heads,
        kv_heads=int(text.get("num_key_value_heads", heads)),
        head_dim=int(text.get("head_dim") or hidden // heads), vocab=int(text["vocab_size"]),
        tied=bool(config.get("tie_word_embeddings", text.get("tie_word_embeddings", False))),
        v_depth=int(vis.get("depth", 32)), v_hidden=v_hidden, v_intermediate=v_inter,
        v_heads=int(vis.get("num_heads", 16)), v_out=v_out, patch=int(vis.get("patch_size", 14)),
        merge=int(vis.get("spatial_merge_size", 2)), temporal_patch=int(vis.get("temporal_patch_size", 2)),
        v_gated=family == "qwen2.5", deepstack=len(vis.get("deepstack_visual_indexes", []) or []),
        pos_embeddings=int(vis.get("num_position_embeddings", 0) or 0), weight_bits=int(bits) if bits else None,
    )


def find_model_shape(model: str | None, family: str) -> tuple[ModelShape | None, str]:
    """The shape of `model` (a folder with config.json, or a known hub id; the family's default model when
    None), and where it came from; (None, why) when it cannot be known without the hub."""
    name = model or DEFAULT_MODELS[family]
    folder = Path(name).expanduser()
    if folder.is_dir():
        cfg = folder / "config.json"
        if not cfg.is_file():
            return None, f"{name}: no config.json in this folder"
        try:
            return shape_from_config(json.loads(cfg.read_text(encoding="utf-8")), name), f"{cfg}"
        except (ValueError, KeyError, TypeError) as exc:
            return None, f"{cfg}: not a Qwen-VL config ({type(exc).__name__}: {exc})"
    key = name.lower()
    for suffix in ("-awq", "-gptq-int4", "-gptq-int8"):
        key = key.removesuffix(suffix)
    shape = KNOWN_MODELS.get(key) or KNOWN_MODELS.get(key + "-instruct")
    if shape is None:
        known = ", ".join(s.name for s in KNOWN_MODELS.values())
        return None, f"{name}: not a local folder and not a known hub id ({known}): memory not estimated"
    if name.lower().endswith("-awq") or "gptq-int4" in name.lower():
        shape = ModelShape(**{**shape.__dict__, "weight_bits": 4})
    origin = "built-in table of the released config" + ("" if model else f" (default model of {family})")
    return shape, origin


@dataclass(frozen=True)
class MemoryEstimateResult:
    """Bytes a run needs on its device, by part, and whether it fits."""

    model: str
    source: str
    params: int
    dtype: str
    quant: Quantization
    weights_bytes: int
    vision_bytes: int
    prefill_bytes: int
    kv_cache_bytes: int
    context_bytes: int
    total_bytes: int
    batch: int
    max_tile_tokens: int
    prompt_tokens: int
    new_tokens: int
    device: str
    device_bytes: int | None
    fits: bool | None
    reason: str


DTYPE_BYTES = {"bf16": 2, "fp16": 2, "fp32": 4}


def weights_bytes(shape: ModelShape, dtype: str, quant: Quantization) -> int:
    """Bytes of the loaded weights: decoder linear layers at the quantization's bits, the rest at `dtype`."""
    linear, other = shape.text_params()
    per = DTYPE_BYTES[dtype]
    bits = {"none": None, "8bit": 8.06, "4bit": NF4_BITS}[quant] or shape.weight_bits
    lin = linear * (bits / 8 if bits else per)
    return int(lin + (other + shape.vision_params()) * per)


def vision_activation_bytes(shape: ModelShape, tile_tokens: int, dtype: str, batch: int) -> int:
    """Peak activations of the vision tower for `batch` tiles of `tile_tokens` visual tokens (SDPA attention):
    per patch the residual stream, q/k/v, the attention output and the MLP's hidden layer are alive at once."""
    patches = tile_tokens * shape.merge**2
    d = shape.v_hidden
    per_patch = 6 * d + (3 if shape.v_gated else 2) * shape.v_intermediate
    return int(batch * patches * per_patch * DTYPE_BYTES[dtype])


def prefill_activation_bytes(shape: ModelShape, prompt_tokens: int, dtype: str, batch: int) -> int:
    """Peak decoder activations of the prefill: residual, q/k/v/o and the gated MLP's two hidden layers per
    token for one layer at a time, plus the last position's fp32 logits."""
    per_token = 4 * shape.hidden + 3 * shape.intermediate
    return int(batch * (prompt_tokens * per_token * DTYPE_BYTES[dtype] + shape.vocab * 4))


def kv_cache_bytes(shape: ModelShape, tokens: int, dtype: str, batch: int) -> int:
    """Keys and values of every decoder layer for `tokens` positions of `batch` sequences."""
    return int(2 * shape.layers * shape.kv_heads * shape.head_dim * DTYPE_BYTES[dtype] * tokens * batch)


def gpu_memory_bytes() -> tuple[str, int] | None:
    """(name, total bytes) of the first NVIDIA GPU from nvidia-smi (no torch); None when there is none."""
    exe = shutil.which("nvidia-smi")
    if not exe:
        return None
    try:
        out = subprocess.run([exe, "--query-gpu=name,memory.total", "--format=csv,noheader,nounits"],
                             capture_output=True, text=True, timeout=10, check=True).stdout
        name, mib = out.strip().splitlines()[0].rsplit(",", 1)
        return name.strip(), int(float(mib)) * 2**20
    except (OSError, subprocess.SubprocessError, ValueError, IndexError):
        return None


def host_memory_bytes() -> int | None:
    """Total RAM of this machine (POSIX), None when unknown."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return None


def estimate_memory(
    shape: ModelShape,
    source: str,
    *,
    max_tile_tokens: int,
    batch: int,
    max_new_tokens: int,
    dtype: str = "auto",
    quant: str = "auto",
    device_name: str | None = None,
    device_bytes: int | None = None,
    on_gpu: bool = True,
) -> MemoryEstimateResult:
    """Memory of a run of `shape` over tiles of at most `max_tile_tokens` visual tokens, `batch` tiles per
    generate call, `max_new_tokens` each. dtype/quant 'auto' follow the hf engine: bf16 (fp32 on CPU), NF4 when
    bf16 weights do not fit the device."""
    dt = dtype if dtype != "auto" else ("bf16" if on_gpu else "fp32")
    why: list[str] = []
    q: Quantization
    if quant == "auto":
        q = "none"
        bf = weights_bytes(shape, dt, "none")
        if on_gpu and device_bytes is not None and bf * WEIGHT_OVERHEAD + HEADROOM_BYTES > device_bytes:
            q = "4bit"
            why.append(f"{dt} weights ({bf / GIB:.1f} GiB) do not fit {device_bytes / GIB:.0f} GiB: NF4 (--quant auto)")
    else:
        q = quant  # type: ignore[assignment]
    prompt = max_tile_tokens + PROMPT_TEXT_TOKENS
    w = weights_bytes(shape, dt, q)
    vis = vision_activation_bytes(shape, max_tile_tokens, dt, batch)
    pre = prefill_activation_bytes(shape, prompt, dt, batch)
    kv = kv_cache_bytes(shape, prompt + max_new_tokens, dt, batch)
    ctx = CUDA_CONTEXT_BYTES if on_gpu else 0
    # the vision tower runs before the prefill: their activations are not alive at the same time
    total = w + max(vis, pre) + kv + ctx
    fits = None if device_bytes is None else total <= device_bytes
    device = device_name or ("GPU" if on_gpu else "CPU")
    if fits is False:
        smaller = "a smaller model" if q == "4bit" else "--quant 4bit or a smaller model"
        why.append(f"needs {total / GIB:.1f} GiB > {device_bytes / GIB:.1f} GiB on {device}: lower --batch-size, "  # type: ignore[operator]
                   f"--max-visual-tokens or --max-new-tokens, or use {smaller}")
    elif fits:
        why.append(f"fits {device} ({total / GIB:.1f} of {device_bytes / GIB:.1f} GiB)")  # type: ignore[operator]
    else:
        why.append("device memory unknown (pass --gpu-memory GIB)")
    return MemoryEstimateResult(
        model=shape.name, source=source, params=shape.params, dtype=dt, quant=q, weights_bytes=w,
        vision_bytes=vis, prefill_bytes=pre, kv_cache_bytes=kv, context_bytes=ctx, total_bytes=total,
        batch=batch, max_tile_tokens=max_tile_tokens, prompt_tokens=prompt, new_tokens=max_new_tokens,
        device=device, device_bytes=device_bytes, fits=fits, reason="; ".join(why),
    )
