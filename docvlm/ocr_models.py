"""The PP-OCR ONNX models shipped inside the rapidocr wheel, found by path (never downloaded).

Shared by the ocr engine (detection, recognition, angle classifier) and the planner's text-size estimate
(detection only), so both read the same file.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from docvlm.errors import ModelLoadError

MODEL_FILES = {
    "Det": "PP-OCRv6_det_small.onnx",
    "Rec": "PP-OCRv6_rec_small.onnx",
    "Cls": "ch_ppocr_mobile_v2.0_cls_mobile.onnx",
}
"""The models bundled in the rapidocr 3.x wheel (rapidocr/models/)."""


def rapidocr_model_dir() -> Path:
    """Folder of the ONNX models shipped inside the installed rapidocr wheel (without importing rapidocr)."""
    spec = importlib.util.find_spec("rapidocr")
    if spec is None or spec.origin is None:
        raise ModelLoadError("rapidocr is not installed: pip install 'rapidocr>=3,<4' onnxruntime")
    return Path(spec.origin).parent / "models"


def rapidocr_model_path(stage: str) -> Path:
    """The bundled model file of `stage` (a key of `MODEL_FILES`: Det, Rec or Cls)."""
    path = rapidocr_model_dir() / MODEL_FILES[stage]
    if not path.is_file():
        raise ModelLoadError(
            f"RapidOCR model {path} is missing: reinstall the wheel (pip install --force-reinstall rapidocr)"
        )
    return path
