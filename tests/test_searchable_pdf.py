"""Searchable PDF: invisible words land on their boxes (plain, /Rotate 90 and CropBox pages), the rest is kept.

Truth comes from a born-digital page: its words (PyMuPDF) are the boxes, its rendering is the "scan". The
scanned copies are image-only pages; a hand-built result (what a perfect engine would read) is written back
and the new text layer is extracted again. One test runs the real `ocr` engine end to end.
"""

from __future__ import annotations

from pathlib import Path

import pymupdf
import pytest

from docvlm.datamodel import DocumentResult, EngineInfo, Line, PageResult, SourceInfo, Word
from docvlm.errors import OutputError
from docvlm.geometry import pdf_to_page
from docvlm.pipeline import sha256_file
from docvlm.writers.pdf import (
    DEFAULT_IMAGE_DPI,
    SearchablePdfWriter,
    render_searchable_pdf,
    write_searchable_pdf,
)

DPI = 100
PAGE_W, PAGE_H = 300.0, 420.0
CROP_OFFSET = (40.0, 55.0)
TOLERANCE_PT = 1.5
LINES = [
    ((24, 50), 18, "Searchable Invoice 2024"),
    ((24, 100), 11, "Item: widgets x3 @ 4.50"),
    ((24, 130), 9, "Ref. A&B <ok> 'quoted'"),
    ((24, 300), 14, "TOTAL 13.50 EUR"),
]
TITLE_PAGE_TEXT = "Born digital page with a real text layer that must stay untouched"


def _truth_page() -> tuple[pymupdf.Pixmap, list[tuple[str, tuple[float, float, float, float], int]]]:
    """The rendered born-digital page and its words: (text, box in visible points, line number)."""
    doc = pymupdf.open()
    page = doc.new_page(width=PAGE_W, height=PAGE_H)
    for origin, size, text in LINES:
        page.insert_text(origin, text, fontsize=size, fontname="helv")
    words = [(w[4], tuple(w[:4]), w[6] + 100 * w[5]) for w in page.get_text("words")]
    return page.get_pixmap(dpi=DPI), words


def _scanned_pdf(path: Path) -> list[tuple[str, tuple[float, float, float, float], int]]:
    """Pages: 0 plain scan, 1 /Rotate 90 scan, 2 CropBox'd scan, 3 born-digital. Metadata, TOC, links."""
    pix, words = _truth_page()
    doc = pymupdf.open()
    plain = doc.new_page(width=PAGE_W, height=PAGE_H)
    plain.insert_image(plain.rect, pixmap=pix)
    rotated = doc.new_page(width=PAGE_H, height=PAGE_W)  # stored landscape, shown portrait
    rotated.set_rotation(90)
    rotated.insert_image(rotated.rect * rotated.derotation_matrix, pixmap=pix, rotate=90)
    ox, oy = CROP_OFFSET
    cropped = doc.new_page(width=PAGE_W + 2 * ox, height=PAGE_H + 2 * oy)
    visible = pymupdf.Rect(ox, oy, ox + PAGE_W, oy + PAGE_H)
    cropped.insert_image(visible, pixmap=pix)
    cropped.set_cropbox(visible)
    digital = doc.new_page(width=PAGE_W, height=PAGE_H)
    digital.insert_text((30, 60), TITLE_PAGE_TEXT, fontsize=7)
    doc[3].insert_link({"kind": pymupdf.LINK_URI, "from": pymupdf.Rect(30, 50, 200, 62), "uri": "https://example.org/"})
    doc[0].insert_link({"kind": pymupdf.LINK_GOTO, "from": pymupdf.Rect(10, 10, 60, 30), "page": 3,
                       "to": pymupdf.Point(0, 0)})
    doc.set_metadata({"title": "Scan title", "author": "Ada", "subject": "tests", "keywords": "a, b"})
    doc.set_toc([[1, "Plain", 1], [1, "Rotated", 2], [2, "Cropped", 3], [1, "Digital", 4]])
    doc.save(path)
    return words


def _result(path: Path, words, *, text_layer_page: bool = True, page3_source: str = "text_layer") -> DocumentResult:
    """What a perfect engine reads from `_scanned_pdf`: the truth words on pages 0-2, the layer on page 3."""
    pages = []
    for index in range(3):
        by_line: dict[int, list[Word]] = {}
        for text, box, line_no in words:
            by_line.setdefault(line_no, []).append(
                Word(text=text, bbox_page_px=pdf_to_page(box, DPI), bbox_pdf_pt=box, confidence=0.9)
            )
        lines = [
            Line(
                text=" ".join(w.text for w in ws),
                bbox_page_px=_union([w.bbox_page_px for w in ws]),
                bbox_pdf_pt=_union([w.bbox_pdf_pt for w in ws]),
                confidence=0.9,
                words=ws,
            )
            for ws in by_line.values()
        ]
        pages.append(_page(index, lines, "ocr"))
    if text_layer_page:
        box = (30.0, 52.0, 230.0, 62.0)
        line = Line(text=TITLE_PAGE_TEXT, bbox_page_px=pdf_to_page(box, DPI), bbox_pdf_pt=box, confidence=1.0)
        pages.append(_page(3, [line], page3_source))
    return DocumentResult(
        docvlm_version="test",
        status="success",
        source=SourceInfo(path=path.name, sha256=sha256_file(path), kind="pdf", page_count=4),
        engine=EngineInfo(name="scripted"),
        options_digest="0",
        pages=pages,
    )


def _page(index: int, lines: list[Line], source: str) -> PageResult:
    return PageResult(
        index=index,
        width_px=round(PAGE_W * DPI / 72),
        height_px=round(PAGE_H * DPI / 72),
        dpi=DPI,
        width_pt=PAGE_W,
        height_pt=PAGE_H,
        rotation=90 if index == 1 else 0,
        status="success",
        text_source=source,
        lines=lines,
    )


def _union(boxes):
    return (min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes))


def visible_words(page: pymupdf.Page) -> list[tuple[str, tuple[float, float, float, float]]]:
    """Words of a page's text layer in visible-page points (PyMuPDF reports them unrotated)."""
    out = []
    for w in page.get_text("words", sort=True):
        r = pymupdf.Rect(w[:4]) * page.rotation_matrix
        out.append((w[4], (r.x0, r.y0, r.x1, r.y1)))
    return out


def assert_words_match(got, expected, tol: float = TOLERANCE_PT) -> None:
    assert sorted(t for t, _ in got) == sorted(t for t, _ in expected)
    remaining = list(got)
    for text, box in expected:
        cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
        best = min(
            (g for g in remaining if g[0] == text),
            key=lambda g: abs((g[1][0] + g[1][2]) / 2 - cx) + abs((g[1][1] + g[1][3]) / 2 - cy),
        )
        gx, gy = (best[1][0] + best[1][2]) / 2, (best[1][1] + best[1][3]) / 2
        assert abs(gx - cx) <= tol and abs(gy - cy) <= tol, (text, box, best[1])
        # the width is fitted too, so a viewer's selection covers the printed word
        assert abs((best[1][2] - best[1][0]) - (box[2] - box[0])) <= tol, (text, box, best[1])
        remaining.remove(best)


@pytest.fixture()
def scanned(tmp_path: Path):
    path = tmp_path / "scan.pdf"
    words = _scanned_pdf(path)
    return path, words


def test_scan_pages_get_words_on_their_boxes(scanned, tmp_path: Path) -> None:
    path, words = scanned
    out = tmp_path / "out" / "scan.pdf"
    report = write_searchable_pdf(_result(path, words), path, out)
    assert report.pages_with_layer == (0, 1, 2)
    assert report.pages_skipped_text_layer == (3,)
    expected = [(t, b) for t, b, _ in words]
    with pymupdf.open(out) as doc:
        for index in range(3):
            page = doc[index]
            assert_words_match(visible_words(page), expected)
        assert doc[1].rotation == 90
        assert doc[2].cropbox == pymupdf.Rect(*CROP_OFFSET, CROP_OFFSET[0] + PAGE_W, CROP_OFFSET[1] + PAGE_H)


def test_text_is_invisible(scanned, tmp_path: Path) -> None:
    path, words = scanned
    data, _ = render_searchable_pdf(_result(path, words), path)
    with pymupdf.open(path) as before, pymupdf.open(stream=data, filetype="pdf") as after:
        for index in range(3):
            a = before[index].get_pixmap(dpi=50).samples
            b = after[index].get_pixmap(dpi=50).samples
            assert a == b, f"page {index + 1} looks different after adding the text layer"
            assert b" 3 Tr" in after[index].read_contents() or b"\n3 Tr" in after[index].read_contents()


def test_metadata_toc_links_images_and_text_layer_page_preserved(scanned, tmp_path: Path) -> None:
    path, words = scanned
    out = tmp_path / "scan.searchable.pdf"
    write_searchable_pdf(_result(path, words), path, out)
    with pymupdf.open(path) as before, pymupdf.open(out) as after:
        for key in ("title", "author", "subject", "keywords"):
            assert after.metadata[key] == before.metadata[key]
        assert after.get_toc() == before.get_toc()
        for a, b in zip(before, after, strict=True):
            strip = ("xref", "id", "zoom")
            assert [{k: v for k, v in ln.items() if k not in strip} for ln in a.get_links()] == [
                {k: v for k, v in ln.items() if k not in strip} for ln in b.get_links()
            ]
            assert [before.extract_image(i[0])["image"] for i in a.get_images()] == [
                after.extract_image(i[0])["image"] for i in b.get_images()
            ]
        # the page that had its own text layer is byte-for-byte the same content
        assert after[3].read_contents() == before[3].read_contents()
        assert after[3].get_text("words") == before[3].get_text("words")


def test_redo_text_adds_layer_to_text_layer_pages(scanned, tmp_path: Path) -> None:
    path, words = scanned
    data, report = render_searchable_pdf(_result(path, words), path, redo_text=True)
    assert report.pages_with_layer == (0, 1, 2, 3)
    with pymupdf.open(stream=data, filetype="pdf") as doc:
        texts = [w[4] for w in doc[3].get_text("words")]
    # the original layer is kept (never deleted) and ours is added on top
    assert texts.count("untouched") == 2


def test_born_digital_page_read_by_a_vlm_is_not_doubled(scanned, tmp_path: Path) -> None:
    path, words = scanned
    result = _result(path, words, page3_source="model")  # a VLM engine reads pages, not text layers
    data, report = render_searchable_pdf(result, path)
    assert report.pages_skipped_text_layer == (3,)
    with pymupdf.open(stream=data, filetype="pdf") as doc:
        assert [w[4] for w in doc[3].get_text("words")].count("untouched") == 1
    _, report = render_searchable_pdf(result, path, redo_text=True)
    assert report.pages_with_layer == (0, 1, 2, 3)


def test_writer_registry_and_options(scanned, tmp_path: Path) -> None:
    from docvlm.options import make_options
    from docvlm.writers import WRITERS

    path, words = scanned
    writer = WRITERS["pdf"]
    assert writer.suffix == ".pdf"
    configured = writer.with_options(make_options(redo_text=True))
    assert configured.redo_text is True
    out = tmp_path / "reg.pdf"
    configured.write(_result(path, words), str(path), out)
    with pymupdf.open(out) as doc:
        assert [w[4] for w in doc[3].get_text("words")].count("untouched") == 2
    assert not list(tmp_path.glob(".reg.pdf.*")), "the temp file of the atomic write was left behind"


def test_changed_or_missing_source_is_an_output_error(scanned, tmp_path: Path) -> None:
    path, words = scanned
    result = _result(path, words)
    with pytest.raises(OutputError, match="convert it again"):
        render_searchable_pdf(result, _changed_copy(path, tmp_path))
    with pytest.raises(OutputError, match="gone"):
        render_searchable_pdf(result, tmp_path / "missing.pdf")
    with pytest.raises(OutputError, match="no page was read"):
        render_searchable_pdf(result.model_copy(update={"pages": [], "status": "failure"}), path)


def _changed_copy(path: Path, tmp_path: Path) -> Path:
    other = tmp_path / "changed.pdf"
    other.write_bytes(path.read_bytes() + b"\n% changed\n")
    return other


def test_encrypted_input_needs_its_password_and_stays_encrypted(scanned, tmp_path: Path) -> None:
    path, words = scanned
    locked = tmp_path / "locked.pdf"
    with pymupdf.open(path) as doc:
        doc.save(locked, encryption=pymupdf.PDF_ENCRYPT_AES_256, owner_pw="owner", user_pw="user")
    result = _result(path, words).model_copy(update={"source": SourceInfo(
        path=locked.name, sha256=sha256_file(locked), kind="pdf")})
    with pytest.raises(OutputError, match="password"):
        render_searchable_pdf(result, locked)
    data, report = render_searchable_pdf(result, locked, password="user")
    assert report.pages_with_layer == (0, 1, 2)
    with pymupdf.open(stream=data, filetype="pdf") as out:
        assert out.needs_pass, "the output lost the input's encryption"
        assert out.authenticate("user")
        assert_words_match(visible_words(out[0]), [(t, b) for t, b, _ in words])


@pytest.mark.parametrize("rotation", [0, 90, 180, 270])
def test_every_rotation_with_a_cropbox(rotation: int, tmp_path: Path) -> None:
    path = tmp_path / f"rot{rotation}.pdf"
    doc = pymupdf.open()
    page = doc.new_page(width=500, height=700)
    page.set_cropbox(pymupdf.Rect(30, 40, 450, 640))
    page.set_rotation(rotation)
    width_pt, height_pt = page.rect.width, page.rect.height
    doc.save(path)
    texts = [("Left", (20.0, 30.0, 70.0, 44.0)), ("Right", (150.0, 30.0, 200.0, 44.0)),
             ("Bottom", (40.0, height_pt - 60, 130.0, height_pt - 40))]
    words = [Word(text=t, bbox_page_px=pdf_to_page(b, DPI), bbox_pdf_pt=b) for t, b in texts]
    line = Line(text=" ".join(t for t, _ in texts), bbox_page_px=(0, 0, 1, 1), words=words)
    page_result = _page(0, [line], "ocr").model_copy(update={"width_pt": width_pt, "height_pt": height_pt})
    result = DocumentResult(
        docvlm_version="test", status="success",
        source=SourceInfo(path=path.name, sha256=sha256_file(path), kind="pdf"),
        engine=EngineInfo(name="scripted"), options_digest="0", pages=[page_result],
    )
    data, _ = render_searchable_pdf(result, path)
    with pymupdf.open(stream=data, filetype="pdf") as out:
        assert_words_match(visible_words(out[0]), texts)


def test_non_latin_words_use_the_fallback_font(tmp_path: Path) -> None:
    path = tmp_path / "blank.pdf"
    doc = pymupdf.open()
    doc.new_page(width=PAGE_W, height=PAGE_H)
    doc.save(path)
    texts = [("Ж-Привет", (20.0, 20.0, 120.0, 36.0)), ("中文字", (20.0, 60.0, 80.0, 80.0)),
             ("naïve", (20.0, 100.0, 70.0, 112.0)), ("€12", (90.0, 100.0, 120.0, 112.0))]
    words = [Word(text=t, bbox_page_px=pdf_to_page(b, DPI), bbox_pdf_pt=b) for t, b in texts]
    lines = [Line(text=w.text, bbox_page_px=w.bbox_page_px, bbox_pdf_pt=w.bbox_pdf_pt, words=[w]) for w in words]
    result = DocumentResult(
        docvlm_version="test", status="success",
        source=SourceInfo(path="blank.pdf", sha256=sha256_file(path), kind="pdf"),
        engine=EngineInfo(name="scripted"), options_digest="0",
        pages=[_page(0, lines, "model")],
    )
    data, report = render_searchable_pdf(result, path)
    assert report.fallback_font_used and report.words_missing_glyphs == 0
    assert len(data) < 200_000, "the fallback font was embedded whole instead of subset"
    with pymupdf.open(stream=data, filetype="pdf") as out:
        assert_words_match(visible_words(out[0]), texts, tol=2.0)


def test_image_input_becomes_a_pdf(tmp_path: Path) -> None:
    pix, words = _truth_page()
    for dpi_tag, expected_dpi in ((DPI, DPI), (None, DEFAULT_IMAGE_DPI)):
        image_path = tmp_path / f"scan_{dpi_tag}.png"
        if dpi_tag:
            pix.set_dpi(dpi_tag, dpi_tag)
        else:
            pix.set_dpi(72, 72)  # a meaningless tag: the default applies
        pix.save(image_path)
        result_words = [Word(text=t, bbox_page_px=pdf_to_page(b, DPI)) for t, b, _ in words]
        line = Line(text=" ".join(w.text for w in result_words), bbox_page_px=(0, 0, 10, 10), words=result_words)
        page = PageResult(index=0, width_px=pix.width, height_px=pix.height, dpi=None, status="success",
                          text_source="ocr", lines=[line])
        result = DocumentResult(
            docvlm_version="test", status="success",
            source=SourceInfo(path=image_path.name, sha256=sha256_file(image_path), kind="image"),
            engine=EngineInfo(name="scripted"), options_digest="0", pages=[page],
        )
        out = tmp_path / f"scan_{dpi_tag}.pdf"
        SearchablePdfWriter().write(result, image_path, out)
        scale = DPI / expected_dpi
        with pymupdf.open(out) as doc:
            assert doc.page_count == 1
            assert doc[0].rect.width == pytest.approx(pix.width * 72 / expected_dpi, abs=0.01)
            assert len(doc[0].get_images()) == 1
            expected = [(t, tuple(v * scale for v in b)) for t, b, _ in words]
            assert_words_match(visible_words(doc[0]), expected, tol=TOLERANCE_PT * max(1.0, scale))


def test_round_trip_with_the_real_ocr_engine(tmp_path: Path) -> None:
    """Real OCR on an image-only PDF with a /Rotate 90 page and a CropBox'd page -> searchable PDF -> words."""
    from docvlm.options import make_options
    from docvlm.pipeline import convert_document

    path = tmp_path / "scan.pdf"
    _scanned_pdf(path)
    result = convert_document(path, make_options(engine="ocr", dpi=150, pages="2-3"))
    assert result.status == "success", result.errors
    out = tmp_path / "searchable.pdf"
    report = write_searchable_pdf(result, path, out)
    assert report.pages_with_layer == (1, 2)
    with pymupdf.open(out) as doc:
        for page_result in result.pages:
            expected = [(w.text, w.bbox_pdf_pt) for ln in page_result.lines for w in ln.words]
            assert len(expected) >= 8, "the OCR engine read too little for a meaningful round trip"
            assert_words_match(visible_words(doc[page_result.index]), expected, tol=2.0)
        # and the scan is now searchable for what was printed
        for index in (1, 2):
            assert doc[index].search_for("TOTAL"), f"page {index + 1} not searchable"
