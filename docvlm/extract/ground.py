"""`docvlm ground` without a model: what a query names, found in the page text.

Three ways, tried in this order, each box saying which one found it:

1. **field**: a query naming a field the receipt / invoice rules know ("the total amount", "the date", "the
   merchant") is answered by the same rules as `docvlm extract` (`docvlm.extract.rules`).
2. **literal**: the query's words printed on a line (case-insensitive).
3. **fuzzy**: a run of words on a line that reads almost like the query (OCR slips, spacing).

Nothing found is a result with status `not_found` and a message saying what would find it (a VLM engine),
never an empty "success".
"""

from __future__ import annotations

import re
from difflib import SequenceMatcher
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field

from docvlm.datamodel import Box, DocumentResult, ErrorItem

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
    from docvlm.extract.rules import build_page, extract_rules, span_box

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
    needle = " ".join(query.split()).lower()
    literal = []
    for page in pages:
        for line in page.lines:
            text = line.text.lower()
            at = text.find(needle)
            while at >= 0 and needle:
                box = span_box(line, at, at + len(needle))
                literal.append(GroundHit(page=page.index, label=query, text=line.text[at:at + len(needle)],
                                         bbox_page_px=box, found_by="literal",
                                         how=f"the query printed on the line {line.text!r}", score=1.0))
                at = text.find(needle, at + len(needle))
    hits += [h for h in literal if not any(_same_box(h.bbox_page_px, f.bbox_page_px) for f in hits)]
    if not literal:
        hits += _fuzzy(pages, query)
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


def _fuzzy(pages: list, query: str, threshold: float = 0.8) -> list[GroundHit]:
    """Runs of words reading almost like the query (the best run per line, at least `threshold` similar)."""
    from docvlm.extract.rules import span_box

    want = " ".join(query.lower().split())
    n = max(1, len(want.split()))
    out = []
    for page in pages:
        for line in page.lines:
            words = [(m.start(), m.end()) for m in re.finditer(r"\S+", line.text)]
            best = None
            for size in {max(1, n - 1), n, n + 1}:
                for k in range(0, max(0, len(words) - size) + 1):
                    s, e = words[k][0], words[min(len(words), k + size) - 1][1]
                    ratio = SequenceMatcher(None, want, line.text[s:e].lower()).ratio()
                    if ratio >= threshold and (best is None or ratio > best[0]):
                        best = (ratio, s, e)
            if best:
                ratio, s, e = best
                out.append(GroundHit(page=page.index, label=query, text=line.text[s:e],
                                     bbox_page_px=span_box(line, s, e), found_by="fuzzy",
                                     how=f"reads like the query ({ratio:.2f} similar)", score=round(ratio, 3)))
    return sorted(out, key=lambda h: -h.score)


def ground_document(path: str | Path, options: ConvertOptions, query: str) -> tuple[GroundResult, DocumentResult]:
    """Read a document with the `ocr` engine and ground the query in it; bad input is a failure result."""
    from docvlm.engines.base import Task
    from docvlm.pipeline import convert_document

    read = convert_document(path, options, task=Task(kind="read"), display_path=str(path))
    return ground_text(read, query), read
