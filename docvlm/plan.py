"""The encoding plan: how each page is shown to a Qwen-VL model (native or tiled, at which exact size) and why.

Never imports torch. Public API (used by the VLM engines, `docvlm plan` and the benches):

- `FAMILIES[family] -> FamilySpec`: patch size, merge size, resize factor and the released preprocessor's
  default min/max pixels.
- `smart_resize(height, width, factor, min_pixels, max_pixels) -> (h, w)`: an exact copy of the rule in
  transformers' Qwen2-VL image processor (Qwen2.5-VL and Qwen3-VL use the same function with their factor).
- `estimate_text_height(page) -> (x_height_px | None, source)`: the smallest text on a page, in page pixels.
- `plan_page(page_size_px, family, ...) -> EncodingPlan`: the planner proper, on sizes only.
- `plan_for_page(page, options, family, task_kind) -> EncodingPlan`: estimation + planning for a `SourcePage`.
- `budget_from_device(device_memory_bytes, family) -> int`: default per-request visual-token budget.
- `render_tile(page_image, tile) -> PIL.Image`: crop + resize to exactly `tile.encoded_size`.

Every encoded size the planner emits is a fixed point of `smart_resize` (both sides multiples of the factor,
area inside [min_pixels, max_pixels]), so the processor leaves the image alone and the box transform back to
the page is exact (see docvlm.geometry).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from docvlm.datamodel import EncodingPlan, TilePlan

if TYPE_CHECKING:
    from PIL import Image

    from docvlm.datamodel import Family
    from docvlm.options import ConvertOptions
    from docvlm.sources import SourcePage, TextLayer

TaskKind = Literal["read", "ground", "extract"]
TextHeightSource = Literal["text_layer", "detector", "default"]


@dataclass(frozen=True)
class FamilySpec:
    """Vision-tower constants of a model family (from the released checkpoints' configs)."""

    patch_size: int
    merge_size: int
    min_pixels: int
    max_pixels: int

    @property
    def factor(self) -> int:
        """Side of the square of pixels that becomes one visual token after the merger."""
        return self.patch_size * self.merge_size


FAMILIES: dict[str, FamilySpec] = {
    # Qwen2-VL-*-Instruct and Qwen2.5-VL-*-Instruct preprocessor_config.json:
    # min_pixels 3136 (56*56), max_pixels 12845056 (16384*28*28), patch 14, merge 2.
    "qwen2": FamilySpec(patch_size=14, merge_size=2, min_pixels=56 * 56, max_pixels=16384 * 28 * 28),
    "qwen2.5": FamilySpec(patch_size=14, merge_size=2, min_pixels=56 * 56, max_pixels=16384 * 28 * 28),
    # Qwen3-VL-*-Instruct preprocessor_config.json: size.shortest_edge 65536, size.longest_edge 16777216
    # (16384*32*32), patch 16, merge 2.
    "qwen3": FamilySpec(patch_size=16, merge_size=2, min_pixels=65536, max_pixels=16384 * 32 * 32),
}

DEFAULT_MIN_X_HEIGHT_PX = 10.0
"""A line of text is readable when its x-height is about 10 px in the encoded image (DESIGN.md)."""
MAX_UPSCALE = 2.0
"""Tiny text (x-height below the threshold at page resolution) may be enlarged up to 2x: the vision tower
sees 14/16-px patches, and a 5-px x-height occupies a third of a patch, where Qwen-VL models misread
characters; interpolated pixels add no detail but keep each glyph over several patches. Beyond 2x the
token cost grows 4x for little gain, so the scale is capped there and the reason says so."""
TALL_ASPECT = 2.5
"""Height/width above which a page is a long receipt: vertical strips, never columns, when it must be tiled."""
OVERLAP_X_HEIGHTS = 4.0
"""Tiles overlap by at least 4 x-heights of the smallest text (about 1.6 of its line heights)..."""
OVERLAP_LINES = 1.2
"""... and by 1.2 times the tallest ordinary line (a heading must fit whole in some tile too)."""
MIN_OVERLAP_PX = 24
MIN_STRIP_ROWS = 8
MAX_STRIP_ASPECT = 8.0
"""A full-width strip thinner than 8 token rows, or more than 8 times wider than tall, wastes too much on
overlap and gives the model a sliver: a grid (columns) is used instead (long receipts always get strips)."""
PERCENTILE = 5.0
"""Low percentile of text heights taken as 'the smallest text' (the minimum is a stray glyph or a stamp)."""
MIN_TEXT_LAYER_WORDS = 3
MIN_WORD_CHARS = 3
"""Text-layer words shorter than this (sub/superscripts, footnote markers, bullets) don't set the smallest
text: a page of math would otherwise be planned for its subscripts."""
THUMBNAIL_TOKENS = 640
"""The extraction thumbnail gives layout context, not detail: at most 640 tokens (about 700x900 px)."""
MIN_LONGEST_SIDE_PX = 1024
"""Floor on the encoded longest side (for pages larger than that): big text or handwriting planned at 0.1x
would leave a 300-px thumbnail where every mark and estimate error is lost; 1024 px costs ~1000 tokens."""


# --- the processor's resize rule ------------------------------------------------------------------------


def smart_resize(
    height: int,
    width: int,
    factor: int = 28,
    min_pixels: int = 56 * 56,
    max_pixels: int = 14 * 14 * 4 * 1280,
) -> tuple[int, int]:
    """Exact copy of transformers' `qwen2_vl.image_processing_qwen2_vl.smart_resize` (also used by Qwen3-VL).

    Returns (height, width): both multiples of `factor`, area within [min_pixels, max_pixels], aspect ratio
    kept as closely as possible. Raises ValueError for an aspect ratio above 200, as the processor does.
    """
    if max(height, width) / min(height, width) > 200:
        raise ValueError(
            f"absolute aspect ratio must be smaller than 200, got {max(height, width) / min(height, width)}"
        )
    h_bar = round(height / factor) * factor
    w_bar = round(width / factor) * factor
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt((height * width) / max_pixels)
        h_bar = max(factor, math.floor(height / beta / factor) * factor)
        w_bar = max(factor, math.floor(width / beta / factor) * factor)
    elif h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h_bar = math.ceil(height * beta / factor) * factor
        w_bar = math.ceil(width * beta / factor) * factor
    return h_bar, w_bar


def family_smart_resize(height: int, width: int, family: Family) -> tuple[int, int]:
    """`smart_resize` with the family's factor and its released default min/max pixels."""
    spec = FAMILIES[family]
    return smart_resize(height, width, spec.factor, spec.min_pixels, spec.max_pixels)


def visual_tokens(encoded_size: tuple[int, int], family: Family) -> int:
    """Visual tokens after the merger for an encoded [width, height]."""
    f = FAMILIES[family].factor
    w, h = encoded_size
    return (w // f) * (h // f)


# --- the per-request budget -----------------------------------------------------------------------------

CPU_BUDGET_TOKENS = 1280
"""CPU: 1280 visual tokens (= the processor's own 28*28*1280 default ceiling for Qwen2-VL). Prefill cost grows
with tokens (and attention quadratically in the vision tower's windows); at ~1-2k tokens a 2B model on a few
cores still answers a tile in tens of seconds rather than minutes."""
GPU_TOKENS_PER_GIB = 512
"""On a GPU, activations for one request grow roughly linearly with visual tokens (KV cache and vision tower
activations of a 2B-7B model take well under 1 MiB per token in bf16); after the weights, ~512 tokens per GiB
of device memory leaves ample headroom for batching: 8 GiB -> 4096, 24 GiB -> 12288, capped at 16384."""
MAX_BUDGET_TOKENS = 16384


def budget_from_device(device_memory_bytes: int | None, family: Family) -> int:
    """Default per-request visual-token budget: CPU (None) -> 1280; GPU -> ~512 per GiB, in [2048, 16384].

    Overridden by `options.max_visual_tokens`. Never above the family's max_pixels, never below its min.
    """
    if device_memory_bytes is None:
        budget = CPU_BUDGET_TOKENS
    else:
        gib = device_memory_bytes / 2**30
        budget = int(min(MAX_BUDGET_TOKENS, max(2048, gib * GPU_TOKENS_PER_GIB)))
    return clamp_budget(budget, family)


def clamp_budget(budget: int, family: Family) -> int:
    """Keep a budget inside what the family's processor can emit for one image."""
    spec = FAMILIES[family]
    lo = math.ceil(spec.min_pixels / spec.factor**2)
    hi = spec.max_pixels // spec.factor**2
    return max(lo, min(hi, int(budget)))


# --- text height estimation -----------------------------------------------------------------------------


def percentile(values: list[float], pct: float) -> float:
    """Linear-interpolation percentile of a non-empty list (no numpy needed)."""
    vals = sorted(values)
    if len(vals) == 1:
        return vals[0]
    pos = (len(vals) - 1) * pct / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(vals) - 1)
    return vals[lo] + (vals[hi] - vals[lo]) * (pos - lo)


X_HEIGHT_PER_FONT_SIZE = 0.5
"""x-height is about half the font size in common Latin fonts (Helvetica 0.52, Times 0.45, Courier 0.42)."""


@dataclass(frozen=True)
class TextHeights:
    """Text sizes of a page in page pixels: the smallest x-height (readability) and the tallest line (overlap)."""

    x_height_px: float
    line_height_px: float
    source: TextHeightSource


LINE_HEIGHT_PER_FONT_SIZE = 1.25
LARGE_PERCENTILE = 98.0
"""High percentile of text heights taken as 'the tallest ordinary line' (a huge logo is not a text line)."""


def text_heights_from_text_layer(layer: TextLayer | None, dpi: float | None) -> TextHeights | None:
    """Smallest x-height (low percentile of font sizes / 2) and tallest line of a PDF text layer; None if sparse."""
    if layer is None or not dpi:
        return None
    sizes = [w.font_size_pt for w in layer.words if len(w.text.strip()) >= MIN_WORD_CHARS and w.font_size_pt >= 1.0]
    if len(sizes) < MIN_TEXT_LAYER_WORDS:
        return None
    k = dpi / 72.0
    return TextHeights(
        x_height_px=percentile(sizes, PERCENTILE) * X_HEIGHT_PER_FONT_SIZE * k,
        line_height_px=percentile(sizes, LARGE_PERCENTILE) * LINE_HEIGHT_PER_FONT_SIZE * k,
        source="text_layer",
    )


def x_height_from_text_layer(layer: TextLayer | None, dpi: float | None) -> float | None:
    """Low-percentile x-height (page px) of a PDF text layer's words, from their font sizes; None if too few."""
    heights = text_heights_from_text_layer(layer, dpi)
    return heights.x_height_px if heights else None


def detect_x_height(image: Image.Image) -> float | None:
    """Smallest x-height in page px found by the raster detector (`detect_text_heights`), or None."""
    heights = detect_text_heights(image)
    return heights.x_height_px if heights else None


SOLID_FILL = 0.85
"""A character component filling this share of its bounding box is a bar or a dash, not a letter."""


def detect_text_heights(image: Image.Image) -> TextHeights | None:
    """Fast text-size detector for raster pages (no model, no torch): OpenCV morphology, ~30-150 ms a page.

    Median blur (scanner speckle) -> adaptive threshold AND global Otsu (faint paper texture is not ink) ->
    a horizontal closing about 1.5 glyph heights wide joins letters and words into line segments ->
    connected components; keeps segments at least 3x wider than tall, holding 3+ glyphs that are not solid
    bars (so a dashed rule is not a line of tiny text), not huge. A line
    segment's ink runs from ascender to descender (about the font size), so x-height ~ 0.5 x its height (for
    all-caps receipts this underestimates, which errs on the readable side). Smallest x-height: 10th
    percentile; tallest line: 98th percentile. Returns None when no text-like segment is found.
    """
    import cv2
    import numpy as np

    gray = np.asarray(image.convert("L"))
    h, w = gray.shape
    if h < 8 or w < 8:
        return None
    block = max(15, (min(h, w) // 40) | 1)
    gray = cv2.medianBlur(gray, 3)  # scanner speckle would otherwise pass for the smallest glyphs
    ink = cv2.adaptiveThreshold(gray, 255, cv2.ADAPTIVE_THRESH_MEAN_C, cv2.THRESH_BINARY_INV, block, 15)
    # and darker than the page's global ink/paper split (Otsu): faint paper texture is not ink
    _, dark = cv2.threshold(gray, 0, 255, cv2.THRESH_BINARY_INV + cv2.THRESH_OTSU)
    ink = cv2.bitwise_and(ink, dark)
    # character components first: their median height sets the closing width that joins letters into words
    n1, labels1, stats, _ = cv2.connectedComponentsWithStats(ink, connectivity=8)
    ch = stats[1:, cv2.CC_STAT_HEIGHT]
    cw = stats[1:, cv2.CC_STAT_WIDTH]
    # a solid rectangle (a dash of a rule line, a bar) is no letter: dashed rules are not lines of tiny text
    solid = np.zeros(n1, dtype=bool)
    solid[1:] = stats[1:, cv2.CC_STAT_AREA] >= SOLID_FILL * np.maximum(1, ch * cw)
    glyph = (ch >= 5) & (ch <= h / 8) & (cw <= ch * 3) & (cw >= 1)
    if n1 <= 1 or glyph.sum() < 3:
        return None
    k = max(3, int(round(float(np.median(ch[glyph])) * 1.5)))
    closed = cv2.morphologyEx(ink, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_RECT, (k, 3)))
    n2, labels2, stats, _ = cv2.connectedComponentsWithStats(closed, connectivity=8)
    bh = stats[1:, cv2.CC_STAT_HEIGHT].astype(float)
    bw = stats[1:, cv2.CC_STAT_WIDTH].astype(float)
    area = stats[1:, cv2.CC_STAT_AREA].astype(float)
    fill = area / np.maximum(1.0, bh * bw)
    # letters per blob: a word joins several glyphs; a rule line or a smudge is one component
    on = ink > 0
    pairs = np.unique(labels2[on].astype(np.int64) * n1 + labels1[on].astype(np.int64))
    pairs = pairs[~solid[pairs % n1]]
    letters = np.bincount(pairs // n1, minlength=n2)[1:]
    word = (bh >= 6) & (bh <= h / 10) & (bw >= 3.0 * bh) & (fill >= 0.2) & (fill <= 0.95) & (letters >= 3)
    heights = [float(v) for v in bh[word]]
    if len(heights) < 3:
        return None
    return TextHeights(
        x_height_px=percentile(heights, 10.0) * 0.5,
        line_height_px=percentile(heights, LARGE_PERCENTILE) * 1.1,
        source="detector",
    )


def estimate_text_heights(page: SourcePage) -> TextHeights | None:
    """Text sizes from the PDF text layer when it has words, else the raster detector, else None."""
    layer = page.text_layer() if page.kind == "pdf" else None
    return text_heights_from_text_layer(layer, page.dpi) or detect_text_heights(page.render())


def estimate_text_height(page: SourcePage) -> tuple[float | None, TextHeightSource]:
    """Smallest text's x-height in page pixels: from the PDF text layer, else the raster detector, else None."""
    heights = estimate_text_heights(page)
    if heights is None:
        return None, "default"
    return heights.x_height_px, heights.source


# --- planning -------------------------------------------------------------------------------------------


def ceil_to(value: float, factor: int) -> int:
    """Smallest positive multiple of `factor` >= value (tolerant of float noise)."""
    return max(factor, math.ceil(value / factor - 1e-9) * factor)


def choose_scale(
    x_height_px: float | None, min_x_height_px: float, max_upscale: float = MAX_UPSCALE
) -> tuple[float, str]:
    """Smallest scale that keeps the x-height readable, capped at `max_upscale`; 1.0 when unknown."""
    if x_height_px is None or x_height_px <= 0:
        return 1.0, "text height unknown: page resolution kept (scale 1.0)"
    need = min_x_height_px / x_height_px
    if need > max_upscale:
        return max_upscale, (
            f"smallest x-height {x_height_px:.1f} px needs x{need:.2f} to reach {min_x_height_px:g} px; "
            f"capped at x{max_upscale:g}"
        )
    verb = "kept" if abs(need - 1.0) < 1e-9 else ("down" if need < 1 else "up")
    return need, f"smallest x-height {x_height_px:.1f} px -> {min_x_height_px:g} px: scaled {verb} x{need:.3f}"


def encode_size_for_crop(crop_w: int, crop_h: int, scale: float, family: Family) -> tuple[int, int]:
    """Encoded [w, h] of a crop at `scale`: rounded up to the factor, then the family's smart_resize.

    Rounding up keeps the x-height at or above the threshold; the result is a fixed point of smart_resize.
    """
    f = FAMILIES[family].factor
    th, tw = family_smart_resize(ceil_to(crop_h * scale, f), ceil_to(crop_w * scale, f), family)
    return tw, th


def _tile(index: int, kind: str, crop: tuple[int, int, int, int], scale: float, family: Family) -> TilePlan:
    x0, y0, x1, y1 = crop
    enc = encode_size_for_crop(x1 - x0, y1 - y0, scale, family)
    return TilePlan(index=index, kind=kind, crop_page_px=crop, encoded_size=enc, visual_tokens=visual_tokens(enc, family))


def _spans(length: int, n: int, overlap: int) -> list[tuple[int, int]]:
    """Cut [0, length) into n equal spans overlapping by `overlap`; the last ends exactly at `length`."""
    if n <= 1:
        return [(0, length)]
    size = min(length, math.ceil((length + (n - 1) * overlap) / n))
    step = (length - size) / (n - 1)
    spans = []
    for i in range(n):
        a = int(round(i * step))
        spans.append((a, min(length, a + size)))
    spans[-1] = (length - size, length)
    return spans


def _fits(size: int, scale: float, cells: int, f: int) -> bool:
    return ceil_to(size * scale, f) // f <= cells


def _count(length: int, max_span: int, overlap: int) -> int:
    if length <= max_span:
        return 1
    return max(2, math.ceil((length - overlap) / max(1, max_span - overlap)))


def _max_span(length_cells: int, scale: float, f: int) -> int:
    """Largest crop length (page px) whose scaled, factor-rounded size has at most `length_cells` cells."""
    return max(1, math.floor(length_cells * f / scale))


def plan_page(
    page_size_px: tuple[int, int],
    family: Family,
    *,
    x_height_px: float | None,
    min_x_height_px: float = DEFAULT_MIN_X_HEIGHT_PX,
    max_visual_tokens: int = CPU_BUDGET_TOKENS,
    task_kind: TaskKind = "read",
    text_height_source: TextHeightSource | None = None,
    line_height_px: float | None = None,
    max_page_tokens: int | None = None,
    max_upscale: float = MAX_UPSCALE,
) -> EncodingPlan:
    """Plan one page of `page_size_px` = (width, height) for `family`.

    Scale: the smallest that brings the smallest x-height to `min_x_height_px` (down-scaling big text, up to
    2x up-scaling of tiny text, 1.0 when the text height is unknown), but never below the scale that keeps
    the longest side at MIN_LONGEST_SIDE_PX (an estimate that is wrong on the high side must not erase the
    page) and never above the one that keeps the page within `max_page_tokens`. Native when the whole page at that scale
    fits `max_visual_tokens`; otherwise tiles at the same scale: full-width vertical strips when each strip is
    at least MIN_STRIP_ROWS token rows tall (long receipts, ordinary pages), else a grid; tiles overlap by
    4 x-heights and 1.2 tallest line heights (at most half a tile) so every line is whole in some tile. `task_kind == "extract"` adds a whole-page thumbnail
    within the budget to a tiled plan.

    Args:
        page_size_px: (width, height) in page pixels.
        family: qwen2, qwen2.5 or qwen3.
        x_height_px: smallest text x-height in page pixels, or None when unknown.
        min_x_height_px: readability threshold in encoded pixels.
        max_visual_tokens: per-request budget (clamped to what the family can emit for one image).
        task_kind: read, ground or extract.
        text_height_source: where x_height_px came from (recorded in the plan).
        line_height_px: tallest ordinary text line in page pixels (the overlap holds 1.2 of it), if known.
        max_page_tokens: ceiling on the page's total visual tokens (default: the family's max_pixels, 16384
            tokens, i.e. never more than the released processor would spend on one image).
        max_upscale: largest enlargement for tiny text (1.0 = never upscale).

    Returns:
        The EncodingPlan; every tile's encoded size is a fixed point of the family's smart_resize.
    """
    if family not in FAMILIES:
        raise ValueError(f"unknown model family {family!r}: use one of {', '.join(FAMILIES)}")
    width, height = int(page_size_px[0]), int(page_size_px[1])
    if width < 1 or height < 1:
        raise ValueError(f"page size must be positive, got {width}x{height}")
    spec = FAMILIES[family]
    f = spec.factor
    budget = clamp_budget(max_visual_tokens, family)
    source: TextHeightSource = text_height_source or ("default" if x_height_px is None else "text_layer")
    scale, why = choose_scale(x_height_px, min_x_height_px, max_upscale)
    floor = min(1.0, MIN_LONGEST_SIDE_PX / max(width, height))
    if scale < floor:
        scale = floor
        why += f"; raised to x{floor:.3f} so the longest side stays >= {MIN_LONGEST_SIDE_PX} px"
    page_tokens = max_page_tokens if max_page_tokens is not None else spec.max_pixels // (f * f)
    cap = math.sqrt(page_tokens * f * f / (width * height))
    if scale > cap:
        scale = cap
        why += f"; capped at x{cap:.3f} to stay within {page_tokens} visual tokens per page"
        if x_height_px:
            why += f" (the smallest text gets {x_height_px * cap:.1f} px, under the threshold)"
    if budget != max_visual_tokens:
        why += f"; budget {max_visual_tokens} clamped to {budget} for {family}"

    common = dict(
        family=family,
        page_size_px=(width, height),
        scale=round(scale, 6),
        min_text_height_px=None if x_height_px is None else round(float(x_height_px), 3),
        text_height_source=source,
        max_visual_tokens=budget,
    )
    ew, eh = ceil_to(width * scale, f), ceil_to(height * scale, f)
    aspect_ok = max(ew, eh) / min(ew, eh) <= 100
    native_tokens = (ew // f) * (eh // f)
    if aspect_ok:
        native = _tile(0, "page", (0, 0, width, height), scale, family)
        ew, eh = native.encoded_size
        native_tokens = native.visual_tokens
    if aspect_ok and native_tokens <= budget:
        return EncodingPlan(
            mode="native",
            tiles=[native],
            visual_tokens=native.visual_tokens,
            reason=f"{why}; native {ew}x{eh} = {native.visual_tokens} tokens <= budget {budget}",
            **common,
        )

    xh_page = x_height_px if x_height_px else min_x_height_px / scale
    need = (MIN_OVERLAP_PX, OVERLAP_X_HEIGHTS * xh_page, OVERLAP_LINES * (line_height_px or 0.0))
    overlap = int(math.ceil(max(need)))
    wide_cells = ceil_to(width * scale, f) // f
    strip_rows = budget // max(1, wide_cells)
    tall = height / width > TALL_ASPECT
    ox = 0
    if strip_rows >= max(MIN_STRIP_ROWS, wide_cells / MAX_STRIP_ASPECT) or (tall and strip_rows >= 1):
        nx = 1
        layout = "vertical strips" + (" (long page)" if tall else "")
    else:
        # grid: columns first so each tile keeps a reasonable height, then rows within the budget
        side = max(1, math.isqrt(budget))
        span_x = _max_span(side, scale, f)
        ox = min(overlap, span_x // 2)
        nx = _count(width, span_x, ox)
        layout = "grid"
    xs = _spans(width, nx, ox)
    col_w = max(b - a for a, b in xs)
    col_cells = ceil_to(col_w * scale, f) // f
    rows = max(1, budget // max(1, col_cells))
    max_h = _max_span(rows, scale, f)
    # never emit an aspect ratio the processor refuses
    max_h = min(max_h, _max_span(col_cells * 100, scale, f))
    overlap_y = min(overlap, max_h // 2)
    ny = _count(height, max_h, overlap_y)
    ys = _spans(height, ny, overlap_y)
    tiles: list[TilePlan] = []
    for y0, y1 in ys:
        for x0, x1 in xs:
            tiles.append(_tile(len(tiles), "tile", (x0, y0, x1, y1), scale, family))
    # safety net (not reached by construction): a tile over budget is shrunk until it fits
    if any(t.visual_tokens > budget for t in tiles):
        tiles = _shrink_to_budget(tiles, scale, budget, family)
    thumb = ""
    if task_kind == "extract":
        thumbnail = thumbnail_tile(len(tiles), (width, height), min(budget, THUMBNAIL_TOKENS), family)
        if thumbnail is not None:
            tiles.append(thumbnail)
            thumb = " + thumbnail"
        else:
            thumb = " (no thumbnail: the page is too thin to shrink into the budget)"
    total = sum(t.visual_tokens for t in tiles)
    enc = ", ".join(sorted({f"{t.encoded_size[0]}x{t.encoded_size[1]}" for t in tiles}))
    return EncodingPlan(
        mode="tiled",
        tiles=tiles,
        visual_tokens=total,
        reason=(
            f"{why}; native {ew}x{eh} = {native_tokens} tokens "
            + (f"> budget {budget}: " if aspect_ok else "has an aspect ratio above 100: ")
            + f"{layout} {nx}x{ny}{thumb}, overlap {overlap_y} px, tiles {enc}"
        ),
        **common,
    )


def _shrink_to_budget(tiles: list[TilePlan], scale: float, budget: int, family: Family) -> list[TilePlan]:
    out = []
    for t in tiles:
        s = scale
        while t.visual_tokens > budget and s > 1e-3:
            s *= 0.97
            t = _tile(t.index, t.kind, t.crop_page_px, s, family)
        out.append(t)
    return out


def thumbnail_tile(index: int, page_size_px: tuple[int, int], budget: int, family: Family) -> TilePlan | None:
    """The whole page shrunk to fit the budget (global context for extraction); None when it cannot fit
    (a page so thin that even one factor-wide column exceeds the budget or the processor's aspect limit)."""
    f = FAMILIES[family].factor
    width, height = page_size_px
    s = min(1.0, math.sqrt(budget * f * f / (width * height)))
    for _ in range(200):
        tw = max(f, math.floor(width * s / f) * f)
        th = max(f, math.floor(height * s / f) * f)
        if max(tw, th) / min(tw, th) > 200:
            return None
        th, tw = family_smart_resize(th, tw, family)
        enc = (tw, th)
        if visual_tokens(enc, family) <= budget:
            return TilePlan(index=index, kind="thumbnail", crop_page_px=(0, 0, width, height), encoded_size=enc,
                            visual_tokens=visual_tokens(enc, family))
        if tw == f and th == f:
            return None
        s *= 0.95
    return None


def plan_for_page(
    page: SourcePage,
    options: ConvertOptions,
    family: Family,
    task_kind: TaskKind = "read",
    *,
    device_memory_bytes: int | None = None,
) -> EncodingPlan:
    """Estimate the page's smallest text and plan it with the run's options.

    The budget is `options.max_visual_tokens` when set, else `budget_from_device(device_memory_bytes)`.
    """
    heights = estimate_text_heights(page)
    budget = options.max_visual_tokens or budget_from_device(device_memory_bytes, family)
    return plan_page(
        (page.width_px, page.height_px),
        family,
        x_height_px=heights.x_height_px if heights else None,
        line_height_px=heights.line_height_px if heights else None,
        min_x_height_px=options.min_x_height_px,
        max_visual_tokens=budget,
        task_kind=task_kind,
        text_height_source=heights.source if heights else "default",
    )


def render_tile(page_image: Image.Image, tile: TilePlan) -> Image.Image:
    """Crop the tile from the page image and resize it (bicubic, as the processor would) to its encoded size."""
    from PIL import Image as PILImage

    crop = page_image.crop(tile.crop_page_px)
    if crop.size == tuple(tile.encoded_size):
        return crop.convert("RGB")
    return crop.convert("RGB").resize(tuple(tile.encoded_size), PILImage.Resampling.BICUBIC)


@dataclass(frozen=True)
class PagePlanResult:
    """The plan of one page of a document, or the error that kept it from being planned."""

    path: str
    page: int
    plan: EncodingPlan | None
    error: str | None = None
    seconds: float = 0.0


def plan_document(
    path: str,
    options: ConvertOptions,
    family: Family,
    task_kind: TaskKind = "read",
    *,
    display_path: str | None = None,
    device_memory_bytes: int | None = None,
) -> list[PagePlanResult]:
    """Plan every selected page of one document (no model loaded). Input errors become error rows.

    A document that cannot be opened gives one row with page -1 and the error.
    """
    import time

    from docvlm.errors import DocvlmError
    from docvlm.sources import open_document

    shown = display_path or str(path)
    rows: list[PagePlanResult] = []
    try:
        doc = open_document(path, options, display_path=shown)
    except DocvlmError as exc:
        return [PagePlanResult(path=shown, page=-1, plan=None, error=str(exc))]
    with doc:
        try:
            for page in doc.pages():
                started = time.perf_counter()
                try:
                    plan = plan_for_page(page, options, family, task_kind, device_memory_bytes=device_memory_bytes)
                    rows.append(PagePlanResult(shown, page.index, plan, seconds=time.perf_counter() - started))
                except DocvlmError as exc:
                    rows.append(PagePlanResult(shown, page.index, None, error=str(exc)))
        except DocvlmError as exc:
            rows.append(PagePlanResult(shown, -1, None, error=str(exc)))
    return rows
