"""Aligned tables (no rulings): consecutive text rows split into chunks by wide gaps; the x positions that no
chunk covers are the column gutters; a chunk that crosses a gutter spans columns."""

from __future__ import annotations

import bisect
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from docvlm.datamodel import Table, TableCell
from docvlm.geometry import union_box
from docvlm.layout.tables.common import (
    MAX_WORDS,
    TablesResult,
    WordBox,
    _cluster_rows,
    _draft_cell,
    _join_cell_text,
    _make_table,
    _round,
    _text_height,
)

# --- column alignment -------------------------------------------------------------------------------------


@dataclass
class _Chunk:
    words: list[int]
    x0: float
    x1: float


_BULLET = re.compile(r"^\(?([•\-–·*▪◦o]|\d{1,3}[.)]?|[a-zA-Z][.)]|[ivxIVX]+[.)])\)?$")
_LEADER = re.compile(r"^[.…·_-]{1,}$")


def _chunks(row: list[int], words: Sequence[WordBox], gap: float) -> list[_Chunk]:
    """Split a text row at wide gaps; dot leaders ("Total . . . . 12.5") end a chunk too."""
    out: list[_Chunk] = []
    after_leader = False
    for i in row:
        b = words[i].box
        leader = bool(_LEADER.match(words[i].text)) and len(words[i].text) >= 1
        if out and leader and words[out[-1].words[-1]].text.endswith("."):
            after_leader = True
        if out and not (after_leader and not leader) and b[0] - out[-1].x1 <= gap:
            out[-1].words.append(i)
            out[-1].x1 = max(out[-1].x1, b[2])
            after_leader = after_leader or (leader and len(out[-1].words) > 1)
        else:
            out.append(_Chunk([i], b[0], b[2]))
            after_leader = False
    return out


def find_aligned_tables(
    words: Sequence[WordBox],
    *,
    dpi: float | None,
    page_width: float,
    skip: set[int] | None = None,
    unit: float | None = None,
    gap_factor: float = 0.9,
    min_rows: int = 3,
) -> TablesResult:
    """Tables without rulings: runs of text rows whose chunks line up in columns with empty gutters between."""
    res = TablesResult()
    skip = skip or set()
    idx = [i for i in range(len(words)) if i not in skip and words[i].text.strip()]
    if len(idx) > MAX_WORDS:
        res.warnings.append(f"{len(idx)} words on the page (over {MAX_WORDS}); unruled tables not sought")
        return res
    if len(idx) < 4:
        return res
    unit = unit or _text_height([words[i] for i in idx])
    rows = _cluster_rows(idx, words, unit)
    row_box = [
        (min(words[i].box[1] for i in r), max(words[i].box[3] for i in r)) for r in rows
    ]
    chunks = [_chunks(r, words, gap_factor * max(unit, 0.5 * (row_box[k][1] - row_box[k][0])))
              for k, r in enumerate(rows)]
    multi = [len(c) >= 2 for c in chunks]
    # blocks: consecutive rows, close together, mostly multi-chunk (one single-chunk row may sit between)
    blocks: list[list[int]] = []
    cur: list[int] = []
    for k in range(len(rows)):
        close = cur and row_box[k][0] - row_box[cur[-1]][1] <= 1.8 * unit
        if multi[k]:
            if cur and not close:
                blocks.append(cur)
                cur = []
            cur.append(k)
        elif cur and close and k + 1 < len(rows) and multi[k + 1] \
                and row_box[k + 1][0] - row_box[k][1] <= 1.8 * unit:
            cur.append(k)
        else:
            if cur:
                blocks.append(cur)
            cur = []
    if cur:
        blocks.append(cur)
    for block in blocks:
        table = _aligned_table(block, rows, chunks, words, unit, page_width, dpi, min_rows)
        if table is not None:
            tab, used = table
            res.tables.append(tab)
            res.used_words.update(used)
    return res


def _split_at_edges(
    chunks: list[_Chunk], words: Sequence[WordBox], edges: list[float], trim: float, unit: float
) -> list[_Chunk]:
    """A chunk that crosses a column edge is split there when its words change column across a gap wider
    than a space (tight header rows: "method method sterilization"); a long title stays one spanning cell."""
    out: list[_Chunk] = []
    for c in chunks:
        a = bisect.bisect_right(edges, min(c.x0 + trim, (c.x0 + c.x1) / 2))
        b = bisect.bisect_right(edges, max(c.x1 - trim, (c.x0 + c.x1) / 2))
        if a == b or len(c.words) < 2:
            out.append(c)
            continue
        piece = _Chunk([c.words[0]], words[c.words[0]].box[0], words[c.words[0]].box[2])
        col = bisect.bisect_right(edges, (words[c.words[0]].box[0] + words[c.words[0]].box[2]) / 2)
        for i in c.words[1:]:
            bx = words[i].box
            wcol = bisect.bisect_right(edges, (bx[0] + bx[2]) / 2)
            if wcol != col and bx[0] - piece.x1 >= 0.35 * unit:
                out.append(piece)
                piece = _Chunk([i], bx[0], bx[2])
            else:
                piece.words.append(i)
                piece.x1 = max(piece.x1, bx[2])
            col = wcol
        out.append(piece)
    return out


def _complementary_column(
    grid: list[dict[int, list[int]]], spans: list[dict[int, int]], words: Sequence[WordBox], nc: int,
    max_gap: float,
) -> int | None:
    """The first column a whose neighbour a + 1 never has text in a row where a has, and sits close by."""
    x1 = [float("-inf")] * nc
    x0 = [float("inf")] * nc
    used = [0] * nc
    for r, row in enumerate(grid):
        for c, ws in row.items():
            if spans[r][c] == 1 and ws:
                x0[c] = min(x0[c], min(words[i].box[0] for i in ws))
                x1[c] = max(x1[c], max(words[i].box[2] for i in ws))
                used[c] += 1
    for a in range(nc - 1):
        if not used[a] or not used[a + 1]:
            continue
        if any(a in row and a + 1 in row for row in grid):
            continue
        if x0[a + 1] - x1[a] <= max_gap:
            return a
    return None


def _aligned_table(
    block: list[int],
    rows: list[list[int]],
    chunks: list[list[_Chunk]],
    words: Sequence[WordBox],
    unit: float,
    page_width: float,
    dpi: float | None,
    min_rows: int,
) -> tuple[Table, set[int]] | None:
    multi_rows = [k for k in block if len(chunks[k]) >= 2]
    if len(multi_rows) < min_rows:
        return None
    x0 = min(c.x0 for k in block for c in chunks[k])
    x1 = max(c.x1 for k in block for c in chunks[k])
    width = int(x1 - x0) + 2
    cover = np.zeros(width, dtype=np.int32)
    # chunks trimmed a little: some PDFs give numbers a word box that starts at the end of the dot leaders
    trim = 0.3 * unit
    for k in multi_rows:
        for c in chunks[k]:
            a, b = c.x0 + trim, c.x1 - trim
            if b <= a:
                a = b = (c.x0 + c.x1) / 2
            cover[int(a - x0): int(b - x0) + 1] += 1
    # a gutter: x where (almost) no multi-chunk row has text; a spanning header may cross it
    allowed = max(0, len(multi_rows) // 10)
    filled = cover > allowed
    cols: list[tuple[float, float]] = []
    start = None
    for x in range(width):
        if filled[x] and start is None:
            start = x
        elif not filled[x] and start is not None:
            cols.append((x0 + start, x0 + x))
            start = None
    if start is not None:
        cols.append((x0 + start, x0 + width))
    # gutters narrower than a third of a text height are word spaces that happen to line up
    merged: list[list[float]] = []
    for a, b in cols:
        if merged and a - merged[-1][1] < 1.0:
            merged[-1][1] = b
        else:
            merged.append([a, b])
    if len(merged) < 2:
        return None
    edges = [(merged[i][1] + merged[i + 1][0]) / 2 for i in range(len(merged) - 1)]

    def build(edges: list[float]) -> tuple[list[dict[int, list[int]]], list[dict[int, int]]]:
        grid: list[dict[int, list[int]]] = []
        spans: list[dict[int, int]] = []
        for k in block:
            row_cells: dict[int, list[int]] = {}
            row_spans: dict[int, int] = {}
            for c in _split_at_edges(chunks[k], words, edges, trim, unit):
                a = bisect.bisect_right(edges, min(c.x0 + trim, (c.x0 + c.x1) / 2))
                b = bisect.bisect_right(edges, max(c.x1 - trim, (c.x0 + c.x1) / 2))
                # a chunk starting inside an earlier cell's span joins that cell (a long label crossed the
                # gutter: "Total Sales Inclusive" + "GST @6%" is one label, not a cell over a taken slot)
                owner = next((s for s in row_cells if s <= a < s + row_spans[s]), None)
                if owner is not None:
                    row_cells[owner].extend(c.words)
                    row_spans[owner] = max(row_spans[owner], b - owner + 1)
                    continue
                row_cells[a] = list(c.words)
                row_spans[a] = b - a + 1
            grid.append(row_cells)
            spans.append(row_spans)
        return grid, spans

    grid, spans = build(edges)
    # Two neighbouring columns that never hold text in the same row are one column whose header or total
    # label sits beside its numbers ("Qty" centred over right-aligned digits, "Subtotal" under "Unit price").
    for _ in range(len(edges)):
        merge = _complementary_column(grid, spans, words, len(edges) + 1, 2.5 * unit)
        if merge is None:
            break
        edges.pop(merge)
        grid, spans = build(edges)
    nc = len(edges) + 1
    multi_share = sum(1 for r in grid if len(r) >= 2) / len(grid)
    if multi_share < 0.5:
        return None
    # prose in columns (a two-column page, a list with bullets) is not a table
    col_words = [0] * nc
    col_cells = [0] * nc
    for r in grid:
        for c, ws in r.items():
            col_words[c] += len(ws)
            col_cells[c] += 1
    wide_prose = sum(1 for c in range(nc) if col_cells[c] and col_words[c] / col_cells[c] > 5.0)
    prose = sum(1 for c in range(nc) if col_cells[c] and col_words[c] / col_cells[c] > 3.0)
    bullets = all(_BULLET.match(" ".join(words[i].text for i in r[0])) for r in grid if 0 in r)
    if nc == 2 and (prose == 2 or bullets):
        return None  # two columns of running text, or a bulleted / numbered list
    if wide_prose > nc / 2:
        return None
    cells: list[TableCell] = []
    used: set[int] = set()
    for r, row_cells in enumerate(grid):
        for c in sorted(row_cells):
            ws = [words[i] for i in row_cells[c]]
            cells.append(_draft_cell(row=r, col=c, col_span=spans[r][c], text=_join_cell_text(ws, unit),
                                     bbox_page_px=_round(union_box([w.box for w in ws]))))
            used.update(row_cells[c])
    box = union_box([words[i].box for i in used])
    return _make_table(cells, len(grid), nc, box, "aligned", dpi), used
