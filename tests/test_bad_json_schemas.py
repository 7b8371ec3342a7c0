"""Issue 17 item 7: a JSON Schema of the wrong shape is a usage error (exit 2) naming the problem."""

from __future__ import annotations

import json
from pathlib import Path

import pymupdf
import pytest
from click.testing import CliRunner

from docvlm.cli import main
from docvlm.errors import UsageError
from docvlm.extract.schema_loading import load_schema

NODE = {"type": "object", "properties": {"name": {"type": "string"},
                                         "kids": {"type": "array", "items": {"$ref": "#/$defs/Node"}}}}
BAD_SCHEMAS = [
    (["x"], "must be an object"),
    ("just a string", "must be an object"),
    ({"type": "object", "properties": {"total": "string"}}, "schema.properties.total must be a JSON Schema object"),
    ({"type": "object", "properties": ["total", "date"]}, "'properties' must be an object"),
    ({"type": "object", "properties": {"nodes": {"type": "array", "items": {"$ref": "#/$defs/Node"}}},
      "$defs": {"Node": NODE}}, "recursive '$ref' (Node -> Node)"),
    ({"type": "object", "properties": {"a": {"$ref": "#/$defs/Missing"}}}, "names no entry of '$defs'"),
    ({"type": "object", "properties": {"a": {"type": "array", "items": 5}}}, "schema.properties.a.items must be"),
    ({"type": "object", "properties": {"a": {"type": 7}}}, "'type' must be one of"),
    ({"type": "object", "properties": {"a": {"type": "string"}}, "$defs": []}, "'$defs' must be an object"),
]


@pytest.mark.parametrize(("schema", "message"), BAD_SCHEMAS)
def test_wrong_shaped_schema_is_a_usage_error_naming_the_problem(tmp_path: Path, schema: object, message: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(schema))
    with pytest.raises(UsageError) as info:
        load_schema(str(path))
    assert message in str(info.value) and str(path) in str(info.value)


@pytest.mark.parametrize(("schema", "message"), [BAD_SCHEMAS[0], BAD_SCHEMAS[2], BAD_SCHEMAS[3], BAD_SCHEMAS[4]])
def test_extract_with_a_wrong_shaped_schema_exits_2(tmp_path: Path, schema: object, message: str) -> None:
    pdf = tmp_path / "r.pdf"
    doc = pymupdf.open()
    doc.new_page(width=300, height=200).insert_text((20, 50), "TOTAL 5.00")
    doc.save(pdf)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(schema))
    res = CliRunner().invoke(main, ["extract", str(pdf), "--schema", str(path), "-o", str(tmp_path / "out"),
                                    "--engine", "scripted"])
    assert res.exit_code == 2, res.output
    assert message in res.output and "Traceback" not in res.output
