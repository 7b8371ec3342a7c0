"""The rule detectors of one page combined: ruled grids (turned ones re-read upright, a frame around an
unruled table read by alignment), then aligned tables per text direction."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from docvlm.datamodel import Box, PageResult, Table
from docvlm.geometry import intersection
from docvlm.layout.tables.aligned import _chunks, find_aligned_tables
from docvlm.layout.tables.common import (
    TablePage,
    TablesResult,
    WordBox,
    _center_in,
    _cluster_rows,
    _pad,
    _text_height,
)
from docvlm.layout.tables.ruled import find_ruled_tables
from docvlm.layout.tables.turned import _labels_first, _to_upright, _turn_words, _unturn_table
from docvlm.layout.tables.words import page_words, word_turns


def _free(tp: TablePage, found: TablesResult) -> list[int]:
    """Indices of the words no earlier detector took."""
    taken = found.used_words | found.capped_words
    return [i for i in range(len(tp.words)) if i not in taken]


@dataclass(frozen=True)
class RuledGrids:
    """Detector: grids of crossing rulings among the free words; a grid whose text is mostly turned is re-read
    upright (both ways when `turns_known` is False, the reading with labels first kept); a ruled frame around
    an unruled table is read by column alignment when that gives more cells."""

    name: str = "ruled"

    def __call__(self, tp: TablePage, found: TablesResult) -> TablesResult:
        free = _free(tp, found)
        words = [tp.words[i] for i in free]
        turns = [tp.turns[i] for i in free]
        res = ruled_and_turned(words, turns, tp.segments, width=tp.width, height=tp.height, dpi=tp.dpi,
                               turns_known=tp.turns_known)
        return _merge(found, res, free)


@dataclass(frozen=True)
class AlignedTables:
    """Detector: tables without rulings among the free words, per text direction (see `find_aligned_tables`)."""

    name: str = "aligned"

    def __call__(self, tp: TablePage, found: TablesResult) -> TablesResult:
        free = _free(tp, found)
        words = [tp.words[i] for i in free]
        turns = [tp.turns[i] for i in free]
        res = TablesResult()
        aligned_by_direction(res, words, turns, width=tp.width, height=tp.height, dpi=tp.dpi,
                             unit=_text_height(tp.words), turns_known=tp.turns_known)
        return _merge(found, res, free)


def _merge(found: TablesResult, res: TablesResult, free: list[int]) -> TablesResult:
    """`found` grown by a detector's result on the free words (`res` indices are into `free`)."""
    tables = [*found.tables, *res.tables]
    tables.sort(key=lambda t: (t.bbox_page_px[1], t.bbox_page_px[0]))
    return TablesResult(tables=tables, used_words=found.used_words | {free[j] for j in res.used_words},
                        warnings=[*found.warnings, *res.warnings],
                        capped_words=found.capped_words | {free[j] for j in res.capped_words},
                        regions=list(found.regions))


def detect_tables(
    words: Sequence[WordBox],
    turns: Sequence[int],
    segments: Sequence[Box],
    *,
    width: float,
    height: float,
    dpi: float | None,
    aligned: bool = True,
    turns_known: bool = True,
) -> TablesResult:
    """All tables of a page by the rules: ruled grids (re-read upright when most of their text is turned), then
    aligned tables among the remaining words of each text direction. Indices in `used_words` refer to `words`.

    `turns_known=False` (OCR and model pages: a sideways line does not say whether it reads up or down): a
    turned table is read both ways and the reading with labels first (left column, top row) is kept.
    """
    tp = TablePage(words=words, turns=turns, segments=segments, width=width, height=height, dpi=dpi,
                   unit=_text_height(words), turns_known=turns_known)
    res = RuledGrids()(tp, TablesResult())
    return AlignedTables()(tp, res) if aligned else res


def ruled_and_turned(
    words: Sequence[WordBox],
    turns: Sequence[int],
    segments: Sequence[Box],
    *,
    width: float,
    height: float,
    dpi: float | None,
    turns_known: bool = True,
) -> TablesResult:
    """Ruled grids of the page, turned ones read upright, framed unruled ones read by alignment."""
    unit = _text_height(words)
    res = find_ruled_tables(words, segments, dpi=dpi, unit=unit)
    tables: list[Table] = []
    for t in res.tables:
        inside = [i for i, wb in enumerate(words) if _center_in(wb.box, t.bbox_page_px)]
        votes = [turns[i] for i in inside]
        turn = max(set(votes), key=votes.count) if votes else 0
        if turn == 0:
            tables.append(t)
            continue
        best: list[Table] = []
        best_used: set[int] = set()
        for way in (turn, 360 - turn) if not turns_known else (turn,):
            sub = _turn_words(words, inside, width, height, way)
            segs = [_to_upright(sg, width, height, way) for sg in segments
                    if intersection(_pad(sg, 2), t.bbox_page_px) > 0]
            found = find_ruled_tables(sub, segs, dpi=None, unit=_text_height(sub))
            again = [_unturn_table(x, width, height, way, dpi) for x in found.tables]
            if not best or _labels_first(again) > _labels_first(best):
                best, best_used = again, {inside[j] for j in found.used_words}
        tables.extend(best)
        # words the upright reading left out go back to the aligned search (a frame around a sideways table)
        res.used_words -= set(inside) - best_used
    res.tables = _refine_framed(tables, words, turns, res, width, height, dpi, unit)
    res.tables.sort(key=lambda t: (t.bbox_page_px[1], t.bbox_page_px[0]))
    return res


def aligned_by_direction(
    res: TablesResult,
    words: Sequence[WordBox],
    turns: Sequence[int],
    *,
    width: float,
    height: float,
    dpi: float | None,
    unit: float,
    turns_known: bool = True,
) -> None:
    """Aligned tables among the words `res` has not used, per text direction, added to `res`."""
    for turn in (0, 90, 270):
        idx = [i for i in range(len(words))
               if turns[i] == turn and i not in res.used_words and i not in res.capped_words]
        if len(idx) < 4:
            continue
        best_more: TablesResult | None = None
        best_tables: list[Table] = []
        for way in (turn, 360 - turn) if turn and not turns_known else (turn,):
            sub = _turn_words(words, idx, width, height, way) if way else [words[i] for i in idx]
            more = find_aligned_tables(sub, dpi=None if way else dpi, page_width=height if way else width,
                                       unit=unit if not way else None)
            got = [_unturn_table(x, width, height, way, dpi) if way else x for x in more.tables]
            if best_more is None or _labels_first(got) > _labels_first(best_tables):
                best_more, best_tables = more, got
        assert best_more is not None
        res.warnings.extend(best_more.warnings)
        res.used_words.update(idx[j] for j in best_more.used_words)
        res.tables.extend(best_tables)
    res.tables.sort(key=lambda t: (t.bbox_page_px[1], t.bbox_page_px[0]))


def _refine_framed(
    tables: list[Table], words: Sequence[WordBox], turns: Sequence[int], res: TablesResult,
    width: float, height: float, dpi: float | None, unit: float,
) -> list[Table]:
    """A ruled frame around an unruled table (rules only between header and body) holds several text rows
    per grid row: read the inside by column alignment and keep whichever has more cells."""
    out = []
    for t in tables:
        if t.method != "ruled":
            out.append(t)
            continue
        inside = [i for i, wb in enumerate(words) if _center_in(wb.box, t.bbox_page_px) and turns[i] == 0]
        # columns inside cells: a cell row with a wide gap in it ("11,062.6   1,540.0")
        split_cells = 0
        filled = 0
        ins = np.array(inside, dtype=int)
        cxy = np.array([((words[i].box[0] + words[i].box[2]) / 2, (words[i].box[1] + words[i].box[3]) / 2)
                        for i in inside], dtype=float).reshape(-1, 2)
        for c in t.cells:
            if not c.text or c.bbox_page_px is None:
                continue
            filled += 1
            x0, y0, x1, y1 = c.bbox_page_px
            mask = (cxy[:, 0] >= x0) & (cxy[:, 0] <= x1) & (cxy[:, 1] >= y0) & (cxy[:, 1] <= y1)
            cw = [int(i) for i in ins[mask]]
            if any(len(_chunks(r, words, 0.9 * unit)) >= 2 for r in _cluster_rows(cw, words, unit)):
                split_cells += 1
        if split_cells < 0.3 * max(1, filled):
            out.append(t)
            continue
        alt = find_aligned_tables([words[i] for i in inside], dpi=dpi, page_width=width, unit=unit, min_rows=2)
        n_alt = sum(len(a.cells) for a in alt.tables)
        if alt.tables and n_alt > len(t.cells):
            out.extend(alt.tables)
        else:
            out.append(t)
    return out


def find_tables(page: PageResult, segments: Sequence[Box] = (), *, aligned: bool = True) -> TablesResult:
    """All tables of a page from its words and rulings (see `detect_tables`)."""
    words, _ = page_words(page)
    return detect_tables(words, word_turns(page), segments, width=page.width_px, height=page.height_px,
                         dpi=page.dpi, aligned=aligned)


def has_table_candidates(words: Sequence[WordBox], unit: float, min_rows: int = 2) -> bool:
    """Cheap gate: at least `min_rows` text rows split by a column-wide gap (a grid needs one too)."""
    rows = _cluster_rows(list(range(len(words))), words, unit)
    n = 0
    for r in rows:
        if len(r) >= 2 and len(_chunks(r, words, 0.5 * unit)) >= 2:  # tighter than aligned: tiny ruled cells
            n += 1
            if n >= min_rows:
                return True
    return False
