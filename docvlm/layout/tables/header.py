"""Header joining: text rows directly above a table whose labels stand over its columns become header rows."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from docvlm.datamodel import Table
from docvlm.geometry import union_box
from docvlm.layout.tables.aligned import _Chunk
from docvlm.layout.tables.common import (
    _NUMBER,
    TablePage,
    TablesResult,
    WordBox,
    _cluster_rows,
    _draft_cell,
    _join_cell_text,
    _make_table,
    _round,
    _with,
)

HEADER_ROWS_ABOVE = 4
"""At most this many text rows directly above a table are read as its header (multi-level headers)."""


def _column_extents(table: Table) -> list[tuple[float, float]]:
    """Left and right edge of each column from the tight boxes of its one-column cells."""
    ext = [(math.inf, -math.inf)] * table.n_cols
    for c in table.cells:
        if c.col_span == 1 and c.bbox_page_px and c.text.strip() and c.col < table.n_cols:
            a, b = ext[c.col]
            ext[c.col] = (min(a, c.bbox_page_px[0]), max(b, c.bbox_page_px[2]))
    return ext


def _header_chunks(row: list[int], words: Sequence[WordBox], unit: float) -> list[_Chunk]:
    """A header row split at wide gaps; words whose boxes overlap (slanted labels) are separate labels."""
    out: list[_Chunk] = []
    for i in row:
        b = words[i].box
        if out and 0 < b[0] - out[-1].x1 <= 0.9 * unit:
            out[-1].words.append(i)
            out[-1].x1 = max(out[-1].x1, b[2])
        else:
            out.append(_Chunk([i], b[0], b[2]))
    return out


def _column_of(x0: float, x1: float, ext: list[tuple[float, float]]) -> int | None:
    """The column a header label stands over: the most overlap with a column's text, else the nearest."""
    best, best_ov = None, 0.0
    for k, (a, b) in enumerate(ext):
        ov = min(x1, b) - max(x0, a)
        if a <= b and ov > best_ov:
            best, best_ov = k, ov
    if best is not None:
        return best
    cx = (x0 + x1) / 2
    near = [(abs(cx - (a + b) / 2), k) for k, (a, b) in enumerate(ext) if a <= b]
    return min(near)[1] if near else None


def join_header_rows(
    table: Table, words: Sequence[WordBox], free: Sequence[int], unit: float, dpi: float | None
) -> tuple[Table, list[int]] | None:
    """Text rows directly above a table whose labels stand over its columns become its header rows.

    Rows are taken upwards while the gap stays under a text height and every word of the row lies over the
    table (a sentence across the page or a caption ends the header). A row with fewer labels than the row
    below it (a group label: "Year Ended" over three dates) spans the columns of the labels under it that
    are nearer to it than to its neighbours; a label wrapped over two tight lines is one cell. Returns the
    new table and the words it took, or None when nothing above reads as a header.
    """
    x0, top, x1, _ = table.bbox_page_px
    ext = _column_extents(table)
    if table.n_cols < 2 or sum(1 for a, b in ext if a <= b) < 2:
        return None
    near = [i for i in free if top - (HEADER_ROWS_ABOVE * 2.5 + 1) * unit <= (words[i].box[1] + words[i].box[3]) / 2
            < top]
    rows = _cluster_rows(near, words, unit)
    taken: list[tuple[list[_Chunk], float, float]] = []  # bottom-up: chunks, row top, row bottom
    edge = top
    for row in reversed(rows):
        r_top = min(words[i].box[1] for i in row)
        r_bot = max(words[i].box[3] for i in row)
        if edge - r_bot > unit or len(taken) >= HEADER_ROWS_ABOVE:
            break
        if any(words[i].box[0] < x0 - 2 * unit or words[i].box[2] > x1 + 2 * unit for i in row):
            break  # text beyond the table's sides (slanted labels may overhang a little)
        chunks = _header_chunks(row, words, unit)
        if len(chunks) == 1 and (chunks[0].x1 - chunks[0].x0 > 0.5 * (x1 - x0)
                                 or words[chunks[0].words[-1]].text.endswith((".", ":"))):
            break  # one wide run of words, or one ending a sentence: a caption or prose, not labels
        if sum(1 for c in chunks if _NUMBER.match(" ".join(words[i].text for i in c.words))) * 2 > len(chunks):
            break  # mostly numbers: a data row, not a header
        taken.append((chunks, r_top, r_bot))
        edge = r_top
    if not taken:
        return None
    # bottom-up: labels over columns; a row with fewer labels than the one below may group the labels under it
    placed: list[list[tuple[int, int, list[int]]]] = []  # per row: (first col, last col, word indices)
    for k, (chunks, _, _) in enumerate(taken):
        below = placed[-1] if placed else None
        cells: list[tuple[int, int, list[int]]] = []
        grouped = False
        centers = [(c.x0 + c.x1) / 2 for c in chunks]
        for j, c in enumerate(chunks):
            span = None
            if below and len(chunks) < len(below):
                # the labels below that are nearer to this label than to its neighbours, and it centred over them
                lo = (centers[j - 1] + centers[j]) / 2 if j > 0 else (
                    centers[j] - ((centers[j + 1] - centers[j]) / 2) if len(chunks) > 1 else -math.inf)
                hi = (centers[j] + centers[j + 1]) / 2 if j + 1 < len(chunks) else (
                    centers[j] + ((centers[j] - centers[j - 1]) / 2) if len(chunks) > 1 else math.inf)
                under = [(a, b, min(words[i].box[0] for i in ws), max(words[i].box[2] for i in ws))
                         for a, b, ws in below]
                under = [u for u in under if lo <= (u[2] + u[3]) / 2 < hi]
                u0, u1 = (min(u[2] for u in under), max(u[3] for u in under)) if under else (0.0, 0.0)
                if len(under) >= 2 and abs((u0 + u1) / 2 - centers[j]) <= max(unit, 0.15 * (u1 - u0)):
                    span = (min(u[0] for u in under), max(u[1] for u in under))
                    grouped = True
            if span is None:
                col = _column_of(c.x0, c.x1, ext)
                span = (col, col) if col is not None else None
            if span is not None:
                cells.append((span[0], span[1], c.words))
        merged: dict[tuple[int, int], list[int]] = {}
        for a, b, ws in cells:
            merged.setdefault((a, b), []).extend(ws)
        # overlapping spans (two labels over one column): the later one joins the earlier
        row_cells: list[tuple[int, int, list[int]]] = []
        for (a, b), ws in sorted(merged.items()):
            if row_cells and a <= row_cells[-1][1]:
                row_cells[-1] = (row_cells[-1][0], max(b, row_cells[-1][1]), row_cells[-1][2] + ws)
            else:
                row_cells.append((a, b, ws))
        # a label wrapped over two tight lines: each cell of this row sits over one cell of the row below
        wrapped = below is not None and not grouped and taken[k - 1][1] - taken[k][2] < 0.5 * unit and all(
            any(ba <= a and b <= bb for ba, bb, _ in below) for a, b, _ in row_cells)
        if wrapped and below is not None:
            placed[-1] = [(ba, bb, [*(w for a, b, ws in row_cells if ba <= a and b <= bb for w in ws), *bws])
                          for ba, bb, bws in below]
        else:
            placed.append(row_cells)
    if not any(len(r) >= 2 for r in placed):
        return None  # a lone label over one column is as likely a note as a header
    add = len(placed)
    cells = [_draft_cell(**{**c.__dict__, "row": c.row + add}) for c in table.cells]
    took: list[int] = []
    for r, row_cells in enumerate(reversed(placed)):
        for a, b, ws in row_cells:
            ws_sorted = sorted(ws, key=lambda i: (words[i].box[1], words[i].box[0]))
            boxes = [words[i].box for i in ws_sorted]
            cells.append(_draft_cell(row=r, col=a, col_span=b - a + 1,
                                     text=_join_cell_text([words[i] for i in ws_sorted], unit),
                                     bbox_page_px=_round(union_box(boxes))))
            took.extend(ws)
        covered = {c for a, b, _ in row_cells for c in range(a, b + 1)}
        cells.extend(_draft_cell(row=r, col=c, text="", bbox_page_px=None)
                     for c in range(table.n_cols) if c not in covered)  # the HTML writer needs every slot
    box = union_box([table.bbox_page_px, *(words[i].box for i in took)])
    new = _make_table(cells, table.n_rows + add, table.n_cols, box, table.method, dpi)
    # the rows above are header rows even when the table's own first rows are numbers
    new = new.model_copy(update={"header_rows": max(new.header_rows, add), "cells": [
        _with(c, header=c.row < max(new.header_rows, add)) for c in new.cells]})
    return new, took


@dataclass(frozen=True)
class HeaderRows:
    """Detector: each table found so far takes the header rows standing over its columns (`join_header_rows`)."""

    name: str = "header_rows"

    def __call__(self, tp: TablePage, found: TablesResult) -> TablesResult:
        tables = []
        used = set(found.used_words)
        for t in found.tables:
            free = [i for i in range(len(tp.words)) if i not in used]
            joined = join_header_rows(t, tp.words, free, tp.unit, tp.dpi)
            if joined is not None:
                t = joined[0]
                used.update(joined[1])
            tables.append(t)
        return TablesResult(tables=tables, used_words=used, warnings=list(found.warnings),
                            capped_words=set(found.capped_words), regions=list(found.regions))
