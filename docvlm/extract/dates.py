"""Dates and times: a date next to its label first, else the date printed with a time of day, else the first date
(day/month order decided by the document's unambiguous dates, `normalize.decide_day_first`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace

from docvlm.extract.candidates import Found, PageText
from docvlm.extract.normalize import (
    find_dates,
    parse_time,
    resolve_date,
)
from docvlm.extract.page import find_labels, find_labels_in, found_at, label_note, value_candidates
from docvlm.geometry import union_box


def find_date(pages: Sequence[PageText], label_field: str, *, day_first: bool, require_label: bool = False) -> Found | None:
    """A date next to one of the field's labels; else (unless `require_label`) the first date of the document."""
    best: Found | None = None
    for page in pages:
        for i, start, end, rank in find_labels(page, label_field):
            if label_field == "invoice_date" and PATTERNS_DUE_OR_OTHER.search(page.lines[i].text):
                continue
            for j, at in value_candidates(page, i, end):
                dates = [d for d in find_dates(page.lines[j].text) if d.start >= at]
                if dates:
                    d = dates[0]
                    value = resolve_date(d, day_first=day_first)
                    cand = found_at(page, j, d.start, d.end, value, note=label_note(page, i, j, page.lines[i].text[start:end]),
                                  score=10 - rank)
                    if best is None or cand.score > best.score:
                        best = cand
                    break
    if best is not None or require_label:
        return best
    unlabelled = [(page, j, d) for page in pages for j, line in enumerate(page.lines)
                  if not PATTERNS_DUE_OR_OTHER.search(line.text) and not _has_label(page, j, "due_date")
                  for d in find_dates(line.text)[:1]]
    # a date printed with a time of day is the transaction's date; else the first date of the document
    with_time = [u for u in unlabelled if parse_time(u[0].lines[u[1]].text[u[2].end:])]
    for page, j, d in with_time[:1] or unlabelled[:1]:
        return found_at(page, j, d.start, d.end, resolve_date(d, day_first=day_first),
                      note="first date on the document (no date label)")
    return _date_across_lines(pages, day_first=day_first) or find_date_missing_separator(pages, day_first=day_first)


def _date_across_lines(pages: Sequence[PageText], *, day_first: bool) -> Found | None:
    """The first date that only reads whole across the lines of one printed row: OCR may box one printed line
    as two ('05 Mar' | '2018'). The row's lines are joined left to right with a space; the box is theirs."""
    for page in pages:
        for row in page.rows:
            if len(row) < 2:
                continue
            starts, text = [], ""
            for j in row:
                starts.append(len(text))
                text += page.lines[j].text + " "
            for d in find_dates(text):
                touched = [j for j, at in zip(row, starts, strict=True)
                           if at < d.end and d.start < at + len(page.lines[j].text)]
                if len(touched) < 2 or any(PATTERNS_DUE_OR_OTHER.search(page.lines[j].text) for j in row):
                    continue
                return Found(resolve_date(d, day_first=day_first), d.raw, page.index,
                             union_box([page.lines[j].bbox_page_px for j in touched]),
                             f"a date read across {len(touched)} OCR lines of one printed row (no date label)")
    return None


MISSING_SEPARATOR = (
    re.compile(r"(?<![\d.,/:-])(\d{2})(\d{2})([/.-])(\d{4})(?![\d.,/:-])"),
    re.compile(r"(?<![\d.,/:-])(\d{2}) (\d{2})([/.-])(\d{2}|\d{4})(?![\d.,/:-])"),
)
"""A day-month-year date with its first separator dropped by the recogniser ('2703/2018', '05 02-18'): the
separator it kept is the one printed twice."""


def find_date_missing_separator(pages: Sequence[PageText], *, day_first: bool) -> Found | None:
    """The first date printed with one separator lost (`MISSING_SEPARATOR`), when the document has no other
    date: the value is the date, `printed` the text with the kept separator restored, `raw` as read."""
    for page in pages:
        for j, line in enumerate(page.lines):
            if PATTERNS_DUE_OR_OTHER.search(line.text):
                continue
            for pattern in MISSING_SEPARATOR:
                m = pattern.search(line.text)
                if not m:
                    continue
                day, month, sep, year = m.groups()
                printed = f"{day}{sep}{month}{sep}{year}"
                dates = find_dates(printed)
                if not dates or dates[0].raw != printed:
                    continue
                found = found_at(page, j, m.start(), m.end(), resolve_date(dates[0], day_first=day_first),
                                 note=f"the only date, read {m.group(0)!r} with a separator lost: {printed!r}")
                return replace(found, printed=printed)
    return None


PATTERNS_DUE_OR_OTHER = re.compile(
    r"\b(due|vervaldatum|[ée]ch[ée]ance|f[äa]llig|order\s*date|delivery|lever|livraison|period|geboorte|"
    r"printed|expiry|valid|limite|paiement|betaal|zahlbar)\b", re.IGNORECASE
)


def find_time(pages: Sequence[PageText], near: Found | None) -> Found | None:
    for page in pages:
        order = range(len(page.lines))
        if near is not None and near.page == page.index:
            order = sorted(order, key=lambda k: abs(page.lines[k].bbox_page_px[1] - near.bbox_page_px[1]))
        for i in order:
            text = page.lines[i].text
            got = parse_time(text)
            if got:
                value, raw = got
                s = text.find(raw)
                return found_at(page, i, s, s + len(raw), value, note="time of day")
    return None


def _has_label(page: PageText, i: int, field_name: str) -> bool:
    """True when line i, or a line on its row, carries a label of the field (e.g. 'Due date:' left of a date)."""
    return any(find_labels_in(page, j, field_name) or PATTERNS_DUE_OR_OTHER.search(page.lines[j].text)
               for j in page.rows[page.row_of(i)])

