"""Normalizers: dates as printed, day/month order from the document, amounts in both decimal conventions."""

from __future__ import annotations

from datetime import date, time
from decimal import Decimal

import pytest

from docvlm.extract.checks import cross_check
from docvlm.extract.models import DateField, MoneyField
from docvlm.extract.normalize import (
    decide_day_first,
    detect_currency,
    find_dates,
    parse_amount,
    parse_date,
    parse_time,
    resolve_date,
)


@pytest.mark.parametrize("text", ["25/12/2018", "2018-12-25", "25.12.2018", "25 Dec 2018", "Dec 25, 2018",
                                  "25-DEC-18", "December 25 , 2018", "25 décembre 2018", "25. Dezember 2018",
                                  "25 december 2018", "Date: 25/12/2018 8:13:39 PM"])
def test_date_formats(text):
    assert parse_date(text) == date(2018, 12, 25)


@pytest.mark.parametrize("text", ["45/99/2024", "31/02/2024", "not a date", "1,234.56", "HC03-7 - 15"])
def test_not_dates(text):
    assert parse_date(text) is None


def test_ambiguous_day_month_decided_by_the_other_dates():
    us = find_dates("Order 12/25/2018, shipped 01/02/2019")
    assert not decide_day_first(us)  # 12/25 only reads month-first: the document is month-first
    assert resolve_date(us[1], day_first=decide_day_first(us)) == date(2019, 1, 2)
    eu = find_dates("Datum 25.12.2018, Lieferung 01.02.2019")
    assert decide_day_first(eu)
    assert resolve_date(eu[1], day_first=decide_day_first(eu)) == date(2019, 2, 1)
    alone = find_dates("03/04/2019")
    assert decide_day_first(alone) and not decide_day_first(alone, locale_hint="US")


@pytest.mark.parametrize("text,value,currency", [
    ("1,234.56", "1234.56", None), ("1.234,56", "1234.56", None), ("1 234,56 €", "1234.56", "EUR"),
    ("RM 9.00", "9.00", "MYR"), ("$8.20", "8.20", "USD"), ("EUR 49,99", "49.99", "EUR"), ("12,5", "12.5", None),
    ("Rs 1939", "1939", "INR"), ("-0.02", "-0.02", None), ("£1,000,000.00", "1000000.00", "GBP"),
])
def test_amounts_in_both_conventions(text, value, currency):
    assert parse_amount(text) == (Decimal(value), currency)


def test_thousands_separator_depends_on_the_document_convention():
    assert parse_amount("1.234")[0] == Decimal("1.234")
    assert parse_amount("1.234", decimal_comma=True)[0] == Decimal("1234")
    assert parse_amount("1,234")[0] == Decimal("1234")


def test_times_and_currency_detection():
    assert parse_time("8:13:39 PM") == (time(20, 13, 39), "8:13:39 PM")
    assert parse_time("Masa 13.45") == (time(13, 45), "13.45")
    assert detect_currency("Totaal € 12,50\nBTW € 2,17") == "EUR"
    assert detect_currency("TOTAL RM 9.00") == "MYR"
    assert detect_currency("no money here") is None


def _money(v):
    return MoneyField(value=Decimal(v), status="verified")


def test_cross_checks_warn_and_never_correct():
    fields = {
        "subtotal": _money("100.00"), "tax_total": _money("21.00"), "total": _money("120.00"),
        "invoice_date": DateField(value=date(2024, 5, 1), status="verified"),
        "due_date": DateField(value=date(2024, 4, 1), status="verified"),
        "line_items": [{"amount": _money("60.00")}, {"amount": _money("30.00")}],
    }
    codes = {w.code for w in cross_check(fields)}
    assert codes == {"items_sum", "subtotal_tax_total", "due_before_issue"}
    assert fields["total"].value == Decimal("120.00")
    ok = dict(fields, total=_money("121.00"), due_date=DateField(value=date(2024, 6, 1), status="verified"),
              line_items=[{"amount": _money("60.00")}, {"amount": _money("40.00")}])
    assert cross_check(ok) == []
