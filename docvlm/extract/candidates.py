"""Typed objects of the extraction rules: a page's text in rows, a value found on it, the evidence for it.

`Found.status` is what the user reads (`FieldStatus` in models.py):

- `verified`: independent evidence on the page agrees, beyond "the text is in the box we took it from": the
  arithmetic closes (items sum to the subtotal; subtotal + tax - discount + rounding = total; cash - change =
  total; tax = rate x base within a cent), the same value is found twice by different routes, a labelled date
  parses and is plausible, a company name sits on the line of its legal form or above its registration number.
- `found`: read under a clear label, nothing more confirms it.
- `inferred`: found by position or weak cues (the top rows of a receipt, the first date, a subtotal offered as
  the total).

Each value carries its `evidence`: what confirmed it (`Evidence.confirms`) and what was only read or missing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from docvlm.datamodel import Box, Line

RuleStatus = Literal["verified", "found", "inferred"]
"""How far a value the rules read can be trusted (see the module docstring)."""

EvidenceKind = Literal["arithmetic", "rate", "repeat", "label", "date", "legal_form", "registration", "position",
                       "doubt"]
"""arithmetic / rate / repeat / date / legal_form / registration confirm; label, position and doubt do not."""

CONFIRMING: frozenset[str] = frozenset({"arithmetic", "rate", "repeat", "date", "legal_form", "registration"})
"""Evidence kinds that are independent of the reading itself: any one of them makes a value `verified`."""


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
        return any(e.confirms for e in self.evidence) and not any(e.kind == "doubt" for e in self.evidence)


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

    def row_of(self, i: int) -> int:
        return next(r for r, row in enumerate(self.rows) if i in row)
