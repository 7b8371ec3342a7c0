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


def model_from_json_schema(schema: Any, *, name: str, shown: str) -> type[BaseModel]:
    """Build a schema model from a JSON Schema object (plain types, or docvlm's exported value fields).

    Raises:
        docvlm.errors.UsageError: a schema of the wrong shape (not an object, `properties` not an object, a
            property that is not an object, a `$ref` that names nothing or refers to itself), naming where.
    """
    if not isinstance(schema, dict):
        raise UsageError(f"{shown}: a JSON Schema must be an object ({{\"type\": \"object\", \"properties\": "
                         f"{{...}}}}), not {_json_kind(schema)}")
    defs = schema.get("$defs", {})
    if not isinstance(defs, dict):
        raise UsageError(f"{shown}: '$defs' must be an object mapping names to schemas, not {_json_kind(defs)}")

    def resolve(prop: Any, where: str, refs: tuple[str, ...]) -> dict[str, Any]:
        if not isinstance(prop, dict):
            raise UsageError(f"{shown}: {where} must be a JSON Schema object such as {{\"type\": \"string\"}}, "
                             f"not {_json_kind(prop)}")
        if "$ref" not in prop:
            return prop
        ref = prop["$ref"]
        if not isinstance(ref, str) or not ref.startswith("#/$defs/"):
            raise UsageError(f"{shown}: {where}: '$ref' must be a string '#/$defs/Name', not {ref!r}")
        ref_name = ref.rsplit("/", 1)[-1]
        if ref_name not in defs:
            raise UsageError(f"{shown}: {where}: '$ref' {ref!r} names no entry of '$defs'")
        if ref_name in refs:
            chain = " -> ".join((*refs, ref_name))
            raise UsageError(f"{shown}: {where}: recursive '$ref' ({chain}); docvlm schemas cannot nest a type "
                             "inside itself")
        target = defs[ref_name]
        if not isinstance(target, dict):
            raise UsageError(f"{shown}: '$defs/{ref_name}' must be an object, not {_json_kind(target)}")
        return {"$ref_name": ref_name, "$refs": (*refs, ref_name), **target}

    def build(obj: dict[str, Any], model_name: str, where: str, refs: tuple[str, ...]) -> type[BaseModel]:
        props = obj.get("properties")
        if obj.get("type", "object") != "object" or props is None:
            raise UsageError(f"{shown}: {where} must be a JSON Schema object with 'properties'")
        if not isinstance(props, dict):
            raise UsageError(f"{shown}: {where}: 'properties' must be an object mapping field names to schemas, "
                             f"not {_json_kind(props)}")
        fields: dict[str, Any] = {}
        for key, raw_prop in props.items():
            here = f"{where}.properties.{key}"
            prop = resolve(raw_prop, here, refs)
            desc = raw_prop.get("description") or prop.get("description")
            if desc is not None and not isinstance(desc, str):
                raise UsageError(f"{shown}: {here}: 'description' must be a string")
            ref = prop.get("$ref_name")
            sub_props = prop.get("properties", {})
            type_prop = sub_props.get("type", {}) if isinstance(sub_props, dict) else None
            tag = type_prop.get("const") if isinstance(type_prop, dict) else None
            if isinstance(tag, str) and tag in VALUE_CLASSES:  # an exported docvlm value field
                cls = VALUE_CLASSES[tag]
                fields[key] = (cls, Field(default_factory=cls, description=desc))
                continue
            typ = prop.get("type")
            if isinstance(typ, list):
                typ = next((t for t in typ if t != "null"), "string")
            if typ is not None and typ not in JSON_TYPES:
                raise UsageError(f"{shown}: {here}: 'type' must be one of {', '.join(sorted(JSON_TYPES))}, "
                                 f"not {typ!r}")
            if typ == "array":
                item = resolve(prop.get("items", {}), f"{here}.items", prop.get("$refs", refs))
                sub = build(item, (item.get("$ref_name") or key.title().replace("_", "")) + "Item",
                            f"{here}.items", item.get("$refs", refs))
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
        doc = obj.get("description")
        try:
            return create_model(model_name, __base__=SchemaModel, __doc__=doc if isinstance(doc, str) else None,
                                **fields)
        except Exception as exc:  # noqa: BLE001 - pydantic refusing a field: the user's schema, said as such
            raise UsageError(f"{shown}: {where}: cannot build a model: {type(exc).__name__}: {exc}") from None

    title = schema.get("title")
    return build(schema, title if isinstance(title, str) and title else name.title(), "schema", ())


JSON_TYPES = frozenset({"string", "number", "integer", "boolean", "array", "object", "null"})
"""The JSON Schema `type` names."""


def _json_kind(value: Any) -> str:
    """How a JSON value is named in an error: 'an array', 'a string "x"', ..."""
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return f"a string {value!r}"
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, int | float):
        return f"a number {value}"
    return "an object"


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
