"""Issue 17 item 9 (the smaller ones): --format pdf failures, --pages up front and past a document's end, plan
streaming its rows."""

from __future__ import annotations

import json
from pathlib import Path

import pymupdf
import pytest
from click.testing import CliRunner

from docvlm.cli import main


def make_pdf(path: Path, pages: int = 1) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = pymupdf.open()
    for i in range(pages):
        doc.new_page(width=300, height=200).insert_text((20, 50), f"hello {i}")
    doc.save(path)
    return path


def convert(*args: str):
    return CliRunner().invoke(main, ["convert", *args, "--engine", "scripted"])


def test_format_pdf_keeps_the_real_error_and_writes_the_failure_json(tmp_path: Path) -> None:
    src = tmp_path / "in"
    src.mkdir()
    (src / "bad.pdf").write_bytes(b"%PDF-1.4\n1 0 obj garbage")
    make_pdf(src / "ok.pdf")
    out = tmp_path / "out"
    res = convert(str(src), "-o", str(out), "--format", "pdf")
    assert res.exit_code == 1
    summary = json.loads((out / "_docvlm_summary.json").read_text())
    bad = next(d for d in summary["documents"] if d["key"] == "bad.pdf")
    assert "damaged" in bad["errors"][0] and "cannot write" not in " ".join(bad["errors"])
    failure = json.loads((out / "bad.pdf.json").read_text())  # the failure record is written
    assert failure["status"] == "failure" and "damaged" in failure["errors"][0]["message"]
    assert any("no pdf output for a failed document" in w for w in bad["warnings"])
    assert (out / "ok.pdf.pdf").is_file()


@pytest.mark.parametrize("spec", ["0", "abc", "5-2", "1,,2"])
def test_bad_pages_stop_up_front_with_exit_2(tmp_path: Path, spec: str) -> None:
    make_pdf(tmp_path / "in" / "a.pdf")
    out = tmp_path / "out"
    res = convert(str(tmp_path / "in"), "-o", str(out), "--pages", spec)
    assert res.exit_code == 2 and "--pages" in res.output
    assert not (out / "a.pdf.json").exists()  # no document was tried
    res = CliRunner().invoke(main, ["plan", str(tmp_path / "in"), "--pages", spec])
    assert res.exit_code == 2 and "--pages" in res.output


def test_pages_past_the_end_read_the_pages_that_exist(tmp_path: Path) -> None:
    make_pdf(tmp_path / "in" / "one.pdf", pages=1)
    make_pdf(tmp_path / "in" / "three.pdf", pages=3)
    out = tmp_path / "out"
    res = convert(str(tmp_path / "in"), "-o", str(out), "--pages", "1-2")
    assert res.exit_code == 0, res.output
    docs = {d["key"]: d for d in json.loads((out / "_docvlm_summary.json").read_text())["documents"]}
    assert docs["one.pdf"]["status"] == "success" and docs["one.pdf"]["pages"] == 1
    assert any("page(s) 2 are beyond the document's 1 page(s)" in w for w in docs["one.pdf"]["warnings"])
    assert docs["three.pdf"]["pages"] == 2 and not docs["three.pdf"]["warnings"]
    assert "beyond the document" in res.output  # said on the terminal too
    res = convert(str(tmp_path / "in"), "-o", str(tmp_path / "out2"), "--pages", "3")
    assert res.exit_code == 1
    docs = {d["key"]: d for d in json.loads((tmp_path / "out2" / "_docvlm_summary.json").read_text())["documents"]}
    assert docs["one.pdf"]["status"] == "failure" and "none of the selected pages" in docs["one.pdf"]["errors"][0]
    assert docs["three.pdf"]["status"] == "success" and docs["three.pdf"]["pages"] == 1


@pytest.mark.parametrize("json_out", [False, True])
def test_plan_prints_each_row_as_its_page_is_planned(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                      json_out: bool) -> None:
    import docvlm.plan

    pdf = make_pdf(tmp_path / "long.pdf", pages=5)
    real = docvlm.plan.plan_for_page
    calls = []

    def plan_for_page(page, *args, **kwargs):  # the run "is killed" while planning page 3
        calls.append(page.index)
        if len(calls) == 3:
            raise RuntimeError("stopped here")
        return real(page, *args, **kwargs)

    monkeypatch.setattr(docvlm.plan, "plan_for_page", plan_for_page)
    res = CliRunner().invoke(main, ["plan", str(pdf), *(["--json"] if json_out else [])])
    assert isinstance(res.exception, RuntimeError)
    if json_out:
        assert res.output.count('"page": ') == 2
    else:
        assert "long.pdf p1:" in res.output and "long.pdf p2:" in res.output and "p3" not in res.output
