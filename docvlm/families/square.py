"""The encoding policy of the fixed-square families (PaliGemma, Florence-2, DeepSeek-OCR, LLaVA-NeXT).

Their processors take any image to a fixed square (PaliGemma 224/448/896, Florence-2 768, DeepSeek-OCR's
512/640/1024/1280 modes, LLaVA-NeXT's 672 = 2x2 AnyRes grid), stretching it (PaliGemma, Florence-2) or
padding it (DeepSeek-OCR, LLaVA-NeXT) on their own. docvlm hands them an image that already is that square,
so the processor's resize is the identity and no padding is added, and boxes map back exactly:

- the scale comes from the same readability floor as the Qwen planner: the page's small text must be
  `min_text_px` tall in the encoded square (at most MAX_UPSCALE up);
- a square of side `tile_px = side / scale` page pixels is cut from the page: **cut, not stretched**, so the
  scale is the same along x and y and text keeps its shape;
- along an axis where the page is longer than a square, squares are laid with overlap (two small-text lines,
  1.2 tallest lines), the last one ending at the page edge; along an axis where the page is shorter, the square
  reaches past the page edge and that part is **padded white** by `plan.render_tile` (crop_page_px then
  extends beyond the page; the map back is unchanged, and boxes are clamped to the page afterwards);
- a page whose longest side fits one square is one tile (mode "native": the page padded to a square);
- at most `max_tiles` squares per page: beyond that the scale drops (the plan's reason says the floor is missed).
"""

from __future__ import annotations

import math

from docvlm.datamodel import EncodingPlan, TilePlan

DEFAULT_MAX_TILES = 24
"""At most 24 squares per page (a long receipt at the floor needs ~6-10 at 448-896 px)."""


def _spans(length: int, tile: int, overlap: int) -> list[tuple[int, int]]:
    """Spans of `tile` page px covering [0, length) with at least `overlap` between neighbours; a page shorter
    than a tile gets one span (0, tile) that reaches past its end (padded)."""
    if length <= tile:
        return [(0, tile)]
    step = max(1, tile - overlap)
    n = max(2, math.ceil((length - tile) / step) + 1)
    stride = (length - tile) / (n - 1)
    return [(int(round(i * stride)), int(round(i * stride)) + tile) for i in range(n - 1)] + [(length - tile, length)]


def plan_squares(
    family: str,
    page_size_px: tuple[int, int],
    *,
    side: int,
    tokens_per_tile: int,
    text_line_px: float | None,
    min_text_px: float,
    line_height_px: float | None = None,
    text_height_source: str | None = None,
    max_tiles: int = DEFAULT_MAX_TILES,
    policy: str = "",
) -> EncodingPlan:
    """Plan one page as `side` x `side` squares cut from it (see the module docstring)."""
    from docvlm.plan import (
        MAX_UPSCALE,
        MIN_OVERLAP_PX,
        NO_TEXT_LONGEST_SIDE_PX,
        OVERLAP_LINES,
        OVERLAP_SMALL_LINES,
    )

    width, height = int(page_size_px[0]), int(page_size_px[1])
    if width < 1 or height < 1:
        raise ValueError(f"page size must be positive, got {width}x{height}")
    longest = max(width, height)
    if text_line_px and text_line_px > 0:
        scale = min(min_text_px / text_line_px, MAX_UPSCALE)
        rule = "floor" if scale < MAX_UPSCALE else "upscale-capped"
        why = f"small text {text_line_px:.1f} px; floor {min_text_px:g} px -> x{scale:.3f}"
    else:
        scale = min(1.0, NO_TEXT_LONGEST_SIDE_PX / longest)
        rule = "no-text"
        why = f"no text size measured: longest side {round(longest * scale)} px (x{scale:.3f})"
    if longest * scale <= side:
        # the whole page fits one square at the floor: one tile, the page padded to a square, scale side/longest
        scale = side / longest
        tile = TilePlan(index=0, kind="page", crop_page_px=(0, 0, longest, longest), encoded_size=(side, side),
                        visual_tokens=tokens_per_tile)
        return EncodingPlan(
            family=family, mode="native", page_size_px=(width, height), scale=round(scale, 6),
            min_text_height_px=None if text_line_px is None else round(text_line_px / 2, 3),
            text_height_source=text_height_source or ("default" if text_line_px is None else "text_layer"),
            text_line_px=None if text_line_px is None else round(float(text_line_px), 3),
            min_text_px=float(min_text_px), scale_rule=rule, tiles=[tile], visual_tokens=tokens_per_tile,
            max_visual_tokens=tokens_per_tile,
            reason=f"{why}; {policy}the page fits one {side}x{side} square at x{scale:.3f}: padded white to "
                   f"{longest}x{longest} page px (no stretch), {tokens_per_tile} tokens",
        )
    small = text_line_px if text_line_px else min_text_px / scale
    overlap = int(math.ceil(max(MIN_OVERLAP_PX, OVERLAP_SMALL_LINES * small, OVERLAP_LINES * (line_height_px or 0))))
    for _ in range(200):
        tile_px = max(1, int(math.floor(side / scale)))
        ov = min(overlap, tile_px // 2)
        xs, ys = _spans(width, tile_px, ov), _spans(height, tile_px, ov)
        if len(xs) * len(ys) <= max_tiles:
            break
        scale *= 0.95
        rule = "page-tokens"
    if rule == "page-tokens":
        why += f"; lowered to x{scale:.3f} to stay within {max_tiles} squares per page"
        if text_line_px:
            why += f" (small text gets {text_line_px * scale:.1f} px, under the floor)"
    tiles = [
        TilePlan(index=i, kind="tile", crop_page_px=(x0, y0, x1, y1), encoded_size=(side, side),
                 visual_tokens=tokens_per_tile)
        for i, ((y0, y1), (x0, x1)) in enumerate((y, x) for y in ys for x in xs)
    ]
    total = tokens_per_tile * len(tiles)
    pad = " (squares reach past the page edge: padded white)" if width < tile_px or height < tile_px else ""
    return EncodingPlan(
        family=family, mode="tiled", page_size_px=(width, height), scale=round(side / tile_px, 6),
        min_text_height_px=None if text_line_px is None else round(text_line_px / 2, 3),
        text_height_source=text_height_source or ("default" if text_line_px is None else "text_layer"),
        text_line_px=None if text_line_px is None else round(float(text_line_px), 3),
        min_text_px=float(min_text_px), scale_rule=rule, tiles=tiles, visual_tokens=total,
        max_visual_tokens=tokens_per_tile,
        reason=f"{why}; {policy}{len(xs)}x{len(ys)} squares of {tile_px} page px -> {side}x{side}, overlap {ov} px"
               f"{pad}, {tokens_per_tile} tokens each",
    )
