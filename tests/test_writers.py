"""Writers: atomic writes, safe output names, the format registry, Markdown reading order."""

from __future__ import annotations

from pathlib import Path

import pytest

from docvlm import writers
from docvlm.datamodel import DocumentResult, EngineInfo, Line, PageResult, SourceInfo
from docvlm.writers import (
    WRITERS,
    atomic_write_text,
    files,
    output_path,
    parse_formats,
    reading_order_paragraphs,
    render_markdown,
    safe_relpath,
)


def _line(text: str, x0: float, y0: float, x1: float, h: float = 20) -> Line:
    return Line(text=text, bbox_page_px=(x0, y0, x1, y0 + h), confidence=0.9)


def _page(lines: list[Line], width: int = 1000, height: int = 1400, index: int = 0) -> PageResult:
    return PageResult(index=index, width_px=width, height_px=height, dpi=None, status="success", lines=lines)


def _doc(pages: list[PageResult]) -> DocumentResult:
    return DocumentResult(
        docvlm_version="test", status="success", source=SourceInfo(path="in/x.pdf", sha256="0", kind="pdf"),
        engine=EngineInfo(name="scripted"), options_digest="d", pages=pages,
    )


# --- atomic writes -----------------------------------------------------------------------------------------


def test_atomic_write_leaves_no_temp_files(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "a.json"
    atomic_write_text(target, "one")
    atomic_write_text(target, "two")
    assert target.read_text() == "two"
    assert sorted(p.name for p in target.parent.iterdir()) == ["a.json"]


@pytest.mark.parametrize("crash_in", ["fsync", "replace"])
def test_crash_during_write_keeps_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, crash_in: str) -> None:
    target = tmp_path / "a.json"
    atomic_write_text(target, '{"old": true}')

    def boom(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt  # the harshest interruption Python can see mid-write

    monkeypatch.setattr(files.os, crash_in, boom)
    with pytest.raises(KeyboardInterrupt):
        atomic_write_text(target, '{"new": true, "padding": "' + "x" * 100_000 + '"}')
    monkeypatch.undo()
    assert target.read_text() == '{"old": true}'
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]


# --- safe names --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("relpath", "expected"),
    [
        ("sub/dir/name.pdf", "sub/dir/name.pdf"),
        ("../../etc/passwd", "etc/passwd"),
        ("a/../../b.pdf", "a/b.pdf"),
        ("..\\..\\win.pdf", "win.pdf"),
        ("/abs/path.pdf", "abs/path.pdf"),
        (".hidden.pdf", "hidden.pdf"),
        ("we:ird*na?me|<>.pdf", "we_ird_na_me___.pdf"),
        ("tab\tnew\nline.pdf", "tab_new_line.pdf"),
        ("Résumé 2024.pdf", "Résumé 2024.pdf"),
        ("con.pdf", "_con.pdf"),
        ("..", "_"),
    ],
)
def test_safe_relpath(relpath: str, expected: str) -> None:
    assert safe_relpath(relpath) == expected


def test_output_path_stays_inside_out_dir(tmp_path: Path) -> None:
    for rel in ["../../x.pdf", "a/../../../y.pdf", "/etc/z.pdf", "..", "a/./b/../c.pdf"]:
        out = output_path(tmp_path, rel, ".json")
        assert tmp_path.resolve() in out.parents, (rel, out)
    assert output_path(tmp_path, "sub/dir/name.pdf", ".json") == tmp_path.resolve() / "sub/dir/name.pdf.json"


# --- registry ----------------------------------------------------------------------------------------------


def test_parse_formats_validates_and_always_keeps_json() -> None:
    assert parse_formats("md") == ("json", "md")
    assert parse_formats("json, md,json") == ("json", "md")
    with pytest.raises(ValueError, match="unknown format 'docx'"):
        parse_formats("json,docx")


def test_registered_writer_is_used(tmp_path: Path) -> None:
    class TxtWriter:
        name = "txt"
        suffix = ".txt"

        def write(self, result: DocumentResult, source_path: object, out_path: Path) -> None:
            atomic_write_text(out_path, "\n".join(ln.text for p in result.pages for ln in p.lines))

    writers.register_writer(TxtWriter())
    try:
        assert parse_formats("txt") == ("json", "txt")
        WRITERS["txt"].write(_doc([_page([_line("hello", 10, 10, 100)])]), None, tmp_path / "a.txt")
        assert (tmp_path / "a.txt").read_text() == "hello"
    finally:
        del WRITERS["txt"]


# --- Markdown reading order --------------------------------------------------------------------------------


def _two_column_page() -> PageResult:
    lines = [_line("Title across both columns", 100, 50, 900, h=30)]
    y = 150.0
    for i in range(6):  # interleave the two columns in y so a naive top-to-bottom sort would mix them
        lines.append(_line(f"L{i}", 100, y, 450))
        lines.append(_line(f"R{i}", 550, y + 2, 900))
        y += 25
    y += 25  # a paragraph break in both columns (1.5 line heights: within a band)
    for i in range(6, 9):
        lines.append(_line(f"L{i}", 100, y, 450))
        lines.append(_line(f"R{i}", 550, y + 2, 900))
        y += 25
    lines.append(_line("- 1 -", 480, 1300, 520))  # page number sitting in the gutter
    return _page(lines[::-1])  # engines may return lines in any order


def test_two_columns_read_column_by_column() -> None:
    paras = reading_order_paragraphs(_two_column_page())
    flat = [row for para in paras for row in para]
    assert flat == (
        ["Title across both columns"] + [f"L{i}" for i in range(9)] + [f"R{i}" for i in range(9)] + ["- 1 -"]
    )
    assert ["L0", "L1", "L2", "L3", "L4", "L5"] in paras
    assert ["L6", "L7", "L8"] in paras


def test_grid_of_cards_reads_row_by_row() -> None:
    """Blank gaps of 2+ line heights across the whole page cut it into bands read top to bottom."""
    lines = []
    for row, (left, right) in enumerate((("A", "B"), ("C", "D"))):
        y = 100 + row * 400
        for k in range(3):
            lines.append(_line(f"{left}{k}", 100, y + 25 * k, 450))
            lines.append(_line(f"{right}{k}", 550, y + 25 * k, 900))
    flat = [r for para in reading_order_paragraphs(_page(lines)) for r in para]
    assert flat == ["A0", "A1", "A2", "B0", "B1", "B2", "C0", "C1", "C2", "D0", "D1", "D2"]


def test_single_column_rows_and_paragraphs() -> None:
    lines = [
        _line("Total", 100, 100, 200), _line("12.50", 700, 101, 800),  # one visual row, two boxes
        _line("Thanks", 100, 125, 300),
        _line("Next paragraph", 100, 250, 500),
    ]
    assert reading_order_paragraphs(_page(lines)) == [["Total 12.50", "Thanks"], ["Next paragraph"]]


def test_markdown_has_page_markers_and_escapes_structure() -> None:
    md = render_markdown(_doc([_page([_line("# not a heading", 10, 10, 200)]), _page([], index=1)]))
    assert "<!-- page 1 -->" in md and "<!-- page 2 -->" in md
    assert "\\# not a heading" in md
    assert md.endswith("\n")


def test_markdown_of_real_two_column_sample(samples_dir: Path, tmp_path: Path) -> None:
    """The real two-column sample through the default engine (text layer): left column before right."""
    pdf = samples_dir / "two_column.pdf"
    if not pdf.is_file():
        pytest.skip("samples/two_column.pdf not generated")
    import docvlm

    md = render_markdown(docvlm.convert(str(pdf)))
    left_end = md.index("overlap are merged, and the larger of the two\nboxes is kept.")
    right_start = md.index("Right column")
    assert md.index("Left column") < md.index("Two columns test the reading order") < left_end
    assert left_end < right_start < md.index("is both faster and more accurate than\nrecognition.")
    assert right_start < md.index("the total and the tax.")
    assert "- 1 -" not in md  # the page number is furniture: in the JSON, not in the Markdown
