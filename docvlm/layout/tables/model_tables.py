"""Tables from trained models: table regions from the layout model, their grid from the structure model, and
every cell filled from the page's own words (so each cell keeps the tight box of its words).

`ModelTables(mode)`:
- "fill": only table regions where the rules found no table (the rules keep what they found);
- "agree": as "fill", and a rule table that no table region touches is dropped (on scans the rules' false
  tables are mostly ruled boxes and aligned prose);
- "replace": every table region is read by the structure model; rule tables inside a region give way;
- "compete": every table region is read by the structure model too, and where rule tables cover the region
  the reading with more filled cells and no lower share of filled grid slots is kept (no truth needed: a
  grid that lost a column or split a table leaves words out or slots empty).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from docvlm.datamodel import Box, TableCell
from docvlm.geometry import box_area, intersection, union_box
from docvlm.layout.tables.common import (
    TablePage,
    TablesResult,
    _center_in,
    _draft_cell,
    _join_cell_text,
    _make_table,
    _round,
)
from docvlm.layout.tables.models import Region, TableModelUnavailable, layout_regions, table_structure

REGION_OVERLAP = 0.5
"""A rule table and a table region agree when their intersection is this share of the smaller one."""
REGION_PAD = 0.5
"""Text heights added around a table region before reading it (the model's boxes run tight)."""
MIN_REGION_WORDS = 4
"""A table region with fewer free words than this is left alone."""
MAX_MODEL_TABLES = 8
"""At most this many regions per page go through the structure model (bounds the table step on a page)."""


def _agree(a: Box, b: Box) -> bool:
    inter = intersection(a, b)
    return inter > 0 and inter >= REGION_OVERLAP * min(box_area(a), box_area(b))


@dataclass(frozen=True)
class ModelTables:
    """Detector: table regions from the layout model read by the structure model (see the module doc)."""

    mode: Literal["fill", "agree", "replace", "compete"] = "fill"
    name: str = "model_tables"

    def __call__(self, tp: TablePage, found: TablesResult) -> TablesResult:
        if tp.source is None:
            return found
        try:
            image = tp.source.render()
            all_regions = layout_regions(image)
            regions = [r for r in all_regions if r.kind == "table"]
        except TableModelUnavailable as exc:
            return _with_warning(found, str(exc))
        tables = list(found.tables)
        used = set(found.used_words)
        warnings = list(found.warnings)
        if self.mode == "agree":
            kept = [t for t in tables if any(_agree(t.bbox_page_px, r.bbox_page_px) for r in regions)]
            for t in tables:
                if t not in kept:
                    used -= {i for i, w in enumerate(tp.words) if _center_in(w.box, t.bbox_page_px)}
            tables = kept
        todo: list[tuple[Region, list]] = []
        for r in sorted(regions, key=lambda r: -r.score):
            clash = [t for t in tables if _agree(t.bbox_page_px, r.bbox_page_px)]
            if clash and self.mode in ("fill", "agree"):
                continue
            todo.append((r, clash))
        if len(todo) > MAX_MODEL_TABLES:
            warnings.append(f"{len(todo)} table regions; the structure model read the first {MAX_MODEL_TABLES}")
            todo = todo[:MAX_MODEL_TABLES]
        for r, clash in todo:
            clash = [t for t in clash if t in tables]
            theirs = {i for t in clash for i, w in enumerate(tp.words) if _center_in(w.box, t.bbox_page_px)}
            pad = REGION_PAD * tp.unit
            box = (max(0.0, r.bbox_page_px[0] - pad), max(0.0, r.bbox_page_px[1] - pad),
                   min(tp.width, r.bbox_page_px[2] + pad), min(tp.height, r.bbox_page_px[3] + pad))
            inside = [i for i, w in enumerate(tp.words)
                      if (i not in used or i in theirs) and _center_in(w.box, box)]
            if len(inside) < MIN_REGION_WORDS:
                continue
            if sum(1 for i in inside if tp.turns[i]) * 2 > len(inside):
                continue  # a table turned on the page: the structure model reads upright tables only
            try:
                guess, n_rows, n_cols = table_structure(image, box)
            except TableModelUnavailable as exc:
                warnings.append(str(exc))
                break
            table = _fill(guess, n_rows, n_cols, inside, tp, box)
            if table is None:
                continue
            if clash and self.mode == "compete" and not _better(table[0], clash):
                continue
            for t in clash:
                tables.remove(t)
            used -= theirs
            tables.append(table[0])
            used.update(table[1])
        tables.sort(key=lambda t: (t.bbox_page_px[1], t.bbox_page_px[0]))
        return TablesResult(tables=tables, used_words=used, warnings=warnings,
                            capped_words=set(found.capped_words), regions=all_regions)


def _filled(tables) -> tuple[int, int]:
    """Filled cells and grid slots of tables."""
    return (sum(1 for t in tables for c in t.cells if c.text.strip()), sum(t.n_rows * t.n_cols for t in tables))


def _better(model_table, rule_tables) -> bool:
    """The model's reading fills more cells and no lower share of its grid than the rule tables it replaces."""
    mf, ms = _filled([model_table])
    rf, rs = _filled(rule_tables)
    return mf > rf and mf * rs >= rf * ms


def _with_warning(found: TablesResult, msg: str) -> TablesResult:
    return TablesResult(tables=list(found.tables), used_words=set(found.used_words),
                        warnings=[*found.warnings, msg], capped_words=set(found.capped_words),
                        regions=list(found.regions))


def _fill(guess, n_rows: int, n_cols: int, inside: list[int], tp: TablePage, region: Box):
    """Each word into the predicted cell holding its centre (else the one it overlaps most, else the nearest)."""
    if n_rows < 1 or n_cols < 1 or not guess:
        return None
    owner: dict[int, list[int]] = {}
    for i in inside:
        b = tp.words[i].box
        cx, cy = (b[0] + b[2]) / 2, (b[1] + b[3]) / 2
        best, best_key = None, None
        for k, g in enumerate(guess):
            x0, y0, x1, y1 = g.box
            key = (0, 0.0) if x0 <= cx <= x1 and y0 <= cy <= y1 else \
                (1, -intersection(b, g.box)) if intersection(b, g.box) > 0 else \
                (2, abs((x0 + x1) / 2 - cx) + 3 * abs((y0 + y1) / 2 - cy))
            if best_key is None or key < best_key:
                best, best_key = k, key
            if key == (0, 0.0):
                break
        owner.setdefault(best, []).append(i)  # type: ignore[arg-type]
    filled = sum(1 for k in owner if owner[k])
    if filled < 2:
        return None
    cells: list[TableCell] = []
    used: set[int] = set()
    for k, g in enumerate(guess):
        idx = owner.get(k, [])
        ws = [tp.words[i] for i in idx]
        if ws:
            text, cbox = _join_cell_text(ws, tp.unit), _round(union_box([w.box for w in ws]))
        else:
            text, cbox = "", _round(g.box)
        cells.append(_draft_cell(row=g.row, col=g.col, row_span=min(g.row_span, n_rows - g.row),
                                 col_span=min(g.col_span, n_cols - g.col), text=text, bbox_page_px=cbox))
        used.update(idx)
    box = union_box([tp.words[i].box for i in used])
    return _make_table(cells, n_rows, n_cols, box, "structure_model", tp.dpi), used
