"""Florence-2 (DaViT + BART encoder-decoder): a fixed 768x768 image; `<loc_N>` tokens on 1000 bins.

Convention (transformers `Florence2PostProcessor`, processing_florence2.py): `<OCR_WITH_REGION>` prints
`text<loc_x1><loc_y1><loc_x2><loc_y2><loc_x3><loc_y3><loc_x4><loc_y4>` per line (a quadrilateral, x before y);
`<OD>` / `<CAPTION_TO_PHRASE_GROUNDING>` print `label<loc_x1><loc_y1><loc_x2><loc_y2>`. Bins: quantize is
floor(v / (size/1000)) clamped to 0..999; dequantize is (bin + 0.5) * size/1000, the bin's centre
(`BoxQuantizer.dequantize`). The processor resizes any image to 768x768 (aspect not kept); docvlm sends
768-px squares cut from the page (docvlm.families.square), so the frame is that square.

A quadrilateral becomes its bounding box in bins (min/max of its corners): the printed corners are not reordered.
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

BINS = 1000
SIDE = 768
IMAGE_TOKENS = 577
"""Florence-2's processor_config image_seq_length: 24x24 DaViT tokens + 1."""
_LOC = re.compile(r"<loc_(\d+)>")
_RUN = re.compile(r"([^<]*)((?:<loc_\d+>)+)")
_CUT = re.compile(r"<(?:l(?:o(?:c(?:_\d*)?)?)?)?$")
_SPECIAL = re.compile(r"</?s>|<pad>|<OCR_WITH_REGION>|<OD>|<OCR>")


class Florence2(ModelFamily):
    name = "florence2"
    title = "Florence-2"
    convention = "text<loc_x1><loc_y1>...<loc_x4><loc_y4> (quads, OCR_WITH_REGION) / label<loc_x1><loc_y1><loc_x2><loc_y2>"
    frame = "1000 bins over the 768x768 encoded image, bin centre ((n + 0.5) * size / 1000)"
    model_types = ("florence2",)
    served_patterns = (r"florence[-_ ]?2",)
    hf_model_class = "Florence2ForConditionalGeneration"
    hf_processor_class = "Florence2Processor"
    prompt_style = "plain"
    own_conventions = ("Florence-2 <loc_N>",)
    memory = MemoryFigures("microsoft/Florence-2-large", 0.77, 12, 16, 64)

    def processor_keeps(self, image_processor: Any, size: tuple[int, int]) -> bool:
        """The checkpoint's CLIP image processor resizes to size {height, width} (768) and does not crop."""
        return processor_size(image_processor) == tuple(size) and not getattr(image_processor, "do_center_crop",
                                                                              False)

    def model_to_encoded(self, box_model: Sequence[float], encoded_size: tuple[int, int]) -> Box:
        x0, y0, x1, y1 = (float(v) for v in box_model)
        bw, bh = encoded_size[0] / BINS, encoded_size[1] / BINS
        return ((x0 + 0.5) * bw, (y0 + 0.5) * bh, (x1 + 0.5) * bw, (y1 + 0.5) * bh)

    def encoded_to_model(self, box_encoded: Sequence[float], encoded_size: tuple[int, int]) -> Box:
        x0, y0, x1, y1 = (float(v) for v in box_encoded)
        bw, bh = encoded_size[0] / BINS, encoded_size[1] / BINS

        def q(v: float, b: float) -> float:
            return float(min(BINS - 1, max(0, int(v // b))))

        return (q(x0, bw), q(y0, bh), q(x1, bw), q(y1, bh))

    def grid_unit_px(self, encoded_size: tuple[int, int]) -> tuple[float, float]:
        return encoded_size[0] / BINS, encoded_size[1] / BINS

    def parse(self, raw_text: str) -> ParseResult:
        items: list[GroundedItem] = []
        errors: list[str] = []
        try:
            text = _SPECIAL.sub("", str(raw_text))
            for m in _RUN.finditer(text):
                label = m.group(1).strip()
                values = [int(v) for v in _LOC.findall(m.group(2))]
                bad = [v for v in values if not 0 <= v < BINS]
                if bad:
                    errors.append(f"<loc_{bad[0]}> outside 0..{BINS - 1}: {snip(m.group(0))}")
                    continue
                if len(values) == 4:
                    box = tuple(float(v) for v in values)
                elif len(values) == 8:
                    xs, ys = values[0::2], values[1::2]
                    box = (float(min(xs)), float(min(ys)), float(max(xs)), float(max(ys)))
                else:
                    errors.append(f"{len(values)} <loc_> tokens where a box has 4 and a quad 8 (output cut?): "
                                  f"{snip(m.group(0))}")
                    continue
                items.append(GroundedItem(text=label, box_model=box, label=None))  # type: ignore[arg-type]
            if _CUT.search(text.rstrip()):
                errors.append(f"truncated <loc_> token at the end of the output: {snip(text[-40:])}")
            self.check_convention(text, items, errors, "<loc_>")
        except Exception as exc:  # noqa: BLE001 - the parser never raises
            errors.append(f"parser failure {type(exc).__name__}: {exc}")
        return ParseResult(items=items, errors=errors)

    def render_output(self, items: Sequence[tuple[str, Box]], task: str = "read") -> str:
        out = []
        for t, b in items:
            x0, y0, x1, y1 = (int(v) for v in b)
            if task == "read":  # OCR_WITH_REGION quad: top-left, top-right, bottom-right, bottom-left
                out.append(f"{t}<loc_{x0}><loc_{y0}><loc_{x1}><loc_{y0}><loc_{x1}><loc_{y1}><loc_{x0}><loc_{y1}>")
            else:
                out.append(f"{t}<loc_{x0}><loc_{y0}><loc_{x1}><loc_{y1}>")
        return "</s><s>" + "".join(out) + "</s>"

    def plan(self, page_size_px, *, text_line_px, min_text_px, max_visual_tokens, task_kind,
             text_height_source, line_height_px, device_memory_bytes) -> EncodingPlan:
        return plan_squares(self.name, page_size_px, side=SIDE, tokens_per_tile=IMAGE_TOKENS,
                            text_line_px=text_line_px, min_text_px=min_text_px, line_height_px=line_height_px,
                            text_height_source=text_height_source, policy="Florence-2 768: ")

    def default_policy(self, page_size_px: tuple[int, int]) -> tuple[int, float]:
        return IMAGE_TOKENS, SIDE / page_size_px[1]  # the whole page stretched to 768x768

    def visual_tokens(self, encoded_size: tuple[int, int]) -> int:
        return IMAGE_TOKENS
