"""Page furniture: running headers, footers and page numbers, marked with a role (kept in the JSON).

Two judges, both general rules (no file-specific strings):

- On one page (`MarkPageFurniture`): the first and last rows, while they sit in the top or bottom zone, are
  set apart from the body by a blank gap and are shaped as a page number ("12", "- 12 -", "Page 3 of 9",
  "xiv", "7-45"), a banner (a URL or DOI, "Downloaded from", a copyright line, "Vol. 12", ISSN, "published by"),
  a running head with a page number at one end ("400 BRITISH HUSBANDRY. [Ch. XIX."), a left/centre/right
  triple, or a short small or upper-case line at the top. A strongly shaped row at the very edge needs no gap.
  Also: banners printed sideways in the outer margin; a page number ending the content wherever it ends; a
  lone number in a margin zone with no text beside it; a block of short lines spread to both sides of the
  bottom after a wide gap (logos, imprints). Captions and sentence ends are never furniture; small text set
  apart at the bottom is a footnote (kept in the Markdown). Body text that merely sits near an edge stays body.
- Across pages (`MarkRunningFurniture`): text repeated at the same place (top or bottom zone) on at least
  half of the document's pages (3 at least; 2 for two-page documents), compared with its digits masked, so
  "Page 3" and "Page 4" repeat. A first page without the header is an allowed exception (it is a title page).
"""

from __future__ import annotations

import re
import statistics
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from docvlm.datamodel import FURNITURE_ROLES, Box, Line, PageResult
from docvlm.geometry import union_box
from docvlm.layout.base import DocumentContext, PageContext, update_lines
from docvlm.layout.reading_order import CAPTION as _CAPTION
from docvlm.layout.reading_order import line_height
from docvlm.rows import group_rows

TOP_ZONE = 0.09
"""Share of the page height at the top where a running header may stand (one page alone)."""
BOTTOM_ZONE = 0.09
"""Share of the page height at the bottom where a footer or page number may stand (one page alone)."""
REPEAT_ZONE = 0.15
"""Across pages: repeated text counts as furniture in this share of the page height at top and bottom."""
SEPARATION_LINES = 1.0
"""Blank gap (in body line heights) that must separate a margin line from the body on a single page."""

_ROMAN = r"[ivxlcdm]{1,7}"
PAGE_NUMBER = re.compile(
    rf"^[\s\-–—.\[(]*(page|p\.|pg\.?|seite|pagina|página)?\s*(\d{{1,3}}[-–]\d{{1,4}}|\d{{1,4}}|{_ROMAN})"
    rf"(\s*(/|of|von|de|sur)\s*\d{{1,4}})?[\s\-–—.\])]*$",
    re.I,
)
BANNER = re.compile(
    r"(https?://|www\.|\bdoi\b|\bdoi:|downloaded from|copyright|©|\(c\)\s*\d{4}|all rights reserved|"
    r"\bvol\.?\s*\d+|\bvolume\s+\d+|\bissn\b|\bisbn\b|\barxiv:|\bpp\.\s*\d+|"
    r"journal of|proceedings of|preprint|accepted manuscript|this article is protected|published by|"
    r"available (online )?at|retrieved from|licensed under)",
    re.I,
)


def _masked(text: str) -> str:
    """Text with digits and roman page numbers masked, case and spaces folded (for repeat detection)."""
    t = re.sub(r"\d+", "#", text.lower())
    t = re.sub(rf"\b{_ROMAN}\b$", "#", t)
    return " ".join(t.split())


def _ends_sentence(text: str) -> bool:
    """'...was measured.' / '...해야 한다.' end a sentence; 'SYSTEMS, INC.' and 'No.' do not."""
    t = text.rstrip()
    if t.endswith("。"):
        return True
    return len(t) >= 2 and t[-1] in ".!?" and t[-2].isalpha() and not t[-2].isupper()


def is_page_number(text: str) -> bool:
    t = text.strip()
    return bool(t) and len(t) <= 20 and bool(PAGE_NUMBER.match(t))


def _rows(lines: Sequence[Line], idx: list[int]) -> list[list[int]]:
    """Indices grouped into printed rows (`docvlm.rows`, the shared rule), top to bottom."""
    return [[idx[k] for k in row] for row in group_rows([lines[i].bbox_page_px for i in idx])]


MARGIN_ZONE = 0.12
"""Share of the page width at the left and right edges where marks set sideways (Bates numbers) may stand."""
SIDEWAYS_ASPECT = 2.0
"""A line box this many times taller than wide was printed sideways."""
MARK_PIECE_CHARS = 4
"""A piece of a sideways mark read as its own short line ("8", "00") has at most this many characters."""


def margin_marks(lines: Sequence[Line], idx: list[int], width: float, line_h: float,
                 sideways: Sequence[int] = ()) -> dict[int, str]:
    """Marks printed sideways in the outer margin (Bates numbers, document ids): role 'margin', so they are
    read apart from the body instead of joining a body row ("... and return the 8").

    A line in the outer `MARGIN_ZONE` whose box stands upright (`SIDEWAYS_ASPECT`) with no text beside it on
    the outer side, and short pieces (`MARK_PIECE_CHARS`, digits or capitals) stacked in the same strip
    within two line heights of such a line (or of a banner already judged `sideways`).
    """
    def outer(box: Box) -> str | None:
        return "left" if box[2] <= MARGIN_ZONE * width else "right" if box[0] >= (1 - MARGIN_ZONE) * width else None

    def alone(i: int, side: str) -> bool:
        x0, y0, x1, y1 = lines[i].bbox_page_px
        for j in idx:
            if j == i:
                continue
            b = lines[j].bbox_page_px
            if b[1] < y1 and b[3] > y0 and ((b[2] <= x0 and side == "left") or (b[0] >= x1 and side == "right")):
                return False  # text further out than the mark: it is not in the outer margin
        return True

    marks: dict[int, str] = {}
    anchors: dict[int, str] = {i: side for i in sideways if (side := outer(lines[i].bbox_page_px))}
    for i in idx:
        x0, y0, x1, y1 = lines[i].bbox_page_px
        side = outer(lines[i].bbox_page_px)
        if side and y1 - y0 >= SIDEWAYS_ASPECT * max(1.0, x1 - x0) and alone(i, side):
            marks[i] = anchors[i] = side
    for i in idx:
        t = lines[i].text.strip()
        if i in marks or len(t) > MARK_PIECE_CHARS or not (t.isdigit() or t.isupper()):
            continue
        box = lines[i].bbox_page_px
        side = outer(box)
        if side is None or not alone(i, side):
            continue
        for j, s in list(anchors.items()):
            b = lines[j].bbox_page_px
            if s == side and box[0] < b[2] + line_h and box[2] > b[0] - line_h and \
                    min(abs(box[1] - b[3]), abs(b[1] - box[3])) <= 2 * line_h:
                marks[i] = anchors[i] = side
                break
    return {i: "margin" for i in marks}


def page_furniture_roles(page: PageResult) -> dict[int, str]:
    """Line index -> furniture role for one page judged alone (see the module docstring)."""
    idx = [i for i, ln in enumerate(page.lines) if ln.text.strip() and ln.role not in ("table",)]
    if len(idx) < 2 or page.height_px <= 0:
        return {}
    lines = page.lines
    H, W = page.height_px, page.width_px
    roles: dict[int, str] = {}
    # banners printed sideways along the outer margin ("Downloaded from ... on <date>")
    for i in idx:
        x0, y0, x1, y1 = lines[i].bbox_page_px
        if y1 - y0 > 4 * (x1 - x0) and len(lines[i].text.strip()) >= 10 and (x1 < 0.08 * W or x0 > 0.92 * W):
            roles[i] = "header"
    idx = [i for i in idx if i not in roles]
    if len(idx) < 2:
        return roles
    line_h = line_height([lines[i] for i in idx])
    roles.update(margin_marks(lines, idx, W, line_h, sideways=list(roles)))
    idx = [i for i in idx if i not in roles]
    if len(idx) < 2:
        return roles
    rows = _rows(lines, idx)
    body_sizes = [lines[i].font_size_pt for i in idx if lines[i].font_size_pt]
    body_size = statistics.median(body_sizes) if body_sizes else None

    def row_box(r: list[int]) -> tuple[float, float, float, float]:
        return union_box([lines[i].bbox_page_px for i in r])

    def shape(r: list[int]) -> dict[str, bool]:
        ordered = sorted(r, key=lambda i: lines[i].bbox_page_px[0])
        text = " ".join(lines[i].text.strip() for i in ordered)
        words = len(text.split())
        if body_size is not None and all(lines[i].font_size_pt for i in r):
            small = all(lines[i].font_size_pt < 0.95 * body_size for i in r)  # type: ignore[operator]
        else:
            small = all(lines[i].bbox_page_px[3] - lines[i].bbox_page_px[1] < 0.85 * line_h for i in r)
        gaps = [lines[b].bbox_page_px[0] - lines[a].bbox_page_px[2] for a, b in zip(ordered, ordered[1:], strict=False)]
        return {
            "page_number": all(is_page_number(lines[i].text) for i in r) or is_page_number(text),
            "banner": bool(BANNER.search(text)) and words <= 40,
            # a page number at one end plus a short title ("400 BRITISH HUSBANDRY. [Ch. XIX.")
            "numbered": words <= 12 and bool(re.match(r"^\s*\d{1,4}\s+\S", text)
                                             or re.search(r"\S\s+\d{1,4}\s*$", text)),
            # pieces spread across the width: "Revision 2.4     P/N 119-036     10 June 2019"
            "spread": len(r) >= 2 and words <= 16 and all(g >= 3 * line_h for g in gaps),
            "short": words <= 14,
            "small": small,
            "upper": text.isupper(),
        }

    def judge(r: list[int], gap: float, top: bool, edge: bool, zone: float) -> str | None:
        if any(_CAPTION.match(lines[i].text) for i in r):
            return None  # a figure or table caption near the edge is content, never furniture
        f = shape(r)
        # pieces spread across the width are strong only as the classic triple (left, centre, right): two
        # pieces may be the last lines of two columns
        strong = f["page_number"] or f["banner"] or f["numbered"] or (f["spread"] and len(r) >= 3)
        if zone > (0.12 if (edge and strong) else TOP_ZONE if top else BOTTOM_ZONE) * (1.0 if edge else 1.6):
            return None
        if gap < SEPARATION_LINES * line_h and not (edge and strong):
            return None  # only a strongly shaped line at the page's very edge may sit close to the body
        if f["page_number"]:
            return "page_number"
        if strong or (top and f["short"] and (f["small"] or len(r) >= 2 or f["upper"])):
            return "header" if top else "footer"
        if not top and f["small"]:
            return "footnote"  # small text set apart at the bottom: a footnote, kept in the Markdown
        return None

    # top: the first rows while they are furniture; bottom: the last rows, the same way upwards
    for k in range(min(3, len(rows) - 1)):
        r = rows[k]
        b = row_box(r)
        role = judge(r, row_box(rows[k + 1])[1] - b[3], top=True, edge=k == 0, zone=b[3] / H)
        if role is None:
            break
        roles.update({i: role for i in r})
    for k in range(min(3, len(rows) - 1)):
        r = rows[len(rows) - 1 - k]
        if any(i in roles for i in r):
            break
        b = row_box(r)
        role = judge(r, b[1] - row_box(rows[len(rows) - 2 - k])[3], top=False, edge=k == 0, zone=1 - b[1] / H)
        if role is None:
            break
        roles.update({i: role for i in r})
    # a footer block of logos and imprints: short lines spread to both sides of the page's bottom, set apart
    # from the body by a wide gap (slides and cover pages carry them; a letter's signature stays body)
    tail_rows: list[list[int]] = []
    for k in range(len(rows) - 1, 0, -1):
        b, above = row_box(rows[k]), row_box(rows[k - 1])
        tail_rows.insert(0, rows[k])
        if b[1] < 0.85 * H or len(tail_rows) > 6:
            tail_rows = []
            break
        if b[1] - above[3] >= 2 * line_h:
            break
    block = [i for r in tail_rows for i in r if i not in roles]
    if block and all(
        len(lines[i].text.split()) <= 6 and not _CAPTION.match(lines[i].text)
        and not _ends_sentence(lines[i].text) for i in block
    ):  # no caption, no sentence end (the last lines of two columns): logos and imprints only
        xs = sorted((lines[i].bbox_page_px[0], lines[i].bbox_page_px[2]) for i in block)
        reach = xs[0][0] < 0.25 * W and max(x1 for _, x1 in xs) > 0.75 * W
        split = any(b0 - max(x1 for _, x1 in xs[:n + 1]) > 0.2 * W for n, (b0, _) in enumerate(xs[1:]))
        if reach and split:
            roles.update({i: "page_number" if is_page_number(lines[i].text) else "footer" for i in block})
    # a page number ending (or starting) the content, well apart from the text, wherever the text ends
    for r, other in ((rows[-1], rows[-2]), (rows[0], rows[1])) if len(rows) >= 2 else ():
        b, o = row_box(r), row_box(other)
        gap = b[1] - o[3] if r is rows[-1] else o[1] - b[3]
        if not any(i in roles for i in r) and shape(r)["page_number"] and gap >= 1.5 * line_h:
            roles.update({i: "page_number" for i in r})
    # a lone number in a margin zone with no text beside it on its row (a slide's page number by a logo)
    for i in idx:
        ln = lines[i]
        x0, y0, x1, y1 = ln.bbox_page_px
        t = ln.text.strip()
        if i in roles or not (t.isdigit() and len(t) <= 4) or 0.12 * H < y0 and y1 < 0.88 * H:
            continue
        h = y1 - y0
        near = any(
            j != i and min(y1, lines[j].bbox_page_px[3]) > max(y0, lines[j].bbox_page_px[1])
            and (lines[j].bbox_page_px[0] - x1 < 2 * h and x0 - lines[j].bbox_page_px[2] < 2 * h)
            for j in idx
        )
        if not near:
            roles[i] = "page_number"
    return roles


@dataclass(frozen=True)
class MarkPageFurniture:
    """Page processor: headers, footers and page numbers of one page judged alone."""

    name: str = "page_furniture"

    def __call__(self, page: PageResult, ctx: PageContext) -> PageResult:
        return update_lines(page, {i: {"role": role} for i, role in page_furniture_roles(page).items()})


def running_furniture(pages: Sequence[PageResult]) -> dict[tuple[int, int], str]:
    """(page position, line index) -> role for text repeated at the same place across pages."""
    usable = [p for p in pages if p.lines and p.height_px > 0]
    n = len(usable)
    if n < 2:
        return {}
    need = 2 if n == 2 else max(3, (n + 1) // 2)
    seen: dict[tuple[str, str, int], set[int]] = defaultdict(set)
    where: dict[tuple[str, str, int], list[tuple[int, int]]] = defaultdict(list)
    for pos, page in enumerate(pages):
        if not page.lines or page.height_px <= 0:
            continue
        line_h = line_height(page.lines)
        sizes = [ln.font_size_pt for ln in page.lines if ln.font_size_pt]
        body_size = statistics.median(sizes) if sizes else None
        for i, ln in enumerate(page.lines):
            text = ln.text.strip()
            if not text or ln.role == "table":
                continue
            cy = (ln.bbox_page_px[1] + ln.bbox_page_px[3]) / 2 / page.height_px
            if REPEAT_ZONE < cy < 1 - REPEAT_ZONE:
                continue
            zone = "top" if cy <= REPEAT_ZONE else "bottom"
            # running heads are set small: a repeated line larger than the body at the top is a heading
            # ("Chapter 2"); at the bottom, nothing repeated on every page is a heading ("Appendix B")
            if zone == "top" and (ln.role == "heading" or (body_size and ln.font_size_pt
                                                            and ln.font_size_pt > 1.1 * body_size) or (
                    ln.bbox_page_px[3] - ln.bbox_page_px[1] > 1.3 * line_h)):
                continue
            key = (zone, _masked(text), round(cy * 50))  # same place: within 2% of the page height
            for k in (key, (zone, key[1], key[2] - 1), (zone, key[1], key[2] + 1)):
                seen[k].add(pos)
            where[key].append((pos, i))
    out: dict[tuple[int, int], str] = {}
    for key, hits in where.items():
        pages_with = set()
        for dk in (-1, 0, 1):
            pages_with |= seen.get((key[0], key[1], key[2] + dk), set())
        if len(pages_with) < need:
            continue
        for pos, i in hits:
            text = pages[pos].lines[i].text
            role = "page_number" if is_page_number(text) else ("header" if key[0] == "top" else "footer")
            out[(pos, i)] = role
    return out


@dataclass(frozen=True)
class MarkRunningFurniture:
    """Document processor: text repeated at the same place across pages becomes header/footer/page_number."""

    name: str = "running_furniture"

    def __call__(self, pages: list[PageResult], ctx: DocumentContext) -> list[PageResult]:
        roles = running_furniture(pages)
        if not roles:
            return pages
        return [
            update_lines(page, {i: {"role": r, "heading_level": None} for (p, i), r in roles.items()
                                if p == pos and page.lines[i].role not in FURNITURE_ROLES})
            for pos, page in enumerate(pages)
        ]
