"""Turned tables: words of a table turned 90 degrees are read in the frame where they run left to right, and
the tables found there are turned back into page pixels."""

from __future__ import annotations

import re
from collections.abc import Sequence

from docvlm.datamodel import Box, Table
from docvlm.geometry import page_to_pdf, page_to_upright, upright_to_page
from docvlm.layout.tables.common import WordBox, _round, _with

_TURN_ORIENTATION = {0: "none", 90: "rotate_90", 270: "rotate_270"}


def _to_upright(box: Sequence[float], w: float, h: float, turn: int) -> Box:
    """Page pixels -> the frame where text turned by `turn` (90: reads downward, 270: upward) reads left to right."""
    return page_to_upright(box, _TURN_ORIENTATION[turn % 360], (w, h))


def _to_page(box: Sequence[float], w: float, h: float, turn: int) -> Box:
    """Inverse of `_to_upright` on a page of `w` x `h`."""
    size = (h, w) if turn % 180 else (w, h)
    return upright_to_page(box, _TURN_ORIENTATION[turn % 360], size)


def _turn_words(words: Sequence[WordBox], idx: Sequence[int], w: float, h: float, turn: int) -> list[WordBox]:
    return [WordBox(words[i].text, _to_upright(words[i].box, w, h, turn)) for i in idx]


def _unturn_table(table: Table, w: float, h: float, turn: int, dpi: float | None) -> Table:
    def back(b: Box | None) -> Box | None:
        return _round(_to_page(b, w, h, turn)) if b is not None else None

    cells = []
    for c in table.cells:
        b = back(c.bbox_page_px)
        cells.append(_with(c, bbox_page_px=b, bbox_pdf_pt=page_to_pdf(b, dpi) if dpi and b else None))
    box = back(table.bbox_page_px)
    return table.model_copy(update={"bbox_page_px": box, "cells": cells,
                                    "bbox_pdf_pt": page_to_pdf(box, dpi) if dpi else None})  # type: ignore[arg-type]


_ALPHA = re.compile(r"[^\W\d_]{2}")


def _labels_first(tables: Sequence[Table]) -> int:
    """How much the tables read like tables: words in the first column and row, numbers in the last ones."""
    score = 0
    for t in tables:
        for c in t.cells:
            wordy = 1 if _ALPHA.search(c.text) else 0
            if c.col == 0:
                score += wordy
            if c.col + c.col_span == t.n_cols:
                score -= wordy
            if c.row == 0:
                score += wordy
            if c.row + c.row_span == t.n_rows:
                score -= wordy
    return score
