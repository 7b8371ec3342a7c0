"""A page's words for the table detectors (one list for every engine) and the direction each one reads in."""

from __future__ import annotations

import numpy as np

from docvlm.datamodel import Box, PageResult
from docvlm.layout.tables.common import WordBox

# --- page level -------------------------------------------------------------------------------------------


def _vertical_units(page: PageResult) -> list[bool]:
    """Per line: an OCR or model line standing on its side. Its word boxes were cut along the wrong axis, so
    the whole line is one unit (the recogniser reads its text right, its box is right). Short numbers on
    their side are barely taller than wide: when the page clearly has sideways lines, 1.3x counts."""
    if page.text_source == "text_layer":
        return [False] * len(page.lines)
    ratio = []
    for line in page.lines:
        x0, y0, x1, y1 = line.bbox_page_px
        ratio.append((y1 - y0) / max(1e-6, x1 - x0) if len(line.text.strip()) >= 2 else 0.0)
    sideways = sum(1 for r in ratio if r > 2.0) >= 3
    return [r > (1.3 if sideways else 1.5) for r in ratio]


def page_words(page: PageResult) -> tuple[list[WordBox], list[int]]:
    """The page's words in page pixels (a line without word boxes counts as one word), and each one's line."""
    out: list[WordBox] = []
    owner: list[int] = []
    units = _vertical_units(page)
    for k, line in enumerate(page.lines):
        if line.words and units[k]:
            out.append(WordBox(line.text, line.bbox_page_px))
            owner.append(k)
        elif line.words:
            out.extend(WordBox(w.text, w.bbox_page_px) for w in line.words)
            owner.extend([k] * len(line.words))
        elif line.text.strip():
            out.append(WordBox(line.text, line.bbox_page_px))
            owner.append(k)
    return out, owner


def word_turns(page: PageResult, line_dirs: list[tuple[Box, int]] | None = None) -> list[int]:
    """Per word of `page_words`: 0 for horizontal text, 90 for text reading downward, 270 for upward.

    `line_dirs` (text-layer lines with their writing direction) decides when given; else the direction of a
    line's words, and for one-word lines the shape of the box and the page's majority.
    """
    turns: list[int] = []
    unknown: list[int] = []
    dir_boxes = np.array([b for b, _ in line_dirs], dtype=float) if line_dirs else None
    units = _vertical_units(page)
    for k, line in enumerate(page.lines):
        ws = [] if units[k] else (line.words or [])
        n = max(1, len(ws)) if ws or line.text.strip() else 0
        turn = 0
        if dir_boxes is not None and n:
            x0, y0, x1, y1 = line.bbox_page_px
            cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
            hit = np.nonzero((dir_boxes[:, 0] <= cx) & (cx <= dir_boxes[:, 2])
                             & (dir_boxes[:, 1] <= cy) & (cy <= dir_boxes[:, 3]))[0]
            if len(hit):
                turns.extend([line_dirs[int(hit[0])][1]] * n)  # type: ignore[index]
                continue
        if len(ws) >= 2:
            a, b = ws[0].bbox_page_px, ws[-1].bbox_page_px
            dx = (b[0] + b[2] - a[0] - a[2]) / 2
            dy = (b[1] + b[3] - a[1] - a[3]) / 2
            if abs(dy) > 2 * abs(dx):
                turn = 90 if dy > 0 else 270
        else:
            x0, y0, x1, y1 = line.bbox_page_px
            if units[k] or (y1 - y0 > 1.5 * (x1 - x0) and len(line.text.strip()) >= 2):
                turn = -1  # vertical, direction unknown: the page's majority decides
        if turn == -1:
            unknown.extend(range(len(turns), len(turns) + n))
        turns.extend([max(turn, 0)] * n)
    if unknown:
        down = turns.count(90)
        up = turns.count(270)
        for i in unknown:  # bottom-to-top is how tables are usually turned (and what RapidOCR assumes)
            turns[i] = 90 if down > up else 270
    return turns
