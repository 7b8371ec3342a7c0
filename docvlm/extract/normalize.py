"""Normalizers: dates, times, amounts and currencies as printed -> typed values.

Everything here is pure text in, typed value out; no layout. The layout rules live in `docvlm.extract.rules`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, time
from decimal import Decimal, InvalidOperation

MONTHS = {
    # EN
    "jan": 1, "january": 1, "feb": 2, "february": 2, "mar": 3, "march": 3, "apr": 4, "april": 4, "may": 5,
    "jun": 6, "june": 6, "jul": 7, "july": 7, "aug": 8, "august": 8, "sep": 9, "sept": 9, "september": 9,
    "oct": 10, "october": 10, "nov": 11, "november": 11, "dec": 12, "december": 12,
    # NL
    "januari": 1, "februari": 2, "maart": 3, "mrt": 3, "mei": 5, "juni": 6, "juli": 7, "augustus": 8,
    "okt": 10, "oktober": 10,
    # FR
    "janv": 1, "janvier": 1, "fév": 2, "fev": 2, "février": 2, "fevrier": 2, "mars": 3, "avr": 4, "avril": 4,
    "mai": 5, "juin": 6, "juil": 7, "juillet": 7, "août": 8, "aout": 8, "septembre": 9, "octobre": 10,
    "novembre": 11, "déc": 12, "décembre": 12, "decembre": 12,
    # DE
    "januar": 1, "februar": 2, "märz": 3, "maerz": 3, "dez": 12, "dezember": 12,
    # MS
    "jan.": 1, "februari.": 2, "mac": 3, "ogos": 8, "julai": 7, "disember": 12, "dis": 12,
}
"""Month names and abbreviations (EN, NL, FR, DE, MS), lower case."""

CURRENCY_SYMBOLS = {
    "€": "EUR", "$": "USD", "US$": "USD", "£": "GBP", "₹": "INR", "RS.": "INR", "RS": "INR", "¥": "JPY",
    "RM": "MYR", "ZŁ": "PLN", "ZL": "PLN", "S$": "SGD", "CHF": "CHF", "FR.": "CHF", "KR": "SEK",
}
"""Currency marks as printed (upper case) -> ISO 4217. `$` alone is taken as USD unless the page says otherwise."""

ISO_CODES = frozenset(
    "EUR USD GBP INR MYR PLN SGD CHF JPY CNY AUD CAD NZD SEK NOK DKK CZK HUF IDR THB PHP HKD ZAR BRL MXR "
    "RUB TRY AED SAR KRW TWD VND".split()
)

_MONTH_RE = "|".join(sorted((re.escape(m) for m in MONTHS), key=len, reverse=True))
DATE_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("ymd", re.compile(r"(?<!\d)(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})(?!\d)")),
    ("dmy_num", re.compile(r"(?<![\d.,/-])(\d{1,2})([-/.])(\d{1,2})\2(\d{4}(?=\d{1,2}:\d\d)|\d{4}(?![\d]|[.,]\d)|\d{2}(?![\d]|[.,]\d))")),
    ("d_mon_y", re.compile(rf"(?<![\w])(\d{{1,2}})(?:st|nd|rd|th|er)?[\s.\-/]*({_MONTH_RE})\.?[\s.,\-/]*(\d{{4}}|\d{{2}})(?!\d)",
                           re.IGNORECASE)),
    ("mon_d_y", re.compile(rf"(?<![\w])({_MONTH_RE})\.?\s+(\d{{1,2}})(?:st|nd|rd|th)?\s*,?\s+(\d{{4}})(?!\d)", re.IGNORECASE)),
)
"""Dates as printed: 2018-12-25, 25/12/2018, 25.12.18, 25 Dec 2018, 25-DEC-18, Dec 25, 2018."""

TIME_RE = re.compile(r"(?<!\d)([01]?\d|2[0-3])[:.]([0-5]\d)(?:[:.]([0-5]\d))?\s*([AaPp]\.?[Mm]\.?)?(?![\d])")
AMOUNT_RE = re.compile(
    r"(?P<sign0>-\s?)?(?P<cur>US\$|S\$|RM|€|\$|£|₹|Rs\.?|EUR|USD|GBP|INR|MYR|PLN|CHF|zł)?\s?"
    r"(?P<sign>-)?(?P<num>\d{1,3}(?:[,.' ]\d{3})+(?:[.,]\d{1,2})?|\d+(?:[.,]\d{1,2})?|(?<![\d.,])[.,]\d{2})"
    r"(?!\d)(?:\s?(?P<cur2>€|EUR|USD|GBP|INR|MYR|PLN|CHF|zł|RM|\$))?",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class DateMatch:
    """A date found in a text: the span as printed and the candidate readings (two when day/month is ambiguous)."""

    raw: str
    start: int
    end: int
    day_first: date | None  # the reading with the day first (or the only reading)
    month_first: date | None  # the reading with the month first, when valid and different


@dataclass(frozen=True)
class AmountMatch:
    """An amount in a text: `raw` as read, `value` the number, `repair` what was read as a digit (if anything)."""

    raw: str
    start: int
    end: int
    value: Decimal
    currency: str | None
    has_decimals: bool
    repair: str | None = None

    @property
    def printed(self) -> str:
        """The amount as it must have been printed: the raw text with the repaired digits put back."""
        return self.repaired_raw if self.repair else self.raw

    repaired_raw: str = ""


CONFUSABLE_DIGITS = {"O": "0", "o": "0", "D": "0", "Q": "0", "I": "1", "l": "1", "|": "1", "i": "1", "S": "5",
                     "s": "5", "B": "8", "Z": "2", "z": "2", "G": "6"}
"""Letters OCR reads in place of digits (O for 0, I/l for 1, S for 5, B for 8, ...)."""

_CONF = re.escape("".join(CONFUSABLE_DIGITS))
NUMERIC_TOKEN = re.compile(
    rf"(?:(?<=RM)|(?<=\$)|(?<=€)|(?<=£)|(?<![A-Za-z]))"
    rf"((?:[\d{_CONF}]{{1,3}}(?:[,.][\d{_CONF}]{{3}})+|[\d{_CONF}]+)[.,][\d{_CONF}]{{2}})(?![A-Za-z\d])"
)
"""A token shaped like an amount with cents, where some digits may be confusable letters."""


def repair_numeric_tokens(text: str) -> tuple[str, list[tuple[int, int, str]]]:
    """Read confusable letters as digits, only inside amount-shaped tokens that hold at least one real digit
    and parse afterwards. Returns the text with the same length (one character for one) and the repaired spans
    (start, end, what was read)."""
    out = list(text)
    spans = []
    for m in NUMERIC_TOKEN.finditer(text):
        tok = m.group(1)
        if not any(ch.isdigit() for ch in tok) or all(ch.isdigit() or ch in ".," for ch in tok):
            continue
        # a letter run longer than the digits around it is a word, not a misread number ("SOS.00" stays)
        if sum(ch.isalpha() or ch == "|" for ch in tok) > sum(ch.isdigit() for ch in tok):
            continue
        dollar = tok[0] in "Ss" and tok[1:2].isdigit()  # 'S8.20': a dollar sign read as S, not a 5
        fixed = ("$" if dollar else "") + "".join(CONFUSABLE_DIGITS.get(ch, ch) for ch in tok[1 if dollar else 0:])
        if number_from_text(fixed.lstrip("$")) is None:
            continue
        out[m.start(1):m.end(1)] = list(fixed)
        spans.append((m.start(1), m.end(1), tok))
    return "".join(out), spans


def _year(y: str) -> int:
    n = int(y)
    return n + 2000 if len(y) == 2 and n < 70 else n + 1900 if len(y) == 2 else n


def _safe_date(y: int, m: int, d: int) -> date | None:
    try:
        return date(y, m, d) if 1900 <= y <= 2100 else None
    except ValueError:
        return None


def find_dates(text: str) -> list[DateMatch]:
    """Every date in `text`, left to right, without overlaps."""
    found: list[DateMatch] = []
    taken: list[tuple[int, int]] = []
    for kind, pattern in DATE_PATTERNS:
        for m in pattern.finditer(text):
            if any(m.start() < e and s < m.end() for s, e in taken):
                continue
            a, b, c = m.group(1), m.group(2), m.group(3)
            if kind == "dmy_num":
                b, c = m.group(3), m.group(4)
            dfirst = mfirst = None
            if kind == "ymd":
                dfirst = _safe_date(int(a), int(b), int(c))
            elif kind == "dmy_num":
                y = _year(c)
                dfirst = _safe_date(y, int(b), int(a))
                mfirst = _safe_date(y, int(a), int(b))
                if mfirst == dfirst:
                    mfirst = None
            elif kind == "d_mon_y":
                dfirst = _safe_date(_year(c), MONTHS[b.lower().rstrip(".")] if b.lower().rstrip(".") in MONTHS
                                    else MONTHS[b.lower()], int(a))
            else:
                dfirst = _safe_date(_year(c), MONTHS[a.lower().rstrip(".")] if a.lower().rstrip(".") in MONTHS
                                    else MONTHS[a.lower()], int(b))
            if dfirst is None and mfirst is None:
                continue
            taken.append((m.start(), m.end()))
            found.append(DateMatch(m.group(0).strip(), m.start(), m.end(), dfirst, mfirst))
    return sorted(found, key=lambda d: d.start)


def resolve_date(match: DateMatch, *, day_first: bool = True) -> date | None:
    """Pick one reading of a (possibly ambiguous) date; `day_first` comes from the document's other dates."""
    if match.day_first is None:
        return match.month_first
    if match.month_first is None:
        return match.day_first
    return match.day_first if day_first else match.month_first


def decide_day_first(matches: list[DateMatch], *, locale_hint: str | None = None) -> bool:
    """Day-first unless an unambiguous date of the document reads only month-first, or the locale says US."""
    votes = 0
    for m in matches:
        if m.day_first is not None and m.month_first is None and re.search(r"\d+\D\d+\D\d+", m.raw) and not re.match(r"\d{4}", m.raw):
            votes += 1
        elif m.day_first is None and m.month_first is not None:
            votes -= 1
    if votes:
        return votes > 0
    return locale_hint not in ("US", "en_US")


def parse_date(text: str, *, day_first: bool = True) -> date | None:
    """The first date in `text`, or None."""
    matches = find_dates(text)
    return resolve_date(matches[0], day_first=day_first) if matches else None


def parse_time(text: str) -> tuple[time, str] | None:
    """The first time of day in `text` (12:30, 12.30.45, 1:05 PM) and its raw span."""
    m = TIME_RE.search(text)
    if not m:
        return None
    h, mi, s = int(m.group(1)), int(m.group(2)), int(m.group(3) or 0)
    ampm = (m.group(4) or "").lower().replace(".", "")
    if ampm == "pm" and h < 12:
        h += 12
    elif ampm == "am" and h == 12:
        h = 0
    return time(h, mi, s), m.group(0).strip()


def number_from_text(num: str, *, decimal_comma: bool | None = None) -> Decimal | None:
    """'1,234.56', '1.234,56', '1 234,56', "1'234.56", '12,5' -> Decimal. `decimal_comma` breaks ties."""
    s = num.strip().replace(" ", "").replace("'", "").replace("\u00a0", "")
    if s[:1] in ".,":
        s = "0" + s  # till receipts print small amounts without the leading zero (".02")
    if not s:
        return None
    last_dot, last_comma = s.rfind("."), s.rfind(",")
    if last_dot >= 0 and last_comma >= 0:
        dec = "." if last_dot > last_comma else ","
    elif last_comma >= 0:
        tail = len(s) - last_comma - 1
        groups = s.split(",")
        # "1,234" is a thousands separator unless the document uses decimal commas; "12,50" is a decimal comma
        if tail == 3 and all(len(g) == 3 for g in groups[1:]) and not decimal_comma:
            dec = None
        else:
            dec = ","
    elif last_dot >= 0:
        tail = len(s) - last_dot - 1
        groups = s.split(".")
        if tail == 3 and len(groups) > 2 or (tail == 3 and decimal_comma):
            dec = None
        else:
            dec = "."
    else:
        dec = None
    if dec is None:
        s = s.replace(",", "").replace(".", "")
    else:
        other = "," if dec == "." else "."
        s = s.replace(other, "")
        s = s.replace(dec, ".")
    try:
        return Decimal(s)
    except InvalidOperation:
        return None


def currency_code(mark: str | None) -> str | None:
    """'€' -> 'EUR', 'rm' -> 'MYR', 'usd' -> 'USD'; None for an unknown mark."""
    if not mark:
        return None
    m = mark.strip().upper()
    if m in ISO_CODES:
        return m
    return CURRENCY_SYMBOLS.get(m)


def find_amounts(text: str, *, decimal_comma: bool | None = None, repair: bool = True) -> list[AmountMatch]:
    """Every amount in `text` with its currency mark when one is printed next to it.

    With `repair`, confusable letters inside amount-shaped tokens are read as digits ('RMI11.90' -> 111.90);
    the match keeps the raw text as read and says what was repaired.
    """
    fixed, spans = repair_numeric_tokens(text) if repair else (text, [])
    out = []
    for m in AMOUNT_RE.finditer(fixed):
        value = number_from_text(m.group("num"), decimal_comma=decimal_comma)
        if value is None:
            continue
        if m.group("sign") or m.group("sign0"):
            value = -value
        cur = currency_code(m.group("cur") or m.group("cur2"))
        has_dec = bool(re.search(r"[.,]\d{1,2}$", m.group("num")))
        raw = text[m.start():m.end()]
        lead = len(raw) - len(raw.lstrip())
        s, e = m.start() + lead, m.start() + len(raw.rstrip())
        hit = [(a, b, tok) for a, b, tok in spans if a < m.end() and m.start() < b]
        repair_note = None
        if hit:
            repair_note = "; ".join(f"read {tok!r} as {fixed[a:b]!r}" for a, b, tok in hit)
        out.append(AmountMatch(text[s:e], s, e, value, cur, has_dec, repair_note, fixed[s:e]))
    return out


def parse_amount(text: str | float | int | Decimal, *, decimal_comma: bool | None = None) -> tuple[Decimal, str | None] | None:
    """The amount in a short text such as 'RM 1.234,56', '$8.20', '1,234.56 EUR' -> (Decimal, ISO code)."""
    if isinstance(text, (int, float, Decimal)) and not isinstance(text, bool):
        return Decimal(str(text)), None
    amounts = find_amounts(str(text), decimal_comma=decimal_comma)
    if not amounts:
        return None
    best = max(amounts, key=lambda a: (a.has_decimals, len(a.raw)))
    return best.value, best.currency


def detect_currency(text: str) -> str | None:
    """The most frequent currency mark or ISO code in a page's text (symbols next to numbers count too)."""
    counts: dict[str, int] = {}
    for m in re.finditer(r"(?<![A-Z])([A-Z]{3})(?![A-Z])", text):
        if m.group(1) in ISO_CODES:
            counts[m.group(1)] = counts.get(m.group(1), 0) + 2
    for sym in ("€", "£", "₹", "US$", "S$"):
        if sym in text:
            counts[CURRENCY_SYMBOLS[sym]] = counts.get(CURRENCY_SYMBOLS[sym], 0) + text.count(sym) * 2
    for m in re.finditer(r"(?<![A-Za-z])(RM|Rs\.?)\s?-?\d", text):
        code = currency_code(m.group(1))
        if code:
            counts[code] = counts.get(code, 0) + 1
    if "$" in text and not any(k in counts for k in ("USD", "SGD", "AUD", "CAD")):
        counts["USD"] = counts.get("USD", 0) + 1
    if not counts:
        return None
    return max(counts.items(), key=lambda kv: kv[1])[0]


def collapse(text: str) -> str:
    """Whitespace collapsed and case folded: how texts are compared."""
    return " ".join(text.split()).casefold()
