"""Issue 18: a company name is `verified` only when its letters are confirmed, not only its line's role.

A legal form ('SDN BHD') or a registration number proves which line is the company's, not that OCR read its
letters right ('URBAN 1DEA SDN BHD'). The judge (extract/evidence.py) wants a second route that reads the same
letters: a second recognition of the crop (extract/reread.py), the name printed twice, or a text layer; and no
reading doubt (a digit inside a word, an I/l in the other case). Scripted second readings test the judge alone;
one real photo goes through `docvlm extract`'s own second reading.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from docvlm.datamodel import Line
from docvlm.extract.rules import build_page, extract_rules

TAIL = ["(CO.REG 933109-X)", "NO. 17, JALAN SETIA, 40170 SHAH ALAM", "05/11/2018 13:45", "TOTAL 12.50",
        "CASH 20.00", "CHANGE 7.50"]


def _page(name: str, *, more: tuple[str, ...] = ()):
    rows = [name, *TAIL, *more]
    lines = [Line(text=t, bbox_page_px=(20, 20 + 30 * i, 20 + 11 * len(t), 44 + 30 * i)) for i, t in enumerate(rows)]
    return build_page(lines, 0, 600, 60 + 30 * len(rows))


def _echo(page, replies: dict[str, str] | None = None, calls: list | None = None):
    """A scripted second recognition: the text of the lines in the box, or the reply given for that text."""
    def read_again(index, box):
        text = " ".join(ln.text for ln in page.lines if ln.bbox_page_px[1] < box[3] and ln.bbox_page_px[3] > box[1])
        if calls is not None:
            calls.append(text)
        return (replies or {}).get(text, text)
    return read_again


def _company(page, read_again=None):
    return extract_rules([page], read_again=read_again).values["vendor_name"]


def test_a_legal_form_read_once_is_not_verified():
    """Without a second route (no page image at hand) an OCR'd name with its legal form is inferred, and its
    note says the letters were read once."""
    f = _company(_page("URBAN IDEA SDN BHD"))
    assert f.raw == "URBAN IDEA SDN BHD" and f.status == "inferred"
    assert "legal_form:" in f.note and "read_once: its letters were read once" in f.note


def test_a_second_reading_that_agrees_verifies_the_name():
    page = _page("URBAN IDEA SDN BHD")
    calls: list = []
    f = _company(page, _echo(page, calls=calls))
    assert f.status == "verified" and "letters: a second recognition of its crop" in f.note
    assert calls == ["URBAN IDEA SDN BHD", "05/11/2018 13:45"]  # only the name's and the date's crops


def test_a_second_reading_that_disagrees_is_a_doubt():
    page = _page("LJAN HING STATIONERY SDN BHD")
    f = _company(page, _echo(page, {"LJAN HING STATIONERY SDN BHD": "LIAN HING STATIONERY SDN BHD"}))
    assert f.status == "inferred" and f.raw == "LJAN HING STATIONERY SDN BHD"  # the value stays as first read
    assert "doubt: a second recognition of its crop reads 'LIAN HING STATIONERY SDN BHD'" in f.note


def test_case_and_spacing_differences_between_readings_still_agree():
    page = _page("Urban Idea Sdn Bhd")
    f = _company(page, _echo(page, {"Urban Idea Sdn Bhd": "URBAN IDEASDN BHD"}))
    assert f.status == "verified"
    accent = _company(page, _echo(page, {"Urban Idea Sdn Bhd": "Urban Idéa Sdn Bhd"}))
    assert accent.status != "verified"  # an accent is a different letter


@pytest.mark.parametrize("name, mark", [("URBAN 1DEA SDN BHD", "'1DEA' has a digit inside a word"),
                                        ("SUPER W0RLD SDN BHD", "'W0RLD' has a digit inside a word"),
                                        ("Taste Of The WorId Sdn Bhd", "'I' has an I/l in the other case"),
                                        ("TASTE OF THE WORlD SDN BHD", "'l' has an I/l in the other case")])
def test_a_wrong_letter_company_is_not_verified_even_when_both_readings_agree(name, mark):
    """The recognizer's own confusions (1/I, 0/O, I/l) are often stable across scales: the judge doubts a word
    with a digit inside or an I/l in the other letters' case, and reads nothing again for it."""
    page = _page(name)
    calls: list = []
    f = _company(page, _echo(page, calls=calls))
    assert f.raw == name and f.status == "inferred" and mark in f.note
    assert calls == ["05/11/2018 13:45"]  # the date's crop only: a doubted name is not read again


@pytest.mark.parametrize("name", ["99 SPEED MART S/B", "3RD AVENUE TRADING SDN BHD", "MR. D.I.Y. (M) SDN BHD",
                                  "McDonald Restaurants Sdn Bhd", "7-ELEVEN MALAYSIA SDN BHD"])
def test_numbers_ordinals_and_capitals_of_real_names_are_no_doubt(name):
    page = _page(name)
    f = _company(page, _echo(page))
    assert f.raw == name and f.status == "verified", f.note


def test_a_name_printed_twice_is_verified_without_a_second_recognition():
    page = _page("URBAN IDEA SDN BHD", more=("THANK YOU", "URBAN IDEA SDN BHD"))
    f = _company(page)
    assert f.status == "verified" and "letters: printed twice: row 9 reads the same" in f.note
    once = _company(_page("URBAN IDEA SDN BHD", more=("THANK YOU", "URBAN IDEAS")))
    assert once.status == "inferred"


def test_a_text_layer_name_is_its_printed_letters():
    page = replace(_page("URBAN IDEA SDN BHD"), text_layer=True)
    f = _company(page)
    assert f.status == "verified" and "letters: read from the PDF's text layer" in f.note
    # a text layer prints what it prints: no OCR-confusion doubt there
    assert _company(replace(_page("URBAN 1DEA SDN BHD"), text_layer=True)).status == "verified"


def test_a_date_a_second_recognition_reads_otherwise_is_doubted():
    page = _page("URBAN IDEA SDN BHD")
    values = extract_rules([page], read_again=_echo(page, {"05/11/2018 13:45": "05/11/2016 13:45"})).values
    assert values["date"].status == "inferred" and "reads '05/11/2016 13:45'" in values["date"].note
    values = extract_rules([page], read_again=_echo(page)).values
    assert values["date"].status == "verified" and "letters:" in values["date"].note
    assert extract_rules([page]).values["date"].status == "verified"  # no second route: plausibility as before


def test_crop_reader_reads_crops_of_the_page_image_at_its_scale():
    from PIL import Image

    from docvlm.extract.reread import CropReader, image_pages

    seen = []
    reader = CropReader(image_pages(Image.new("RGB", (400, 200), "white")), lambda im: seen.append(im.size) or "X",
                        scale=0.5)
    assert reader(0, (100.0, 50.0, 300.0, 90.0)) == "X" and reader.crops == 1
    assert seen == [(106, 26)]  # (200 + 2 x 6) x 0.5, (40 + 2 x 6) x 0.5: the crop with its margin, scaled
    assert reader(1, (100.0, 50.0, 300.0, 90.0)) is None and reader.crops == 1  # no image of page 1


def test_extract_reads_a_photo_s_company_a_second_time_and_not_a_pdf_s(tmp_path):
    """The real pipeline: `docvlm extract` on a photo (ocr engine) re-reads the company's crop with the bundled
    recognizer; on a text-layer PDF the text layer confirms the letters and no page is rendered."""
    from docvlm.extract import extract_document
    from docvlm.extract.reread import document_pages
    from docvlm.options import ConvertOptions
    from tests.extract_docs import make_receipt_pdf, render_receipt

    rows = ["KEDAI RUNCIT ABC SDN BHD", "(CO.REG 123456-X)", "12 JALAN BESAR, 50000 KUALA LUMPUR",
            ("NASI LEMAK", "12.50"), ("TOTAL", "12.50"), ("CASH", "20.00"), ("CHANGE", "7.50")]
    photo = extract_document(render_receipt(tmp_path / "r.jpg", rows), ConvertOptions(), schema="receipt")
    name = photo.fields["merchant_name"]
    assert name.value == "KEDAI RUNCIT ABC SDN BHD" and name.status == "verified"
    assert "letters: a second recognition of its crop" in name.note
    pdf_path = make_receipt_pdf(tmp_path / "r.pdf", rows)
    pdf = extract_document(pdf_path, ConvertOptions(), schema="receipt")
    assert "letters: read from the PDF's text layer" in pdf.fields["merchant_name"].note
    from docvlm.pipeline import convert_document

    read = convert_document(pdf_path, ConvertOptions())
    assert read.pages[0].text_source == "text_layer" and document_pages(pdf_path, ConvertOptions(), read)(0) is None
