"""Issue 17 item 13: reading order on scanned forms, on pages made here (OCR-like lines, no font sizes).

- A Bates number printed sideways in the right margin (one tall line, and a piece of it the detector cut off
  as its own short line on a body row) is read apart from the body, not into "and return the 8".
- A running footer "Appendix B", set a little larger than the body at the foot of every page, is a footer,
  not `# Appendix B`; on a single page, a line that ends the page is no heading either.
- A counsel's address block beside a form's first fields is read before the fields wholly below it, while
  a short column of prose is still read after the longer column beside it; a "Counsel:" label beside the
  block is read before it (labels ending in a colon are no sidebar).
"""

from __future__ import annotations

from docvlm.datamodel import DocumentResult, EngineInfo, Line, PageResult, SourceInfo, Word
from docvlm.layout import DocumentContext, PageContext, apply_document_layout, apply_page_layout
from docvlm.writers import render_markdown

W, H = 1000, 1400


def _line(text: str, x0: float, y0: float, x1: float, y1: float) -> Line:
    words, pieces = [], text.split()
    step = (x1 - x0) / max(1, len(pieces))
    for k, w in enumerate(pieces):
        words.append(Word(text=w, bbox_page_px=(x0 + k * step, y0, x0 + (k + 1) * step - 4, y1), confidence=0.9))
    return Line(text=text, bbox_page_px=(x0, y0, x1, y1), confidence=0.9, words=words)


def _page(lines: list[Line], index: int = 0) -> PageResult:
    return PageResult(index=index, width_px=W, height_px=H, dpi=200.0, status="success", lines=lines,
                      text_source="ocr")


def _doc(pages: list[PageResult]) -> DocumentResult:
    return DocumentResult(docvlm_version="t", status="success", source=SourceInfo(path="f.png", sha256="0",
                          kind="image"), engine=EngineInfo(name="ocr"), options_digest="d", pages=pages)


def _form_body(top: float = 120) -> list[Line]:
    texts = ["CLAIM FORM FOR RETURNED GOODS", "Please complete every field of this form", "and return the",
             "signed copy to the office named below", "Name of claimant: John Smith",
             "Address: 12 High Street, Springfield", "Date of purchase: 12 March 2018",
             "Reason for return: damaged in transit", "Signature of claimant", "Office use only"]
    return [_line(t, 100, top + 44 * k, 100 + 17 * len(t), top + 44 * k + 26) for k, t in enumerate(texts)]


def test_sideways_bates_number_is_read_apart_from_the_body() -> None:
    body = _form_body()
    row = next(ln for ln in body if ln.text == "and return the")
    bates = _line("ABC0001234", 955, 240, 982, 500)  # printed sideways: a tall, narrow box in the margin
    piece = _line("8", 957, row.bbox_page_px[1], 980, row.bbox_page_px[3])  # a piece cut off on a body row
    page = apply_page_layout(_page(body + [bates, piece]), PageContext())
    roles = {ln.text: ln.role for ln in page.lines}
    # the long sideways line is judged a sideways banner (header) or a margin mark: out of the body either way
    assert roles["ABC0001234"] in ("margin", "header") and roles["8"] == "margin", roles
    assert all(roles[ln.text] != "margin" for ln in body)
    md = render_markdown(_doc([page]))
    assert "and return the 8" not in md and "and return the\n" in md, md
    texts = [ln.text for ln in page.lines]
    assert texts.index("8") > texts.index("Office use only"), texts  # after the body, not inside it


def test_amounts_at_the_right_edge_stay_body() -> None:
    """A receipt's amounts stand near the right edge too, with their labels on the same row: not marks."""
    lines = []
    for k, (label, amount) in enumerate([("SUBTOTAL", "18.50"), ("TAX", "1.11"), ("TOTAL", "19.61")]):
        y = 300 + 40 * k
        lines += [_line(label, 100, y, 260, y + 26), _line(amount, 900, y, 990, y + 26)]
    page = apply_page_layout(_page(lines + _form_body(500)), PageContext())
    assert not [ln.text for ln in page.lines if ln.role == "margin"]


def test_running_footer_is_no_heading() -> None:
    pages = []
    for n in range(3):
        footer = _line("Appendix B", 420, 1330, 580, 1368)  # taller than the body's 26 px: heading-sized
        pages.append(apply_page_layout(_page(_form_body() + [footer], index=n), PageContext()))
    pages = apply_document_layout(pages, DocumentContext())
    foot = [ln for p in pages for ln in p.lines if ln.text == "Appendix B"]
    assert len(foot) == 3 and all(ln.role == "footer" and ln.heading_level is None for ln in foot), foot
    md = render_markdown(_doc(pages))
    assert "# Appendix B" not in md and "Appendix B" not in md  # furniture: in the JSON, not the Markdown


def test_a_line_ending_the_page_is_no_heading_but_a_real_heading_stays() -> None:
    title = _line("Statement of Claim", 300, 40, 700, 80)  # heading-sized, with the body below it
    footer = _line("Appendix B", 420, 1330, 580, 1368)
    page = apply_page_layout(_page([title] + _form_body() + [footer]), PageContext())
    roles = {ln.text: ln.role for ln in page.lines}
    assert roles["Statement of Claim"] == "heading"
    assert roles["Appendix B"] != "heading"


def _field(text: str, x: float, y: float) -> Line:
    return _line(text, x, y, x + 15 * len(text), y + 26)


def test_counsel_address_block_is_read_before_the_fields_below_it() -> None:
    """A counsel's address block beside a form's first fields is read before the fields wholly below it."""
    address = ["Attorney for Plaintiff", "John A. Smith, Esq.", "Smith & Jones LLP", "100 Main Street",
               "New York, NY 10001"]
    lines = [_field("SUBPOENA DUCES TECUM", 350, 80), _field("Case No.: 98-1234", 100, 160),
             *(_field(t, 560, 160 + 32 * k) for k, t in enumerate(address)),
             _field("Court: Superior Court", 100, 220),
             _field("Return date: July 1, 1998", 100, 360), _field("Witness: Mary Brown", 100, 410),
             _field("Please produce the documents listed in the schedule attached hereto at the time", 100, 470),
             _field("and place stated above.", 100, 502)]
    page = apply_page_layout(_page(lines), PageContext())
    texts = [ln.text for ln in page.lines]
    assert texts.index("Case No.: 98-1234") < texts.index("Attorney for Plaintiff"), texts
    # the block stays whole, in its own order, and comes before every field that lies wholly below it
    k = texts.index("Attorney for Plaintiff")
    assert texts[k:k + len(address)] == address, texts
    assert texts.index("New York, NY 10001") < texts.index("Return date: July 1, 1998"), texts
    assert texts.index("Return date: July 1, 1998") < texts.index("Witness: Mary Brown"), texts
    blocks = {ln.block for ln in page.lines if ln.text in address}
    assert len(blocks) == 1, blocks


def test_a_column_that_ends_early_beside_running_prose_is_still_read_after_it() -> None:
    """Two columns of prose, the right one shorter: the left column is read through before the right one."""
    left = [f"left column line {k} of the running text here" for k in range(14)]
    right = [f"right column line {k} of the text there" for k in range(5)]
    # a blank gap between two of the left column's paragraphs, well below the right column's end
    lines = [_line(t, 60, 100 + 32 * k + 40 * (k >= 9), 470, 126 + 32 * k + 40 * (k >= 9))
             for k, t in enumerate(left)]
    lines += [_line(t, 530, 100 + 32 * k, 940, 126 + 32 * k) for k, t in enumerate(right)]
    page = apply_page_layout(_page(lines), PageContext())
    texts = [ln.text for ln in page.lines if ln.role == "body"]
    assert texts == left + right, texts


def test_a_counsel_label_beside_its_address_block_is_read_before_it() -> None:
    """Labels ending in a colon beside their values are the key column of a form, not a sidebar read last."""
    address = ["John A. Smith, Esq.", "Smith & Jones LLP", "100 Main Street", "New York, NY 10001"]
    lines = [_field("Counsel:", 100, 300), *(_field(t, 300, 300 + 32 * k) for k, t in enumerate(address)),
             _field("Return date:", 100, 460), _field("July 1, 1998", 300, 460),
             _field("Witness:", 100, 510), _field("Mary Brown", 300, 510),
             _field("Documents requested:", 100, 560), _field("All records", 420, 560)]
    page = apply_page_layout(_page(_form_body(40)[:2] + lines), PageContext())
    texts = [ln.text for ln in page.lines]
    order = ["Counsel:", *address, "Return date:", "July 1, 1998", "Witness:", "Mary Brown"]
    assert [t for t in texts if t in order] == order, texts
    assert not [ln.text for ln in page.lines if ln.role == "margin"]
