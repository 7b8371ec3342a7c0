"""How big is the text on a page? Line heights from the PDF text layer, or from a text detector on raster pages.

Never imports torch. The raster estimate runs the DB text detector that ships inside the rapidocr wheel
(PP-OCR det, ONNX, read by path: nothing is downloaded) on the page resampled to a fixed area, so the result
is the same for a page and any resampled copy of it (scale-invariant by construction): a line that covers a
given share of the page gives the same detector response whether the scan was 100 or 600 dpi.

The quantity is the *line height*: the height of a text line's box as an annotator or an OCR engine draws it
(ascender to descender, about the font size). "Small text" is a low percentile of a page's line heights.

Public API:

- `estimate_text_size(page) -> TextSizeResult`: text layer first, else the detector.
- `text_size_from_text_layer(layer, dpi) -> TextSizeResult | None`
- `detect_text_size(image) -> TextSizeResult`: the raster estimate (a result with `line_px=None` and a reason
  when the page shows no text).
"""

from __future__ import annotations

import math
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from docvlm.threads import THREADS_ENV

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
DETECT_AREA_PX = 1_000_000
"""The detector sees every page resampled to this area (about 840x1190 for A4): line heights are measured
relative to the page, so a 100-dpi and a 600-dpi scan of one receipt give one answer. 1 MP keeps 7-pt text
of an A4 page about 10 px tall for the detector (it finds lines down to about 6 px)."""
DETECT_MAX_ASPECT = 40.0
"""Pages thinner than 1:40 are not run through the detector (the resampled strip would be a few px wide)."""
PROB_THRESHOLD = 0.3
"""DB probability-map threshold (rapidocr's own default)."""
MIN_REGION_SCORE = 0.55
"""Mean probability inside a region below this is a doubtful detection (noise, texture)."""
MIN_LINES = 3
"""Fewer detected lines than this: the page is treated as showing no text."""
INK_PER_KERNEL = (1.2, 2.2)
"""A line's ink height lies within these multiples of its detected kernel height (DB predicts a shrunk core
of each line; the ink is about 1.6x taller on SROIE): bounds that keep a bad ink measurement sane."""
INK_PER_KERNEL_TYPICAL = 1.6
INK_TO_LINE = 1.0
"""Ink height -> line box height as annotated (SROIE line boxes, calibrated on 000-149 only: the 5th
percentile of annotated/estimated small text, so the estimate errs small; see bench/plan_bench.py)."""
MIN_KERNEL_PX = 2
MIN_RULE_RATIO = 0.45
"""A region thinner than this share of the page's median line is a rule, a dashed line or an underline, not
small text: genuine small print on a receipt or form is at least half the size of its body text."""
FONT_SIZE_TO_LINE = 1.0
"""PDF text layer: a line's box height is about its font size (ascender + descender ~ 1.0-1.2 em)."""
MIN_TEXT_LAYER_WORDS = 3
MIN_WORD_CHARS = 3
"""Words shorter than this (sub/superscripts, footnote markers, bullets) don't set the small text."""


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


# --- the raster detector ----------------------------------------------------------------------------------

_SESSION_LOCK = threading.Lock()
_SESSION: object | None = None


def detector_model_path() -> Path:
    """The DB text-detection model bundled in the rapidocr wheel: the file the ocr engine detects with."""
    from docvlm.ocr_models import rapidocr_model_path

    return rapidocr_model_path("Det")


def _session() -> object:
    global _SESSION
    with _SESSION_LOCK:
        if _SESSION is None:
            import onnxruntime as ort

            opts = ort.SessionOptions()
            # OMP_NUM_THREADS is how batch workers split the cores (as for the ocr engine); 0 = all cores
            threads = os.environ.get(THREADS_ENV, "")
            opts.intra_op_num_threads = int(threads) if threads.isdigit() else 0
            opts.log_severity_level = 3
            _SESSION = ort.InferenceSession(str(detector_model_path()), opts, providers=["CPUExecutionProvider"])
        return _SESSION


def detector_input_size(width: int, height: int, area: int = DETECT_AREA_PX) -> tuple[int, int]:
    """(w, h) the page is resampled to for the detector: `area` pixels, multiples of 32, aspect kept."""
    s = math.sqrt(area / (width * height))
    return max(32, round(width * s / 32) * 32), max(32, round(height * s / 32) * 32)


def probability_map(image: Image.Image) -> tuple[np.ndarray, float, float]:
    """DB probability map of `image` resampled to DETECT_AREA_PX; returns (map, sx, sy) with sx, sy the
    detector px per page px."""
    import numpy as np
    from PIL import Image as PILImage

    w, h = image.size
    dw, dh = detector_input_size(w, h)
    rgb = image.convert("RGB").resize((dw, dh), PILImage.Resampling.BILINEAR if dw * dh > w * h
                                      else PILImage.Resampling.BOX)
    arr = np.asarray(rgb, dtype=np.float32)[:, :, ::-1]  # BGR, as PP-OCR was trained (cv2 images)
    x = ((arr / 255.0 - 0.5) / 0.5).transpose(2, 0, 1)[None]
    sess = _session()
    name = sess.get_inputs()[0].name  # type: ignore[attr-defined]
    prob = sess.run(None, {name: np.ascontiguousarray(x)})[0][0, 0]  # type: ignore[attr-defined]
    return prob, dw / w, dh / h


@dataclass(frozen=True)
class _Region:
    """One detected text line: its box and kernel height in detector px."""

    x: int
    y: int
    w: int
    h: int
    kernel: float


def text_regions(prob: np.ndarray) -> list[_Region]:
    """Text lines of a DB probability map: connected components of prob > PROB_THRESHOLD that are wider than
    twice their height (single glyphs, logos and specks don't size lines) with a confident mean score.

    The kernel height is the median vertical run through the region, so a slightly tilted line is not tall.
    """
    import cv2
    import numpy as np

    binary = (prob > PROB_THRESHOLD).astype(np.uint8)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(binary, connectivity=4)
    out: list[_Region] = []
    for i in range(1, n):
        x, y, w, h, _area = (int(v) for v in stats[i])
        if h < MIN_KERNEL_PX or w < 2 * h:
            continue
        sub = labels[y:y + h, x:x + w] == i
        if float(prob[y:y + h, x:x + w][sub].mean()) < MIN_REGION_SCORE:
            continue
        cols = sub.sum(axis=0)
        out.append(_Region(x, y, w, h, float(np.median(cols[cols > 0]))))
    return out


def ink_height(gray: np.ndarray, region: _Region, sx: float, sy: float) -> float:
    """Height (page px) of the ink of one detected line, measured on the page itself.

    Rows of a band around the line are inked when more than 3% of the band's pixels there are darker than the
    band's Otsu split; the run of inked rows through the line's centre, with gaps shorter than a third of the
    kernel bridged (dot-matrix print has empty rows between its dots), is the line's ink height. It is kept
    within INK_PER_KERNEL of the kernel height, so a neighbouring line or a smudge cannot run away with it.
    """
    import cv2
    import numpy as np

    kernel = region.kernel / sy
    lo, hi = INK_PER_KERNEL[0] * kernel, INK_PER_KERNEL[1] * kernel
    cy = (region.y + region.h / 2) / sy
    x0, x1 = int(region.x / sx), int(math.ceil((region.x + region.w) / sx))
    y0, y1 = int(max(0, cy - 1.6 * kernel)), int(min(gray.shape[0], cy + 1.6 * kernel + 1))
    band = gray[y0:y1, x0:x1]
    if band.size < 16 or band.shape[0] < 3:
        return float(np.clip(kernel * INK_PER_KERNEL_TYPICAL, lo, hi))
    split, _ = cv2.threshold(np.ascontiguousarray(band), 0, 255, cv2.THRESH_BINARY_INV + cv2.THRESH_OTSU)
    on = (band < split).mean(axis=1) > 0.03
    gap = max(1, int(kernel / 3))
    c = min(len(on) - 1, max(0, int(cy - y0)))
    idx = np.flatnonzero(on)
    if idx.size == 0:
        return float(np.clip(kernel * INK_PER_KERNEL_TYPICAL, lo, hi))
    if not on[c]:
        c = int(idx[np.argmin(np.abs(idx - c))])
    a = b = c
    while True:  # grow over inked rows and gaps shorter than `gap`
        before = idx[idx < a]
        if before.size and a - before[-1] <= gap:
            a = int(before[-1])
            continue
        break
    while True:
        after = idx[idx > b]
        if after.size and after[0] - b <= gap:
            b = int(after[0])
            continue
        break
    return float(np.clip(b - a + 1, lo, hi))


def detect_text_size(image: Image.Image) -> TextSizeResult:
    """Line heights (page px) of a raster page: DB detector on the page resampled to 1 MP finds the lines,
    their ink height is measured on the page itself (`ink_height`)."""
    import numpy as np

    started = time.perf_counter()
    w, h = image.size
    if min(w, h) < 8:
        return no_text(f"page {w}x{h} px is too small to hold text", seconds=time.perf_counter() - started)
    if max(w, h) / min(w, h) > DETECT_MAX_ASPECT:
        return no_text(f"page {w}x{h} px is a strip (aspect above {DETECT_MAX_ASPECT:g}): no text size measured",
                       seconds=time.perf_counter() - started)
    prob, sx, sy = probability_map(image)
    regions = text_regions(prob)
    kept = regions
    if len(regions) >= MIN_LINES:
        med = percentile([r.kernel for r in regions], 50.0)
        kept = [r for r in regions if r.kernel >= MIN_RULE_RATIO * med]
    if len(kept) < MIN_LINES:
        return no_text(f"detector found {len(kept)} text line(s): too few to size text", "detector",
                       time.perf_counter() - started)
    gray = np.asarray(image.convert("L"))
    heights = [ink_height(gray, r, sx, sy) * INK_TO_LINE for r in kept]
    small = percentile(heights, SMALL_PERCENTILE)
    return TextSizeResult(
        line_px=small,
        body_px=percentile(heights, 50.0),
        tall_px=percentile(heights, TALL_PERCENTILE),
        lines=len(kept),
        source="detector",
        reason=f"detector: {len(kept)} lines ({len(regions) - len(kept)} rules/marks dropped)",
        seconds=time.perf_counter() - started,
    )


def estimate_text_size(page: SourcePage) -> TextSizeResult:
    """Text line heights from the PDF text layer when it has words, else the detector on the rendered page.

    Raises:
        PageTooLargeError: the page is over --max-page-pixels (checked first: a page that cannot be rendered
            cannot be encoded either, even when its text layer could be sized).
    """
    started = time.perf_counter()
    page.check_size()
    layer = page.text_layer() if page.kind == "pdf" else None
    found = text_size_from_text_layer(layer, page.dpi)
    if found is not None:
        return TextSizeResult(**{**found.__dict__, "seconds": time.perf_counter() - started})
    return detect_text_size(page.render())
