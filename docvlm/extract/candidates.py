"""Typed objects of the extraction rules: a page's text in rows, a value found on it, the evidence for it.

`Found.status` is what the user reads (`FieldStatus` in models.py):

- `verified`: independent evidence on the page agrees, beyond "the text is in the box we took it from": the
  arithmetic closes (items sum to the subtotal; subtotal + tax - discount + rounding = total; cash - change =
  total; tax = rate x base within a cent), the same value is found twice by different routes, a labelled date
  parses and is plausible, a company name sits on the line of its legal form or above its registration number
  *and* its letters were read the same by a second route (a second recognition of its crop, the name printed
  twice, or a text layer): the legal form proves which line is the company's, not that OCR read it right.
- `found`: read under a clear label, nothing more confirms it.
- `inferred`: found by position or weak cues (the top rows of a receipt, the first date, a subtotal offered as
  the total).

Each value carries its `evidence`: what confirmed it (`Evidence.confirms`) and what was only read or missing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from docvlm.datamodel import Box, Line

RuleStatus = Literal["verified", "found", "inferred"]
"""How far a value the rules read can be trusted (see the module docstring)."""

EvidenceKind = Literal["arithmetic", "rate", "repeat", "label", "date", "legal_form", "registration", "letters",
                       "read_once", "position", "doubt"]
"""arithmetic / rate / repeat / date confirm a value; legal_form / registration confirm it together with letters;
letters (the characters read the same by a second route) confirms nothing alone; label, read_once (the letters
were read by one route only), position and doubt do not."""

CONFIRMING: frozenset[str] = frozenset({"arithmetic", "rate", "repeat", "date", "legal_form", "registration"})
"""Evidence kinds that are independent of the reading itself: one of them makes a value `verified` (those in
`NEEDS_LETTERS` only with `letters` evidence too)."""

NEEDS_LETTERS: frozenset[str] = frozenset({"legal_form", "registration"})
"""Evidence that proves which line holds the value, not that its characters were read right: it confirms only
together with `letters` evidence (a second reading agrees, the text is printed twice, or a text layer)."""

ReadAgain = Callable[[int, Box], "str | None"]
"""A second recognition of a box (page pixels) of page `index`, by another route than the first reading (see
extract/reread.py); None when it cannot be read again (no page image at hand)."""


@dataclass(frozen=True)
class Evidence:
    """One reason to trust (or doubt) a value, as a sentence for the field's note."""

    kind: EvidenceKind
    detail: str

    @property
    def confirms(self) -> bool:
        return self.kind in CONFIRMING

    def __str__(self) -> str:
        return f"{self.kind}: {self.detail}"


@dataclass(frozen=True)
class Found:
    """A value the rules read: typed value, raw text as printed, where, how it was found and how far to trust it."""

    value: object
    raw: str
    page: int
    bbox_page_px: Box
    note: str | None = None
    currency: str | None = None
    score: float = 0.0
    status: RuleStatus | None = None  # None until judged (extract.evidence); then verified / found / inferred
    printed: str | None = None  # the value as it must have been printed, when OCR letters were read as digits
    evidence: tuple[Evidence, ...] = ()

    def with_evidence(self, *more: Evidence) -> Found:
        new = tuple(e for e in more if e not in self.evidence)
        return Found(**{**self.__dict__, "evidence": self.evidence + new})

    @property
    def confirmed(self) -> bool:
        """Some evidence confirms the value (a line's role only with its letters read twice) and none doubts it."""
        kinds = {e.kind for e in self.evidence}
        if "doubt" in kinds:
            return False
        return bool(kinds & (CONFIRMING - NEEDS_LETTERS)) or bool(kinds & NEEDS_LETTERS) and "letters" in kinds


@dataclass(frozen=True)
class FoundItem:
    """One line item: each part with its own box (any part may be missing)."""

    description: Found | None = None
    quantity: Found | None = None
    unit_price: Found | None = None
    amount: Found | None = None

    def parts(self) -> tuple[Found, ...]:
        return tuple(f for f in (self.description, self.quantity, self.unit_price, self.amount) if f is not None)


@dataclass(frozen=True)
class TaxLine:
    """A printed tax line: its amount, and its rate when the line prints one ('GST 6%')."""

    amount: Found
    rate_percent: object | None = None  # Decimal
    exempt: bool = False


@dataclass(frozen=True)
class RuleResult:
    """What the rules found on a document: rule key -> value, plus line items and notes for warnings."""

    values: dict[str, Found] = field(default_factory=dict)
    line_items: list[FoundItem] = field(default_factory=list)
    notes: list[tuple[str, str]] = field(default_factory=list)  # (code, message) for cross-check warnings
    tax_lines: list[TaxLine] = field(default_factory=list)


@dataclass(frozen=True)
class PageText:
    """One page's lines in reading order, grouped into rows."""

    index: int
    lines: tuple[Line, ...]
    rows: tuple[tuple[int, ...], ...]  # indices into lines, each row left to right
    width_px: float
    height_px: float
    skew: float = 0.0  # text slope dy/dx that the rows were built with
    text_layer: bool = False  # the lines are a PDF's text layer (the printed characters, not a recognition)

    def row_of(self, i: int) -> int:
        return next(r for r, row in enumerate(self.rows) if i in row)
