"""Issue 17 item 14: `docvlm ground` finds a phrase that wraps inside a table cell or a paragraph.

The page is made here: a ruled table whose narrow cells wrap "Respondent unsure" onto two lines (four cells),
a paragraph that breaks the phrase across two lines, and a footnote printing it on one line.
"""

from __future__ import annotations

from pathlib import Path

import pymupdf
import pytest

from docvlm.extract.ground import ground_document
from docvlm.options import make_options

PHRASE = "Respondent unsure"
WRAPPED_CELLS = [(1, 1), (1, 3), (2, 2), (2, 3)]


def make_survey(path: Path) -> Path:
    doc = pymupdf.open()
    page = doc.new_page(width=612, height=792)
    page.insert_text((72, 80), "Survey answers by question", fontsize=14)
    cols, rows = [72, 180, 250, 320, 390], [110, 140, 190, 240]
    for x in cols:
        page.draw_line((x, rows[0]), (x, rows[-1]))
    for y in rows:
        page.draw_line((cols[0], y), (cols[-1], y))
    for c, head in enumerate(["Question", "Wave 1", "Wave 2", "Wave 3"]):
        page.insert_text((cols[c] + 4, rows[0] + 18), head, fontsize=10)
    body = [["Likes the park", PHRASE, "Yes", PHRASE], ["Walks daily", "No", PHRASE, PHRASE]]
    for r, row in enumerate(body):
        for c, text in enumerate(row):
            rect = pymupdf.Rect(cols[c] + 4, rows[r + 1] + 4, cols[c + 1] - 4, rows[r + 2] - 4)
            assert page.insert_textbox(rect, text, fontsize=10) >= 0
    page.insert_text((72, 320), "When a person gave no answer the interviewer wrote Respondent", fontsize=11)
    page.insert_text((72, 334), "unsure in the form and went on with the next question of the survey.", fontsize=11)
    page.insert_text((72, 700), "* Respondent unsure means the person did not answer.", fontsize=8)
    doc.save(path)
    return path


@pytest.fixture(scope="module")
def survey(tmp_path_factory: pytest.TempPathFactory):
    pdf = make_survey(tmp_path_factory.mktemp("ground") / "survey.pdf")
    return ground_document(pdf, make_options(), PHRASE)


def test_phrase_wrapped_in_four_cells_a_paragraph_and_a_footnote_is_found_six_times(survey) -> None:
    got, read = survey
    page = read.pages[0]
    assert page.tables, "the fixture's ruled table must be found"
    cells = {(c.row, c.col): c for c in page.tables[0].cells}
    assert all(cells[rc].text == PHRASE for rc in WRAPPED_CELLS)
    assert sum(ln.text.strip() == "unsure" for ln in page.lines) == 4, "the cells' text must wrap"
    assert got.status == "found"
    assert len(got.hits) == 6, [(h.text, h.how) for h in got.hits]
    assert all(h.found_by == "literal" and h.text.lower() == PHRASE.lower() for h in got.hits)
    for rc in WRAPPED_CELLS:  # each cell's hit covers both of its lines, and nothing outside the cell
        box = cells[rc].bbox_page_px
        assert any(all(abs(a - b) < 2 for a, b in zip(h.bbox_page_px, box, strict=True)) for h in got.hits), rc
    assert sum("table cell" in h.how for h in got.hits) == 4
    assert sum("paragraph" in h.how for h in got.hits) == 1


def test_fuzzy_query_also_spans_the_lines_of_a_cell(survey) -> None:
    from docvlm.extract.ground import ground_text

    _, read = survey
    got = ground_text(read, "Respondnt unsur")
    assert sum(h.found_by == "fuzzy" and "table cell" in h.how for h in got.hits) == 4, got.hits


def test_passages_keep_cells_apart(survey) -> None:
    from docvlm.extract.ground import page_passages

    _, read = survey
    texts = [p.text for p in page_passages(read.pages[0]) if p.kind == "cell"]
    assert texts.count(PHRASE) == 4
    assert not any("Yes" in t and "Respondent" in t for t in texts)


def test_one_fuzzy_matcher() -> None:
    """The ocr engine's ground task and `docvlm ground` share `docvlm.text_match` (the reviewers' remark)."""
    import docvlm.engines.ocr as ocr
    import docvlm.extract.ground as ground
    import docvlm.text_match as text_match

    assert ocr.fuzzy_contains is text_match.fuzzy_contains
    assert ocr.best_word_runs is text_match.best_word_runs is ground.best_word_runs
    assert not hasattr(ocr, "SequenceMatcher") and not hasattr(ground, "span_box")
