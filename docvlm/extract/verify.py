"""Check extracted values against the page text (text layer or OCR lines) and snap their boxes.

A value found inside or next to its box is `verified` and its box becomes the exact box of the words that
print it; a value printed elsewhere on the page, or nowhere, is `unverified` with a note saying which.
Nothing is corrected silently: the value itself is never changed here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from docvlm.datamodel import Box, Line
from docvlm.extract.models import FieldBase
from docvlm.extract.normalize import (
    CURRENCY_SYMBOLS,
    collapse,
    find_amounts,
    find_dates,
    parse_time,
)
from docvlm.geometry import intersection, split_line_into_words, union_box

NEAR_FACTOR = 1.0
"""A match is 'next to' the model's box when it lies within this many box heights (at least 1% of the page)."""


@dataclass(frozen=True)
class Span:
    text: str
    bbox_page_px: Box


def _words(line: Line) -> list[tuple[str, Box]]:
    if line.words:
        return [(w.text, w.bbox_page_px) for w in line.words]
    return split_line_into_words(line.text, line.bbox_page_px)


def word_spans(lines: Sequence[Line], max_words: int) -> list[Span]:
    """Every run of up to `max_words` consecutive words within a line, plus runs of whole consecutive lines."""
    out: list[Span] = []
    for line in lines:
        words = _words(line)
        for i in range(len(words)):
            for j in range(i + 1, min(len(words), i + max_words) + 1):
                out.append(Span(" ".join(w for w, _ in words[i:j]), union_box([b for _, b in words[i:j]])))
    for i in range(len(lines)):
        for j in range(i + 2, min(len(lines), i + 6) + 1):
            out.append(Span(" ".join(ln.text for ln in lines[i:j]),
                            union_box([ln.bbox_page_px for ln in lines[i:j]])))
    return out


def _matches(kind: str, value: object, currency: str | None, span_text: str) -> bool:
    if kind == "text":
        a, b = collapse(str(value)), collapse(span_text)
        return a == b or (len(a) >= 4 and a.replace(" ", "") == b.replace(" ", ""))
    if kind == "date":
        return any(value in (d.day_first, d.month_first) for d in find_dates(span_text)) and _tight(span_text, find_dates(span_text))
    if kind in ("money", "number"):
        amounts = find_amounts(span_text)
        return len(amounts) == 1 and Decimal(amounts[0].value) == Decimal(str(value)) and \
            len(amounts[0].raw) >= len(span_text.strip()) - 4
    if kind == "time":
        got = parse_time(span_text)
        return got is not None and got[0] == value and len(got[1]) >= len(span_text.strip()) - 3
    if kind == "currency":
        t = span_text.strip().upper()
        return t == str(value) or CURRENCY_SYMBOLS.get(t) == value
    return collapse(str(value)) == collapse(span_text)


def _tight(text: str, dates: list) -> bool:
    return len(dates) == 1 and len(dates[0].raw) >= len(text.strip()) - 2


def _near(a: Box, b: Box, page_diag: float) -> bool:
    if intersection(a, b) > 0:
        return True
    margin = max(NEAR_FACTOR * (b[3] - b[1]), 0.01 * page_diag)
    grown = (b[0] - margin, b[1] - margin, b[2] + margin, b[3] + margin)
    return intersection(a, grown) > 0


def _distance(a: Box, b: Box) -> float:
    ca = ((a[0] + a[2]) / 2, (a[1] + a[3]) / 2)
    cb = ((b[0] + b[2]) / 2, (b[1] + b[3]) / 2)
    return ((ca[0] - cb[0]) ** 2 + (ca[1] - cb[1]) ** 2) ** 0.5


def verify_value(field: FieldBase, lines: Sequence[Line], *, page_width: float, page_height: float) -> FieldBase:
    """Verify one model-given value against its page's lines; returns the updated value object."""
    value = getattr(field, "value", None)
    if value is None or field.status in ("missing", "invalid"):
        return field
    kind = field.type  # type: ignore[attr-defined]
    if kind == "boolean":
        return field.model_copy(update={"status": "unverified", "note": "booleans cannot be checked on the page"})
    n_words = len(str(value).split()) + 3 if kind == "text" else 4
    spans = [s for s in word_spans(lines, n_words) if _matches(kind, value, getattr(field, "currency", None), s.text)]
    if not spans:
        return field.model_copy(update={"status": "unverified", "note": "value not found in the page text"})
    diag = (page_width ** 2 + page_height ** 2) ** 0.5
    if field.bbox_page_px is None:
        best = spans[0]
        return field.model_copy(update={"status": "verified", "bbox_page_px": best.bbox_page_px,
                                        "note": "no box from the model; box from the page text"})
    near = [s for s in spans if _near(s.bbox_page_px, field.bbox_page_px, diag)]
    if not near:
        where = min(spans, key=lambda s: _distance(s.bbox_page_px, field.bbox_page_px))
        box = ", ".join(f"{v:.0f}" for v in where.bbox_page_px)
        return field.model_copy(update={
            "status": "unverified",
            "note": f"value is printed at [{box}], not at or next to the model's box",
        })
    best = min(near, key=lambda s: (_distance(s.bbox_page_px, field.bbox_page_px), len(s.text)))
    return field.model_copy(update={"status": "verified", "bbox_page_px": best.bbox_page_px,
                                    "note": "box snapped to the page text"})


_ = (date,)
