"""Headings: role "heading" and a level, from font size and weight (text layer) or relative line height.

A block is a heading when it is short (at most 3 lines and 20 words, not ending like a sentence that runs on)
and stands out from the body:

- text layer: its font size is at least 1.15x the body size (the size that covers the most characters), or
  it is bold at about body size while the body is not bold (a run-in bold paragraph start does not count:
  the whole block must be bold and short);
- OCR and model output (no font sizes): its text height (median word-box height, which a skewed scan does not
  inflate the way it inflates a long line's box) is at least 1.3x the page's median.

Levels: the distinct heading sizes (rounded to 0.5 pt, or 10% of the line height) sorted from the largest;
level 1 is the largest, bold body-size headings come last; at most 4 levels. Captions, footnotes, tables and
furniture are never headings.
"""

from __future__ import annotations

import re
import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass

from docvlm.datamodel import FURNITURE_ROLES, Line, PageResult
from docvlm.layout.base import DocumentContext, PageContext, update_lines

SIZE_RATIO = 1.15
HEIGHT_RATIO = 1.3
MAX_LEVELS = 4
_NOT_HEADING_ROLES = {"caption", "footnote", "table", "header", "footer", "page_number", "margin"}
_SENTENCE_END = re.compile(r"[.;,]\s*$")
_NUMBERED = re.compile(r"^\s*(\d+(\.\d+)*\.?|[IVX]+\.|[A-Z]\.)\s+\S")


def text_height(line: Line) -> float:
    """A line's text height: the median of its word boxes when it has words, since on a skewed scan a long
    line's upright box grows with its width while each word's box stays about the text's height."""
    if line.words:
        return statistics.median(w.bbox_page_px[3] - w.bbox_page_px[1] for w in line.words)
    return line.bbox_page_px[3] - line.bbox_page_px[1]


def _body_size(lines: list[Line]) -> float | None:
    weights: Counter[float] = Counter()
    for ln in lines:
        if ln.font_size_pt:
            weights[round(ln.font_size_pt * 2) / 2] += len(ln.text)
    return weights.most_common(1)[0][0] if weights else None


_NOT_CONTENT = FURNITURE_ROLES | {"margin"}
BOTTOM_SHARE = 0.85
"""A block starting below this share of the page height with nothing under it ends the page."""


def _ends_page(lines: list[Line], block: list[int], height: float, line_h: float) -> bool:
    """True for a block at the bottom of the page with no text below it: a heading introduces what follows,
    so the last thing on a page ("Appendix B" repeated at the foot of each page) is not one."""
    top = min(lines[i].bbox_page_px[1] for i in block)
    bottom = max(lines[i].bbox_page_px[3] for i in block)
    if height <= 0 or top < BOTTOM_SHARE * height:
        return False
    inside = set(block)
    return not any(ln.bbox_page_px[1] >= bottom - 0.5 * line_h for j, ln in enumerate(lines)
                   if j not in inside and ln.text.strip() and ln.role not in _NOT_CONTENT)


def _blocks(lines: list[Line]) -> dict[int, list[int]]:
    out: dict[int, list[int]] = defaultdict(list)
    for i, ln in enumerate(lines):
        if ln.block is not None and ln.text.strip():
            out[ln.block].append(i)
    return out


def heading_levels(page: PageResult) -> dict[int, int]:
    """Line index -> heading level for the page's heading blocks."""
    lines = list(page.lines)
    blocks = _blocks(lines)
    if not blocks:
        return {}
    body_size = _body_size(lines)
    body_bold = False
    if body_size is not None:
        at_body = [ln for ln in lines if ln.font_size_pt and abs(ln.font_size_pt - body_size) < 0.5]
        body_bold = bool(at_body) and sum(1 for ln in at_body if ln.bold) > 0.5 * len(at_body)
    heights = [text_height(ln) for ln in lines if ln.text.strip()]
    median_h = statistics.median(heights) if heights else 1.0
    candidates: dict[int, float] = {}  # block -> strength key (bigger = higher level)
    for b, idx in blocks.items():
        blines = [lines[i] for i in idx]
        if any(ln.role in _NOT_HEADING_ROLES for ln in blines):
            continue
        text = " ".join(ln.text.strip() for ln in blines)
        words = len(text.split())
        rows = len({round((ln.bbox_page_px[1] + ln.bbox_page_px[3]) / 2 / max(1.0, median_h)) for ln in blines})
        if rows > 3 or words > 20 or words == 0 or not any(c.isalpha() for c in text):
            continue
        if _SENTENCE_END.search(text) and words > 6 and not _NUMBERED.match(text):
            continue
        if _ends_page(lines, idx, page.height_px, median_h):
            continue
        if body_size is not None and all(ln.font_size_pt for ln in blines):
            size = statistics.median(ln.font_size_pt for ln in blines)  # type: ignore[misc]
            bold = all(ln.bold for ln in blines)
            if size >= SIZE_RATIO * body_size:
                candidates[b] = round(size * 2) / 2
            elif bold and not body_bold and size >= 0.95 * body_size and words <= 12:
                candidates[b] = 0.0  # bold at body size: the lowest heading level
        elif body_size is None:
            h = statistics.median(text_height(ln) for ln in blines)
            if h >= HEIGHT_RATIO * median_h and rows <= 2:
                candidates[b] = round(h / (0.1 * median_h))
    if not candidates:
        return {}
    ranks = sorted(set(candidates.values()), reverse=True)
    levels = {key: min(MAX_LEVELS, r + 1) for r, key in enumerate(ranks)}
    return {i: levels[candidates[b]] for b in candidates for i in blocks[b]}


def unify_heading_levels(pages: list[PageResult]) -> list[PageResult]:
    """Heading levels ranked over the whole document, so "Section 2" on page 2 is the level of "Section 1".

    Text-layer headings rank by font size (bold body-size headings last); others keep their page's level.
    """
    heads = [ln for p in pages for ln in p.lines if ln.role == "heading" and ln.font_size_pt]
    body = _body_size([ln for p in pages for ln in p.lines])
    if not heads or body is None:
        return pages

    def key(ln: Line) -> float:
        size = round(ln.font_size_pt * 2) / 2  # type: ignore[operator]
        return size if size >= SIZE_RATIO * body else 0.0

    ranks = sorted({key(ln) for ln in heads}, reverse=True)
    level = {k: min(MAX_LEVELS, r + 1) for r, k in enumerate(ranks)}
    return [
        update_lines(p, {i: {"heading_level": level[key(ln)]} for i, ln in enumerate(p.lines)
                         if ln.role == "heading" and ln.font_size_pt and ln.heading_level != level[key(ln)]})
        for p in pages
    ]


@dataclass(frozen=True)
class UnifyHeadingLevels:
    """Document processor: `unify_heading_levels`."""

    name: str = "heading_levels"

    def __call__(self, pages: list[PageResult], ctx: DocumentContext) -> list[PageResult]:
        return unify_heading_levels(pages)


@dataclass(frozen=True)
class MarkHeadings:
    """Page processor: `heading_levels` (reading order has already given every other line a role)."""

    name: str = "headings"

    def __call__(self, page: PageResult, ctx: PageContext) -> PageResult:
        return update_lines(page, {i: {"role": "heading", "heading_level": lv} for i, lv in heading_levels(page).items()})
