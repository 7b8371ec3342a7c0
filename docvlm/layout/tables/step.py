"""The layout step: the page's detectors, chosen by page kind from the registry, write `page.tables`.

A page kind (`PAGE_KINDS`, keyed by `PageResult.text_source`) says where the page's rulings come from (PDF
drawings, the page image, none), whether a line's writing direction is known, and which detectors run, in
order. Each detector takes the page's words, rulings and geometry (`TablePage`) and the tables found so far
(`TablesResult`: its `used_words` are the words earlier detectors consumed) and returns the result grown.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from docvlm.datamodel import Box, ErrorItem, PageResult
from docvlm.layout.tables.common import TableDetector, TablePage, TablesResult, _text_height
from docvlm.layout.tables.detect import AlignedTables, RuledGrids, has_table_candidates
from docvlm.layout.tables.header import HeaderRows
from docvlm.layout.tables.image_rulings import scan_rulings
from docvlm.layout.tables.model_output import PrintedTables
from docvlm.layout.tables.model_tables import ModelTables
from docvlm.layout.tables.models import models_installed
from docvlm.layout.tables.pdf_drawings import _looks_turned, rulings_from_pdf, text_directions
from docvlm.layout.tables.regions import apply_regions
from docvlm.layout.tables.words import page_words, word_turns

if TYPE_CHECKING:
    from docvlm.layout.base import PageContext, PageProcessor
    from docvlm.sources import SourcePage


RulingsReader = Callable[["SourcePage", float], list[Box]]
"""Rulings of a page in page pixels, from its source and the text height."""


def _pdf_rulings(source: SourcePage, unit: float) -> list[Box]:
    return rulings_from_pdf(source)


def _image_rulings(source: SourcePage, unit: float) -> list[Box]:
    return scan_rulings(source, unit)


@dataclass(frozen=True)
class PageKind:
    """How tables are sought on one kind of page."""

    detectors: tuple[TableDetector, ...]
    rulings: RulingsReader | None = None
    """Where rulings come from (None: no rulings)."""
    turns_known: bool = False
    """The PDF says which way a sideways line reads; else a turned table is read both ways."""
    read_directions: bool = False
    """Ask the PDF for each span's writing direction when many lines stand on their side."""
    gate: bool = True
    """Skip reading rulings when no two text rows have column gaps (no table here)."""
    with_models: tuple[TableDetector, ...] | None = None
    """The detectors when trained models are on (`table_models`); None: this kind has no model detectors."""
    models_by_default: bool = False
    """`table_models="auto"` turns the models on for this kind (chosen by bench/table_bench.py)."""

    def chosen(self, table_models: str) -> tuple[TableDetector, ...]:
        """The detectors for a `table_models` setting ("auto", "on", "off")."""
        use = table_models == "on" or (table_models == "auto" and self.models_by_default and models_installed())
        return self.with_models if use and self.with_models is not None else self.detectors


RULE_DETECTORS: tuple[TableDetector, ...] = (RuledGrids(), AlignedTables(), HeaderRows())
"""The rule detectors, in order: ruled grids (turned and framed ones too), aligned tables, header rows."""

MODEL_DETECTORS: tuple[TableDetector, ...] = (RuledGrids(), AlignedTables(), ModelTables("compete"), HeaderRows())
"""Rules first; every table region is read by the structure model too and the better-filled reading of the
region kept (`ModelTables` "compete"; bench/table_bench.py on scanned camelot pages: dev adjacency F1 0.793
against the rules' 0.719, held-out check half 0.789 for both); then header rows. Text-layer pages keep the
rules by default: the models gave the same F1 there at ~25x the table step's time."""

PAGE_KINDS: dict[str | None, PageKind] = {
    "text_layer": PageKind(RULE_DETECTORS, rulings=_pdf_rulings, turns_known=True, read_directions=True,
                           with_models=MODEL_DETECTORS),
    "ocr": PageKind(RULE_DETECTORS, rulings=_image_rulings, with_models=MODEL_DETECTORS, models_by_default=True),
    "model": PageKind((PrintedTables(),), gate=False),
}
"""Detectors per page kind (`PageResult.text_source`); a kind not listed uses `FALLBACK_KIND`."""

FALLBACK_KIND = PageKind(RULE_DETECTORS)
"""Words only: no rulings, directions unknown (a result re-laid out without its kind)."""

MODEL_WITHOUT_PLAN = PageKind(RULE_DETECTORS)
"""A model page without its plan (re-laid out from JSON): its words through the rules."""


def page_kind(page: PageResult, kinds: dict[str | None, PageKind] | None = None) -> PageKind:
    """The registry entry for a page."""
    if page.text_source == "model" and page.plan is None:
        return MODEL_WITHOUT_PLAN
    return (PAGE_KINDS if kinds is None else kinds).get(page.text_source, FALLBACK_KIND)


def run_detectors(tp: TablePage, detectors: tuple[TableDetector, ...]) -> TablesResult:
    """Run detectors in order on one page; each sees the words the earlier ones consumed."""
    res = TablesResult()
    for det in detectors:
        res = det(tp, res)
    return res


@dataclass(frozen=True)
class FindTables:
    """Layout step: tables of the page into `page.tables`, the lines they consumed get role "table"."""

    name: str = "tables"
    kinds: dict[str | None, PageKind] | None = None
    """Another registry (the bench compares detectors); None: `PAGE_KINDS`."""

    def __call__(self, page: PageResult, ctx: PageContext) -> PageResult:
        if not page.lines:
            return page
        words, owner = page_words(page)
        if not words:
            return page
        unit = _text_height(words)
        kind = page_kind(page, self.kinds)
        table_models = ctx.options.table_models if ctx.options is not None else "auto"
        source = ctx.source
        segments: list[Box] = []
        dirs = None
        turned = _looks_turned(page)
        if kind.gate and not has_table_candidates(words, unit) and not turned:
            source = None  # no two text rows with column gaps: no table here, skip drawings and images
        if source is not None and kind.rulings is not None:
            segments = kind.rulings(source, unit)
            if turned and kind.read_directions:
                dirs = text_directions(source)
        tp = TablePage(words=words, turns=word_turns(page, dirs), segments=segments, width=page.width_px,
                       height=page.height_px, dpi=page.dpi, unit=unit, turns_known=kind.turns_known, page=page,
                       source=source)
        res = run_detectors(tp, kind.chosen(table_models))
        warnings = list(res.warnings)
        used_per_line: dict[int, int] = {}
        for i in res.used_words:
            used_per_line[owner[i]] = used_per_line.get(owner[i], 0) + 1
        total_per_line: dict[int, int] = {}
        for k in owner:
            total_per_line[k] = total_per_line.get(k, 0) + 1
        lines = list(page.lines)
        for k, n in used_per_line.items():
            if n * 2 >= total_per_line[k]:
                lines[k] = lines[k].model_copy(update={"role": "table"})
        tables = list(res.tables)
        regions = []
        if res.regions:
            lines, tables, regions = apply_regions(lines, tables, res.regions, height=page.height_px, dpi=page.dpi)
        errors = list(page.errors)
        where = f"{ctx.shown} (page {page.index + 1})" if ctx.shown else f"page {page.index + 1}"
        errors.extend(ErrorItem(code="table", message=f"{where}: {w}", page=page.index) for w in warnings)
        update: dict[str, object] = {"tables": [*page.tables, *tables], "lines": lines}
        if regions:
            update["regions"] = regions
        if warnings:
            update["errors"] = errors
            if page.status == "success":
                update["status"] = "partial"
        return page.model_copy(update=update)


TABLE_PROCESSORS: list[PageProcessor] = [FindTables()]
"""Spliced into `docvlm.layout.PAGE_PROCESSORS` before furniture, reading order and headings."""
