"""OCR on awkward pages, on both backends: turned and mirrored photos, vertical table headers, fax, CMYK,
16-bit and very tall images. Every page is made here from rendered text whose boxes are known, read through
`docvlm.convert` (sources -> engine -> assembled result), and the boxes are checked in the page as given."""

from __future__ import annotations

from difflib import SequenceMatcher
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

import docvlm
from docvlm.engines.ocr import OcrEngine
from docvlm.geometry import ORIENTATIONS, iou, page_to_upright
from docvlm.options import ConvertOptions
from docvlm.orientation import transpose_image

BACKENDS = ("openvino", "onnxruntime")
SLOW = pytest.mark.slow
# Default runs cover every case on the default backend and the cheaper ones on onnxruntime as well; the
# rest of onnxruntime (2-3x slower per page) runs with -m slow.
TURNS = [(o, "openvino") for o in ("rotate_90", "rotate_180", "rotate_270", "flip_lr")] + [
    ("rotate_180", "onnxruntime"), ("flip_lr", "onnxruntime"),
    pytest.param("rotate_90", "onnxruntime", marks=SLOW), pytest.param("rotate_270", "onnxruntime", marks=SLOW),
]
LINES = ("RECEIPT NUMBER 20417", "Coffee large 4.50", "Total amount 12.75", "Thank you come again")

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def _upright_page(size: tuple[int, int] = (760, 560)) -> tuple[Image.Image, list[tuple[str, tuple]]]:
    """A white page with `LINES` in 30-px text; truth boxes from Pillow's own text metrics."""
    image = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(image)
    font = _font(30)
    truth = []
    for i, text in enumerate(LINES):
        xy = (50 + 20 * i, 50 + 120 * i)
        draw.text(xy, text, fill="black", font=font)
        truth.append((text, tuple(float(v) for v in draw.textbbox(xy, text, font=font))))
    return image, truth


def _similar(a: str, b: str) -> float:
    return SequenceMatcher(None, " ".join(a.lower().split()), " ".join(b.lower().split())).ratio()


def _assert_reads(result, truth: list[tuple[str, tuple]], *, min_iou: float = 0.5) -> None:
    """Each truth line is read (text similarity >= 0.8) by a line whose box overlaps its box (IoU >= min_iou)."""
    assert result.status == "success", [e.message for e in result.errors] + [
        e.message for p in result.pages for e in p.errors]
    lines = [ln for p in result.pages for ln in p.lines]
    for text, box in truth:
        best = max(lines, key=lambda ln: _similar(ln.text, text), default=None)
        assert best is not None and _similar(best.text, text) >= 0.8, (text, [ln.text for ln in lines])
        assert iou(best.bbox_page_px, box) >= min_iou, (text, best.bbox_page_px, box)


@pytest.mark.parametrize(("orientation", "backend"), TURNS)
def test_turned_or_mirrored_photo_reads_with_boxes_on_the_text(tmp_path: Path, backend: str, orientation: str):
    upright, truth = _upright_page()
    photo = transpose_image(upright, orientation)
    path = tmp_path / f"photo_{orientation}.jpg"
    photo.save(path, quality=92)
    result = docvlm.convert(str(path), ocr_backend=backend)
    assert result.engine.detail and f"backend {backend}" in result.engine.detail
    page = result.pages[0]
    assert (page.width_px, page.height_px) == photo.size  # boxes stay in the page as given
    # the result says how the page was turned to be read: the inverse of the transpose that made the photo
    inverse = {"rotate_90": "rotate_270", "rotate_270": "rotate_90"}.get(orientation, orientation)
    assert page.read_orientation is not None and page.read_orientation.orientation == inverse, page.read_orientation
    # where each truth line lands in the photo: the same transpose applied to its box in the upright page
    _assert_reads(result, [(t, page_to_upright(b, orientation, upright.size)) for t, b in truth])


@pytest.mark.parametrize("backend", BACKENDS)
def test_upright_page_is_not_turned_and_needs_no_second_read(backend: str):
    upright, truth = _upright_page()
    engine = OcrEngine(ConvertOptions(ocr_backend=backend))
    lines = engine.ocr_image(upright)
    assert engine.last_orientation is not None and engine.last_orientation.orientation == "none"
    assert engine.last_orientation.confidences == {}, "an upright page must not pay for the explicit check"
    assert len(lines) == len(truth)


@pytest.mark.parametrize("backend", BACKENDS)
def test_vertical_text_in_a_table_header_leaves_the_page_upright(tmp_path: Path, backend: str):
    """A table whose first header cell is set vertically (bottom to top): the rows still read left to right."""
    page = Image.new("RGB", (900, 620), "white")
    draw = ImageDraw.Draw(page)
    font = _font(28)
    for x in (40, 160, 560, 860):
        draw.line([(x, 40), (x, 580)], fill="black", width=2)
    for y in (40, 260, 340, 420, 500, 580):
        draw.line([(40, y), (860, y)], fill="black", width=2)
    header = Image.new("RGB", (200, 44), "white")
    ImageDraw.Draw(header).text((6, 4), "QUANTITY", fill="black", font=font)
    page.paste(header.transpose(Image.Transpose.ROTATE_90), (78, 50))
    draw.text((180, 200), "Description", fill="black", font=font)
    draw.text((580, 200), "Amount", fill="black", font=font)
    truth = []
    for i, (qty, item, amount) in enumerate([("2", "Blue paper clips", "3.20"), ("5", "Printer toner", "88.00"),
                                              ("1", "Desk lamp LED", "24.99")]):
        y = 280 + 80 * i
        for x, text in ((90, qty), (180, item), (580, amount)):
            draw.text((x, y), text, fill="black", font=font)
            if len(text) > 3:
                truth.append((text, tuple(float(v) for v in draw.textbbox((x, y), text, font=font))))
    path = tmp_path / "table.png"
    page.save(path)
    result = docvlm.convert(str(path), ocr_backend=backend)
    _assert_reads(result, truth)
    texts = [ln.text.upper() for ln in result.pages[0].lines]
    assert any(_similar(t, "QUANTITY") >= 0.8 for t in texts), texts  # the vertical header is read as well


def _write_variant(image: Image.Image, kind: str, path_base: Path) -> Path:
    if kind == "fax_tiff":
        path = path_base.with_suffix(".tiff")
        image.convert("L").point(lambda v: 255 if v > 128 else 0).convert("1").save(path, compression="group4")
    elif kind == "cmyk_jpeg":
        path = path_base.with_suffix(".jpg")
        image.convert("CMYK").save(path, quality=95)
    else:  # 16-bit greyscale PNG
        path = path_base.with_suffix(".png")
        grey = np.asarray(image.convert("L"), dtype=np.uint16) * 257
        Image.fromarray(grey.astype(np.uint16)).save(path)
    return path


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("kind", ["fax_tiff", "cmyk_jpeg", "png16"])
def test_fax_cmyk_and_16_bit_images_read(tmp_path: Path, backend: str, kind: str):
    upright, truth = _upright_page()
    path = _write_variant(upright, kind, tmp_path / kind)
    with Image.open(path) as check:
        assert check.mode == {"fax_tiff": "1", "cmyk_jpeg": "CMYK", "png16": "I;16"}[kind]
    _assert_reads(docvlm.convert(str(path), ocr_backend=backend), truth)


@pytest.mark.parametrize(("backend", "height"), [
    ("openvino", 6_000), pytest.param("openvino", 30_000, marks=SLOW), pytest.param("onnxruntime", 30_000, marks=SLOW),
])
def test_long_receipt_strip_reads_top_middle_and_bottom(tmp_path: Path, backend: str, height: int):
    """A 360 px wide strip, 30,000 px tall (6,000 in the default run): shrunk whole to max_side_len it would
    be 29 px wide; read in strips, its lines come back with boxes in the full-size page, including a line
    lying across the first cut, each exactly once."""
    width = 360
    strip = Image.new("L", (width, height), 255)
    draw = ImageDraw.Draw(strip)
    font = _font(26)
    truth = []
    # near the top, across the first cut (strips are 4 widths tall), middle, bottom
    ys = [40, 4 * width - 12, 4 * width + 200, height // 2, height - 100]
    for i, y in enumerate(ys):
        text = f"ITEM {i + 1} PRICE {10 + i}.50"
        draw.text((20, y), text, fill=0, font=font)
        truth.append((text, tuple(float(v) for v in draw.textbbox((20, y), text, font=font))))
    path = tmp_path / "strip.png"
    strip.save(path)
    result = docvlm.convert(str(path), ocr_backend=backend, max_page_pixels=20_000_000)
    _assert_reads(result, truth)
    texts = [ln.text for ln in result.pages[0].lines]
    assert len(texts) == len(truth), texts  # no line twice from overlapping strips


def test_page_to_upright_matches_pil_transpose_and_inverts():
    """A mark drawn at a known box lands where `page_to_upright` says after PIL's transpose, for all 8."""
    page = Image.new("L", (300, 200), 0)
    box = (40.0, 30.0, 90.0, 50.0)
    ImageDraw.Draw(page).rectangle((40, 30, 89, 49), fill=255)
    from docvlm.geometry import upright_to_page
    for orientation in ORIENTATIONS:
        turned = transpose_image(page, orientation)
        ys, xs = np.nonzero(np.asarray(turned))
        found = (float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1))
        assert page_to_upright(box, orientation, page.size) == found, orientation
        assert upright_to_page(found, orientation, turned.size) == box, orientation
