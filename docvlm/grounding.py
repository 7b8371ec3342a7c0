"""Grounding: model output text -> boxes in the model's frame -> lines in page pixels.

Public API (shared by every VLM engine and by `docvlm reparse`, so both take one code path):

- `parse_output(raw_text, family) -> ParseResult`: the family's parser (docvlm.families: Qwen's syntaxes below,
  PaliGemma `<locNNNN>`, Florence-2 `<loc_N>`, DeepSeek-OCR `<|det|>`, LLaVA-NeXT text lines / 0-1 boxes);
  never raises. The Qwen parser (docvlm.families.qwen) reads:
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

from collections.abc import Sequence
from typing import TYPE_CHECKING

from pydantic import Field

from docvlm.datamodel import Box, DocumentResult, ErrorItem, Frozen, Line, Word
from docvlm.families.base import GroundedItem, ParseResult
from docvlm.families.qwen import parse_qwen_output
from docvlm.geometry import (
    clamp_box,
    is_valid_box,
    merge_duplicate_lines,
    model_to_page,
    split_line_into_words,
)

if TYPE_CHECKING:
    from docvlm.datamodel import EncodingPlan, Family, TileOutput, TilePlan

GROUNDING_ERROR_CODES = ("parse", "invalid_box", "ungrounded")
__all__ = ["GroundedItem", "ParseResult", "parse_output", "boxes_to_lines", "merge_tiles", "page_lines_from_outputs"]


def parse_output(raw_text: str, family: Family | str | None = None) -> ParseResult:
    """Parse one tile's raw model output into boxes in the model frame, by the family's parser. Never raises.

    Args:
        raw_text: decoded output, special tokens kept.
        family: the model family whose convention the output is read in (None: the Qwen syntaxes, which
            every Qwen family shares). Output in another family's convention is a parse error.

    Returns:
        ParseResult with the items in output order, text lines without boxes (families that do not ground),
        and one error string per unparseable part.
    """
    from docvlm.families import get_family

    if family is None:
        return parse_qwen_output(raw_text)
    return get_family(str(family)).parse(raw_text)


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


def _snip(text: str) -> str:
    from docvlm.families.base import snip

    return snip(text)


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
    reference_lines: Sequence[Line] | None = None,
) -> tuple[list[Line], list[ErrorItem]]:
    """Parse every tile output of a page, map the boxes to page pixels and merge across tiles.

    Returns the page's lines and the `parse` / `invalid_box` / `ungrounded` errors. Outputs with stop_reason
    "error" (failed requests) are skipped; an output for a tile index that is not in the plan is a `parse` error.
    Text lines printed without boxes (a family that does not ground documents, LLaVA-NeXT) get the boxes of
    `reference_lines` (the ocr engine's lines of the page) by `docvlm.families.align`; a line OCR did not see,
    or any such line when there is no reference, is an `ungrounded` error carrying its text, never a box.
    """
    tiles = {t.index: t for t in plan.tiles}
    prefix = f"{where}: " if where else ""
    lines: list[Line] = []
    errors: list[ErrorItem] = []
    ungrounded_seen: set[str] = set()
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
        if parsed.texts:
            aligned, missing = _align_tile(parsed.texts, tile, reference_lines)
            lines.extend(aligned)
            for text in missing:
                if text in ungrounded_seen:
                    continue
                ungrounded_seen.add(text)
                why = "the ocr engine saw no such text on the page" if reference_lines is not None else \
                    "no ocr reference lines to align it with"
                errors.append(ErrorItem(code="ungrounded", message=f"{prefix}tile {tile.index}: line "
                                        f"{_snip(text)} read by the model has no box ({why})",
                                        page=page_index, tile=tile.index))
    thumbs = {t.index for t in plan.tiles if t.kind == "thumbnail"}
    return merge_tiles(lines, thumbnail_tiles=thumbs), errors


def _align_tile(texts: Sequence[str], tile: TilePlan, reference_lines: Sequence[Line] | None
                ) -> tuple[list[Line], list[str]]:
    """A tile's box-less text lines aligned with the reference lines whose centre lies in the tile."""
    from docvlm.families.align import align_lines

    if reference_lines is None:
        return [], list(texts)
    x0, y0, x1, y1 = tile.crop_page_px
    inside = [ln for ln in reference_lines
              if x0 <= (ln.bbox_page_px[0] + ln.bbox_page_px[2]) / 2 <= x1
              and y0 <= (ln.bbox_page_px[1] + ln.bbox_page_px[3]) / 2 <= y1]
    result = align_lines(texts, inside, tile=tile.index)
    return result.lines, result.ungrounded


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
