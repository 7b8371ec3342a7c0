"""The encoding plan: how each page is shown to a Qwen-VL model (native or tiled, at which exact size) and why.

Never imports torch. Public API (used by the VLM engines, `docvlm plan` and the benches):

- `FAMILIES[family] -> FamilySpec`: patch size, merge size, resize factor and the released preprocessor's
  default min/max pixels.
- `smart_resize(height, width, factor, min_pixels, max_pixels) -> (h, w)`: an exact copy of the rule in
  transformers' Qwen2-VL image processor (Qwen2.5-VL and Qwen3-VL use the same function with their factor).
- `choose_scale(page_size_px, family, text_line_px, min_text_px=16) -> ScaleDecision`: the readability
  policy (the one place that decides how large a page is encoded).
- `plan_page(page_size_px, family, ...) -> EncodingPlan`: the planner proper, on sizes only.
- `plan_for_page(page, options, family, task_kind) -> EncodingPlan`: text size (docvlm.textsize) + planning.
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
from docvlm.families.qwen import QWEN2_SPEC, QWEN3_SPEC, FamilySpec
from docvlm.textsize import TextSizeResult, estimate_text_size

if TYPE_CHECKING:
    from collections.abc import Iterator

    from PIL import Image

    from docvlm.datamodel import Family
    from docvlm.families.base import ModelFamily
    from docvlm.options import ConvertOptions
    from docvlm.sources import SourcePage

TaskKind = Literal["read", "ground", "extract"]
TextHeightSource = Literal["text_layer", "detector", "default"]
ScaleRule = Literal["floor", "default", "upscale-capped", "no-text", "longest-side", "page-tokens"]


FAMILIES: dict[str, FamilySpec] = {name: spec for name, spec in (("qwen2", QWEN2_SPEC), ("qwen2.5", QWEN2_SPEC),
                                                                  ("qwen3", QWEN3_SPEC))}
"""The smart_resize constants of the Qwen families (their registry entries, docvlm.families.qwen); the other
families plan through their own policy (`docvlm.families.get_family(name).plan`)."""

DEFAULT_MIN_TEXT_PX = 16.0
"""The readability floor: the page's small text (a low percentile of its line heights, see docvlm.textsize)
must be at least this many pixels tall in the encoded image. Anchor: olmOCR renders a Letter page at 1288 px
on its longest side (1.63 px/pt), so the 11-pt body text its models are trained on reaches them at ~18 px
font size, and 9-10-pt small print at 15-16 px font size, a line box of ~16-18 px. 16 px keeps every
glyph over at least one 14/16-px vision patch row. `--min-text-px` overrides."""
ESTIMATE_PER_LINE_BOX: dict[str, float] = {"text_layer": 1.0, "detector": 1.055, "default": 1.0}
"""How tall an estimate of the small text reads against the floor's own yardstick, a line box as annotated
(SROIE's line boxes), per source: the plan divides the estimate by it before scaling the text to the floor.

- text_layer: a font size is a line box height (docvlm.textsize.FONT_SIZE_TO_LINE).
- detector (the raster estimate, docvlm.textsize): it measures the ink of a line, ascender to descender, which
  is what SROIE's annotators boxed: on SROIE 000-149 its small text is 0.93 of the annotated small line on the
  median page, but up to ~1.05 on the pages where it errs high (a line the detector misses, or two lines
  closed into one). The floor is a per-page promise (95% of pages keep 95% of lines at the floor), so the
  factor is set by those pages, not the median: 1.055 is the smallest that keeps 95% of SROIE 000-149
  readable (bench/plan_bench.py; 1.0 keeps 89%). It is a safety margin against the estimate's spread, and it
  costs tokens on every page: the bench's `bound-*` rows show what a smaller spread would save. The issue's
  "ink is 0.75 of the line" holds for font sizes (the raster estimate on rendered PDF pages reads ~0.75-0.85 of
  the font size), not for ink-tight annotated boxes.
"""
MAX_UPSCALE = 3.0
"""Text under the floor at page resolution is enlarged until it reaches the floor, at most 3x: interpolated
pixels add no detail but keep each glyph over a whole patch, and a copy of a page resampled down to x0.3
must get the plan of the original (scale invariance). Beyond 3x the text was never legible in the source."""
NO_TEXT_LONGEST_SIDE_PX = 1288
"""A page where no text size could be measured is encoded with its longest side at 1288 px (olmOCR's
rendering of a Letter page), never above the family default: enough for text the detector missed."""
TALL_ASPECT = 2.5
"""Height/width above which a page is a long receipt: vertical strips, never columns, when it must be tiled."""
OVERLAP_SMALL_LINES = 2.0
"""Tiles overlap by at least 2 small-text line heights..."""
OVERLAP_LINES = 1.2
"""... and by 1.2 times the tallest ordinary line (a heading must fit whole in some tile too)."""
MIN_OVERLAP_PX = 24
MIN_STRIP_ROWS = 8
MAX_STRIP_ASPECT = 8.0
"""A full-width strip thinner than 8 token rows, or more than 8 times wider than tall, wastes too much on
overlap and gives the model a sliver: a grid (columns) is used instead (long receipts always get strips)."""
THUMBNAIL_TOKENS = 640
"""The extraction thumbnail gives layout context, not detail: at most 640 tokens (about 700x900 px)."""
MIN_LONGEST_SIDE_PX = 896
"""Floor on the encoded longest side (for pages larger than that): big text or handwriting planned at 0.1x
would leave a 300-px thumbnail where every mark and estimate error is lost; 896 px costs ~700 tokens. On SROIE
000-149 a 1024-px floor cost 1.7% more tokens than 896 for no page more readable (bench/plan_bench.py)."""


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


# --- planning -------------------------------------------------------------------------------------------


def ceil_to(value: float, factor: int) -> int:
    """Smallest positive multiple of `factor` >= value (tolerant of float noise)."""
    return max(factor, math.ceil(value / factor - 1e-9) * factor)


@dataclass(frozen=True)
class ScaleDecision:
    """The readability policy's answer for one page: the scale (encoded px per page px) and why."""

    scale: float
    rule: ScaleRule
    default_scale: float
    reason: str


def default_scale(width: int, height: int, family: Family) -> float:
    """Scale the family's released processor would apply to the whole page (smart_resize, default max_pixels);
    for a page the processor refuses (aspect ratio above 200), the scale that fits its max_pixels, at most 1."""
    if max(width, height) / min(width, height) > 200:
        return min(1.0, math.sqrt(FAMILIES[family].max_pixels / (width * height)))
    h, w = family_smart_resize(height, width, family)
    return math.sqrt((w * h) / (width * height))


def choose_scale(
    page_size_px: tuple[int, int],
    family: Family,
    text_line_px: float | None,
    *,
    min_text_px: float = DEFAULT_MIN_TEXT_PX,
    max_upscale: float = MAX_UPSCALE,
    max_page_tokens: int | None = None,
    source: TextHeightSource = "text_layer",
) -> ScaleDecision:
    """The readability policy, in one place: the scale at which the page's small text is `min_text_px` tall.

    `text_line_px` is the estimate from `source`; it is put on the floor's yardstick (a line box) first by
    dividing it by ESTIMATE_PER_LINE_BOX[source].

    - small text known: scale = min_text_px / text_line_px (down for big text, up for small text), so the
      encoded content size depends on the text's size relative to the page, not on the scan's resolution;
      never more than `max_upscale` up; when the family's default encoding already keeps the small text at or
      above the floor, this scale is at most the default's, so docvlm never spends more than the default then;
    - unknown (no text found): longest side NO_TEXT_LONGEST_SIDE_PX, at most the default's scale;
    - never below the scale that keeps the longest side at MIN_LONGEST_SIDE_PX (a wrong-high estimate must
      not erase the page), never above the family's tokens per page (`max_page_tokens`, default 16384).
    """
    width, height = page_size_px
    spec = FAMILIES[family]
    f = spec.factor
    base = default_scale(width, height, family)
    longest = max(width, height)
    if text_line_px is not None and text_line_px > 0:
        text_line_px = text_line_px / ESTIMATE_PER_LINE_BOX.get(source, 1.0)
    if text_line_px is None or text_line_px <= 0:
        scale = min(base, NO_TEXT_LONGEST_SIDE_PX / longest)
        rule: ScaleRule = "no-text"
        why = f"no text size measured: longest side {round(longest * scale)} px (x{scale:.3f})"
    else:
        need = min_text_px / text_line_px
        scale, rule = need, "floor"
        at_default = text_line_px * base
        why = (f"small text {text_line_px:.1f} px; floor {min_text_px:g} px -> x{need:.3f} "
               f"(the default x{base:.3f} gives it {at_default:.1f} px)")
        if need > max_upscale:
            scale, rule = max_upscale, "upscale-capped"
            why += f"; upscaling capped at x{max_upscale:g}: small text gets {text_line_px * scale:.1f} px"
    floor = min(1.0, base, MIN_LONGEST_SIDE_PX / longest)
    if scale < floor:
        scale, rule = floor, "longest-side"
        why += f"; raised to x{floor:.3f} so the longest side stays >= {MIN_LONGEST_SIDE_PX} px"
    page_tokens = max_page_tokens if max_page_tokens is not None else spec.max_pixels // (f * f)
    cap = math.sqrt(page_tokens * f * f / (width * height))
    if scale > cap:
        scale, rule = cap, "page-tokens"
        why += f"; capped at x{cap:.3f} to stay within {page_tokens} visual tokens per page"
        if text_line_px:
            why += f" (small text gets {text_line_px * cap:.1f} px, under the floor)"
    return ScaleDecision(scale=scale, rule=rule, default_scale=base, reason=why)


def encode_size_for_crop(crop_w: int, crop_h: int, scale: float, family: Family) -> tuple[int, int]:
    """Encoded [w, h] of a crop at `scale`: the height rounded up to the factor, the width to the nearest
    multiple of it, then the family's smart_resize (the result is a fixed point of it).

    The floor is a line *height*: rounding the height up keeps the small text at or above it, while the width
    only sets how wide the glyphs are, so it rounds to the nearest cell (at most half a cell narrower, e.g.
    14 px of 1000, 1.4%). Rounding both up cost SROIE 000-149 about 1.1% of the default's tokens on every
    page, the oracle as much (bench/plan_bench.py). The two sides then scale by slightly different factors, as
    smart_resize itself does; boxes map back through each side's own scale (docvlm.geometry.tile_scales).
    """
    f = FAMILIES[family].factor
    width = max(f, round(crop_w * scale / f) * f)
    th, tw = family_smart_resize(ceil_to(crop_h * scale, f), width, family)
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
    text_line_px: float | None = None,
    min_text_px: float = DEFAULT_MIN_TEXT_PX,
    max_visual_tokens: int = CPU_BUDGET_TOKENS,
    task_kind: TaskKind = "read",
    text_height_source: TextHeightSource | None = None,
    line_height_px: float | None = None,
    max_page_tokens: int | None = None,
    max_upscale: float = MAX_UPSCALE,
    x_height_px: float | None = None,
) -> EncodingPlan:
    """Plan one page of `page_size_px` = (width, height) for `family`.

    Scale: `choose_scale` (the readability policy). Native when the whole page at that scale fits
    `max_visual_tokens`; otherwise tiles at the same scale: full-width vertical strips when each strip is
    at least MIN_STRIP_ROWS token rows tall (long receipts, ordinary pages), else a grid; tiles overlap by
    two small-text lines and 1.2 tallest line heights (at most half a tile) so every line is whole in some
    tile. `task_kind == "extract"` adds a whole-page thumbnail within the budget to a tiled plan.

    Args:
        page_size_px: (width, height) in page pixels.
        family: qwen2, qwen2.5 or qwen3.
        text_line_px: the page's small-text line height in page pixels (docvlm.textsize), None when unknown.
        min_text_px: the readability floor on that height in encoded pixels.
        max_visual_tokens: per-request budget (clamped to what the family can emit for one image).
        task_kind: read, ground or extract.
        text_height_source: where text_line_px came from (recorded in the plan).
        line_height_px: tallest ordinary text line in page pixels (the overlap holds 1.2 of it), if known.
        max_page_tokens: ceiling on the page's total visual tokens (default: the family's max_pixels, 16384
            tokens, i.e. never more than the released processor would spend on one image).
        max_upscale: largest enlargement for small text (1.0 = never upscale).
        x_height_px: older callers' x-height; taken as half a line (text_line_px = 2 * x_height_px).

    Returns:
        The EncodingPlan; every tile's encoded size is a fixed point of the family's smart_resize.
    """
    if family not in FAMILIES:
        raise ValueError(f"unknown model family {family!r}: use one of {', '.join(FAMILIES)}")
    width, height = int(page_size_px[0]), int(page_size_px[1])
    if width < 1 or height < 1:
        raise ValueError(f"page size must be positive, got {width}x{height}")
    if text_line_px is None and x_height_px is not None:
        text_line_px = 2.0 * x_height_px
    spec = FAMILIES[family]
    f = spec.factor
    budget = clamp_budget(max_visual_tokens, family)
    source: TextHeightSource = text_height_source or ("default" if text_line_px is None else "text_layer")
    decision = choose_scale((width, height), family, text_line_px, min_text_px=min_text_px,
                            max_upscale=max_upscale, max_page_tokens=max_page_tokens, source=source)
    scale, why = decision.scale, decision.reason
    if budget != max_visual_tokens:
        why += f"; budget {max_visual_tokens} clamped to {budget} for {family}"

    common = dict(
        family=family,
        page_size_px=(width, height),
        scale=round(scale, 6),
        min_text_height_px=None if text_line_px is None else round(float(text_line_px) / 2, 3),
        text_height_source=source,
        text_line_px=None if text_line_px is None else round(float(text_line_px), 3),
        min_text_px=float(min_text_px),
        scale_rule=decision.rule,
        max_visual_tokens=budget,
    )
    ew, eh = ceil_to(width * scale, f), ceil_to(height * scale, f)
    aspect_ok = max(ew, eh) / min(ew, eh) <= 100
    native_tokens = (ew // f) * (eh // f)
    if aspect_ok:
        native = _tile(0, "page", (0, 0, width, height), scale, family)
        ew, eh = native.encoded_size
        native_tokens = native.visual_tokens
        if decision.rule == "floor" and eh / height < scale * (1 - 1e-9):
            # rounding up to the factor went over the family's max_pixels and smart_resize shrank the page
            common["scale_rule"] = "page-tokens"
            why += (f"; rounded to {ew}x{eh}, the family's max_pixels shrinks it a little under x{scale:.3f} "
                    "(small text just under the floor)")
    if aspect_ok and decision.rule in ("floor", "longest-side", "no-text") and decision.scale <= decision.default_scale \
            and max(width, height) / min(width, height) <= 200:
        # the scale rounds up to factor multiples; where that lands above the default's encoding
        # (which keeps the small text above the floor here), the default encoding is used
        dh, dw = family_smart_resize(height, width, family)
        if visual_tokens((dw, dh), family) < native_tokens:
            native = TilePlan(index=0, kind="page", crop_page_px=(0, 0, width, height), encoded_size=(dw, dh),
                              visual_tokens=visual_tokens((dw, dh), family))
            ew, eh, native_tokens = dw, dh, native.visual_tokens
            scale = decision.default_scale
            why += "; the family default encoding is smaller after rounding: used as is"
            common["scale"] = round(scale, 6)
            common["scale_rule"] = "default"
    if aspect_ok and native_tokens <= budget:
        return EncodingPlan(
            mode="native",
            tiles=[native],
            visual_tokens=native.visual_tokens,
            reason=f"{why}; native {ew}x{eh} = {native.visual_tokens} tokens <= budget {budget}",
            **common,
        )

    small_page = text_line_px if text_line_px else min_text_px / scale
    need = (MIN_OVERLAP_PX, OVERLAP_SMALL_LINES * small_page, OVERLAP_LINES * (line_height_px or 0.0))
    overlap = int(math.ceil(max(need)))
    wide_cells = ceil_to(width * scale, f) // f
    strip_rows = budget // max(1, wide_cells)
    tall = height / width > TALL_ASPECT
    ox = 0
    # a strip must also hold the overlap twice (a tall line, e.g. the text of a page turned by /Rotate 90)
    strip_ok = _max_span(strip_rows, scale, f) >= 2 * overlap
    if (strip_rows >= max(MIN_STRIP_ROWS, wide_cells / MAX_STRIP_ASPECT) and strip_ok) or (tall and strip_rows >= 1):
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
    policy: ModelFamily | None = None,
) -> EncodingPlan:
    """Estimate the page's text size (docvlm.textsize) and plan it with the run's options.

    The budget is `options.max_visual_tokens` when set, else `budget_from_device(device_memory_bytes)`.
    `policy`: the family entry for the loaded checkpoint (e.g. PaliGemma at its own resolution), default the
    registry's entry of `family`.
    """
    size = estimate_text_size(page)
    return plan_with_text_size(page, size, options, family, task_kind, device_memory_bytes=device_memory_bytes,
                               policy=policy)


def plan_with_text_size(
    page: SourcePage,
    size: TextSizeResult,
    options: ConvertOptions,
    family: Family,
    task_kind: TaskKind = "read",
    *,
    device_memory_bytes: int | None = None,
    policy: ModelFamily | None = None,
) -> EncodingPlan:
    """The family's encoding policy (its registry entry: `plan_page` for Qwen, squares for the fixed-resolution
    families) for a page whose text size is already estimated; the plan's reason starts with the estimate's."""
    from docvlm.families import get_family

    plan = (policy or get_family(family)).plan(
        (page.width_px, page.height_px),
        text_line_px=size.line_px,
        line_height_px=size.tall_px,
        min_text_px=options.min_text_px,
        max_visual_tokens=options.max_visual_tokens,
        task_kind=task_kind,
        text_height_source=size.source,
        device_memory_bytes=device_memory_bytes,
    )
    return plan.model_copy(update={"reason": f"{size.reason}; {plan.reason}"})


def render_tile(page_image: Image.Image, tile: TilePlan) -> Image.Image:
    """Crop the tile from the page image and resize it (bicubic, as the processor would) to its encoded size.

    A crop that reaches past the page (the square tiles of docvlm.families.square) is padded white there."""
    from PIL import Image as PILImage

    x0, y0, x1, y1 = tile.crop_page_px
    if x0 < 0 or y0 < 0 or x1 > page_image.width or y1 > page_image.height:
        canvas = PILImage.new("RGB", (x1 - x0, y1 - y0), "white")
        inside = (max(0, x0), max(0, y0), min(page_image.width, x1), min(page_image.height, y1))
        if inside[0] < inside[2] and inside[1] < inside[3]:
            canvas.paste(page_image.convert("RGB").crop(inside), (inside[0] - x0, inside[1] - y0))
        crop = canvas
    else:
        crop = page_image.crop(tile.crop_page_px)
    if crop.size == tuple(tile.encoded_size):
        return crop.convert("RGB")
    return crop.convert("RGB").resize(tuple(tile.encoded_size), PILImage.Resampling.BICUBIC)


def render_tiles(page: SourcePage, tiles: list[TilePlan]) -> list[Image.Image]:
    """The tiles of a plan, each exactly at its encoded size, from one rendering of the page at the largest
    scale any tile needs (`page.render_at`: MuPDF straight at that zoom, a JPEG decoded reduced), then one
    crop + resize per tile: a page is never rasterized at --dpi only to be shrunk."""
    from PIL import Image as PILImage

    if len(tiles) == 1 and tuple(tiles[0].crop_page_px) == (0, 0, page.width_px, page.height_px):
        return [page.render_sized(tuple(tiles[0].encoded_size))]  # a native plan: the page at its size
    if any(t.crop_page_px[0] < 0 or t.crop_page_px[1] < 0 or t.crop_page_px[2] > page.width_px
           or t.crop_page_px[3] > page.height_px for t in tiles):
        # square tiles padded past the page (docvlm.families.square): cut from the page at its own size, so
        # the white margin lands on whole page pixels and the transform back stays exact
        image = page.render()
        return [render_tile(image, t) for t in tiles]
    need = max(max(t.encoded_size[0] / max(1, t.crop_page_px[2] - t.crop_page_px[0]),
                   t.encoded_size[1] / max(1, t.crop_page_px[3] - t.crop_page_px[1])) for t in tiles)
    image, k = page.render_at(need)
    kx, ky = image.width / page.width_px, image.height / page.height_px
    out = []
    for t in tiles:
        x0, y0, x1, y1 = t.crop_page_px
        box = (x0 * kx, y0 * ky, x1 * kx, y1 * ky)
        if (x1 - x0, y1 - y0) == tuple(t.encoded_size) and k == 1.0:
            out.append(render_tile(image, t))
            continue
        # resize takes the crop box itself: no intermediate crop, sub-pixel exact
        rgb = image if image.mode == "RGB" else image.convert("RGB")
        out.append(rgb.resize(tuple(t.encoded_size), PILImage.Resampling.BICUBIC, box=box))
    return out


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
    return list(iter_plan_document(path, options, family, task_kind, display_path=display_path,
                                   device_memory_bytes=device_memory_bytes))


def iter_plan_document(
    path: str,
    options: ConvertOptions,
    family: Family,
    task_kind: TaskKind = "read",
    *,
    display_path: str | None = None,
    device_memory_bytes: int | None = None,
) -> Iterator[PagePlanResult]:
    """`plan_document`, one row at a time as each page is planned (a 5,000-page PDF streams its rows)."""
    import time

    from docvlm.errors import DocvlmError
    from docvlm.sources import open_document

    shown = display_path or str(path)
    try:
        doc = open_document(path, options, display_path=shown)
    except DocvlmError as exc:
        yield PagePlanResult(path=shown, page=-1, plan=None, error=str(exc))
        return
    with doc:
        try:
            for page in doc.pages():
                started = time.perf_counter()
                try:
                    plan = plan_for_page(page, options, family, task_kind, device_memory_bytes=device_memory_bytes)
                    row = PagePlanResult(shown, page.index, plan, seconds=time.perf_counter() - started)
                except DocvlmError as exc:
                    row = PagePlanResult(shown, page.index, None, error=str(exc))
                yield row
        except DocvlmError as exc:
            yield PagePlanResult(shown, -1, None, error=str(exc))
