"""Every coordinate conversion in docvlm lives here, and nowhere else.

Frames (see DESIGN.md):
- model:   what the model printed, in the family's convention (its registry entry, docvlm.families, converts it):
           Qwen2-VL and Qwen3-VL: a 0-1000 grid over the encoded image; Qwen2.5-VL: absolute pixels of the
           encoded (already resized) image; PaliGemma: y_min, x_min, y_max, x_max on 1024 bins; Florence-2:
           1000 bins (bin centres); DeepSeek-OCR: 0-999 (value/999); LLaVA-NeXT: 0-1.
- encoded: pixels of the exact image the model saw (a tile, or the whole page after resize).
- page_px: pixels of the rendered page, origin top-left: the frame of the output.
- pdf_pt:  PDF points (1/72 inch) of the visible page (after /Rotate and CropBox), origin top-left.
           page_px = pdf_pt * dpi / 72 exactly, because pages are rendered from the visible box.
"""

from __future__ import annotations

from collections.abc import Sequence
from difflib import SequenceMatcher
from typing import TYPE_CHECKING

from docvlm.datamodel import Box

if TYPE_CHECKING:
    from docvlm.datamodel import Family, Line, TilePlan

GRID = 1000.0
"""Qwen2-VL and Qwen3-VL print boxes on a 0-1000 grid relative to the encoded image."""


def is_relative_family(family: Family) -> bool:
    """True for the Qwen families whose boxes are on the 0-1000 grid (Qwen2-VL, Qwen3-VL)."""
    return family in ("qwen2", "qwen3")


def model_to_encoded(box_model: Sequence[float], family: Family, encoded_size: tuple[int, int]) -> Box:
    """Model frame (as printed, in the family's order) -> encoded pixels [x0, y0, x1, y1]."""
    from docvlm.families import get_family

    return get_family(family).model_to_encoded(box_model, encoded_size)


def encoded_to_model(box_encoded: Sequence[float], family: Family, encoded_size: tuple[int, int]) -> Box:
    """Encoded pixels -> model frame, rounded/quantized as a model prints it (the oracle of tests and benches)."""
    from docvlm.families import get_family

    return get_family(family).encoded_to_model(box_encoded, encoded_size)


def tile_scales(tile: TilePlan) -> tuple[float, float]:
    """Page pixels per encoded pixel, separately for x and y (resizing rounds each side on its own)."""
    cx0, cy0, cx1, cy1 = tile.crop_page_px
    ew, eh = tile.encoded_size
    return (cx1 - cx0) / ew, (cy1 - cy0) / eh


def encoded_to_page(box_encoded: Sequence[float], tile: TilePlan) -> Box:
    """Encoded pixels of a tile -> page pixels, through the tile's offset and its x and y scales."""
    sx, sy = tile_scales(tile)
    ox, oy = tile.crop_page_px[0], tile.crop_page_px[1]
    x0, y0, x1, y1 = box_encoded
    return (ox + x0 * sx, oy + y0 * sy, ox + x1 * sx, oy + y1 * sy)


def page_to_encoded(box_page: Sequence[float], tile: TilePlan) -> Box:
    """Page pixels -> encoded pixels of a tile (inverse of `encoded_to_page`)."""
    sx, sy = tile_scales(tile)
    ox, oy = tile.crop_page_px[0], tile.crop_page_px[1]
    x0, y0, x1, y1 = box_page
    return ((x0 - ox) / sx, (y0 - oy) / sy, (x1 - ox) / sx, (y1 - oy) / sy)


def page_to_pdf(box_page: Sequence[float], dpi: float) -> Box:
    """Page pixels -> PDF points of the visible page."""
    k = 72.0 / dpi
    x0, y0, x1, y1 = box_page
    return (x0 * k, y0 * k, x1 * k, y1 * k)


def pdf_to_page(box_pdf: Sequence[float], dpi: float) -> Box:
    """PDF points of the visible page -> page pixels."""
    k = dpi / 72.0
    x0, y0, x1, y1 = box_pdf
    return (x0 * k, y0 * k, x1 * k, y1 * k)


def clamp_box(box: Sequence[float], width: float, height: float, *, x_min: float = 0.0, y_min: float = 0.0) -> Box:
    """Clamp a box into [x_min, width] x [y_min, height]."""
    x0, y0, x1, y1 = box
    return (
        min(max(x0, x_min), width),
        min(max(y0, y_min), height),
        min(max(x1, x_min), width),
        min(max(y1, y_min), height),
    )


def is_valid_box(box: Sequence[float]) -> bool:
    """x0 < x1 and y0 < y1 (an empty or inverted box is invalid)."""
    x0, y0, x1, y1 = box
    return x0 < x1 and y0 < y1


def model_to_page(box_model: Sequence[float], tile: TilePlan, family: Family) -> Box | None:
    """Model frame -> page pixels: to encoded pixels, clamped to the tile, checked, then through the tile offset.

    Returns None for a box that is inverted or empty after clamping; callers report it (never silently fix it).
    """
    ew, eh = tile.encoded_size
    enc = model_to_encoded(box_model, family, tile.encoded_size)
    if not is_valid_box(enc):
        return None
    enc = clamp_box(enc, ew, eh)
    if not is_valid_box(enc):
        return None
    return encoded_to_page(enc, tile)


def page_to_model(box_page: Sequence[float], tile: TilePlan, family: Family) -> Box:
    """Page pixels -> what a perfect model of `family` would print for this tile (oracle for tests/benches)."""
    return encoded_to_model(page_to_encoded(box_page, tile), family, tile.encoded_size)


def box_area(box: Sequence[float]) -> float:
    x0, y0, x1, y1 = box
    return max(0.0, x1 - x0) * max(0.0, y1 - y0)


def intersection(a: Sequence[float], b: Sequence[float]) -> float:
    return box_area((max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3])))


def iou(a: Sequence[float], b: Sequence[float]) -> float:
    inter = intersection(a, b)
    union = box_area(a) + box_area(b) - inter
    return inter / union if union > 0 else 0.0


def union_box(boxes: Sequence[Sequence[float]]) -> Box:
    return (
        min(b[0] for b in boxes),
        min(b[1] for b in boxes),
        max(b[2] for b in boxes),
        max(b[3] for b in boxes),
    )


def text_similarity(a: str, b: str) -> float:
    return SequenceMatcher(None, " ".join(a.split()).lower(), " ".join(b.split()).lower()).ratio()


def merge_duplicate_lines(lines: Sequence[Line], *, min_iou: float = 0.5, min_text: float = 0.8) -> list[Line]:
    """Merge lines read twice from overlapping tiles: same place (IoU, or one inside the other) and similar text.

    Of a duplicate pair the one with the larger box is kept (the other was cut by its tile's edge).
    """
    kept: list[Line] = []
    for line in lines:
        dup = None
        for i, other in enumerate(kept):
            if other.tile == line.tile:
                continue
            a, b = line.bbox_page_px, other.bbox_page_px
            overlap = iou(a, b)
            contained = intersection(a, b) / max(1e-9, min(box_area(a), box_area(b)))
            if (overlap >= min_iou or contained >= 0.9) and (
                text_similarity(line.text, other.text) >= min_text
                or line.text.strip() in other.text
                or other.text.strip() in line.text
            ):
                dup = i
                break
        if dup is None:
            kept.append(line)
        elif box_area(line.bbox_page_px) > box_area(kept[dup].bbox_page_px):
            kept[dup] = line
    return kept


def split_line_into_words(text: str, box: Sequence[float]) -> list[tuple[str, Box]]:
    """Split a line box into word boxes by character positions (for engines that give no word boxes).

    Each character gets an equal share of the line width; a word spans its characters.
    """
    x0, y0, x1, y1 = box
    n = len(text)
    if n == 0:
        return []
    step = (x1 - x0) / n
    words: list[tuple[str, Box]] = []
    i = 0
    while i < n:
        if text[i].isspace():
            i += 1
            continue
        j = i
        while j < n and not text[j].isspace():
            j += 1
        words.append((text[i:j], (x0 + i * step, y0, x0 + j * step, y1)))
        i = j
    return words


# --- upright frame: the page turned (and un-mirrored) so its text reads left to right ---------------------
# An orientation names the PIL `Image.transpose` method that turns the page as given into the upright image
# the OCR reads. Point maps are on continuous pixel edges: x in [0, width], y in [0, height].
ORIENTATIONS = ("none", "rotate_90", "rotate_180", "rotate_270", "flip_lr", "flip_tb", "transpose", "transverse")
_INVERSE = {"rotate_90": "rotate_270", "rotate_270": "rotate_90"}


def _transpose_point(x: float, y: float, orientation: str, width: float, height: float) -> tuple[float, float]:
    """Where point (x, y) of an image of `width` x `height` lands after `Image.transpose(orientation)`."""
    return {
        "none": (x, y),
        "rotate_90": (y, width - x),  # PIL ROTATE_90 turns counter-clockwise
        "rotate_180": (width - x, height - y),
        "rotate_270": (height - y, x),
        "flip_lr": (width - x, y),
        "flip_tb": (x, height - y),
        "transpose": (y, x),
        "transverse": (height - y, width - x),
    }[orientation]


def upright_to_page(box_upright: Sequence[float], orientation: str, upright_size: tuple[int, int]) -> Box:
    """A box read on the upright image (the page after `orientation`) -> the same box in page pixels."""
    return page_to_upright(box_upright, _INVERSE.get(orientation, orientation), upright_size)


def page_to_upright(box_page: Sequence[float], orientation: str, page_size: tuple[int, int]) -> Box:
    """A box in page pixels -> the same box on the upright image (the page after `orientation`)."""
    if orientation not in ORIENTATIONS:
        raise ValueError(f"unknown orientation {orientation!r}")
    x0, y0, x1, y1 = box_page
    w, h = page_size
    points = [_transpose_point(x, y, orientation, w, h) for x, y in ((x0, y0), (x1, y1))]
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    return (min(xs), min(ys), max(xs), max(ys))
