"""`docvlm ground` without a model: what a query names, found in the page text.

Three ways, tried in this order, each box saying which one found it:

1. **field**: a query naming a field the receipt / invoice rules know ("the total amount", "the date", "the
   merchant") is answered by the same rules as `docvlm extract` (`docvlm.extract.rules`).
2. **literal**: the query's words printed in one passage (case-insensitive).
3. **fuzzy**: a run of words in one passage that reads almost like the query (OCR slips, spacing), by the
   same matcher as the ocr engine's `ground` task (`docvlm.text_match`).

A passage is the text of one table cell (its lines), of one layout block (a paragraph's lines), or of a line
on its own: a phrase that wraps inside a cell or a paragraph is found, with the box of the words it covers.

Nothing found is a result with status `not_found` and a message saying what would find it (a VLM engine),
never an empty "success".
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from difflib import SequenceMatcher
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field

from docvlm.datamodel import Box, DocumentResult, ErrorItem, Line, PageResult
from docvlm.geometry import split_line_into_words, union_box
from docvlm.text_match import MIN_SIMILARITY, best_word_runs

if TYPE_CHECKING:
    from docvlm.options import ConvertOptions

FIELD_QUERIES: dict[str, tuple[str, ...]] = {
    "total": ("total", "total amount", "amount due", "amount to pay", "amount payable", "grand total", "amount",
              "sum", "total price", "balance due", "totaal", "te betalen", "montant total", "net a payer",
              "gesamtbetrag", "betrag", "jumlah"),
    "date": ("date", "invoice date", "receipt date", "purchase date", "issue date", "transaction date", "datum",
             "tarikh", "factuurdatum", "rechnungsdatum"),
    "vendor_name": ("merchant", "merchant name", "store", "store name", "shop", "shop name", "vendor",
                    "vendor name", "seller", "company", "company name", "issuer", "supplier", "restaurant"),
    "vendor_address": ("address", "merchant address", "store address", "shop address", "vendor address",
                       "company address", "adres", "adresse"),
    "time": ("time", "purchase time", "time of purchase"),
    "tax": ("tax", "tax amount", "gst", "vat", "sst", "btw", "tva", "mwst", "sales tax"),
    "subtotal": ("subtotal", "sub total", "net amount", "amount before tax"),
    "invoice_number": ("invoice number", "invoice no", "receipt number", "receipt no", "bill number",
                       "document number", "factuurnummer", "rechnungsnummer"),
    "due_date": ("due date", "payment due", "vervaldatum"),
    "buyer_name": ("customer", "customer name", "buyer", "bill to", "client"),
    "payment_method": ("payment method", "payment", "payment type", "how it was paid"),
    "currency": ("currency",),
}
"""Rule key -> phrasings of a query that name it (after `query_phrase` strips the filler words)."""

FILLER = re.compile(
    r"\b(the|a|an|find|show|me|where|is|are|what|which|of|on|in|this|that|receipt|invoice|document|page|box|"
    r"boxes|please|printed|value|field|its|it's|whats|s)\b|[?!.,:;'\"]", re.IGNORECASE)


class GroundHit(BaseModel):
    """One box answering a query offline, with how it was found."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    page: int = Field(description="0-based page index.")
    label: str = Field(description="The query, or the field it named.")
    text: str = Field(description="The text in the box as read.")
    bbox_page_px: Box = Field(description="Box in page pixels [x0, y0, x1, y1].")
    found_by: Literal["field", "literal", "fuzzy"] = Field(description="Which way found it (see module doc).")
    how: str = Field(description="Why this box: the field rule's note, or the match and its similarity.")
    score: float = Field(description="1.0 for field and literal hits; the similarity for fuzzy ones.")


class GroundResult(BaseModel):
    """The answer of `docvlm ground` on the `ocr` engine."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    path: str
    query: str
    status: Literal["found", "not_found", "failure"]
    field: str | None = Field(default=None, description="The schema field the query named, if any.")
    hits: list[GroundHit] = Field(default_factory=list)
    message: str | None = Field(default=None, description="Why nothing was found and what would find it.")
    errors: list[ErrorItem] = Field(default_factory=list)


def query_phrase(query: str) -> str:
    """The query without filler words, lower case, single-spaced ('Where is the total amount?' -> 'total amount')."""
    return " ".join(FILLER.sub(" ", query.lower()).split())


def field_of_query(query: str) -> str | None:
    """The rule key a query names ('the total amount' -> 'total'), or None when it names no known field."""
    phrase = query_phrase(query)
    if not phrase:
        return None
    best, best_ratio = None, 0.0
    for key, names in FIELD_QUERIES.items():
        for name in names:
            ratio = 1.0 if phrase == name else SequenceMatcher(None, phrase, name).ratio()
            if ratio > best_ratio:
                best, best_ratio = key, ratio
    return best if best_ratio >= 0.85 else None


def ground_text(read: DocumentResult, query: str) -> GroundResult:
    """Ground a query in an already read document (field rules, then literal, then fuzzy text matches)."""
    from docvlm.extract.rules import build_page, extract_rules

    pages = [build_page(p.lines, p.index, p.width_px, p.height_px) for p in read.pages if p.status != "failure"]
    errors = list(read.errors) + [e for p in read.pages for e in p.errors]
    hits: list[GroundHit] = []
    key = field_of_query(query)
    if key is not None and pages:
        found = extract_rules(pages).values.get(key)
        if found is not None:
            hits.append(GroundHit(page=found.page, label=key, text=found.raw, bbox_page_px=found.bbox_page_px,
                                  found_by="field", how=f"schema field {key!r}: {found.note or 'rule match'}",
                                  score=1.0))
    passages = [ps for p in read.pages if p.status != "failure" for ps in page_passages(p)]
    literal = _literal(passages, query)
    hits += [h for h in literal if not any(_same_box(h.bbox_page_px, f.bbox_page_px) for f in hits)]
    if not literal:
        hits += _fuzzy(passages, query)
    if hits:
        return GroundResult(path=read.source.path, query=query, status="found", field=key, hits=hits, errors=errors)
    if not read.pages or all(p.status == "failure" for p in read.pages):
        return GroundResult(path=read.source.path, query=query, status="failure", field=key, errors=errors,
                            message=f"{read.source.path}: no page could be read" + (
                                f" ({errors[0].message})" if errors else ""))
    known = ", ".join(names[0] for names in FIELD_QUERIES.values())
    why = (f"the {key} field was not found by the rules" if key else
           f"no text on the page reads like {query!r}, and it names no field the offline rules know ({known})")
    return GroundResult(
        path=read.source.path, query=query, status="not_found", field=key, errors=errors,
        message=f"nothing found for {query!r}: {why}. The offline `ocr` engine matches printed text and known "
                "fields only; to ground a free description use a VLM engine, e.g. "
                "`--engine hf --model Qwen/Qwen2.5-VL-3B-Instruct` or `--engine openai --base-url URL --model NAME`.")


def _same_box(a: Box, b: Box) -> bool:
    return all(abs(x - y) < 2 for x, y in zip(a, b, strict=True))


@dataclass(frozen=True)
class Passage:
    """Text searched as one: a table cell's lines, a layout block's lines, or one line; words joined by
    single spaces, each word with its character span in `text` and its box."""

    page: int
    kind: Literal["cell", "block", "line"]
    text: str
    spans: tuple[tuple[int, int], ...]
    boxes: tuple[Box, ...]

    def box_of(self, start: int, end: int) -> Box:
        """Union of the boxes of the words that characters [start, end) touch."""
        hit = [b for (s, e), b in zip(self.spans, self.boxes, strict=True) if s < end and start < e]
        return union_box(hit) if hit else union_box(list(self.boxes))

    def where(self) -> str:
        return {"cell": "in a table cell", "block": "in a paragraph", "line": "on the line"}[self.kind]


def _passage(page: int, kind: Literal["cell", "block", "line"], lines: list[Line]) -> Passage:
    words: list[tuple[str, Box]] = []
    for ln in lines:
        words += [(w.text, w.bbox_page_px) for w in ln.words if w.text.strip()] or \
            split_line_into_words(ln.text, ln.bbox_page_px)
    text, spans = "", []
    for w, _ in words:
        start = len(text) + (1 if text else 0)
        text = f"{text} {w}" if text else w
        spans.append((start, len(text)))
    return Passage(page=page, kind=kind, text=text, spans=tuple(spans), boxes=tuple(b for _, b in words))


def page_passages(page: PageResult) -> list[Passage]:
    """The page's passages: the lines inside each table cell, then each layout block's consecutive lines,
    then every other line alone (lines keep their reading order inside a passage)."""
    lines = [ln for ln in page.lines if ln.text.strip()]
    cell_of: dict[int, tuple[int, int]] = {}
    for t, table in enumerate(page.tables):
        for c, cell in enumerate(table.cells):
            if cell.bbox_page_px is None:
                continue
            x0, y0, x1, y1 = cell.bbox_page_px
            for i, ln in enumerate(lines):
                cx = (ln.bbox_page_px[0] + ln.bbox_page_px[2]) / 2
                cy = (ln.bbox_page_px[1] + ln.bbox_page_px[3]) / 2
                if i not in cell_of and x0 - 1 <= cx <= x1 + 1 and y0 - 1 <= cy <= y1 + 1:
                    cell_of[i] = (t, c)
    out: list[Passage] = []
    groups: dict[tuple[int, int], list[Line]] = {}
    for i, ln in enumerate(lines):
        if i in cell_of:
            groups.setdefault(cell_of[i], []).append(ln)
    out += [_passage(page.index, "cell" if len(g) > 1 else "line", g) for g in groups.values()]
    run: list[Line] = []
    for i, ln in enumerate(lines + [None]):  # type: ignore[list-item]
        if ln is not None and i in cell_of:
            continue
        if run and (ln is None or ln.block is None or ln.block != run[-1].block):
            out.append(_passage(page.index, "block" if len(run) > 1 else "line", run))
            run = []
        if ln is not None:
            run.append(ln)
    return out


def _literal(passages: list[Passage], query: str) -> list[GroundHit]:
    """Every place a passage prints the query's words (case-insensitive, any spacing or line break)."""
    needle = " ".join(query.split()).lower()
    out = []
    for ps in passages if needle else []:
        text = ps.text.lower()
        at = text.find(needle)
        while at >= 0:
            end = at + len(needle)
            out.append(GroundHit(page=ps.page, label=query, text=ps.text[at:end], bbox_page_px=ps.box_of(at, end),
                                 found_by="literal", how=f"the query printed {ps.where()} {ps.text!r}", score=1.0))
            at = text.find(needle, end)
    return out


def _fuzzy(passages: list[Passage], query: str, threshold: float = MIN_SIMILARITY) -> list[GroundHit]:
    """Runs of words reading almost like the query (at least `threshold` similar), none overlapping."""
    n = max(1, len(query.split()))
    out = []
    for ps in passages:
        words = [ps.text[s:e] for s, e in ps.spans]
        for ratio, i, j in best_word_runs(words, query, threshold=threshold, sizes=(n - 1, n, n + 1)):
            s, e = ps.spans[i][0], ps.spans[j - 1][1]
            out.append(GroundHit(page=ps.page, label=query, text=ps.text[s:e], bbox_page_px=ps.box_of(s, e),
                                 found_by="fuzzy", how=f"reads like the query ({ratio:.2f} similar) {ps.where()}",
                                 score=round(ratio, 3)))
    return sorted(out, key=lambda h: -h.score)


def ground_document(path: str | Path, options: ConvertOptions, query: str) -> tuple[GroundResult, DocumentResult]:
    """Read a document with the `ocr` engine and ground the query in it; bad input is a failure result."""
    from docvlm.engines.base import Task
    from docvlm.pipeline import convert_document

    read = convert_document(path, options, task=Task(kind="read"), display_path=str(path))
    return ground_text(read, query), read
