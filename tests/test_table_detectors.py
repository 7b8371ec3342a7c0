"""Each table detector on word lists and rulings directly (no PDF, no engine), the registry of detectors per
page kind, valid grids (issue 17 item 10) and the HTML of spanning tables checked by a CommonMark parse."""

from __future__ import annotations

import typing
from html.parser import HTMLParser

import pytest
from markdown_it import MarkdownIt
from pydantic import ValidationError

from docvlm.datamodel import PageResult, Table, TableCell, TextSource
from docvlm.layout.tables import (
    PAGE_KINDS,
    AlignedTables,
    HeaderRows,
    RuledGrids,
    TablePage,
    TablesResult,
    WordBox,
    detect_tables,
    find_aligned_tables,
    find_ruled_tables,
    page_kind,
)
from docvlm.layout.tables.common import valid_grid
from docvlm.layout.tables.turned import _to_page
from docvlm.writers.tables import render_table_markdown

H = 10.0  # text height of the made-up words


def _w(text: str, x: float, y: float, width: float | None = None) -> WordBox:
    return WordBox(text, (x, y, x + (width if width is not None else 6.0 * len(text)), y + H))


def _grid_rulings(xs: list[float], ys: list[float], skip_v: set[tuple[int, int]] = frozenset()) -> list:
    segs = [(xs[0], y, xs[-1], y) for y in ys]
    for r in range(len(ys) - 1):
        segs.extend((x, ys[r], x, ys[r + 1]) for j, x in enumerate(xs) if (r, j) not in skip_v)
    return segs


def _texts(t: Table) -> list[list[str]]:
    g = [[""] * t.n_cols for _ in range(t.n_rows)]
    for c in t.cells:
        g[c.row][c.col] = c.text
    return g


def _page(words, segments=(), width=600.0, height=800.0, turns=None, turns_known=True) -> TablePage:
    return TablePage(words=words, turns=turns or [0] * len(words), segments=segments, width=width,
                     height=height, dpi=None, unit=H, turns_known=turns_known)


# --- one detector at a time -------------------------------------------------------------------------------


def test_ruled_grid_on_a_word_list_gives_spans_and_tight_boxes():
    xs, ys = [50, 200, 300, 400], [100, 130, 160, 190]
    words = [_w("Region", 60, 110), _w("Sales", 230, 110), _w("North", 60, 140), _w("1,200", 210, 140),
             _w("2,550", 310, 140), _w("South", 60, 170), _w("980", 210, 170), _w("980", 310, 170)]
    # no ruling between columns 1 and 2 in the header row: "Sales" spans them
    res = find_ruled_tables(words, _grid_rulings(xs, ys, skip_v={(0, 2)}), dpi=None)
    assert len(res.tables) == 1
    t = res.tables[0]
    assert (t.method, t.n_rows, t.n_cols) == ("ruled", 3, 3)
    sales = next(c for c in t.cells if c.text == "Sales")
    assert (sales.row, sales.col, sales.col_span) == (0, 1, 2)
    assert _texts(t)[1:] == [["North", "1,200", "2,550"], ["South", "980", "980"]]
    north = next(c for c in t.cells if c.text == "North")
    assert north.bbox_page_px == words[2].box  # the words' own box, not the grid slot
    assert res.used_words == set(range(len(words)))


def test_nested_grid_leaves_its_words_to_the_outer_cell():
    outer = _grid_rulings([50, 250, 450], [100, 200, 240])
    inner = _grid_rulings([60, 150, 240], [110, 140, 170])  # a small grid inside the top-left cell
    words = [_w("a", 70, 120), _w("b", 160, 120), _w("c", 70, 150), _w("d", 160, 150), _w("Right", 300, 140),
             _w("Low", 70, 215), _w("Lower", 300, 215)]
    res = find_ruled_tables(words, outer + inner, dpi=None)
    assert len(res.tables) == 1 and (res.tables[0].n_rows, res.tables[0].n_cols) == (2, 2)
    top_left = next(c for c in res.tables[0].cells if c.row == 0 and c.col == 0)
    assert top_left.text == "a b c d"  # the inner table's text kept, in its reading order


def _aligned_words(extra_row: list[WordBox] | None = None) -> list[WordBox]:
    words = [_w("Item", 20, 20), _w("Qty", 150, 20), _w("Amount", 220, 20)]
    for k in range(10):
        y = 40 + 20 * k
        words += [_w(f"Thing{k}", 20, y), _w(str(k + 1), 156, y), _w(f"{k + 1}.00", 226, y)]
    return words + (extra_row or [])


def test_aligned_table_on_a_word_list():
    res = find_aligned_tables(_aligned_words(), dpi=None, page_width=600)
    assert len(res.tables) == 1
    t = res.tables[0]
    assert (t.method, t.n_cols, t.n_rows) == ("aligned", 3, 11)
    assert _texts(t)[0] == ["Item", "Qty", "Amount"] and _texts(t)[3] == ["Thing2", "3", "3.00"]


def test_aligned_label_running_into_the_next_column_is_one_cell_in_a_valid_grid():
    """Issue 17 item 10: "Total Sales Inclusive" crosses the first gutter and "GST @6%" starts in the second
    column; the label is one cell over two columns and the amount stays in the third."""
    row = [_w("Total", 20, 240), _w("Sales", 56, 240), _w("Inclusive", 92, 240), _w("GST", 150, 240),
           _w("@6%", 172, 240), _w("8.70", 226, 240)]
    res = find_aligned_tables(_aligned_words(row), dpi=None, page_width=600)
    t = res.tables[0]
    last = [c for c in t.cells if c.row == t.n_rows - 1]
    assert [(c.col, c.col_span, c.text) for c in last] == [(0, 2, "Total Sales Inclusive GST @6%"),
                                                          (2, 1, "8.70")]
    _assert_html_places_every_slot(t)


def test_turned_ruled_table_is_read_upright():
    # an upright 3x2 table, then turned: every word box and ruling rotated to the page as text reading upward
    xs, ys = [50, 150, 250], [100, 130, 160, 190]
    up = [_w("Name", 60, 110), _w("Value", 160, 110), _w("alpha", 60, 140), _w("1", 160, 140),
          _w("beta", 60, 170), _w("2", 160, 170)]
    w, h = 800.0, 600.0  # the upright frame is 800 wide; the page is 600 x 800
    words = [WordBox(x.text, _to_page(x.box, 600, 800, 270)) for x in up]
    segs = [_to_page(s, 600, 800, 270) for s in _grid_rulings(xs, ys)]
    del w, h
    tp = _page(words, segs, width=600, height=800, turns=[270] * len(words))
    res = RuledGrids()(tp, TablesResult())
    assert len(res.tables) == 1
    assert _texts(res.tables[0]) == [["Name", "Value"], ["alpha", "1"], ["beta", "2"]]
    # cells are back in page pixels: the turned word's own box
    alpha = next(c for c in res.tables[0].cells if c.text == "alpha")
    assert alpha.bbox_page_px == pytest.approx(words[2].box, abs=0.01)


def test_header_rows_detector_takes_the_labels_over_the_columns():
    body = _aligned_words()[3:]
    res = AlignedTables()(_page(body), TablesResult())  # the body alone: the labels are not in its rows
    assert res.tables and res.tables[0].n_rows == 10
    words = [*body, _w("Net", 152, 28), _w("Gross", 222, 28)]
    res = HeaderRows()(_page(words), res)
    t = res.tables[0]
    assert t.n_rows == 11 and _texts(t)[0] == ["", "Net", "Gross"] and t.header_rows >= 1
    assert {len(body), len(body) + 1} <= res.used_words


def test_detectors_skip_words_an_earlier_detector_took():
    words = _aligned_words()
    tp = _page(words)
    taken = TablesResult(used_words=set(range(len(words))))
    assert AlignedTables()(tp, taken).tables == []
    assert RuledGrids()(_page(words, _grid_rulings([10, 140, 210, 300], [15, 240])), taken).tables == []


def test_twenty_thousand_words_in_a_grid_are_bounded(monkeypatch):
    """A page of 20,000 words on a grid is read as one 200 x 100 table; one word more than the aligned
    search's cap and it stops with a warning instead (the work stays bounded)."""
    words = [WordBox(str(k), (10 + 30 * (k % 100), 10 + 14 * (k // 100), 30 + 30 * (k % 100),
                              20 + 14 * (k // 100))) for k in range(20_000)]
    res = detect_tables(words, [0] * len(words), [], width=3100, height=2900, dpi=None)
    assert [(t.n_rows, t.n_cols) for t in res.tables] == [(200, 100)]
    monkeypatch.setattr("docvlm.layout.tables.aligned.MAX_WORDS", 19_999)
    res = detect_tables(words, [0] * len(words), [], width=3100, height=2900, dpi=None)
    assert res.tables == [] and any("over 19999" in w for w in res.warnings)


# --- the registry -----------------------------------------------------------------------------------------


def test_every_text_source_has_its_detectors():
    assert set(typing.get_args(TextSource)) <= set(PAGE_KINDS)
    assert PAGE_KINDS["text_layer"].turns_known and not PAGE_KINDS["ocr"].turns_known
    assert PAGE_KINDS["ocr"].rulings is not None and PAGE_KINDS["model"].rulings is None
    model_page = PageResult(index=0, width_px=10, height_px=10, dpi=None, status="success", text_source="model")
    assert page_kind(model_page) is not PAGE_KINDS["model"]  # no plan to read: the rules read its words


# --- valid grids and their HTML (issue 17 item 10) --------------------------------------------------------


def test_table_model_rejects_overlapping_cells_and_spans_outside_the_grid():
    ok = dict(bbox_page_px=(0, 0, 10, 10), n_rows=2, n_cols=3, method="aligned")
    with pytest.raises(ValidationError, match="overlap"):
        Table(**ok, cells=[TableCell(row=1, col=0, col_span=2, text="Total"), TableCell(row=1, col=1, text="GST")])
    with pytest.raises(ValidationError, match="outside"):
        Table(**ok, cells=[TableCell(row=1, col=2, col_span=2, text="x")])
    Table(**ok, cells=[TableCell(row=0, col=0, row_span=2, text="a"), TableCell(row=0, col=1, col_span=2)])


def test_valid_grid_moves_clips_and_keeps_every_word():
    cells = [TableCell(row=0, col=0, col_span=2, text="Total Sales Inclusive"), TableCell(row=0, col=1, text="GST"),
             TableCell(row=0, col=2, text="8.70"), TableCell(row=1, col=2, col_span=5, row_span=9, text="far")]
    out = valid_grid(cells, 2, 3)
    t = Table(bbox_page_px=(0, 0, 1, 1), n_rows=2, n_cols=3, method="aligned", cells=out)
    assert sorted((c.row, c.col, c.row_span, c.col_span) for c in t.cells) == [
        (0, 0, 1, 2), (0, 2, 1, 1), (1, 2, 1, 1)]
    words = " ".join(c.text for c in t.cells).split()
    assert sorted(words) == sorted("Total Sales Inclusive GST 8.70 far".split())


class _Slots(HTMLParser):
    """Grid slots each HTML row covers, rowspans carried down (the way a browser lays a table out)."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[tuple[int, int]]] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self.rows[-1].append((int(a.get("rowspan") or 1), int(a.get("colspan") or 1)))

    def widths(self) -> list[int]:
        carry: dict[int, int] = {}  # column -> rows still covered from above
        out = []
        for row in self.rows:
            col, it = 0, iter(row)
            taken = {c for c, n in carry.items() if n > 0}
            for rs, cs in it:
                while col in taken:
                    col += 1
                for k in range(col, col + cs):
                    if rs > 1:
                        carry[k] = rs
                col += cs
            out.append(max([col, *(c + 1 for c in taken)]))
            carry = {c: n - 1 for c, n in carry.items() if n - 1 > 0}
        return out


def _assert_html_places_every_slot(t: Table) -> None:
    md = render_table_markdown(t)
    tokens = MarkdownIt("commonmark").parse(md)
    if md.startswith("<table>"):
        assert [tok.type for tok in tokens] == ["html_block"]  # CommonMark keeps it as one HTML block
        p = _Slots()
        p.feed(tokens[0].content)
        assert len(p.rows) == t.n_rows and p.widths() == [t.n_cols] * t.n_rows, md


def test_html_fills_empty_slots_so_each_cell_is_in_its_column():
    t = Table(bbox_page_px=(0, 0, 10, 10), n_rows=3, n_cols=3, method="aligned", header_rows=1, cells=[
        TableCell(row=0, col=0, text="Item", header=True), TableCell(row=0, col=2, text="Amount", header=True),
        TableCell(row=1, col=0, row_span=2, text="Coffee"), TableCell(row=1, col=2, text="7.00"),
        TableCell(row=2, col=1, text="2"),
        ])
    md = render_table_markdown(t)
    assert md.splitlines()[1] == "<tr><th>Item</th><th></th><th>Amount</th></tr>"
    assert md.splitlines()[2] == '<tr><td rowspan="2">Coffee</td><td></td><td>7.00</td></tr>'
    assert md.splitlines()[3] == "<tr><td>2</td><td></td></tr>"
    _assert_html_places_every_slot(t)


# --- layout-model regions feed roles and captions ---------------------------------------------------------


def test_regions_mark_formulas_captions_and_agreeing_furniture():
    from docvlm.datamodel import Line
    from docvlm.layout.tables.models import Region
    from docvlm.layout.tables.regions import apply_regions

    lines = [Line(text="Running title", bbox_page_px=(100, 20, 300, 32)),     # header region, top band
             Line(text="Not a header", bbox_page_px=(100, 400, 300, 412)),     # "header" region mid-page
             Line(text="Table 2: Sales by region", bbox_page_px=(100, 90, 300, 102)),
             Line(text="E = mc^2", bbox_page_px=(150, 600, 250, 615)),
             Line(text="a", bbox_page_px=(100, 120, 110, 130), role="table")]
    table = Table(bbox_page_px=(90, 110, 400, 300), n_rows=1, n_cols=1, method="ruled")
    regions = [Region("header", (90, 15, 310, 35), 0.9, "header"), Region("header", (90, 395, 310, 415), 0.8, "header"),
               Region("caption", (95, 85, 305, 105), 0.9, "table_caption"),
               Region("formula", (140, 595, 260, 620), 0.9, "equation"), Region("text", (90, 110, 400, 300), 0.6, "text")]
    out_lines, out_tables, page_regions = apply_regions(lines, [table], regions, height=1000, dpi=None)
    assert [ln.role for ln in out_lines] == ["header", None, "caption", "formula", "table"]
    assert out_tables[0].caption == "Table 2: Sales by region"
    assert [r.kind for r in page_regions] == ["header", "header", "caption", "formula", "text"]
    assert all(r.model == "layout_cdla" for r in page_regions)
