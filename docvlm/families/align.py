"""Boxes for a family that reads but does not ground (LLaVA-NeXT): its text aligned with the ocr engine's words.

The model read the text; the ocr engine measured where words are. `align_lines(model_lines, ocr_lines)`:

1. both sides become word sequences (normalized: case-folded, punctuation at the ends stripped), the OCR words in
   the OCR's reading order, each model word tagged with its model line;
2. `difflib.SequenceMatcher` aligns the two sequences on identical words (the anchors); between two anchors,
   a model word and an OCR word still unmatched are paired when their characters are similar
   (ratio >= FUZZY_WORD_RATIO: a misread or misspelt word), in order;
3. a model line is grounded when words holding at least MIN_MATCHED_CHARS of its characters were matched, and
   its matched OCR words lie on one visual row (the row holding most of its matched characters: a model line
   whose matches are scattered over the page keeps only that row's); the line's box is the union of those
   OCR word boxes, its words carry the model's text with the OCR word boxes (a word with no OCR match gets none);
4. every other model line is returned as ungrounded text: no box is ever made up.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from difflib import SequenceMatcher

from docvlm.datamodel import Box, Line, Word
from docvlm.geometry import union_box

FUZZY_WORD_RATIO = 0.6
"""Two words pair up between anchors when SequenceMatcher's ratio of their characters is >= 0.6 (one or two
wrong letters in a 5-8 letter word)."""
MIN_MATCHED_CHARS = 0.5
"""A model line needs half of its characters in matched words to be grounded."""
ROW_OVERLAP = 0.5
"""Two OCR words are on one row when their vertical overlap is >= half the smaller height."""

_EDGE_PUNCT = re.compile(r"^[^\w]+|[^\w]+$")


def _norm(word: str) -> str:
    return _EDGE_PUNCT.sub("", word.casefold()) or word.casefold()


@dataclass(frozen=True)
class AlignmentResult:
    """Model lines with OCR boxes, and the model lines OCR did not see (text only)."""

    lines: list[Line] = field(default_factory=list)
    ungrounded: list[str] = field(default_factory=list)


def _same_row(a: Box, b: Box) -> bool:
    overlap = min(a[3], b[3]) - max(a[1], b[1])
    return overlap >= ROW_OVERLAP * min(a[3] - a[1], b[3] - b[1])


def align_lines(model_lines: Sequence[str], ocr_lines: Sequence[Line], *, tile: int | None = None) -> AlignmentResult:
    """Ground `model_lines` (the model's text, in its reading order) on `ocr_lines` (page pixels)."""
    ocr_words: list[Word] = []
    for ln in ocr_lines:
        if ln.words:
            ocr_words.extend(ln.words)
        else:
            ocr_words.append(Word(text=ln.text, bbox_page_px=ln.bbox_page_px, confidence=ln.confidence))
    model_words: list[tuple[int, str]] = [(i, w) for i, text in enumerate(model_lines) for w in text.split()]
    a = [_norm(w) for _, w in model_words]
    b = [_norm(w.text) for w in ocr_words]
    match: dict[int, int] = {}
    sm = SequenceMatcher(None, a, b, autojunk=False)
    prev_a, prev_b = 0, 0
    for block in sm.get_matching_blocks():
        # between the previous anchor and this one: pair similar leftover words in order
        j = prev_b
        for i in range(prev_a, block.a):
            for k in range(j, block.b):
                if SequenceMatcher(None, a[i], b[k]).ratio() >= FUZZY_WORD_RATIO:
                    match[i] = k
                    j = k + 1
                    break
        for n in range(block.size):
            match[block.a + n] = block.b + n
        prev_a, prev_b = block.a + block.size, block.b + block.size

    result = AlignmentResult()
    for li, text in enumerate(model_lines):
        idx = [i for i, (line_i, _) in enumerate(model_words) if line_i == li]
        chars = sum(len(model_words[i][1]) for i in idx)
        matched = [i for i in idx if i in match]
        if not idx or sum(len(model_words[i][1]) for i in matched) < MIN_MATCHED_CHARS * chars:
            if text.strip():
                result.ungrounded.append(text)
            continue
        # the visual row holding most matched characters
        rows: list[list[int]] = []
        for i in matched:
            box = ocr_words[match[i]].bbox_page_px
            for row in rows:
                if _same_row(ocr_words[match[row[0]]].bbox_page_px, box):
                    row.append(i)
                    break
            else:
                rows.append([i])
        best = max(rows, key=lambda r: sum(len(model_words[i][1]) for i in r))
        if sum(len(model_words[i][1]) for i in best) < MIN_MATCHED_CHARS * chars:
            result.ungrounded.append(text)
            continue
        keep = set(best)
        box = union_box([ocr_words[match[i]].bbox_page_px for i in best])
        words = [Word(text=model_words[i][1], bbox_page_px=ocr_words[match[i]].bbox_page_px,
                      confidence=ocr_words[match[i]].confidence) for i in idx if i in keep]
        result.lines.append(Line(text=text, bbox_page_px=box, words=words, tile=tile))
    return result
