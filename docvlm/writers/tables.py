"""Tables as Markdown: a GFM pipe table, or an HTML `<table>` with rowspan/colspan when any cell spans."""

from __future__ import annotations

import html

from docvlm.datamodel import Table, TableCell


def _md_cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")

def render_table_markdown(table: Table) -> str:
    """A GFM pipe table; an HTML <table> with rowspan/colspan when any cell spans."""
    if any(c.row_span > 1 or c.col_span > 1 for c in table.cells):
        return _render_html(table)
    grid = [[""] * table.n_cols for _ in range(table.n_rows)]
    for c in table.cells:
        if c.row < table.n_rows and c.col < table.n_cols:
            grid[c.row][c.col] = _md_cell(c.text)
    # GFM has one header row: a header over several lines is folded into it, column by column
    h = max(1, min(table.header_rows, table.n_rows - 1)) if table.n_rows > 1 else 1
    head = [" ".join(grid[r][k] for r in range(h) if grid[r][k]) for k in range(table.n_cols)]
    body = grid[h:]
    out = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] * table.n_cols) + "|"]
    out.extend("| " + " | ".join(r) + " |" for r in body)
    return "\n".join(out)

def _render_html(table: Table) -> str:
    """HTML rows in which every grid slot is accounted for: a cell where it starts, nothing under a span, an
    empty `<td></td>` where no cell is, so each cell lands in its own column."""
    start: dict[tuple[int, int], TableCell] = {}
    covered: set[tuple[int, int]] = set()
    for c in table.cells:
        start[(c.row, c.col)] = c
        covered.update((r, k) for r in range(c.row, c.row + c.row_span) for k in range(c.col, c.col + c.col_span))
    out = ["<table>"]
    for r in range(table.n_rows):
        parts = []
        for k in range(table.n_cols):
            c = start.get((r, k))
            if c is None:
                if (r, k) not in covered:
                    parts.append("<th></th>" if r < table.header_rows else "<td></td>")
                continue
            tag = "th" if c.header else "td"
            attrs = ""
            if c.row_span > 1:
                attrs += f' rowspan="{c.row_span}"'
            if c.col_span > 1:
                attrs += f' colspan="{c.col_span}"'
            parts.append(f"<{tag}{attrs}>{html.escape(' '.join(c.text.split()))}</{tag}>")
        out.append("<tr>" + "".join(parts) + "</tr>")
    out.append("</table>")
    return "\n".join(out)
