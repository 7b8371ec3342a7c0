"""Qwen2-VL, Qwen2.5-VL and Qwen3-VL: native dynamic resolution (smart_resize), three box conventions.

- qwen2:   `<|object_ref_start|>text<|object_ref_end|><|box_start|>(x1,y1),(x2,y2)<|box_end|>`, 0-1000 grid
           relative to the encoded image.
- qwen2.5: JSON `bbox_2d` [x1, y1, x2, y2] in absolute pixels of the encoded (resized) image.
- qwen3:   JSON `bbox_2d` on the 0-1000 grid again; patch 16 (factor 32) instead of 14 (factor 28).

Every Qwen syntax (box tokens, JSON, the HTML `data-bbox` document format) is recognised for every Qwen family;
the frame of the numbers is the family's. The encoding policy is docvlm.plan's planner (smart_resize fixed
points, native or tiled at the readability floor).
"""

from __future__ import annotations

import html
import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from docvlm.families.base import GroundedItem, MemoryFigures, ModelFamily, ParseResult, wrong_convention_error
from docvlm.families.base import snip as _snip

if TYPE_CHECKING:
    from docvlm.datamodel import Box, EncodingPlan

GRID = 1000.0
"""Qwen2-VL and Qwen3-VL print boxes on a 0-1000 grid relative to the encoded image."""


@dataclass(frozen=True)
class FamilySpec:
    """Vision-tower constants of a Qwen family (from the released checkpoints' configs)."""

    patch_size: int
    merge_size: int
    min_pixels: int
    max_pixels: int

    @property
    def factor(self) -> int:
        """Side of the square of pixels that becomes one visual token after the merger."""
        return self.patch_size * self.merge_size


# Qwen2-VL-*-Instruct and Qwen2.5-VL-*-Instruct preprocessor_config.json:
# min_pixels 3136 (56*56), max_pixels 12845056 (16384*28*28), patch 14, merge 2.
QWEN2_SPEC = FamilySpec(patch_size=14, merge_size=2, min_pixels=56 * 56, max_pixels=16384 * 28 * 28)
# Qwen3-VL-*-Instruct preprocessor_config.json: size.shortest_edge 65536, size.longest_edge 16777216
# (16384*32*32), patch 16, merge 2.
QWEN3_SPEC = FamilySpec(patch_size=16, merge_size=2, min_pixels=65536, max_pixels=16384 * 32 * 32)


def _four_numbers(values: Sequence[Any]) -> tuple[float, float, float, float] | None:
    """Four finite numbers (or numeric strings), else None."""
    if len(values) != 4:
        return None
    out = []
    for v in values:
        if isinstance(v, bool):
            return None
        try:
            x = float(v)
        except (TypeError, ValueError):
            return None
        if not math.isfinite(x):
            return None
        out.append(x)
    return (out[0], out[1], out[2], out[3])


# --- Qwen2-VL box tokens --------------------------------------------------------------------------------


_REF = r"<\|object_ref_start\|>(?P<ref>.*?)<\|object_ref_end\|>"
_BOX = r"<\|box_start\|>(?P<box>.*?)<\|box_end\|>"
_TOKEN_RE = re.compile(rf"{_REF}|{_BOX}", re.S)
_NUM = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")
_SPECIAL = re.compile(r"<\|[a-z_]+\|>")
_HTML_BBOX = re.compile(r"<(?P<tag>[a-zA-Z][\w-]*)\b[^<>]*?data-bbox\s*=\s*[\"'](?P<box>[^\"']*)[\"'][^<>]*>", re.S)
_TAG = re.compile(r"<[^<>]*>")
_TEXT_KEYS = ("text_content", "text", "content", "value")
_LABEL_KEYS = ("label", "field", "key", "name")




# --- Qwen2-VL box tokens --------------------------------------------------------------------------------


def _has_word(text: str) -> bool:
    return any(ch.isalnum() for ch in text)


def _parse_box_tokens(text: str, items: list[GroundedItem], errors: list[str]) -> None:
    ref: str | None = None
    ref_used = False
    last_end = 0
    for m in _TOKEN_RE.finditer(text):
        stray = _SPECIAL.sub("", text[last_end : m.start()]).strip()
        last_end = m.end()
        if m.group("ref") is not None:
            ref = _SPECIAL.sub("", m.group("ref")).strip()
            ref_used = False
            continue
        nums = _NUM.findall(m.group("box"))
        box = _four_numbers(nums)
        if box is None:
            errors.append(f"box tokens with {len(nums)} numbers instead of 4: {_snip(m.group(0))}")
            continue
        if ref is not None and (not ref_used or not _has_word(stray)):
            label_text = ref  # the ref's first box, or one more box of the same ref
        elif _has_word(stray):
            label_text = stray.splitlines()[-1].strip()  # "text<|box_start|>..." with no object ref
            ref = None
        else:
            label_text = ref or ""
        ref_used = True
        items.append(GroundedItem(text=label_text, box_model=box))
    rest = text[last_end:]
    if "<|box_start|>" in rest:
        errors.append(f"unterminated box token (output cut?): {_snip(rest[rest.index('<|box_start|>'):])}")


# --- HTML with data-bbox --------------------------------------------------------------------------------


def _parse_html(text: str, items: list[GroundedItem], errors: list[str]) -> None:
    matches = list(_HTML_BBOX.finditer(text))
    for i, m in enumerate(matches):
        end = matches[i + 1].start() if i + 1 < len(matches) else len(text)
        close = text.find(f"</{m.group('tag')}>", m.end(), end)
        if close >= 0:
            end = close  # the element's own closing tag; else up to the next element with a box
        inner = html.unescape(_TAG.sub(" ", text[m.end() : end]))
        inner = " ".join(inner.split())
        nums = _NUM.findall(m.group("box"))
        box = _four_numbers(nums)
        if box is None:
            errors.append(f"data-bbox with {len(nums)} numbers instead of 4: {_snip(m.group(0))}")
            continue
        items.append(GroundedItem(text=inner, box_model=box, label=None))


# --- JSON -----------------------------------------------------------------------------------------------


def _scan_objects(text: str) -> tuple[list[tuple[int, int]], int | None]:
    """Spans of balanced top-level {...} objects (string-aware); and the start of an unclosed one, if any."""
    spans: list[tuple[int, int]] = []
    depth = 0
    start = -1
    in_str = False
    esc = False
    for i, ch in enumerate(text):
        if in_str:
            if esc:
                esc = False
            elif ch == "\\":
                esc = True
            elif ch == '"':
                in_str = False
            continue
        if ch == '"':
            # a quote outside any object is prose, not JSON
            in_str = depth > 0
        elif ch == "{":
            if depth == 0:
                start = i
            depth += 1
        elif ch == "}" and depth > 0:
            depth -= 1
            if depth == 0:
                spans.append((start, i + 1))
    return spans, (start if depth > 0 else None)


def _loads_lenient(chunk: str) -> Any:
    try:
        return json.loads(chunk)
    except (json.JSONDecodeError, RecursionError):
        pass
    fixed = re.sub(r",\s*([}\]])", r"\1", chunk)  # trailing commas
    try:
        return json.loads(fixed)
    except (json.JSONDecodeError, RecursionError):
        return None


def _first_str(obj: dict, keys: Sequence[str]) -> str | None:
    for k in keys:
        v = obj.get(k)
        if isinstance(v, (str, int, float)) and not isinstance(v, bool):
            return str(v)
    return None


def _walk_json(obj: Any, parent_key: str | None, items: list[GroundedItem], errors: list[str], depth: int = 0) -> None:
    if depth > 20:
        return
    if isinstance(obj, list):
        for v in obj:
            _walk_json(v, parent_key, items, errors, depth + 1)
        return
    if not isinstance(obj, dict):
        return
    if "bbox_2d" in obj:
        raw = obj["bbox_2d"]
        box = _four_numbers(raw) if isinstance(raw, list) else None
        if box is None:
            errors.append(f"bbox_2d is not 4 numbers: {_snip(json.dumps(raw, default=str))}")
            return
        text = _first_str(obj, _TEXT_KEYS)
        label = _first_str(obj, _LABEL_KEYS) or parent_key
        items.append(GroundedItem(text=text if text is not None else (label or ""), box_model=box, label=label))
        return
    if "point_2d" in obj:
        errors.append(f"point_2d skipped (a point is not a box): {_snip(json.dumps(obj, default=str))}")
        return
    for k, v in obj.items():
        if isinstance(v, (dict, list)):
            _walk_json(v, str(k), items, errors, depth + 1)


def _parse_json(text: str, items: list[GroundedItem], errors: list[str]) -> None:
    body = re.sub(r"```(?:json|JSON)?", "\n", text)
    spans, open_start = _scan_objects(body)
    for a, b in spans:
        chunk = body[a:b]
        obj = _loads_lenient(chunk)
        if obj is None:
            errors.append(f"unparseable JSON object: {_snip(chunk)}")
            continue
        _walk_json(obj, None, items, errors)
    if open_start is not None:
        cut = body[open_start:]
        if "bbox_2d" in cut or "point_2d" in cut:
            errors.append(f"truncated JSON object at the end of the output (token limit?): {_snip(cut)}")


# --- entry point ----------------------------------------------------------------------------------------

QWEN_CONVENTIONS = ("Qwen2-VL box tokens", "Qwen JSON bbox_2d", "Qwen HTML data-bbox")


def parse_qwen_output(raw_text: str) -> ParseResult:
    """Parse one tile's Qwen output (box tokens, JSON, HTML) into boxes in the model frame. Never raises."""
    items: list[GroundedItem] = []
    errors: list[str] = []
    try:
        text = raw_text if isinstance(raw_text, str) else str(raw_text)
        text = text.replace("<|im_end|>", "").replace("<|endoftext|>", "")
        original = text
        if "<|box_start|>" in text:
            _parse_box_tokens(text, items, errors)
            text = _TOKEN_RE.sub(" ", text)
        if "data-bbox" in text:
            _parse_html(text, items, errors)
            text = _HTML_BBOX.sub(" ", text)
        if "bbox_2d" in text or "point_2d" in text:
            _parse_json(text, items, errors)
        wrong = wrong_convention_error(original, "Qwen", QWEN_CONVENTIONS)
        if wrong is not None:
            errors.append(wrong)
        rest = _TAG.sub(" ", re.sub(r"```(?:json|JSON|html|HTML)?", " ", text)).strip()
        if not items and not errors and rest not in ("", "[]", "{}"):
            errors.append(f"no boxes found in the output: {_snip(rest)}")
    except Exception as exc:  # noqa: BLE001 - the parser must never raise; the failure is recorded
        errors.append(f"parser failure {type(exc).__name__}: {exc}")
    return ParseResult(items=items, errors=errors)


class QwenFamily(ModelFamily):
    """Shared by the three Qwen entries: smart_resize planning, Qwen syntaxes; `relative` picks the frame."""

    relative: bool
    spec: FamilySpec
    prompt_style = "chat"
    own_conventions = QWEN_CONVENTIONS

    def model_to_encoded(self, box_model: Sequence[float], encoded_size: tuple[int, int]) -> Box:
        x0, y0, x1, y1 = (float(v) for v in box_model)
        if self.relative:
            w, h = encoded_size
            return (x0 * w / GRID, y0 * h / GRID, x1 * w / GRID, y1 * h / GRID)
        return (x0, y0, x1, y1)

    def encoded_to_model(self, box_encoded: Sequence[float], encoded_size: tuple[int, int]) -> Box:
        x0, y0, x1, y1 = (float(v) for v in box_encoded)
        if self.relative:
            w, h = encoded_size
            return (float(round(x0 / w * GRID)), float(round(y0 / h * GRID)),
                    float(round(x1 / w * GRID)), float(round(y1 / h * GRID)))
        return (float(round(x0)), float(round(y0)), float(round(x1)), float(round(y1)))

    def grid_unit_px(self, encoded_size: tuple[int, int]) -> tuple[float, float]:
        if self.relative:
            return encoded_size[0] / GRID, encoded_size[1] / GRID
        return 1.0, 1.0

    def parse(self, raw_text: str) -> ParseResult:
        return parse_qwen_output(raw_text)

    def render_output(self, items: Sequence[tuple[str, Box]], task: str = "read") -> str:
        rows = [(t, [int(v) for v in b]) for t, b in items]
        if self.name == "qwen2":
            return "\n".join(
                f"<|object_ref_start|>{t}<|object_ref_end|><|box_start|>({b[0]},{b[1]}),({b[2]},{b[3]})<|box_end|>"
                for t, b in rows
            ) + "<|im_end|>"
        return "```json\n" + json.dumps([{"bbox_2d": b, "text_content": t} for t, b in rows],
                                        ensure_ascii=False) + "\n```"

    def plan(self, page_size_px, *, text_line_px, min_text_px, max_visual_tokens, task_kind,
             text_height_source, line_height_px, device_memory_bytes) -> EncodingPlan:
        from docvlm.plan import budget_from_device, plan_page

        budget = max_visual_tokens or budget_from_device(device_memory_bytes, self.name)  # type: ignore[arg-type]
        return plan_page(page_size_px, self.name, text_line_px=text_line_px,  # type: ignore[arg-type]
                         line_height_px=line_height_px, min_text_px=min_text_px, max_visual_tokens=budget,
                         task_kind=task_kind, text_height_source=text_height_source)  # type: ignore[arg-type]

    def default_policy(self, page_size_px: tuple[int, int]) -> tuple[int, float]:
        from docvlm.plan import smart_resize

        w, h = page_size_px
        s = self.spec
        eh, ew = smart_resize(h, w, s.factor, s.min_pixels, s.max_pixels)
        return self.visual_tokens((ew, eh)), eh / h

    def visual_tokens(self, encoded_size: tuple[int, int]) -> int:
        f = self.spec.factor
        return (encoded_size[0] // f) * (encoded_size[1] // f)


class Qwen2(QwenFamily):
    name = "qwen2"
    title = "Qwen2-VL"
    convention = "<|object_ref_start|>text<|object_ref_end|><|box_start|>(x1,y1),(x2,y2)<|box_end|>"
    frame = "0-1000 grid over the encoded image (x, y separately)"
    model_types = ("qwen2_vl",)
    served_patterns = (r"qwen[-_ ]?2[-_ .]?vl",)
    hf_model_class = "Qwen2VLForConditionalGeneration"
    hf_processor_class = "Qwen2VLProcessor"
    relative = True
    spec = QWEN2_SPEC
    memory = MemoryFigures("Qwen/Qwen2-VL-2B-Instruct", 2.21, 28, 2, 128)


class Qwen25(QwenFamily):
    name = "qwen2.5"
    title = "Qwen2.5-VL"
    convention = 'JSON [{"bbox_2d": [x1, y1, x2, y2], "text_content": ...}]'
    frame = "absolute pixels of the encoded (smart_resized) image"
    model_types = ("qwen2_5_vl",)
    served_patterns = (r"qwen[-_ ]?2\.5[-_ .]?vl",)
    hf_model_class = "Qwen2_5_VLForConditionalGeneration"
    hf_processor_class = "Qwen2_5_VLProcessor"
    relative = False
    spec = QWEN2_SPEC
    memory = MemoryFigures("Qwen/Qwen2.5-VL-3B-Instruct", 3.75, 36, 2, 128)


class Qwen3(QwenFamily):
    name = "qwen3"
    title = "Qwen3-VL"
    convention = 'JSON [{"bbox_2d": [x1, y1, x2, y2], "text_content": ...}]'
    frame = "0-1000 grid over the encoded image (x, y separately)"
    model_types = ("qwen3_vl",)
    served_patterns = (r"qwen[-_ ]?3[-_ .]?vl",)
    hf_model_class = "Qwen3VLForConditionalGeneration"
    hf_processor_class = "Qwen3VLProcessor"
    relative = True
    spec = QWEN3_SPEC
    memory = MemoryFigures("Qwen/Qwen3-VL-2B-Instruct", 2.13, 28, 8, 128)
