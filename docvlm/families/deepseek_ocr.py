"""DeepSeek-OCR (SAM + CLIP "DeepEncoder" + DeepSeek-3B-MoE): resolution modes; `<|det|>` boxes on 0-999.

Convention: `<|ref|>label<|/ref|><|det|>[[x1, y1, x2, y2], ...]<|/det|>`; in the document modes
(`<|grounding|>Convert the document to markdown.`) the ref is the block type (text, title, table, ...) and
the block's text follows the `<|/det|>` up to the next `<|ref|>`. Values are on 0..999 and mean value/999 of
the image's width (x) or height (y): DeepSeek-OCR's own drawing code does `x1 = int(x1 / 999 * image_width)`.
Modes (the DeepSeek-OCR paper / README): Tiny 512 (64 tokens), Small 640 (100), Base 1024 (256, padded to a
square), Large 1280 (400, padded), Gundam n x 640 crops + a 1024 global view. docvlm cuts squares itself
(docvlm.families.square) in the mode that needs the fewest tokens at the readability floor, so no padding is
added by the model's own preprocessing and value/999 is of that square.

transformers 5.24 ships DeepSeek-OCR 2 (`deepseek_ocr2`, DeepseekOcr2ForConditionalGeneration) but not
DeepSeek-OCR; the hf engine detects neither as runnable (see docvlm.engines.hf); the openai engine (vLLM) runs it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

from docvlm.families.base import (
    GroundedItem,
    MemoryFigures,
    ModelFamily,
    ParseResult,
    snip,
)
from docvlm.families.square import plan_squares
from docvlm.families.tokens import numbers, out_of_range

if TYPE_CHECKING:
    from docvlm.datamodel import Box, EncodingPlan

GRID_MAX = 999.0
MODES: dict[str, tuple[int, int]] = {"tiny": (512, 64), "small": (640, 100), "base": (1024, 256), "large": (1280, 400)}
"""Mode -> (square side, vision tokens) from the DeepSeek-OCR README."""
DEFAULT_MODE = "base"
"""The mode DeepSeek-OCR's own examples use for a whole page (its processor's default size 1024)."""
_PAIR = re.compile(r"<\|ref\|>(?P<ref>.*?)<\|/ref\|>\s*<\|det\|>(?P<det>.*?)<\|/det\|>", re.S)
_BOX = re.compile(r"\[([^\[\]]*)\]")
_SPECIAL = re.compile(r"<\|(?:end▁of▁sentence|grounding|begin▁of▁sentence)\|>|<｜end▁of▁sentence｜>")


class DeepSeekOcr(ModelFamily):
    name = "deepseek-ocr"
    title = "DeepSeek-OCR"
    convention = "<|ref|>label<|/ref|><|det|>[[x1, y1, x2, y2]]<|/det|> (then the block's text)"
    frame = "0-999 over the encoded square (value/999 of its side)"
    model_types = ("deepseek_vl_v2", "deepseek_ocr")
    served_patterns = (r"deepseek[-_ ]?ocr",)
    hf_model_class = None
    hf_processor_class = None
    prompt_style = "chat"
    own_conventions = ("DeepSeek-OCR <|det|>",)
    memory = MemoryFigures("deepseek-ai/DeepSeek-OCR", 3.34, 12, 10, 128)

    def model_to_encoded(self, box_model: Sequence[float], encoded_size: tuple[int, int]) -> Box:
        x0, y0, x1, y1 = (float(v) for v in box_model)
        w, h = encoded_size
        return (x0 / GRID_MAX * w, y0 / GRID_MAX * h, x1 / GRID_MAX * w, y1 / GRID_MAX * h)

    def encoded_to_model(self, box_encoded: Sequence[float], encoded_size: tuple[int, int]) -> Box:
        x0, y0, x1, y1 = (float(v) for v in box_encoded)
        w, h = encoded_size
        return (float(round(x0 / w * GRID_MAX)), float(round(y0 / h * GRID_MAX)),
                float(round(x1 / w * GRID_MAX)), float(round(y1 / h * GRID_MAX)))

    def grid_unit_px(self, encoded_size: tuple[int, int]) -> tuple[float, float]:
        return encoded_size[0] / GRID_MAX, encoded_size[1] / GRID_MAX

    def parse(self, raw_text: str) -> ParseResult:
        items: list[GroundedItem] = []
        errors: list[str] = []
        try:
            text = _SPECIAL.sub("", str(raw_text))
            pairs = list(_PAIR.finditer(text))
            for i, m in enumerate(pairs):
                ref = m.group("ref").strip()
                end = pairs[i + 1].start() if i + 1 < len(pairs) else len(text)
                body = text[m.end():end]
                cut = body.find("<|ref|>")
                body = (body if cut < 0 else body[:cut]).strip()
                boxes = _BOX.findall(m.group("det"))
                if not boxes:
                    errors.append(f"<|det|> without [x1, y1, x2, y2]: {snip(m.group(0))}")
                for inner in boxes:
                    vals = numbers(inner)
                    if len(vals) != 4:
                        errors.append(f"<|det|> box with {len(vals)} numbers instead of 4: {snip(m.group(0))}")
                        continue
                    bad = out_of_range(vals, 0, GRID_MAX)
                    if bad:
                        errors.append(f"<|det|> value {bad[0]:g} outside 0..999: {snip(m.group(0))}")
                        continue
                    items.append(GroundedItem(text=body or ref, box_model=tuple(vals), label=ref or None))  # type: ignore[arg-type]
            tail = text[pairs[-1].end():] if pairs else text
            if re.search(r"<\|det\|>(?!.*<\|/det\|>)", tail, re.S) or re.search(r"<\|(?:/?r?e?f?|d?e?t?)$", text.rstrip()):
                errors.append(f"unterminated <|det|> (output cut?): {snip(tail[-60:])}")
            self.check_convention(text, items, errors, "<|det|>")
        except Exception as exc:  # noqa: BLE001 - the parser never raises
            errors.append(f"parser failure {type(exc).__name__}: {exc}")
        return ParseResult(items=items, errors=errors)

    def render_output(self, items: Sequence[tuple[str, Box]], task: str = "read") -> str:
        if task == "read":
            return "\n\n".join(f"<|ref|>text<|/ref|><|det|>[[{', '.join(str(int(v)) for v in b)}]]<|/det|>\n{t}"
                               for t, b in items)
        return "".join(f"<|ref|>{t}<|/ref|><|det|>[[{', '.join(str(int(v)) for v in b)}]]<|/det|>" for t, b in items)

    def plan(self, page_size_px, *, text_line_px, min_text_px, max_visual_tokens, task_kind,
             text_height_source, line_height_px, device_memory_bytes) -> EncodingPlan:
        plans = [plan_squares(self.name, page_size_px, side=side, tokens_per_tile=tokens, text_line_px=text_line_px,
                              min_text_px=min_text_px, line_height_px=line_height_px,
                              text_height_source=text_height_source, policy=f"DeepSeek-OCR {mode} mode ({side}): ")
                 for mode, (side, tokens) in MODES.items()]
        # the mode that needs the fewest tokens at the floor; on a tie the larger square (fewer seams)
        return min(plans, key=lambda p: (p.visual_tokens, -p.tiles[0].encoded_size[0]))

    def default_policy(self, page_size_px: tuple[int, int]) -> tuple[int, float]:
        side, tokens = MODES[DEFAULT_MODE]
        return tokens, side / max(page_size_px)  # whole page resized into the square, padded

    def visual_tokens(self, encoded_size: tuple[int, int]) -> int:
        for side, tokens in MODES.values():
            if encoded_size == (side, side):
                return tokens
        return (encoded_size[0] // 64) * (encoded_size[1] // 64)
