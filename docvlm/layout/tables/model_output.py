"""Tables a VLM printed: `<table>` HTML (Qwen2.5-VL `data-bbox`, or plain) and Markdown pipe tables in the
raw model output; cell text is grounded on the page's words inside the table's box."""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import TYPE_CHECKING

from docvlm.datamodel import Box, Table, TableCell
from docvlm.geometry import model_to_page, union_box
from docvlm.layout.tables.common import (
    MAX_SLOTS,
    TablePage,
    TablesResult,
    WordBox,
    _center_in,
    _make_table,
    _round,
    _text_height,
)

if TYPE_CHECKING:
    from docvlm.datamodel import EncodingPlan, TileOutput


# --- tables a VLM printed ---------------------------------------------------------------------------------


@dataclass
class _HtmlCell:
    text: str = ""
    row_span: int = 1
    col_span: int = 1
    box_model: tuple[float, float, float, float] | None = None


@dataclass
class _HtmlTable:
    rows: list[list[_HtmlCell]] = field(default_factory=list)
    box_model: tuple[float, float, float, float] | None = None


def _bbox_attr(attrs: list[tuple[str, str | None]]) -> tuple[float, float, float, float] | None:
    for k, v in attrs:
        if k == "data-bbox" and v:
            nums = re.findall(r"-?\d+(?:\.\d+)?", v)
            if len(nums) == 4:
                return tuple(float(n) for n in nums)  # type: ignore[return-value]
    return None


def _int_attr(attrs: list[tuple[str, str | None]], name: str) -> int:
    for k, v in attrs:
        if k == name and v:
            m = re.match(r"\s*(\d+)", v)
            if m:
                return max(1, min(int(m.group(1)), 1000))
    return 1


class _TableParser(HTMLParser):
    """Collects every <table> (nested ones too, each on its own) with rows, spans and data-bbox."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[_HtmlTable] = []
        self.cell_stack: list[_HtmlCell | None] = []
        self.done: list[_HtmlTable] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table":
            self.stack.append(_HtmlTable(box_model=_bbox_attr(attrs)))
            self.cell_stack.append(None)
        elif not self.stack:
            return
        elif tag == "tr":
            self.stack[-1].rows.append([])
        elif tag in ("td", "th"):
            if not self.stack[-1].rows:
                self.stack[-1].rows.append([])
            cell = _HtmlCell(row_span=_int_attr(attrs, "rowspan"), col_span=_int_attr(attrs, "colspan"),
                             box_model=_bbox_attr(attrs))
            self.stack[-1].rows[-1].append(cell)
            self.cell_stack[-1] = cell
        elif tag == "br" and self.cell_stack and self.cell_stack[-1] is not None:
            self.cell_stack[-1].text += " "

    def handle_endtag(self, tag: str) -> None:
        if tag == "table" and self.stack:
            self.done.append(self.stack.pop())
            self.cell_stack.pop()
        elif tag in ("td", "th") and self.cell_stack:
            self.cell_stack[-1] = None

    def handle_data(self, data: str) -> None:
        if self.cell_stack and self.cell_stack[-1] is not None:
            self.cell_stack[-1].text += data


_MD_SEP = re.compile(r"^\s*\|?\s*:?-{2,}:?\s*(\|\s*:?-{2,}:?\s*)*\|?\s*$")


def _markdown_tables(text: str) -> list[_HtmlTable]:
    """GFM pipe tables in a model's Markdown: a header row, a separator row, body rows."""
    lines = text.splitlines()
    out: list[_HtmlTable] = []
    i = 0
    while i < len(lines) - 1:
        if "|" in lines[i] and _MD_SEP.match(lines[i + 1]):
            block = [lines[i]]
            j = i + 2
            while j < len(lines) and "|" in lines[j] and lines[j].strip():
                block.append(lines[j])
                j += 1
            t = _HtmlTable()
            for ln in block:
                s = ln.strip()
                s = s[1:] if s.startswith("|") else s
                s = s[:-1] if s.endswith("|") else s
                t.rows.append([_HtmlCell(text=html.unescape(c.strip())) for c in re.split(r"(?<!\\)\|", s)])
            out.append(t)
            i = j
        else:
            i += 1
    return out


def _place_cells(t: _HtmlTable, max_slots: int) -> tuple[list[tuple[int, int, _HtmlCell]], int, int] | None:
    """HTML rows with rowspan/colspan -> (row, col, cell) slots, the way a browser lays them out."""
    taken: set[tuple[int, int]] = set()
    placed: list[tuple[int, int, _HtmlCell]] = []
    n_cols = 0
    for r, row in enumerate(t.rows):
        c = 0
        for cell in row:
            while (r, c) in taken:
                c += 1
            placed.append((r, c, cell))
            for dr in range(cell.row_span):
                for dc in range(cell.col_span):
                    taken.add((r + dr, c + dc))
            if len(taken) > max_slots:
                return None
            c += cell.col_span
            n_cols = max(n_cols, c)
    n_rows = len(t.rows)
    placed = [(r, c, cell.__class__(cell.text, min(cell.row_span, n_rows - r), cell.col_span, cell.box_model))
              for r, c, cell in placed]
    return placed, n_rows, n_cols


def tables_from_outputs(
    plan: EncodingPlan, outputs: Sequence[TileOutput], words: Sequence[WordBox], *, dpi: float | None
) -> TablesResult:
    """Tables in raw VLM outputs (HTML with or without data-bbox, Markdown pipe tables), in page pixels.

    A cell's box is its own data-bbox when the model printed one, else the tight box of the page's words that
    spell the cell's text inside the table's box; a table with no box of its own gets its cells' union.
    """
    res = TablesResult()
    tiles = {t.index: t for t in plan.tiles}
    for out in outputs:
        tile = tiles.get(out.tile)
        if tile is None or out.stop_reason == "error" or tile.kind == "thumbnail":
            continue
        text = out.raw_text
        found: list[_HtmlTable] = []
        if "<table" in text.lower():
            p = _TableParser()
            try:
                p.feed(text)
                p.close()
            except Exception as exc:  # noqa: BLE001 - html.parser raises assorted errors on broken markup
                res.warnings.append(f"tile {tile.index}: table markup could not be read: {exc}")
            found.extend(p.done)
            found.extend(p.stack)  # an unclosed table (a cut-off answer) still counts
        found.extend(_markdown_tables(text))
        for t in found:
            table = _model_table(t, tile, plan, words, res.used_words, dpi, res.warnings)
            if table is not None:
                res.tables.append(table)
    res.tables.sort(key=lambda t: (t.bbox_page_px[1], t.bbox_page_px[0]))
    return res


def _model_table(
    t: _HtmlTable, tile, plan: EncodingPlan, words: Sequence[WordBox], used: set[int], dpi: float | None,
    warnings: list[str],
) -> Table | None:
    placed = _place_cells(t, MAX_SLOTS)
    if placed is None:
        warnings.append(f"tile {tile.index}: a model table over {MAX_SLOTS:,} cells; kept as text")
        return None
    slots, nr, nc = placed
    if nr < 1 or nc < 1 or not any(c.text.strip() for _, _, c in slots):
        return None
    region = model_to_page(t.box_model, tile, plan.family) if t.box_model else None
    if region is None:
        region = tuple(float(v) for v in tile.crop_page_px)  # type: ignore[assignment]
    inside = [i for i, w in enumerate(words) if i not in used and _center_in(w.box, region)]
    unit = _text_height([words[i] for i in inside]) if inside else 10.0
    cells: list[TableCell] = []
    boxes: list[Box] = []
    for r, c, cell in slots:
        text = " ".join(html.unescape(cell.text).split())
        cbox: Box | None = None
        if cell.box_model is not None:
            cbox = model_to_page(cell.box_model, tile, plan.family)
        if cbox is None and text:
            hit = _ground_text(text, inside, words, used)
            if hit:
                cbox = union_box([words[i].box for i in hit])
        if cbox is not None:
            boxes.append(cbox)
        cells.append(TableCell(row=r, col=c, row_span=cell.row_span, col_span=cell.col_span, text=text,
                               bbox_page_px=_round(cbox) if cbox else None))
    del unit
    box = region if t.box_model is not None or not boxes else union_box(boxes)
    return _make_table(cells, nr, nc, box, "model", dpi)


def _norm(s: str) -> str:
    return "".join(s.split()).lower()


def _ground_text(text: str, candidates: list[int], words: Sequence[WordBox], used: set[int]) -> list[int]:
    """The first unused run of candidate words (reading order) whose text spells `text`, ignoring spaces."""
    want = _norm(text)
    if not want:
        return []
    order = [i for i in sorted(candidates, key=lambda i: (round(words[i].box[1] / 4), words[i].box[0]))
             if i not in used]
    for s in range(len(order)):
        got = ""
        run: list[int] = []
        for j in order[s:]:
            got += _norm(words[j].text)
            run.append(j)
            if not want.startswith(got):
                break
            if got == want:
                used.update(run)
                return run
    return []


@dataclass(frozen=True)
class PrintedTables:
    """Detector: the tables a VLM printed in its raw output (model pages with their plan). The model's own
    lines inside a table (each `<td data-bbox>`, the `<table>` as a whole) are the table's words."""

    name: str = "printed"

    def __call__(self, tp: TablePage, found: TablesResult) -> TablesResult:
        page = tp.page
        if page is None or page.plan is None:
            return found
        res = tables_from_outputs(page.plan, page.outputs, tp.words, dpi=tp.dpi)
        used = set(found.used_words)
        for t in res.tables:
            used.update(i for i, w in enumerate(tp.words) if _center_in(w.box, t.bbox_page_px))
        return TablesResult(tables=[*found.tables, *res.tables], used_words=used | res.used_words,
                            warnings=[*found.warnings, *res.warnings], capped_words=set(found.capped_words), regions=list(found.regions))
