"""The offline extraction rules (ocr engine) on self-made invoices with a text layer, and on synthetic lines."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from docvlm.datamodel import Line
from docvlm.extract import extract_document
from docvlm.extract.rules import LABELS, build_page, extract_rules
from docvlm.options import ConvertOptions
from tests.extract_docs import invoice_rows, make_pdf


def _extract(tmp_path, rows, schema="invoice", name="inv.pdf"):
    path = tmp_path / name
    boxes = make_pdf(path, rows)
    return extract_document(path, ConvertOptions(), schema=schema), boxes


def _inside(inner, outer, tol=4.0):
    return (inner[0] >= outer[0] - tol and inner[1] >= outer[1] - tol and inner[2] <= outer[2] + tol
            and inner[3] <= outer[3] + tol)


def test_invoice_fields_typed_and_grounded(tmp_path):
    result, boxes = _extract(tmp_path, invoice_rows())
    f = result.fields
    assert result.kind == "extraction" and result.status == "success"
    assert f["vendor_name"].value == "Nordlicht Office Supplies GmbH"
    assert f["buyer_name"].value == "Acme Robotics B.V."
    assert f["invoice_number"].value == "INV-2024-0173"
    assert f["vendor_tax_id"].value == "DE298765431"
    assert f["invoice_date"].value == date(2024, 3, 15) and f["invoice_date"].raw == "15.03.2024"
    assert f["due_date"].value == date(2024, 4, 14)
    assert f["currency"].value == "EUR"
    assert f["subtotal"].value == Decimal("927.00")
    assert f["tax_total"].value == Decimal("176.13")
    assert f["total"].value == Decimal("1103.13") and f["total"].currency == "EUR"
    assert f["total"].status == "verified" and f["total"].source == "text_layer" and f["total"].page == 0
    # the total's box is the box of the printed amount (not of its label, not of the whole row)
    assert _inside(f["total"].bbox_page_px, boxes["1,103.13 EUR"])
    assert f["total"].bbox_page_px[0] >= boxes["1,103.13 EUR"][0] - 4
    items = f["line_items"]
    assert [i["description"].value for i in items] == ["Ergonomic office chair", "Standing desk 160x80 cm"]
    assert [i["amount"].value for i in items] == [Decimal("378.00"), Decimal("549.00")]
    assert [i["quantity"].value for i in items] == [Decimal(2), Decimal(1)]
    assert result.warnings == []  # 378 + 549 = 927; 927 + 176.13 = 1103.13; due after issue


def test_missing_total_is_missing_with_a_warning(tmp_path):
    result, _ = _extract(tmp_path, invoice_rows(total=None))
    assert result.fields["total"].status == "missing" and result.fields["total"].value is None
    assert "missing_total" in {w.code for w in result.warnings}


def test_two_totals_are_reported_not_hidden(tmp_path):
    rows = invoice_rows(extra=[(370, 420, "Total:"), (470, 420, "1,200.00 EUR")])
    result, _ = _extract(tmp_path, rows)
    # subtotal + tax explains one of them: that one is taken, and the conflict is still reported
    assert result.fields["total"].value == Decimal("1103.13")
    assert "two_totals" in {w.code for w in result.warnings}


def test_two_totals_without_arithmetic_take_the_larger_and_warn():
    lines = [
        _line("SHOP SDN BHD", 100, 10, 300, 30),
        _line("Total:", 10, 100, 120, 120), _line("100.00", 300, 100, 350, 120),
        _line("Total:", 10, 150, 120, 170), _line("120.00", 300, 150, 350, 170),
    ]
    res = extract_rules([build_page(lines, 0, 400, 300)])
    assert res.values["total"].value == Decimal("120.00")
    assert [code for code, _ in res.notes] == ["two_totals"]


def test_a_date_that_is_not_a_date_is_not_invented(tmp_path):
    result, _ = _extract(tmp_path, invoice_rows(date="45/99/2024"))
    # never the due date, never a made-up date
    assert result.fields["invoice_date"].value is None
    assert result.fields["due_date"].value == date(2024, 4, 14)


def test_due_before_issue_is_a_warning(tmp_path):
    result, _ = _extract(tmp_path, invoice_rows(date="20.04.2024", due="14.04.2024"))
    assert result.fields["invoice_date"].value == date(2024, 4, 20)  # reported as printed, not swapped
    assert "due_before_issue" in {w.code for w in result.warnings}


def test_decimal_comma_invoice_in_german(tmp_path):
    rows = [
        (50, 60, "Bäckerei Sonnenschein GmbH"),
        (50, 76, "Marktplatz 3"),
        (50, 90, "10115 Berlin"),
        (340, 170, "Rechnungsnummer:"), (470, 170, "R-2024-77"),
        (340, 184, "Rechnungsdatum:"), (470, 184, "03.02.2024"),
        (370, 340, "Zwischensumme"), (480, 340, "1.037,44"),
        (370, 356, "MwSt 19%"), (480, 356, "197,12"),
        (370, 374, "Gesamtbetrag"), (470, 374, "1.234,56 EUR"),
    ]
    result, _ = _extract(tmp_path, rows)
    f = result.fields
    assert f["invoice_number"].value == "R-2024-77"
    assert f["invoice_date"].value == date(2024, 2, 3)
    assert f["subtotal"].value == Decimal("1037.44")
    assert f["tax_total"].value == Decimal("197.12")
    assert f["total"].value == Decimal("1234.56") and f["total"].currency == "EUR"
    assert f["currency"].value == "EUR"
    assert result.warnings == []


def test_receipt_schema_on_the_same_rules(tmp_path):
    rows = [
        (200, 60, "KEDAI RUNCIT MAJU SDN BHD"),
        (200, 76, "NO. 12, JALAN MERANTI 3,"),
        (200, 90, "47100 PUCHONG, SELANGOR"),
        (200, 104, "TEL: 03-8075 1234"),
        (60, 150, "Tarikh: 05/11/2018"), (300, 150, "Masa: 13:45"),
        (60, 300, "JUMLAH"), (400, 300, "RM 23.50"),
        (60, 316, "TUNAI"), (400, 316, "RM 50.00"),
    ]
    result, _ = _extract(tmp_path, rows, schema="receipt", name="receipt.pdf")
    f = result.fields
    assert f["merchant_name"].value == "KEDAI RUNCIT MAJU SDN BHD"
    assert f["merchant_address"].value == "NO. 12, JALAN MERANTI 3, 47100 PUCHONG, SELANGOR"
    assert f["date"].value == date(2018, 11, 5)
    assert f["time"].value.hour == 13 and f["time"].value.minute == 45
    assert f["total"].value == Decimal("23.50") and f["total"].currency == "MYR"
    assert f["payment_method"].value == "Tunai"


def _line(text, x0, y0, x1, y1):
    return Line(text=text, bbox_page_px=(x0, y0, x1, y1))


def test_label_value_to_the_right_and_below():
    lines = [
        _line("ACME TRADING", 100, 10, 300, 30),
        _line("Invoice No.", 10, 100, 120, 120), _line("A-778", 400, 101, 470, 119),
        _line("Grand Total", 10, 200, 120, 220),
        _line("12.40", 10, 225, 60, 245),  # the value printed under its label
    ]
    res = extract_rules([build_page(lines, 0, 600, 400)])
    assert res.values["invoice_number"].value == "A-778"
    assert res.values["total"].value == Decimal("12.40")
    assert res.values["total"].bbox_page_px == (10, 225, 60, 245)


def test_total_adjusted_by_printed_rounding():
    lines = [
        _line("SHOP SDN BHD", 100, 10, 300, 30),
        _line("TOTAL AMT.", 10, 100, 120, 120), _line("60.31", 300, 100, 350, 120),
        _line("ROUNDING ADJ", 10, 125, 120, 145), _line("-0.01", 300, 125, 350, 145),
        _line("60.30", 300, 175, 350, 195),  # its label was not read
    ]
    res = extract_rules([build_page(lines, 0, 400, 300)])
    assert res.values["total"].value == Decimal("60.30")
    assert "rounding" in res.values["total"].note


@pytest.mark.parametrize("language", ["EN", "NL", "FR", "DE", "MS"])
def test_label_table_covers_every_language(language):
    for field in ("total", "subtotal", "tax", "invoice_number", "invoice_date", "due_date"):
        assert LABELS[field].get(language), f"{field} has no {language} labels"


@pytest.mark.slow
def test_receipt_photo_sample_with_real_ocr(samples_dir):
    """samples/receipt_long.jpg through RapidOCR (slow on a busy CPU): fields and items against its truth."""
    import json

    truth = json.loads((samples_dir / "receipt_long.truth.json").read_text())
    result = extract_document(samples_dir / "receipt_long.jpg", ConvertOptions(), schema="receipt")
    f = result.fields
    assert f["merchant_name"].value == truth["merchant_name"]
    assert f["date"].value == date.fromisoformat(truth["date"])
    assert f["total"].source == "ocr" and f["total"].status == "verified"
    if "total" in truth:
        assert f["total"].value == Decimal(truth["total"])
    amounts = [i["amount"].value for i in f["line_items"]]
    assert amounts[:3] == [Decimal(i["amount"]) for i in truth["line_items"][:3]]


@pytest.mark.data
def test_real_born_digital_invoices(shared_data):
    """Two invoice2data PDFs (text layer): date, total, currency and number as their expected JSON says."""
    import json

    for name in ("AmazonWebServices", "coolblue1"):
        pdf = shared_data / "invoice2data" / "compare" / f"{name}.pdf"
        truth = json.loads(pdf.with_suffix(".json").read_text())[0]
        f = extract_document(pdf, ConvertOptions(), schema="invoice").fields
        assert f["invoice_date"].value == date.fromisoformat(truth["date"])
        assert f["total"].value == Decimal(str(truth["amount"]))
        assert f["currency"].value == truth["currency"]
        assert f["invoice_number"].value == truth["invoice_number"]
        assert f["total"].bbox_page_px is not None and f["total"].source == "text_layer"


def test_multi_page_fields_from_any_page_and_items_concatenated(tmp_path):
    import pymupdf

    path = tmp_path / "two_pages.pdf"
    doc = pymupdf.open()
    pages = [
        [(50, 60, "Nordlicht Office Supplies GmbH"), (50, 76, "Hafenstrasse 12"), (50, 90, "20457 Hamburg"),
         (340, 170, "Invoice number:"), (470, 170, "INV-7"),
         (50, 260, "Description"), (300, 260, "Qty"), (480, 260, "Amount"),
         (50, 280, "Paper A4"), (300, 280, "2"), (480, 280, "10.00")],
        [(50, 60, "Description"), (300, 60, "Qty"), (480, 60, "Amount"),
         (50, 80, "Toner black"), (300, 80, "1"), (480, 80, "55.50"),
         (340, 184, "Invoice date:"), (470, 184, "2024-06-30"),
         (370, 300, "Total:"), (470, 300, "65.50 EUR")],
    ]
    for rows in pages:
        page = doc.new_page(width=595, height=842)
        for x, y, text in rows:
            page.insert_text((x, y), text, fontsize=10, fontname="helv")
    doc.save(str(path))
    doc.close()
    result = extract_document(path, ConvertOptions(), schema="invoice")
    f = result.fields
    assert f["invoice_number"].value == "INV-7" and f["invoice_number"].page == 0
    assert f["invoice_date"].value == date(2024, 6, 30) and f["invoice_date"].page == 1
    assert f["total"].value == Decimal("65.50") and f["total"].page == 1
    assert [(i["description"].value, i["description"].page) for i in f["line_items"]] == [
        ("Paper A4", 0), ("Toner black", 1)]
    assert result.warnings == []  # 10.00 + 55.50 = 65.50
