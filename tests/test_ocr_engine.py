"""The embedded `ocr` engine: real RapidOCR on rendered text with known boxes, the text-layer path, fallbacks."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass, field
from difflib import SequenceMatcher

import numpy as np
import pymupdf
import pytest
from PIL import Image, ImageDraw, ImageFont

from docvlm.datamodel import Line, Word
from docvlm.engines import ocr as ocr_mod
from docvlm.engines.base import Task
from docvlm.engines.ocr import (
    OcrEngine,
    fuzzy_contains,
    ink_rows,
    sort_reading_order,
    text_layer_is_usable,
    tighten_to_ink,
)
from docvlm.errors import PageTooLargeError
from docvlm.geometry import iou, pdf_to_page
from docvlm.options import ConvertOptions
from docvlm.sources import TextLayer, TextWord

TRUTH_LINES = ("Invoice number 2024-0117", "Total due EUR 1,234.56", "Pay before 31 March")


@dataclass
class StandInPage:
    """A page with the SourcePage interface (render, text_layer, geometry), independent of docvlm.sources."""

    image: Image.Image | None
    layer: TextLayer | None = None
    path: str = "stand-in.pdf"
    index: int = 0
    dpi: float | None = None
    width_pt: float | None = None
    height_pt: float | None = None
    rotation: int = 0
    renders: list[int] = field(default_factory=list)
    width_px: int = 0
    height_px: int = 0

    def __post_init__(self) -> None:
        if self.image is not None:
            self.width_px, self.height_px = self.image.size

    def render(self) -> Image.Image:
        self.renders.append(1)
        if self.image is None:
            raise PageTooLargeError(
                "page would be 30000 x 40000 px, above --max-page-pixels", path=self.path, page=self.index
            )
        return self.image

    def text_layer(self) -> TextLayer | None:
        return self.layer


def _text_image() -> tuple[Image.Image, list[tuple[str, tuple[float, float, float, float]]]]:
    """A white page with three lines of 36-px text at known places; truth boxes from Pillow's own metrics."""
    image = Image.new("RGB", (900, 420), "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=36)
    truth = []
    for i, text in enumerate(TRUTH_LINES):
        xy = (60 + 40 * i, 60 + 110 * i)
        draw.text(xy, text, fill="black", font=font)
        truth.append((text, tuple(float(v) for v in draw.textbbox(xy, text, font=font))))
    return image, truth


@pytest.fixture(scope="module")
def text_image():
    return _text_image()


@pytest.fixture(scope="module")
def ocr_result(text_image):
    image, _ = text_image
    page = StandInPage(image, path="known.png")
    return OcrEngine(ConvertOptions()).process_pages([page], Task())[0]


def _similar(a: str, b: str) -> float:
    return SequenceMatcher(None, a.lower(), b.lower()).ratio()


def test_rapidocr_finds_known_lines_at_known_boxes(text_image, ocr_result):
    _, truth = text_image
    assert ocr_result.status == "success"
    assert ocr_result.text_source == "ocr"
    assert len(ocr_result.lines) == len(truth)
    for (text, box), line in zip(truth, ocr_result.lines, strict=True):  # also checks reading order
        assert _similar(line.text, text) >= 0.85, (line.text, text)
        assert iou(line.bbox_page_px, box) > 0.5, (line.bbox_page_px, box)
        assert 0 < line.confidence <= 1


def test_ocr_boxes_and_words_lie_inside_the_page_and_line(ocr_result):
    w, h = ocr_result.width_px, ocr_result.height_px
    for line in ocr_result.lines:
        x0, y0, x1, y1 = line.bbox_page_px
        assert 0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h
        assert line.words, line.text
        assert " ".join(wd.text for wd in line.words).replace(" ", "") == line.text.replace(" ", "")
        for word in line.words:
            wx0, wy0, wx1, wy1 = word.bbox_page_px
            assert wx0 < wx1 and wy0 < wy1
            assert x0 - 2 <= wx0 and wx1 <= x1 + 2 and y0 - 2 <= wy0 and wy1 <= y1 + 2
        xs = [wd.bbox_page_px[0] for wd in line.words]
        assert xs == sorted(xs)


def _pdf_page_layer(tmp_path, dpi: float = 144.0) -> tuple[TextLayer, list[tuple[str, tuple]], float, float]:
    """A born-digital PDF made with PyMuPDF; its words (in page pixels at `dpi`) are the truth."""
    doc = pymupdf.open()
    page = doc.new_page(width=400, height=300)
    page.insert_text((40, 60), "Order 7781 shipped", fontsize=14)
    page.insert_text((40, 120), "Amount 99.90 EUR", fontsize=11)
    path = tmp_path / "digital.pdf"
    doc.save(path)
    doc.close()
    doc = pymupdf.open(path)
    words = []
    for x0, y0, x1, y1, text, block, line, _ in doc[0].get_text("words"):
        words.append(TextWord(text, pdf_to_page((x0, y0, x1, y1), dpi), 12.0, block, line))
    doc.close()
    layer = TextLayer(tuple(words), sum(len(w.text) for w in words), 0.0, 0.0)
    truth = [(w.text, w.bbox_page_px) for w in words]
    return layer, truth, 400 * dpi / 72, 300 * dpi / 72


def test_text_layer_gives_exact_boxes_without_ocr(tmp_path, monkeypatch):
    layer, truth, w, h = _pdf_page_layer(tmp_path)

    def no_ocr(**_: object):
        raise AssertionError("the OCR model must not be loaded for a page with a usable text layer")

    monkeypatch.setattr(ocr_mod, "load_rapidocr", no_ocr)
    page = StandInPage(None, layer, dpi=144.0, width_px=int(w), height_px=int(h))
    result = OcrEngine(ConvertOptions()).process_pages([page], Task())[0]
    assert result.status == "success" and result.text_source == "text_layer"
    assert page.renders == []  # never rendered
    assert [ln.text for ln in result.lines] == ["Order 7781 shipped", "Amount 99.90 EUR"]
    words = [(wd.text, wd.bbox_page_px) for ln in result.lines for wd in ln.words]
    assert words == truth
    first = result.lines[0]
    assert first.confidence == 1.0
    assert first.bbox_page_px == (
        truth[0][1][0], min(b[1] for _, b in truth[:3]), truth[2][1][2], max(b[3] for _, b in truth[:3])
    )


def test_text_layer_ignored_when_option_says_so(tmp_path, text_image, monkeypatch):
    layer, _, _, _ = _pdf_page_layer(tmp_path)
    image, _ = text_image
    page = StandInPage(image, layer)
    result = OcrEngine(ConvertOptions(text_layer="ignore")).process_pages([page], Task())[0]
    assert result.text_source == "ocr" and page.renders == [1]


def test_garbage_text_layer_falls_back_to_ocr(text_image):
    image, truth = text_image
    garbage = tuple(TextWord("\ufffd\ufffd\x07", (10.0, 10.0, 60.0, 30.0), 12.0, 0, i) for i in range(20))
    layer = TextLayer(garbage, 60, garbage_ratio=1.0, image_coverage=0.0)
    page = StandInPage(image, layer, path="garbage.pdf", dpi=200.0)
    result = OcrEngine(ConvertOptions()).process_pages([page], Task())[0]
    assert result.text_source == "ocr"
    assert page.renders == [1]
    assert _similar(result.lines[0].text, truth[0][0]) >= 0.85


def test_usability_rule():
    word = TextWord("hello", (0.0, 0.0, 10.0, 10.0), 10.0, 0, 0)
    assert text_layer_is_usable(TextLayer((word,) * 5, 25, 0.0, 0.0))
    assert not text_layer_is_usable(None)
    assert not text_layer_is_usable(TextLayer((word,), 5, 0.0, 0.0))  # too little text (a stamp, a page number)
    assert not text_layer_is_usable(TextLayer((word,) * 5, 25, 0.5, 0.0))  # garbage
    assert not text_layer_is_usable(TextLayer((word,) * 5, 25, 0.0, 0.98))  # invisible OCR over a full-page scan


def test_failing_page_is_a_failure_result_not_an_exception(text_image):
    image, _ = text_image
    bad = StandInPage(None, path="huge.pdf", index=3, width_px=30000, height_px=40000)
    good = StandInPage(image, path="huge.pdf", index=4)
    results = OcrEngine(ConvertOptions()).process_pages([bad, good], Task())
    assert [r.status for r in results] == ["failure", "success"]
    err = results[0].errors[0]
    assert err.code == "page_too_large" and err.page == 3
    assert "huge.pdf" in err.message and "page 4" in err.message and "--max-page-pixels" in err.message


def test_ground_returns_matching_words_labelled(text_image):
    image, truth = text_image
    result = OcrEngine(ConvertOptions()).process_pages(
        [StandInPage(image)], Task(kind="ground", query="total due")
    )[0]
    assert len(result.lines) == 1
    line = result.lines[0]
    assert line.label == "total due" and line.text.lower() == "total due"
    line_box = truth[1][1]
    assert line.bbox_page_px[0] >= line_box[0] - 5 and line.bbox_page_px[2] < line_box[2]  # narrowed to words


def test_fuzzy_contains_tolerates_ocr_errors():
    assert fuzzy_contains("TOTAL DUE  EUR 5", "total due") == 1.0
    assert fuzzy_contains("T0TAL DUE EUR 5", "total due") >= 0.8
    assert fuzzy_contains("Subtotal", "invoice date") < 0.8


def test_reading_order_rows_then_left_to_right():
    def line(text, box):
        return Line(text=text, bbox_page_px=box, words=[Word(text=text, bbox_page_px=box)])

    lines = [
        line("right", (300.0, 12.0, 400.0, 32.0)),
        line("below", (10.0, 50.0, 100.0, 70.0)),
        line("left", (10.0, 10.0, 100.0, 30.0)),  # slightly higher than "right": same row
    ]
    assert [ln.text for ln in sort_reading_order(lines)] == ["left", "right", "below"]


def test_boxes_shrink_to_the_ink_but_never_grow():
    gray = np.full((100, 300), 250, dtype=np.uint8)
    gray[40:60, 20:280:3] = 10  # a "text" band, rows 40..59
    line = Line(
        text="ab", bbox_page_px=(10.0, 20.0, 290.0, 80.0), words=[Word(text="ab", bbox_page_px=(10.0, 20.0, 290.0, 80.0))]
    )
    assert ink_rows(gray, line.bbox_page_px) == (40.0, 60.0)
    tight = tighten_to_ink(line, gray)
    x0, y0, x1, y1 = tight.bbox_page_px
    assert (x0, x1) == (10.0, 290.0) and 36.0 <= y0 <= 40.0 and 60.0 <= y1 <= 64.0
    assert tight.words[0].bbox_page_px[1] == y0 and tight.words[0].bbox_page_px[3] == y1
    inverted = 255 - gray  # light text on dark: left as detected
    assert tighten_to_ink(line, inverted) == line
    blank = np.full((100, 300), 250, dtype=np.uint8)
    assert tighten_to_ink(line, blank) == line


@pytest.mark.parametrize("backend", ["openvino", "onnxruntime"])
def test_model_loads_offline_from_the_wheel_without_torch(backend: str):
    """In a fresh process: no socket may connect, RapidOCR reads a line on `backend`, and torch is never
    imported."""
    code = """
import socket, sys
def deny(*a, **k):
    raise RuntimeError("network access attempted")
socket.socket.connect = deny
socket.create_connection = deny
from PIL import Image, ImageDraw, ImageFont
from docvlm.engines.ocr import OcrEngine
from docvlm.options import ConvertOptions
img = Image.new("RGB", (500, 100), "white")
ImageDraw.Draw(img).text((20, 30), "offline 42", fill="black", font=ImageFont.load_default(size=36))
engine = OcrEngine(ConvertOptions(ocr_backend=sys.argv[1]))
lines = engine.ocr_image(img)
assert lines and "offline" in lines[0].text.lower(), lines
assert "backend " + sys.argv[1] in engine.info().detail, engine.info().detail
assert "torch" not in sys.modules, "torch was imported"
print("ok")
"""
    out = subprocess.run([sys.executable, "-c", code, backend], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().endswith("ok")
