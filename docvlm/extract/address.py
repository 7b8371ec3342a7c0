"""The merchant's address: the rows under the merchant name, from the street row to the postcode and the state,
ended by the first phone / tax / header row; house numbers and postcodes glued to the next word split, a 0 read
as the letter O inside a house number repaired.
"""

from __future__ import annotations

import re
from difflib import SequenceMatcher

from docvlm.extract.candidates import Found, PageText
from docvlm.extract.normalize import (
    find_dates,
    parse_time,
)
from docvlm.extract.page import (
    row_box,
    row_height,
    row_text,
    rows_found,
)

REGISTRATION = re.compile(
    r"(co\.?\s*-?\s*re?[gf]|\bco\.?\s*no\b|\broc\b|company\s*(?:reg|no)|\bbr\s*no|reg\.?\s*no|\bgst\b|\bsst\b|tax\s*id|"
    r"^\(?[a-z]{0,3}\s*\d{4,}[\s\-]*[a-z]?\s*\)?\.?$)",
    re.IGNORECASE,
)
"""A company registration line printed under the name (e.g. '(CO.REG : 933109-X)', '(JM0517726)')."""


ADDRESS_STOP = re.compile(
    r"\b(tel|telephone|phone|fax|h/p|hp|email|e-mail|www|http|care\s*line|hot\s*line|gst|sst|vat|btw|tva|ust|kvk|iban|siret|invoice|"
    r"receipt|cash\s*bill|tax\b|taxinvoice|inv[o0][il1]ce|guest\s*check|shopping\s*hours|opening\s*hours|"
    r"date|cashier|document|doc\s*no|bill\s*no|order|table)|@|(?:\d{2,4}-\d{3,4}\s?\d{3,4})",
    re.IGNORECASE,
)
"""A line that ends the address block (phone, e-mail, tax number, the receipt's own header)."""


ADDRESS_WORDS = re.compile(
    r"\b(no\.?|lot|jalan|jln|jl|taman|road|rd|street|st\.|avenue|ave|lorong|persiaran|bandar|kampung|"
    r"selangor|johor|kuala|lumpur|straat|weg|laan|rue|avenue|strasse|straße|platz)\b|\b\d{4,5}\b|"
    r"^\s*\d{1,4}[A-Za-z]?\s*,",
    re.IGNORECASE,
)


def find_address(page: PageText, after: int) -> Found | None:
    """The rows under the merchant name up to the first phone / tax / header row.

    Registration numbers and a date printed before the address are skipped; after them they end it. The row
    with the postcode may be followed by one short row (a state, a mall), then the address is over.
    """
    parts: list[int] = []
    postcode_seen = False
    for r in range(after + 1, min(len(page.rows), after + 9)):
        text = row_text(page, r)
        registration = REGISTRATION.search(text) and (
            not parts and not ADDRESS_WORDS.search(text.split()[0] if text else "")
            or not ADDRESS_WORDS.search(REGISTRATION.sub("", text)) or re.search(r"\b(roc|reg)\b", text, re.I))
        dated = bool(find_dates(text)) or parse_time(text) is not None
        if registration or dated:
            if parts:
                break
            continue
        text = LEADING_REGISTRATION.sub("", text)
        if ADDRESS_STOP.search(text):
            break
        if parts and row_box(page, r)[1] - row_box(page, parts[-1])[3] > 2.0 * row_height(page, r):
            break
        if postcode_seen and _town_then_state(page, r):
            parts += [r, r + 1]  # the town on its own row, then the state: both belong to the address
            break
        state_row = bool(REGION.search(text)) and not any(ch.isdigit() for ch in text)
        if postcode_seen and (len(text.split()) > STATE_ROW_WORDS and not state_row or not (
                row_text(page, parts[-1]).rstrip().endswith(",") or REGION.search(text) or BUILDING.search(text))):
            break  # after the postcode row only a state or country (or a row the postcode row leads into)
        parts.append(r)
        if postcode_seen:
            break
        postcode_seen = bool(POSTCODE.search(text))
    if not parts or not ADDRESS_WORDS.search(" ".join(row_text(page, k) for k in parts)):
        return None
    # a brand, branch or licensee row printed above the street: the address starts at the row that starts
    # like one ('NO 2A', 'LOT 6,', 'LEVEL 6,', '176 JLN ...'), when the rows before it hold no postcode
    starts = [k for k, r in enumerate(parts) if ADDRESS_START.match(row_text(page, r))]
    skipped = ""
    if starts and starts[0] > 0 and not any(POSTCODE.search(row_text(page, r)) for r in parts[:starts[0]]):
        skipped = "; skipped " + " / ".join(repr(row_text(page, r)) for r in parts[:starts[0]])
        parts = parts[starts[0]:]
    found = rows_found(page, parts, f"rows {parts[0] + 1}-{parts[-1] + 1} under the merchant{skipped}")
    read = LEADING_REGISTRATION.sub("", found.raw)
    text = repair_address_text(read)
    if text == read:
        return Found(text, text, found.page, found.bbox_page_px, found.note)
    ops = SequenceMatcher(None, read, text, autojunk=False).get_opcodes()
    changed = [f"'{read[max(i0 - 2, 0):i1 + 2]}' as '{text[max(j0 - 2, 0):j1 + 2]}'" for op, i0, i1, j0, j1 in ops
               if op != "equal"]
    note = f"{found.note}; read " + ", ".join(changed[:3])
    return Found(text, read, found.page, found.bbox_page_px, note, printed=text)


STATE_ROW_WORDS = 4
"""A row under the postcode row longer than this many words ends the address, unless it ends with a state or
country and holds no digit ('KLANG SELANGOR D. E, MALAYSIA')."""


def _town_then_state(page: PageText, r: int) -> bool:
    """Row r is a short name without digits (a town) right above a state or country row (under the postcode)."""
    if r + 1 >= len(page.rows):
        return False
    town, state = row_text(page, r), row_text(page, r + 1)
    return (len(town.split()) <= 3 and not any(ch.isdigit() for ch in town) and not REGION.search(town)
            and not ADDRESS_STOP.search(town) and bool(REGION.search(state)) and not ADDRESS_STOP.search(state)
            and row_box(page, r + 1)[1] - row_box(page, r)[3] <= 1.0 * row_height(page, r + 1))


GLUED_POSTCODE = re.compile(r"(?<![\w-])(\d{5})(?=[A-Za-z]{2,}\b)")


GLUED_HOUSE_NUMBER = re.compile(r"(?<![\w./])(\d{1,4}[A-Za-z]?)(?=(?:jalan|jln|lorong|taman|tmn)\b)", re.IGNORECASE)


def split_glued_address_numbers(text: str) -> str:
    """A space the recogniser dropped inside one word box between a number and the word it precedes: a
    postcode and its town ('53300KL'), a house number and its street ('14JALAN'). Word boxes cannot show this
    gap (the box spans both); no address prints them glued. Nothing else is touched."""
    return GLUED_HOUSE_NUMBER.sub(r"\1 ", GLUED_POSTCODE.sub(r"\1 ", text))


ADDRESS_NUMBER_WITH_O = re.compile(r"(?<![\w./-])(?=[\dOo]*\d[\dOo]*\d)(?=\d*[Oo])([\dOo]{3,})(?=[,.]?(?:\s|$))")


def repair_address_numbers(text: str) -> str:
    """A house or lot number whose 0 the recogniser read as the letter O ('NO 29O,' -> 'NO 290,'): only tokens
    of at least two real digits and O's, nothing else (so 'NO', 'LOT' and '47G' stay)."""
    return ADDRESS_NUMBER_WITH_O.sub(lambda m: m.group(1).replace("O", "0").replace("o", "0"), text)

GLUED_STREET_WORD = re.compile(
    r"\b(jalan|jln|taman|tmn|lorong|persiaran|kuala)(?=(?!an\b)[a-z0-9]{2,})", re.IGNORECASE)
"""A street or place word the recogniser glued to the name after it ('JALANAIR', 'JLNJEJAKA', 'KUALALUMPUR'):
none of these words begins a longer word printed in an address ('jalanan' aside, kept)."""


def split_glued_street_words(text: str) -> str:
    """A space after a street or place word glued to the next word (`GLUED_STREET_WORD`)."""
    return GLUED_STREET_WORD.sub(r"\1 ", text)


MISREAD_STREET_WORDS = (
    (re.compile(r"(?:(?<=^)|(?<=[\s,]))[1lI|][0oO]T(?=\s+[A-Z]?-?\d)"), "LOT"),
    (re.compile(r"(?:(?<=^)|(?<=[\s,]))L0T(?=\s+[A-Z]?-?\d)"), "LOT"),
    (re.compile(r"(?:(?<=^)|(?<=[\s,]))J[A4][I1l|][A4]N(?=[\s,])"), "JALAN"),
)
"""Upper-case street words with one letter read as a look-alike digit or stroke ('10T 1851', '1OT 5', 'JAIAN'):
only before a lot number ('LOT') or as a whole word ('JALAN'), so no other word can match."""


ABBREVIATIONS = frozenset({"no", "jln", "tmn", "kg", "bdr", "blk", "lvl", "flr", "sg", "bt", "jl", "st", "rd",
                           "ave", "dr", "mt", "pt", "sek", "sdn", "bhd", "kpg", "lrg", "psn", "jkt", "ft"})
"""Address words printed with a period of their own (abbreviations): their period stays a period."""


SEPARATOR_PERIOD = re.compile(r"(?<![^\s,])([^\s,.]*[A-Za-z0-9])\.(?= [A-Za-z0-9])")
"""A period closing an address part that another part follows ('SEKSYEN 9. TAMAN ...')."""


SEPARATOR_MIN_CHARS = 3
"""A part shorter than this before its period is an initial or an abbreviation ('P.', 'NO.'), not a part."""


def comma_separators(text: str) -> str:
    """Address parts are separated by commas: a period between two parts ('BATU 5. 51200') is a comma the
    print made small (dot-matrix and thermal commas read as periods). Initials, abbreviations (`ABBREVIATIONS`)
    and the final period stay as read."""
    def repl(m: re.Match[str]) -> str:
        word = m.group(1)
        if len(word) < SEPARATOR_MIN_CHARS or word.lower() in ABBREVIATIONS or "." in word:
            return m.group(0)
        return word + ","
    return SEPARATOR_PERIOD.sub(repl, text)


def repair_address_text(read: str) -> str:
    """The address as printed from the rows as read: glued numbers and street words split, look-alike
    letters in house numbers and street words repaired, a period between parts read as the comma it is."""
    text = split_glued_street_words(repair_address_numbers(split_glued_address_numbers(read)))
    for pattern, word in MISREAD_STREET_WORDS:
        text = pattern.sub(word, text)
    return comma_separators(text)


ADDRESS_START = re.compile(
    r"^\W{0,2}(?:no\b|no\.|no:|lot\b|lot\s*\d|level\b|lvl\b|unit\b|block\b|blk\b|suite\b|lorong\b|jalan\b|jln\b|"
    r"g-?\d|(?:\d{1,2}(?:st|nd|rd|th)?\s*)?(?:flr|floor)\b|ground\s*floor|"
    r"[a-z]?\d{1,4}[a-z]?(?:[-/&]\s?\d*[a-z]?)*\s*(?:,|&|\s+(?:jalan|jln|jl|lorong|taman|lot|road|rd|street|st)\b))",
    re.IGNORECASE)
"""A row that starts a street address: a house or lot number, a unit or level, or the street itself."""


POSTCODE = re.compile(r"(?<![\d-])\d{5}(?![\d-])|\b\d{4}\s?[A-Z]{2}\b|\b[A-Z]{1,2}\d[A-Z\d]?\s\d[A-Z]{2}\b")
"""A postcode: 5 digits (MY, DE, FR, US), '1016 DV' (NL), 'SW1A 1AA' (UK)."""


LEADING_REGISTRATION = re.compile(r"^\(?\s*(?:[A-Z]{0,3}[.:]?\s*)?\d{4,}-?\s?[A-Z]?\s*\)\s*", re.IGNORECASE)


REGION = re.compile(
    r"\b(selangor|johor|kedah|perak|pahang|melaka|malacca|sabah|sarawak|penang|pulau\s*pinang|negeri\s*sembilan|"
    r"terengganu|kelantan|perlis|putrajaya|labuan|kuala\s*lumpur|malaysia|singapore|darul\s*\w+|d\.\s?e\.?|wilayah\b.*|"
    r"germany|deutschland|nederland|netherlands|france|belgi[eëu]m?|united\s*kingdom|uk|usa|india|poland|polska|d\.?\s?e)\W*$"
    r"|^\(.*\)$|^\d{3,4}\s?-?\s?[a-z]",
    re.IGNORECASE)
"""A state or country printed on its own row under the postcode."""


BUILDING = re.compile(r"\b(mall|plaza|complex|centre|center|tower|square|arcade|galleria)\W*$", re.IGNORECASE)
"""A mall or building printed on its own row under the postcode (the shop's location in it)."""
