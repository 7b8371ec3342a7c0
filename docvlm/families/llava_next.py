"""LLaVA-NeXT (LLaVA 1.6: CLIP ViT-L/336 + projector + LLM): AnyRes; reads pages, prints no line boxes.

AnyRes (transformers `LlavaNextImageProcessor(Pil).get_image_patches`): the best of the grid pinpoints
[[336, 672], [672, 336], [672, 672], [1008, 336], [336, 1008]] is chosen (`select_best_resolution`), the
image is resized into it keeping its aspect (`_resize_for_patching`) and padded to it, centred
(`_pad_for_patching`, `_get_padding_size`: (target - new) // 2 before); the padded canvas is cut into 336-px
tiles, and the whole image is resized to 336x336 as the thumbnail (`resized_original_image`, a plain resize,
no padding). The model drops the features of the padding (`modeling_llava_next.unpad_image`). So the model sees
the image's content, never the padding: a normalized `[x1, y1, x2, y2]` answer to a referring query is relative
to the image, not to a padded square (LLaVA-1.5's `pad` mode padded to a square first; LLaVA-NeXT does not).
docvlm sends 672x672 squares (the 2x2 pinpoint: no resize, no padding, square thumbnail), where the two frames
coincide anyway.

Reading: the model prints plain text lines; docvlm.families.align gives them the ocr engine's boxes.
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
    wrong_convention_error,
)
from docvlm.families.square import plan_squares
from docvlm.families.tokens import out_of_range

if TYPE_CHECKING:
    from docvlm.datamodel import Box, EncodingPlan

PINPOINTS: tuple[tuple[int, int], ...] = ((336, 672), (672, 336), (672, 672), (1008, 336), (336, 1008))
"""image_grid_pinpoints of the llava-v1.6 checkpoints, (height, width)."""
PATCH_SIDE = 336
TOKENS_PER_PATCH = 576
"""CLIP ViT-L/14 at 336 px: 24 x 24 features per 336-px tile."""
SIDE = 672
PRINT_DECIMALS = 3
"""LLaVA prints normalized coordinates with 3 decimals ([0.123, 0.456, ...])."""
_BOX = re.compile(r"\[\s*([-+]?\d*\.?\d+)\s*,\s*([-+]?\d*\.?\d+)\s*,\s*([-+]?\d*\.?\d+)\s*,\s*([-+]?\d*\.?\d+)\s*\]")
_OPEN = re.compile(r"\[\s*[-+]?\d*\.?\d*(?:\s*,\s*[-+]?\d*\.?\d*){0,3}\s*$")
_SPECIAL = re.compile(r"</s>|<\|im_end\|>|<\|eot_id\|>|<\|endoftext\|>")


def select_best_resolution(size_hw: tuple[int, int], pinpoints: Sequence[tuple[int, int]] = PINPOINTS) -> tuple[int, int]:
    """transformers' `image_processing_utils.select_best_resolution`: the pinpoint keeping the most effective
    pixels of the image, then the least waste. (height, width) in and out."""
    h, w = size_hw
    best, best_eff, best_waste = pinpoints[0], -1, float("inf")
    for ph, pw in pinpoints:
        scale = min(pw / w, ph / h)
        dw, dh = int(w * scale), int(h * scale)
        eff = min(dw * dh, w * h)
        waste = ph * pw - eff
        if eff > best_eff or (eff == best_eff and waste < best_waste):
            best, best_eff, best_waste = (ph, pw), eff, waste
    return best


def anyres_tokens(size_hw: tuple[int, int]) -> tuple[int, float]:
    """(visual tokens, scale) LLaVA-NeXT's processor and model spend on an image of (height, width): the 336
    thumbnail, plus the grid's features after unpadding, plus one newline token per feature row."""
    h, w = size_hw
    ph, pw = select_best_resolution(size_hw)
    scale = min(pw / w, ph / h)
    grid_h, grid_w = ph // PATCH_SIDE * 24, pw // PATCH_SIDE * 24
    if w / h > grid_w / grid_h:
        rows, cols = int(round(h * grid_w / w, 7)), grid_w
    else:
        rows, cols = grid_h, int(round(w * grid_h / h, 7))
    return TOKENS_PER_PATCH + rows * cols + rows, scale


class LlavaNext(ModelFamily):
    name = "llava-next"
    title = "LLaVA-NeXT"
    convention = "plain text lines (grounded by aligning with OCR); [x1, y1, x2, y2] floats in 0-1 for a query"
    frame = "0-1 over the encoded image (the image, not a padded square)"
    model_types = ("llava_next",)
    served_patterns = (r"llava[-_ ]?(?:v?1\.6|next)",)
    hf_model_class = "LlavaNextForConditionalGeneration"
    hf_processor_class = "LlavaNextProcessor"
    prompt_style = "chat"
    grounds_documents = False
    own_conventions = ()
    memory = MemoryFigures("llava-hf/llava-v1.6-mistral-7b-hf", 7.57, 32, 8, 128)

    def processor_keeps(self, image_processor: object, size: tuple[int, int]) -> bool:
        """AnyRes keeps a w x h image as is when (h, w) is one of the processor's grid pinpoints and its sides are
        multiples of the 336-px crop: best resolution = the image, no resize, no padding."""
        pins = [tuple(p) for p in getattr(image_processor, "image_grid_pinpoints", None) or PINPOINTS]
        w, h = size
        return (h, w) in pins and w % PATCH_SIDE == 0 and h % PATCH_SIDE == 0

    def model_to_encoded(self, box_model: Sequence[float], encoded_size: tuple[int, int]) -> Box:
        x0, y0, x1, y1 = (float(v) for v in box_model)
        w, h = encoded_size
        return (x0 * w, y0 * h, x1 * w, y1 * h)

    def encoded_to_model(self, box_encoded: Sequence[float], encoded_size: tuple[int, int]) -> Box:
        x0, y0, x1, y1 = (float(v) for v in box_encoded)
        w, h = encoded_size
        r = PRINT_DECIMALS
        return (round(x0 / w, r), round(y0 / h, r), round(x1 / w, r), round(y1 / h, r))

    def grid_unit_px(self, encoded_size: tuple[int, int]) -> tuple[float, float]:
        return encoded_size[0] / 10**PRINT_DECIMALS, encoded_size[1] / 10**PRINT_DECIMALS

    def parse(self, raw_text: str) -> ParseResult:
        items: list[GroundedItem] = []
        errors: list[str] = []
        texts: list[str] = []
        try:
            text = _SPECIAL.sub("", str(raw_text))
            wrong = wrong_convention_error(text, self.title, self.own_conventions)
            if wrong is not None:
                return ParseResult(errors=[wrong])
            for line in text.splitlines():
                boxes = list(_BOX.finditer(line))
                if not boxes:
                    if _OPEN.search(line.rstrip()):
                        errors.append(f"unterminated [x1, y1, x2, y2] (output cut?): {snip(line)}")
                    elif line.strip():
                        texts.append(line.strip())
                    continue
                label = _BOX.sub(" ", line).strip(" :-,.\t") or None
                for m in boxes:
                    vals = [float(v) for v in m.groups()]
                    bad = out_of_range(vals, 0.0, 1.0)
                    if bad:
                        errors.append(f"normalized box value {bad[0]:g} outside 0..1: {snip(m.group(0))}")
                        continue
                    items.append(GroundedItem(text=label or "", box_model=tuple(vals), label=label))  # type: ignore[arg-type]
        except Exception as exc:  # noqa: BLE001 - the parser never raises
            errors.append(f"parser failure {type(exc).__name__}: {exc}")
        return ParseResult(items=items, errors=errors, texts=texts)

    def render_output(self, items: Sequence[tuple[str, Box]], task: str = "read") -> str:
        if task == "read":
            return "\n".join(t for t, _ in items)
        return "\n".join(f"{t}: [{', '.join(f'{v:.3f}' for v in b)}]" for t, b in items)

    def plan(self, page_size_px, *, text_line_px, min_text_px, max_visual_tokens, task_kind,
             text_height_source, line_height_px, device_memory_bytes) -> EncodingPlan:
        tokens, _ = anyres_tokens((SIDE, SIDE))
        return plan_squares(self.name, page_size_px, side=SIDE, tokens_per_tile=tokens, text_line_px=text_line_px,
                            min_text_px=min_text_px, line_height_px=line_height_px,
                            text_height_source=text_height_source, policy="LLaVA-NeXT AnyRes 2x2 (672): ")

    def default_policy(self, page_size_px: tuple[int, int]) -> tuple[int, float]:
        w, h = page_size_px
        return anyres_tokens((h, w))

    def visual_tokens(self, encoded_size: tuple[int, int]) -> int:
        return anyres_tokens((encoded_size[1], encoded_size[0]))[0]
