"""The family registry: one entry per family module (names in docvlm.families.FAMILY_NAMES)."""

from __future__ import annotations

from docvlm.families import FAMILY_NAMES
from docvlm.families.base import ModelFamily
from docvlm.families.deepseek_ocr import DeepSeekOcr
from docvlm.families.florence2 import Florence2
from docvlm.families.llava_next import LlavaNext
from docvlm.families.paligemma import PaliGemma
from docvlm.families.qwen import Qwen2, Qwen3, Qwen25

REGISTRY: dict[str, ModelFamily] = {
    f.name: f for f in (Qwen2(), Qwen25(), Qwen3(), PaliGemma(), Florence2(), DeepSeekOcr(), LlavaNext())
}
if tuple(REGISTRY) != FAMILY_NAMES:  # pragma: no cover - a developer error, caught by any test run
    raise RuntimeError(f"family registry {tuple(REGISTRY)} != FAMILY_NAMES {FAMILY_NAMES}")
