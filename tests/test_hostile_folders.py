"""Issue 17 items 1, 4, 9: inputs are never written over, docvlm's outputs are never read back as inputs,
symlink loops and odd folder entries cost a path (listed), not the batch; the run summary is always written or
its failure said clearly."""

from __future__ import annotations

import errno
import hashlib
import json
import os
from pathlib import Path

import pymupdf
import pytest
from click.testing import CliRunner
from PIL import Image

from docvlm import batch
from docvlm.batch import merge_summaries, run_batch
from docvlm.cli import main
from docvlm.errors import UsageError
from docvlm.options import make_options


def make_pdf(path: Path, pages: int = 1, text: str = "hello") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = pymupdf.open()
    for i in range(pages):
        page = doc.new_page(width=300, height=200)
        page.insert_text((20, 50), f"{text} {i}")
    doc.save(path)
    doc.close()
    return path


def make_png(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (120, 80), "white").save(path)
    return path


def opts(**kw: object):
    return make_options(engine="scripted", **kw)


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --- item 1: never write over an input, never read our own outputs ----------------------------------------


def test_searchable_pdf_of_an_image_never_replaces_the_input_pdf_of_the_same_name(tmp_path: Path) -> None:
    d = tmp_path / "d"
    make_png(d / "scan.png")
    user_pdf = make_pdf(d / "scan.png.pdf", text="the user's own PDF")
    before = sha(user_pdf)
    # the explicit files and an output folder holding one of them: scan.png's PDF would be d/scan.png.pdf
    summary = run_batch([d / "scan.png", d / "scan.png.pdf"], d, opts(formats=("json", "pdf")))
    assert sha(user_pdf) == before
    docs = {doc.path: doc for doc in summary.documents}
    png = docs[str(d / "scan.png")]
    assert png.status == "success"
    assert all(o != "scan.png.pdf" for o in png.outputs) and any(o.endswith(".pdf") for o in png.outputs)
    assert any("never written over" in w for w in png.warnings)
    # a rerun resumes both (same names), still without touching the input
    again = run_batch([d / "scan.png", d / "scan.png.pdf"], d, opts(formats=("json", "pdf")))
    assert again.totals.resumed == 2 and sha(user_pdf) == before


def test_out_equal_to_an_input_folder_is_refused_with_exit_2(tmp_path: Path) -> None:
    d = tmp_path / "d"
    make_png(d / "scan.png")
    make_pdf(d / "scan.png.pdf")
    before = sha(d / "scan.png.pdf")
    res = CliRunner().invoke(main, ["convert", str(d), "-o", str(d), "--engine", "scripted", "--format", "json,pdf"])
    assert res.exit_code == 2
    assert "is an input folder" in res.output
    assert sha(d / "scan.png.pdf") == before and sorted(p.name for p in d.iterdir()) == ["scan.png", "scan.png.pdf"]
    with pytest.raises(UsageError, match="--overlay"):
        run_batch([d], tmp_path / "out", opts(), overlay_dir=d)


def test_out_inside_the_input_folder_is_never_read_back(tmp_path: Path) -> None:
    d = tmp_path / "d"
    make_png(d / "a.png")
    make_pdf(d / "b.pdf")
    out, overlays = d / "out", d / "overlays"
    counts = []
    for _ in range(3):
        summary = run_batch([d], out, opts(formats=("json", "pdf")), overlay_dir=overlays)
        counts.append(summary.totals.documents)
        assert {doc.key for doc in summary.documents} == {"a.png", "b.pdf"}
    assert counts == [2, 2, 2]  # not 2 -> 6 -> 14
    assert summary.totals.resumed == 2
    skipped = {Path(s.path).name: s.reason for s in summary.skipped}
    assert "docvlm's output folder" in skipped["out"] and "docvlm's output folder" in skipped["overlays"]


# --- item 4: a symlink loop is one failed path ----------------------------------------------------------------


def test_symlink_loop_is_a_per_path_failure_and_the_summary_is_written(tmp_path: Path) -> None:
    d = tmp_path / "d"
    make_pdf(d / "ok.pdf")
    (d / "loop.pdf").symlink_to(d / "loop.pdf")  # resolve() raises on it
    (d / "a.pdf").symlink_to(d / "b.pdf")
    (d / "b.pdf").symlink_to(d / "a.pdf")
    out = tmp_path / "out"
    summary = run_batch([d], out, opts())
    docs = {doc.key: doc for doc in summary.documents}
    assert docs["ok.pdf"].status == "success"
    for key in ("loop.pdf", "a.pdf", "b.pdf"):
        assert docs[key].status == "failure"
        assert "loop of links" in docs[key].errors[0] and key in docs[key].errors[0]
    assert json.loads((out / "_docvlm_summary.json").read_text())["totals"]["failure"] == 3
    # named on the command line too
    res = CliRunner().invoke(main, ["convert", str(d / "loop.pdf"), "-o", str(tmp_path / "o2"), "--engine", "scripted"])
    assert res.exit_code == 1 and "loop of links" in res.output


# --- item 9: what is skipped is listed; summary names and write failures ---------------------------------


def test_hidden_symlinked_and_unreadable_entries_are_listed_in_the_summary(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    d = tmp_path / "d"
    make_pdf(d / "ok.pdf")
    make_pdf(d / ".hidden.pdf")
    make_pdf(d / ".cache" / "x.pdf")
    make_pdf(tmp_path / "elsewhere" / "y.pdf")
    (d / "linked").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    make_pdf(d / "locked" / "z.pdf")
    (d / "notes.txt").write_text("not an input")
    real_scandir = os.scandir

    def scandir(path: object = ".") -> object:  # chmod 000 does not stop root: fail the listing instead
        if str(path).endswith("locked"):
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "scandir", scandir)
    summary = run_batch([d], tmp_path / "out", opts())
    assert [doc.key for doc in summary.documents] == ["ok.pdf"]
    reasons = {Path(s.path).name: s.reason for s in summary.skipped}
    assert set(reasons) == {".hidden.pdf", ".cache", "linked", "locked"}
    assert reasons[".hidden.pdf"].startswith("hidden") and reasons["linked"].startswith("symbolic link")
    assert "cannot be read" in reasons["locked"]
    assert summary.unsupported_files == 1
    stored = json.loads((tmp_path / "out" / "_docvlm_summary.json").read_text())
    assert len(stored["skipped"]) == 4
    assert len(merge_summaries(tmp_path / "out").skipped) == 4


def test_inputs_named_like_the_summary_do_not_break_docvlm_summary(tmp_path: Path) -> None:
    d = tmp_path / "d"
    make_pdf(d / "_docvlm_summary.pdf")
    make_pdf(d / "_docvlm_summary.shard-1-of-2.pdf")
    named = tmp_path / "e" / "_docvlm_summary"  # no extension: its JSON would be the summary itself
    make_pdf(named)
    out = tmp_path / "out"
    summary = run_batch([d, named], out, opts())
    assert summary.totals.success == 3
    res = CliRunner().invoke(main, ["summary", str(out)])
    assert res.exit_code == 0, res.output
    merged = merge_summaries(out)
    assert merged.summary_files == ["_docvlm_summary.json"] and merged.totals.documents == 3


def test_summary_that_cannot_be_written_is_a_clear_error_not_a_traceback(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    d = tmp_path / "d"
    make_pdf(d / "ok.pdf")
    out = tmp_path / "out"
    out.mkdir()
    (out / "_docvlm_summary.json").mkdir()  # a folder in the way (as a full disk would, an OSError)
    with pytest.raises(batch.SummaryWriteError, match="cannot write the run summary") as info:
        run_batch([d], out, opts())
    assert info.value.summary.totals.success == 1 and (out / "ok.pdf.json").is_file()
    res = CliRunner().invoke(main, ["convert", str(d), "-o", str(out), "--engine", "scripted"])
    assert res.exit_code == 1 and "cannot write the run summary" in res.output and "Traceback" not in res.output
    (out / "_docvlm_summary.json").rmdir()

    def disk_full(path: object, text: str) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("docvlm.batch.atomic_write_text", disk_full)
    res = CliRunner().invoke(main, ["convert", str(d), "-o", str(out), "--engine", "scripted"])
    assert res.exit_code == 1 and "No space left on device" in res.output and "Traceback" not in res.output
    monkeypatch.undo()
    # an output folder that is a broken symbolic link: exit 2 up front, naming it
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere" / "x")
    res = CliRunner().invoke(main, ["convert", str(d), "-o", str(tmp_path / "dangling"), "--engine", "scripted"])
    assert res.exit_code == 2 and "symbolic link" in res.output


def test_a_symlink_in_out_leading_outside_fails_that_document_not_the_batch(tmp_path: Path) -> None:
    make_pdf(tmp_path / "in" / "sub" / "d.pdf")
    make_pdf(tmp_path / "in" / "ok.pdf")
    out, elsewhere = tmp_path / "out", tmp_path / "elsewhere"
    out.mkdir()
    elsewhere.mkdir()
    (out / "sub").symlink_to(elsewhere, target_is_directory=True)
    res = CliRunner().invoke(main, ["convert", str(tmp_path / "in"), "-o", str(out), "--engine", "scripted"])
    assert res.exit_code == 1 and "Traceback" not in res.output, res.output
    docs = {d["key"]: d for d in json.loads((out / "_docvlm_summary.json").read_text())["documents"]}
    assert docs["ok.pdf"]["status"] == "success"
    assert docs["sub/d.pdf"]["status"] == "failure" and "symbolic link leading outside" in docs["sub/d.pdf"]["errors"][0]
    assert not list(elsewhere.iterdir())  # nothing written outside -o
