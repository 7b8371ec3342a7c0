"""Sources: page geometry (rotation, CropBox, EXIF), multi-page TIFF, page selection, input expansion, and
text-layer boxes that land on the rendered ink, on real files (the samples and files built here)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pymupdf
import pytest
from PIL import Image

from docvlm.errors import InputError, UsageError
from docvlm.options import ConvertOptions
from docvlm.sources import (
    SourcePage,
    _is_garbage,
    expand_inputs,
    open_document,
    parse_page_selection,
    sniff_file_type,
)

SAMPLE_FILES = (
    "invoice.pdf",
    "invoice.truth.json",
    "invoice_scan.pdf",
    "receipt_long.jpg",
    "receipt_long.truth.json",
    "two_column.pdf",
    "rotated.pdf",
)


def opts(**kw: object) -> ConvertOptions:
    return ConvertOptions(**kw)  # type: ignore[arg-type]


def assert_words_on_ink(page: SourcePage, *, min_share: float | None = 0.97) -> None:
    """Every word box holds ink, and (almost) all dark ink of the page lies inside some word box."""
    grey = np.asarray(page.render().convert("L"))
    assert grey.shape == (page.height_px, page.width_px)
    ink, dark = grey < 200, grey < 128
    layer = page.text_layer()
    assert layer is not None and layer.words
    covered = np.zeros_like(ink)
    for w in layer.words:
        x0, y0, x1, y1 = w.bbox_page_px
        assert 0 <= x0 < x1 <= page.width_px + 1 and 0 <= y0 < y1 <= page.height_px + 1, w
        sl = (slice(int(np.floor(y0)), int(np.ceil(y1))), slice(int(np.floor(x0)), int(np.ceil(x1))))
        assert ink[sl].sum() > 0, f"no ink under word {w.text!r} at {w.bbox_page_px}"
        covered[sl] = True
    if min_share is None:  # the page has non-text marks
        return
    share = (dark & covered).sum() / dark.sum()
    assert share >= min_share, f"only {share:.3f} of the ink lies inside word boxes"


def make_text_pdf(
    path: Path,
    *,
    rotation: int = 0,
    cropbox: tuple[float, ...] | None = None,
    mediabox: tuple[float, ...] | None = None,
) -> Path:
    doc = pymupdf.open()
    page = doc.new_page(width=400, height=600)
    if mediabox:
        page.set_mediabox(pymupdf.Rect(*mediabox))
    page.insert_text((90, 100), "Hello World", fontsize=20)
    page.insert_text((120, 300), "Middle line 42", fontsize=14)
    page.insert_text((200, 520), "Bottom", fontsize=24, fontname="hebo")
    if cropbox:
        page.set_cropbox(pymupdf.Rect(*cropbox))
    page.set_rotation(rotation)
    doc.save(path)
    doc.close()
    return path


# --- samples ------------------------------------------------------------------------------------------------


def test_samples_are_present_small_and_truthful(samples_dir: Path) -> None:
    total = 0
    for name in SAMPLE_FILES:
        p = samples_dir / name
        assert p.is_file(), f"{p} missing: run python samples/make_samples.py"
        total += p.stat().st_size
    assert total < 2_000_000
    truth = json.loads((samples_dir / "invoice.truth.json").read_text())
    with open_document(samples_dir / "invoice.pdf", opts(dpi=72)) as doc:
        text = " ".join(w.text for w in next(doc.pages()).text_layer().words)
    for key in ("vendor_name", "buyer_name", "invoice_number", "vendor_tax_id"):
        assert truth[key] in text, key
    for key in ("total", "subtotal", "tax_total", "invoice_date", "due_date"):
        assert truth["printed"][key] in text, key
    for item in truth["line_items"]:
        assert item["description"] in text


def test_invoice_geometry_and_font_sizes(samples_dir: Path) -> None:
    with open_document(samples_dir / "invoice.pdf", opts(dpi=150)) as doc:
        assert doc.kind == "pdf" and doc.page_count == 1
        (page,) = list(doc.pages())
        assert (page.width_pt, page.height_pt) == (595.0, 842.0)
        assert abs(page.width_px - 595 * 150 / 72) <= 1 and abs(page.height_px - 842 * 150 / 72) <= 1
        assert page.dpi == 150 and page.rotation == 0
        img = page.render()
        assert img.mode == "RGB" and img.size == (page.width_px, page.height_px)
        layer = page.text_layer()
        sizes: dict[str, float] = {}
        for w in layer.words:
            sizes.setdefault(w.text, w.font_size_pt)  # first occurrence: "Nordlicht" is in the footer too
        assert sizes["INVOICE"] == pytest.approx(24.0)
        assert sizes["Nordlicht"] == pytest.approx(16.0)
        assert layer.garbage_ratio == 0.0 and layer.image_coverage == 0.0
        assert_words_on_ink(page)


def test_info_hashes_the_file(samples_dir: Path) -> None:
    p = samples_dir / "receipt_long.jpg"
    with open_document(p, opts()) as doc:
        info = doc.info("receipts/r.jpg")
    assert info.sha256 == hashlib.sha256(p.read_bytes()).hexdigest()
    assert info.path == "receipts/r.jpg" and info.kind == "image" and info.page_count == 1
    assert info.size_bytes == p.stat().st_size


def test_scan_is_image_only(samples_dir: Path) -> None:
    with open_document(samples_dir / "invoice_scan.pdf", opts(dpi=100)) as doc:
        page = next(doc.pages())
        layer = page.text_layer()
    assert layer.words == () and layer.char_count == 0
    assert layer.image_coverage > 0.95


def test_receipt_photo_geometry(samples_dir: Path) -> None:
    with open_document(samples_dir / "receipt_long.jpg", opts()) as doc:
        (page,) = list(doc.pages())
        assert (page.width_px, page.height_px) == (600, 2200)
        assert page.dpi is None and page.kind == "image" and page.text_layer() is None
        assert page.render().size == (600, 2200)


def test_two_column_words_on_ink(samples_dir: Path) -> None:
    with open_document(samples_dir / "two_column.pdf", opts(dpi=100)) as doc:
        page = next(doc.pages())
        assert_words_on_ink(page)
        xs = [w.bbox_page_px[0] for w in page.text_layer().words if w.text == "column"]
        assert min(xs) < page.width_px / 2 < max(xs)


# --- rotation and CropBox -----------------------------------------------------------------------------------


def test_rotated_sample_is_landscape_with_boxes_on_glyphs(samples_dir: Path) -> None:
    with open_document(samples_dir / "rotated.pdf", opts(dpi=100)) as doc:
        page = next(doc.pages())
        assert page.rotation == 90
        assert (page.width_pt, page.height_pt) == (842.0, 595.0)
        assert page.width_px > page.height_px
        assert_words_on_ink(page, min_share=None)
        # the black bar drawn at unrotated (60..160, 300..340) pt: visible x = 842-340..842-300, y = 60..160
        grey = np.asarray(page.render().convert("L"))
        k = 100 / 72
        assert grey[int(110 * k), int(522 * k)] < 50 and grey[int(110 * k), int(300 * k)] > 200
        words = {w.text: w.bbox_page_px for w in page.text_layer().words}
        x0, y0, x1, y1 = words["ROTATED"]
        assert (y1 - y0) > 2 * (x1 - x0), (
            "a word on a /Rotate 90 page must be tall and thin in the visible frame"
        )
        # /Rotate 90 turns the page clockwise: the top-left text of the unrotated page lands at the top right
        assert x0 > page.width_px * 0.8 and y0 < page.height_px * 0.3


@pytest.mark.parametrize("rotation", [0, 90, 180, 270])
@pytest.mark.parametrize("crop", [None, (30, 60, 370, 560)])
def test_text_layer_lands_on_ink_for_every_rotation_and_cropbox(
    tmp_path: Path, rotation: int, crop: tuple[float, ...] | None
) -> None:
    pdf = make_text_pdf(tmp_path / "t.pdf", rotation=rotation, cropbox=crop)
    with open_document(pdf, opts(dpi=96)) as doc:
        page = next(doc.pages())
        w, h = (340, 500) if crop else (400, 600)
        if rotation in (90, 270):
            w, h = h, w
        assert (page.width_pt, page.height_pt) == (w, h)
        # page_px = pdf_pt * dpi / 72; the pixel count is that size rounded outwards (as MuPDF renders it)
        assert 0 <= page.width_px - w * 96 / 72 < 1 and 0 <= page.height_px - h * 96 / 72 < 1
        assert page.rotation == rotation
        assert_words_on_ink(page)


def test_mediabox_with_offset_origin(tmp_path: Path) -> None:
    pdf = make_text_pdf(
        tmp_path / "m.pdf", mediabox=(0, 0, 400, 600), cropbox=(50, 50, 350, 550), rotation=270
    )
    with open_document(pdf, opts(dpi=72)) as doc:
        page = next(doc.pages())
        assert (page.width_px, page.height_px) == (500, 300)
        assert_words_on_ink(page)


# --- images -------------------------------------------------------------------------------------------------


def marked_image(size: tuple[int, int] = (200, 100)) -> Image.Image:
    """White image with a red block in its top-left corner."""
    img = Image.new("RGB", size, "white")
    img.paste((255, 0, 0), (0, 0, 40, 20))
    return img


@pytest.mark.parametrize(
    ("orientation", "size", "red_at"),
    [
        (1, (200, 100), (5, 5)),
        (3, (200, 100), (195, 95)),
        (6, (100, 200), (95, 5)),  # rotate 90 clockwise: top-left goes to top-right
        (8, (100, 200), (5, 195)),
    ],
)
def test_exif_orientation_is_applied(
    tmp_path: Path, orientation: int, size: tuple[int, int], red_at: tuple[int, int]
) -> None:
    img = marked_image()
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = tmp_path / "photo.jpg"
    img.save(path, format="JPEG", quality=95, exif=exif.tobytes())
    with open_document(path, opts()) as doc:
        (page,) = list(doc.pages())
        assert (page.width_px, page.height_px) == size
        assert page.rotation == {1: 0, 3: 180, 6: 90, 8: 270}[orientation]
        out = page.render()
        assert out.size == size
        r, g, b = out.getpixel(red_at)
        assert r > 200 and g < 80 and b < 80


def test_multipage_tiff(tmp_path: Path) -> None:
    frames = [marked_image((300, 200)), Image.new("L", (150, 250), 200), Image.new("1", (64, 48), 1)]
    path = tmp_path / "scan.tiff"
    frames[0].save(path, save_all=True, append_images=frames[1:], compression="tiff_deflate")
    with open_document(path, opts()) as doc:
        assert doc.page_count == 3
        pages = list(doc.pages())
        assert [(p.index, p.width_px, p.height_px) for p in pages] == [
            (0, 300, 200),
            (1, 150, 250),
            (2, 64, 48),
        ]
        for p in pages:
            img = p.render()
            assert img.mode == "RGB" and img.size == (p.width_px, p.height_px)
    with open_document(path, opts(pages="2-3")) as doc:
        assert [p.index for p in doc.pages()] == [1, 2]
    with open_document(path, opts(max_pages=1)) as doc:
        assert [p.index for p in doc.pages()] == [0]


@pytest.mark.parametrize(
    "fmt,suffix", [("PNG", ".png"), ("WEBP", ".webp"), ("BMP", ".bmp"), ("JPEG", ".jpeg")]
)
def test_image_formats(tmp_path: Path, fmt: str, suffix: str) -> None:
    path = tmp_path / f"img{suffix}"
    marked_image().save(path, format=fmt, **({"lossless": True} if fmt == "WEBP" else {}))
    with open_document(path, opts()) as doc:
        img = next(doc.pages()).render()
    assert img.size == (200, 100) and img.getpixel((5, 5))[0] > 200


def test_transparent_png_renders_on_white(tmp_path: Path) -> None:
    path = tmp_path / "alpha.png"
    img = Image.new("RGBA", (50, 40), (0, 0, 0, 0))
    img.paste((0, 0, 0, 255), (0, 0, 10, 10))
    img.save(path)
    with open_document(path, opts()) as doc:
        out = next(doc.pages()).render()
    assert out.getpixel((30, 30)) == (255, 255, 255) and out.getpixel((2, 2)) == (0, 0, 0)


def test_type_detected_from_bytes_not_extension(tmp_path: Path) -> None:
    path = tmp_path / "actually_png.jpg"
    marked_image().save(path, format="PNG")
    with open_document(path, opts()) as doc:
        assert doc.kind == "image" and doc.format_name == "PNG image"
    pdf_named_png = tmp_path / "doc.png"
    make_text_pdf(tmp_path / "x.pdf").rename(pdf_named_png)
    with open_document(pdf_named_png, opts()) as doc:
        assert doc.kind == "pdf"


def test_sniff_names_common_types() -> None:
    assert sniff_file_type(b"%PDF-1.7\n").kind == "pdf"
    assert sniff_file_type(b"<!DOCTYPE html><html>").name.startswith("HTML")
    assert sniff_file_type(b"PK\x03\x04rest").name.startswith("ZIP")
    assert sniff_file_type(b"GIF89a....").name == "GIF image"
    assert sniff_file_type(b"just some words\n").name == "plain text file"


def test_garbage_characters() -> None:
    assert _is_garbage("\ufffd") and _is_garbage("\ue000") and _is_garbage("\x07")
    assert not any(_is_garbage(c) for c in "aZ9€é,")


# --- page selection and inputs ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "n", "expected"),
    [
        (None, 3, [0, 1, 2]),
        ("", 2, [0, 1]),
        ("1-3,7", 10, [0, 1, 2, 6]),
        ("7, 1-2", 10, [0, 1, 6]),
        ("2-2", 3, [1]),
        ("3-", 5, [2, 3, 4]),
        ("1,1,2", 3, [0, 1]),
        ("2-9", 3, [1, 2]),  # pages beyond the document are left out (and the batch says so)
        ("1,5", 3, [0]),
    ],
)
def test_parse_page_selection(spec: str | None, n: int, expected: list[int]) -> None:
    assert parse_page_selection(spec, n) == expected


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("0", "numbered from 1"),
        ("0-2", "numbered from 1"),
        ("3-1", "reversed"),
        ("a", "cannot read"),
        ("1,,2", "empty item"),
        ("1-2-3", "cannot read"),
        ("-2", "cannot read"),
        ("5", "has 3 page(s)"),
        ("4-9", "has 3 page(s)"),
    ],
)
def test_parse_page_selection_errors(spec: str, message: str) -> None:
    with pytest.raises(UsageError) as err:
        parse_page_selection(spec, 3)
    assert message in str(err.value) and "--pages" in str(err.value)


def test_pages_beyond_document_names_file(tmp_path: Path) -> None:
    pdf = make_text_pdf(tmp_path / "one.pdf")
    with open_document(pdf, opts(pages="2")) as doc, pytest.raises(UsageError) as err:
        list(doc.pages())
    assert "one.pdf" in str(err.value) and "has 1 page(s)" in str(err.value)


def test_expand_inputs(tmp_path: Path) -> None:
    root = tmp_path / "inbox"
    (root / "b" / "deep").mkdir(parents=True)
    (root / ".hidden_dir").mkdir()
    for rel in (
        "a.pdf",
        "b/c.PNG",
        "b/deep/d.tiff",
        "b/notes.txt",
        ".secret.pdf",
        ".hidden_dir/e.pdf",
        "z.jpg",
    ):
        (root / rel).write_bytes(b"x")
    lone = tmp_path / "lone.docx"
    lone.write_bytes(b"PK\x03\x04")
    got = expand_inputs([root, lone])
    assert [f.relpath for f in got] == ["a.pdf", "b/c.PNG", "b/deep/d.tiff", "z.jpg", "lone.docx"]
    assert got[1].path == root / "b" / "c.PNG"
    with pytest.raises(InputError) as err:
        expand_inputs([root, tmp_path / "nope.pdf"])
    assert "nope.pdf" in str(err.value)
