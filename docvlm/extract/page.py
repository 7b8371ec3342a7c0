"""The page model of the rules: lines grouped into printed rows (`docvlm.rows`, the shared rule, with the page's
slope taken out), and where a label's value stands (`value_candidates`: the rest of its own line, else the nearest
text to its right on the same row, else the row below, else the nearest line under it in its column).

Every value keeps its raw text and the box of exactly the words it was read from (`span_box`, `found_at`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from docvlm.datamodel import Box, Line
from docvlm.extract.candidates import Found, PageText
from docvlm.extract.labels import PATTERNS
from docvlm.geometry import split_line_into_words, union_box
from docvlm.rows import estimate_skew, group_rows


def build_page(lines: Sequence[Line], index: int, width_px: float, height_px: float) -> PageText:
    """Sort lines top to bottom and group those on one printed row (`docvlm.rows`, the shared rule), with the
    page's slope (`estimate_skew`) taken out, so a label and an amount far to its right on a tilted photo stay
    on one row, and lines that share their width are never stacked into one row."""
    boxes = [ln.bbox_page_px for ln in lines]
    skew = estimate_skew(boxes)
    ordered = group_rows(boxes, skew=skew)
    flat = [j for row in ordered for j in row]
    remap = {old: new for new, old in enumerate(flat)}
    return PageText(
        index=index,
        lines=tuple(lines[j] for j in flat),
        rows=tuple(tuple(remap[j] for j in row) for row in ordered),
        width_px=width_px,
        height_px=height_px,
        skew=skew,
    )


def span_box(line: Line, start: int, end: int) -> Box:
    """Box of the characters [start, end) of a line: the union of the words they touch."""
    words = [(w.text, w.bbox_page_px) for w in line.words] or split_line_into_words(line.text, line.bbox_page_px)
    pos, hit = 0, []
    for text, box in words:
        at = line.text.find(text, pos)
        if at < 0:
            return line.bbox_page_px  # words do not spell the line: fall back to the whole line
        if at < end and start < at + len(text):
            hit.append(box)
        pos = at + len(text)
    return union_box(hit) if hit else line.bbox_page_px


def found_at(page: PageText, i: int, start: int, end: int, value: object, *, note: str | None = None,
           currency: str | None = None, score: float = 0.0) -> Found:
    line = page.lines[i]
    return Found(value, line.text[start:end].strip(), page.index, span_box(line, start, end), note, currency, score)


def find_labels(page: PageText, field_name: str) -> list[tuple[int, int, int, int]]:
    """(line index, label start, label end, rank) of every label of a field, strongest rank first per line."""
    hits = []
    for i, line in enumerate(page.lines):
        best = None
        for rank, pattern in PATTERNS[field_name]:
            m = pattern.search(line.text)
            if m and (best is None or rank < best[3] or rank == best[3] and m.end() - m.start() > best[2] - best[1]):
                best = (i, m.start(), m.end(), rank)
        if best:
            hits.append(best)
    return hits


def value_candidates(page: PageText, i: int, label_end: int) -> list[tuple[int, int]]:
    """Where a label's value may stand: (line index, start offset), in order of preference.

    The rest of the label's own line, then the lines to its right on the same row, then the row below
    (the lines that overlap the label horizontally or lie to its right).
    """
    out = [(i, label_end)]
    row = page.rows[page.row_of(i)]
    x1 = page.lines[i].bbox_page_px[2]
    out += [(j, 0) for j in row if page.lines[j].bbox_page_px[0] >= x1 - 2 and j != i]
    r = page.row_of(i)
    if page.lines[i].text[label_end:].strip(" :#.-=()"):
        return out  # text follows the label on its own line: that is its value, or there is none
    if r + 1 < len(page.rows):
        x0, lx1 = page.lines[i].bbox_page_px[0], page.lines[i].bbox_page_px[2]
        below = [j for j in page.rows[r + 1] if page.lines[j].bbox_page_px[2] > x0]
        under = [j for j in below if page.lines[j].bbox_page_px[0] < lx1]
        if any(page.lines[j].text.rstrip().endswith(":") for j in under):
            return out  # a column of labels: the line under this label is the next label, not its value
        out += [(j, 0) for j in below]
    # column layouts: the nearest line under the label that shares its x-range, whatever the rows between
    lb = page.lines[i].bbox_page_px
    h = lb[3] - lb[1]
    under_col = [j for j in range(len(page.lines)) if j != i
                 and page.lines[j].bbox_page_px[1] >= lb[3] - 0.25 * h
                 and page.lines[j].bbox_page_px[1] - lb[3] <= 1.5 * h
                 and min(page.lines[j].bbox_page_px[2], lb[2]) - max(page.lines[j].bbox_page_px[0], lb[0]) > 0]
    if under_col:
        nearest = min(under_col, key=lambda k: page.lines[k].bbox_page_px[1])
        if (nearest, 0) not in out:
            out.append((nearest, 0))
    return out


def label_note(page: PageText, i: int, j: int, label: str) -> str:
    """'label 'Date' on row 7, value to its right' -- how a labelled value was paired, for the field's note."""
    ri, rj = page.row_of(i), page.row_of(j)
    where = "on its line" if i == j else "to its right" if ri == rj else f"below it (row {rj + 1})"
    return f"label {label!r} on row {ri + 1}{'' if page.index == 0 else f' of page {page.index + 1}'}, value {where}"


def after_separator(text: str, start: int) -> int:
    m = re.match(r"[\s:#.\-=]*(?:\((?:rm|\$|€|eur|usd|myr)\)\s*[:=]?)?[\s:#\-=]*", text[start:], re.IGNORECASE)
    return start + (m.end() if m else 0)


def all_lines_text(pages: Sequence[PageText]) -> str:
    return "\n".join(line.text for p in pages for line in p.lines)


HEADER_WORDS = re.compile(
    r"^\W*(tax\s*invoice|invoice|receipt|facture|factuur|rechnung|credit\s*note|cash\s*bill|official\s*receipt|"
    r"quittung|kwitantie|re[çc]u|resit|bon)\W*$", re.IGNORECASE)
"""A document-type heading printed on the same row as the merchant name (e.g. 'INVOICE' at the right)."""


def _row_cluster(page: PageText, r: int) -> list[int]:
    """The lines of a row that belong together: split where the gap exceeds three line heights, headings dropped,
    and the first group kept (the merchant block is left-aligned or centred; a heading sits apart)."""
    row = [j for j in page.rows[r] if not HEADER_WORDS.match(page.lines[j].text)] or list(page.rows[r])
    groups = [[row[0]]]
    for j in row[1:]:
        prev = page.lines[groups[-1][-1]].bbox_page_px
        cur = page.lines[j].bbox_page_px
        if cur[0] - prev[2] > 3 * max(prev[3] - prev[1], cur[3] - cur[1]):
            groups.append([j])
        else:
            groups[-1].append(j)
    return groups[0]


WORD_GAP_SPACE = 0.4
"""A gap between two word boxes wider than this many line heights is a printed space (text spaces: median 0.3)."""


def spaced_line_text(line: Line) -> str:
    """The line's text with a space wherever two of its word boxes stand apart by more than `WORD_GAP_SPACE`
    line heights but the OCR text has none ('JALANAIR' read from the boxes 'JALAN' | 'AIR').

    The recogniser drops spaces its own word boxes keep; the gap decides, never the words. Nothing else
    changes: punctuation stays as read, and a line whose words do not spell its text is returned as is.
    """
    text, words = line.text, line.words
    height = line.bbox_page_px[3] - line.bbox_page_px[1]
    if len(words) < 2 or height <= 0:
        return text
    cuts, pos = [], 0
    for a, b in zip(words, words[1:], strict=False):
        at = text.find(a.text, pos)
        if at < 0:
            return text
        pos = at + len(a.text)
        if text[pos:pos + 1] not in ("", " ") and text.startswith(b.text, pos) \
                and b.bbox_page_px[0] - a.bbox_page_px[2] > WORD_GAP_SPACE * height \
                and not (_is_cjk(a.text[-1]) or _is_cjk(b.text[0])):
            cuts.append(pos)
    for at in reversed(cuts):
        text = text[:at] + " " + text[at:]
    return text


def _is_cjk(ch: str) -> bool:
    return "\u2e80" <= ch <= "\u9fff" or "\uac00" <= ch <= "\ud7af" or "\uff00" <= ch <= "\uffef"


def row_text(page: PageText, r: int) -> str:
    """The first group of lines of a row joined left to right (spaces where the word boxes show them), with
    full-width brackets made ASCII."""
    text = " ".join(spaced_line_text(page.lines[j]).strip() for j in _row_cluster(page, r))
    return text.replace("（", "(").replace("）", ")").replace("：", ":")


def row_box(page: PageText, r: int) -> Box:
    return union_box([page.lines[j].bbox_page_px for j in _row_cluster(page, r)])


def row_height(page: PageText, r: int) -> float:
    b = row_box(page, r)
    return b[3] - b[1]


def find_labels_in(page: PageText, i: int, field_name: str) -> list[re.Match[str]]:
    return [m for _, p in PATTERNS[field_name] for m in [p.search(page.lines[i].text)] if m]


def rows_found(page: PageText, rows: list[int], note: str) -> Found:
    """The text of whole rows joined with a space (an '&' glued to the next word spaced), boxed by their union."""
    text = " ".join(row_text(page, r) for r in rows)
    text = re.sub(r"(?<=\s)&(?=[A-Za-z])", "& ", text)
    return Found(text, text, page.index, union_box([row_box(page, r) for r in rows]), note)
