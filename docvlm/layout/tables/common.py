"""What every table detector shares: the word type, the result type, the work caps and small helpers.

Table detectors take words in page pixels (`WordBox`) and return a `TablesResult`: the tables found, the
indices of the words they consumed, and warnings. The caps below bound the work on any page.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from statistics import median
from typing import TYPE_CHECKING, Protocol

from docvlm.datamodel import Box, PageResult, Table, TableCell
from docvlm.geometry import page_to_pdf
from docvlm.rows import RowSettings, group_rows

if TYPE_CHECKING:
    from docvlm.sources import SourcePage


MAX_SLOTS = 10_000
"""Grid slots above which a ruled grid is not turned into cells (a page of 5,000 tiny cells stays text)."""
MAX_SEGMENTS = 20_000
"""Rulings above which the page's drawings are not analysed (a vector illustration, not a table)."""
MAX_WORDS = 20_000
"""Words above which column alignment is not attempted."""
MIN_RULED_FILL = 0.15
"""Share of a ruled grid's cells that must hold text; an emptier grid is decoration (a form's boxes, a chart)."""


@dataclass(frozen=True)
class WordBox:
    """A word in page pixels: the only thing table finding needs from an engine."""

    text: str
    box: Box


@dataclass
class TablesResult:
    """Tables found on one page, the indices of the words they consumed, and warnings."""

    tables: list[Table] = field(default_factory=list)
    used_words: set[int] = field(default_factory=set)
    warnings: list[str] = field(default_factory=list)
    capped_words: set[int] = field(default_factory=set)  # inside a grid over the cap: left as plain text
    regions: list = field(default_factory=list)  # models.Region from the layout model, when it ran


# --- helpers ----------------------------------------------------------------------------------------------


def _text_height(words: Sequence[WordBox]) -> float:
    hs = [w.box[3] - w.box[1] for w in words if w.box[3] > w.box[1]]
    return float(median(hs)) if hs else 10.0


def _join_cell_text(words: Sequence[WordBox], unit: float) -> str:
    """Words of one cell in reading order: lines top to bottom, words left to right."""
    if len(words) == 1:
        return words[0].text
    rows = _cluster_rows(list(range(len(words))), words, unit)
    return " ".join(" ".join(words[i].text for i in row) for row in rows)


TABLE_ROWS = RowSettings(stacked_share=None)
"""The shared row rule (`docvlm.rows`) for words: words of one cell may overlap horizontally (tight kerning)."""


def _cluster_rows(idx: list[int], words: Sequence[WordBox], unit: float) -> list[list[int]]:
    """Group word indices into text rows (the shared rule, `docvlm.rows.group_rows`), each row left to right.
    `unit` (the text height) is kept for the callers; the shared rule needs none."""
    del unit
    rows = group_rows([words[i].box for i in idx], settings=TABLE_ROWS)
    return [[idx[j] for j in row] for row in rows]


_NUMBER = re.compile(r"^[-+−(]?[$€£¥]?\s?[\d.,]+\s?[%)]?[A-Za-z]{0,2}$")


def valid_grid(cells: list[TableCell], n_rows: int, n_cols: int) -> list[TableCell]:
    """Cells that form a valid grid: spans clipped to the grid, no slot in two cells.

    Cells are placed row by row, left to right. A cell whose first slot is taken moves right to the next free
    slot of its row (the way a browser lays out HTML rows); with none free its text joins the cell that holds
    the slot. A span that runs into a taken slot is cut short. No text is lost.
    """
    owner: dict[tuple[int, int], int] = {}
    out: list[dict[str, object]] = []
    for c in sorted(cells, key=lambda c: (c.row, c.col)):
        r = min(c.row, n_rows - 1)
        col = min(c.col, n_cols - 1)
        while col < n_cols and (r, col) in owner:
            col += 1
        if col >= n_cols:
            if c.text.strip():
                k = owner[(r, min(c.col, n_cols - 1))]
                out[k]["text"] = " ".join(t for t in (str(out[k]["text"]), c.text) if t.strip())
            continue
        cs = 1
        while cs < min(c.col_span, n_cols - col) and (r, col + cs) not in owner:
            cs += 1
        rs = 1
        while rs < min(c.row_span, n_rows - r) and all((r + rs, q) not in owner for q in range(col, col + cs)):
            rs += 1
        for dr in range(rs):
            for dq in range(cs):
                owner[(r + dr, col + dq)] = len(out)
        out.append({**c.__dict__, "row": r, "col": col, "row_span": rs, "col_span": cs})
    return [_draft_cell(**f) for f in out]


def _make_table(
    cells: list[TableCell], n_rows: int, n_cols: int, box: Box, method: str, dpi: float | None
) -> Table:
    cells = valid_grid(cells, n_rows, n_cols)
    cells, n_rows, n_cols = _compact(cells, n_rows, n_cols)
    cells.sort(key=lambda c: (c.row, c.col))
    header_rows = 1
    for c in cells:
        if c.row == 0:
            header_rows = max(header_rows, c.row_span)
    # leading rows without a number beside the first column are header rows too (a header over two lines)
    first_data = next((r for r in range(n_rows) if any(
        c.row == r and c.col > 0 and _NUMBER.match(c.text.strip()) for c in cells)), n_rows)
    if first_data < n_rows:  # a table without numbers keeps one header row
        header_rows = max(header_rows, min(first_data, 3))
    header_rows = min(header_rows, max(1, n_rows - 1))
    out = []
    for c in cells:
        pdf = page_to_pdf(c.bbox_page_px, dpi) if (dpi and c.bbox_page_px) else None
        out.append(_with(c, bbox_pdf_pt=pdf, header=c.row < header_rows))
    return Table(
        bbox_page_px=tuple(round(v, 2) for v in box),  # type: ignore[arg-type]
        bbox_pdf_pt=page_to_pdf(box, dpi) if dpi else None,
        n_rows=n_rows,
        n_cols=n_cols,
        cells=out,
        method=method,  # type: ignore[arg-type]
        header_rows=header_rows,
    )


def _with(cell: TableCell, **update: object) -> TableCell:
    """A copy of a cell with fields replaced (4x cheaper than model_copy's field walk on big tables)."""
    return TableCell(**{**cell.__dict__, **update})  # type: ignore[arg-type]


def _draft_cell(**fields: object) -> TableCell:
    """A cell under construction (validated: pydantic-core is ~5x cheaper than `model_construct`'s defaults)."""
    return TableCell(**fields)  # type: ignore[arg-type]


def _compact(cells: list[TableCell], n_rows: int, n_cols: int) -> tuple[list[TableCell], int, int]:
    """Drop grid rows and columns that no non-empty cell touches (slivers between double rules, shading)."""
    rows_used = [False] * n_rows
    cols_used = [False] * n_cols
    for c in cells:
        if c.text.strip():
            for r in range(c.row, min(n_rows, c.row + c.row_span)):
                rows_used[r] = True
            for k in range(c.col, min(n_cols, c.col + c.col_span)):
                cols_used[k] = True
    if all(rows_used) and all(cols_used):
        return cells, n_rows, n_cols
    new_row = [sum(rows_used[:r]) for r in range(n_rows + 1)]
    new_col = [sum(cols_used[:k]) for k in range(n_cols + 1)]
    out = []
    for c in cells:
        r0, r1 = new_row[c.row], new_row[min(n_rows, c.row + c.row_span)]
        c0, c1 = new_col[c.col], new_col[min(n_cols, c.col + c.col_span)]
        if r1 <= r0 or c1 <= c0:
            continue  # an empty cell wholly inside dropped rows or columns
        out.append(_draft_cell(**{**c.__dict__, "row": r0, "col": c0, "row_span": r1 - r0, "col_span": c1 - c0}))
    return out, max(1, new_row[n_rows]), max(1, new_col[n_cols])


def _round(box: Box) -> Box:
    return (round(box[0], 2), round(box[1], 2), round(box[2], 2), round(box[3], 2))


def _center_in(b: Box, region: Sequence[float]) -> bool:
    cx, cy = (b[0] + b[2]) / 2, (b[1] + b[3]) / 2
    return region[0] <= cx <= region[2] and region[1] <= cy <= region[3]


def _pad(b: Box, d: float) -> Box:
    return (b[0] - d, b[1] - d, b[2] + d, b[3] + d)


@dataclass
class TablePage:
    """What a table detector reads: the page's words, their directions, rulings and geometry (page pixels).

    `turns[i]` is word i's writing direction (0, 90 reading downward, 270 upward); `turns_known` is False
    when a sideways word does not say which way it reads (OCR, model). `page` and `source` are for the
    detectors that read more than words (a VLM's printed tables, a layout model on the page image).
    """

    words: Sequence[WordBox]
    turns: Sequence[int]
    segments: Sequence[Box]
    width: float
    height: float
    dpi: float | None
    unit: float
    turns_known: bool = True
    page: PageResult | None = None
    source: SourcePage | None = None


class TableDetector(Protocol):
    """One way of finding tables: grows the page's `TablesResult` (never takes words already used)."""

    name: str

    def __call__(self, tp: TablePage, found: TablesResult) -> TablesResult:
        """Return `found` with this detector's tables, used words and warnings added."""
        ...
