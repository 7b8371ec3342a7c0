"""The judge: which values the rules read are `verified`, `found` or `inferred`, and why (see candidates.py).

Runs after every field family's rule, on what they found, and only adds evidence or removes impossible
values; it never reads a new value off the page except the tax (one home for the tax's arithmetic):

1. Tax (`settle_tax`): the printed tax lines, never one at or above the total (impossible: it is the total
   read under an 'incl. GST' label); per-rate lines summed and listed; an exempt or 0% line gives 0.00; a line
   whose amount equals rate x base (within a cent) is `rate` evidence.
2. Totals block arithmetic (`close_totals`): subtotal + tax - discount + rounding = total confirms all of them;
   the line items summing to the subtotal or the total confirms the items and that amount; quantity x unit
   price = line amount confirms that item.
3. Each field: evidence of its family (dates, company, address, labels), then its status: `verified` when
   some evidence confirms it and nothing doubts it, `found` when read under a label, else `inferred`.

A company's legal form or registration number proves which line is the company's, not that OCR read its
letters right ("URBAN 1DEA SDN BHD"): the name is `verified` only when its letters are confirmed too
(`_letters_evidence`): a text layer, the name printed twice and read the same, or a second recognition of its
crop (extract/reread.py) that reads the same; and no doubt about the reading (low word confidence, marks names
do not print, an accent the page never uses, a digit inside a word, an I/l in the other letters' case). A date
a second recognition reads otherwise is doubted too.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import replace
from datetime import date
from decimal import Decimal

from docvlm.extract.candidates import Evidence, Found, FoundItem, PageText, ReadAgain, RuleStatus, TaxLine
from docvlm.extract.normalize import find_dates

CENT = Decimal("0.01")
"""Two amounts agree when they differ by at most this (printed amounts are rounded to the cent)."""
RATE_TOLERANCE = Decimal("0.011")
"""tax = rate x base agrees within a cent, plus the half-cent the printer's own rounding may add."""
OLDEST_YEAR = 1990
"""A document date before this year is implausible (a misread year); later than next year is too."""
LABELLED = re.compile(r"^label\b|text after the label|line under the label")
"""Notes of values read next to a label (from rules.py's `_label_note` and the buyer rule)."""
LEGAL_FORM = re.compile(
    r"\b(sdn\.?\s*bhd\.?|bhd\.?|s/b|b\.v\.?|n\.v\.?|gmbh|ag|sarl|sas|s\.a\.?|ltd\.?|limited|inc\.?|llc|plc|"
    r"pte\.?\s*ltd\.?|co\.,?\s*ltd\.?|corporation|company)\W*$", re.IGNORECASE)
"""A legal form ending a company name: with it the name is the registered one (not a mall or a slogan)."""
REGISTRATION_LINE = re.compile(
    r"(co\.?\s*-?\s*re?[gf]|\bco\.?\s*no\b|\broc\b|company\s*(?:reg|no)|reg\.?\s*no|"
    r"^\W*\(?\s*[a-z]{0,3}\s*\d{4,}[\s\-]*[a-z]?\s*\)?\W*$)", re.IGNORECASE)
"""A registration number printed under a company name ('(CO.REG : 933109-X)', '(JM0517726)')."""
POSTCODE = re.compile(r"(?<![\d-])\d{5}(?![\d-])|\b\d{4}\s?[A-Z]{2}\b|\b[A-Z]{1,2}\d[A-Z\d]?\s\d[A-Z]{2}\b")
READ_CONFIDENCE = 0.9
"""A text value is confirmed only when every OCR word it was read from has at least this confidence: a legal
form proves the line is the company's, not that its letters were read right (text layers have no confidence:
their text is what is printed)."""
MISREAD_MARKS = re.compile(r"[_`|~]|\w-\s|\s-\w")
"""Characters and dangling hyphens that names do not print and OCR produces from specks and gaps."""
RARE_ACCENTS = 4
"""A page printing fewer accented letters than this (all values included) is not written in a language with
accents: an accent in a value there may be OCR's, and it is a doubt (never stripped: the value stays as read)."""
DIGIT_IN_WORD = re.compile(r"\b(?=\w*\d)(?=(?:\w*?[^\W\d_]){3})(?!\d+(?:st|nd|rd|th)\b)\w+", re.IGNORECASE)
"""A word of three letters or more with a digit inside ('1DEA', 'W0RLD'): names print such words rarely, OCR
makes them from I/1, O/0, S/5, B/8 (ordinals like '3RD' excepted)."""
CASE_LOOKALIKE = re.compile(r"(?<=[a-z])I(?=[a-z]|\b)|(?<=[A-Z])l(?=[A-Z]|\b)")
"""An upper-case I among lower-case letters ('WorId') or a lower-case l among capitals ('WORlD'): the
recognizer's I/l confusion, which no printed name shows."""
COMPARE_SPACES = re.compile(r"\s+")
MIN_REPEAT_CHARS = 6
"""A name counts as printed twice only when it has at least this many characters (spaces aside): a short word
recurs on a page by chance."""
SINGLE_LINE_NAME = "table row"
"""The note items.py gives a name read whole from one line."""
STREET = re.compile(r"\b(jalan|jln|lorong|taman|tmn|road|rd|street|st|avenue|ave|lot|no|straat|weg|laan|rue|"
                    r"stra(?:ss|ß)e|platz|persiaran|lebuh)\b", re.IGNORECASE)


def _ev(found: Found, kind: str, detail: str) -> Found:
    return found.with_evidence(Evidence(kind, detail))  # type: ignore[arg-type]


def _eq(a: object, b: object) -> bool:
    return isinstance(a, Decimal) and isinstance(b, Decimal) and abs(a - b) <= CENT


# --- 1. tax --------------------------------------------------------------------------------------------------
def settle_tax(lines: Sequence[TaxLine], *, total: Found | None, subtotal: Found | None
               ) -> tuple[Found | None, list[tuple[str, str]]]:
    """The document's tax from its printed tax lines (see the module docstring), and warnings."""
    notes: list[tuple[str, str]] = []
    tot = total.value if total is not None and isinstance(total.value, Decimal) else None
    kept: list[TaxLine] = []
    for t in lines:
        v = t.amount.value
        if not isinstance(v, Decimal) or v < 0:
            continue
        if tot is not None and tot > 0 and v >= tot and not t.exempt:
            notes.append(("impossible_tax", f"a tax line reads {t.amount.raw}, at or above the total {total.raw}: "  # type: ignore[union-attr]
                          "not a tax (a total printed with 'incl. tax'); skipped"))
            continue
        kept.append(t)
    if not kept:
        return None, notes
    # one amount per printed row; a tax printed twice (a summary table and a tax line) counts once
    by_value: dict[Decimal, list[TaxLine]] = {}
    for t in kept:
        by_value.setdefault(t.amount.value, []).append(t)  # type: ignore[arg-type]
    exempt_only = all(t.exempt or t.amount.value == 0 for t in kept)
    if exempt_only:
        t = kept[0]
        zero = replace(t.amount, value=Decimal("0.00"), note=f"{t.amount.note}; exempt or 0% tax: 0.00")
        return _ev(zero, "label", "an exempt / 0% tax line"), notes
    paying = [t for t in kept if t.amount.value]
    rates = {t.rate_percent for t in paying if t.rate_percent is not None}
    distinct = {t.amount.value: t for t in paying}
    if len(rates) >= 2 and len(distinct) >= 2:
        per_rate = {}
        for t in paying:
            if t.rate_percent is not None:
                per_rate.setdefault(t.rate_percent, t)
        parts = list(per_rate.values())
        s = sum((t.amount.value for t in parts), Decimal(0))  # type: ignore[misc]
        # a printed tax total equal to the sum confirms it; else the sum of the per-rate lines
        printed_total = next((t for t in paying if t.rate_percent is None and _eq(t.amount.value, s)), None)
        listed = ", ".join(f"{t.rate_percent}%: {t.amount.raw}" for t in parts)
        base = printed_total.amount if printed_total else parts[0].amount
        found = replace(base, value=s, raw=printed_total.amount.raw if printed_total else str(s),
                        note=f"sum of the tax lines per rate ({listed})")
        found = _ev(found, "arithmetic" if printed_total else "label",
                    f"tax lines per rate {listed} sum to {s}" + (" as printed" if printed_total else ""))
        return found, notes
    best = max(paying, key=lambda t: t.amount.score)
    found = best.amount
    repeats = [t for t in by_value.get(found.value, []) if t is not best]  # type: ignore[arg-type]
    rows = {(t.amount.page, round(t.amount.bbox_page_px[1])) for t in [best, *repeats]}
    if len(rows) >= 2:
        found = _ev(found, "repeat", f"the tax {found.raw} is printed on {len(rows)} tax rows")
    if best.rate_percent is not None:
        rate = Decimal(str(best.rate_percent)) / 100
        bases = []
        if subtotal is not None and isinstance(subtotal.value, Decimal):
            bases.append((subtotal.value * rate, f"{best.rate_percent}% of the subtotal {subtotal.raw}"))
        if tot is not None:
            bases.append((tot - tot / (1 + rate), f"{best.rate_percent}% included in the total {total.raw}"))  # type: ignore[union-attr]
            bases.append(((tot - found.value) * rate, f"{best.rate_percent}% of total - tax"))  # type: ignore[operator]
        for expected, how in bases:
            if abs(expected - found.value) <= RATE_TOLERANCE:  # type: ignore[operator]
                found = _ev(found, "rate", f"{how} = {expected.quantize(CENT)}")
                break
        else:
            found = found.with_evidence()
    return found, notes


# --- 2. the arithmetic of the totals block --------------------------------------------------------------------
def close_totals(values: dict[str, Found], items: list[FoundItem], *, discounts: Sequence[Decimal],
                 roundings: Sequence[Decimal]) -> tuple[dict[str, Found], list[FoundItem]]:
    """Evidence from subtotal + tax - discount + rounding = total and from the line items' sums."""
    values = dict(values)
    sub, tax, tot = values.get("subtotal"), values.get("tax"), values.get("total")
    if sub is not None and tot is not None and isinstance(sub.value, Decimal) and isinstance(tot.value, Decimal):
        t = tax.value if tax is not None and isinstance(tax.value, Decimal) else Decimal(0)
        for d in [Decimal(0), *discounts]:
            for r in [Decimal(0), *roundings]:
                if _eq(sub.value + t - d + r, tot.value):
                    how = f"subtotal {sub.raw}" + (f" + tax {tax.raw}" if tax is not None else "") + \
                        (f" - discount {d}" if d else "") + (f" + rounding {r}" if r else "") + f" = total {tot.raw}"
                    if t or d or r:  # subtotal = total alone proves nothing (the same amount read twice)
                        values["subtotal"] = _ev(sub, "arithmetic", how)
                        values["total"] = _ev(tot, "arithmetic", how)
                        if tax is not None:
                            values["tax"] = _ev(tax, "arithmetic", how)
                    break
            else:
                continue
            break
    amounts = [it.amount.value for it in items if it.amount is not None and isinstance(it.amount.value, Decimal)]
    out_items = []
    for it in items:
        q, u, a = it.quantity, it.unit_price, it.amount
        if q is not None and u is not None and a is not None and all(isinstance(f.value, Decimal) for f in (q, u, a)):
            if _eq(q.value * u.value, a.value):  # type: ignore[operator]
                how = f"quantity {q.raw} x unit price {u.raw} = amount {a.raw}"
                it = FoundItem(it.description, _ev(q, "arithmetic", how), _ev(u, "arithmetic", how),
                               _ev(a, "arithmetic", how))
        out_items.append(it)
    items = out_items
    if len(amounts) >= 1 and len(amounts) == len(items):
        s = sum(amounts, Decimal(0))
        target = None
        for key in ("subtotal", "total"):
            f = values.get(key)
            if f is not None and _eq(f.value, s):
                target = key
                break
        if target is not None and (len(amounts) >= 2 or target == "subtotal"):
            how = f"the {len(amounts)} line amounts sum to the {target} {values[target].raw}"
            values[target] = _ev(values[target], "arithmetic", how)
            # the sum proves the rows are the items and their numbers right; a name joined from several lines
            # may have taken a neighbour's line, so only a name read on its amount's own line is confirmed
            items = [FoundItem(
                None if it.description is None else _ev(it.description, "arithmetic", how)
                if (it.description.note or "") == SINGLE_LINE_NAME else it.description,
                *(None if f is None else _ev(f, "arithmetic", how) for f in (it.quantity, it.unit_price, it.amount)))
                for it in items]
    return values, items


# --- 3. per field ----------------------------------------------------------------------------------------------
def _date_evidence(found: Found, today: date, distinct_dates: int) -> Found:
    v = found.value
    if not isinstance(v, date) or not OLDEST_YEAR <= v.year <= today.year + 1:
        return _ev(found, "doubt", f"{found.raw!r} is not a plausible document date")
    note = found.note or ""
    if LABELLED.search(note):
        return _ev(found, "date", f"a labelled date that parses ({v.isoformat()}) and is plausible")
    if "time of day" in note:
        return _ev(found, "date", f"printed with the time of the sale ({v.isoformat()})")
    if distinct_dates == 1:
        return _ev(found, "date", f"the only date on the document; it parses ({v.isoformat()}) and is plausible")
    return _ev(found, "position", f"the first of {distinct_dates} dates on the document (no date label)")


def _reading_doubt(found: Found, pages: Sequence[PageText]) -> Found:
    """A doubt when OCR read the value's words unsurely or left marks that names do not print."""
    text = str(found.value)
    m = MISREAD_MARKS.search(text)
    if m:
        return _ev(found, "doubt", f"{m.group(0).strip()!r} looks like a misread mark")
    page = next((p for p in pages if p.index == found.page), None)
    if page is None:
        return found
    accented = [ch for ch in text if ch.isalpha() and unicodedata.decomposition(ch).split()[1:2]]
    if accented:
        page_accents = sum(1 for ln in page.lines for ch in ln.text
                           if ch.isalpha() and unicodedata.decomposition(ch).split()[1:2])
        if page_accents < RARE_ACCENTS:
            return _ev(found, "doubt", f"{accented[0]!r} carries an accent the rest of the page does not use "
                       "(OCR may have added it; the value keeps what was read)")
    box = found.bbox_page_px
    confs = [w.confidence for ln in page.lines for w in ln.words
             if w.confidence is not None and w.bbox_page_px[0] < box[2] and w.bbox_page_px[2] > box[0]
             and w.bbox_page_px[1] < box[3] and w.bbox_page_px[3] > box[1]
             and min(w.bbox_page_px[3], box[3]) - max(w.bbox_page_px[1], box[1])
             >= 0.5 * (w.bbox_page_px[3] - w.bbox_page_px[1])]
    if confs and min(confs) < READ_CONFIDENCE:
        return _ev(found, "doubt", f"OCR read a word of it with confidence {min(confs):.2f}")
    if not page.text_layer:
        m = DIGIT_IN_WORD.search(text) or CASE_LOOKALIKE.search(text)
        if m:
            what = "a digit inside a word" if any(ch.isdigit() for ch in m.group(0)) else "an I/l in the other case"
            return _ev(found, "doubt", f"{m.group(0)!r} has {what}, as OCR misreads letters")
    return found


def _same_letters(a: str, b: str) -> bool:
    """Two readings agree: the same characters, case and spacing aside (accents and punctuation count)."""
    return COMPARE_SPACES.sub("", unicodedata.normalize("NFKC", a)).upper() == \
        COMPARE_SPACES.sub("", unicodedata.normalize("NFKC", b)).upper()


def _value_segments(found: Found, page: PageText) -> list[tuple[str, tuple[float, float, float, float]]]:
    """The value's words, line by line: each line's words whose centre lies in the value's box, their text and
    the box around them (what a second reading crops)."""
    x0, y0, x1, y1 = found.bbox_page_px
    out = []
    for ln in page.lines:
        words = [(w.text, w.bbox_page_px) for w in ln.words] or [(ln.text, ln.bbox_page_px)]
        inside = [(t, b) for t, b in words if x0 <= (b[0] + b[2]) / 2 <= x1 and y0 <= (b[1] + b[3]) / 2 <= y1]
        if inside:
            boxes = [b for _, b in inside]
            out.append((" ".join(t for t, _ in inside), (min(b[0] for b in boxes), min(b[1] for b in boxes),
                                                         max(b[2] for b in boxes), max(b[3] for b in boxes))))
    return out


def _letters_evidence(found: Found, pages: Sequence[PageText], read_again: ReadAgain | None, *,
                      printed_twice: bool = True) -> Found:
    """Whether the value's characters are confirmed by a second route (see the module docstring): `letters`
    evidence, a doubt when a second recognition reads them otherwise, else `read_once`. `printed_twice`: look for
    the value's raw text on another line first (names; a date is checked on its crop only)."""
    page = next((p for p in pages if p.index == found.page), None)
    if page is None:
        return _ev(found, "read_once", "its letters were read once (its page is not at hand)")
    if page.text_layer:
        return _ev(found, "letters", "read from the PDF's text layer (the printed characters, no recognition)")
    text = found.raw if printed_twice else ""
    box = found.bbox_page_px
    for r, row in enumerate(page.rows):
        for i in row:
            ln = page.lines[i]
            b = ln.bbox_page_px
            apart = b[1] >= box[3] or b[3] <= box[1] or b[0] >= box[2] or b[2] <= box[0]
            if apart and len(COMPARE_SPACES.sub("", text)) >= MIN_REPEAT_CHARS and \
                    COMPARE_SPACES.sub("", text).upper() in COMPARE_SPACES.sub("", ln.text).upper():
                return _ev(found, "letters", f"printed twice: row {r + 1} reads the same ({ln.text!r})")
    segments = _value_segments(found, page) if read_again is not None else []
    agreed = 0
    for seg, seg_box in segments:
        again = read_again(found.page, seg_box)  # type: ignore[misc]
        if again is None:
            break
        if not _same_letters(seg, again):
            return _ev(found, "doubt", f"a second recognition of its crop reads {again!r}, not {seg!r}")
        agreed += 1
    if segments and agreed == len(segments):
        return _ev(found, "letters", "a second recognition of its crop at another scale reads the same")
    return _ev(found, "read_once", "its letters were read once (no second reading: no page image at hand)")


def _company_evidence(found: Found, pages: Sequence[PageText], read_again: ReadAgain | None = None) -> Found:
    """Which line is the company's (its legal form, its registration number below it), then whether its letters
    were read right (no reading doubt, and confirmed by a second route: `_letters_evidence`)."""
    found = _reading_doubt(found, pages)
    text = str(found.value)
    role = None
    if LEGAL_FORM.search(text):
        role = Evidence("legal_form", f"ends in its legal form ({LEGAL_FORM.search(text).group(1)})")  # type: ignore[union-attr]
    page = next((p for p in pages if p.index == found.page), None)
    if role is None and page is not None:
        below = [ln for ln in page.lines if found.bbox_page_px[3] - 2 <= ln.bbox_page_px[1]
                 <= found.bbox_page_px[3] + 1.5 * (ln.bbox_page_px[3] - ln.bbox_page_px[1])]
        if any(REGISTRATION_LINE.search(ln.text) for ln in below):
            role = Evidence("registration", "printed right above its registration number")
    if role is None:
        return _ev(found, "position", "the top name of the page, no legal form or registration beside it")
    found = found.with_evidence(role)
    if any(e.kind == "doubt" for e in found.evidence):
        return found  # already doubted: no second reading spent on it
    return _letters_evidence(found, pages, read_again)


def _address_evidence(found: Found) -> Found:
    """An address is read by position (the block under the name): inferred; its note says what it holds."""
    text = str(found.printed or found.value)
    has_post, has_street = bool(POSTCODE.search(text)), bool(STREET.search(text))
    holds = " and ".join(w for w, ok in (("a street", has_street), ("a postcode", has_post)) if ok)
    return _ev(found, "position", "the block under the name" + (f", holding {holds}" if holds else ""))


def status_of(found: Found) -> RuleStatus:
    """verified: some evidence confirms it and none doubts it; found: read under a label; else inferred."""
    if found.confirmed:
        return "verified"
    if any(e.kind == "doubt" for e in found.evidence) or found.status == "inferred":
        return "inferred"
    if any(e.kind == "label" for e in found.evidence) or LABELLED.search(found.note or ""):
        return "found"
    return "inferred"


def judged(found: Found) -> Found:
    """The value with its status set from its evidence, and the evidence written into its note."""
    status = status_of(found)
    ev = "; ".join(str(e) for e in found.evidence)
    if status != "verified":
        ev = (ev + "; " if ev else "") + "nothing on the page confirms it independently"
    note = f"{found.note}; evidence: {ev}" if found.note else f"evidence: {ev}"
    return replace(found, status=status, note=note)


def _date_reread(found: Found, pages: Sequence[PageText], read_again: ReadAgain | None) -> Found:
    """A date confirmed only by being plausible (a misread digit still parses): a second recognition of its crop
    that reads other characters is a doubt; letters confirmed by a second route are noted. Not needed, and not
    spent, on a date that is not verified anyway."""
    page = next((p for p in pages if p.index == found.page), None)
    if read_again is None or page is None or page.text_layer or not found.confirmed:
        return found
    checked = _letters_evidence(found, pages, read_again, printed_twice=False)
    return found if checked.evidence[-1].kind == "read_once" else checked


def judge_fields(values: dict[str, Found], items: list[FoundItem], pages: Sequence[PageText], *,
                 today: date | None = None, read_again: ReadAgain | None = None
                 ) -> tuple[dict[str, Found], list[FoundItem]]:
    """Family evidence for every value, then every value's status and note (see the module docstring).

    `read_again` recognizes a value's crop a second time (extract/reread.py); without it an OCR'd company name
    is never `verified` (its letters are read once)."""
    today = today or date.today()
    distinct_dates = len({d.raw for p in pages for ln in p.lines for d in find_dates(ln.text)})
    out: dict[str, Found] = {}
    for key, f in values.items():
        if key in ("date", "due_date"):
            f = _date_reread(_date_evidence(f, today, distinct_dates), pages, read_again)
        elif key == "vendor_name":
            f = _company_evidence(f, pages, read_again)
        elif key == "vendor_address":
            f = _address_evidence(f)
        elif key == "currency":
            f = _ev(f, "label", "a currency mark or code printed on the page")
        elif key in ("time", "payment_method"):
            f = _ev(f, "position", f"a {key.replace('_', ' ')} keyword or pattern on the page")
        out[key] = judged(f)
    return out, [FoundItem(*(None if p is None else judged(p if p.evidence else _ev(p, "position", "a row of the items table")) for p in
                              (it.description, it.quantity, it.unit_price, it.amount))) for it in items]
