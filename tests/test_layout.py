"""The layout stage on self-made documents: furniture, reading order, headings, text repair, every engine.

PDFs are made here with PyMuPDF (`insert_text`), a scan by rendering one of them to PNG and reading it with the
real `ocr` engine (RapidOCR), and the VLM path with a scripted model that prints Qwen2.5-VL JSON boxes.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path

import pymupdf
import pytest

from docvlm.datamodel import DocumentResult, Line, PageResult
from docvlm.layout import PAGE_PROCESSORS, PageContext, apply_page_layout
from docvlm.layout.base import run_page_processors
from docvlm.layout.furniture import is_page_number
from docvlm.layout.text_repair import RepairText, repair_text
from docvlm.options import make_options
from docvlm.pipeline import convert_document
from docvlm.writers import render_markdown, render_page_markdown

WORDS = ("layout readers expect paragraphs columns and tables to come out in the order a person reads "
         "them without headers footers or page numbers mixed into the text of the body").split()


def _prose(n_lines: int, words_per_line: int = 9, seed: int = 0) -> list[str]:
    out = []
    k = seed
    for _ in range(n_lines):
        out.append(" ".join(WORDS[(k + j) % len(WORDS)] for j in range(words_per_line)))
        k += words_per_line
    return out


def _texts(page: PageResult, role: str) -> list[str]:
    return [ln.text for ln in page.lines if ln.role == role]


# --- furniture across pages -------------------------------------------------------------------------------


def _report_pdf(path: Path, pages: int = 5) -> Path:
    doc = pymupdf.open()
    for p in range(pages):
        page = doc.new_page(width=595, height=842)
        if p > 0:  # the title page has no running header: the first-page exception
            page.insert_text((72, 40), "ACME Annual Report 2024", fontsize=8)
            page.insert_text((430, 40), "Confidential", fontsize=8)
        y = 120
        if p == 0:
            page.insert_text((72, 100), "Annual Report", fontsize=24, fontname="hebo")
            y = 160
        page.insert_text((72, y), f"Section {p + 1}: Results", fontsize=14, fontname="hebo")
        y += 30
        for line in _prose(20, seed=p * 7):
            page.insert_text((72, y), line, fontsize=10)
            y += 14
        page.insert_text((280, 810), f"Page {p + 1} of {pages}", fontsize=8)
    doc.save(path)
    return path


def test_running_headers_footers_and_page_numbers_across_pages(tmp_path: Path) -> None:
    pdf = _report_pdf(tmp_path / "report.pdf")
    result = convert_document(pdf, make_options())
    assert result.status == "success", [e.message for p in result.pages for e in p.errors]
    for page in result.pages:
        assert _texts(page, "page_number") == [f"Page {page.index + 1} of 5"]
        headers = _texts(page, "header")
        assert headers == ([] if page.index == 0 else ["ACME Annual Report 2024", "Confidential"])
        assert all(ln.role in ("body", "heading") for ln in page.lines if ln.role not in
                   ("header", "page_number"))
    md = render_markdown(result)
    assert "ACME Annual Report" not in md and "Page 3 of 5" not in md
    assert "# Annual Report" in md and "## Section 2: Results" in md
    kept = render_markdown(result, keep_furniture=True)
    assert "ACME Annual Report 2024" in kept and "Page 3 of 5" in kept
    # the JSON keeps every line with its role
    again = DocumentResult.model_validate_json(result.model_dump_json())
    assert sum(1 for p in again.pages for ln in p.lines if ln.role == "page_number") == 5


def test_keep_furniture_through_the_cli(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from docvlm.cli import main

    pdf = _report_pdf(tmp_path / "in" / "report.pdf") if (tmp_path / "in").mkdir() is None else None
    out = tmp_path / "out"
    runner = CliRunner()
    res = runner.invoke(main, ["convert", str(pdf), "-o", str(out), "--format", "md"])
    assert res.exit_code == 0, res.output
    md = next(out.rglob("*.md")).read_text()
    assert "Page 2 of 5" not in md
    res = runner.invoke(main, ["convert", str(pdf), "-o", str(tmp_path / "out2"), "--format", "md",
                               "--keep-furniture"])
    assert res.exit_code == 0, res.output
    assert "Page 2 of 5" in next((tmp_path / "out2").rglob("*.md")).read_text()


@pytest.mark.parametrize(
    ("text", "expected"),
    [("12", True), ("- 12 -", True), ("Page 3 of 9", True), ("xiv", True), ("p. 7", True),
     ("12 apples", False), ("Total 12.50", False), ("", False), ("2024 annual results", False)],
)
def test_page_number_patterns(text: str, expected: bool) -> None:
    assert is_page_number(text) is expected


def test_single_page_banner_and_page_number_without_repetition(tmp_path: Path) -> None:
    """A one-page PDF: a journal banner at the top edge and a page number below the text are furniture."""
    doc = pymupdf.open()
    page = doc.new_page(width=595, height=842)
    page.insert_text((72, 30), "Downloaded from https://example.org/journal on 3 May 2021", fontsize=7)
    page.insert_text((72, 44), "Journal of Layout Studies, Vol. 12, No. 3", fontsize=7)
    y = 100
    for line in _prose(30):
        page.insert_text((72, y), line, fontsize=10)
        y += 14
    page.insert_text((290, 640), "17", fontsize=9)  # the text ends high on the page: no fixed bottom zone
    doc.save(tmp_path / "one.pdf")
    [page_result] = convert_document(tmp_path / "one.pdf", make_options()).pages
    assert _texts(page_result, "header") == [
        "Downloaded from https://example.org/journal on 3 May 2021", "Journal of Layout Studies, Vol. 12, No. 3"]
    assert _texts(page_result, "page_number") == ["17"]
    md = render_page_markdown(page_result)
    assert "Downloaded" not in md and "\n17" not in md and WORDS[0] in md


def test_page_of_one_text_row_has_no_layout_error(tmp_path: Path) -> None:
    """Furniture rules that compare the last row with the one above it leave a one-row page alone."""
    doc = pymupdf.open()
    page = doc.new_page(width=595, height=842)
    page.insert_text((72, 400), "Only one row of text on this page", fontsize=10)
    page.insert_text((400, 400), "42", fontsize=10)
    doc.save(tmp_path / "row.pdf")
    [page_result] = convert_document(tmp_path / "row.pdf", make_options()).pages
    assert not [e for e in page_result.errors if e.code == "layout"], page_result.errors
    assert "Only one row of text" in render_page_markdown(page_result)


# --- reading order: two columns with a sidebar ------------------------------------------------------------


def _two_column_sidebar_pdf(path: Path) -> Path:
    doc = pymupdf.open()
    page = doc.new_page(width=842, height=792)
    page.insert_text((60, 60), "Columns and a margin note", fontsize=18, fontname="hebo")
    left = _prose(24, 7, seed=1)
    right = _prose(24, 7, seed=50)
    y = 110
    for k, (a, b) in enumerate(zip(left, right, strict=True)):
        # the left column wraps around a margin note in lines 8-15: its lines start right of the note
        x = 170 if 8 <= k < 16 else 60
        text = f"L{k:02d} " + (" ".join(a.split()[:5]) if x == 170 else a)
        assert pymupdf.get_text_length(text, fontsize=9) + x < 400, text  # a clear gutter before x=440
        page.insert_text((x, y), text, fontsize=9)
        page.insert_text((440, y), f"R{k:02d} " + b, fontsize=9)
        y += 12
    y = 110 + 8 * 12 + 5  # the note sits between the lines, not on them (as in real layouts)
    for k, note in enumerate(["Note: sidebar", "text set in", "the margin of", "the left column", "ends here"]):
        page.insert_text((60, y), f"N{k} {note}", fontsize=7)
        y += 17
    doc.save(path)
    return path


def test_two_columns_with_a_sidebar_read_in_order(tmp_path: Path) -> None:
    result = convert_document(_two_column_sidebar_pdf(tmp_path / "cols.pdf"), make_options())
    [page] = result.pages
    order = [ln.text.split()[0] for ln in page.lines if ln.text[:1] in "LRN" and ln.text[1:3].strip().isdigit()]
    lefts = [t for t in order if t.startswith("L")]
    assert lefts == [f"L{k:02d}" for k in range(24)]
    # the left column is read through, the note is not interleaved with it, the right column follows
    assert order.index("L23") < order.index("R00")
    notes = [i for i, t in enumerate(order) if t.startswith("N")]
    assert notes == list(range(notes[0], notes[0] + 5)), order
    assert not (order.index("L08") < notes[0] < order.index("L15"))
    assert {ln.role for ln in page.lines if ln.text.startswith("N")} == {"margin"}
    assert not page.errors
    md = render_page_markdown(page)
    assert md.startswith("# Columns and a margin note")
    # blocks: every line of a paragraph carries the same block index, blocks increase in reading order
    blocks = [ln.block for ln in page.lines]
    assert blocks == sorted(blocks)


def test_overlapping_scanned_lines_stay_separate_rows() -> None:
    """OCR boxes of consecutive lines that overlap by a few pixels are two rows, read top to bottom."""
    from docvlm.layout.reading_order import order_page

    lines = []
    for k in range(6):
        y = 100 + 18 * k  # 22 px tall boxes every 18 px: 4 px overlap
        lines.append(Line(text=f"row{k} left part of the line", bbox_page_px=(100, y, 600, y + 22)))
    page = PageResult(index=0, width_px=800, height_px=1000, dpi=None, status="success", lines=lines[::-1])
    ordered = order_page(page)
    assert [ln.text[:4] for ln in ordered.lines] == [f"row{k}" for k in range(6)]


def test_drop_cap_is_joined_to_its_word() -> None:
    from docvlm.layout.reading_order import order_page

    lines = [Line(text="T", bbox_page_px=(100, 100, 140, 160))]
    lines += [Line(text=t, bbox_page_px=(145, 100 + 22 * k, 700, 120 + 22 * k))
              for k, t in enumerate(["he first line of the story", "goes on here", "and ends there."])]
    page = PageResult(index=0, width_px=800, height_px=1000, dpi=None, status="success", lines=lines)
    md = render_page_markdown(order_page(page))
    assert md.startswith("The first line of the story")


def test_captions_and_footnotes() -> None:
    from docvlm.layout.reading_order import order_page

    lines = [Line(text=t, bbox_page_px=(100, 100 + 22 * k, 700, 120 + 22 * k))
             for k, t in enumerate(["Body text one", "Body text two", "Figure 3: a caption right below",
                                    "more body text"])]
    lines.append(Line(text="1 A footnote.", bbox_page_px=(100, 900, 400, 915), role="footnote"))
    lines.insert(0, lines.pop())  # the engine listed the footnote first
    page = order_page(PageResult(index=0, width_px=800, height_px=1000, dpi=None, status="success",
                                 lines=lines))
    assert [ln.text for ln in page.lines][-1] == "1 A footnote."
    by_text = {ln.text: ln.block for ln in page.lines}
    assert by_text["Figure 3: a caption right below"] != by_text["Body text two"]
    assert {ln.text: ln.role for ln in page.lines}["Figure 3: a caption right below"] == "caption"


# --- headings ---------------------------------------------------------------------------------------------


def test_headings_from_font_size_and_weight(tmp_path: Path) -> None:
    doc = pymupdf.open()
    page = doc.new_page(width=595, height=842)
    page.insert_text((72, 80), "A Study of Headings", fontsize=22, fontname="hebo")
    y = 130
    for title, size, font in (("1 Introduction", 15, "hebo"), ("1.1 Background", 12, "hebo"),
                              ("Run-in bold label", 10, "hebo")):
        page.insert_text((72, y), title, fontsize=size, fontname=font)
        y += size + 8
        for line in _prose(4, seed=y):
            page.insert_text((72, y), line, fontsize=10)
            y += 13
        y += 14
    doc.save(tmp_path / "h.pdf")
    [p] = convert_document(tmp_path / "h.pdf", make_options()).pages
    levels = {ln.text: ln.heading_level for ln in p.lines if ln.role == "heading"}
    assert levels == {"A Study of Headings": 1, "1 Introduction": 2, "1.1 Background": 3,
                      "Run-in bold label": 4}
    md = render_page_markdown(p)
    assert "# A Study of Headings\n" in md and "\n## 1 Introduction\n" in md and "\n### 1.1 Background\n" in md
    assert all(ln.role == "body" for ln in p.lines if ln.role != "heading")


# --- text repair ------------------------------------------------------------------------------------------


def test_repair_text_rules() -> None:
    assert repair_text("J´an Min´aˇc") == "Ján Mináč"
    assert repair_text("Schr¨odinger and Erd˝os") == "Schrödinger and Erdős"
    assert repair_text("eﬃcient ﬁle ﬂow") == "efficient file flow"
    assert repair_text("‘‘quoted’’") == "“quoted”"
    assert repair_text("e\u0301te\u0301") == "été"  # NFC
    assert repair_text("x^2 and a`b stay") == "x^2 and a`b stay"
    assert repair_text("plain ascii") == "plain ascii"


def test_repair_keeps_the_raw_text() -> None:
    line = Line(text="Min´aˇc eﬃcient", bbox_page_px=(0, 0, 100, 10))
    page = PageResult(index=0, width_px=200, height_px=200, dpi=None, status="success", lines=[line])
    [out] = RepairText()(page, PageContext()).lines
    assert out.text == "Mináč efficient" and out.raw_text == "Min´aˇc eﬃcient"


def test_text_layer_spaces_accents_and_raw_text(tmp_path: Path) -> None:
    """Words set without space characters but with visible gaps get their spaces back; accents join."""
    doc = pymupdf.open()
    page = doc.new_page(width=595, height=842)
    x, y, size = 72.0, 100.0, 10.0
    for word in ["Table", "1", "Composition", "of", "the", "pretraining", "data"]:
        page.insert_text((x, y), word, fontsize=size, fontname="helv")
        x += pymupdf.get_text_length(word, fontname="helv", fontsize=size) + 0.14 * size  # no space glyph
    page.insert_text((72, 130), "J\u00b4an Min\u00b4a\u02c7c wrote it", fontsize=10, fontname="tiro")
    doc.save(tmp_path / "glued.pdf")
    [p] = convert_document(tmp_path / "glued.pdf", make_options()).pages
    texts = [ln.text for ln in p.lines]
    assert "Table 1 Composition of the pretraining data" in texts, texts
    glued = next(ln for ln in p.lines if ln.text.startswith("Table"))
    assert glued.raw_text == "Table1Compositionofthepretrainingdata"
    assert any("Ján Mináč" in t for t in texts) or any("Ján Min" in t for t in texts), texts
    # words carry boxes of their own after the split
    words = [w.text for w in glued.words]
    assert words[:3] == ["Table", "1", "Composition"]
    assert glued.words[1].bbox_page_px[0] > glued.words[0].bbox_page_px[2]


def test_normal_words_are_not_split(tmp_path: Path) -> None:
    doc = pymupdf.open()
    page = doc.new_page(width=595, height=842)
    page.insert_text((72, 100), "internationalization characterizations incomprehensibilities", fontsize=10)
    doc.save(tmp_path / "long.pdf")
    [p] = convert_document(tmp_path / "long.pdf", make_options()).pages
    assert [ln.text for ln in p.lines] == ["internationalization characterizations incomprehensibilities"]
    assert p.lines[0].raw_text is None


# --- every engine: a self-made scan through the real OCR engine, a scripted VLM ---------------------------


@pytest.fixture(scope="module")
def scan_png(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("scan")
    doc = pymupdf.open()
    page = doc.new_page(width=420, height=595)  # A5
    page.insert_text((40, 30), "THE FIELD JOURNAL 7", fontsize=7)
    page.insert_text((40, 80), "Harvest Notes", fontsize=20, fontname="hebo")
    y = 115
    for line in ("The barley came in early this year and", "the yields were higher than the year", "before in every field we measured.",
                 "Rain in May helped the young plants", "and the dry summer kept the grain", "clean until the harvest began."):
        page.insert_text((40, y), line, fontsize=11)
        y += 16
    page.insert_text((205, 570), "7", fontsize=9)
    pix = page.get_pixmap(dpi=150)
    png = folder / "scan.png"
    pix.save(png)
    return png


def test_scan_through_the_ocr_engine_gets_headings_furniture_and_order(scan_png: Path) -> None:
    result = convert_document(scan_png, make_options(engine="ocr"))
    [p] = result.pages
    assert p.text_source == "ocr"
    heading = [ln.text for ln in p.lines if ln.role == "heading"]
    assert heading == ["Harvest Notes"], [(ln.text, ln.role) for ln in p.lines]
    assert _texts(p, "page_number") == ["7"]
    assert [ln.role for ln in p.lines if "FIELD" in ln.text] == ["header"]
    md = render_page_markdown(p)
    assert md.startswith("# Harvest Notes")
    assert md.index("The barley came") < md.index("Rain in May") < md.index("clean until the harvest")
    assert "FIELD JOURNAL" not in md


class _PerfectVlm:
    """A VLM engine whose model prints Qwen2.5-VL JSON boxes of known page-pixel lines (the whole page tile)."""

    def __new__(cls, options, lines: Sequence[tuple[str, tuple[float, float, float, float]]], page_size):
        from docvlm.engines.vlm import TileResponse, VlmEngine

        class Engine(VlmEngine):
            name = "scripted-vlm"

            def generate_batch(self, requests):
                out = []
                for req in requests:
                    sx, sy = req.image.width / page_size[0], req.image.height / page_size[1]
                    items = [{"bbox_2d": [round(b[0] * sx), round(b[1] * sy), round(b[2] * sx), round(b[3] * sy)],
                              "text_content": t} for t, b in lines]
                    out.append(TileResponse(text=json.dumps(items)))
                return out

            def info(self):
                from docvlm.datamodel import EngineInfo

                return EngineInfo(name=self.name, family=self.family)

        return Engine(options, family="qwen2.5")


def test_vlm_output_gets_the_same_layout_stage(tmp_path: Path) -> None:
    from PIL import Image

    w, h = 700, 900
    png = tmp_path / "vlm_page.png"
    Image.new("RGB", (w, h), "white").save(png)
    lines = [("Quarterly Letter", (60, 60, 420, 100))]  # twice the body's line height: a heading
    y = 140
    for k in range(8):
        lines.append((f"left {k} body text of the first column", (60, y, 330, y + 18)))
        lines.append((f"right {k} body text of the second column", (370, y, 640, y + 18)))
        y += 24
    lines.append(("12", (340, 860, 360, 876)))
    options = make_options(engine="hf", model="scripted", max_new_tokens=512)
    engine = _PerfectVlm(options, lines[::-1], (w, h))
    result = convert_document(png, options, engine=engine)
    [p] = result.pages
    if p.plan is not None and len(p.plan.tiles) != 1:
        pytest.skip("the planner tiled this page; the scripted model prints whole-page boxes only")
    assert p.status == "success", p.errors
    assert [ln.text for ln in p.lines if ln.role == "heading"] == ["Quarterly Letter"]
    assert _texts(p, "page_number") == ["12"]
    order = [ln.text.split()[0] + ln.text.split()[1] for ln in p.lines if ln.role == "body"]
    assert order == [f"left{k}" for k in range(8)] + [f"right{k}" for k in range(8)]
    md = render_page_markdown(p)
    assert md.startswith("# Quarterly Letter") and "\n12" not in md


# --- bad input: one big table, 5,000 tiny cells, a failing step ------------------------------------------


def test_page_of_5000_tiny_cells_converts_in_bounded_time(tmp_path: Path) -> None:
    doc = pymupdf.open()
    page = doc.new_page(width=842, height=1191)  # A3
    rows, cols = 100, 50
    cw, ch = 800 / cols, 1150 / rows
    for r in range(rows + 1):
        page.draw_line((20, 20 + r * ch), (20 + cols * cw, 20 + r * ch), width=0.2)
    for c in range(cols + 1):
        page.draw_line((20 + c * cw, 20), (20 + c * cw, 20 + rows * ch), width=0.2)
    for r in range(rows):
        for c in range(cols):
            page.insert_text((21 + c * cw, 19 + (r + 1) * ch), f"{(r * cols + c) % 97}", fontsize=5)
    doc.save(tmp_path / "grid.pdf")
    started = time.perf_counter()
    result = convert_document(tmp_path / "grid.pdf", make_options(dpi=100), display_path="grid.pdf")
    elapsed = time.perf_counter() - started
    [p] = result.pages
    assert p.status in ("success", "partial")
    # every word the text layer had is still in the result, table or not
    assert sum(len(ln.words) for ln in p.lines) == rows * cols
    DocumentResult.model_validate_json(result.model_dump_json())
    render_markdown(result)
    assert elapsed < 120  # bounded, not a speed goal: a quadratic step would take far longer on this page


def test_a_failing_layout_step_keeps_the_page_text(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import docvlm.layout as layout

    class Broken:
        name = "broken_step"

        def __call__(self, page: PageResult, ctx: PageContext) -> PageResult:
            raise ZeroDivisionError("a bug in a layout step")

    monkeypatch.setattr(layout, "PAGE_PROCESSORS", [*PAGE_PROCESSORS[:2], Broken(), *PAGE_PROCESSORS[2:]])
    pdf = _report_pdf(tmp_path / "r.pdf", pages=2)
    result = convert_document(pdf, make_options(), display_path="in/r.pdf")
    for p in result.pages:
        assert p.status == "partial"
        [err] = [e for e in p.errors if e.code == "layout"]
        assert "in/r.pdf (page" in err.message and "broken_step" in err.message
        assert any("Results" in ln.text for ln in p.lines)
        assert any(ln.role == "heading" for ln in p.lines)  # the steps after the broken one still ran


def test_layout_off_leaves_lines_as_the_engine_gave_them(tmp_path: Path) -> None:
    pdf = _report_pdf(tmp_path / "r.pdf", pages=2)
    on = convert_document(pdf, make_options())
    off = convert_document(pdf, make_options(layout=False))
    assert all(ln.role is None and ln.block is None for p in off.pages for ln in p.lines)
    assert sorted(ln.text for ln in off.pages[1].lines) == sorted(ln.text for ln in on.pages[1].lines)
    # the Markdown writer orders a result without layout by itself (furniture unknown: kept)
    assert "Section 2: Results" in render_markdown(off)


def test_run_page_processors_on_a_failed_page_is_a_no_op() -> None:
    page = PageResult(index=0, width_px=10, height_px=10, dpi=None, status="failure")
    assert run_page_processors(page, PageContext(), PAGE_PROCESSORS) is page
    assert apply_page_layout(page, PageContext()) is page


def test_ocr_headings_use_word_heights_so_a_skewed_long_line_is_not_a_heading() -> None:
    """On a tilted scan a long line's upright box is tall though its words are body-sized; a short line whose
    words are tall is still a heading."""
    from docvlm.datamodel import Word
    from docvlm.layout.headings import heading_levels

    def ocr_line(text: str, x0: float, y0: float, word_h: float, box_h: float, block: int) -> Line:
        words, x = [], x0
        for w in text.split():
            words.append(Word(text=w, bbox_page_px=(x, y0, x + 12 * len(w), y0 + word_h)))
            x += 12 * len(w) + 10
        return Line(text=text, bbox_page_px=(x0, y0, x, y0 + box_h), words=words, block=block)

    lines = [ocr_line("Quarterly Report", 100, 40, 48, 50, 0)]
    lines += [ocr_line(f"body line {i} of ordinary text here", 100, 120 + 40 * i, 30, 32, 1) for i in range(8)]
    lines.append(ocr_line("Please pay within thirty days quoting the invoice number", 100, 500, 30, 52, 2))
    page = PageResult(index=0, width_px=1000, height_px=800, dpi=None, status="success", text_source="ocr",
                      lines=lines)
    levels = heading_levels(page)
    assert levels == {0: 1}, levels
