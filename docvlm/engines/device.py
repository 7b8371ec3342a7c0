"""Device, precision and quantization for the hf engine: a pure decision from options and hardware facts.

`decide(...)` takes plain values (no torch), so every branch is unit-tested with fake hardware;
`probe_hardware()` is the only part that asks torch what is there. The decision carries a human reason that
the engine prints (stderr) and records in `EngineInfo.detail`.

auto rules (issue 3): bf16 on GPUs with compute capability >= 8.0 when the model fits in free memory, NF4
4-bit with double quantization when it does not (vision tower and lm_head kept in full precision), fp16 on
older GPUs, bf16 on CPUs that support it, else fp32.
"""

from __future__ import annotations

import json
import math
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from docvlm.errors import UsageError

DType = Literal["bf16", "fp16", "fp32"]
Quant = Literal["none", "4bit", "8bit"]

SKIP_QUANT_MODULES: tuple[str, ...] = ("model.visual", "lm_head")
"""Module names kept out of bitsandbytes quantization. transformers 5 matches these from the start of the full
module name (or as a suffix): the vision tower is `model.visual`; a bare "visual" would match nothing."""

GIB = 2**30
HEADROOM_BYTES = int(1.5 * GIB)
"""Free memory kept beyond the weights for activations, the KV cache and the CUDA context."""
WEIGHT_OVERHEAD = 1.15
"""Loaded weights take ~15% more than the raw parameter bytes (buffers, allocator fragmentation)."""


@dataclass(frozen=True)
class CudaDevice:
    index: int
    name: str
    capability: tuple[int, int]
    total_bytes: int
    free_bytes: int


@dataclass(frozen=True)
class HardwareFacts:
    """What the machine has, as plain values (from `probe_hardware`, or made up in tests)."""

    cuda: tuple[CudaDevice, ...] = ()
    cpu_bf16: bool = False
    bitsandbytes: bool = False


@dataclass(frozen=True)
class DeviceDecision:
    """Where and in which precision the model runs, and why."""

    device: str  # "cpu" or "cuda:N"
    dtype: DType  # weights (unquantized parts) and compute dtype
    quant: Quant
    reason: str
    device_memory_bytes: int | None = None  # total memory of the chosen GPU (None on CPU): sets the token budget
    skip_modules: tuple[str, ...] = field(default=SKIP_QUANT_MODULES)

    @property
    def is_cuda(self) -> bool:
        return self.device.startswith("cuda")


def parse_device(device: str) -> tuple[Literal["auto", "cpu", "cuda"], int | None]:
    """'auto' | 'cpu' | 'cuda' | 'cuda:N' -> (kind, index)."""
    d = device.strip().lower()
    if d in ("auto", "cpu"):
        return d, None  # type: ignore[return-value]
    if d == "cuda":
        return "cuda", None
    if d.startswith("cuda:") and d[5:].isdigit():
        return "cuda", int(d[5:])
    raise UsageError(f"--device {device!r} is not one of auto, cpu, cuda, cuda:N")


def decide(
    *,
    device: str,
    dtype: Literal["auto", "bf16", "fp16", "fp32"],
    quant: Literal["auto", "none", "4bit", "8bit"],
    param_count: int | None,
    facts: HardwareFacts,
) -> DeviceDecision:
    """Decide device, dtype and quantization. Pure: the same inputs always give the same decision.

    Args:
        device: auto, cpu, cuda or cuda:N.
        dtype: auto, bf16, fp16 or fp32.
        quant: auto, none, 4bit or 8bit.
        param_count: parameters of the model (None when unknown: then auto never quantizes).
        facts: the hardware.

    Returns:
        The decision with its reason.

    Raises:
        UsageError: a CUDA device that does not exist.
        MissingExtraError: 4bit/8bit chosen (or needed) but bitsandbytes is not installed.
    """
    kind, index = parse_device(device)
    why: list[str] = []
    if kind == "auto":
        if facts.cuda:
            gpu = max(facts.cuda, key=lambda d: (d.free_bytes, -d.index))
            why.append(f"--device auto: {gpu.name} (cuda:{gpu.index}) has the most free memory")
        else:
            gpu = None
            why.append("--device auto: no CUDA GPU, running on CPU")
    elif kind == "cpu":
        gpu = None
        why.append("--device cpu")
    else:
        if not facts.cuda:
            raise UsageError(f"--device {device}: no CUDA GPU is visible to torch; use --device cpu (or auto)")
        idx = 0 if index is None else index
        found = [d for d in facts.cuda if d.index == idx]
        if not found:
            raise UsageError(
                f"--device {device}: there are only {len(facts.cuda)} CUDA device(s) "
                f"(cuda:0..cuda:{len(facts.cuda) - 1})"
            )
        gpu = found[0]
        why.append(f"--device {device}: {gpu.name}")

    if gpu is None:
        return _decide_cpu(dtype, quant, param_count, facts, why)
    return _decide_gpu(gpu, dtype, quant, param_count, facts, why)


def _decide_cpu(dtype, quant, param_count, facts: HardwareFacts, why: list[str]) -> DeviceDecision:
    if dtype == "auto":
        chosen: DType = "bf16" if facts.cpu_bf16 else "fp32"
        why.append("bf16: this CPU supports it" if facts.cpu_bf16 else "fp32: this CPU has no fast bf16")
    else:
        chosen = dtype
        why.append(f"--dtype {dtype}" + (" (fp16 on CPU is slow; bf16 or fp32 are better)" if dtype == "fp16" else ""))
    if quant == "auto":
        q: Quant = "none"
        why.append("no quantization on CPU (auto)")
    else:
        q = quant
        if q != "none":
            _need_bnb(facts)
            why.append(f"--quant {q} on CPU (bitsandbytes CPU kernels; slower than unquantized)")
    if param_count:
        why.append(f"model ~{param_count / 1e9:.2f}B parameters")
    return DeviceDecision(device="cpu", dtype=chosen, quant=q, reason="; ".join(why))


def _decide_gpu(gpu: CudaDevice, dtype, quant, param_count, facts: HardwareFacts, why: list[str]) -> DeviceDecision:
    ampere = gpu.capability >= (8, 0)
    cc = f"{gpu.capability[0]}.{gpu.capability[1]}"
    if dtype == "auto":
        chosen: DType = "bf16" if ampere else "fp16"
        why.append(f"{chosen}: compute capability {cc} {'>=' if ampere else '<'} 8.0")
    else:
        chosen = dtype
        why.append(f"--dtype {dtype}" + ("" if dtype != "bf16" or ampere else f" (compute capability {cc} < 8.0)"))
    bytes_per = {"bf16": 2, "fp16": 2, "fp32": 4}[chosen]
    free = gpu.free_bytes
    if quant == "auto":
        if param_count is None:
            q: Quant = "none"
            why.append("model size unknown: not quantized (pass --quant 4bit if it does not fit)")
        else:
            need = int(param_count * bytes_per * WEIGHT_OVERHEAD) + HEADROOM_BYTES
            if need <= free:
                q = "none"
                why.append(
                    f"~{param_count / 1e9:.2f}B parameters need ~{need / GIB:.1f} GiB <= {free / GIB:.1f} GiB free: "
                    "not quantized"
                )
            else:
                q = "4bit"
                why.append(
                    f"~{param_count / 1e9:.2f}B parameters need ~{need / GIB:.1f} GiB > {free / GIB:.1f} GiB free: "
                    "NF4 4-bit with double quantization (vision tower and lm_head kept in "
                    f"{chosen})"
                )
                _need_bnb(facts)
    else:
        q = quant
        if q != "none":
            _need_bnb(facts)
        why.append(f"--quant {q}")
    return DeviceDecision(
        device=f"cuda:{gpu.index}", dtype=chosen, quant=q, reason="; ".join(why), device_memory_bytes=gpu.total_bytes
    )


def _need_bnb(facts: HardwareFacts) -> None:
    if not facts.bitsandbytes:
        from docvlm.errors import MissingExtraError

        raise MissingExtraError("bitsandbytes", "gpu")


# --- hardware probe (torch) -----------------------------------------------------------------------------


def probe_hardware() -> HardwareFacts:
    """Ask torch what this machine has (CUDA devices with free memory, CPU bf16, bitsandbytes)."""
    import importlib.util

    import torch

    devices = []
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            props = torch.cuda.get_device_properties(i)
            try:
                free, total = torch.cuda.mem_get_info(i)
            except Exception:  # noqa: BLE001 - some drivers refuse mem_get_info: assume all of it is free
                free, total = props.total_memory, props.total_memory
            devices.append(CudaDevice(i, props.name, (props.major, props.minor), int(total), int(free)))
    return HardwareFacts(
        cuda=tuple(devices),
        cpu_bf16=cpu_supports_bf16(),
        bitsandbytes=importlib.util.find_spec("bitsandbytes") is not None,
    )


def cpu_supports_bf16() -> bool:
    """True when the CPU has native bf16 matmul (AVX512-BF16 or AMX on x86; bf16 on ARM)."""
    try:
        import torch

        caps = str(torch.backends.cpu.get_cpu_capability()).lower()
    except Exception:  # noqa: BLE001
        caps = ""
    flags = ""
    try:
        flags = Path("/proc/cpuinfo").read_text(errors="ignore")
    except OSError:
        pass
    return "avx512_bf16" in flags or "amx_bf16" in flags or " bf16" in flags or "amx" in caps


# --- model size estimate ----------------------------------------------------------------------------------


def count_safetensors_params(model_dir: Path) -> int | None:
    """Parameter count from the safetensors headers of a local checkpoint (no weights read); None if none."""
    files = sorted(Path(model_dir).glob("*.safetensors"))
    if not files:
        return None
    total = 0
    for path in files:
        with open(path, "rb") as fh:
            (n,) = struct.unpack("<Q", fh.read(8))
            header = json.loads(fh.read(n))
        for name, meta in header.items():
            if name != "__metadata__":
                total += math.prod(meta.get("shape", [])) if meta.get("shape") else 1
    return total


def estimate_params_from_config(config) -> int:
    """Rough parameter count of a Qwen-VL model from its config (text decoder + vision tower)."""
    text = getattr(config, "text_config", config)
    h = text.hidden_size
    layers = text.num_hidden_layers
    heads = text.num_attention_heads
    kv = getattr(text, "num_key_value_heads", None) or heads
    head_dim = getattr(text, "head_dim", None) or h // heads
    inter = text.intermediate_size
    vocab = text.vocab_size
    attn = h * heads * head_dim * 2 + h * kv * head_dim * 2
    mlp = 3 * h * inter
    tied = getattr(config, "tie_word_embeddings", False) or getattr(text, "tie_word_embeddings", False)
    total = layers * (attn + mlp) + vocab * h * (1 if tied else 2)
    v = getattr(config, "vision_config", None)
    if v is not None:
        e = getattr(v, "embed_dim", None) or v.hidden_size
        v_inter = getattr(v, "intermediate_size", None) or e * getattr(v, "mlp_ratio", 4)
        total += v.depth * (4 * e * e + 2 * e * v_inter)
        merge = getattr(v, "spatial_merge_size", 2) ** 2
        total += (e * merge) ** 2 + e * merge * h
    return int(total)
