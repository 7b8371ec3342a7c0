"""hOCR: well-formed XHTML whose ocr_page / ocr_line / ocrx_word boxes equal the JSON's (rounded outward)."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from pathlib import Path

from docvlm.datamodel import DocumentResult, EngineInfo, Line, PageResult, SourceInfo, Word
from docvlm.writers.hocr import HocrWriter, hocr_box, render_hocr, write_hocr

NS = {"h": "http://www.w3.org/1999/xhtml"}


def _result() -> DocumentResult:
    words = [
        Word(text="Total", bbox_page_px=(10.4, 20.6, 60.2, 40.0), confidence=0.987),
        Word(text="<&>\"'", bbox_page_px=(70.0, 20.0, 110.5, 40.5), confidence=0.5),
        Word(text="12,50€", bbox_page_px=(120.0, 21.0, 180.0, 39.99), confidence=None),
    ]
    line = Line(text="Total <&>\"' 12,50€", bbox_page_px=(10.4, 20.0, 180.0, 40.5), confidence=0.81, words=words)
    bare = Line(text="no word boxes", bbox_page_px=(10.0, 60.0, 140.0, 80.0), confidence=0.7)
    edge = Line(text="edge", bbox_page_px=(190.2, 290.5, 199.7, 299.6),
                words=[Word(text="edge", bbox_page_px=(190.2, 290.5, 199.7, 299.6), confidence=1.0)])
    pages = [
        PageResult(index=0, width_px=200, height_px=300, dpi=150.0, status="success", text_source="ocr",
                   lines=[line, bare, edge]),
        PageResult(index=2, width_px=200, height_px=300, dpi=150.0, status="failure", lines=[]),
    ]
    return DocumentResult(
        docvlm_version="0.1.0", status="partial",
        source=SourceInfo(path='in "dir"/a&b.pdf', sha256="0", kind="pdf"),
        engine=EngineInfo(name="ocr", model="PP-OCRv6"), options_digest="0", pages=pages,
    )


def _bbox(title: str) -> tuple[int, ...]:
    part = next(p for p in title.split(";") if p.strip().startswith("bbox"))
    return tuple(int(v) for v in part.split()[1:])


def _prop(title: str, name: str) -> str | None:
    for part in title.split(";"):
        bits = part.strip().split(maxsplit=1)
        if bits and bits[0] == name:
            return bits[1]
    return None


def test_hocr_parses_and_boxes_equal_the_json(tmp_path: Path) -> None:
    result = _result()
    out = tmp_path / "doc.hocr"
    write_hocr(result, out)
    root = ET.parse(out).getroot()  # well-formed XML, or this raises
    assert root.tag == "{http://www.w3.org/1999/xhtml}html"
    metas = {m.get("name"): m.get("content") for m in root.iterfind(".//h:meta", NS) if m.get("name")}
    assert metas["ocr-system"].startswith("docvlm 0.1.0")
    assert set(metas["ocr-capabilities"].split()) >= {"ocr_page", "ocr_line", "ocrx_word"}

    pages = root.findall(".//h:div[@class='ocr_page']", NS)
    assert len(pages) == 2
    title = pages[0].get("title")
    assert _bbox(title) == (0, 0, 200, 300)
    assert _prop(title, "ppageno") == "0" and _prop(pages[1].get("title"), "ppageno") == "2"
    assert _prop(title, "image") == '"in %22dir%22/a&b.pdf"'  # quotes percent-encoded

    lines = pages[0].findall("h:span[@class='ocr_line']", NS)
    assert len(lines) == 3
    page = result.pages[0]
    for el, line in zip(lines, page.lines, strict=True):
        assert _bbox(el.get("title")) == _outward(line.bbox_page_px, page)
        words = el.findall("h:span[@class='ocrx_word']", NS)
        if line.words:
            assert [w.text for w in words] == [w.text for w in line.words]
            for w_el, word in zip(words, line.words, strict=True):
                assert _bbox(w_el.get("title")) == _outward(word.bbox_page_px, page)
                conf = _prop(w_el.get("title"), "x_wconf")
                assert conf == (None if word.confidence is None else str(round(word.confidence * 100)))
        else:
            assert " ".join(w.text for w in words) == line.text
            boxes = [_bbox(w.get("title")) for w in words]
            assert boxes[0][0] == math.floor(line.bbox_page_px[0]) and boxes[-1][2] == math.ceil(line.bbox_page_px[2])
    assert pages[1].findall(".//h:span", NS) == []


def _outward(box, page: PageResult) -> tuple[int, int, int, int]:
    x0, y0, x1, y1 = box
    return (math.floor(x0), math.floor(y0), min(page.width_px, math.ceil(x1)), min(page.height_px, math.ceil(y1)))


def test_hocr_box_rounds_outward_and_clamps() -> None:
    assert hocr_box((10.9, 20.1, 30.1, 40.9), 100, 100) == (10, 20, 31, 41)
    assert hocr_box((-0.4, 0.0, 100.2, 99.5), 100, 100) == (0, 0, 100, 100)


def test_control_characters_do_not_break_the_xml() -> None:
    result = _result()
    bad = Line(text="a\x00b\x1bc", bbox_page_px=(1, 1, 50, 10),
               words=[Word(text="a\x00b\x1bc", bbox_page_px=(1, 1, 50, 10))])
    page = result.pages[0].model_copy(update={"lines": [bad]})
    root = ET.fromstring(render_hocr(result.model_copy(update={"pages": [page]})).encode())
    assert root.find(".//h:span[@class='ocrx_word']", NS).text == "abc"


def test_registered_as_a_writer(tmp_path: Path) -> None:
    from docvlm.writers import WRITERS

    assert isinstance(WRITERS["hocr"], HocrWriter)
    out = tmp_path / "x.hocr"
    WRITERS["hocr"].write(_result(), None, out)
    ET.parse(out)
