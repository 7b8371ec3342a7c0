"""Rows: which boxes sit on one printed row. One rule, used by the OCR engine, the layout processors
(reading order, furniture), the extraction rules and the table code.

The rule (`same_row`): two boxes share a row when their vertical bands overlap by at least `overlap` (half)
of the smaller band's height, once the page's slope is taken out of both bands (`band`), and, with
`stacked_share` set, when they are not stacked (boxes that share that much of the narrower one's width are
lines one above the other, never one row). A box joins the row among the last `look_back` rows whose band
it overlaps most, so a label and an amount far to its right stay together even when a taller box between
them came first. A row's band is the mean of its members' bands: it does not grow with every member (so one
tall box does not swallow the next row).

For boxes of equal height the overlap test is the same as "centres closer than half a line height"; for a
small box inside a tall one (a superscript, a price beside a two-line name) the overlap test keeps them
together where a centre test would not.

Skew: a photographed receipt is rarely level. `estimate_skew` finds the slope (dy/dx) that lines up the most
boxes printed side by side; pass it to `group_rows` (or leave the default 0.0 for level pages: PDFs, scans
that were deskewed). Rows are returned top to bottom, each row's members left to right, as indices into the
boxes given, so callers keep their own objects (lines, words, layout items).

Imports only the shared base (datamodel): the OCR engine imports this module, so it lives above layout/.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from docvlm.datamodel import Box

if TYPE_CHECKING:
    from docvlm.datamodel import Line

ROW_OVERLAP = 0.5
"""Two boxes share a row when their bands overlap by at least this share of the smaller band's height."""
ROW_LOOK_BACK = 3
"""A box may still join one of this many most recent rows (a tall box can start a row before a short one)."""
STACKED_SHARE = 0.33
"""Boxes sharing this share of the narrower one's width are stacked lines (one above the other), never a row."""
SKEW_STEP = 0.005
"""`estimate_skew` tries slopes in steps of this (dy/dx) ..."""
SKEW_MAX_STEPS = 30
"""... up to this many steps each way (a slope of 0.15, about 8.5 degrees)."""
SKEW_FIT_HEIGHTS = 0.5
"""A pair of boxes votes for a slope when it lines them up within this many line heights."""
SKEW_LEVEL_BIAS = 0.5
"""Votes taken from the steepest slope tried, so a level page wins a near tie."""
SKEW_MIN_BAND = 0.5
"""Taking the slope out of a wide box's band never shrinks the band below this share of its height."""


@dataclass(frozen=True)
class RowSettings:
    """How `group_rows` groups boxes; the defaults are the one rule (see the module docstring)."""

    overlap: float = ROW_OVERLAP
    look_back: int = ROW_LOOK_BACK
    stacked_share: float | None = STACKED_SHARE
    """None: stacked boxes may share a row (callers whose boxes never stack, e.g. one box per row item)."""


DEFAULT_ROWS = RowSettings()

T = TypeVar("T")


def band(box: Box, skew: float = 0.0) -> tuple[float, float]:
    """A box's vertical extent (top, bottom) with the page's slope taken out: the printed row it sits on.

    The slope is removed at the box's centre; a wide box on a tilted page is taller than its text by
    |skew| x width, so that much is taken off its height (never below `SKEW_MIN_BAND` of it).
    """
    cx = (box[0] + box[2]) / 2
    h = box[3] - box[1]
    if skew:
        h = max(h - abs(skew) * (box[2] - box[0]), SKEW_MIN_BAND * h)
    cy = (box[1] + box[3]) / 2 - skew * cx
    return cy - h / 2, cy + h / 2


def band_overlap(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Vertical overlap of two bands as a share of the smaller one's height (0 when apart)."""
    smaller = min(a[1] - a[0], b[1] - b[0])
    if smaller <= 0:
        return 1.0 if a[0] <= (b[0] + b[1]) / 2 <= a[1] or b[0] <= (a[0] + a[1]) / 2 <= b[1] else 0.0
    return max(0.0, min(a[1], b[1]) - max(a[0], b[0])) / smaller


def stacked(a: Box, b: Box, share: float = STACKED_SHARE) -> bool:
    """True when two boxes share `share` of the narrower one's width: lines one above the other."""
    return min(a[2], b[2]) - max(a[0], b[0]) > share * min(a[2] - a[0], b[2] - b[0])


def same_row(a: Box, b: Box, *, skew: float = 0.0, settings: RowSettings = DEFAULT_ROWS) -> bool:
    """The rule for two boxes alone (see the module docstring)."""
    if settings.stacked_share is not None and stacked(a, b, settings.stacked_share):
        return False
    return band_overlap(band(a, skew), band(b, skew)) >= settings.overlap


def group_rows(boxes: Sequence[Box], *, skew: float = 0.0, settings: RowSettings = DEFAULT_ROWS,
               alone: Collection[int] = ()) -> list[list[int]]:
    """Indices of `boxes` grouped into printed rows: rows top to bottom, each row left to right.

    Args:
        boxes: boxes in one frame (page pixels, PDF points: any, as long as it is one).
        skew: the page's text slope dy/dx (`estimate_skew`); 0.0 for a level page.
        settings: the rule's settings (`RowSettings`); the defaults are the shared rule.
        alone: indices that form a row of their own (e.g. a whole table region in reading order).
    """
    bands = [band(b, skew) for b in boxes]
    order = sorted(range(len(boxes)), key=lambda i: ((bands[i][0] + bands[i][1]) / 2, boxes[i][0]))
    rows: list[list[int]] = []
    row_bands: list[tuple[float, float]] = []
    closed: set[int] = set()  # rows holding an `alone` index
    for i in order:
        best, best_overlap = None, settings.overlap
        if i not in alone:
            for k in range(len(rows) - 1, max(-1, len(rows) - 1 - settings.look_back), -1):
                if k in closed:
                    continue
                ov = band_overlap(bands[i], row_bands[k])
                if ov < best_overlap or (ov == best_overlap and best is not None):
                    continue
                if settings.stacked_share is not None and any(
                        stacked(boxes[i], boxes[j], settings.stacked_share) for j in rows[k]):
                    continue
                best, best_overlap = k, ov
        if best is None:
            rows.append([i])
            row_bands.append(bands[i])
            if i in alone:
                closed.add(len(rows) - 1)
            continue
        members = rows[best]
        members.append(i)
        n = len(members)
        top, bottom = row_bands[best]
        row_bands[best] = ((top * (n - 1) + bands[i][0]) / n, (bottom * (n - 1) + bands[i][1]) / n)
    ordered = [sorted(row, key=lambda j: boxes[j][0]) for row in rows]
    ordered.sort(key=lambda row: min(bands[j][0] for j in row))
    return ordered


def rows_of(items: Sequence[T], boxes: Sequence[Box], **kwargs: object) -> list[list[T]]:
    """`group_rows` on the items' boxes, returning the items themselves."""
    return [[items[i] for i in row] for row in group_rows(boxes, **kwargs)]  # type: ignore[arg-type]


def line_rows(lines: Sequence[Line], *, skew: float = 0.0, settings: RowSettings = DEFAULT_ROWS) -> list[list[int]]:
    """`group_rows` on lines' page boxes (indices into `lines`)."""
    return group_rows([ln.bbox_page_px for ln in lines], skew=skew, settings=settings)


def sort_reading_order(lines: Sequence[Line], *, skew: float = 0.0) -> list[Line]:
    """Lines row by row (top to bottom), left to right within a row."""
    return [lines[i] for row in line_rows(lines, skew=skew) for i in row]


def estimate_skew(boxes: Sequence[Box]) -> float:
    """The page's text slope (dy/dx): the slope that lines up the most boxes printed side by side; 0 when level.

    A photographed receipt is rarely level: a label at the left and its amount far right drift apart by
    slope x distance, enough to put the amount on the next row's band. Every pair of horizontally separate
    boxes votes for the slopes that would put them on one row (weighted by how exactly); a slope that also
    lines up the neighbouring rows' pairs gets fewer, closer votes than the true one, and a level page wins ties.
    Cost: pairs of boxes x slopes tried; meant for receipts and forms (hundreds of boxes), not dense pages.
    """
    import numpy as np

    if len(boxes) < 2:
        return 0.0
    b = np.array(boxes, dtype=float)
    h = float(np.median(b[:, 3] - b[:, 1]))
    if h <= 0:
        return 0.0
    cx, cy = (b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2
    right_of = b[None, :, 0] >= b[:, None, 2]  # [a, b]: box b starts right of where box a ends
    dx, dy = cx[None, :] - cx[:, None], cy[None, :] - cy[:, None]
    max_slope = SKEW_STEP * SKEW_MAX_STEPS
    keep = right_of & (dx > 0) & (np.abs(dy) <= max_slope * dx + h)
    dx, dy = dx[keep], dy[keep]
    if dx.size < 2:
        return 0.0
    ks = np.arange(-SKEW_MAX_STEPS, SKEW_MAX_STEPS + 1)
    fit = np.clip(1 - np.abs(dy[None, :] - (ks * SKEW_STEP)[:, None] * dx[None, :]) / (SKEW_FIT_HEIGHTS * h),
                  0, None).sum(axis=1)
    score = fit - SKEW_LEVEL_BIAS * np.abs(ks) / SKEW_MAX_STEPS
    best = score.max()
    k = min((int(k) for k in ks[np.isclose(score, best)]), key=abs)  # a level page wins ties
    return k * SKEW_STEP
