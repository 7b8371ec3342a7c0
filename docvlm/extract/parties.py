"""Parties and identifiers: the merchant (top of the page, the registered name under a brand line; its address
is `address.py`), the buyer (after a bill-to label), invoice number and tax id (a code next to
its label), the payment method (a keyword).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace

from docvlm.extract.address import (
    ADDRESS_START,
    ADDRESS_STOP,
    ADDRESS_WORDS,
    BUILDING,
    LEADING_REGISTRATION,
    REGISTRATION,
)
from docvlm.extract.amounts import is_amount
from docvlm.extract.candidates import Found, PageText
from docvlm.extract.normalize import find_dates
from docvlm.extract.page import (
    after_separator,
    find_labels,
    found_at,
    label_note,
    row_box,
    row_height,
    row_text,
    value_candidates,
)
from docvlm.extract.page import rows_found as _block

COMPANY_SUFFIXES = re.compile(
    r"\b(sdn\.?\s*bhd\.?|bhd\.?|s/b|enterprise|trading|restaurant|restoran|store|stores|mart|hardware|"
    r"b\.v\.?|n\.v\.?|gmbh|ag|sarl|sas|s\.a\.?|ltd\.?|limited|inc\.?|llc|plc|co\.|company|corporation|"
    r"pte\.?\s*ltd\.?|stationery|bakery|cafe|kitchen|shop|supermarket|pharmacy|electrical|machinery)\b",
    re.IGNORECASE,
)
"""Words that end a company name (its legal form or trade)."""


def find_company(page: PageText) -> tuple[Found | None, int]:
    """The merchant: the first name-like row(s) at the top of the first page; returns the last row used."""
    limit = min(len(page.rows), 10)
    start = None
    for r in range(limit):
        text = row_text(page, r)
        letters = sum(ch.isalpha() for ch in text)
        if letters < 3 or text == text.lower() and not COMPANY_SUFFIXES.search(text):
            continue  # handwriting / stamps OCR'd in lower case, numbers, noise
        if re.search(r"\b(tax\s*invoice|receipt|invoice|facture|factuur|rechnung|welcome|selamat|credit\s*note|cash\s*bill|"
                     r"thank\s*you|please|goods\s*sold|returnable|terima\s*kasih|dank\s*u|merci|danke)\b", text, re.I):
            continue
        if ADDRESS_STOP.search(text) or REGISTRATION.search(text) or find_dates(text) or re.search(r"\.com\b", text, re.I):
            continue
        if ADDRESS_WORDS.search(text) and re.search(r"\d", text) and not COMPANY_SUFFIXES.search(text):
            return None, r - 1  # the address comes first: the name was not read (a logo); the address is here
        start = r
        break
    if start is None:
        return None, -2
    parts = [start]
    r = start + 1
    while r < limit and len(parts) < 4:
        so_far = " ".join(row_text(page, k) for k in parts)
        text = row_text(page, r)
        if _ends_with_suffix(so_far) and not _continues(so_far, "") and not COMPANY_SUFFIXES.match(text.strip()):
            break  # a name that ends with its legal form or trade is complete (unless the next row goes on with one)
        if any(ch.isdigit() for ch in text) or ADDRESS_WORDS.search(text) or REGISTRATION.search(text) \
                or ADDRESS_STOP.search(text) or OWNER_LABEL.match(text):
            break
        if row_box(page, r)[1] - row_box(page, parts[-1])[3] > 1.0 * row_height(page, r):
            break
        parts.append(r)
        r += 1
    if len(parts) >= 2 and BUILDING.search(row_text(page, parts[0])) \
            and not COMPANY_SUFFIXES.search(row_text(page, parts[0])):
        parts = parts[1:]  # a mall or building printed above the shop's own name: the shop is the merchant
    if not _ends_with_suffix(" ".join(row_text(page, k) for k in parts)):
        # a name without its legal form, followed closely by one that has it: the second is the company
        # (the first is a brand or slogan printed above it)
        nxt = parts[-1] + 1
        if nxt < limit and len(parts) == 1 and _ends_with_suffix(row_text(page, nxt)) \
                and not ADDRESS_WORDS.search(row_text(page, nxt)):
            parts = [nxt]
    if len(parts) >= 2 and LEGAL_FORMS.search(" ".join(row_text(page, k) for k in parts)):
        # a brand or slogan above a legal name: the company is the shortest tail of rows that is a full legal name
        for k in range(len(parts) - 1, 0, -1):
            tail = parts[k:]
            if _is_full_legal_name(" ".join(row_text(page, t) for t in tail)) \
                    and not _continues(row_text(page, parts[k - 1]), "") \
                    and not re.match(r"\s*(&|and\b)", row_text(page, tail[0]), re.I) \
                    and not COMPANY_SUFFIXES.match(row_text(page, tail[0]).strip()):  # 'ENTERPRISE (..) SDN BHD'
                found = _block(page, tail, "top of the first page (legal name under a brand line)")
                return _cut_after_suffix(found), parts[-1]
    if not LEGAL_FORMS.search(" ".join(row_text(page, k) for k in parts)):
        legal = _legal_name_below(page, parts[-1] + 1) or _registered_name_below(page, parts[-1] + 1)
        if legal is not None:
            return legal
    return _cut_after_suffix(_block(page, parts, f"top of the first page, rows {parts[0] + 1}-{parts[-1] + 1}")), \
        parts[-1]


def _legal_name_below(page: PageText, first: int) -> tuple[Found, int] | None:
    """A brand, outlet or slogan name on top, the registered name (ending in its legal form) a few rows below,
    before the address: the registered name is the company. Returns it and its row."""
    for r in range(first, min(len(page.rows), first + 5)):
        text = LEADING_REGISTRATION.sub("", row_text(page, r))
        if ADDRESS_START.match(text) or ADDRESS_STOP.search(text) or find_dates(text):
            return None
        cut = re.split(r"\(\s*(?:co\.?\s*)?(?:reg\w*\.?\s*)?(?:no\.?\s*)?[:.]?\s*[A-Z]{0,3}\d{4,}", text, maxsplit=1,
                       flags=re.IGNORECASE)[0].strip()
        if LEGAL_FORMS.search(cut) and _is_full_legal_name(cut) and not _continues(row_text(page, r - 1), ""):
            found = _block(page, [r], f"row {r + 1}: the registered name (legal form) under a brand line")
            return _cut_after_suffix(found), r
    return None


def _is_registration_row(text: str) -> bool:
    """A row that is only a registration number, bracketed or labelled ('(81109-A)', 'Co. Reg: 933109-X')."""
    return bool(re.fullmatch(r"\(\s*[A-Z]{0,3}[.:]?\s*\d{4,}\s?-?\s?[A-Z]?\s*\)?\W*", text.strip(), re.I)
                or re.match(r"^\W*(co\.?\s*-?\s*re?[gf]|company\s*(?:reg|no)|reg\.?\s*no|roc\b|br\s*no)", text, re.I))


def _registered_name_below(page: PageText, first: int) -> tuple[Found, int] | None:
    """The top row was not followed by its registration number, but a name row a little lower is: the name
    printed right above the registration number is the registered one (the rows above it are a logo or
    slogan the OCR read as noise). Returns it and its row."""
    if first < len(page.rows) and _is_registration_row(row_text(page, first)):
        return None  # the top name is itself the registered one
    for r in range(first, min(len(page.rows) - 1, first + 4)):
        text = row_text(page, r)
        if ADDRESS_START.match(text) or ADDRESS_STOP.search(text) or find_dates(text):
            return None
        words = re.findall(r"[A-Za-z]{2,}", text)
        if len(words) >= 2 and not any(ch.isdigit() for ch in text) and _is_registration_row(row_text(page, r + 1)):
            found = _block(page, [r], f"row {r + 1}: the name printed above its registration number")
            return found, r
    return None


LEGAL_FORMS = re.compile(
    r"\b(sdn\.?\s*bhd\.?|bhd\.?|s/b|gmbh|ag|ltd\.?|limited|inc\.?|llc|plc|b\.v\.?|n\.v\.?|sarl|sas|"
    r"s\.a\.?|pte\.?\s*ltd\.?|corporation)\W*$", re.IGNORECASE)


def _is_full_legal_name(text: str) -> bool:
    """A row that is a whole company name by itself: two or more name words, then a legal form."""
    m = LEGAL_FORMS.search(text)
    if not m:
        return False
    words = [w for w in re.findall(r"[A-Za-z][\w'&.-]*", text[: m.start()])
             if len(w.strip(".")) >= 2 and not COMPANY_SUFFIXES.search(w)]
    return len(words) >= 2


def _cut_after_suffix(found: Found) -> Found:
    """Drop a registration number (and what follows it) printed after the legal form or trade word:
    'AEON CO. (M) BHD (126926-H)' -> 'AEON CO. (M) BHD'."""
    for m in COMPANY_SUFFIXES.finditer(found.raw):
        end = m.end() + (1 if found.raw[m.end():m.end() + 1] == "." else 0)
        if re.match(r"[\s'\"`,.]*[(\[]?\s*[A-Z]{0,3}\s*\d{4,}", found.raw[end:], re.IGNORECASE):
            text = found.raw[:end].rstrip(" ,-")
            return Found(text, text, found.page, found.bbox_page_px, found.note)
    return found


def _ends_with_suffix(text: str) -> bool:
    return any(m.end() >= len(text.rstrip(" .,)")) - 1 for m in COMPANY_SUFFIXES.finditer(text))


def _continues(prev: str, cur: str) -> bool:
    """A row that leads into the next: it ends in '&', 'and' or '-', or leaves a bracket open ('(SETIA')."""
    return bool(re.search(r"(&|\band\b|-)\s*$", prev.strip(), re.I)) or prev.count("(") > prev.count(")")


def find_identifier(pages: Sequence[PageText], label_field: str) -> Found | None:
    """A code next to a label (invoice number, tax id): the first token with a digit after the label."""
    best = None
    for page in pages:
        for i, start, end, rank in find_labels(page, label_field):
            for j, at in value_candidates(page, i, end):
                at = after_separator(page.lines[j].text, at) if j == i else at
                m = re.search(r"(?<![\w/])[A-Z0-9][A-Z0-9/\-_.]*\d[A-Z0-9/\-_.]*", page.lines[j].text[at:], re.IGNORECASE)
                if m and not find_dates(m.group(0)) and len(m.group(0)) >= 3 and not is_amount(m.group(0)):
                    s, e = at + m.start(), at + m.end()
                    raw = page.lines[j].text[s:e].rstrip(".")
                    cand = found_at(page, j, s, s + len(raw), raw, note=label_note(page, i, j, page.lines[i].text[start:end]),
                                  score=10 - rank)
                    if best is None or cand.score > best.score:
                        best = cand
                    break
    return best


def find_buyer(pages: Sequence[PageText]) -> Found | None:
    """The customer: the text after a 'bill to' label on its line, else the line right under the label."""
    for page in pages:
        for i, _start, end, _rank in find_labels(page, "buyer_name"):
            line = page.lines[i]
            if end < len(line.text) * 0.2 + 12 and line.text[:_start].strip():
                continue  # a label word in the middle of a sentence
            at = after_separator(line.text, end)
            if sum(ch.isalpha() for ch in line.text[at:]) >= 3:
                return found_at(page, i, at, len(line.text), line.text[at:].strip(), note="text after the label")
            below = [j for j in range(i + 1, len(page.lines))
                     if page.lines[j].bbox_page_px[1] >= line.bbox_page_px[3] - 2
                     and page.lines[j].bbox_page_px[0] < line.bbox_page_px[2]
                     and page.lines[j].bbox_page_px[2] > line.bbox_page_px[0]]
            if below:
                j = min(below, key=lambda k: page.lines[k].bbox_page_px[1])
                text = page.lines[j].text
                if page.lines[j].bbox_page_px[1] - line.bbox_page_px[3] < 2 * (line.bbox_page_px[3] - line.bbox_page_px[1]):
                    return found_at(page, j, 0, len(text), text.strip(), note="line under the label")
    return None


def find_payment_method(pages: Sequence[PageText]) -> Found | None:
    for page in pages:
        for i, start, end, _rank in find_labels(page, "payment_method"):
            raw = page.lines[i].text[start:end]
            return found_at(page, i, start, end, raw.upper() if len(raw) <= 4 else raw.title(), note="payment keyword")
    return None



NAME_SPACING = (
    (re.compile(r"\b(sdn\.?)(?=bhd\b)", re.IGNORECASE), r"\1 "),
    (re.compile(r"(?<=[A-Za-z])-(?=\s)|(?<=[A-Za-z])-(?=(?:sdn|bhd|s/b)\b)", re.IGNORECASE), " "),
    (re.compile(r"(?<=[A-Za-z])_(?=[A-Za-z])"), " "),
)
"""Spaces a name prints and the recogniser dropped or filled with a speck: inside the legal form ('SDN.BHD'),
and a hyphen or underscore read in the gap before a word ('BOOK- CO.', 'INTERNATIONAL-SDN', 'AIK_HUAT').
Hyphens inside a word ('KL-1') stay. Brackets glued to a word stay glued: OCR reads those gaps right, and
names print them both ways."""


def tidy_company_name(found: Found | None) -> Found | None:
    """The company name with the spaces of `NAME_SPACING` restored; `raw` keeps what was read and the note
    says what changed."""
    if found is None or not isinstance(found.value, str):
        return found
    text = found.value
    for pattern, repl in NAME_SPACING:
        text = pattern.sub(repl, text)
    text = " ".join(text.split())
    if text == found.value:
        return found
    return replace(found, value=text, printed=text, note=f"{found.note}; spaced {found.value!r} as {text!r}")


OWNER_LABEL = re.compile(r"^\W*(?:dimiliki(?:\s*oleh)?|milik|owned\s*by|operated\s*by|managed\s*by)\s*[:.-]?\s*",
                         re.IGNORECASE)
"""A label that names the registered owner of a brand printed above it ('Owned by: ...', 'Dimiliki oleh: ...')."""


OWNER_ROWS_BELOW = 3
"""How many rows under the brand name an owner label is looked for."""


def owner_name_below(page: PageText, last: int) -> tuple[Found, int] | None:
    """The legal name after an owner label (`OWNER_LABEL`) a few rows under the brand: the registered company,
    and its row. Only a name with its legal form; a registration number after it is cut off."""
    for r in range(last + 1, min(len(page.rows), last + 1 + OWNER_ROWS_BELOW)):
        text = row_text(page, r)
        m = OWNER_LABEL.match(text)
        if not m:
            continue
        rest = text[m.end():]
        if not LEGAL_FORMS.search(re.split(r"\s\(?[A-Z]{0,3}\d{4,}", rest, maxsplit=1)[0].strip()):
            return None
        found = _cut_after_suffix(_block(page, [r], f"row {r + 1}: the name after the owner label {m.group(0).strip()!r}"))
        name = OWNER_LABEL.sub("", found.raw).strip()
        return Found(name, name, found.page, found.bbox_page_px, found.note), r
    return None
