"""Which inference runtime runs the OCR models: OpenVINO where it imports and runs, else onnxruntime.

Both read the same `.onnx` files bundled in the rapidocr wheel (nothing is converted or downloaded). OpenVINO
is the default because it reads the same models about 1.9x faster on x86 CPUs at the same accuracy
(bench/ocr_bench.py). The choice is made once per process, at run time, and its reason is kept for the
result's `EngineInfo.detail`; `--ocr-backend` overrides it. An `auto` choice that fails to load the models
falls back to onnxruntime (see `docvlm.engines.ocr.load_rapidocr`), again with the reason recorded.
"""

from __future__ import annotations

import functools
import importlib.util
from dataclasses import dataclass
from typing import Any, Literal

from docvlm.errors import ModelLoadError

OcrBackendName = Literal["openvino", "onnxruntime"]
OcrBackendRequest = Literal["auto", "openvino", "onnxruntime"]


@dataclass(frozen=True)
class OcrBackendChoice:
    """The runtime picked for the OCR models and why (shown in `EngineInfo.detail`)."""

    name: OcrBackendName
    reason: str


@functools.cache
def openvino_problem() -> str | None:
    """Why OpenVINO cannot run the OCR models here, or None when its CPU plugin is available (asked once per
    process: `info()` asks per document)."""
    if importlib.util.find_spec("openvino") is None:
        return "openvino is not installed (pip install openvino)"
    try:
        from openvino import Core

        devices = Core().available_devices
    except Exception as exc:  # noqa: BLE001 - a broken wheel (wrong CPU, missing libs) means: use onnxruntime
        return f"openvino does not start: {type(exc).__name__}: {exc}"
    if "CPU" not in devices:
        return f"openvino has no CPU device here (devices: {', '.join(devices) or 'none'})"
    return None


def choose_ocr_backend(requested: OcrBackendRequest) -> OcrBackendChoice:
    """Pick the runtime for `--ocr-backend REQUESTED`.

    Raises:
        docvlm.errors.ModelLoadError: OpenVINO was asked for explicitly and cannot run here.
    """
    if requested == "onnxruntime":
        return OcrBackendChoice("onnxruntime", "--ocr-backend onnxruntime")
    problem = openvino_problem()
    if requested == "openvino":
        if problem:
            raise ModelLoadError(f"--ocr-backend openvino: {problem}; or use --ocr-backend onnxruntime")
        return OcrBackendChoice("openvino", "--ocr-backend openvino")
    if problem is None:
        return OcrBackendChoice("openvino", "auto: openvino runs here (the faster runtime for these models)")
    return OcrBackendChoice("onnxruntime", f"auto: {problem}")


def backend_params(backend: OcrBackendName, threads: int) -> dict[str, Any]:
    """RapidOCR parameters that put det, cls and rec on `backend` with `threads` inference threads."""
    from rapidocr import EngineType  # RapidOCR wants the enum here; a plain string raises TypeError

    engine_type = EngineType.OPENVINO if backend == "openvino" else EngineType.ONNXRUNTIME
    params: dict[str, Any] = {f"{stage}.engine_type": engine_type for stage in ("Det", "Cls", "Rec")}
    if backend == "openvino":
        params["EngineConfig.openvino.inference_num_threads"] = threads
        params["EngineConfig.openvino.num_streams"] = 1
        # no pinning: several workers (or other programs) share the cores, and pinned threads of two
        # processes can land on the same core
        params["EngineConfig.openvino.enable_cpu_pinning"] = False
        params["EngineConfig.openvino.performance_hint"] = "LATENCY"
    else:
        params["EngineConfig.onnxruntime.intra_op_num_threads"] = threads
        params["EngineConfig.onnxruntime.inter_op_num_threads"] = 1
    return params


@functools.cache
def inference_precision(backend: OcrBackendName) -> str:
    """The precision the runtime computes in on this CPU: OpenVINO picks bf16 by itself where the CPU has
    bf16 instructions (AVX512-BF16, AMX), else fp32; onnxruntime runs the fp32 models as they are."""
    if backend != "openvino":
        return "fp32"
    try:
        from openvino import Core

        hint = str(Core().get_property("CPU", "INFERENCE_PRECISION_HINT")).lower()  # "<Type: 'bfloat16'>"
        hint = hint.split("'")[1] if "'" in hint else hint
    except Exception:  # noqa: BLE001 - only a label for the engine info
        return "unknown"
    return {"bfloat16": "bf16", "float32": "fp32", "f32": "fp32", "float16": "fp16", "f16": "fp16"}.get(hint, hint)


def runtime_version(backend: OcrBackendName) -> str:
    """The installed version of the runtime package (for the engine info)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(backend)
    except PackageNotFoundError:
        return "not installed"
