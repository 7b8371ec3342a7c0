"""Issue 17 item 11: Markdown that CommonMark reads back as the page's text, and no control characters.

Every line below is one paragraph of a page; the Markdown is rendered by markdown-it-py (CommonMark, with
GFM tables and strikethrough switched on) and the text must come back exactly: no structure made up from
the text (a list, a heading, a quote, code, a table, emphasis, a link) and no stray backslash.
"""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

import markdown_it
import pytest

from docvlm.datamodel import DocumentResult, EngineInfo, Line, PageResult, SourceInfo, Word
from docvlm.layout.text_repair import repair_text
from docvlm.writers import render_markdown

CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")

TRICKY = [
    "155. Specific events were recorded",
    "1) first point",
    "# not a heading",
    "###### six hashes",
    "- dash item",
    "+ plus item",
    "* star item",
    "> not a quote",
    "| a | b |",
    "`code` here",
    "``` fence",
    "~~~",
    "~~struck~~ text",
    "invoice_no stays",
    "_emph_ and *strong* and __both__",
    "<b>tag</b> and <http://x.y>",
    "AT&T &amp; &copy; &#169;",
    "[link](http://x) and ![img](y)",
    "[ref]: http://example.com",
    "ends with backslash \\",
    "a \\* b",
    "---",
    "***",
    "___",
    "    four-space indent",
    "Item #",
]


def _md_parser() -> markdown_it.MarkdownIt:
    return markdown_it.MarkdownIt("commonmark").enable(["table", "strikethrough"])


def _doc(lines: list[Line]) -> DocumentResult:
    page = PageResult(index=0, width_px=1000, height_px=3000, dpi=None, status="success", lines=lines)
    return DocumentResult(
        docvlm_version="test", status="success", source=SourceInfo(path="in/x.pdf", sha256="0", kind="pdf"),
        engine=EngineInfo(name="scripted"), options_digest="d", pages=[page],
    )


def _line(text: str, i: int, block: int, role: str | None = None, level: int | None = None) -> Line:
    return Line(text=text, bbox_page_px=(100, 40 + 30 * i, 900, 60 + 30 * i), confidence=0.9, block=block,
                role=role, heading_level=level)


def _paragraph_texts(rendered: str) -> list[str]:
    return [html.unescape(re.sub(r"<[^>]+>", "", p)) for p in re.findall(r"<p>(.*?)</p>", rendered, re.S)]


@pytest.mark.parametrize("text", TRICKY)
def test_commonmark_reads_each_line_back_as_plain_text(text: str) -> None:
    md = render_markdown(_doc([_line(text, 0, 0)]))
    rendered = _md_parser().render(md)
    for tag in ("<h", "<ol", "<ul", "<blockquote", "<pre", "<code", "<table", "<em", "<strong", "<a ", "<img",
                "<hr", "<s>", "<b>"):
        assert tag not in rendered, (text, md, rendered)
    assert _paragraph_texts(rendered) == [text.strip()], (md, rendered)


def test_numbered_line_escapes_its_delimiter_not_its_number() -> None:
    md = render_markdown(_doc([_line("155. Specific events", 0, 0)]))
    assert "155\\. Specific events" in md and "\\155" not in md


def test_setext_underline_inside_a_paragraph_makes_no_heading() -> None:
    lines = [_line("Title words", 0, 0), _line("===", 1, 0), _line("Body", 2, 1), _line("---", 3, 1)]
    rendered = _md_parser().render(render_markdown(_doc(lines)))
    assert "<h1>" not in rendered and "<h2>" not in rendered and "<hr" not in rendered
    assert _paragraph_texts(rendered) == ["Title words\n===", "Body\n---"]


def test_heading_keeps_a_trailing_hash_and_its_markup_characters() -> None:
    md = render_markdown(_doc([_line("Item # *1*", 0, 0, role="heading", level=2), _line("Part #", 1, 1,
                                                                                           role="heading", level=1)]))
    rendered = _md_parser().render(md)
    assert "<h2>Item # *1*</h2>" in rendered and "<h1>Part #</h1>" in rendered


def test_repair_drops_controls_and_keeps_bullets() -> None:
    assert repair_text("\x99 First item") == "\u2022 First item"
    assert repair_text("Tab\x07bell\x9f") == "Tabbell"
    assert repair_text("\x95") == "\u2022"
    assert repair_text("keep\ttab") == "keep\ttab"


def test_control_characters_never_reach_json_or_markdown(tmp_path: Path) -> None:
    """Lines as a text layer gives them when a font maps its bullets to U+0099 (and a stray bell): after the
    layout stage every engine runs, the JSON text shows a bullet, the raw text keeps what the layer said,
    and neither the JSON nor the Markdown file has a control character."""
    from docvlm.layout import PageContext, apply_page_layout
    from docvlm.writers import WRITERS

    body = [
        "\x99 The first item of a list of things",
        "\x99 The second item of the same list",
        "A plain sentence with a stray bell\x07 character",
    ]
    lines = [Line(text=t, bbox_page_px=(100, 100 + 40 * i, 900, 125 + 40 * i), confidence=1.0,
                  words=[Word(text=w, bbox_page_px=(100, 100 + 40 * i, 150, 125 + 40 * i), confidence=1.0)
                         for w in t.split()])
             for i, t in enumerate(body)]
    page = PageResult(index=0, width_px=1000, height_px=1400, dpi=None, status="success", lines=lines)
    page = apply_page_layout(page, PageContext())
    result = _doc(list(page.lines))
    WRITERS["json"].write(result, None, tmp_path / "x.json")
    WRITERS["md"].write(result, None, tmp_path / "x.md")
    as_json = json.loads((tmp_path / "x.json").read_text())
    texts = [ln["text"] for p in as_json["pages"] for ln in p["lines"]]
    words = [w["text"] for p in as_json["pages"] for ln in p["lines"] for w in ln["words"]]
    assert not CONTROL.search("".join(texts + words)), texts
    assert [t for t in texts if t.startswith("\u2022 ")] == [
        "\u2022 The first item of a list of things", "\u2022 The second item of the same list"]
    assert "A plain sentence with a stray bell character" in texts
    assert words.count("\u2022") == 2
    raws = [ln["raw_text"] for p in as_json["pages"] for ln in p["lines"] if ln["raw_text"]]
    assert sorted(raws) == sorted(body), "raw_text keeps what the text layer said"
    md = (tmp_path / "x.md").read_text()
    assert not CONTROL.search(md)
    assert "\u2022 The first item" in md and "bell character" in md
