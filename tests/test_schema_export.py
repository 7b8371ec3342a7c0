"""The checked-in JSON Schema of the result must match the model (golden file, DOCVLM_UPDATE_GOLDEN=1)."""

from __future__ import annotations

import json
import os

import pytest

from docvlm.datamodel import DocumentResult
from docvlm.writers import SCHEMA_PATH, atomic_write_text, export_schema

UPDATE = os.environ.get("DOCVLM_UPDATE_GOLDEN") == "1"


def test_update_flag_is_off_in_ci() -> None:
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        assert not UPDATE, "DOCVLM_UPDATE_GOLDEN=1 must never be set in CI: it would hide schema drift"


def test_checked_in_schema_matches_model() -> None:
    fresh = export_schema()
    if UPDATE:
        atomic_write_text(SCHEMA_PATH, fresh)
    assert SCHEMA_PATH.is_file(), "run: python -m docvlm.writers --export-schema"
    assert SCHEMA_PATH.read_text(encoding="utf-8") == fresh, (
        "schemas/docvlm-result.schema.json drifted from docvlm.datamodel.DocumentResult; if the change is "
        "intended, run: DOCVLM_UPDATE_GOLDEN=1 pytest tests/test_schema_export.py (or "
        "python -m docvlm.writers --export-schema) and commit the file"
    )


def test_schema_has_the_documented_shape() -> None:
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    assert {"status", "source", "engine", "pages", "errors"} <= set(schema["properties"])
    page = schema["$defs"]["PageResult"]["properties"]
    assert {"index", "width_px", "height_px", "dpi", "status", "lines", "errors"} <= set(page)
    line = schema["$defs"]["Line"]["properties"]
    assert {"text", "bbox_page_px", "bbox_pdf_pt", "confidence", "words"} <= set(line)


def test_results_validate_against_checked_in_schema(tmp_path) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    import docvlm
    from tests.test_batch import make_pdf

    result = docvlm.convert(str(make_pdf(tmp_path / "a.pdf")), engine="scripted")
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    jsonschema.validate(json.loads(result.model_dump_json()), schema)
    assert isinstance(result, DocumentResult)


def test_export_schema_cli(tmp_path) -> None:
    from docvlm.writers import main

    assert main(["--export-schema", str(tmp_path / "s.json")]) == 0
    assert (tmp_path / "s.json").read_text(encoding="utf-8") == export_schema()
