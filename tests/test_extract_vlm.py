"""VLM extraction: parse (fenced, truncated, box tokens), validate, retry once with the errors, verify, snap.

The engine is a scripted `VlmEngine` subclass returning canned answers, so the real shared VLM path runs
(plan, render, prompt, outputs per tile) and the page text comes from the real text layer of a self-made PDF.
"""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal

import pytest

from docvlm.datamodel import EngineInfo
from docvlm.engines.vlm import TileResponse, VlmEngine
from docvlm.extract import extract_document
from docvlm.extract.schema_loading import load_schema
from docvlm.extract.vlm import parse_answer, repair_json, validate_answer
from docvlm.options import ConvertOptions
from tests.extract_docs import invoice_rows, make_pdf

PAGE_PX = (1654, 2339)  # A4 at 200 dpi


class CannedVlm(VlmEngine):
    """Answers each generate call with the next canned text (Qwen3-VL convention: 0-1000 grid)."""

    name = "canned"

    def __init__(self, options: ConvertOptions, answers: list[str]) -> None:
        super().__init__(options, family="qwen3")
        self.answers = list(answers)
        self.requests = []

    def generate_batch(self, requests):
        self.requests.extend(requests)
        return [TileResponse(text=self.answers.pop(0)) for _ in requests]

    def info(self) -> EngineInfo:
        return EngineInfo(name=self.name, family="qwen3", model="canned")


def grid(box_px, shift=0.0):
    """A page-pixel box as Qwen3-VL prints it for a whole-page tile (0-1000 grid), optionally shifted."""
    w, h = PAGE_PX
    x0, y0, x1, y1 = box_px
    return [round((x0 + shift) / w * 1000), round((y0 + shift) / h * 1000), round((x1 + shift) / w * 1000),
            round((y1 + shift) / h * 1000)]


def item(field, value, box):
    return {"field": field, "value": value, "bbox_2d": box}


@pytest.fixture()
def invoice(tmp_path):
    path = tmp_path / "inv.pdf"
    boxes = make_pdf(path, invoice_rows())
    return path, boxes


def _options():
    return ConvertOptions(engine="hf", family="qwen3", max_visual_tokens=16384)


def test_validation_failure_is_retried_with_the_errors_then_verified_and_snapped(invoice):
    path, boxes = invoice
    first = "```json\n" + json.dumps([
        item("total", "1,103.13 EUR", grid(boxes["1,103.13 EUR"])),
        item("colour", "blue", [1, 2, 3, 4]),
        item("invoice_date", "not a date", grid(boxes["15.03.2024"])),
        item("due_date", "14.04.2024", grid(boxes["14.04.2024"])),
    ])[:-30]  # fenced and cut off mid-answer, as a model stopped by max_new_tokens prints it
    second = json.dumps([
        item("total", "1,103.13", grid(boxes["1,103.13 EUR"], shift=6)),  # a little off: snapped
        item("invoice_date", "15.03.2024", grid(boxes["15.03.2024"])),
        item("vendor_name", "Globex Corporation", grid(boxes["Nordlicht Office Supplies GmbH"])),  # not printed
        item("buyer_name", "Acme Robotics B.V.", grid(boxes["Hafenstrasse 12"])),  # printed elsewhere
        item("line_items[0].description", "Ergonomic office chair", grid(boxes["Ergonomic office chair"])),
        item("line_items[0].amount", "378.00", grid(boxes["378.00"])),
        item("currency", "€", None),
    ])
    engine = CannedVlm(_options(), [first, second])
    result = extract_document(path, _options(), schema="invoice", engine=engine)

    assert len(engine.requests) == 2
    retry = engine.requests[1].prompt
    assert "invoice_date: 'not a date' is not a valid date" in retry
    assert "colour: unknown field" in retry
    assert [a.attempt for a in result.attempts] == [1, 2]
    assert result.attempts[0].errors and not result.attempts[1].errors

    f = result.fields
    assert f["invoice_date"].value == date(2024, 3, 15) and f["invoice_date"].status == "verified"
    total = f["total"]
    assert total.value == Decimal("1103.13") and total.status == "verified" and total.source == "model"
    truth = boxes["1,103.13 EUR"]
    assert abs(total.bbox_page_px[0] - truth[0]) < 4 and abs(total.bbox_page_px[3] - truth[3]) < 8
    assert total.bbox_page_px[2] < truth[2]  # snapped to the number's word box, not the currency word
    assert f["vendor_name"].status == "unverified" and "not found" in f["vendor_name"].note
    assert f["buyer_name"].status == "unverified" and "printed at" in f["buyer_name"].note
    assert f["currency"].value == "EUR"
    assert f["line_items"][0]["amount"].value == Decimal("378.00")
    assert f["line_items"][0]["amount"].status == "verified"
    assert f["due_date"].status == "missing"  # only in the cut-off part of the first answer


def test_still_invalid_after_the_retry_is_marked_invalid(invoice):
    path, boxes = invoice
    bad = json.dumps([item("invoice_date", "45/99/2024", grid(boxes["15.03.2024"])),
                      item("total", "1103.13", grid(boxes["1,103.13 EUR"]))])
    engine = CannedVlm(_options(), [bad, bad])
    result = extract_document(path, _options(), schema="invoice", engine=engine)
    assert len(engine.requests) == 2
    f = result.fields
    assert f["invoice_date"].status == "invalid" and f["invoice_date"].raw == "45/99/2024"
    assert f["invoice_date"].value is None
    assert f["total"].status == "verified"
    assert any(e.code == "validation" and "invoice_date" in e.message for e in result.errors)


def test_a_valid_answer_is_not_retried(invoice):
    path, boxes = invoice
    good = json.dumps([item("total", "1103.13", grid(boxes["1,103.13 EUR"]))])
    engine = CannedVlm(_options(), [good])
    result = extract_document(path, _options(), schema="invoice", engine=engine)
    assert len(engine.requests) == 1 and len(result.attempts) == 1
    assert result.fields["total"].status == "verified"


def test_qwen2_box_tokens_are_parsed():
    raw = ("<|object_ref_start|>total: RM 12.50<|object_ref_end|><|box_start|>(100,200),(300,250)<|box_end|>\n"
           "<|object_ref_start|>line_items[1].description: Kopi O<|object_ref_end|><|box_start|>(1,2),(3,4)<|box_end|>")
    parsed = parse_answer(raw, "qwen2")
    assert [(i.path, i.value, i.box_model) for i in parsed.items] == [
        ("total", "RM 12.50", (100.0, 200.0, 300.0, 250.0)),
        ("line_items[1].description", "Kopi O", (1.0, 2.0, 3.0, 4.0)),
    ]
    v = validate_answer(parsed, load_schema("receipt").fields)
    assert v.scalars["total"][0].value == Decimal("12.50") and v.scalars["total"][0].currency == "MYR"
    assert v.items["line_items"][1]["description"][0].value == "Kopi O"


def test_truncated_json_is_repaired_and_garbage_is_an_error():
    data, repaired = repair_json('[{"field": "a", "value": "1"}, {"field": "b", "val')
    assert repaired and data == [{"field": "a", "value": "1"}]
    with pytest.raises(ValueError):
        repair_json("no json here")
    parsed = parse_answer("I cannot read this document.", "qwen2.5")
    assert parsed.errors and not parsed.items


def test_object_form_answers_are_accepted():
    raw = json.dumps({"total": {"value": "9.00", "bbox_2d": [1, 2, 3, 4]}, "date": "2018-12-25",
                      "line_items": [{"description": "Clay", "amount": "9.00"}]})
    v = validate_answer(parse_answer(raw, "qwen2.5"), load_schema("receipt").fields)
    assert not v.errors
    assert v.scalars["date"][0].value == date(2018, 12, 25)
    assert v.items["line_items"][0]["amount"][0].value == Decimal("9.00")
