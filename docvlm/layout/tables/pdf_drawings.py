"""Reading a PDF page for the table detectors: rulings from its vector drawings, text directions."""

from __future__ import annotations

from typing import TYPE_CHECKING

from docvlm.datamodel import Box, PageResult
from docvlm.geometry import pdf_to_page
from docvlm.layout.tables.common import MAX_SEGMENTS

if TYPE_CHECKING:
    from docvlm.sources import SourcePage


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
