"""Tables as grounded structure: grids from rulings, grids from column alignment, grids a VLM printed.

Every engine ends up here with the same inputs: the page's words (text layer, OCR or model, in page pixels) and,
when there are any, straight rulings in page pixels (PDF vector drawings, or lines found in the page image).
One detector per module, each taking words, rulings and page geometry (`common.TablePage`) and returning
tables (`common.TablesResult`); `step.PAGE_KINDS` lists the detectors per page kind.

- `ruled`: horizontal and vertical rulings that cross form a grid; a missing ruling inside the grid joins the
  two slots into one spanning cell.
- `aligned`: consecutive text rows split into chunks by wide gaps; the x positions that no chunk covers are the
  column gutters; a chunk that crosses a gutter spans columns.
- `turned` / `detect`: a grid whose text runs sideways is re-read upright; ruled then aligned, per direction.
- `image_rulings` / `pdf_drawings`: where rulings come from (page image; PDF vector drawings, text directions).
- `model_output`: `<table>` HTML (Qwen2.5-VL `data-bbox`, or plain) and Markdown pipe tables in the raw model
  output; cell text is grounded on the page's words inside the table's box.
- `header`: text rows over a table's columns become its header rows.
- `continuation`: a table continued from the previous page (a document step).

The work is capped (rulings, words, grid slots): above a cap the page keeps its text and gets a `table` warning.
Rendering (GFM / HTML) is the writers' job: `docvlm.writers.tables`.
"""

from __future__ import annotations

from docvlm.layout.tables.aligned import find_aligned_tables
from docvlm.layout.tables.common import (
    MAX_SEGMENTS,
    MAX_SLOTS,
    MAX_WORDS,
    TableDetector,
    TablePage,
    TablesResult,
    WordBox,
)
from docvlm.layout.tables.continuation import (
    TABLE_DOCUMENT_PROCESSORS,
    MarkTableContinuations,
    mark_continuations,
)
from docvlm.layout.tables.detect import AlignedTables, RuledGrids, detect_tables, find_tables
from docvlm.layout.tables.header import HeaderRows, join_header_rows
from docvlm.layout.tables.image_rulings import rulings_from_image
from docvlm.layout.tables.model_output import PrintedTables, tables_from_outputs
from docvlm.layout.tables.pdf_drawings import rulings_from_pdf, text_directions
from docvlm.layout.tables.ruled import find_ruled_tables
from docvlm.layout.tables.step import PAGE_KINDS, TABLE_PROCESSORS, FindTables, PageKind, page_kind
from docvlm.layout.tables.words import page_words, word_turns

__all__ = [
    "MAX_SEGMENTS",
    "MAX_SLOTS",
    "MAX_WORDS",
    "PAGE_KINDS",
    "TABLE_DOCUMENT_PROCESSORS",
    "TABLE_PROCESSORS",
    "AlignedTables",
    "FindTables",
    "HeaderRows",
    "MarkTableContinuations",
    "PageKind",
    "PrintedTables",
    "RuledGrids",
    "TableDetector",
    "TablePage",
    "TablesResult",
    "WordBox",
    "detect_tables",
    "find_aligned_tables",
    "find_ruled_tables",
    "find_tables",
    "join_header_rows",
    "mark_continuations",
    "page_kind",
    "page_words",
    "rulings_from_image",
    "rulings_from_pdf",
    "tables_from_outputs",
    "text_directions",
    "word_turns",
]
