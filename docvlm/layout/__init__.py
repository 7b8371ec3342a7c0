"""The layout stage: one list of small processors between the engine and the writers, for every engine.

Order matters and is fixed here:

1. `repair_text`   text-layer repair (NFC, detached combining marks, ligatures; raw text kept)
2. tables          tables from the text layer / rulings / OCR words / model output (`docvlm.layout.tables`,
                   whose `TABLE_PROCESSORS` list is spliced in here)
3. `furniture`     headers, footers and page numbers judged on the page alone (position, size, patterns)
4. `reading_order` lines in reading order (columns, sidebars, captions, footnotes), grouped into blocks
5. `headings`      heading roles and levels from font size and weight, or relative line height

Document processors then run across the pages (`running_furniture`: text repeated at the same place;
`heading_levels`: one heading scale for the whole document).
`apply_page_layout` / `apply_document_layout` are what the pipeline calls.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from docvlm.layout.base import (
    DocumentContext,
    DocumentProcessor,
    LayoutTimings,
    PageContext,
    PageProcessor,
    run_document_processors,
    run_page_processors,
)
from docvlm.layout.furniture import MarkPageFurniture, MarkRunningFurniture
from docvlm.layout.headings import MarkHeadings, UnifyHeadingLevels
from docvlm.layout.reading_order import OrderReading
from docvlm.layout.tables import TABLE_DOCUMENT_PROCESSORS, TABLE_PROCESSORS
from docvlm.layout.text_repair import RepairText

if TYPE_CHECKING:
    from docvlm.datamodel import PageResult


PAGE_PROCESSORS: list[PageProcessor] = [
    RepairText(),
    *TABLE_PROCESSORS,  # BEFORE furniture, reading order and headings
    MarkPageFurniture(),
    OrderReading(),
    MarkHeadings(),
]
"""Page processors in the order they run."""

DOCUMENT_PROCESSORS: list[DocumentProcessor] = [
    MarkRunningFurniture(),
    *TABLE_DOCUMENT_PROCESSORS,  # tables continued from the previous page
    UnifyHeadingLevels(),
]
"""Document processors in the order they run (after every page's processors)."""


def apply_page_layout(page: PageResult, ctx: PageContext, timings: LayoutTimings | None = None) -> PageResult:
    """Run the page processors on one assembled page (skipped when `options.layout` is off)."""
    if ctx.options is not None and not ctx.options.layout:
        return page
    return run_page_processors(page, ctx, PAGE_PROCESSORS, timings)


def apply_document_layout(
    pages: list[PageResult], ctx: DocumentContext, timings: LayoutTimings | None = None
) -> list[PageResult]:
    """Run the document processors over all pages of a document (skipped when `options.layout` is off)."""
    if ctx.options is not None and not ctx.options.layout:
        return pages
    return run_document_processors(pages, ctx, DOCUMENT_PROCESSORS, timings)


__all__ = [
    "DOCUMENT_PROCESSORS",
    "PAGE_PROCESSORS",
    "DocumentContext",
    "DocumentProcessor",
    "LayoutTimings",
    "PageContext",
    "PageProcessor",
    "apply_document_layout",
    "apply_page_layout",
]
