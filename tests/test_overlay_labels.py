"""Issue 17 item 16: overlay labels hide nothing. On a receipt made here, the extracted fields' labels are
placed outside every field box and every text line, so no printed text is covered (the merchant name at the
top of the receipt included)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from docvlm.overlay import OverlayBox, draw_boxes

FONT = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
RECEIPT = ["SETIA HARDWARE SDN BHD", "NO 37 JALAN MANIS 7 TAMAN SEGAR", "43200 CHERAS SELANGOR",
           "TAX INVOICE", "DATE: 12/03/2018  TIME: 10:15", "PAINT BRUSH 2 X 3.00      6.00",
           "SILICONE SEALANT          12.50", "TOTAL                     18.50", "CASH                      20.00",
           "CHANGE                     1.50", "THANK YOU, PLEASE COME AGAIN"]


@pytest.fixture(scope="module")
def receipt(tmp_path_factory: pytest.TempPathFactory):
    if not FONT.is_file():
        pytest.skip("DejaVuSans.ttf not installed")
    import docvlm
    from docvlm.extract import extract_document
    from docvlm.options import make_options

    path = tmp_path_factory.mktemp("overlay") / "receipt.png"
    img = Image.new("RGB", (1000, 20 + 36 * len(RECEIPT)), "white")  # tight lines, room on the right
    draw = ImageDraw.Draw(img)
    font = ImageFont.truetype(str(FONT), 26)
    for i, text in enumerate(RECEIPT):
        draw.text((24, 2 + 36 * i), text, font=font, fill="black")  # the merchant name at the very top
    img.save(path)
    read = docvlm.convert(str(path))
    fields = extract_document(path, make_options(), schema="receipt")
    return img, read, fields


def test_field_labels_cover_no_line_and_no_field(receipt) -> None:
    from docvlm.extract.overlay import field_boxes
    from docvlm.overlay import label_places

    img, read, fields = receipt
    boxes = field_boxes(fields, 0)
    names = {b.label.split(":")[0] for b in boxes}
    assert {"merchant_name", "total"} <= names, names
    merchant = next(b for b in boxes if b.label.startswith("merchant_name"))
    assert merchant.bbox_page_px[1] < 12, "the merchant name stands at the top edge"
    lines = [ln.bbox_page_px for ln in read.pages[0].lines]
    assert len(lines) >= len(RECEIPT) - 1
    tags = label_places(img, boxes)
    assert all(t is not None for t in tags)
    for tag in tags:  # no tag shares area with a text line or a field box
        assert 0 <= tag[0] and 0 <= tag[1] and tag[2] <= img.size[0] and tag[3] <= img.size[1], tag
        for box in lines + [b.bbox_page_px for b in boxes]:
            assert not (tag[0] < box[2] and tag[2] > box[0] and tag[1] < box[3] and tag[3] > box[1]), (tag, box)
    for i, tag in enumerate(tags):
        for other in tags[i + 1:]:
            assert not (tag[0] < other[2] and tag[2] > other[0] and tag[1] < other[3] and tag[3] > other[1])
    # and in the drawing: no printed pixel changes but for the boxes' own outlines
    drawn = np.asarray(draw_boxes(img, boxes), dtype=np.int16)
    outlines = np.asarray(draw_boxes(img, [OverlayBox(b.bbox_page_px, "", b.confidence) for b in boxes]),
                          dtype=np.int16)
    assert (np.abs(drawn - outlines).sum(axis=2) > 0).sum() > 100 * len(boxes), "the labels must be drawn"
    ink = np.asarray(img.convert("L")) < 160
    covered = (np.abs(drawn - outlines).sum(axis=2) > 0) & ink
    assert not covered.any(), f"{int(covered.sum())} printed pixels covered"


def test_labels_avoid_each_other_and_stay_on_the_page() -> None:
    from docvlm.overlay import place_labels

    img = Image.new("RGB", (400, 300), "white")
    boxes = [(10, 0, 200, 20), (10, 22, 200, 42), (10, 44, 200, 64), (210, 0, 390, 20)]
    places = place_labels(boxes, [(60, 14)] * len(boxes), img)
    for i, p in enumerate(places):
        assert p is not None and 0 <= p[0] and 0 <= p[1] and p[2] <= 400 and p[3] <= 300
        for b in boxes:
            assert not (p[0] < b[2] and p[2] > b[0] and p[1] < b[3] and p[3] > b[1]), (p, b)
        for q in places[i + 1:]:
            assert not (p[0] < q[2] and p[2] > q[0] and p[1] < q[3] and p[3] > q[1]), (p, q)


def test_a_label_without_room_still_gets_drawn() -> None:
    img = Image.new("RGB", (50, 20), "white")
    out = draw_boxes(img, [OverlayBox((0, 0, 50, 20), "a long label that cannot fit", 0.9)])
    assert out.size == (50, 20)
