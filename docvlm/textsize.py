"""How big is the text on a page? Line heights from the PDF text layer, or from a text detector on raster pages.

Never imports torch. The raster estimate measures ink lines on a grayscale copy of the page at a fixed area
(`WORK_AREA_PX`), so the result is the same for a page and any resampled copy of it (scale-invariant by
construction), in tens of milliseconds: see the section "the raster estimate" below.

The quantity is the *line height*: the height of a text line's box as an annotator or an OCR engine draws it
(ascender to descender, about the font size). "Small text" is a low percentile of a page's line heights.

Public API:

- `estimate_text_size(page) -> TextSizeResult`: text layer first, else the raster estimate; computed once per
  page and kept with it (`page.text_size`), so the planner, the layout stage and the benches share it.
- `text_size_from_text_layer(layer, dpi) -> TextSizeResult | None`
- `detect_text_size(image) -> TextSizeResult`: the raster estimate (a result with `line_px=None` and a reason
  when the page shows no text).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    import numpy as np
    from PIL import Image

    from docvlm.sources import SourcePage, TextLayer

TextSizeSource = Literal["text_layer", "detector", "default"]

SMALL_PERCENTILE = 5.0
"""Percentile of a page's line heights taken as its small text (the minimum is a stray mark or a stamp). The
readability goal is stated on the same percentile: 95% of a page's lines at or above the floor."""
TALL_PERCENTILE = 98.0
"""Percentile taken as its tallest ordinary line (a logo is not a line): sets the tile overlap."""
INK_TO_LINE = 1.0
"""Ink height -> the line height the estimate reports. 1.0: the estimate is the ink (ascender to descender),
which errs small against an annotated line box; the planner corrects that bias where it decides the scale
(docvlm.plan.INK_TO_LINE_BOX), so this stays the measurement."""


@dataclass(frozen=True)
class TextSizeResult:
    """Text line heights of one page, in page pixels, and where they came from.

    `line_px` is the small text (a low percentile of line heights), `body_px` the median line, `tall_px` the
    tallest ordinary line; all None when no text was found (then `reason` says why).
    """

    line_px: float | None
    body_px: float | None
    tall_px: float | None
    lines: int
    source: TextSizeSource
    reason: str
    seconds: float = 0.0


def percentile(values: list[float], pct: float) -> float:
    """Linear-interpolation percentile of a non-empty list (no numpy needed)."""
    vals = sorted(values)
    if len(vals) == 1:
        return vals[0]
    pos = (len(vals) - 1) * pct / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(vals) - 1)
    return vals[lo] + (vals[hi] - vals[lo]) * (pos - lo)


def no_text(reason: str, source: TextSizeSource = "default", seconds: float = 0.0) -> TextSizeResult:
    return TextSizeResult(None, None, None, 0, source, reason, seconds)


# --- PDF text layer ---------------------------------------------------------------------------------------


def text_size_from_text_layer(layer: TextLayer | None, dpi: float | None) -> TextSizeResult | None:
    """Line heights of a PDF text layer from its words' font sizes (page px at `dpi`); None when too sparse."""
    if layer is None or not dpi:
        return None
    sizes = [w.font_size_pt for w in layer.words if len(w.text.strip()) >= MIN_WORD_CHARS and w.font_size_pt >= 1.0]
    if len(sizes) < MIN_TEXT_LAYER_WORDS:
        return None
    k = dpi / 72.0 * FONT_SIZE_TO_LINE
    small = percentile(sizes, SMALL_PERCENTILE) * k
    return TextSizeResult(
        line_px=small,
        body_px=percentile(sizes, 50.0) * k,
        tall_px=percentile(sizes, TALL_PERCENTILE) * k * 1.2,
        lines=len(sizes),
        source="text_layer",
        reason=f"text layer: {len(sizes)} words, small text {small / k:.1f} pt",
    )


# --- the raster estimate ----------------------------------------------------------------------------------
#
# Measured on a grayscale copy of the page at a fixed area (WORK_AREA_PX), so a page and any resampled copy of
# it give the same answer relative to the page (scale invariance), and a 4961x7016 scan costs what a 1-MP
# receipt costs. Large JPEGs are decoded reduced (Pillow's draft mode: the DCT is scaled by 1/2..1/8 inside the
# decoder), scanned PDF pages are rendered by MuPDF at the preview zoom (SourcePage.preview). Then:
#
# 1. ink: adaptive threshold (local mean), so uneven light on a photo and faded thermal print both binarize;
# 2. glyphs: connected components about as tall as wide; their median height sizes the next step;
# 3. lines: ink closed horizontally by GLYPH_GAP of a glyph (letters and words of a line merge, lines do not)
#    and a little vertically (dot-matrix rows); components wider than LINE_MIN_ASPECT x their height are text
#    lines, and their box height is the line's ink height (ascender to descender);
# 4. rules (dashed lines, underlines) and stray marks are thinner than MIN_RULE_RATIO of the median line.
#
# This replaced a DB text detector (PP-OCR det, ONNX) at 1 MP plus an ink measurement per line: 1.3-3 s per
# page on a busy 2-core machine against ~25 ms CPU here (bench/plan_bench.py), at the same accuracy against
# SROIE's line annotations.

WORK_AREA_PX = 500_000
"""Pages are measured at this area (about 590x840 for A4, 470x1060 for a receipt): 7-pt text of an A4 page is
still ~7 px tall, a 3-px glyph is the smallest component kept. 1 MP gave the same SROIE accuracy at 1.5x the
time (bench/plan_bench.py, SROIE 000-149)."""
DETECT_MAX_ASPECT = 40.0
"""Pages thinner than 1:40 are not measured (the resampled strip would be a few px wide)."""
THRESHOLD_BLOCK_PX = 25
"""Adaptive threshold window (work px): a few line heights of body text, so the local mean is the paper's."""
THRESHOLD_OFFSET = 12
"""A pixel is ink when it is this much darker than its window's mean (grey levels): noise on white paper is not."""
MIN_GLYPH_PX = 3
MIN_LINE_PX = 4
"""A line under 4 work px (7-pt A4 text is ~7) is a speck row or noise, not text anyone could read."""
GLYPH_MIN_TALLNESS = 0.5
"""A glyph component is at least half as tall as wide (dashes, rules and merged words are not glyphs)."""
GLYPH_GAP = 0.8
"""Horizontal closing, in median glyph heights: bridges letter and word gaps, not column gaps."""
DOT_GAP = 0.25
"""Vertical closing, in median glyph heights: bridges the empty rows between a dot-matrix printer's dots."""
LINE_MIN_ASPECT = 1.5
"""A text line (or word) component is at least 1.5x as wide as tall; single glyphs, logos and specks are not."""
MAX_LINE_SHARE = 0.125
"""A component taller than 1/8 of the page is a picture or a block of merged lines, not a line."""
MAX_INK_SHARE = 0.25
"""More of the page than this reads as ink: texture, noise or a photo, not a printed page (SROIE receipts and
FUNSD forms measure 0.02-0.14; uniform noise 0.4). No text size is measured then."""
MIN_LINES = 3
"""Fewer measured lines than this: the page is treated as showing no text."""
MIN_LINE_GLYPHS = 2
LINE_GLYPH_SHARE = 0.7
"""A text line holds at least MIN_LINE_GLYPHS glyphs each at least LINE_GLYPH_SHARE of the line's height (a
word's capitals, digits, ascenders). Speckle of a noisy scan, a shadow along the paper's edge or a stamp's
texture, closed horizontally, also makes wide components of line height, but of dots: none of its pieces is
nearly as tall as the component. Dropping them is what keeps them from setting the small text (on SROIE
000-149 the spread of estimate / annotated small line fell from 0.119 to 0.092 in log sd,
bench/plan_bench.py)."""
MIN_RULE_RATIO = 0.55
"""A line thinner than this share of the page's median line is a rule, a dashed line or an underline, not
small text: genuine small print on a receipt or form is at least about half the size of its body text."""
FONT_SIZE_TO_LINE = 1.0
"""PDF text layer: a line's box height is about its font size (ascender + descender ~ 1.0-1.2 em)."""
MIN_TEXT_LAYER_WORDS = 3
MIN_WORD_CHARS = 3
"""Words shorter than this (sub/superscripts, footnote markers, bullets) don't set the small text."""


def work_size(width: int, height: int, area: int = WORK_AREA_PX) -> tuple[int, int]:
    """(w, h) a page of `width` x `height` is measured at: `area` pixels, aspect kept."""
    s = math.sqrt(area / (width * height))
    return max(8, round(width * s)), max(8, round(height * s))


def line_heights(gray: np.ndarray) -> list[float]:
    """Ink heights (px of `gray`) of the text lines of a grayscale page image already at its work size; empty
    when the page shows no lines, or when it is mostly "ink" (MAX_INK_SHARE: texture, not print)."""
    import cv2
    import numpy as np

    h = gray.shape[0]
    ink = cv2.adaptiveThreshold(np.ascontiguousarray(gray), 255, cv2.ADAPTIVE_THRESH_MEAN_C, cv2.THRESH_BINARY_INV,
                                THRESHOLD_BLOCK_PX, THRESHOLD_OFFSET)
    if cv2.countNonZero(ink) > MAX_INK_SHARE * ink.size:
        return []
    _, _, glyphs, _ = cv2.connectedComponentsWithStats(ink, connectivity=8)
    gw, gh, garea = glyphs[1:, 2], glyphs[1:, 3], glyphs[1:, 4]
    glyph = (gh >= MIN_GLYPH_PX) & (gh <= h * MAX_LINE_SHARE) & (gh >= GLYPH_MIN_TALLNESS * gw) & (garea >= 4)
    if int(glyph.sum()) < MIN_LINES:
        return []
    glyph_px = float(np.median(gh[glyph]))
    kernel = cv2.getStructuringElement(
        cv2.MORPH_RECT, (max(2, round(GLYPH_GAP * glyph_px)), max(1, int(DOT_GAP * glyph_px)))
    )
    lines = cv2.morphologyEx(ink, cv2.MORPH_CLOSE, kernel)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(lines, connectivity=8)
    lw, lh = stats[1:, 2], stats[1:, 3]
    keep = (lh >= max(MIN_LINE_PX, GLYPH_MIN_TALLNESS * glyph_px)) & (lw >= LINE_MIN_ASPECT * lh) & (lh <= h * MAX_LINE_SHARE)
    supported = keep & (_full_height_glyphs(glyphs, labels, count, lh) >= MIN_LINE_GLYPHS)
    if int(supported.sum()) >= MIN_LINES:  # else print of separate dots: no line has solid glyphs to count
        keep = supported
    heights = lh[keep].astype(float)
    if heights.size == 0:
        return []
    return [float(v) for v in heights[heights >= MIN_RULE_RATIO * float(np.median(heights))]]


def _full_height_glyphs(glyphs: np.ndarray, labels: np.ndarray, count: int, line_h: np.ndarray) -> np.ndarray:
    """Per line component (labels 1..count-1 of the closed ink): how many of its glyphs (the ink's connected
    components, each counted for the line its centre falls in) are at least LINE_GLYPH_SHARE of the line's
    height. Counted on the ink before any closing: closing vertically (to join a dot-matrix character's dots)
    also joins speckle into tall pieces, and on SROIE 000-149 kept most of the gain from being realised."""
    import numpy as np

    gx, gy, gw, gh = glyphs[1:, 0], glyphs[1:, 1], glyphs[1:, 2], glyphs[1:, 3]
    owner = labels[np.minimum(gy + gh // 2, labels.shape[0] - 1), np.minimum(gx + gw // 2, labels.shape[1] - 1)]
    inside = owner > 0
    full = inside & (gh >= LINE_GLYPH_SHARE * line_h[np.maximum(owner, 1) - 1])
    return np.bincount(owner[full], minlength=count)[1:]


def measure_text_size(gray: Image.Image, page_size: tuple[int, int], *, started: float | None = None) -> TextSizeResult:
    """Line heights (page px) of a page of `page_size` (w, h) from `gray`, any grayscale copy of the whole page
    (a reduced decode or rendering; resampled here to the work size)."""
    import cv2
    import numpy as np

    started = time.perf_counter() if started is None else started
    w, h = page_size
    if min(w, h) < 8:
        return no_text(f"page {w}x{h} px is too small to hold text", seconds=time.perf_counter() - started)
    if max(w, h) / min(w, h) > DETECT_MAX_ASPECT:
        return no_text(f"page {w}x{h} px is a strip (aspect above {DETECT_MAX_ASPECT:g}): no text size measured",
                       seconds=time.perf_counter() - started)
    dw, dh = work_size(w, h)
    arr = np.asarray(gray if gray.mode == "L" else gray.convert("L"))
    if (arr.shape[1], arr.shape[0]) != (dw, dh):
        shrink = dw * dh < arr.shape[0] * arr.shape[1]
        arr = cv2.resize(arr, (dw, dh), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
    heights = line_heights(arr)
    if len(heights) < MIN_LINES:
        return no_text(f"found {len(heights)} text line(s): too few to size text", "detector",
                       time.perf_counter() - started)
    per_page_px = h / dh
    small = percentile(heights, SMALL_PERCENTILE) * per_page_px * INK_TO_LINE
    return TextSizeResult(
        line_px=small,
        body_px=percentile(heights, 50.0) * per_page_px * INK_TO_LINE,
        tall_px=percentile(heights, TALL_PERCENTILE) * per_page_px * INK_TO_LINE,
        lines=len(heights),
        source="detector",
        reason=f"ink lines: {len(heights)} lines",
        seconds=time.perf_counter() - started,
    )


def detect_text_size(image: Image.Image) -> TextSizeResult:
    """Line heights (page px) of a raster page given as a whole image (see `measure_text_size`)."""
    return measure_text_size(image, image.size)


def estimate_text_size(page: SourcePage) -> TextSizeResult:
    """Text line heights from the PDF text layer when it has words, else measured on a reduced copy of the page
    (`page.preview`: a draft-decoded JPEG, a MuPDF rendering at the preview zoom, or the kept rendering). The
    result is kept on the page: a second call returns it.

    Raises:
        PageTooLargeError: a page without a usable text layer over --max-page-pixels (a page sized from its
            text layer needs no rendering: its tiles are rendered at their encoded scale, see docvlm.plan).
    """
    if page.text_size is not None:
        return page.text_size
    started = time.perf_counter()
    layer = page.text_layer() if page.kind == "pdf" else None
    found = text_size_from_text_layer(layer, page.dpi)
    if found is not None:
        found = TextSizeResult(**{**found.__dict__, "seconds": time.perf_counter() - started})
    else:
        page.check_size()
        gray = page.preview(WORK_AREA_PX)
        found = measure_text_size(gray, (page.width_px, page.height_px), started=started)
    page.text_size = found
    return found
