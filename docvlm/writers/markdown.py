"""`--format md`: the document as Markdown in reading order, from the layout stage's roles and blocks.

- Lines are printed in the order the layout stage left them; consecutive lines of one block form a paragraph
  (a word hyphenated across lines is joined).
- Headings (`role == "heading"`) become `#` lines at their `heading_level`.
- Page furniture (headers, footers, page numbers) is left out unless `keep_furniture` (`--keep-furniture`).
- A table is printed where its first line stands in reading order, by `docvlm.writers.tables`'
  `render_table_markdown` (GFM pipe table; HTML `<table>` when cells span); its lines are not repeated as text.
- Pages are separated by an HTML comment (`<!-- page N -->`), which Markdown renders as nothing.
- Results made without the layout stage (no blocks) are ordered here by the same reading-order code.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from docvlm.datamodel import FURNITURE_ROLES, DocumentResult, Line, PageResult, Table
from docvlm.writers.files import atomic_write_text
from docvlm.writers.tables import render_table_markdown

if TYPE_CHECKING:
    from docvlm.options import ConvertOptions


@dataclass(frozen=True)
class MarkdownWriter:
    name: str = "md"
    suffix: str = ".md"
    keep_furniture: bool = False

    def with_options(self, options: ConvertOptions) -> MarkdownWriter:
        return replace(self, keep_furniture=bool(getattr(options, "keep_furniture", False)))

    def write(self, result: DocumentResult, source_path: str | Path | None, out_path: Path) -> None:
        atomic_write_text(out_path, render_markdown(result, keep_furniture=self.keep_furniture))


def render_markdown(result: DocumentResult, *, keep_furniture: bool = False) -> str:
    """The whole document: document errors, then each page after a `<!-- page N -->` marker."""
    out: list[str] = []
    for err in result.errors:
        out += [f"> **error** ({err.code}): {escape_inline(err.message)}", ""]
    for page in result.pages:
        out += [f"<!-- page {page.index + 1} -->", ""]
        body = render_page_markdown(page, keep_furniture=keep_furniture)
        if body:
            out += [body, ""]
    return "\n".join(out).rstrip() + "\n"


def render_page_markdown(page: PageResult, *, keep_furniture: bool = False) -> str:
    """One page as Markdown (no page marker): errors as quotes, then blocks, headings and tables in order."""
    out: list[str] = []
    for err in page.errors:
        out += [f"> **error** ({err.code}): {escape_inline(err.message)}", ""]
    for kind, payload in page_blocks(page, keep_furniture=keep_furniture):
        if kind == "table":
            out += [render_table_markdown(payload), ""]  # type: ignore[arg-type]
        elif kind == "heading":
            level, text = payload  # type: ignore[misc]
            out += ["#" * level + " " + escape_heading(text), ""]
        else:
            out += ["\n".join(_escape_block(t) for t in payload), ""]  # type: ignore[union-attr]
    return "\n".join(out).rstrip()


def page_blocks(page: PageResult, *, keep_furniture: bool = False) -> list[tuple[str, object]]:
    """('heading', (level, text)) / ('table', Table) / ('text', [row texts]) in reading order."""
    lines = list(page.lines)
    if lines and any(ln.block is None for ln in lines if ln.text.strip()):
        from docvlm.layout.reading_order import order_page

        lines = list(order_page(page).lines)
    table_of = _table_index(lines, page.tables)
    printed: set[int] = set()
    out: list[tuple[str, object]] = []
    current: list[Line] = []
    current_block: int | None = None

    def flush() -> None:
        if current:
            out.append(("text", join_rows(current)))
            current.clear()

    for i, ln in enumerate(lines):
        if not ln.text.strip():
            continue
        if ln.role in FURNITURE_ROLES and not keep_furniture:
            continue
        t = table_of[i]
        if t is not None:
            flush()
            current_block = None
            if t not in printed:
                printed.add(t)
                out.append(("table", page.tables[t]))
            continue
        if ln.role == "heading":
            flush()
            current_block = None
            if out and out[-1][0] == "heading" and out[-1][1][0] == (ln.heading_level or 1) \
                    and _same_block(lines, i):  # type: ignore[index]
                level, text = out[-1][1]  # type: ignore[misc]
                out[-1] = ("heading", (level, text + " " + ln.text.strip()))
            else:
                out.append(("heading", (ln.heading_level or 1, ln.text.strip())))
            continue
        if ln.block != current_block:
            flush()
            current_block = ln.block
        current.append(ln)
    flush()
    for t, table in enumerate(page.tables):  # tables with no line of their own (a model printed only the grid)
        if t not in printed:
            out.append(("table", table))
    return out


def _same_block(lines: list[Line], i: int) -> bool:
    j = i - 1
    while j >= 0 and not lines[j].text.strip():
        j -= 1
    return j >= 0 and lines[j].block == lines[i].block


def _table_index(lines: list[Line], tables: list[Table]) -> list[int | None]:
    if not tables:
        return [None] * len(lines)
    from docvlm.layout.reading_order import lines_in_table

    return lines_in_table(lines, tables)


_HYPHENATED = re.compile(r"[^\W\d_]-$")


def join_rows(lines: list[Line]) -> list[str]:
    """Row texts of one block (lines sharing a row joined by a space); a hyphen at a row's end before a
    lower-case letter joins the two rows into one word."""
    rows: list[str] = []
    prev: Line | None = None
    for ln in lines:
        text = ln.text.strip()
        same_row = prev is not None and abs(
            (ln.bbox_page_px[1] + ln.bbox_page_px[3]) / 2 - (prev.bbox_page_px[1] + prev.bbox_page_px[3]) / 2
        ) < 0.5 * min(ln.bbox_page_px[3] - ln.bbox_page_px[1], prev.bbox_page_px[3] - prev.bbox_page_px[1])
        if rows and same_row and ln.bbox_page_px[0] >= prev.bbox_page_px[2] - 1:  # type: ignore[union-attr]
            rows[-1] += " " + text
        elif rows and _HYPHENATED.search(rows[-1]) and text[:1].islower():
            rows[-1] = rows[-1][:-1] + text
        else:
            rows.append(text)
        prev = ln
    return rows


_BLOCK_START = re.compile(
    r"^(?:(?P<mark>[#>+\-]|=+[ \t]*$)"  # ATX heading, quote, bullet / thematic break / setext line
    r"|(?P<num>\d{1,9})[.)])"  # ordered list item: the delimiter is escaped, not the number
)
"""What CommonMark reads as the start of a block when it opens a line (after escape_inline, which has
already escaped `*`, `_`, `~` and backticks wherever they stand)."""
_INLINE_SPECIAL = re.compile(r"[\\`*\[\]|~]|_(?![^\W_])|(?<![^\W_])_|<|&(?=#?\w+;)")
"""Characters CommonMark/GFM would read as markup anywhere in a line: backslash, code, emphasis, links,
table pipes, strikethrough, raw HTML / autolinks and entity references. An underscore between two word
characters (`invoice_no`) cannot open emphasis and is left as it is."""
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def _escape_block(text: str) -> str:
    """Keep OCR text from turning into Markdown structure (headings, lists, quotes, code, tables, setext
    underlines): a backslash goes before the punctuation that would open the block ("155\\. Specific",
    "\\# not a heading"), never before a digit or letter, which CommonMark would print as a backslash."""
    text = escape_inline(text).lstrip(" \t")  # 4 leading spaces would make an indented code block
    m = _BLOCK_START.match(text)
    if m is None:
        return text
    if m.group("num") is not None:
        end = m.end("num")
        return text[:end] + "\\" + text[end:]
    return "\\" + text


def escape_heading(text: str) -> str:
    """Heading text: inline escapes, and a trailing `#` escaped (an ATX heading drops a closing `#` run)."""
    text = escape_inline(text)
    return text[:-1] + "\\#" if text.endswith("#") else text


def escape_inline(text: str) -> str:
    """Text that Markdown prints as it is: markup characters backslash-escaped, `<` as `&lt;`, newlines as
    spaces, control characters dropped (they have no printed form)."""
    text = _CONTROLS.sub("", text.replace("\n", " "))
    return _INLINE_SPECIAL.sub(lambda m: "&lt;" if m.group(0) == "<" else "\\" + m.group(0), text)


def reading_order_paragraphs(page: PageResult) -> list[list[str]]:
    """Paragraphs (lists of row texts) of a page in reading order, furniture included (tests, old callers)."""
    return [p for kind, p in page_blocks(page, keep_furniture=True) if kind == "text"]  # type: ignore[misc]
