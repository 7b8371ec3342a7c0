"""Tables as grounded structure: self-made PDFs (ruled, unruled, rotated, spanning, nested, huge), a self-made
scan read by the real OCR engine, and VLM outputs (Qwen2.5-VL HTML with data-bbox, Markdown pipe tables)."""

from __future__ import annotations

import json
from pathlib import Path

import pymupdf
import pytest
from PIL import Image

import docvlm
from docvlm.datamodel import DocumentResult, PageResult, Table, TableCell
from docvlm.geometry import iou, page_to_model
from docvlm.layout.base import PageContext
from docvlm.layout.tables import (
    MAX_SLOTS,
    FindTables,
    mark_continuations,
    rulings_from_image,
    tables_from_outputs,
)
from docvlm.writers.tables import render_table_markdown

DPI = 144


def _grid(page: pymupdf.Page, x0: float, y0: float, widths: list[float], heights: list[float],
          skip_v: set[tuple[int, int]] = frozenset(), skip_h: set[tuple[int, int]] = frozenset()) -> list[float]:
    """Draw a ruled grid; skip_v = (row, inner column line) left out, skip_h = (inner row line, col) left out."""
    xs = [x0]
    for w in widths:
        xs.append(xs[-1] + w)
    ys = [y0]
    for h in heights:
        ys.append(ys[-1] + h)
    for r in range(len(heights)):
        for j, x in enumerate(xs):
            if (r, j) not in skip_v:
                page.draw_line((x, ys[r]), (x, ys[r + 1]), width=0.7)
    for i, y in enumerate(ys):
        for c in range(len(widths)):
            if (i, c) not in skip_h:
                page.draw_line((xs[c], y), (xs[c + 1], y), width=0.7)
    return xs, ys


def _ruled_pdf(path: Path) -> dict:
    """A 4x4 ruled table: a header cell spanning two columns, an empty cell, text above and below."""
    doc = pymupdf.open()
    page = doc.new_page(width=595, height=842)
    page.insert_text((72, 90), "Quarterly figures of the small shop, as reported.", fontsize=11)
    widths, heights = [120, 90, 90, 90], [22, 22, 22, 22]
    # the header row has no ruling between columns 1 and 2: "Sales by quarter" spans them
    xs, ys = _grid(page, 72, 110, widths, heights, skip_v={(0, 2)})
    rows = [["Region", "Sales by quarter", None, "Total"],
            ["North", "1,200", "1,350", "2,550"],
            ["South", "", "980", "980"],
            ["East", "700", "820", "1,520"]]
    for r, row in enumerate(rows):
        for c, text in enumerate(row):
            if text:
                page.insert_text((xs[c] + 6, ys[r] + 15), text, fontsize=10)
    page.insert_text((72, ys[-1] + 40), "Figures are in euros and rounded to the nearest ten.", fontsize=11)
    doc.save(path)
    return {"rows": rows, "xs": xs, "ys": ys}


def _unruled_pdf(path: Path) -> list[list[str]]:
    doc = pymupdf.open()
    page = doc.new_page(width=595, height=842)
    page.insert_text((72, 80), "The table below lists the measured values of each sample in the run.", fontsize=11)
    rows = [["Sample", "Mass", "Volume", "Density"]]
    for i in range(6):
        rows.append([f"S-{i + 1:02d}", f"{10 + i * 3.5:.1f}", f"{4 + i * 0.75:.2f}", f"{(10 + i * 3.5) / (4 + i):.3f}"])
    for r, row in enumerate(rows):
        for c, text in enumerate(row):
            x = 72 + c * 110
            if c:  # numbers right-aligned, as tables print them
                x += 60 - pymupdf.get_text_length(text, fontsize=10)
            page.insert_text((x, 120 + r * 16), text, fontsize=10)
    page.insert_text((72, 120 + len(rows) * 16 + 30),
                     "Values were measured twice and the mean is reported in every column.", fontsize=11)
    doc.save(path)
    return rows


def _convert(path: Path, **kw) -> DocumentResult:
    return docvlm.convert(str(path), **{"dpi": DPI, **kw})


def _grid_texts(t: Table) -> list[list[str]]:
    g = [[""] * t.n_cols for _ in range(t.n_rows)]
    for c in t.cells:
        g[c.row][c.col] = c.text
    return g


# --- text layer: ruled ------------------------------------------------------------------------------------


def test_ruled_table_from_the_text_layer_has_spans_empty_cells_and_tight_boxes(tmp_path):
    pdf = tmp_path / "ruled.pdf"
    made = _ruled_pdf(pdf)
    result = _convert(pdf)
    page = result.pages[0]
    assert len(page.tables) == 1, page.errors
    t = page.tables[0]
    assert t.method == "ruled"
    assert (t.n_rows, t.n_cols) == (4, 4)
    assert _grid_texts(t) == [["Region", "Sales by quarter", "", "Total"],
                              ["North", "1,200", "1,350", "2,550"],
                              ["South", "", "980", "980"],
                              ["East", "700", "820", "1,520"]]
    span = next(c for c in t.cells if c.text == "Sales by quarter")
    assert (span.row, span.col, span.row_span, span.col_span) == (0, 1, 1, 2)
    assert span.header and t.header_rows == 1
    # the table region is the grid, in page pixels and PDF points
    k = DPI / 72
    assert t.bbox_page_px == pytest.approx((72 * k, 110 * k, made["xs"][-1] * k, made["ys"][-1] * k), abs=1.5)
    assert t.bbox_pdf_pt == pytest.approx((72, 110, made["xs"][-1], made["ys"][-1]), abs=0.8)
    # a filled cell's box is the tight box of its text: the text layer's word box
    words = {w.text: w.bbox_page_px for line in page.lines for w in line.words}
    north = next(c for c in t.cells if c.text == "North")
    assert iou(north.bbox_page_px, words["North"]) > 0.95
    # an empty cell carries its grid box
    empty = next(c for c in t.cells if (c.row, c.col) == (2, 1))
    assert empty.text == "" and empty.bbox_page_px == pytest.approx(
        (made["xs"][1] * k, made["ys"][2] * k, made["xs"][2] * k, made["ys"][3] * k), abs=1.5)
    # lines inside the table are marked; the sentences around it are not
    roles = {line.text: line.role for line in page.lines}
    assert roles["Quarterly figures of the small shop, as reported."] != "table"
    assert any(r == "table" for r in roles.values())
    # spans -> HTML in Markdown
    md = render_table_markdown(t)
    assert md.startswith("<table>") and 'colspan="2"' in md and "<th" in md
    DocumentResult.model_validate_json(result.model_dump_json())


def test_unruled_table_by_column_alignment(tmp_path):
    pdf = tmp_path / "unruled.pdf"
    rows = _unruled_pdf(pdf)
    page = _convert(pdf).pages[0]
    assert len(page.tables) == 1
    t = page.tables[0]
    assert t.method == "aligned"
    assert _grid_texts(t) == rows
    md = render_table_markdown(t)
    lines = md.splitlines()
    assert lines[0] == "| Sample | Mass | Volume | Density |"
    assert lines[1] == "|---|---|---|---|"
    assert lines[2].startswith("| S-01 | 10.0 |")
    prose = [ln for ln in page.lines if ln.text.startswith("Values were measured")]
    assert prose and prose[0].role != "table"


def test_two_column_prose_is_not_a_table(tmp_path):
    doc = pymupdf.open()
    page = doc.new_page(width=595, height=842)
    words = "the quick brown fox jumps over a lazy dog while the cat sleeps in the warm sun".split()
    for col in range(2):
        for i in range(30):
            text = " ".join(words[(i + j + col) % len(words)] for j in range(7))
            page.insert_text((50 + col * 270, 80 + i * 14), text, fontsize=10)
    pdf = tmp_path / "twocol.pdf"
    doc.save(pdf)
    assert _convert(pdf).pages[0].tables == []


def test_rotated_table_is_read_upright(tmp_path):
    """A ruled table printed sideways (text reading bottom to top) comes out with its rows and columns."""
    doc = pymupdf.open()
    page = doc.new_page(width=595, height=842)
    rows = [["Name", "Qty", "Price"], ["Apples", "12", "3.40"], ["Pears", "7", "2.10"], ["Plums", "30", "5.75"]]
    # upright frame: columns along y (upwards), rows along x
    x0, y_bottom, row_h, col_w = 100, 700, 24, 110
    for r in range(len(rows) + 1):
        page.draw_line((x0 + r * row_h, y_bottom), (x0 + r * row_h, y_bottom - 3 * col_w), width=0.7)
    for c in range(4):
        page.draw_line((x0, y_bottom - c * col_w), (x0 + len(rows) * row_h, y_bottom - c * col_w), width=0.7)
    for r, row in enumerate(rows):
        for c, text in enumerate(row):
            page.insert_text((x0 + r * row_h + 16, y_bottom - c * col_w - 6), text, fontsize=10, rotate=90)
    pdf = tmp_path / "rotated.pdf"
    doc.save(pdf)
    page = _convert(pdf).pages[0]
    assert len(page.tables) == 1
    assert _grid_texts(page.tables[0]) == rows
    cell = next(c for c in page.tables[0].cells if c.text == "Apples")
    word = next(w for line in page.lines for w in line.words if w.text == "Apples")
    assert iou(cell.bbox_page_px, word.bbox_page_px) > 0.9  # boxes come back to the page frame


def test_nested_table_and_a_table_over_two_pages(tmp_path):
    doc = pymupdf.open()
    for p in range(2):
        page = doc.new_page(width=595, height=842)
        top = 600 if p == 0 else 60
        n = 6 if p == 0 else 4
        xs, ys = _grid(page, 72, top, [150, 150, 150], [24] * n)
        for r in range(n):
            for c in range(3):
                page.insert_text((xs[c] + 5, ys[r] + 16), f"p{p}r{r}c{c}", fontsize=10)
        if p == 0:  # a small table inside the last cell of the first row (its text joins that cell)
            xi, yi = _grid(page, xs[2] + 60, ys[0] + 5, [40, 40], [7, 7])
            page.insert_text((xi[0] + 2, yi[0] + 6), "in", fontsize=5)
    pdf = tmp_path / "two.pdf"
    doc.save(pdf)
    result = _convert(pdf)
    p0, p1 = result.pages
    assert [len(p0.tables), len(p1.tables)] == [1, 1]
    assert p0.tables[0].n_cols == p1.tables[0].n_cols == 3
    assert not p0.tables[0].continued and p1.tables[0].continued
    texts = [c.text for c in p0.tables[0].cells]
    assert "p0r0c0" in texts and "p0r5c2" in texts
    assert "p0r0c2 in" in texts
    DocumentResult.model_validate_json(result.model_dump_json())


def _tiny_grids(path: Path, sizes) -> None:
    doc = pymupdf.open()
    for cols, rows, step in sizes:
        page = doc.new_page(width=cols * 6 + 40, height=rows * 6 + 40)
        shape = page.new_shape()
        for i in range(cols + 1):
            shape.draw_line((20 + i * 6, 20), (20 + i * 6, 20 + rows * 6))
        for j in range(rows + 1):
            shape.draw_line((20, 20 + j * 6), (20 + cols * 6, 20 + j * 6))
        shape.finish(width=0.2)
        shape.commit()
        for j in range(rows):
            for i in range(0, cols, step):
                page.insert_text((21 + i * 6, 25 + j * 6), str((i + j) % 10), fontsize=4)
    doc.save(path)


def _check_grids(result: DocumentResult, cells: int) -> None:
    small, big = result.pages
    assert small.tables and small.tables[0].n_rows * small.tables[0].n_cols == cells
    assert big.tables == [] and big.lines  # over the cap: no table, the text stays
    assert any(e.code == "table" and "cap" in e.message for e in big.errors)
    assert big.status == "partial"
    json.loads(result.model_dump_json())


def test_grid_over_the_cell_cap_keeps_its_text(tmp_path, monkeypatch):
    monkeypatch.setattr("docvlm.layout.tables.ruled.MAX_SLOTS", 150)
    pdf = tmp_path / "grids.pdf"
    _tiny_grids(pdf, ((12, 10, 1), (20, 10, 2)))
    _check_grids(_convert(pdf, dpi=72), 120)


@pytest.mark.slow
def test_five_thousand_tiny_cells_convert_and_a_bigger_grid_is_capped(tmp_path):
    pdf = tmp_path / "huge.pdf"
    _tiny_grids(pdf, ((100, 50, 1), (130, 90, 3)))
    assert 90 * 130 > MAX_SLOTS
    _check_grids(_convert(pdf, dpi=72), 5000)


def test_table_step_failure_keeps_the_text(tmp_path, monkeypatch):
    pdf = tmp_path / "ruled.pdf"
    _ruled_pdf(pdf)

    def boom(*a, **k):
        raise RuntimeError("broken drawing")

    monkeypatch.setattr("docvlm.layout.tables.step.rulings_from_pdf", boom)
    page = _convert(pdf).pages[0]
    assert page.tables == [] and page.lines
    assert any(e.code == "layout" and "tables" in e.message for e in page.errors)


# --- scans: rulings from the image plus the real OCR engine ----------------------------------------------


def test_rulings_from_image_finds_the_grid():
    img = Image.new("RGB", (400, 300), "white")
    from PIL import ImageDraw

    d = ImageDraw.Draw(img)
    for x in (20, 150, 380):
        d.line((x, 20, x, 280), fill="black", width=2)
    for y in (20, 100, 280):
        d.line((20, y, 380, y), fill="black", width=2)
    d.text((40, 50), "text is not a rule", fill="black")
    segs = rulings_from_image(img, min_length=40)
    horizontal = {round(s[1]) for s in segs if s[1] == s[3] and s[2] - s[0] > 300}
    vertical = {round(s[0]) for s in segs if s[0] == s[2] and s[3] - s[1] > 200}
    assert {20, 100, 280} <= horizontal | {h - 1 for h in horizontal} | {h + 1 for h in horizontal}
    assert {20, 150, 380} <= vertical | {v - 1 for v in vertical} | {v + 1 for v in vertical}
    assert not any(40 <= s[1] <= 70 and s[1] == s[3] for s in segs)  # the text made no rule


def test_scanned_ruled_table_through_the_ocr_engine(tmp_path):
    pdf = tmp_path / "ruled.pdf"
    _ruled_pdf(pdf)
    with pymupdf.open(pdf) as doc:
        pix = doc[0].get_pixmap(dpi=200)
    png = tmp_path / "scan.png"
    pix.save(png)
    page = docvlm.convert(str(png)).pages[0]
    assert page.text_source == "ocr"
    assert len(page.tables) == 1, [e.message for e in page.errors]
    t = page.tables[0]
    assert t.method == "ruled" and (t.n_rows, t.n_cols) == (4, 4)
    g = _grid_texts(t)
    assert g[1][0] == "North" and g[3][3].replace(" ", "") == "1,520"
    assert g[2][1] == ""
    for c in t.cells:
        if c.text:
            assert c.bbox_page_px is not None and c.bbox_pdf_pt is None


# --- VLM output -------------------------------------------------------------------------------------------


def _model_page(tmp_path) -> tuple[PageResult, list]:
    from test_vlm_pipeline import ImagePage, ScriptedVlm

    from docvlm.engines.base import Task
    from docvlm.engines.vlm import TileResponse
    from docvlm.options import make_options
    from docvlm.plan import plan_for_page

    img = Image.new("RGB", (800, 600), "white")
    page = ImagePage(img)
    options = make_options(engine="hf", model="scripted", max_new_tokens=2048)
    plan = plan_for_page(page, options, "qwen2.5", "read")
    tile = plan.tiles[0]
    truth = {"Intro": (100, 40, 200, 60), "Item": (100, 100, 180, 120), "Qty": (300, 100, 350, 120), "Tea": (100, 140, 150, 160),
             "2": (300, 140, 312, 160)}

    def box(name):
        return " ".join(str(int(v)) for v in page_to_model(truth[name], tile, "qwen2.5"))

    table_box = " ".join(str(int(v)) for v in page_to_model((90, 90, 400, 170), tile, "qwen2.5"))
    answer = (
        f'<html><body><p data-bbox="{box("Intro")}">Intro</p>'
        f'<table data-bbox="{table_box}"><tr><th data-bbox="{box("Item")}">Item</th>'
        f'<th data-bbox="{box("Qty")}">Qty</th></tr>'
        f'<tr><td data-bbox="{box("Tea")}">Tea</td><td data-bbox="{box("2")}">2</td></tr>'
        '<tr><td colspan="2">Total &amp; more</td></tr></table></body></html>'
    )
    engine = ScriptedVlm(options, "qwen2.5", lambda req, n: TileResponse(text=answer))
    [result] = engine.process_pages([page], Task())
    return result, [page, truth]


def test_qwen25_html_table_with_data_bbox_comes_back_to_page_pixels(tmp_path):
    result, (source, truth) = _model_page(tmp_path)
    out = FindTables()(result, PageContext(source=source))
    assert len(out.tables) == 1
    t = out.tables[0]
    assert t.method == "model" and (t.n_rows, t.n_cols) == (3, 2)
    assert _grid_texts(t) == [["Item", "Qty"], ["Tea", "2"], ["Total & more", ""]]
    for c in t.cells:
        if c.text in truth:
            assert c.bbox_page_px == pytest.approx(truth[c.text], abs=1.0)
    total = next(c for c in t.cells if c.text.startswith("Total"))
    assert total.col_span == 2
    assert t.bbox_page_px == pytest.approx((90, 90, 400, 170), abs=1.0)
    roles = {line.text: line.role for line in out.lines}
    assert roles["Intro"] != "table"
    assert roles["Tea"] == "table" and roles["Item"] == "table"
    assert all(r == "table" for text, r in roles.items() if "Total" in text)


def test_markdown_table_in_model_output_is_grounded_on_the_page_words():
    from docvlm.datamodel import EncodingPlan, Line, TileOutput, TilePlan, Word

    tile = TilePlan(index=0, kind="page", crop_page_px=(0, 0, 1000, 800), encoded_size=(500, 400), visual_tokens=1)
    plan = EncodingPlan(family="qwen2.5", mode="native", page_size_px=(1000, 800), scale=0.5, tiles=[tile],
                        visual_tokens=1, max_visual_tokens=100, reason="test")
    words = {"Name": (100, 100, 180, 120), "Score": (400, 100, 480, 120), "Ada": (100, 140, 150, 160),
             "97": (400, 140, 430, 160)}
    lines = [Line(text=t, bbox_page_px=b, words=[Word(text=t, bbox_page_px=b)]) for t, b in words.items()]
    md = "Results:\n\n| Name | Score |\n|:-----|------:|\n| Ada | 97 |\n\nThe end."
    page = PageResult(index=0, width_px=1000, height_px=800, dpi=None, status="success", text_source="model",
                      lines=lines, plan=plan, outputs=[TileOutput(tile=0, raw_text=md)])
    out = FindTables()(page, PageContext())
    assert len(out.tables) == 1
    t = out.tables[0]
    assert _grid_texts(t) == [["Name", "Score"], ["Ada", "97"]]
    for c in t.cells:
        assert c.bbox_page_px == pytest.approx(words[c.text])
    assert all(line.role == "table" for line in out.lines)


@pytest.mark.parametrize("raw", [
    "<table><tr><td rowspan='abc' colspan='999999'>x</td><td>y",  # unclosed, silly spans
    "<table data-bbox='1 2 3'><tr><td>a</td></tr></table>",  # a box with three numbers
    "<table><table><tr><td>inner</td></tr></table><tr><td>outer</td></tr></table>",  # nested
    "| a |\n|---|\n",  # header only
    "<table></table>",
])
def test_broken_model_tables_never_raise(raw):
    from docvlm.datamodel import EncodingPlan, TileOutput, TilePlan

    tile = TilePlan(index=0, kind="page", crop_page_px=(0, 0, 100, 100), encoded_size=(100, 100), visual_tokens=1)
    plan = EncodingPlan(family="qwen2.5", mode="native", page_size_px=(100, 100), scale=1.0, tiles=[tile],
                        visual_tokens=1, max_visual_tokens=100, reason="test")
    res = tables_from_outputs(plan, [TileOutput(tile=0, raw_text=raw)], [], dpi=None)
    for t in res.tables:
        assert t.n_rows >= 1 and t.n_cols >= 1
        assert all(c.row + c.row_span <= t.n_rows for c in t.cells)
        render_table_markdown(t)


# --- Markdown ---------------------------------------------------------------------------------------------


def test_markdown_escapes_pipes_and_renders_row_spans_as_html():
    t = Table(bbox_page_px=(0, 0, 10, 10), n_rows=3, n_cols=2, method="ruled", header_rows=1, cells=[
        TableCell(row=0, col=0, text="a|b", header=True), TableCell(row=0, col=1, text="c\nd", header=True),
        TableCell(row=1, col=0, text="x"), TableCell(row=1, col=1, text=""),
        TableCell(row=2, col=0, text="y"), TableCell(row=2, col=1, text="z"),
    ])
    assert render_table_markdown(t) == "| a\\|b | c d |\n|---|---|\n| x |  |\n| y | z |"
    spanned = t.model_copy(update={"cells": [
        TableCell(row=0, col=0, text="<h>", header=True, row_span=2), TableCell(row=0, col=1, text="c"),
        TableCell(row=1, col=1, text="d"), TableCell(row=2, col=0, text="y"), TableCell(row=2, col=1, text="z")]})
    html = render_table_markdown(spanned)
    assert '<th rowspan="2">&lt;h&gt;</th>' in html and html.count("<tr>") == 3


def test_continuation_needs_same_columns_at_the_page_edges():
    def page(i, top, bottom, cols):
        t = Table(bbox_page_px=(10, top, 90, bottom), n_rows=2, n_cols=cols, method="ruled")
        return PageResult(index=i, width_px=100, height_px=100, dpi=None, status="success", tables=[t])

    out = mark_continuations([page(0, 60, 98, 3), page(1, 2, 40, 3), page(2, 2, 40, 4), page(3, 50, 60, 4)])
    assert [p.tables[0].continued for p in out] == [False, True, False, False]


def test_markdown_prints_the_table_once_between_the_text_around_it(tmp_path):
    from docvlm.writers.markdown import render_markdown

    pdf = tmp_path / "unruled.pdf"
    _unruled_pdf(pdf)
    md = render_markdown(_convert(pdf))
    before = md.index("The table below lists")
    table = md.index("| Sample | Mass | Volume | Density |")
    after = md.index("Values were measured twice")
    assert before < table < after
    assert md.count("S-03") == 1  # the table's lines are not printed again as text


def _headed_grid_pdf(path: Path, *, wrapped: bool) -> list[float]:
    """A ruled body of numbers; its header stands above the rules: a group label over three columns, then
    labels wrapped over two tight lines (or one line each). Prose above ends with a full stop."""
    doc = pymupdf.open()
    page = doc.new_page(width=595, height=842)
    page.insert_text((72, 80), "Results of the three plants in the last year are shown below.", fontsize=10)
    widths, heights = [130, 80, 80, 80], [18] * 4
    xs, ys = _grid(page, 72, 144, widths, heights)
    labels = [("Net", "income"), ("Gross", "margin"), ("Total", "assets")]

    def centred(text: str, c: int, y: float) -> None:
        page.insert_text((xs[c] + (widths[c] - pymupdf.get_text_length(text, fontsize=10)) / 2, y), text,
                         fontsize=10)

    group = "Year Ended"
    page.insert_text(((xs[1] + xs[4] - pymupdf.get_text_length(group, fontsize=10)) / 2, 118 if wrapped else 122), group, fontsize=10)
    for c, (top, bottom) in enumerate(labels, start=1):
        if wrapped:
            centred(top, c, 128)
            centred(bottom, c, 139)  # the label's second line, 11 pt below: one cell
        else:
            centred(f"{top} {bottom}", c, 136)
    body = [["Plant A", "1,200", "35.1", "9,870"], ["Plant B", "980", "31.4", "8,120"],
            ["Plant C", "1,450", "38.0", "11,300"], ["Total", "3,630", "34.8", "29,290"]]
    for r, row in enumerate(body):
        for c, text in enumerate(row):
            page.insert_text((xs[c] + 6, ys[r] + 13), text, fontsize=10)
    doc.save(path)
    return xs


@pytest.mark.parametrize("wrapped", [True, False])
def test_header_above_the_rules_joins_the_table_and_wrapped_labels_are_one_cell(tmp_path, wrapped):
    pdf = tmp_path / "headed.pdf"
    _headed_grid_pdf(pdf, wrapped=wrapped)
    page = _convert(pdf).pages[0]
    assert len(page.tables) == 1
    t = page.tables[0]
    g = _grid_texts(t)
    # row 0: the group label over the three number columns; row 1: one cell per wrapped label
    group = [c for c in t.cells if c.text == "Year Ended"]
    assert len(group) == 1 and (group[0].row, group[0].col, group[0].col_span) == (0, 1, 3)
    assert g[1] == ["", "Net income", "Gross margin", "Total assets"]
    assert g[2] == ["Plant A", "1,200", "35.1", "9,870"] and t.n_rows == 6
    assert t.header_rows == 2 and all(c.header == (c.row < 2) for c in t.cells)
    # the header cells are grounded on their words; the prose above stays out of the table
    net = next(c for c in t.cells if c.text == "Net income")
    assert net.bbox_page_px is not None and net.bbox_page_px[3] < t.cells[-1].bbox_page_px[1]
    assert all("Results" not in c.text for c in t.cells)
    md = render_table_markdown(t)
    assert '<th colspan="3">Year Ended</th>' in md and "<th>Net income</th>" in md
    roles = {ln.text: ln.role for ln in page.lines}
    assert roles["Year Ended"] == "table"
    assert roles["Results of the three plants in the last year are shown below."] != "table"
