"""The layout stage: one list of small processors between the engine and the writers, for every engine.

Order matters and is fixed here:

1. `repair_text`   text-layer repair (NFC, detached combining marks, ligatures; raw text kept)
2. tables          tables from the text layer / rulings / OCR words / model output (`docvlm.layout.tables`,
                   whose `TABLE_PROCESSORS` list is spliced in here when the module exists)
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
from docvlm.layout.text_repair import RepairText

if TYPE_CHECKING:
    from docvlm.datamodel import PageResult


def _table_processors(name: str = "TABLE_PROCESSORS") -> list:
    """The tables slot: `docvlm.layout.tables.TABLE_PROCESSORS` (or `name`) when that module is present."""
    import importlib
    import importlib.util

    if importlib.util.find_spec("docvlm.layout.tables") is None:
        return []
    tables = importlib.import_module("docvlm.layout.tables")
    return list(getattr(tables, name, []))


PAGE_PROCESSORS: list[PageProcessor] = [
    RepairText(),
    *_table_processors(),  # --- tables slot: BEFORE furniture, reading order and headings ---
    MarkPageFurniture(),
    OrderReading(),
    MarkHeadings(),
]
"""Page processors in the order they run."""

DOCUMENT_PROCESSORS: list[DocumentProcessor] = [
    MarkRunningFurniture(),
    *_table_processors("TABLE_DOCUMENT_PROCESSORS"),  # tables continued from the previous page
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
