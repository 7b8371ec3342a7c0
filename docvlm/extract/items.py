"""Line items: rows between the table header (or the last dated row) and the first total-like label, aligned by
row geometry (`docvlm.rows`), not by reading order. Each item keeps a box per part (description, quantity, unit
price, amount); a name printed over several lines is joined (above its amounts, or continued below, by row gaps).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace
from decimal import Decimal

from docvlm.datamodel import Line
from docvlm.extract.amounts import money_found
from docvlm.extract.candidates import Found, FoundItem, PageText
from docvlm.extract.normalize import (
    find_amounts,
    find_dates,
)
from docvlm.extract.page import find_labels, find_labels_in, found_at, row_box, row_height, span_box
from docvlm.geometry import union_box

QTY_TIMES_PRICE = re.compile(r"(?<![\d.,])(\d{1,4})\s*[x×X*@]\s*(?:RM|\$|€|£)?\s*(\d+[.,]\d{2})(?!\d)")
"""'2 x 1.29', '3 × 0.85', '1 X 19.00': a quantity and its unit price on a receipt row."""


def find_line_items(pages: Sequence[PageText], *, decimal_comma: bool | None) -> list[FoundItem]:
    """Rows between the table start and the first total-like label: a description and an amount at the right.

    The table starts after the header row with the most header words, or, on receipts without a header, after
    the last row carrying a date or time above the totals. A row with only 'quantity x unit price' and an amount
    belongs to the description on the row above it.
    """
    items: list[FoundItem] = []
    for page in pages:
        header_rows = {page.row_of(i) for i, *_ in find_labels(page, "line_items_header")}
        stop_rows = {page.row_of(i) for f in ("total", "subtotal") for i, *_ in find_labels(page, f)}
        if header_rows:
            first = max(header_rows,
                        key=lambda r: (sum(len(find_labels_in(page, j, "line_items_header")) for j in page.rows[r]), -r))
        else:
            end = min(stop_rows or {len(page.rows)})
            dated = [r for r in range(end) if any(find_dates(page.lines[j].text) or
                                                  re.search(r"\b\d{1,2}:\d{2}\b", page.lines[j].text)
                                                  for j in page.rows[r])]
            if not dated:
                continue
            first = dated[-1]
        last = min([r for r in stop_rows if r > first] or [len(page.rows)])
        pending: list[tuple[int, Line]] = []  # name lines printed above their amounts row
        last_item_row = -2
        page_items: list[FoundItem] = []
        for r in range(first + 1, last):
            row = page.rows[r]
            text_parts = [(j, page.lines[j]) for j in row]
            desc, amounts = _row_parts(page, r, decimal_comma)
            if desc and not amounts:
                if r == last_item_row + 1 and page_items and _continues_previous(page, r, decimal_comma, last):
                    page_items[-1] = _extend_description(page, page_items[-1], desc[0][0])
                    last_item_row = r
                elif len(page.rows[r]) >= 2:
                    pending = []  # names in two columns and no amount: a header row, not an item's name
                else:
                    pitch = (sum(row_box(page, r)[1::2]) - sum(row_box(page, r - 1)[1::2])) / 2
                    if pending and pitch > NAME_LINE_PITCH * row_height(page, r):
                        pending = []  # a name wraps onto tightly spaced lines; a wider gap starts afresh
                    pending.append(desc[0])
                continue
            if not amounts:
                continue
            if not desc and not pending:
                continue
            dj, dl = desc[0] if desc else pending[-1]
            d_end = _name_end(dl.text)
            description = found_at(page, dj, 0, d_end, dl.text[:d_end].strip(), note="table row")
            above = pending[:-1] if not desc else pending
            if above:  # a name printed over several lines above its amounts: joined, top to bottom
                parts = [page.lines[k].text.strip() for k, _ in above] + [description.raw]
                description = replace(description, value=" ".join(parts), raw=" ".join(parts),
                                      bbox_page_px=union_box([page.lines[k].bbox_page_px for k, _ in above]
                                                             + [description.bbox_page_px]),
                                      note=f"table row; name over {len(parts)} lines")
            pending = []
            last_item_row = r
            aj, am = amounts[-1]
            amount = money_found(page, aj, am, "rightmost amount of the row", 0)
            unit = qty = None
            for j, ln in text_parts:
                qp = QTY_TIMES_PRICE.search(ln.text)
                if qp:
                    qty = found_at(page, j, qp.start(1), qp.end(1), Decimal(qp.group(1)), note="quantity x unit price")
                    price = find_amounts(qp.group(2), decimal_comma=decimal_comma)
                    if price:
                        unit = Found(price[0].value, qp.group(2), page.index, span_box(ln, qp.start(2), qp.end(2)),
                                     "quantity x unit price")
                    break
            if unit is None and len(amounts) > 1:
                unit = money_found(page, amounts[-2][0], amounts[-2][1], "amount before the line total", 0)
            if qty is None:
                for j, ln in text_parts:
                    q = re.search(r"(?<![\d.,])(\d{1,4})(?:\s*(?:x|pcs?|pc|st|stk|h)\b|\s*$)", ln.text, re.I)
                    if q and j not in (aj, dj):  # a number ending the description is part of it ("eggs 12")
                        qty = found_at(page, j, q.start(1), q.end(1), Decimal(q.group(1)), note="count on the row")
                        break
            page_items.append(FoundItem(description, qty, unit, amount))
        items += page_items
    return items


NUMERIC_TAIL = re.compile(r"(?:\s+(?:[-(]?\d+(?:[.,]\d+)*\)?|[x×@*]|RM|\$|€|£|EUR|MYR|USD|GBP))+\s*$")
"""The columns printed after an item's name inside one box: quantity, 'x', unit price, amount, currency."""


def _name_end(text: str) -> int:
    """Where an item's name ends in its line: before a tail of numbers that holds an amount with cents (the
    row's columns read into one box); a number with no amount after it is part of the name ('PACK OF 6')."""
    m = NUMERIC_TAIL.search(text)
    if m and m.start() > 0 and re.search(r"\d[.,]\d{2}(?!\d)", m.group(0)):
        return m.start()
    return len(text.rstrip())


NAME_LINE_PITCH = 1.8
"""Lines of one wrapped item name are at most this many line heights apart, centre to centre."""


ITEM_NAME_LETTERS = 2
"""A row part with at least this many letters (besides 'quantity x price') is an item's name ('2KG' included)."""


def _row_parts(page: PageText, r: int, decimal_comma: bool | None) -> tuple[list[tuple[int, Line]], list]:
    """(name lines, amounts with cents) of one row of the items table."""
    parts = [(j, page.lines[j]) for j in page.rows[r]]
    desc = [(j, ln) for j, ln in parts if sum(c.isalpha() for c in QTY_TIMES_PRICE.sub("", ln.text)) >= ITEM_NAME_LETTERS]
    amounts = [(j, am) for j, ln in parts for am in find_amounts(ln.text, decimal_comma=decimal_comma) if am.has_decimals]
    return desc, amounts


PITCH_TIE = 0.15
"""Row pitches (centre to centre) within this share of a line height are equal."""


def _continues_previous(page: PageText, r: int, decimal_comma: bool | None, last: int) -> bool:
    """A name-only row right under an item row continues that item's name when it sits closer to it than to the
    next row (centre to centre), or equally close while the next row is a whole item (name and amount). Never after a
    'quantity x price' row: a name does not go on after its item's numbers."""
    if not _row_parts(page, r - 1, decimal_comma)[0]:
        return False
    box = row_box(page, r)
    h = box[3] - box[1]

    def cy(k: int) -> float:
        b = row_box(page, k)
        return (b[1] + b[3]) / 2

    pitch_prev = cy(r) - cy(r - 1)
    if r + 1 >= last:
        return pitch_prev <= 1.5 * h
    pitch_next = cy(r + 1) - cy(r)
    desc_next, amounts_next = _row_parts(page, r + 1, decimal_comma)
    if amounts_next and not desc_next:
        return False  # 'qty x price  amount' under it: this row names the next item
    # equally close: it continues the item above when the next row is a whole item of its own (name and amount)
    return pitch_prev < pitch_next - PITCH_TIE * h or (abs(pitch_prev - pitch_next) <= PITCH_TIE * h
                                                       and bool(desc_next) and bool(amounts_next))


def _extend_description(page: PageText, item: FoundItem, j: int) -> FoundItem:
    d = item.description
    text = page.lines[j].text.strip()
    if d is None:
        return item
    joined = f"{d.raw} {text}"
    return replace(item, description=replace(d, value=joined, raw=joined,
                                             bbox_page_px=union_box([d.bbox_page_px, page.lines[j].bbox_page_px]),
                                             note="table row; name continued on the line(s) below"))

