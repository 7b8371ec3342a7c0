"""Grounding: model output text -> boxes in the model's frame -> lines in page pixels.

Public API (shared by every VLM engine and by `docvlm reparse`, so both take one code path):

- `parse_output(raw_text, family) -> ParseResult`: every known box syntax, never raises.
    * Qwen2-VL box tokens: `<|object_ref_start|>text<|object_ref_end|><|box_start|>(x1,y1),(x2,y2)<|box_end|>`,
      with or without the object ref, several boxes per ref, stray text in between.
    * Qwen2.5-VL / Qwen3-VL JSON: objects with `bbox_2d` and `text_content` / `label` / `text` / `value`
      (and `field` / `key` as the label), in or out of ```json fences, nested under keys, and truncated at the
      token limit (the complete objects before the cut are kept; the cut is an error).
    * Qwen's HTML document format: elements with `data-bbox="x1 y1 x2 y2"`.
    * `point_2d` objects are skipped with an error (a point is not a box).
  The syntax does not decide the frame: `geometry.model_to_page` applies the family's convention.
- `boxes_to_lines(parse_result, tile, family, page_size) -> (lines, errors)`: through `geometry.model_to_page`
  (clamped to the tile, inverted/empty boxes reported as `invalid_box`).
- `merge_tiles(lines)`: duplicates from overlapping tiles merged (`geometry.merge_duplicate_lines`).
- `page_lines_from_outputs(plan, outputs, ...) -> (lines, errors)`: all of the above for one page.

Error codes produced here are `parse` and `invalid_box`; `docvlm reparse` recomputes exactly those.
"""

from __future__ import annotations

import html
import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import Field

from docvlm.datamodel import Box, DocumentResult, ErrorItem, Frozen, Line, Word
from docvlm.geometry import (
    clamp_box,
    is_valid_box,
    merge_duplicate_lines,
    model_to_page,
    split_line_into_words,
)

if TYPE_CHECKING:
    from docvlm.datamodel import EncodingPlan, Family, TileOutput, TilePlan

GROUNDING_ERROR_CODES = ("parse", "invalid_box")


@dataclass(frozen=True)
class GroundedItem:
    """One box the model printed, in the model's frame (see docvlm.geometry), with its text and/or label."""

    text: str
    box_model: tuple[float, float, float, float]
    label: str | None = None


@dataclass(frozen=True)
class ParseResult:
    items: list[GroundedItem] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


_REF = r"<\|object_ref_start\|>(?P<ref>.*?)<\|object_ref_end\|>"
_BOX = r"<\|box_start\|>(?P<box>.*?)<\|box_end\|>"
_TOKEN_RE = re.compile(rf"{_REF}|{_BOX}", re.S)
_NUM = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")
_SPECIAL = re.compile(r"<\|[a-z_]+\|>")
_HTML_BBOX = re.compile(r"<(?P<tag>[a-zA-Z][\w-]*)\b[^<>]*?data-bbox\s*=\s*[\"'](?P<box>[^\"']*)[\"'][^<>]*>", re.S)
_TAG = re.compile(r"<[^<>]*>")
_TEXT_KEYS = ("text_content", "text", "content", "value")
_LABEL_KEYS = ("label", "field", "key", "name")
_MAX_SNIPPET = 60


def _snip(text: str) -> str:
    text = " ".join(text.split())
    return repr(text[:_MAX_SNIPPET] + ("..." if len(text) > _MAX_SNIPPET else ""))


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


def parse_output(raw_text: str, family: Family | str | None = None) -> ParseResult:
    """Parse one tile's raw model output into boxes in the model frame. Never raises.

    Args:
        raw_text: decoded output, special tokens kept.
        family: the model family (accepted for symmetry; every syntax is recognised for every family, and the
            frame of the numbers is applied later by geometry).

    Returns:
        ParseResult with the items in output order and one error string per unparseable part.
    """
    items: list[GroundedItem] = []
    errors: list[str] = []
    try:
        text = raw_text if isinstance(raw_text, str) else str(raw_text)
        text = text.replace("<|im_end|>", "").replace("<|endoftext|>", "")
        if "<|box_start|>" in text:
            _parse_box_tokens(text, items, errors)
            text = _TOKEN_RE.sub(" ", text)
        if "data-bbox" in text:
            _parse_html(text, items, errors)
            text = _HTML_BBOX.sub(" ", text)
        if "bbox_2d" in text or "point_2d" in text:
            _parse_json(text, items, errors)
        rest = _TAG.sub(" ", re.sub(r"```(?:json|JSON|html|HTML)?", " ", text)).strip()
        if not items and not errors and rest not in ("", "[]", "{}"):
            errors.append(f"no boxes found in the output: {_snip(rest)}")
    except Exception as exc:  # noqa: BLE001 - the parser must never raise; the failure is recorded
        errors.append(f"parser failure {type(exc).__name__}: {exc}")
    return ParseResult(items=items, errors=errors)


def boxes_to_lines(
    parse_result: ParseResult,
    tile: TilePlan,
    family: Family,
    page_size: tuple[int, int],
    *,
    page_index: int | None = None,
    where: str = "",
    label: str | None = None,
) -> tuple[list[Line], list[ErrorItem]]:
    """Map parsed boxes of one tile to page-pixel lines.

    Each box goes through `geometry.model_to_page` (model frame -> encoded px, clamped to the tile -> page px),
    then is clamped to the page. An inverted or empty box becomes an `invalid_box` ErrorItem, never a line.

    Args:
        parse_result: output of `parse_output` for this tile.
        tile: the tile the model saw.
        family: model family (decides the frame of the numbers).
        page_size: (width, height) of the page in page pixels.
        page_index: 0-based page index recorded on errors.
        where: prefix naming the file (and page) for error messages.
        label: label for lines whose item has none (e.g. the grounding query).
    """
    lines: list[Line] = []
    errors: list[ErrorItem] = []
    pw, ph = page_size
    prefix = f"{where}: " if where else ""
    for item in parse_result.items:
        box_page = model_to_page(item.box_model, tile, family)
        if box_page is not None:
            box_page = _round_box(clamp_box(box_page, pw, ph))
        if box_page is None or not is_valid_box(box_page):
            errors.append(
                ErrorItem(
                    code="invalid_box",
                    message=f"{prefix}tile {tile.index}: box {list(item.box_model)} for {_snip(item.text)} "
                    "is inverted or empty inside the tile; the line is not kept",
                    page=page_index,
                    tile=tile.index,
                )
            )
            continue
        text = item.text or item.label or ""
        words = [Word(text=t, bbox_page_px=b) for t, b in split_line_into_words(text, box_page)]
        lines.append(
            Line(
                text=text,
                bbox_page_px=box_page,
                words=[w.model_copy(update={"bbox_page_px": _round_box(w.bbox_page_px)}) for w in words
                       if is_valid_box(_round_box(w.bbox_page_px))],
                label=item.label or label,
                tile=tile.index,
            )
        )
    return lines, errors


def _round_box(box: Box) -> Box:
    return (round(box[0], 3), round(box[1], 3), round(box[2], 3), round(box[3], 3))


def merge_tiles(lines: Sequence[Line], *, thumbnail_tiles: set[int] | frozenset[int] = frozenset()) -> list[Line]:
    """Merge lines read twice from overlapping tiles (IoU plus text similarity).

    Lines read from a thumbnail (coarser: fewer encoded pixels per page pixel) only fill gaps: one that
    duplicates a line from a full-resolution tile is dropped, never preferred.
    """
    main = merge_duplicate_lines([ln for ln in lines if ln.tile not in thumbnail_tiles])
    for ln in lines:
        if ln.tile in thumbnail_tiles and len(merge_duplicate_lines([*main, ln])) > len(main):
            main.append(ln)
    return main


def page_lines_from_outputs(
    plan: EncodingPlan,
    outputs: Sequence[TileOutput],
    *,
    page_index: int | None = None,
    where: str = "",
    label: str | None = None,
) -> tuple[list[Line], list[ErrorItem]]:
    """Parse every tile output of a page, map the boxes to page pixels and merge across tiles.

    Returns the page's lines and the `parse` / `invalid_box` errors. Outputs with stop_reason "error" (failed
    requests) are skipped; an output for a tile index that is not in the plan is a `parse` error.
    """
    tiles = {t.index: t for t in plan.tiles}
    prefix = f"{where}: " if where else ""
    lines: list[Line] = []
    errors: list[ErrorItem] = []
    for out in outputs:
        if out.stop_reason == "error":
            continue  # the request failed; the engine reported it, its text (if any) is not an answer
        tile = tiles.get(out.tile)
        if tile is None:
            errors.append(
                ErrorItem(code="parse", message=f"{prefix}output for tile {out.tile} which is not in the plan",
                          page=page_index, tile=out.tile)
            )
            continue
        parsed = parse_output(out.raw_text, plan.family)
        for msg in parsed.errors:
            errors.append(ErrorItem(code="parse", message=f"{prefix}tile {tile.index}: {msg}",
                                    page=page_index, tile=tile.index))
        tile_lines, tile_errors = boxes_to_lines(
            parsed, tile, plan.family, plan.page_size_px, page_index=page_index, where=where, label=label
        )
        lines.extend(tile_lines)
        errors.extend(tile_errors)
    thumbs = {t.index for t in plan.tiles if t.kind == "thumbnail"}
    return merge_tiles(lines, thumbnail_tiles=thumbs), errors


class GroundMatch(Frozen):
    """One box answering a grounding query (the `docvlm ground` output)."""

    page: int = Field(description="0-based page index.")
    label: str | None = Field(default=None, description="The label the model gave, or the query.")
    text: str = Field(default="", description="Text inside the box, when the model gave it.")
    bbox_page_px: Box = Field(description="Box in page pixels [x0, y0, x1, y1].")
    bbox_pdf_pt: Box | None = Field(default=None, description="Box in PDF points (PDF pages only).")


def ground_matches(result: DocumentResult, query: str | None = None) -> list[GroundMatch]:
    """The boxes of a grounding run, page by page (every line of a ground result answers the query)."""
    return [
        GroundMatch(page=p.index, label=ln.label or query, text=ln.text, bbox_page_px=ln.bbox_page_px,
                    bbox_pdf_pt=ln.bbox_pdf_pt)
        for p in result.pages
        for ln in p.lines
    ]
