"""Where extraction schemas come from: a built-in name, `path/to/file.py:Model`, or a JSON Schema file.

Every schema ends up as a pydantic model whose fields are value objects (`docvlm.extract.models`). A user's
model with plain types (str, date, Decimal, ...) is wrapped field by field; a JSON Schema file is turned into
such a model with `pydantic.create_model` (so validation is pydantic's in every case).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import sys
import types
import typing
from dataclasses import dataclass
from datetime import date, time
from decimal import Decimal
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, create_model

from docvlm.errors import UsageError
from docvlm.extract.models import (
    VALUE_CLASSES,
    BoolField,
    DateField,
    FieldBase,
    NumberField,
    SchemaModel,
    TextField,
    TimeField,
)

BUILTIN_SCHEMAS = {"invoice": "invoice.py:Invoice", "receipt": "receipt.py:Receipt"}
AUTO_SCHEMA = "auto"
"""The schema spec that picks `receipt` or `invoice` per document from its cues (`docvlm.extract.choose`)."""


@dataclass(frozen=True)
class FieldSpec:
    """One field of a schema: a value object leaf, or a list of items with their own leaves."""

    name: str
    kind: str  # a VALUE_CLASSES key, or "list"
    description: str | None = None
    items: tuple[FieldSpec, ...] = ()


@dataclass(frozen=True)
class LoadedSchema:
    name: str  # "invoice", or the spec the user gave
    model: type[BaseModel]
    fields: tuple[FieldSpec, ...]

    def json_schema(self) -> dict[str, Any]:
        return self.model.model_json_schema()


def _auto_schema() -> LoadedSchema:
    """`auto`: no fields of its own; its JSON Schema holds both built-ins, so the resume digest follows them."""
    from pydantic import create_model

    inv, rec = load_schema("invoice"), load_schema("receipt")
    model = create_model("AutoSchema", __doc__="receipt or invoice, chosen per document from its cues",
                         invoice=(inv.model | None, None), receipt=(rec.model | None, None))
    return LoadedSchema(AUTO_SCHEMA, model, ())


def schemas_dir() -> Path:
    """The schemas folder: repo_root/schemas in a checkout, else the copy shipped in the wheel."""
    pkg = Path(__file__).resolve().parent.parent
    repo = pkg.parent / "schemas"
    if (repo / "invoice.py").is_file():
        return repo
    return pkg / "_data" / "schemas"


def load_schema(spec: str) -> LoadedSchema:
    """Load a schema by built-in name, `file.py:Model` (or `file.py`, taking its `SCHEMA`), or `*.json`.

    Raises:
        docvlm.errors.UsageError: naming the file and how to fix the spec.
    """
    if spec == AUTO_SCHEMA:
        return _auto_schema()
    if spec in BUILTIN_SCHEMAS:
        file, _, attr = BUILTIN_SCHEMAS[spec].partition(":")
        model = _model_from_py(schemas_dir() / file, attr, shown=spec)
        return LoadedSchema(spec, model, describe_fields(model))
    path_part, sep, attr = spec.rpartition(":") if spec.count(":") and not Path(spec).exists() else (spec, "", "")
    path = Path(path_part)
    if not path.is_file():
        raise UsageError(
            f"schema {spec!r}: no such built-in schema or file; use one of {', '.join(BUILTIN_SCHEMAS)}, "
            "path/to/file.py:Model or a JSON Schema file"
        )
    if path.suffix == ".json":
        try:
            schema = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise UsageError(f"{path}: not a readable JSON Schema file: {exc}") from None
        model = model_from_json_schema(schema, name=path.stem, shown=str(path))
    elif path.suffix == ".py":
        model = wrap_model(_model_from_py(path, attr or None, shown=spec))
    else:
        raise UsageError(f"{path}: a schema is a .py file (file.py:Model) or a JSON Schema .json file")
    return LoadedSchema(spec, model, describe_fields(model))


def _model_from_py(path: Path, attr: str | None, *, shown: str) -> type[BaseModel]:
    digest = hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:10]
    mod_name = f"docvlm_user_schema_{path.stem}_{digest}"
    module = sys.modules.get(mod_name)
    if module is None:
        spec = importlib.util.spec_from_file_location(mod_name, path)
        if spec is None or spec.loader is None:
            raise UsageError(f"{path}: cannot be imported as a Python module")
        module = importlib.util.module_from_spec(spec)
        sys.modules[mod_name] = module
        try:
            spec.loader.exec_module(module)
        except Exception as exc:  # a user's file failing to import is a usage error naming it
            del sys.modules[mod_name]
            raise UsageError(f"{path}: importing the schema failed: {type(exc).__name__}: {exc}") from None
    obj = getattr(module, attr or "SCHEMA", None)
    if not (isinstance(obj, type) and issubclass(obj, BaseModel)):
        raise UsageError(
            f"schema {shown!r}: {path} has no pydantic model named {attr or 'SCHEMA'!r}; "
            "write path/to/file.py:ModelName"
        )
    return obj


def _unwrap_optional(tp: Any) -> Any:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    if origin is typing.Annotated:
        return _unwrap_optional(typing.get_args(tp)[0])
    return tp


PLAIN_TYPES: dict[Any, type[FieldBase]] = {
    str: TextField, date: DateField, time: TimeField, Decimal: NumberField, float: NumberField,
    int: NumberField, bool: BoolField,
}


def wrap_model(model: type[BaseModel]) -> type[BaseModel]:
    """A user model with plain field types -> the same model with value objects (already wrapped: unchanged)."""
    fields: dict[str, Any] = {}
    changed = False
    for name, info in model.model_fields.items():
        tp = _unwrap_optional(info.annotation)
        if isinstance(tp, type) and issubclass(tp, FieldBase):
            fields[name] = (tp, Field(default_factory=tp, description=info.description))
            continue
        if typing.get_origin(tp) is list:
            (item,) = typing.get_args(tp) or (str,)
            item = _unwrap_optional(item)
            if isinstance(item, type) and issubclass(item, BaseModel):
                wrapped = wrap_model(item)
                changed |= wrapped is not item
                fields[name] = (list[wrapped], Field(default_factory=list, description=info.description))
                continue
        cls = PLAIN_TYPES.get(tp)
        if cls is None:
            raise UsageError(
                f"schema {model.__name__}.{name}: type {tp!r} is not supported; use str, date, time, Decimal, "
                "float, int, bool, a docvlm value field, or a list of models of those"
            )
        fields[name] = (cls, Field(default_factory=cls, description=info.description))
        changed = True
    if not changed:
        return model
    return create_model(model.__name__, __base__=SchemaModel, __doc__=model.__doc__, **fields)


def model_from_json_schema(schema: dict[str, Any], *, name: str, shown: str) -> type[BaseModel]:
    """Build a schema model from a JSON Schema object (plain types, or docvlm's exported value fields)."""
    defs = schema.get("$defs", {})

    def resolve(prop: dict[str, Any]) -> dict[str, Any]:
        if "$ref" in prop:
            return {"$ref_name": prop["$ref"].rsplit("/", 1)[-1], **defs.get(prop["$ref"].rsplit("/", 1)[-1], {})}
        return prop

    def build(obj: dict[str, Any], model_name: str) -> type[BaseModel]:
        if obj.get("type", "object") != "object" or "properties" not in obj:
            raise UsageError(f"{shown}: {model_name} must be a JSON Schema object with 'properties'")
        fields: dict[str, Any] = {}
        for key, raw_prop in obj["properties"].items():
            prop = resolve(raw_prop)
            desc = raw_prop.get("description") or prop.get("description")
            ref = prop.get("$ref_name")
            tag = (prop.get("properties", {}).get("type", {}) or {}).get("const")
            if tag in VALUE_CLASSES:  # an exported docvlm value field
                cls = VALUE_CLASSES[tag]
                fields[key] = (cls, Field(default_factory=cls, description=desc))
                continue
            typ = prop.get("type")
            if isinstance(typ, list):
                typ = next((t for t in typ if t != "null"), "string")
            if typ == "array":
                item = resolve(prop.get("items", {}))
                sub = build(item, (item.get("$ref_name") or key.title().replace("_", "")) + "Item")
                fields[key] = (list[sub], Field(default_factory=list, description=desc))
                continue
            if typ == "object" or ref and "properties" in prop:
                raise UsageError(f"{shown}: nested object {key!r} is not supported; use flat fields or arrays")
            fmt = prop.get("format")
            cls = {
                ("string", "date"): DateField, ("string", "time"): TimeField,
            }.get((typ, fmt)) or {"number": NumberField, "integer": NumberField, "boolean": BoolField}.get(
                typ or "string", TextField
            )
            if prop.get("x-docvlm-type") in VALUE_CLASSES:
                cls = VALUE_CLASSES[prop["x-docvlm-type"]]
            fields[key] = (cls, Field(default_factory=cls, description=desc))
        return create_model(model_name, __base__=SchemaModel, __doc__=obj.get("description"), **fields)

    return build(schema, schema.get("title") or name.title())


def describe_fields(model: type[BaseModel]) -> tuple[FieldSpec, ...]:
    """The leaves and list fields of a (wrapped) schema model."""
    out = []
    for name, info in model.model_fields.items():
        tp = _unwrap_optional(info.annotation)
        if typing.get_origin(tp) is list:
            (item,) = typing.get_args(tp)
            out.append(FieldSpec(name, "list", info.description, describe_fields(item)))
        elif isinstance(tp, type) and issubclass(tp, FieldBase):
            out.append(FieldSpec(name, tp.model_fields["type"].default, info.description))
        else:
            raise UsageError(f"schema {model.__name__}.{name}: not a value field; wrap the model first")
    return tuple(out)


def export_schema_files(directory: Path | None = None) -> list[Path]:
    """Write `<name>.schema.json` for every built-in schema (what `docvlm schema NAME` prints)."""
    directory = directory or schemas_dir()
    written = []
    for name in BUILTIN_SCHEMAS:
        path = directory / f"{name}.schema.json"
        path.write_text(json.dumps(load_schema(name).json_schema(), indent=2) + "\n", encoding="utf-8")
        written.append(path)
    return written
