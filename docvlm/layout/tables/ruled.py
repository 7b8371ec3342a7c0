"""Ruled grids: horizontal and vertical rulings that cross form a grid; a missing ruling inside the grid joins
the two slots into one spanning cell (only where text crosses it, or one slot is empty)."""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass

from docvlm.datamodel import Box, Table, TableCell
from docvlm.geometry import box_area, intersection, union_box
from docvlm.layout.tables.common import (
    MAX_SEGMENTS,
    MAX_SLOTS,
    MIN_RULED_FILL,
    TablesResult,
    WordBox,
    _draft_cell,
    _join_cell_text,
    _make_table,
    _round,
    _text_height,
)

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
