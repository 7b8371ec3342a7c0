"""The extraction rules of the offline `ocr` engine: every field family's rule, then the judge.

The rules live by field family, each a module to read in one sitting:

- `labels.py`: the label table per field and language, and which rule answers which schema field;
- `page.py`: the page model (lines in printed rows, `docvlm.rows`) and where a label's value stands;
- `dates.py`: dates and times;
- `amounts.py`: the totals block (total by evidence, tax lines, subtotal, rounding, discounts, cash, change);
- `parties.py`: merchant, buyer, invoice number, tax id, payment method;
- `address.py`: the merchant's address;
- `items.py`: line items aligned by row geometry;
- `evidence.py`: the judge: tax settled, the arithmetic closed, each value `verified` / `found` / `inferred`
  with its evidence in the note (candidates.py: the typed objects they all share).

`extract_rules` runs them in that order. Every value keeps its raw text and the box of exactly the words it was
read from.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from docvlm.datamodel import Line
from docvlm.extract.address import find_address
from docvlm.extract.amounts import (
    collect_role_amounts,
    decimal_comma_hint,
    find_labelled_amounts,
    find_tax_lines,
    find_total,
)
from docvlm.extract.candidates import Found, FoundItem, PageText, ReadAgain, RuleResult
from docvlm.extract.dates import find_date, find_time
from docvlm.extract.evidence import close_totals, judge_fields, settle_tax
from docvlm.extract.items import find_line_items
from docvlm.extract.labels import FIELD_ALIASES, LABELS, PATTERNS
from docvlm.extract.normalize import (
    decide_day_first,
    detect_currency,
    find_dates,
)
from docvlm.extract.page import all_lines_text, build_page, spaced_line_text, span_box
from docvlm.extract.parties import (
    find_buyer,
    find_company,
    find_identifier,
    find_payment_method,
    owner_name_below,
    tidy_company_name,
)
from docvlm.rows import estimate_skew

__all__ = [  # re-exported: callers and tests import these from here
    "FIELD_ALIASES", "LABELS", "PATTERNS", "Found", "FoundItem", "PageText", "RuleResult", "build_page",
    "estimate_skew", "extract_rules", "extract_sroie_fields", "extract_sroie_judged", "spaced_line_text",
    "span_box",
]


def extract_rules(pages: Sequence[PageText], *, read_again: ReadAgain | None = None) -> RuleResult:
    """Run every rule over a document's pages (fields from any page; line items of every page concatenated).

    `read_again`: a second recognition of a crop (extract/reread.py), which the judge needs to verify an OCR'd
    company name's letters (without it such a name is at most inferred)."""
    text = all_lines_text(pages)
    dec_comma = decimal_comma_hint(text)
    dates = [d for p in pages for ln in p.lines for d in find_dates(ln.text)]
    day_first = decide_day_first(dates)
    values: dict[str, Found] = {}
    notes: list[tuple[str, str]] = []

    if pages:
        company, last = find_company(pages[0])
        owner = owner_name_below(pages[0], last) if company is not None and last >= 0 else None
        if owner is not None:  # a brand on top, its registered owner named under it: the owner is the company
            company, last = owner
        company = tidy_company_name(company)
        if company:
            values["vendor_name"] = company
        if last >= -1:
            address = find_address(pages[0], last)
            if address:
                values["vendor_address"] = address
    date = find_date(pages, "invoice_date", day_first=day_first)
    if date:
        values["date"] = date
    due = find_date(pages, "due_date", day_first=day_first, require_label=True)
    if due:
        values["due_date"] = due
    tm = find_time(pages, date)
    if tm:
        values["time"] = tm
    subs = find_labelled_amounts(pages, "subtotal", exclude=None, decimal_comma=dec_comma)
    if subs:
        values["subtotal"] = max(subs, key=lambda c: c.score)
    tax_lines = find_tax_lines(pages, decimal_comma=dec_comma)
    tax, _ = settle_tax(tax_lines, total=None, subtotal=values.get("subtotal"))
    if tax is not None:
        values["tax"] = tax
    items = find_line_items(pages, decimal_comma=dec_comma)
    item_amounts = [it.amount.value for it in items if it.amount is not None]
    items_sum = sum(item_amounts, Decimal(0)) if len(item_amounts) >= 2 else None  # type: ignore[arg-type]
    sub, tax_now = values.get("subtotal"), values.get("tax")
    if items_sum is not None and sub is not None and sub.value == items_sum and tax_now is not None and tax_now.value:
        items_sum = None  # the items add up to the subtotal before tax: no vote for a total of that amount
    total, total_notes = find_total(pages, decimal_comma=dec_comma, subtotal=values.get("subtotal"),
                                    tax=values.get("tax"), items_sum=items_sum,
                                    item_amounts=[a for a in item_amounts if isinstance(a, Decimal)])
    notes += total_notes
    if total:
        values["total"] = total
    tax, tax_notes = settle_tax(tax_lines, total=total, subtotal=values.get("subtotal"))
    notes += tax_notes
    values.pop("tax", None)
    if tax is not None:
        values["tax"] = tax
    roles = [r for r in collect_role_amounts(pages, decimal_comma=dec_comma) if not r.void]
    values, items = close_totals(
        values, items, discounts=[abs(r.found.value) for r in roles if r.role == "discount"],  # type: ignore[arg-type]
        roundings=[r.found.value for r in roles if r.role == "rounding" and abs(r.found.value) < 1])  # type: ignore[arg-type, misc]
    for key, label in (("invoice_number", "invoice_number"), ("vendor_tax_id", "vendor_tax_id")):
        found = find_identifier(pages, label)
        if found:
            values[key] = found
    buyer = find_buyer(pages)
    if buyer:
        values["buyer_name"] = buyer
    pm = find_payment_method(pages)
    if pm:
        values["payment_method"] = pm
    currency = (total.currency if total and total.currency else None) or detect_currency(text)
    if currency:
        values["currency"] = Found(currency, currency, total.page if total else 0,
                                   total.bbox_page_px if total else (0.0, 0.0, 1.0, 1.0),
                                   "currency mark on the page")
    values, items = judge_fields(values, items, pages, read_again=read_again)
    return RuleResult(values=values, line_items=items, notes=notes, tax_lines=tax_lines)


SROIE_KEYS = {"company": "vendor_name", "address": "vendor_address", "date": "date", "total": "total"}
"""The four SROIE fields and the rule keys that answer them."""


def extract_sroie_judged(lines: Sequence[Line], width_px: float, height_px: float, *,
                         read_again: ReadAgain | None = None) -> dict[str, tuple[str | None, str | None]]:
    """The four SROIE fields as printed, each with its status (verified / found / inferred; None when missing);
    `read_again` as in `extract_rules`."""
    v = extract_rules([build_page(lines, 0, width_px, height_px)], read_again=read_again).values
    out: dict[str, tuple[str | None, str | None]] = {}
    for name, key in SROIE_KEYS.items():
        f = v.get(key)
        printed = None if f is None else f.printed or f.raw
        out[name] = (printed, None if f is None else f.status)
    return out


def extract_sroie_fields(lines: Sequence[Line], width_px: float, height_px: float) -> dict[str, str | None]:
    """The four SROIE fields (company, address, date, total) as printed: the bench's view of the rules."""
    return {k: v for k, (v, _) in extract_sroie_judged(lines, width_px, height_px).items()}

