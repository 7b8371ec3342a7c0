"""Extraction schemas: built-ins, user pydantic files with plain types, JSON Schema files, exports, errors."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal

import pytest

from docvlm.errors import UsageError
from docvlm.extract import extract_document
from docvlm.extract.models import DateField, ExtractionResult, MoneyField, TextField
from docvlm.extract.schema_loading import load_schema, schemas_dir
from docvlm.options import ConvertOptions
from tests.extract_docs import invoice_rows, make_pdf


def test_builtin_schemas_have_the_issue_fields():
    inv = {f.name: f.kind for f in load_schema("invoice").fields}
    assert inv == {
        "vendor_name": "text", "vendor_address": "text", "vendor_tax_id": "text", "buyer_name": "text",
        "invoice_number": "text", "invoice_date": "date", "due_date": "date", "currency": "currency",
        "subtotal": "money", "tax_total": "money", "total": "money", "line_items": "list",
    }
    items = next(f for f in load_schema("invoice").fields if f.name == "line_items").items
    assert [(i.name, i.kind) for i in items] == [("description", "text"), ("quantity", "number"),
                                                 ("unit_price", "money"), ("amount", "money")]
    rec = {f.name: f.kind for f in load_schema("receipt").fields}
    assert rec == {"merchant_name": "text", "merchant_address": "text", "date": "date", "time": "time",
                   "total": "money", "subtotal": "money", "tax": "money", "payment_method": "text",
                   "line_items": "list"}  # subtotal: issue 18 (tax, subtotal, rounding, discounts)


@pytest.mark.parametrize("name", ["invoice", "receipt"])
def test_exported_schema_files_are_up_to_date(name):
    on_disk = json.loads((schemas_dir() / f"{name}.schema.json").read_text())
    assert on_disk == load_schema(name).json_schema(), "run: python -c 'from docvlm.extract.schema_loading " \
                                                       "import export_schema_files; export_schema_files()'"


def test_user_python_schema_with_plain_types_is_wrapped(tmp_path):
    (tmp_path / "my_schema.py").write_text(
        "from datetime import date\nfrom decimal import Decimal\nfrom pydantic import BaseModel\n\n"
        "class Bill(BaseModel):\n    issuer: str\n    date: date\n    total_amount: Decimal | None = None\n"
        "    reference: str = ''\n"
    )
    schema = load_schema(f"{tmp_path / 'my_schema.py'}:Bill")
    assert {f.name: f.kind for f in schema.fields} == {"issuer": "text", "date": "date", "total_amount": "number",
                                                       "reference": "text"}
    pdf = tmp_path / "inv.pdf"
    make_pdf(pdf, invoice_rows())
    result = extract_document(pdf, ConvertOptions(), schema=schema)
    assert result.fields["issuer"].value == "Nordlicht Office Supplies GmbH"  # answered by the vendor rule
    assert result.fields["date"].value == date(2024, 3, 15)
    assert result.fields["total_amount"].value == Decimal("1103.13")
    assert result.fields["reference"].status == "missing"


def test_json_schema_file_plain_and_exported(tmp_path):
    plain = tmp_path / "plain.json"
    plain.write_text(json.dumps({"title": "Slip", "type": "object", "properties": {
        "merchant": {"type": "string"}, "date": {"type": "string", "format": "date"},
        "total": {"type": "number", "x-docvlm-type": "money"},
        "items": {"type": "array", "items": {"type": "object", "properties": {"description": {"type": "string"},
                                                                              "amount": {"type": "number"}}}},
    }}))
    schema = load_schema(str(plain))
    assert {f.name: f.kind for f in schema.fields} == {"merchant": "text", "date": "date", "total": "money",
                                                       "items": "list"}
    exported = tmp_path / "invoice.json"
    exported.write_text(json.dumps(load_schema("invoice").json_schema()))
    again = load_schema(str(exported))
    assert again.fields == load_schema("invoice").fields


@pytest.mark.parametrize("spec", ["nope", "missing_file.py:Model", "README.md"])
def test_bad_schema_specs_are_usage_errors(spec, tmp_path):
    with pytest.raises(UsageError):
        load_schema(spec)


def test_python_file_without_the_model_names_it(tmp_path):
    (tmp_path / "s.py").write_text("X = 1\n")
    with pytest.raises(UsageError, match="no pydantic model named 'Bill'"):
        load_schema(f"{tmp_path / 's.py'}:Bill")


def test_result_round_trips_and_converts_to_the_schema_model(tmp_path):
    pdf = tmp_path / "inv.pdf"
    make_pdf(pdf, invoice_rows())
    result = extract_document(pdf, ConvertOptions(), schema="invoice")
    again = ExtractionResult.model_validate_json(result.model_dump_json())
    assert again == result
    assert isinstance(again.fields["total"], MoneyField) and isinstance(again.fields["invoice_date"], DateField)
    invoice = again.to_model(load_schema("invoice").model)
    assert invoice.total.value == Decimal("1103.13")
    assert isinstance(invoice.line_items[0].description, TextField)
    assert json.loads(result.model_dump_json())["fields"]["total"]["value"] == "1103.13"  # Decimal as string
