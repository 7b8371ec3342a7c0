"""Layout-model regions feed the rest of the layout stage: roles for the lines in them, captions for tables.

Applied by the table step when the layout model ran (`table_models`), before furniture, reading order and
headings, which keep a role already given:

- a line inside a formula region gets role "formula" (marked, not transcribed);
- a line inside a caption region gets role "caption", and the caption's text attaches to the table it stands
  next to (`Table.caption`);
- a line inside a header or footer region gets that role only where the rules agree it is furniture by
  position: in the page's top or bottom `EDGE_BAND`.

Lines the table step gave role "table" keep it.
"""

from __future__ import annotations

from collections.abc import Sequence

from docvlm.datamodel import Box, Line, PageRegion, Table
from docvlm.geometry import page_to_pdf
from docvlm.layout.tables.models import Region

EDGE_BAND = 0.12
"""Share of the page height at the top and bottom where header / footer regions are believed."""
CAPTION_GAP = 3.0
"""A caption attaches to a table at most this many caption heights above or below it."""
LAYOUT_MODEL_NAME = "layout_cdla"
"""The name written in `PageRegion.model`."""


def _center(b: Box) -> tuple[float, float]:
    return (b[0] + b[2]) / 2, (b[1] + b[3]) / 2


def _inside(b: Box, r: Box) -> bool:
    cx, cy = _center(b)
    return r[0] <= cx <= r[2] and r[1] <= cy <= r[3]


def apply_regions(
    lines: list[Line], tables: list[Table], regions: Sequence[Region], *, height: float, dpi: float | None
) -> tuple[list[Line], list[Table], list[PageRegion]]:
    """Lines with roles from the regions, tables with their captions, and the regions as result models."""
    out_lines = list(lines)
    captions: list[tuple[Box, list[int]]] = []
    for reg in regions:
        box = reg.bbox_page_px
        hits = [i for i, ln in enumerate(out_lines) if ln.text.strip() and _inside(ln.bbox_page_px, box)]
        if reg.kind == "caption":
            captions.append((box, hits))
        role = {"formula": "formula", "caption": "caption", "header": "header", "footer": "footer"}.get(reg.kind)
        if role is None:
            continue
        for i in hits:
            ln = out_lines[i]
            if ln.role is not None:
                continue
            cy = _center(ln.bbox_page_px)[1]
            if role == "header" and cy > EDGE_BAND * height:
                continue
            if role == "footer" and cy < (1 - EDGE_BAND) * height:
                continue
            out_lines[i] = ln.model_copy(update={"role": role})
    out_tables = list(tables)
    for box, hits in captions:
        if not hits:
            continue
        h = box[3] - box[1]
        near = []
        for k, t in enumerate(out_tables):
            tb = t.bbox_page_px
            if min(box[2], tb[2]) <= max(box[0], tb[0]):
                continue  # no horizontal overlap
            gap = tb[1] - box[3] if box[3] <= tb[1] else box[1] - tb[3] if box[1] >= tb[3] else 0.0
            if 0 <= gap <= CAPTION_GAP * max(h, 1.0):
                near.append((gap, k))
        if near:
            k = min(near)[1]
            text = " ".join(out_lines[i].text.strip() for i in sorted(
                hits, key=lambda i: (out_lines[i].bbox_page_px[1], out_lines[i].bbox_page_px[0])))
            if out_tables[k].caption is None:
                out_tables[k] = out_tables[k].model_copy(update={"caption": text})
    page_regions = [PageRegion(kind=r.kind, bbox_page_px=tuple(round(v, 2) for v in r.bbox_page_px),  # type: ignore[arg-type]
                               bbox_pdf_pt=page_to_pdf(r.bbox_page_px, dpi) if dpi else None,
                               score=round(r.score, 4), model=LAYOUT_MODEL_NAME) for r in regions]
    return out_lines, out_tables, page_regions
