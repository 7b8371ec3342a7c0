"""Reading order: lines listed in the order a person reads them, grouped into blocks (paragraphs).

The page is cut into horizontal bands at blank gaps of two line heights or more that run across the whole
page (a grid of cards reads row by row). In each band, columns are the (almost) empty vertical strips in the
x-projection of the lines (gutters, with both sides holding text); a line that reaches across a gutter (a
title, a centered figure caption) closes the columns above it. So a two-column page reads left column, right
column, then what comes below, and a sidebar or margin note, separated from the body by a gutter, is read as
its own column instead of being interleaved row by row with the body. Where a column ends just above a
blank gap across the page (a form's address block beside its first fields), the columns are closed there
too: what lies wholly below is read after that column, not before it.

Within a column, lines form rows by the shared rule of `docvlm.rows` (vertical bands overlapping by half the
smaller height: OCR boxes that overlap by a few pixels stay separate rows), and a vertical gap larger than ~0.8 line
heights, a change of font size, or a heading starts a new block.

Before that: lines inside a table region move as one unit (their table renders them); page furniture
(headers first, footers and page numbers last) and footnotes (last) are placed outside the body's flow; a drop
cap (one big letter beside the first lines of a paragraph) is joined to the word it starts.
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from docvlm.datamodel import Box, Line, PageResult, Table
from docvlm.geometry import union_box
from docvlm.layout.base import PageContext
from docvlm.rows import RowSettings, rows_of

BAND_GAP_LINES = 2.0
"""A blank horizontal gap of this many line heights across the page separates bands read one after another."""
PARAGRAPH_GAP_LINES = 0.8
"""A vertical gap larger than this (in line heights) between rows of a column starts a new block."""
COLUMN_END_GAP_LINES = 1.0
"""A blank gap across the page, taller than this (in line heights), just below the last line of a column
cuts its column region: what lies wholly below is read after what stands beside that column (forms)."""
ROW_SETTINGS = RowSettings()
"""Lines form rows by the shared rule of `docvlm.rows` (bands overlapping by half the smaller height)."""

CAPTION = re.compile(
    r"^\s*(fig(ure)?|table|tab|chart|plate|scheme|exhibit)\.?\s*[0-9IVXivx]+([.\-–][0-9]+)*([.:\s]|$)", re.I
)


def _h(box: Box) -> float:
    return box[3] - box[1]


def _cy(box: Box) -> float:
    return (box[1] + box[3]) / 2


def line_height(lines: Sequence[Line]) -> float:
    """Median line height of the page (1 px at least)."""
    hs = [_h(ln.bbox_page_px) for ln in lines if ln.text.strip()]
    return max(1.0, statistics.median(hs)) if hs else 1.0


@dataclass
class _Item:
    """A unit of reading: one line, or every line of one table region."""

    box: Box
    lines: list[int]
    table: bool = False
    size: float | None = None
    bold: bool | None = None
    margin: bool = False  # lifted out as a sidebar / margin note


def _in_box(inner: Box, outer: Box, share: float = 0.6) -> bool:
    ix = max(0.0, min(inner[2], outer[2]) - max(inner[0], outer[0]))
    iy = max(0.0, min(inner[3], outer[3]) - max(inner[1], outer[1]))
    area = max(1e-9, (inner[2] - inner[0]) * (inner[3] - inner[1]))
    return ix * iy >= share * area


def lines_in_table(lines: Sequence[Line], tables: Sequence[Table]) -> list[int | None]:
    """Per line: the index of the table whose region holds most of the line, or None."""
    out: list[int | None] = []
    for ln in lines:
        hit = None
        for t, table in enumerate(tables):
            if _in_box(ln.bbox_page_px, table.bbox_page_px):
                hit = t
                break
        out.append(hit)
    return out


def order_lines(
    lines: Sequence[Line], tables: Sequence[Table], width_px: int, margin: set[int] | None = None,
    table_of: list[int | None] | None = None,
) -> list[list[int]]:
    """Blocks of line indices in reading order (furniture and footnotes included, at the page's edges).

    `margin`, when given, receives the indices of lines read as a sidebar / margin note; `table_of`, when
    given, is `lines_in_table(lines, tables)` already computed by the caller.
    """
    if not lines:
        return []
    if table_of is None:
        table_of = lines_in_table(lines, tables)
    head: list[int] = []
    tail: list[int] = []
    notes: list[int] = []
    marks: list[int] = []
    items: list[_Item] = []
    table_items: dict[int, _Item] = {}
    for i, ln in enumerate(lines):
        if not ln.text.strip():
            continue
        if ln.role == "header":
            head.append(i)
        elif ln.role in ("footer", "page_number"):
            tail.append(i)
        elif ln.role == "footnote":
            notes.append(i)
        elif ln.role == "margin":  # a mark set sideways in the margin (furniture's `margin_marks`)
            marks.append(i)
        elif table_of[i] is not None:
            t = table_of[i]
            item = table_items.get(t)  # type: ignore[arg-type]
            if item is None:
                item = _Item(box=tables[t].bbox_page_px, lines=[], table=True)  # type: ignore[index]
                table_items[t] = item  # type: ignore[index]
                items.append(item)
            item.lines.append(i)
        else:
            items.append(_Item(box=ln.bbox_page_px, lines=[i], size=ln.font_size_pt, bold=ln.bold))
    line_h = line_height([lines[i] for it in items if not it.table for i in it.lines] or list(lines))
    blocks: list[list[int]] = []
    blocks += _rows_as_blocks(lines, head, line_h)
    for band in _horizontal_bands(items, BAND_GAP_LINES * line_h):
        blocks += _read_band(band, lines, width_px, line_h)
    blocks += _rows_as_blocks(lines, notes, line_h)
    blocks += [[i] for i in sorted(marks, key=lambda i: lines[i].bbox_page_px[1])]
    blocks += _rows_as_blocks(lines, tail, line_h)
    if margin is not None:
        margin.update(i for it in items if it.margin for i in it.lines)
    return [b for b in blocks if b]


def _rows_as_blocks(lines: Sequence[Line], idx: list[int], line_h: float) -> list[list[int]]:
    items = [_Item(box=lines[i].bbox_page_px, lines=[i]) for i in idx]
    return _paragraphs(items, lines, line_h)


def _horizontal_bands(items: list[_Item], min_gap: float) -> list[list[_Item]]:
    bands: list[list[_Item]] = []
    bottom: float | None = None
    for it in sorted(items, key=lambda it: (it.box[1], it.box[0])):
        if bottom is None or it.box[1] - bottom >= min_gap:
            bands.append([])
            bottom = it.box[3]
        bands[-1].append(it)
        bottom = max(bottom, it.box[3])
    return bands


def _read_band(items: list[_Item], lines: Sequence[Line], width_px: int, line_h: float) -> list[list[int]]:
    gutters = find_gutters([it.box for it in items], width_px, line_h)

    def crosses(it: _Item) -> bool:
        return any(it.box[0] < g1 - 1 and it.box[2] > g0 + 1 for g0, g1 in gutters)

    def column_of(it: _Item) -> int:
        cx = (it.box[0] + it.box[2]) / 2
        return sum(1 for g0, g1 in gutters if cx > (g0 + g1) / 2)

    blocks: list[list[int]] = []
    pending: list[_Item] = []

    def flush() -> None:
        for part in _split_where_a_column_ends(pending, column_of, line_h):
            deferred: list[list[int]] = []
            by_col: dict[int, list[_Item]] = {}
            for it in part:
                by_col.setdefault(column_of(it), []).append(it)
            for col in sorted(by_col):
                blocks.extend(_paragraphs(by_col[col], lines, line_h, deferred))
            blocks.extend(deferred)
        pending.clear()

    for it in sorted(items, key=lambda it: (it.box[1], it.box[0])):
        if gutters and crosses(it):
            flush()
            pending.append(it)
            flush()
        else:
            pending.append(it)
    flush()
    return blocks


def _split_where_a_column_ends(
    items: list[_Item], column_of: Callable[[_Item], int], line_h: float
) -> list[list[_Item]]:
    """The items of one column region, cut across the page where a column ends at a blank gap.

    A block beside the first rows of a column region (a counsel's address block beside a form's first
    fields) is not read after the lines that lie wholly below it: where a blank gap across the whole width,
    taller than `COLUMN_END_GAP_LINES` line heights, follows the last line of a column (none of its lines
    lies below the gap) and no line of the other columns runs on past that last line, the region is cut
    there and the part above is read (column by column) before the part below. The columns of a page of
    prose run on through their band (a column that ends early is followed in the other column by more lines
    of the same paragraph, with no such gap), so they are not cut.
    """
    if len({column_of(it) for it in items}) < 2:
        return [items]
    ordered = sorted(items, key=lambda it: (it.box[1], it.box[0]))
    cols = [column_of(it) for it in ordered]
    below_cols: list[frozenset[int]] = [frozenset()] * (len(ordered) + 1)  # columns of the items from k on
    for k in range(len(ordered) - 1, -1, -1):
        below_cols[k] = below_cols[k + 1] | {cols[k]}
    parts: list[list[_Item]] = [[]]
    col_bottom: dict[int, float] = {}  # per column, the lowest bottom in the current part
    for k, it in enumerate(ordered):
        if col_bottom:
            bottom = max(col_bottom.values())
            if it.box[1] - bottom > COLUMN_END_GAP_LINES * line_h:
                ends = set(col_bottom) - below_cols[k]
                # the column that ends reaches down to the gap: nothing beside it runs on below its end
                if ends and any(col_bottom[c] >= bottom - 0.5 * line_h for c in ends):
                    parts.append([])
                    col_bottom = {}
        parts[-1].append(it)
        col_bottom[cols[k]] = max(col_bottom.get(cols[k], it.box[3]), it.box[3])
    return parts


def find_gutters(boxes: Sequence[Box], width_px: int, line_h: float) -> list[tuple[float, float]]:
    """x-intervals of vertical white strips that separate columns.

    Lines of every width count; a few lines may cross a strip (a title, a centred page number: at most one in
    30, or 1): they are read between the column bands. A strip must be at least 0.8 line heights (or 1.2% of
    the content width) wide, and each side must hold at least 2 lines wholly on that side (a margin note of
    two lines is a column; a single stray word is not).
    """
    if width_px <= 0 or len(boxes) < 4:
        return []
    content_x0 = min(b[0] for b in boxes)
    content_x1 = max(b[2] for b in boxes)
    content_w = content_x1 - content_x0
    if content_w <= 0:
        return []
    size = int(content_w) + 2
    delta = [0] * (size + 1)
    for b in boxes:
        a = max(0, int(b[0] - content_x0))
        e = min(size - 1, int(b[2] - content_x0))
        delta[a] += 1
        delta[e + 1] -= 1
    tolerance = max(1, len(boxes) // 30)
    covered: list[bool] = []
    run = 0
    for d in delta[:size]:
        run += d
        covered.append(run > tolerance)
    min_gap = max(line_h * 0.8, content_w * 0.012)
    gutters: list[tuple[float, float]] = []
    x = 0
    while x < size:
        if covered[x]:
            x += 1
            continue
        start = x
        while x < size and not covered[x]:
            x += 1
        if x - start >= min_gap and start > 0 and x < size:
            g0, g1 = content_x0 + start, content_x0 + x
            # the tolerated lines that reach into the strip without spanning it (a column's longest line)
            # narrow it, so only a line across the whole strip (a title) counts as crossing
            mid = (g0 + g1) / 2
            for b in boxes:
                if b[0] < g1 and b[2] > g0 and not (b[0] <= g0 and b[2] >= g1):
                    if (b[0] + b[2]) / 2 < mid:
                        g0 = max(g0, b[2])
                    else:
                        g1 = min(g1, b[0])
            left = sum(1 for b in boxes if b[2] <= g0 + 1)
            right = sum(1 for b in boxes if b[0] >= g1 - 1)
            if g1 - g0 > 2 and left >= 2 and right >= 2:
                gutters.append((g0, g1))
    return gutters


def _paragraphs(
    items: list[_Item], lines: Sequence[Line], line_h: float, deferred: list[list[int]] | None = None
) -> list[list[int]]:
    """Rows (centres within half a line height of the row's first item), then blocks split at gaps."""
    # printed rows by the shared rule (docvlm.rows); a table region is a row of its own
    rows: list[list[_Item]] = rows_of(items, [it.box for it in items], settings=ROW_SETTINGS,
                                      alone={k for k, it in enumerate(items) if it.table})
    blocks: list[list[int]] = []
    prev_bottom: float | None = None
    prev_size: float | None = None
    prev_table = False
    prev_bold: bool | None = None
    ordered, leftover = _lift_sidebars(rows, line_h, lambda it: " ".join(lines[i].text for i in it.lines))
    if deferred is None:
        ordered += leftover
    else:
        for row, forced in leftover:
            idx = [i for it in row for i in it.lines]
            if forced or not deferred:
                deferred.append(idx)
            else:
                deferred[-1].extend(idx)
    for row, forced in ordered:
        top = min(it.box[1] for it in row)
        table = any(it.table for it in row)
        sizes = [it.size for it in row if it.size]
        size = max(sizes) if sizes else None
        size_change = (
            size is not None and prev_size is not None and abs(size - prev_size) > 0.12 * max(size, prev_size)
        )
        bold = all(it.bold for it in row) if all(it.bold is not None for it in row) else None
        # a bold line over regular text (a run-in heading) ends its block; regular after bold does too
        size_change = size_change or (bold is not None and prev_bold is not None and bold != prev_bold)
        new = (
            forced
            or prev_bottom is None
            or top - prev_bottom > PARAGRAPH_GAP_LINES * line_h
            or table
            or prev_table
            or size_change
            or _starts_caption(lines, row)
        )
        idx = [i for it in row for i in it.lines]
        if table:  # the table's lines in their own row order (the table renders them anyway)
            idx = sorted(idx, key=lambda i: (_cy(lines[i].bbox_page_px), lines[i].bbox_page_px[0]))
        if new:
            blocks.append(idx)
        else:
            blocks[-1].extend(idx)
        prev_bottom = max(it.box[3] for it in row)
        prev_size, prev_table, prev_bold = size, table, bold
    return blocks


SIDEBAR_MIN_ROWS = 3
"""A sidebar beside the body needs at least this many rows split at the same gutter."""


def _split_gap(row: list[_Item], min_gap: float) -> tuple[float, float] | None:
    """The one wide horizontal gap of a row of two or more items (sorted by x), or None."""
    if len(row) < 2 or any(it.table for it in row):
        return None
    gaps = [(row[k].box[2], row[k + 1].box[0]) for k in range(len(row) - 1)]
    wide = [g for g in gaps if g[1] - g[0] >= min_gap]
    return wide[0] if len(wide) == 1 else None


def _numeric(text: str) -> bool:
    """Mostly digits, currency and punctuation (an amount, a date, a code)."""
    t = text.replace(" ", "")
    return bool(t) and sum(c.isdigit() for c in t) >= 0.5 * len(t)


def _lift_sidebars(
    rows: list[list[_Item]], line_h: float, lines_text: Callable[[_Item], str]
) -> tuple[list[tuple[list[_Item], bool]], list[tuple[list[_Item], bool]]]:
    """Rows in reading order, each with 'starts a new block'; a sidebar beside the body is lifted out.

    A run of rows split by one white strip (rows wholly on one side may sit in between; the strip may narrow
    but stays open) is a sidebar region when it has 3+ split rows, one side reads like body text (3+ lines,
    8+ line heights wide on average and 1.6x as wide as the other side) and the other side is not mostly
    numbers (the values of key-value rows, "Total ... 12.50", which stay rows) nor mostly labels ending in a
    colon (a form's "Counsel:", "Witness:" beside their values). The body side is read
    through; the sidebar (with its lines just above the region) follows when the body paragraph ends, or is
    handed back (second list) when the column ends first. Returns (rows in order, sidebar rows left over).
    """
    min_gap = 1.5 * line_h
    out: list[tuple[list[_Item], bool]] = []
    pending: list[list[_Item]] = []  # sidebar rows waiting for the body paragraph beside them to end
    last_bottom: float | None = None

    def emit(row: list[_Item]) -> None:
        nonlocal last_bottom
        top = min(it.box[1] for it in row)
        if pending and last_bottom is not None and top - last_bottom > PARAGRAPH_GAP_LINES * line_h:
            flush_pending()
            out.append((row, True))
        else:
            out.append((row, False))
        last_bottom = max(it.box[3] for it in row)

    def flush_pending() -> None:
        for n_row, r in enumerate(pending):
            out.append((r, n_row == 0))
        pending.clear()

    k = 0
    n = len(rows)
    while k < n:
        gap = _split_gap(rows[k], min_gap)
        if gap is None:
            emit(rows[k])
            k += 1
            continue
        g0, g1 = gap
        end = k
        split_rows = 0
        j = k
        mid = (g0 + g1) / 2
        while j < n:
            row = rows[j]
            lefts = [it for it in row if (it.box[0] + it.box[2]) / 2 < mid]
            rights = [it for it in row if (it.box[0] + it.box[2]) / 2 >= mid]
            if any(it.table for it in row):
                break
            n0 = max([g0, *(it.box[2] for it in lefts)])
            n1 = min([g1, *(it.box[0] for it in rights)])
            if n1 - n0 < 0.5 * line_h:
                break  # the white strip between the sides would close
            g0, g1 = n0, n1
            if lefts and rights:
                split_rows += 1
                end = j + 1  # a row wholly on one side stays in the region only if a split row follows
            j += 1
        region = rows[k:end]
        left = [it for r in region for it in r if (it.box[0] + it.box[2]) / 2 < mid]
        right = [it for r in region for it in r if (it.box[0] + it.box[2]) / 2 >= mid]
        wl = sum(it.box[2] - it.box[0] for it in left) / len(left) if left else 0.0
        wr = sum(it.box[2] - it.box[0] for it in right) / len(right) if right else 0.0
        body, side = (left, right) if wl > wr else (right, left)
        if (
            split_rows < SIDEBAR_MIN_ROWS
            or max(wl, wr) < 1.6 * min(wl, wr)
            or len(body) < 3
            or max(wl, wr) < 8 * line_h  # the body side must read like prose, not like labels
            or sum(1 for it in side if _numeric(lines_text(it))) > 0.3 * len(side)  # values of key-value rows
            or sum(1 for it in side if lines_text(it).rstrip().endswith(":")) > 0.3 * len(side)  # their labels
        ):
            emit(rows[k])
            k += 1
            continue
        body_ids = {id(it) for it in body}
        side_left = body is right
        # single rows of the sidebar just above its first split row belong to it (its heading line, say)
        lead: list[list[_Item]] = []
        top = min(it.box[1] for it in region[0])
        j = len(out) - 1
        while j >= 0 and not out[j][1] and len(out[j][0]) == 1 and not out[j][0][0].table:
            it = out[j][0][0]
            on_side = it.box[2] <= g0 + 1 if side_left else it.box[0] >= g1 - 1
            on_body = it.box[0] >= g1 - 1 if side_left else it.box[2] <= g0 + 1
            if on_side and top - it.box[3] <= 1.5 * line_h:
                lead.insert(0, out.pop(j)[0])
                top = it.box[1]
            elif not on_body:
                break  # a line across both sides: the sidebar starts below it
            j -= 1
        for r in region:
            part = [it for it in r if id(it) in body_ids]
            if part:
                emit(part)
        flush_pending()
        for it in [*(it for r in lead for it in r), *(it for r in region for it in r if id(it) not in body_ids)]:
            it.margin = True
        pending.extend(lead)
        pending.extend(part for r in region if (part := [it for it in r if id(it) not in body_ids]))
        k = end
    # a sidebar still waiting at the column's end is handed back: it follows the columns of its band, so a
    # paragraph running on into the next column is not cut by it
    leftover = [(r, n_row == 0) for n_row, r in enumerate(pending)]
    return out, leftover


def _starts_caption(lines: Sequence[Line], row: list[_Item]) -> bool:
    first = row[0]
    return not first.table and bool(CAPTION.match(lines[first.lines[0]].text))


# --- drop caps ---------------------------------------------------------------------------------------------


def join_drop_caps(lines: list[Line], line_h: float) -> list[Line]:
    """A drop cap (1-2 letters, 1.8+ line heights tall) is glued to the line that starts right of its top."""
    out = list(lines)
    drop: set[int] = set()
    for i, ln in enumerate(lines):
        t = ln.text.strip()
        if not (1 <= len(t) <= 2 and t[0].isalpha() and t.isupper() and _h(ln.bbox_page_px) >= 1.8 * line_h):
            continue
        best, best_dx = None, None
        for j, other in enumerate(lines):
            if j == i or j in drop or not other.text.strip():
                continue
            ob = other.bbox_page_px
            dx = ob[0] - ln.bbox_page_px[2]
            if not (-0.2 * line_h <= dx <= 1.5 * line_h):
                continue
            if not (ln.bbox_page_px[1] - 0.5 * line_h <= _cy(ob) <= ln.bbox_page_px[1] + 1.2 * _h(ob)):
                continue
            if best_dx is None or ob[1] < lines[best].bbox_page_px[1]:  # type: ignore[index]
                best, best_dx = j, dx
        if best is None:
            continue
        target = out[best]
        words = list(ln.words) + list(target.words) if ln.words and target.words else list(target.words)
        out[best] = target.model_copy(update={
            "text": t + target.text.lstrip(),
            "raw_text": target.raw_text if target.raw_text is not None else target.text,
            "bbox_page_px": union_box([ln.bbox_page_px, target.bbox_page_px]),
            "words": words,
        })
        drop.add(i)
    return [ln for i, ln in enumerate(out) if i not in drop]


# --- the processor -----------------------------------------------------------------------------------------


def order_page(page: PageResult) -> PageResult:
    """The page with its lines in reading order, each carrying its block index; table lines get role 'table'."""
    lines = [ln for ln in page.lines]
    if not lines:
        return page
    lines = join_drop_caps(lines, line_height(lines))
    margin: set[int] = set()
    table_of = lines_in_table(lines, page.tables)
    blocks = order_lines(lines, page.tables, page.width_px, margin, table_of)
    captions = {i for block in blocks if len(block) <= 6 and CAPTION.match(lines[block[0]].text) for i in block}
    ordered: list[Line] = []
    seen: set[int] = set()
    for b, block in enumerate(blocks):
        for i in block:
            if i in seen:
                continue
            seen.add(i)
            # every line leaves with a role: table lines "table", the rest "body" unless a step named it
            role = lines[i].role or ("margin" if i in margin else "caption" if i in captions else "body")
            update: dict[str, object] = {"block": b, "role": role}
            if table_of[i] is not None and lines[i].role in (None, "body"):
                update["role"] = "table"
            ordered.append(lines[i].model_copy(update=update))
    # blank lines (no text) keep a place at the end, so nothing the engine read is dropped
    rest = len(blocks)
    for i, ln in enumerate(lines):
        if i not in seen:
            ordered.append(ln.model_copy(update={"block": rest}))
    return page.model_copy(update={"lines": ordered})


@dataclass(frozen=True)
class OrderReading:
    """Page processor: `order_page`."""

    name: str = "reading_order"

    def __call__(self, page: PageResult, ctx: PageContext) -> PageResult:
        return order_page(page)
