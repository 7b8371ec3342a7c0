"""The layout stage's seams: page and document processors, their context, and the runner that isolates them.

A page processor is a small class with a `name` and `__call__(page, ctx) -> page`; it takes an assembled
`PageResult` (every box in page pixels, PDF points added) and returns it improved: text repaired, tables
found, furniture marked, lines in reading order, headings. A document processor takes and returns the list
of pages (furniture repeated across pages). Processors run in a listed order (`docvlm.layout`), the same for
every engine, because they read only the result model plus, through `PageContext.source`, the page itself.

A processor that raises does not crash the run: the page keeps what it had before that step and gets an
error with code "layout" naming the file, the page and the step.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from docvlm.datamodel import ErrorItem, PageResult

if TYPE_CHECKING:
    from docvlm.options import ConvertOptions
    from docvlm.sources import SourcePage

MAX_LAYOUT_LINES = 20_000
"""A page with more lines than this skips the layout stage (an error says so): every step stays bounded."""


@dataclass(frozen=True)
class PageContext:
    """What a page processor may read besides the page result.

    `source` is the page as opened (None when a result is re-laid out without its file, e.g. from JSON):
    `source.render()` gives the page image, `source.text_layer()` the PDF words, and for PDF pages
    `source.pdf_page()` the PyMuPDF page (drawings, rulings). `shown` is the file as displayed in messages.
    """

    source: SourcePage | None = None
    options: ConvertOptions | None = None
    shown: str = ""
    engine: str = ""


@dataclass(frozen=True)
class DocumentContext:
    """What a document processor may read besides the pages."""

    options: ConvertOptions | None = None
    shown: str = ""
    page_count: int | None = None


class PageProcessor(Protocol):
    """One layout step on one page."""

    name: str

    def __call__(self, page: PageResult, ctx: PageContext) -> PageResult:
        """Return the page improved; raise on failure (the runner records it)."""
        ...


class DocumentProcessor(Protocol):
    """One layout step across the pages of a document."""

    name: str

    def __call__(self, pages: list[PageResult], ctx: DocumentContext) -> list[PageResult]:
        """Return the pages improved (same count and order); raise on failure (the runner records it)."""
        ...


@dataclass
class LayoutTimings:
    """Seconds spent per processor name (for bench/olmocr_bench.py and the layout time budget)."""

    seconds: dict[str, float] = field(default_factory=dict)

    def add(self, name: str, seconds: float) -> None:
        self.seconds[name] = self.seconds.get(name, 0.0) + seconds

    @property
    def total(self) -> float:
        return sum(self.seconds.values())


def _layout_error(shown: str, page_index: int | None, step: str, exc: Exception) -> ErrorItem:
    where = f"{shown} (page {page_index + 1})" if page_index is not None else shown
    return ErrorItem(
        code="layout",
        message=f"{where}: layout step {step!r} failed ({type(exc).__name__}: {exc}); the page keeps its "
        "text without that step. Run with layout off (DOCVLM_LAYOUT=false) to skip the stage.",
        page=page_index,
    )


def _with_error(page: PageResult, error: ErrorItem) -> PageResult:
    status = "partial" if page.status == "success" else page.status
    return page.model_copy(update={"errors": [*page.errors, error], "status": status})


def run_page_processors(
    page: PageResult,
    ctx: PageContext,
    processors: Sequence[PageProcessor],
    timings: LayoutTimings | None = None,
) -> PageResult:
    """Apply `processors` in order; a step that raises leaves the page as it was and adds a "layout" error."""
    if page.status == "failure" and not page.lines:
        return page
    if len(page.lines) > MAX_LAYOUT_LINES:
        err = ErrorItem(
            code="layout",
            message=f"{ctx.shown} (page {page.index + 1}): {len(page.lines):,} lines, over the layout stage's "
            f"limit of {MAX_LAYOUT_LINES:,}; lines are kept in the engine's order without layout",
            page=page.index,
        )
        return _with_error(page, err)
    for proc in processors:
        started = time.perf_counter()
        try:
            page = proc(page, ctx)
        except Exception as exc:  # noqa: BLE001 - a layout bug on one page must not lose the page's text
            page = _with_error(page, _layout_error(ctx.shown, page.index, proc.name, exc))
        if timings is not None:
            timings.add(proc.name, time.perf_counter() - started)
    return page


def run_document_processors(
    pages: list[PageResult],
    ctx: DocumentContext,
    processors: Sequence[DocumentProcessor],
    timings: LayoutTimings | None = None,
) -> list[PageResult]:
    """Apply document `processors` in order; one that raises leaves the pages as they were plus an error."""
    for proc in processors:
        started = time.perf_counter()
        try:
            out = proc(list(pages), ctx)
            if len(out) != len(pages):
                raise ValueError(f"returned {len(out)} pages for {len(pages)}")
            pages = out
        except Exception as exc:  # noqa: BLE001 - recorded on the first page, the pages stay as they were
            if pages:
                pages = [_with_error(pages[0], _layout_error(ctx.shown, pages[0].index, proc.name, exc)),
                         *pages[1:]]
        if timings is not None:
            timings.add(proc.name, time.perf_counter() - started)
    return pages


def update_lines(page: PageResult, updates: dict[int, dict[str, object]]) -> PageResult:
    """The page with line i updated by `updates[i]` (field -> value); the page itself when nothing changes."""
    if not updates:
        return page
    lines = [ln.model_copy(update=updates[i]) if i in updates else ln for i, ln in enumerate(page.lines)]
    return page.model_copy(update={"lines": lines})
