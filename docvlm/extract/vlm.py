"""Model answers to the extraction prompt: parse (repairing fenced or truncated JSON), validate, ask once more.

The prompt (prompts/extract/<family>.txt) asks for a flat list of `{"field", "value", "bbox_2d"}` objects
(Qwen2.5-VL, Qwen3-VL) or box-token rows `field: value` (Qwen2-VL); list fields are named `items[0].amount`.
Values are normalized (dates, amounts, currencies) and then validated by the schema's pydantic value classes;
what fails is listed in a second request, once. Boxes are mapped from the model frame to page pixels by
`docvlm.geometry`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from docvlm.datamodel import Box, Family, TilePlan
from docvlm.extract.models import VALUE_CLASSES, FieldBase
from docvlm.extract.normalize import currency_code, parse_amount, parse_date, parse_time
from docvlm.extract.schema_loading import FieldSpec
from docvlm.geometry import model_to_page

QWEN2_ROW = re.compile(
    r"<\|object_ref_start\|>(?P<ref>.*?)<\|object_ref_end\|>\s*<\|box_start\|>\s*\(\s*(?P<x1>-?\d+(?:\.\d+)?)\s*,\s*"
    r"(?P<y1>-?\d+(?:\.\d+)?)\s*\)\s*,\s*\(\s*(?P<x2>-?\d+(?:\.\d+)?)\s*,\s*(?P<y2>-?\d+(?:\.\d+)?)\s*\)\s*<\|box_end\|>",
    re.DOTALL,
)
PATH = re.compile(r"^\s*(?P<name>[A-Za-z_][\w]*)\s*(?:\[(?P<index>\d+)\]\s*\.\s*(?P<sub>[A-Za-z_]\w*))?\s*$")


@dataclass(frozen=True)
class AnswerItem:
    """One field of a model answer: its path (`total`, `line_items[2].amount`), value as given, box in the model frame."""

    path: str
    value: Any
    box_model: tuple[float, float, float, float] | None


@dataclass
class ParsedAnswer:
    items: list[AnswerItem] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    repaired: bool = False


def strip_fences(text: str) -> str:
    """Remove ```json fences, <|im_end|> and other special tokens around the answer."""
    text = re.sub(r"<\|im_end\|>|<\|endoftext\|>", "", text)
    m = re.search(r"```(?:json)?\s*(.*?)(?:```|$)", text, re.DOTALL)
    return m.group(1).strip() if m else text.strip()


def repair_json(text: str) -> tuple[Any, bool]:
    """Parse JSON, repairing a truncated answer by cutting after the last complete element and closing brackets.

    Returns:
        (parsed value, repaired?). Raises ValueError when nothing parseable remains.
    """
    start = min([i for i in (text.find("["), text.find("{")) if i >= 0], default=-1)
    if start < 0:
        raise ValueError("no JSON list or object in the answer")
    body = text[start:]
    try:
        return json.loads(body), False
    except ValueError:
        pass
    # try the longest prefix, ending at a closing brace, that parses once its open brackets are closed
    for end in sorted({m.end() for m in re.finditer(r"[}\]]", body)}, reverse=True):
        prefix = body[:end].rstrip().rstrip(",")
        stack = []
        in_str = esc = False
        for ch in prefix:
            if in_str:
                esc = not esc and ch == "\\"
                if ch == '"' and not esc:
                    in_str = False
                continue
            if ch == '"':
                in_str = True
            elif ch in "[{":
                stack.append("]" if ch == "[" else "}")
            elif ch in "]}" and stack:
                stack.pop()
        if in_str:
            continue
        try:
            return json.loads(prefix + "".join(reversed(stack))), True
        except ValueError:
            continue
    raise ValueError("the JSON answer is malformed and could not be repaired")


def _box(raw: Any) -> tuple[float, float, float, float] | None:
    if isinstance(raw, (list, tuple)) and len(raw) == 4 and all(isinstance(v, (int, float)) for v in raw):
        return tuple(float(v) for v in raw)  # type: ignore[return-value]
    return None


def parse_answer(raw_text: str, family: Family) -> ParsedAnswer:
    """A model's raw answer -> flat field items (both the JSON convention and Qwen2-VL's box tokens)."""
    out = ParsedAnswer()
    rows = list(QWEN2_ROW.finditer(raw_text))
    if rows:
        for m in rows:
            name, sep, value = m.group("ref").partition(":")
            if not sep:
                out.errors.append(f"row {m.group('ref')!r}: expected 'field_name: value'")
                continue
            box = tuple(float(m.group(k)) for k in ("x1", "y1", "x2", "y2"))
            out.items.append(AnswerItem(name.strip(), value.strip(), box))  # type: ignore[arg-type]
        return out
    text = strip_fences(raw_text)
    try:
        data, out.repaired = repair_json(text)
    except ValueError as exc:
        out.errors.append(f"{exc}: {text[:80]!r}")
        return out
    if isinstance(data, dict):
        # tolerated alternative: {"field": value | {"value": ..., "bbox_2d": [...]}, "items": [{...}, ...]}
        flat: list[Any] = []
        for name, v in data.items():
            if isinstance(v, list) and v and all(isinstance(x, dict) and "field" not in x for x in v):
                for i, item in enumerate(v):
                    for sub, sv in item.items():
                        flat.append({"field": f"{name}[{i}].{sub}", **(sv if isinstance(sv, dict) else {"value": sv})})
            else:
                flat.append({"field": name, **(v if isinstance(v, dict) else {"value": v})})
        data = flat
    if not isinstance(data, list):
        out.errors.append("the answer is not a JSON list of fields")
        return out
    for i, obj in enumerate(data):
        if not isinstance(obj, dict) or "field" not in obj:
            out.errors.append(f"item {i}: expected an object with 'field', 'value' and 'bbox_2d'")
            continue
        out.items.append(AnswerItem(str(obj["field"]), obj.get("value"), _box(obj.get("bbox_2d") or obj.get("bbox"))))
    return out


def normalize_value(kind: str, value: Any) -> tuple[Any, dict[str, Any]]:
    """A model's value -> what the value class validates (typed when the text reads as one), plus extras."""
    if value is None or isinstance(value, (dict, list)):
        return value, {}
    text = str(value).strip()
    if kind == "date":
        parsed = parse_date(text)
        return (parsed if parsed is not None else text), {}
    if kind == "time":
        got = parse_time(text)
        return (got[0] if got else text), {}
    if kind in ("money", "number"):
        got = parse_amount(value) if not isinstance(value, bool) else None
        if got is None:
            return text, {}
        amount, cur = got
        return amount, ({"currency": cur} if kind == "money" and cur else {})
    if kind == "currency":
        return (currency_code(text) or text), {}
    if kind == "boolean":
        return value, {}
    return text, {}


@dataclass
class ValidatedAnswer:
    """Value objects built from one answer (boxes still in the model frame), and what failed validation."""

    scalars: dict[str, tuple[FieldBase, Box | None]] = field(default_factory=dict)
    items: dict[str, dict[int, dict[str, tuple[FieldBase, Box | None]]]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    invalid: dict[str, tuple[str, str]] = field(default_factory=dict)  # path -> (raw, error)


def validate_answer(parsed: ParsedAnswer, specs: tuple[FieldSpec, ...]) -> ValidatedAnswer:
    """Check every answered field against the schema: known name, value valid for its value class."""
    by_name = {s.name: s for s in specs}
    out = ValidatedAnswer(errors=list(parsed.errors))
    for item in parsed.items:
        m = PATH.match(item.path)
        spec = by_name.get(m.group("name")) if m else None
        if m is None or spec is None:
            out.errors.append(f"{item.path}: unknown field; the schema's fields are {', '.join(by_name)}")
            continue
        if spec.kind == "list":
            sub = {s.name: s for s in spec.items}.get(m.group("sub") or "")
            if m.group("index") is None or sub is None:
                out.errors.append(f"{item.path}: a list field is answered as {spec.name}[i].<{'|'.join(sub_names(spec))}>")
                continue
            leaf, path = sub, item.path
        elif m.group("index") is not None:
            out.errors.append(f"{item.path}: {spec.name} is not a list field")
            continue
        else:
            leaf, path = spec, spec.name
        value, extra = normalize_value(leaf.kind, item.value)
        raw = None if item.value is None else str(item.value)
        cls = VALUE_CLASSES[leaf.kind]
        try:
            obj = cls(value=value, raw=raw, source="model", status="unverified" if value is not None else "missing",
                      **extra)
        except ValidationError as exc:
            msg = "; ".join(e["msg"] for e in exc.errors())
            out.errors.append(f"{path}: {raw!r} is not a valid {leaf.kind} ({msg})")
            out.invalid[path] = (raw or "", msg)
            continue
        if spec.kind == "list":
            out.items.setdefault(spec.name, {}).setdefault(int(m.group("index")), {})[leaf.name] = (obj, item.box_model)
        else:
            out.scalars.setdefault(spec.name, (obj, item.box_model))
    return out


def sub_names(spec: FieldSpec) -> list[str]:
    return [s.name for s in spec.items]


def retry_prompt(user_prompt: str, errors: list[str]) -> str:
    """The prompt of the second request: the original one, plus the problems of the first answer."""
    listed = "\n".join(f"- {e}" for e in errors[:20])
    return (f"{user_prompt}\n\nYour previous answer could not be used:\n{listed}\n"
            "Answer again in the same format, with values of the right types, using only the schema's field names.")


def answer_schema_json(specs: tuple[FieldSpec, ...]) -> str:
    """A compact JSON Schema of the fields for the prompt (plain value types; boxes are asked for separately)."""
    def leaf(s: FieldSpec) -> dict[str, Any]:
        base: dict[str, Any] = {
            "text": {"type": "string"}, "date": {"type": "string", "format": "date"},
            "time": {"type": "string", "format": "time"}, "number": {"type": "number"},
            "money": {"type": "number"}, "currency": {"type": "string", "description": "ISO 4217 code"},
            "boolean": {"type": "boolean"},
        }[s.kind].copy()
        if s.description and "description" not in base:
            base["description"] = s.description
        return base

    props: dict[str, Any] = {}
    for s in specs:
        if s.kind == "list":
            props[s.name] = {"type": "array", "items": {"type": "object",
                                                         "properties": {i.name: leaf(i) for i in s.items}}}
        else:
            props[s.name] = leaf(s)
    return json.dumps({"type": "object", "properties": props}, ensure_ascii=False)


def box_to_page(box_model: Box | None, tile: TilePlan | None, family: Family) -> tuple[Box | None, str | None]:
    """Model-frame box -> page pixels through the tile; (None, reason) for a box that cannot be used."""
    if box_model is None:
        return None, None
    if tile is None:
        return None, "no tile plan for this answer"
    page_box = model_to_page(box_model, tile, family)
    if page_box is None:
        return None, f"box {list(box_model)} is empty or inverted after clamping to its tile"
    return page_box, None
