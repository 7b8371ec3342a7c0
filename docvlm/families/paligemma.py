"""PaliGemma (SigLIP + Gemma, prefix-LM): fixed squares 224, 448 or 896 px; `<locNNNN>` boxes on 1024 bins.

Convention: four tokens `<locYMIN><locXMIN><locYMAX><locXMAX>` then the label, detections separated by ` ; `
(`detect cat ; dog` -> `<loc0123><loc0045><loc0678><loc0456> cat ; ...`). Each value is in 0..1023 and means
value/1024 of the encoded image's height (y) or width (x) (the PaliGemma model card and big_vision's
`paligemma` README: "normalized to 1024 bins"). The processor stretches any image to the checkpoint's square
(`PaliGemmaProcessor` -> `SiglipImageProcessor` resize to size {height, width}, aspect not kept); docvlm sends
squares cut from the page (docvlm.families.square), so nothing is stretched and the frame is the square.

The checkpoint fixes the resolution (paligemma2-3b-pt-224 / -448 / -896, vision_config.image_size); `plan` and
the openai engine use 448 unless the hf engine read another size from the config (`for_config`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from docvlm.families.base import (
    GroundedItem,
    MemoryFigures,
    ModelFamily,
    ParseResult,
    processor_size,
    snip,
)
from docvlm.families.square import plan_squares

if TYPE_CHECKING:
    from docvlm.datamodel import Box, EncodingPlan

LOC_BINS = 1024
"""`<loc0000>` .. `<loc1023>`: 1024 bins per axis."""
SIDES = (224, 448, 896)
"""The released PaliGemma / PaliGemma 2 resolutions."""
DEFAULT_SIDE = 448
PATCH = 14
"""SigLIP So400m/14: one token per 14x14 patch (224 -> 256, 448 -> 1024, 896 -> 4096 tokens)."""
_LOC = re.compile(r"<loc(\d+)>")
_RUN = re.compile(r"((?:<loc\d+>)+)([^<;\n]*)")
_CUT = re.compile(r"<l(?:o(?:c\d*)?)?$")


class PaliGemma(ModelFamily):
    name = "paligemma"
    title = "PaliGemma"
    convention = "<locYMIN><locXMIN><locYMAX><locXMAX> label ; ... (y before x)"
    frame = "1024 bins over the square encoded image (value/1024 of its side)"
    model_types = ("paligemma",)
    served_patterns = (r"pali[-_ ]?gemma",)
    hf_model_class = "PaliGemmaForConditionalGeneration"
    hf_processor_class = "PaliGemmaProcessor"
    prompt_style = "plain"
    own_conventions = ("PaliGemma <locNNNN>",)
    memory = MemoryFigures("google/paligemma2-3b-pt-448", 3.03, 26, 4, 256)

    def __init__(self, side: int = DEFAULT_SIDE) -> None:
        if side not in SIDES:
            raise ValueError(f"PaliGemma resolution {side} is not one of {SIDES}")
        self.side = side

    def for_config(self, config: Any) -> PaliGemma:
        """The entry for a checkpoint: its vision_config.image_size (224, 448 or 896)."""
        size = getattr(getattr(config, "vision_config", None), "image_size", None)
        return PaliGemma(int(size)) if size in SIDES and size != self.side else self

    def processor_keeps(self, image_processor: Any, size: tuple[int, int]) -> bool:
        return processor_size(image_processor) == tuple(size)

    # frames: printed (y0, x0, y1, x1) on 1024 bins -> encoded (x0, y0, x1, y1)
    def model_to_encoded(self, box_model: Sequence[float], encoded_size: tuple[int, int]) -> Box:
        y0, x0, y1, x1 = (float(v) for v in box_model)
        w, h = encoded_size
        return (x0 * w / LOC_BINS, y0 * h / LOC_BINS, x1 * w / LOC_BINS, y1 * h / LOC_BINS)

    def encoded_to_model(self, box_encoded: Sequence[float], encoded_size: tuple[int, int]) -> Box:
        x0, y0, x1, y1 = (float(v) for v in box_encoded)
        w, h = encoded_size

        def q(v: float, n: int) -> float:
            return float(min(LOC_BINS - 1, max(0, round(v / n * LOC_BINS))))

        return (q(y0, h), q(x0, w), q(y1, h), q(x1, w))

    def grid_unit_px(self, encoded_size: tuple[int, int]) -> tuple[float, float]:
        return encoded_size[0] / LOC_BINS, encoded_size[1] / LOC_BINS

    def parse(self, raw_text: str) -> ParseResult:
        items: list[GroundedItem] = []
        errors: list[str] = []
        try:
            text = str(raw_text).replace("<eos>", "").replace("<bos>", "")
            text = re.sub(r"<seg\d+>", "", text)
            for m in _RUN.finditer(text):
                values = [int(v) for v in _LOC.findall(m.group(1))]
                label = m.group(2).strip()
                if len(values) != 4:
                    errors.append(f"{len(values)} <loc> tokens where a box has 4 (output cut?): {snip(m.group(0))}")
                    continue
                bad = [v for v in values if not 0 <= v < LOC_BINS]
                if bad:
                    errors.append(f"<loc> value {bad[0]} outside 0..{LOC_BINS - 1}: {snip(m.group(0))}")
                    continue
                items.append(GroundedItem(text=label, box_model=tuple(float(v) for v in values), label=label or None))  # type: ignore[arg-type]
            if _CUT.search(text.rstrip()):
                errors.append(f"truncated <loc> token at the end of the output: {snip(text[-40:])}")
            self.check_convention(text, items, errors, "<loc>")
        except Exception as exc:  # noqa: BLE001 - the parser never raises
            errors.append(f"parser failure {type(exc).__name__}: {exc}")
        return ParseResult(items=items, errors=errors)

    def render_output(self, items: Sequence[tuple[str, Box]], task: str = "read") -> str:
        return " ; ".join("".join(f"<loc{int(v):04d}>" for v in b) + f" {t}" for t, b in items)

    def plan(self, page_size_px, *, text_line_px, min_text_px, max_visual_tokens, task_kind,
             text_height_source, line_height_px, device_memory_bytes) -> EncodingPlan:
        return plan_squares(self.name, page_size_px, side=self.side, tokens_per_tile=self.visual_tokens(
            (self.side, self.side)), text_line_px=text_line_px, min_text_px=min_text_px,
            line_height_px=line_height_px, text_height_source=text_height_source,
            policy=f"PaliGemma {self.side}: ")

    def default_policy(self, page_size_px: tuple[int, int]) -> tuple[int, float]:
        # the processor stretches the whole page to side x side
        return self.visual_tokens((self.side, self.side)), self.side / page_size_px[1]

    def visual_tokens(self, encoded_size: tuple[int, int]) -> int:
        return (encoded_size[0] // PATCH) * (encoded_size[1] // PATCH)
