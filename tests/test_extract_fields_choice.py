"""Which value the company and date fields get, on self-made receipt lines: the registered owner named under a
brand, the spaces a company name prints that the recogniser dropped or filled with a speck, and a date printed
with one separator the recogniser lost. Each repair keeps `raw` as read and says so in the note."""

from __future__ import annotations

from datetime import date

from docvlm.datamodel import Line, Word
from docvlm.extract.rules import build_page, extract_rules, extract_sroie_fields
from tests.extract_docs import receipt_lines


def _values(*texts: str):
    return extract_rules([build_page(receipt_lines(*texts), 0, 700, 1200)]).values


def test_the_owner_named_under_a_brand_is_the_company_and_the_address_follows_it():
    v = _values("Kopi Senja", "Dimiliki oleh: kopi senja ventures sdn bhd 1234567-X", "No. 8 Jalan Mawar 2",
                "43000 Kajang, Selangor", "TEL: 03-1234 5678")
    assert v["vendor_name"].value == "kopi senja ventures sdn bhd"
    assert "owner label" in v["vendor_name"].note
    assert v["vendor_address"].value == "No. 8 Jalan Mawar 2 43000 Kajang, Selangor"
    # an owner label without a legal form names no company: the brand stays
    v = _values("KOPI SENJA", "Owned by: Ali", "NO. 8 JALAN MAWAR 2", "43000 KAJANG", "TEL: 03-1234 5678")
    assert v["vendor_name"].value == "KOPI SENJA"


def test_a_company_name_gets_the_spaces_a_speck_or_a_glued_legal_form_took():
    v = _values("KEDAI BUKU- CO. (M) SDN BHD", "(123456-A)", "NO 8, JALAN MAWAR", "43000 KAJANG", "TEL: 03-1234 5678")
    assert v["vendor_name"].value == "KEDAI BUKU CO. (M) SDN BHD"
    assert v["vendor_name"].raw == "KEDAI BUKU- CO. (M) SDN BHD"
    assert "spaced" in v["vendor_name"].note
    assert _values("MAJU_JAYA TRADING-SDN.BHD.", "(123456-A)", "NO 8, JALAN MAWAR")["vendor_name"].value \
        == "MAJU JAYA TRADING SDN. BHD."
    # a hyphen inside a word and brackets glued to a word stay as read
    assert _values("KL-1 MART(M)SDN BHD", "(123456-A)", "NO 8, JALAN MAWAR")["vendor_name"].value \
        == "KL-1 MART(M)SDN BHD"


def test_a_date_with_one_separator_lost_is_read_when_there_is_no_other_date():
    lines = receipt_lines("KEDAI MAJU", "NO 8, JALAN MAWAR", "43000 KAJANG", "TAX INVOICE", "0504/2019", "TOTAL 12.00")
    v = extract_rules([build_page(lines, 0, 700, 1200)]).values
    assert v["date"].value == date(2019, 4, 5)
    assert v["date"].raw == "0504/2019" and v["date"].printed == "05/04/2019"
    assert extract_sroie_fields(lines, 700, 1200)["date"] == "05/04/2019"
    assert _values("KEDAI MAJU", "NO 8, JALAN MAWAR", "12 04-19 10:22", "TOTAL 12.00")["date"].value == date(2019, 4, 12)
    # not a date: an impossible day or month, a longer number, a date printed whole elsewhere on the page
    assert "date" not in _values("KEDAI MAJU", "NO 8, JALAN MAWAR", "4513/2019", "TOTAL 12.00")
    assert "date" not in _values("KEDAI MAJU", "NO 8, JALAN MAWAR", "INV 120504/2019", "TOTAL 12.00")
    v = _values("KEDAI MAJU", "NO 8, JALAN MAWAR", "0504/2019", "DATE: 06/04/2019", "TOTAL 12.00")
    assert v["date"].value == date(2019, 4, 6)


def test_a_mall_printed_above_the_shop_name_is_not_the_merchant():
    v = _values("SETIA JAYA MALL", "KEDAI KOPI SENJA", "LOT G-12, JALAN MAWAR 2", "43000 KAJANG", "TEL: 03-1234 5678")
    assert v["vendor_name"].value == "KEDAI KOPI SENJA"
    # a mall alone on top (the next row is the address) is all there is to take; a shop named after it stays
    assert _values("SETIA JAYA MALL", "LOT G-12, JALAN MAWAR 2", "43000 KAJANG")["vendor_name"].value == "SETIA JAYA MALL"
    assert _values("PLAZA MART SDN BHD", "(123456-A)", "LOT G-12, JALAN MAWAR 2")["vendor_name"].value \
        == "PLAZA MART SDN BHD"


def test_a_date_the_ocr_boxed_as_two_lines_of_one_row_is_read_across_them():
    lines = receipt_lines("KEDAI MAJU", "NO 8, JALAN MAWAR", "43000 KAJANG", "TOTAL 12.00")
    y0, y1 = 200.0, 230.0
    lines += [Line(text="05 Mar", bbox_page_px=(100, y0, 190, y1), words=[Word(text="05", bbox_page_px=(100, y0, 128, y1)),
                                                                         Word(text="Mar", bbox_page_px=(140, y0, 190, y1))]),
              Line(text="2019 14:02", bbox_page_px=(205, y0, 350, y1),
                   words=[Word(text="2019", bbox_page_px=(205, y0, 262, y1)), Word(text="14:02", bbox_page_px=(275, y0, 350, y1))])]
    v = extract_rules([build_page(lines, 0, 700, 1200)]).values
    assert v["date"].value == date(2019, 3, 5)
    assert v["date"].raw == "05 Mar 2019"
    assert v["date"].bbox_page_px == (100, y0, 350, y1)  # the two lines it was read from
    assert "across 2 OCR lines" in v["date"].note
