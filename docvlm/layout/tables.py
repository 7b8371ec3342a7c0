"""Tables as grounded structure: grids from rulings, grids from column alignment, grids a VLM printed.

Every engine ends up here with the same inputs: the page's words (text layer, OCR or model, in page pixels) and,
when there are any, straight rulings in page pixels (PDF vector drawings, or lines found in the page image).

- `ruled`: horizontal and vertical rulings that cross form a grid; a missing ruling inside the grid joins the
  two slots into one spanning cell.
- `aligned`: consecutive text rows split into chunks by wide gaps; the x positions that no chunk covers are the
  column gutters; a chunk that crosses a gutter spans columns.
- `model`: `<table>` HTML (Qwen2.5-VL `data-bbox`, or plain) and Markdown pipe tables in the raw model output;
  cell text is grounded on the page's words inside the table's box.

The work is capped (rulings, words, grid slots): above a cap the page keeps its text and gets a `table` warning.
"""

from __future__ import annotations

import bisect
import html
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from html.parser import HTMLParser
from statistics import median
from typing import TYPE_CHECKING

import numpy as np

from docvlm.datamodel import Box, ErrorItem, PageResult, Table, TableCell
from docvlm.geometry import (
    box_area,
    intersection,
    model_to_page,
    page_to_pdf,
    page_to_upright,
    pdf_to_page,
    union_box,
    upright_to_page,
)

if TYPE_CHECKING:
    from PIL import Image

    from docvlm.datamodel import EncodingPlan, TileOutput
    from docvlm.layout.base import PageContext, PageProcessor
    from docvlm.sources import SourcePage

MAX_SLOTS = 10_000
"""Grid slots above which a ruled grid is not turned into cells (a page of 5,000 tiny cells stays text)."""
MAX_SEGMENTS = 20_000
"""Rulings above which the page's drawings are not analysed (a vector illustration, not a table)."""
MAX_WORDS = 20_000
"""Words above which column alignment is not attempted."""
MIN_RULED_FILL = 0.15
"""Share of a ruled grid's cells that must hold text; an emptier grid is decoration (a form's boxes, a chart)."""


@dataclass(frozen=True)
class WordBox:
    """A word in page pixels: the only thing table finding needs from an engine."""

    text: str
    box: Box


@dataclass
class TablesResult:
    """Tables found on one page, the indices of the words they consumed, and warnings."""

    tables: list[Table] = field(default_factory=list)
    used_words: set[int] = field(default_factory=set)
    warnings: list[str] = field(default_factory=list)
    capped_words: set[int] = field(default_factory=set)  # inside a grid over the cap: left as plain text


# --- helpers ----------------------------------------------------------------------------------------------


def _text_height(words: Sequence[WordBox]) -> float:
    hs = [w.box[3] - w.box[1] for w in words if w.box[3] > w.box[1]]
    return float(median(hs)) if hs else 10.0


def _join_cell_text(words: Sequence[WordBox], unit: float) -> str:
    """Words of one cell in reading order: lines top to bottom, words left to right."""
    if len(words) == 1:
        return words[0].text
    rows = _cluster_rows(list(range(len(words))), words, unit)
    return " ".join(" ".join(words[i].text for i in row) for row in rows)


def _cluster_rows(idx: list[int], words: Sequence[WordBox], unit: float) -> list[list[int]]:
    """Group word indices into text rows by vertical overlap, each row sorted left to right."""
    order = sorted(idx, key=lambda i: (words[i].box[1] + words[i].box[3]) / 2)
    rows: list[list[int]] = []
    bounds: list[tuple[float, float]] = []
    for i in order:
        y0, y1 = words[i].box[1], words[i].box[3]
        cy = (y0 + y1) / 2
        if rows:
            ry0, ry1 = bounds[-1]
            if ry0 <= cy <= ry1 or min(ry1, y1) - max(ry0, y0) >= 0.5 * min(ry1 - ry0, y1 - y0):
                rows[-1].append(i)
                bounds[-1] = (min(ry0, y0) if cy > ry0 else ry0, max(ry1, y1) if cy < ry1 else ry1)
                continue
        rows.append([i])
        bounds.append((y0, y1))
    return [sorted(r, key=lambda i: words[i].box[0]) for r in rows]


_NUMBER = re.compile(r"^[-+−(]?[$€£¥]?\s?[\d.,]+\s?[%)]?[A-Za-z]{0,2}$")


def _make_table(
    cells: list[TableCell], n_rows: int, n_cols: int, box: Box, method: str, dpi: float | None
) -> Table:
    cells, n_rows, n_cols = _compact(cells, n_rows, n_cols)
    cells.sort(key=lambda c: (c.row, c.col))
    header_rows = 1
    for c in cells:
        if c.row == 0:
            header_rows = max(header_rows, c.row_span)
    # leading rows without a number beside the first column are header rows too (a header over two lines)
    first_data = next((r for r in range(n_rows) if any(
        c.row == r and c.col > 0 and _NUMBER.match(c.text.strip()) for c in cells)), n_rows)
    if first_data < n_rows:  # a table without numbers keeps one header row
        header_rows = max(header_rows, min(first_data, 3))
    header_rows = min(header_rows, max(1, n_rows - 1))
    out = []
    for c in cells:
        pdf = page_to_pdf(c.bbox_page_px, dpi) if (dpi and c.bbox_page_px) else None
        out.append(_with(c, bbox_pdf_pt=pdf, header=c.row < header_rows))
    return Table(
        bbox_page_px=tuple(round(v, 2) for v in box),  # type: ignore[arg-type]
        bbox_pdf_pt=page_to_pdf(box, dpi) if dpi else None,
        n_rows=n_rows,
        n_cols=n_cols,
        cells=out,
        method=method,  # type: ignore[arg-type]
        header_rows=header_rows,
    )


def _with(cell: TableCell, **update: object) -> TableCell:
    """A copy of a cell with fields replaced (4x cheaper than model_copy's field walk on big tables)."""
    return TableCell(**{**cell.__dict__, **update})  # type: ignore[arg-type]


def _draft_cell(**fields: object) -> TableCell:
    """A cell under construction (validated: pydantic-core is ~5x cheaper than `model_construct`'s defaults)."""
    return TableCell(**fields)  # type: ignore[arg-type]


def _compact(cells: list[TableCell], n_rows: int, n_cols: int) -> tuple[list[TableCell], int, int]:
    """Drop grid rows and columns that no non-empty cell touches (slivers between double rules, shading)."""
    rows_used = [False] * n_rows
    cols_used = [False] * n_cols
    for c in cells:
        if c.text.strip():
            for r in range(c.row, min(n_rows, c.row + c.row_span)):
                rows_used[r] = True
            for k in range(c.col, min(n_cols, c.col + c.col_span)):
                cols_used[k] = True
    if all(rows_used) and all(cols_used):
        return cells, n_rows, n_cols
    new_row = [sum(rows_used[:r]) for r in range(n_rows + 1)]
    new_col = [sum(cols_used[:k]) for k in range(n_cols + 1)]
    out = []
    for c in cells:
        r0, r1 = new_row[c.row], new_row[min(n_rows, c.row + c.row_span)]
        c0, c1 = new_col[c.col], new_col[min(n_cols, c.col + c.col_span)]
        if r1 <= r0 or c1 <= c0:
            continue  # an empty cell wholly inside dropped rows or columns
        out.append(_draft_cell(**{**c.__dict__, "row": r0, "col": c0, "row_span": r1 - r0, "col_span": c1 - c0}))
    return out, max(1, new_row[n_rows]), max(1, new_col[n_cols])


def _round(box: Box) -> Box:
    return (round(box[0], 2), round(box[1], 2), round(box[2], 2), round(box[3], 2))


# --- rulings ----------------------------------------------------------------------------------------------


@dataclass
class _Seg:
    pos: float  # y of a horizontal, x of a vertical
    a: float  # start along the line
    b: float  # end along the line


def split_rulings(segments: Sequence[Box], tol: float) -> tuple[list[_Seg], list[_Seg]]:
    """Axis-aligned segments -> merged horizontal and vertical rulings (collinear pieces joined)."""
    hs: list[_Seg] = []
    vs: list[_Seg] = []
    for x0, y0, x1, y1 in segments:
        if abs(y1 - y0) <= tol and abs(x1 - x0) > tol:
            hs.append(_Seg((y0 + y1) / 2, min(x0, x1), max(x0, x1)))
        elif abs(x1 - x0) <= tol and abs(y1 - y0) > tol:
            vs.append(_Seg((x0 + x1) / 2, min(y0, y1), max(y0, y1)))
    return _merge_collinear(hs, tol), _merge_collinear(vs, tol)


def _merge_collinear(segs: list[_Seg], tol: float) -> list[_Seg]:
    segs.sort(key=lambda s: s.pos)
    groups: list[list[_Seg]] = []
    for s in segs:
        if groups and s.pos - groups[-1][-1].pos <= tol:
            groups[-1].append(s)
        else:
            groups.append([s])
    out: list[_Seg] = []
    for g in groups:
        pos = sum(s.pos for s in g) / len(g)
        g.sort(key=lambda s: s.a)
        cur = _Seg(pos, g[0].a, g[0].b)
        for s in g[1:]:
            if s.a <= cur.b + tol:
                cur.b = max(cur.b, s.b)
            else:
                out.append(cur)
                cur = _Seg(pos, s.a, s.b)
        out.append(cur)
    return out


def _components(hs: list[_Seg], vs: list[_Seg], tol: float) -> list[tuple[list[int], list[int]]]:
    """Connected groups of crossing horizontal and vertical rulings."""
    parent = list(range(len(hs) + len(vs)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    vs_sorted = sorted(range(len(vs)), key=lambda j: vs[j].pos)
    vx = [vs[j].pos for j in vs_sorted]
    for i, h in enumerate(hs):
        lo = bisect.bisect_left(vx, h.a - tol)
        hi = bisect.bisect_right(vx, h.b + tol)
        for k in range(lo, hi):
            j = vs_sorted[k]
            v = vs[j]
            if v.a - tol <= h.pos <= v.b + tol:
                ri, rj = find(i), find(len(hs) + j)
                if ri != rj:
                    parent[ri] = rj
    groups: dict[int, tuple[list[int], list[int]]] = {}
    for i in range(len(hs)):
        groups.setdefault(find(i), ([], []))[0].append(i)
    for j in range(len(vs)):
        groups.setdefault(find(len(hs) + j), ([], []))[1].append(j)
    return [g for g in groups.values() if len(g[0]) >= 2 and len(g[1]) >= 2]


def _cluster_positions(values: list[float], tol: float) -> list[float]:
    values = sorted(values)
    out: list[list[float]] = []
    for v in values:
        if out and v - out[-1][-1] <= tol:
            out[-1].append(v)
        else:
            out.append([v])
    return [sum(g) / len(g) for g in out]


def _covered(segs: list[_Seg], pos: float, a: float, b: float, tol: float) -> bool:
    """True when rulings at `pos` cover most of [a, b] (`segs` sorted by pos)."""
    total = 0.0
    keys = [s.pos for s in segs] if not hasattr(segs, "keys") else segs.keys  # type: ignore[attr-defined]
    for k in range(bisect.bisect_left(keys, pos - tol), bisect.bisect_right(keys, pos + tol)):
        s = segs[k]
        total += max(0.0, min(b, s.b) - max(a, s.a))
    return total >= 0.5 * (b - a)


class _SortedSegs(list):
    """Rulings sorted by position, with the positions kept for bisection."""

    def __init__(self, segs: list[_Seg]) -> None:
        super().__init__(sorted(segs, key=lambda s: s.pos))
        self.keys = [s.pos for s in self]


def find_ruled_tables(
    words: Sequence[WordBox], segments: Sequence[Box], *, dpi: float | None, unit: float | None = None
) -> TablesResult:
    """Grids of crossing rulings, their spanning cells, and the words inside each cell."""
    res = TablesResult()
    if len(segments) > MAX_SEGMENTS:
        res.warnings.append(f"{len(segments)} rulings on the page (over {MAX_SEGMENTS}); ruled tables not sought")
        return res
    unit = unit or _text_height(words)
    tol = max(1.0, 0.2 * unit)
    hs, vs = split_rulings(segments, tol)
    if len(hs) < 2 or len(vs) < 2:
        return res
    grids = []
    for hi, vi in _components(hs, vs, tol):
        ch, cv = [hs[i] for i in hi], [vs[j] for j in vi]
        box = (min(v.pos for v in cv), min(h.pos for h in ch), max(v.pos for v in cv), max(h.pos for h in ch))
        box = (min(box[0], min(h.a for h in ch)), min(box[1], min(v.a for v in cv)),
               max(box[2], max(h.b for h in ch)), max(box[3], max(v.b for v in cv)))
        if box[2] - box[0] < 2 * unit or box[3] - box[1] < unit:
            continue
        grids.append((box, ch, cv))
    # outer grids first; a grid inside another (a table in a table) leaves its words to the outer cell
    grids.sort(key=lambda g: -box_area(g[0]))
    kept: list[Box] = []
    centers = [((w.box[0] + w.box[2]) / 2, (w.box[1] + w.box[3]) / 2) for w in words]
    for box, ch, cv in grids:
        if any(intersection(box, k) >= 0.9 * box_area(box) for k in kept):
            continue
        rows = _cluster_positions([h.pos for h in ch] + [box[1], box[3]], tol * 2)
        cols = _cluster_positions([v.pos for v in cv] + [box[0], box[2]], tol * 2)
        rows = [r for r in rows if box[1] - tol <= r <= box[3] + tol]
        cols = [c for c in cols if box[0] - tol <= c <= box[2] + tol]
        # drop slivers: rulings closer than half a text height (double rules, cell shading edges)
        rows = _drop_slivers(rows, 0.5 * unit)
        cols = _drop_slivers(cols, 0.5 * unit)
        nr, nc = len(rows) - 1, len(cols) - 1
        if nr < 1 or nc < 1 or nr * nc < 2:
            continue
        if nr * nc > MAX_SLOTS:
            res.warnings.append(
                f"ruled grid of {nr}x{nc} = {nr * nc:,} cells is over the cap of {MAX_SLOTS:,}; kept as text"
            )
            kept.append(box)
            res.capped_words.update(i for i, (cx, cy) in enumerate(centers)
                                    if box[0] <= cx <= box[2] and box[1] <= cy <= box[3])
            continue
        table = _grid_table(words, centers, res.used_words, box, rows, cols, ch, cv, tol, unit, dpi)
        if table is not None:
            res.tables.append(table)
            kept.append(box)
    return res


def _drop_slivers(pos: list[float], min_gap: float) -> list[float]:
    out: list[float] = []
    for p in pos:
        if out and p - out[-1] < min_gap:
            continue
        out.append(p)
    return out


def _grid_table(
    words: Sequence[WordBox],
    centers: list[tuple[float, float]],
    used: set[int],
    box: Box,
    rows: list[float],
    cols: list[float],
    hs: list[_Seg],
    vs: list[_Seg],
    tol: float,
    unit: float,
    dpi: float | None,
) -> Table | None:
    nr, nc = len(rows) - 1, len(cols) - 1
    parent = list(range(nr * nc))
    hs, vs = _SortedSegs(hs), _SortedSegs(vs)

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    # A missing ruling joins two slots only when text crosses where it would be: a ruling left out of a
    # shaded row or a partly ruled table must not glue a whole row of numbers into one cell.
    inside = [i for i, (cx, cy) in enumerate(centers)
              if i not in used and box[0] <= cx <= box[2] and box[1] <= cy <= box[3]]

    # per grid line, the centres of the words across it: asked once per slot pair, built once per line
    across_x = [[centers[i][1] for i in inside if words[i].box[0] < x - tol and words[i].box[2] > x + tol]
                for x in cols]
    across_y = [[centers[i][0] for i in inside if words[i].box[1] < y - tol and words[i].box[3] > y + tol]
                for y in rows]

    def crossed_x(k: int, y0: float, y1: float) -> bool:
        return any(y0 <= cy <= y1 for cy in across_x[k])

    def crossed_y(k: int, x0: float, x1: float) -> bool:
        return any(x0 <= cx <= x1 for cx in across_y[k])

    # ... or when the left slot has text and the right one none (a merged header whose text is short), or
    # one of two stacked slots is empty (a row span, its text centred in any of its slots)
    has_text = [[False] * nc for _ in range(nr)]
    for i in inside:
        cx, cy = centers[i]
        r = min(max(bisect.bisect_right(rows, cy) - 1, 0), nr - 1)
        c = min(max(bisect.bisect_right(cols, cx) - 1, 0), nc - 1)
        has_text[r][c] = True
    for r in range(nr):
        for c in range(nc - 1):
            if not _covered(vs, cols[c + 1], rows[r], rows[r + 1], 2 * tol) and (
                (has_text[r][c] and not has_text[r][c + 1]) or crossed_x(c + 1, rows[r], rows[r + 1])
            ):
                parent[find(r * nc + c + 1)] = find(r * nc + c)
    for r in range(nr - 1):
        for c in range(nc):
            if not _covered(hs, rows[r + 1], cols[c], cols[c + 1], 2 * tol) and (
                has_text[r][c] != has_text[r + 1][c] or crossed_y(r + 1, cols[c], cols[c + 1])
            ):
                parent[find((r + 1) * nc + c)] = find(r * nc + c)
    spans: dict[int, list[int]] = {}
    for s in range(nr * nc):
        g = spans.setdefault(find(s), [nr, nc, -1, -1])
        r, c = divmod(s, nc)
        g[0], g[1], g[2], g[3] = min(g[0], r), min(g[1], c), max(g[2], r), max(g[3], c)
    owner = [[-1] * nc for _ in range(nr)]
    rects: list[tuple[int, int, int, int]] = []
    for r0, c0, r1, c1 in sorted(spans.values()):
        if owner[r0][c0] != -1:
            continue  # a non-rectangular merge overlapped an earlier cell: it stays inside that cell
        k = len(rects)
        rects.append((r0, c0, r1, c1))
        for r in range(r0, r1 + 1):
            for c in range(c0, c1 + 1):
                if owner[r][c] == -1:
                    owner[r][c] = k
    cell_words: list[list[int]] = [[] for _ in rects]
    for i, (cx, cy) in enumerate(centers):
        if i in used or not (box[0] <= cx <= box[2] and box[1] <= cy <= box[3]):
            continue
        r = min(max(bisect.bisect_right(rows, cy) - 1, 0), nr - 1)
        c = min(max(bisect.bisect_right(cols, cx) - 1, 0), nc - 1)
        cell_words[owner[r][c]].append(i)
    filled = sum(1 for w in cell_words if w)
    if filled < 2 or filled < MIN_RULED_FILL * len(rects):
        return None
    cells: list[TableCell] = []
    for k, (r0, c0, r1, c1) in enumerate(rects):
        idx = cell_words[k]
        ws = [words[i] for i in idx]
        if ws:
            text = _join_cell_text(ws, unit)
            cbox = _round(union_box([w.box for w in ws]))
        else:
            text, cbox = "", _round((cols[c0], rows[r0], cols[c1 + 1], rows[r1 + 1]))
        cells.append(_draft_cell(row=r0, col=c0, row_span=r1 - r0 + 1, col_span=c1 - c0 + 1, text=text,
                               bbox_page_px=cbox))
        used.update(idx)
    return _make_table(cells, nr, nc, (cols[0], rows[0], cols[-1], rows[-1]), "ruled", dpi)


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
                if a in row_cells or any(a <= s < a + row_spans.get(s, 1) for s in row_cells):
                    owner = next(s for s in row_cells if s <= a < s + row_spans[s])
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


# --- rulings in a page image (scans) ----------------------------------------------------------------------


def rulings_from_image(image: Image.Image, *, min_length: float) -> list[Box]:
    """Long horizontal and vertical dark runs of a binarised page image, as segments in its pixels."""
    gray = np.asarray(image.convert("L"), dtype=np.uint8)
    # thin rules anti-alias to mid grey (~170 at 200 dpi); light cell shading stays above ~195
    ink = gray < min(185, int(np.mean(gray)) - 30 if gray.size else 185)
    segs: list[Box] = []
    for axis in (0, 1):
        m = ink if axis == 0 else ink.T
        h, w = m.shape
        padded = np.zeros((h, w + 2), dtype=np.int8)
        padded[:, 1:-1] = m
        d = np.diff(padded, axis=1)
        ys, xs = np.nonzero(d == 1)
        ye, xe = np.nonzero(d == -1)
        # starts and ends come in the same row-major order, one end per start
        length = xe - xs
        keep = length >= min_length
        for y, a, b in zip(ys[keep], xs[keep], xe[keep], strict=True):
            if axis == 0:
                segs.append((float(a), float(y), float(b), float(y)))
            else:
                segs.append((float(y), float(a), float(y), float(b)))
            if len(segs) > MAX_SEGMENTS * 4:
                return segs
    return segs


# --- tables a VLM printed ---------------------------------------------------------------------------------


@dataclass
class _HtmlCell:
    text: str = ""
    row_span: int = 1
    col_span: int = 1
    box_model: tuple[float, float, float, float] | None = None


@dataclass
class _HtmlTable:
    rows: list[list[_HtmlCell]] = field(default_factory=list)
    box_model: tuple[float, float, float, float] | None = None


def _bbox_attr(attrs: list[tuple[str, str | None]]) -> tuple[float, float, float, float] | None:
    for k, v in attrs:
        if k == "data-bbox" and v:
            nums = re.findall(r"-?\d+(?:\.\d+)?", v)
            if len(nums) == 4:
                return tuple(float(n) for n in nums)  # type: ignore[return-value]
    return None


def _int_attr(attrs: list[tuple[str, str | None]], name: str) -> int:
    for k, v in attrs:
        if k == name and v:
            m = re.match(r"\s*(\d+)", v)
            if m:
                return max(1, min(int(m.group(1)), 1000))
    return 1


class _TableParser(HTMLParser):
    """Collects every <table> (nested ones too, each on its own) with rows, spans and data-bbox."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[_HtmlTable] = []
        self.cell_stack: list[_HtmlCell | None] = []
        self.done: list[_HtmlTable] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table":
            self.stack.append(_HtmlTable(box_model=_bbox_attr(attrs)))
            self.cell_stack.append(None)
        elif not self.stack:
            return
        elif tag == "tr":
            self.stack[-1].rows.append([])
        elif tag in ("td", "th"):
            if not self.stack[-1].rows:
                self.stack[-1].rows.append([])
            cell = _HtmlCell(row_span=_int_attr(attrs, "rowspan"), col_span=_int_attr(attrs, "colspan"),
                             box_model=_bbox_attr(attrs))
            self.stack[-1].rows[-1].append(cell)
            self.cell_stack[-1] = cell
        elif tag == "br" and self.cell_stack and self.cell_stack[-1] is not None:
            self.cell_stack[-1].text += " "

    def handle_endtag(self, tag: str) -> None:
        if tag == "table" and self.stack:
            self.done.append(self.stack.pop())
            self.cell_stack.pop()
        elif tag in ("td", "th") and self.cell_stack:
            self.cell_stack[-1] = None

    def handle_data(self, data: str) -> None:
        if self.cell_stack and self.cell_stack[-1] is not None:
            self.cell_stack[-1].text += data


_MD_SEP = re.compile(r"^\s*\|?\s*:?-{2,}:?\s*(\|\s*:?-{2,}:?\s*)*\|?\s*$")


def _markdown_tables(text: str) -> list[_HtmlTable]:
    """GFM pipe tables in a model's Markdown: a header row, a separator row, body rows."""
    lines = text.splitlines()
    out: list[_HtmlTable] = []
    i = 0
    while i < len(lines) - 1:
        if "|" in lines[i] and _MD_SEP.match(lines[i + 1]):
            block = [lines[i]]
            j = i + 2
            while j < len(lines) and "|" in lines[j] and lines[j].strip():
                block.append(lines[j])
                j += 1
            t = _HtmlTable()
            for ln in block:
                s = ln.strip()
                s = s[1:] if s.startswith("|") else s
                s = s[:-1] if s.endswith("|") else s
                t.rows.append([_HtmlCell(text=html.unescape(c.strip())) for c in re.split(r"(?<!\\)\|", s)])
            out.append(t)
            i = j
        else:
            i += 1
    return out


def _place_cells(t: _HtmlTable, max_slots: int) -> tuple[list[tuple[int, int, _HtmlCell]], int, int] | None:
    """HTML rows with rowspan/colspan -> (row, col, cell) slots, the way a browser lays them out."""
    taken: set[tuple[int, int]] = set()
    placed: list[tuple[int, int, _HtmlCell]] = []
    n_cols = 0
    for r, row in enumerate(t.rows):
        c = 0
        for cell in row:
            while (r, c) in taken:
                c += 1
            placed.append((r, c, cell))
            for dr in range(cell.row_span):
                for dc in range(cell.col_span):
                    taken.add((r + dr, c + dc))
            if len(taken) > max_slots:
                return None
            c += cell.col_span
            n_cols = max(n_cols, c)
    n_rows = len(t.rows)
    placed = [(r, c, cell.__class__(cell.text, min(cell.row_span, n_rows - r), cell.col_span, cell.box_model))
              for r, c, cell in placed]
    return placed, n_rows, n_cols


def tables_from_outputs(
    plan: EncodingPlan, outputs: Sequence[TileOutput], words: Sequence[WordBox], *, dpi: float | None
) -> TablesResult:
    """Tables in raw VLM outputs (HTML with or without data-bbox, Markdown pipe tables), in page pixels.

    A cell's box is its own data-bbox when the model printed one, else the tight box of the page's words that
    spell the cell's text inside the table's box; a table with no box of its own gets its cells' union.
    """
    res = TablesResult()
    tiles = {t.index: t for t in plan.tiles}
    for out in outputs:
        tile = tiles.get(out.tile)
        if tile is None or out.stop_reason == "error" or tile.kind == "thumbnail":
            continue
        text = out.raw_text
        found: list[_HtmlTable] = []
        if "<table" in text.lower():
            p = _TableParser()
            try:
                p.feed(text)
                p.close()
            except Exception as exc:  # noqa: BLE001 - html.parser raises assorted errors on broken markup
                res.warnings.append(f"tile {tile.index}: table markup could not be read: {exc}")
            found.extend(p.done)
            found.extend(p.stack)  # an unclosed table (a cut-off answer) still counts
        found.extend(_markdown_tables(text))
        for t in found:
            table = _model_table(t, tile, plan, words, res.used_words, dpi, res.warnings)
            if table is not None:
                res.tables.append(table)
    res.tables.sort(key=lambda t: (t.bbox_page_px[1], t.bbox_page_px[0]))
    return res


def _model_table(
    t: _HtmlTable, tile, plan: EncodingPlan, words: Sequence[WordBox], used: set[int], dpi: float | None,
    warnings: list[str],
) -> Table | None:
    placed = _place_cells(t, MAX_SLOTS)
    if placed is None:
        warnings.append(f"tile {tile.index}: a model table over {MAX_SLOTS:,} cells; kept as text")
        return None
    slots, nr, nc = placed
    if nr < 1 or nc < 1 or not any(c.text.strip() for _, _, c in slots):
        return None
    region = model_to_page(t.box_model, tile, plan.family) if t.box_model else None
    if region is None:
        region = tuple(float(v) for v in tile.crop_page_px)  # type: ignore[assignment]
    inside = [i for i, w in enumerate(words) if i not in used and _center_in(w.box, region)]
    unit = _text_height([words[i] for i in inside]) if inside else 10.0
    cells: list[TableCell] = []
    boxes: list[Box] = []
    for r, c, cell in slots:
        text = " ".join(html.unescape(cell.text).split())
        cbox: Box | None = None
        if cell.box_model is not None:
            cbox = model_to_page(cell.box_model, tile, plan.family)
        if cbox is None and text:
            hit = _ground_text(text, inside, words, used)
            if hit:
                cbox = union_box([words[i].box for i in hit])
        if cbox is not None:
            boxes.append(cbox)
        cells.append(TableCell(row=r, col=c, row_span=cell.row_span, col_span=cell.col_span, text=text,
                               bbox_page_px=_round(cbox) if cbox else None))
    del unit
    box = region if t.box_model is not None or not boxes else union_box(boxes)
    return _make_table(cells, nr, nc, box, "model", dpi)


def _center_in(b: Box, region: Sequence[float]) -> bool:
    cx, cy = (b[0] + b[2]) / 2, (b[1] + b[3]) / 2
    return region[0] <= cx <= region[2] and region[1] <= cy <= region[3]


def _norm(s: str) -> str:
    return "".join(s.split()).lower()


def _ground_text(text: str, candidates: list[int], words: Sequence[WordBox], used: set[int]) -> list[int]:
    """The first unused run of candidate words (reading order) whose text spells `text`, ignoring spaces."""
    want = _norm(text)
    if not want:
        return []
    order = [i for i in sorted(candidates, key=lambda i: (round(words[i].box[1] / 4), words[i].box[0]))
             if i not in used]
    for s in range(len(order)):
        got = ""
        run: list[int] = []
        for j in order[s:]:
            got += _norm(words[j].text)
            run.append(j)
            if not want.startswith(got):
                break
            if got == want:
                used.update(run)
                return run
    return []


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


def detect_tables(
    words: Sequence[WordBox],
    turns: Sequence[int],
    segments: Sequence[Box],
    *,
    width: float,
    height: float,
    dpi: float | None,
    aligned: bool = True,
    turns_known: bool = True,
) -> TablesResult:
    """All tables of a page: ruled grids (re-read upright when most of their text is turned), then aligned
    tables among the remaining words of each text direction. Indices in `used_words` refer to `words`.

    `turns_known=False` (OCR and model pages: a sideways line does not say whether it reads up or down): a
    turned table is read both ways and the reading with labels first (left column, top row) is kept.
    """
    unit = _text_height(words)
    res = find_ruled_tables(words, segments, dpi=dpi, unit=unit)
    tables: list[Table] = []
    for t in res.tables:
        inside = [i for i, wb in enumerate(words) if _center_in(wb.box, t.bbox_page_px)]
        votes = [turns[i] for i in inside]
        turn = max(set(votes), key=votes.count) if votes else 0
        if turn == 0:
            tables.append(t)
            continue
        best: list[Table] = []
        best_used: set[int] = set()
        for way in (turn, 360 - turn) if not turns_known else (turn,):
            sub = _turn_words(words, inside, width, height, way)
            segs = [_to_upright(sg, width, height, way) for sg in segments
                    if intersection(_pad(sg, 2), t.bbox_page_px) > 0]
            found = find_ruled_tables(sub, segs, dpi=None, unit=_text_height(sub))
            again = [_unturn_table(x, width, height, way, dpi) for x in found.tables]
            if not best or _labels_first(again) > _labels_first(best):
                best, best_used = again, {inside[j] for j in found.used_words}
        tables.extend(best)
        # words the upright reading left out go back to the aligned search (a frame around a sideways table)
        res.used_words -= set(inside) - best_used
    res.tables = _refine_framed(tables, words, turns, res, width, height, dpi, unit)
    if aligned:
        for turn in (0, 90, 270):
            idx = [i for i in range(len(words))
                   if turns[i] == turn and i not in res.used_words and i not in res.capped_words]
            if len(idx) < 4:
                continue
            best_more: TablesResult | None = None
            best_tables: list[Table] = []
            for way in (turn, 360 - turn) if turn and not turns_known else (turn,):
                sub = _turn_words(words, idx, width, height, way) if way else [words[i] for i in idx]
                more = find_aligned_tables(sub, dpi=None if way else dpi, page_width=height if way else width,
                                           unit=unit if not way else None)
                got = [_unturn_table(x, width, height, way, dpi) if way else x for x in more.tables]
                if best_more is None or _labels_first(got) > _labels_first(best_tables):
                    best_more, best_tables = more, got
            assert best_more is not None
            res.warnings.extend(best_more.warnings)
            res.used_words.update(idx[j] for j in best_more.used_words)
            res.tables.extend(best_tables)
    res.tables.sort(key=lambda t: (t.bbox_page_px[1], t.bbox_page_px[0]))
    return res


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


def _pad(b: Box, d: float) -> Box:
    return (b[0] - d, b[1] - d, b[2] + d, b[3] + d)


def _refine_framed(
    tables: list[Table], words: Sequence[WordBox], turns: Sequence[int], res: TablesResult,
    width: float, height: float, dpi: float | None, unit: float,
) -> list[Table]:
    """A ruled frame around an unruled table (rules only between header and body) holds several text rows
    per grid row: read the inside by column alignment and keep whichever has more cells."""
    out = []
    for t in tables:
        if t.method != "ruled":
            out.append(t)
            continue
        inside = [i for i, wb in enumerate(words) if _center_in(wb.box, t.bbox_page_px) and turns[i] == 0]
        # columns inside cells: a cell row with a wide gap in it ("11,062.6   1,540.0")
        split_cells = 0
        filled = 0
        ins = np.array(inside, dtype=int)
        cxy = np.array([((words[i].box[0] + words[i].box[2]) / 2, (words[i].box[1] + words[i].box[3]) / 2)
                        for i in inside], dtype=float).reshape(-1, 2)
        for c in t.cells:
            if not c.text or c.bbox_page_px is None:
                continue
            filled += 1
            x0, y0, x1, y1 = c.bbox_page_px
            mask = (cxy[:, 0] >= x0) & (cxy[:, 0] <= x1) & (cxy[:, 1] >= y0) & (cxy[:, 1] <= y1)
            cw = [int(i) for i in ins[mask]]
            if any(len(_chunks(r, words, 0.9 * unit)) >= 2 for r in _cluster_rows(cw, words, unit)):
                split_cells += 1
        if split_cells < 0.3 * max(1, filled):
            out.append(t)
            continue
        alt = find_aligned_tables([words[i] for i in inside], dpi=dpi, page_width=width, unit=unit, min_rows=2)
        n_alt = sum(len(a.cells) for a in alt.tables)
        if alt.tables and n_alt > len(t.cells):
            out.extend(alt.tables)
        else:
            out.append(t)
    return out


def find_tables(page: PageResult, segments: Sequence[Box] = (), *, aligned: bool = True) -> TablesResult:
    """All tables of a page from its words and rulings (see `detect_tables`)."""
    words, _ = page_words(page)
    return detect_tables(words, word_turns(page), segments, width=page.width_px, height=page.height_px,
                         dpi=page.dpi, aligned=aligned)


# --- Markdown ---------------------------------------------------------------------------------------------


def _md_cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def render_table_markdown(table: Table) -> str:
    """A GFM pipe table; an HTML <table> with rowspan/colspan when any cell spans."""
    if any(c.row_span > 1 or c.col_span > 1 for c in table.cells):
        return _render_html(table)
    grid = [[""] * table.n_cols for _ in range(table.n_rows)]
    for c in table.cells:
        if c.row < table.n_rows and c.col < table.n_cols:
            grid[c.row][c.col] = _md_cell(c.text)
    # GFM has one header row: a header over several lines is folded into it, column by column
    h = max(1, min(table.header_rows, table.n_rows - 1)) if table.n_rows > 1 else 1
    head = [" ".join(grid[r][k] for r in range(h) if grid[r][k]) for k in range(table.n_cols)]
    body = grid[h:]
    out = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] * table.n_cols) + "|"]
    out.extend("| " + " | ".join(r) + " |" for r in body)
    return "\n".join(out)


def _render_html(table: Table) -> str:
    by_row: dict[int, list[TableCell]] = {}
    for c in table.cells:
        by_row.setdefault(c.row, []).append(c)
    out = ["<table>"]
    for r in range(table.n_rows):
        parts = []
        for c in sorted(by_row.get(r, []), key=lambda c: c.col):
            tag = "th" if c.header else "td"
            attrs = ""
            if c.row_span > 1:
                attrs += f' rowspan="{c.row_span}"'
            if c.col_span > 1:
                attrs += f' colspan="{c.col_span}"'
            parts.append(f"<{tag}{attrs}>{html.escape(' '.join(c.text.split()))}</{tag}>")
        out.append("<tr>" + "".join(parts) + "</tr>")
    out.append("</table>")
    return "\n".join(out)


# --- rulings of a PDF page --------------------------------------------------------------------------------


def rulings_from_pdf(source: SourcePage, max_items: int = MAX_SEGMENTS) -> list[Box]:
    """Horizontal and vertical vector strokes and rectangle edges of a PDF page, in visible page pixels.

    The same transform as the text layer (`page.rotation_matrix`, then `pdf_to_page`), so rulings and words
    share one frame. Stops after `max_items` + 1 segments: a caller can tell a vector drawing from a table.
    """
    page = source.pdf_page()
    if page is None or not source.dpi:
        return []

    try:
        paths = page.get_cdrawings()
    except Exception:  # noqa: BLE001 - a damaged content stream: no rulings, the text still converts
        return []
    to_visible = page.rotation_matrix
    dpi = float(source.dpi)
    segs: list[Box] = []

    # the rotation matrix then points -> pixels (`pdf_to_page`), folded into one affine map
    k = dpi / 72.0
    ma, mb, mc, md, me, mf = (to_visible.a * k, to_visible.b * k, to_visible.c * k, to_visible.d * k,
                              to_visible.e * k, to_visible.f * k)

    def add(x0: float, y0: float, x1: float, y1: float) -> None:
        # by hand: pymupdf.Rect * Matrix costs ~50 us a call on pages of many rules
        ax, ay = x0 * ma + y0 * mc + me, x0 * mb + y0 * md + mf
        bx, by = x1 * ma + y1 * mc + me, x1 * mb + y1 * md + mf
        segs.append((min(ax, bx), min(ay, by), max(ax, bx), max(ay, by)))

    for path in paths:
        for item in path.get("items", ()):
            kind = item[0]
            if kind == "l":
                (x0, y0), (x1, y1) = item[1], item[2]
                if abs(x0 - x1) < 1 or abs(y0 - y1) < 1:
                    add(x0, y0, x1, y1)
            elif kind == "re":
                x0, y0, x1, y1 = item[1]
                x0, x1, y0, y1 = min(x0, x1), max(x0, x1), min(y0, y1), max(y0, y1)
                if y1 - y0 < 2.5:  # a thin filled rectangle is a horizontal rule
                    add(x0, (y0 + y1) / 2, x1, (y0 + y1) / 2)
                elif x1 - x0 < 2.5:
                    add((x0 + x1) / 2, y0, (x0 + x1) / 2, y1)
                else:
                    add(x0, y0, x1, y0)
                    add(x0, y1, x1, y1)
                    add(x0, y0, x0, y1)
                    add(x1, y0, x1, y1)
            elif kind == "qu":
                q = item[1]
                pts = [(q[i][0], q[i][1]) for i in (0, 1, 3, 2, 0)]
                for (ax, ay), (bx, by) in zip(pts, pts[1:], strict=False):
                    if abs(ax - bx) < 1 or abs(ay - by) < 1:
                        add(ax, ay, bx, by)
            if len(segs) > max_items:
                return segs
    return segs


def text_directions(source: SourcePage) -> list[tuple[Box, int]]:
    """Text-layer spans of a PDF page with their writing direction as a turn (0, 90, 270), in page pixels."""
    page = source.pdf_page()
    if page is None or not source.dpi:
        return []

    m = page.rotation_matrix
    dpi = float(source.dpi)
    out: list[tuple[Box, int]] = []
    for span in page.get_texttrace():  # spans with their writing direction, ~7x cheaper than the dict
        dx, dy = span["dir"]
        vx, vy = dx * m.a + dy * m.c, dx * m.b + dy * m.d  # the direction on the visible page
        turn = (90 if vy > 0 else 270) if abs(vy) > abs(vx) else 0
        x0, y0, x1, y1 = span["bbox"]
        ax, ay = x0 * m.a + y0 * m.c + m.e, x0 * m.b + y0 * m.d + m.f
        bx, by = x1 * m.a + y1 * m.c + m.e, x1 * m.b + y1 * m.d + m.f
        out.append((pdf_to_page((min(ax, bx), min(ay, by), max(ax, bx), max(ay, by)), dpi), turn))
    return out


def _looks_turned(page: PageResult) -> bool:
    """Cheap test before asking the PDF for line directions: many tall, narrow lines of text."""
    tall = sum(1 for ln in page.lines
               if len(ln.text) >= 3
               and ln.bbox_page_px[3] - ln.bbox_page_px[1] > 1.3 * (ln.bbox_page_px[2] - ln.bbox_page_px[0]))
    return tall >= max(3, 0.1 * len(page.lines))


def has_table_candidates(words: Sequence[WordBox], unit: float, min_rows: int = 2) -> bool:
    """Cheap gate: at least `min_rows` text rows split by a column-wide gap (a grid needs one too)."""
    rows = _cluster_rows(list(range(len(words))), words, unit)
    n = 0
    for r in rows:
        if len(r) >= 2 and len(_chunks(r, words, 0.5 * unit)) >= 2:  # tighter than aligned: tiny ruled cells
            n += 1
            if n >= min_rows:
                return True
    return False


def _scan_rulings(source: SourcePage, unit: float) -> list[Box]:
    """Rulings found in the page image (scans and photos): long dark runs, at least 3 text heights long."""
    image = source.render()
    return rulings_from_image(image, min_length=max(25.0, 3.0 * unit))


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
class FindTables:
    """Layout step: tables of the page into `page.tables`, the lines they consumed get role "table"."""

    name: str = "tables"

    def __call__(self, page: PageResult, ctx: PageContext) -> PageResult:
        if not page.lines:
            return page
        words, owner = page_words(page)
        if not words:
            return page
        unit = _text_height(words)
        source = ctx.source
        warnings: list[str] = []
        if page.text_source == "model" and page.plan is not None:
            res = tables_from_outputs(page.plan, page.outputs, words, dpi=page.dpi)
            # the model's own lines inside a table (each <td data-bbox>, the <table> as a whole) are the table
            for t in res.tables:
                res.used_words.update(i for i, w in enumerate(words) if _center_in(w.box, t.bbox_page_px))
        else:
            segments: list[Box] = []
            dirs = None
            turned = _looks_turned(page)
            if not has_table_candidates(words, unit) and not turned:
                source = None  # no two text rows with column gaps: no table here, skip drawings and images
            if source is not None and page.text_source == "text_layer":
                segments = rulings_from_pdf(source)
                if turned:
                    dirs = text_directions(source)
            elif source is not None and page.text_source == "ocr":
                segments = _scan_rulings(source, unit)
            res = detect_tables(words, word_turns(page, dirs), segments, width=page.width_px,
                                height=page.height_px, dpi=page.dpi, turns_known=page.text_source == "text_layer")
            tables = []
            for t in res.tables:
                free = [i for i in range(len(words)) if i not in res.used_words]
                joined = join_header_rows(t, words, free, unit, page.dpi)
                if joined is not None:
                    t = joined[0]
                    res.used_words.update(joined[1])
                tables.append(t)
            res.tables = tables
        warnings.extend(res.warnings)
        used_per_line: dict[int, int] = {}
        for i in res.used_words:
            used_per_line[owner[i]] = used_per_line.get(owner[i], 0) + 1
        total_per_line: dict[int, int] = {}
        for k in owner:
            total_per_line[k] = total_per_line.get(k, 0) + 1
        lines = list(page.lines)
        for k, n in used_per_line.items():
            if n * 2 >= total_per_line[k]:
                lines[k] = lines[k].model_copy(update={"role": "table"})
        errors = list(page.errors)
        where = f"{ctx.shown} (page {page.index + 1})" if ctx.shown else f"page {page.index + 1}"
        errors.extend(ErrorItem(code="table", message=f"{where}: {w}", page=page.index) for w in warnings)
        update: dict[str, object] = {"tables": [*page.tables, *res.tables], "lines": lines}
        if warnings:
            update["errors"] = errors
            if page.status == "success":
                update["status"] = "partial"
        return page.model_copy(update=update)


TABLE_PROCESSORS: list[PageProcessor] = [FindTables()]
"""Spliced into `docvlm.layout.PAGE_PROCESSORS` before furniture, reading order and headings."""


# --- across pages -----------------------------------------------------------------------------------------

EDGE_SHARE = 0.25
"""A table continues onto the next page when it ends in the page's bottom quarter and the next page's first
table starts in its top quarter with the same column count."""


def mark_continuations(pages: list[PageResult]) -> list[PageResult]:
    """Set `continued` on a page's first table when it carries on the previous page's last table."""
    out = list(pages)
    for k in range(1, len(out)):
        prev, cur = out[k - 1], out[k]
        if not prev.tables or not cur.tables or cur.index != prev.index + 1:
            continue
        last, first = prev.tables[-1], cur.tables[0]
        if (last.n_cols == first.n_cols
                and last.bbox_page_px[3] >= (1 - EDGE_SHARE) * prev.height_px
                and first.bbox_page_px[1] <= EDGE_SHARE * cur.height_px):
            out[k] = cur.model_copy(update={"tables": [first.model_copy(update={"continued": True}),
                                                       *cur.tables[1:]]})
    return out


@dataclass(frozen=True)
class MarkTableContinuations:
    """Document step: tables split over consecutive pages are marked `continued` on the later page."""

    name: str = "table_continuations"

    def __call__(self, pages: list[PageResult], ctx: object) -> list[PageResult]:
        return mark_continuations(pages)


TABLE_DOCUMENT_PROCESSORS: list[MarkTableContinuations] = [MarkTableContinuations()]
"""For `docvlm.layout.DOCUMENT_PROCESSORS` (any place: it reads only `page.tables`)."""
