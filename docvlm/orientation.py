"""Page orientation, decided once per page from a first OCR read: 0, 90, 180 or 270 degrees, or mirrored.

The per-line angle classifier of PP-OCR costs time and flips upright lines (bench/ocr_bench.py), so docvlm
reads a page as given and then checks, cheaply, whether it was turned:

1. Sideways: most line-shaped detector boxes are taller than wide -> the text runs vertically; the page is
   turned 90 or 270 degrees (which one is settled in step 3).
2. Upright: otherwise, when the recognizer was confident on the page's longest lines (mean confidence >=
   `UPRIGHT_CONFIDENCE`), the page is upright and nothing more is done: the common case costs nothing.
3. Else a few of the longest lines are cropped and recognized once per candidate orientation (0 / 180 for
   horizontal text, 90 / 270 for vertical; the mirrored pair too when neither reads well); the candidate
   with the highest mean confidence wins when it beats reading the page as given by `MIN_GAIN`.

The caller turns the whole page (`PIL.Image.transpose`) and reads it again, then maps the boxes back with
`docvlm.geometry.upright_to_page`. EXIF orientation and PDF /Rotate are applied before this (sources), and
text-layer pages never get here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from PIL import Image

    from docvlm.datamodel import Box

LINE_ASPECT = 2.0
"""A detector box is line-shaped when its long side is at least this many times its short side."""
SIDEWAYS_SHARE = 0.5
"""More than this share of line-shaped boxes taller than wide: the page is turned 90 or 270 degrees."""
SAMPLE_LINES = 6
"""Lines recognized per candidate orientation (the longest ones: most characters, clearest signal)."""
UPRIGHT_CONFIDENCE = 0.80
"""Mean recognition confidence of the sampled lines as read above which a page is taken as upright.

Chosen on SROIE 000-149 (bench/ocr_bench.py --orientation-stats): upright receipts read at a median of
about 0.95 and turned ones well below; a page between goes through the explicit check, which only costs time.
"""
MIN_GAIN = 0.10
"""A turned candidate must beat the page as given by this much mean confidence to be applied."""
MIRROR_CHECK_BELOW = UPRIGHT_CONFIDENCE
"""When the best unmirrored candidate reads below this, the mirrored pair is tried as well (text read the
wrong way round or mirrored scores about 0.6-0.75 on clean synthetic lines, right way round about 0.99)."""

_PIL_METHODS = {
    "rotate_90": "ROTATE_90", "rotate_180": "ROTATE_180", "rotate_270": "ROTATE_270", "flip_lr": "FLIP_LEFT_RIGHT",
    "flip_tb": "FLIP_TOP_BOTTOM", "transpose": "TRANSPOSE", "transverse": "TRANSVERSE",
}


@dataclass(frozen=True)
class OrientationResult:
    """How to turn the page so its text reads upright (`none`: as given), and why."""

    orientation: str
    reason: str
    confidences: dict[str, float] = field(default_factory=dict)


def transpose_image(image: Image.Image, orientation: str) -> Image.Image:
    """The image turned by `orientation` (a name from `docvlm.geometry.ORIENTATIONS`)."""
    from PIL import Image as PILImage

    if orientation == "none":
        return image
    return image.transpose(getattr(PILImage.Transpose, _PIL_METHODS[orientation]))


def _line_boxes(boxes: Sequence[Box]) -> list[Box]:
    out = []
    for x0, y0, x1, y1 in boxes:
        w, h = x1 - x0, y1 - y0
        if min(w, h) >= 4 and max(w, h) >= LINE_ASPECT * min(w, h):
            out.append((x0, y0, x1, y1))
    return out


def decide_orientation(
    image: Image.Image,
    boxes: Sequence[Box],
    confidences: Sequence[float | None],
    recognize: Callable[[list[Image.Image]], list[float]],
) -> OrientationResult:
    """Decide how to turn `image` from a first read's boxes (page pixels) and line confidences.

    `recognize` returns one recognition confidence per crop; it is called only when the first read is in
    doubt (see the module doc).
    """
    lines = _line_boxes(boxes)
    if not lines:
        return OrientationResult("none", "no line-shaped text boxes to judge by")
    tall = sum(1 for b in lines if b[3] - b[1] > b[2] - b[0])
    sideways = tall > SIDEWAYS_SHARE * len(lines)
    if not sideways:
        by_box = {tuple(b): c for b, c in zip(boxes, confidences, strict=True) if c is not None}
        longest = sorted(lines, key=lambda b: b[2] - b[0], reverse=True)[:SAMPLE_LINES]
        read = [by_box[tuple(b)] for b in longest if tuple(b) in by_box]
        if read and sum(read) / len(read) >= UPRIGHT_CONFIDENCE:
            return OrientationResult("none", f"upright: lines read at mean confidence {sum(read) / len(read):.2f}")
    sample = sorted(lines, key=lambda b: max(b[2] - b[0], b[3] - b[1]), reverse=True)[:SAMPLE_LINES]
    crops = [image.crop(tuple(round(v) for v in b)) for b in sample]
    first = ("rotate_270", "rotate_90") if sideways else ("none", "rotate_180")
    mirrored = ("transpose", "transverse") if sideways else ("flip_lr", "flip_tb")
    scores: dict[str, float] = {}

    def try_all(candidates: Sequence[str]) -> None:
        for name in candidates:
            conf = recognize([transpose_image(c, name) for c in crops])
            scores[name] = round(sum(conf) / len(conf), 4) if conf else 0.0

    try_all(first)
    if max(scores.values()) < MIRROR_CHECK_BELOW:
        try_all(mirrored)
    best = max(scores, key=lambda k: scores[k])
    kind = f"{tall} of {len(lines)} line boxes vertical" if sideways else "horizontal lines"
    if sideways:
        return OrientationResult(best, f"{kind}; sampled lines read best as {best}", scores)
    as_given = scores.get("none", 0.0)
    if best != "none" and scores[best] >= as_given + MIN_GAIN:
        return OrientationResult(best, f"{kind}; sampled lines read best as {best}", scores)
    return OrientationResult("none", f"{kind}; no turn reads clearly better than the page as given", scores)
