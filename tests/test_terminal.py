"""Issue 17 item 15: what the terminal says. The pages bar learns its total; nothing is drawn before a usage
error; `--help` lists every command in full; an error names its path once; an extract run says
"extracted"; `show` of a failed result says so and exits 1; `--ray local` prints no Ray authentication
warning; page numbers say which base they count from, in the tables and in the JSON Schema."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from rich.console import Console

from docvlm.cli import main
from docvlm.cli._common import ProgressCallbacks
from docvlm.options import make_options
from tests.test_batch import make_pdf, make_png

ROOT = Path(__file__).resolve().parent.parent
ENV = {k: v for k, v in os.environ.items() if not k.startswith(("DOCVLM_", "RAY_"))} | {
    "PYTHONWARNINGS": "ignore", "COLUMNS": "100"}


def docvlm(*args: str, env: dict[str, str] | None = None, timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "docvlm", *args], capture_output=True, text=True, cwd=ROOT,
                          env=env or ENV, timeout=timeout)


def test_selected_page_count_follows_pages_and_max_pages(tmp_path: Path) -> None:
    from docvlm.page_totals import selected_page_count

    pdf = make_pdf(tmp_path / "five.pdf", pages=5)
    png = make_png(tmp_path / "one.png")
    assert selected_page_count(pdf, make_options()) == 5
    assert selected_page_count(pdf, make_options(pages="2-")) == 4
    assert selected_page_count(pdf, make_options(pages="1,3")) == 2
    assert selected_page_count(pdf, make_options(pages="4-9")) == 2  # past the end: the pages that exist
    assert selected_page_count(pdf, make_options(max_pages=3)) == 3
    assert selected_page_count(png, make_options()) == 1
    (tmp_path / "bad.pdf").write_bytes(b"%PDF-1.4 garbage")
    assert selected_page_count(tmp_path / "bad.pdf", make_options()) is None


def test_pages_bar_learns_its_total(tmp_path: Path) -> None:
    paths = [str(make_pdf(tmp_path / "a.pdf", pages=3)), str(make_png(tmp_path / "b.png")),
             str(make_pdf(tmp_path / "c.pdf", pages=2))]
    with ProgressCallbacks(Console(file=io.StringIO()), False, make_options()) as cb:
        cb.start(3, 0)
        cb.inputs(paths)
        assert cb._counter is not None
        cb._counter.join(timeout=60)
        assert cb.progress.tasks[cb.pages].total == 6


def test_convert_run_shows_the_pages_total_and_names_a_failed_path_once(tmp_path: Path) -> None:
    inbox = tmp_path / "in"
    make_pdf(inbox / "a.pdf", pages=3)
    make_png(inbox / "b.png")
    (inbox / "bad").mkdir()
    (inbox / "bad" / "enc.pdf").write_bytes(b"%PDF-1.4\n1 0 obj garbage")
    run = docvlm("convert", str(inbox), "-o", str(tmp_path / "out"), "--engine", "scripted")
    assert run.returncode == 1, run.stderr
    bar = [ln for ln in run.stderr.splitlines() if ln.lstrip(" ⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏✓").startswith("pages")]
    assert bar and "4/4" in bar[-1], run.stderr
    failed = [ln for ln in run.stderr.splitlines() if ln.startswith("failed")]
    assert len(failed) == 1, run.stderr
    assert failed[0].count("enc.pdf") == 1, failed[0]
    assert "converted" in run.stdout


def test_no_bar_before_a_usage_error(tmp_path: Path) -> None:
    run = docvlm("convert", str(tmp_path / "missing.pdf"), "-o", str(tmp_path / "out"))
    assert run.returncode == 2
    assert "missing.pdf" in run.stderr
    assert "documents" not in run.stderr and "pages" not in run.stderr, run.stderr


def test_help_lists_every_command_in_full() -> None:
    out = CliRunner().invoke(main, ["--help"], terminal_width=80).output
    lines = out.split("Commands:")[1].strip().splitlines()
    assert {ln.split()[0] for ln in lines} >= {"convert", "extract", "ground", "plan", "reparse", "schema",
                                               "show", "summary"}
    for ln in lines:
        assert not ln.rstrip().endswith("..."), ln
        assert ln.count("(") == ln.count(")"), ln
    ground = next(ln for ln in lines if ln.split()[0] == "ground")
    assert "Find QUERY" in ground and ground.rstrip().endswith("boxes."), ground


def test_without_path_strips_only_the_leading_path() -> None:
    from docvlm.cli._common import without_path

    assert without_path("bad/enc.pdf: the PDF is encrypted", "bad/enc.pdf") == "the PDF is encrypted"
    assert without_path("enc.pdf: x", "bad/enc.pdf") == "x"
    assert without_path("page 2: bad/enc.pdf: x", "bad/enc.pdf") == "page 2: bad/enc.pdf: x"


def test_extract_summary_says_extracted(tmp_path: Path) -> None:
    pdf = make_pdf(tmp_path / "r.pdf", pages=1, text="TOTAL 12.50")
    run = docvlm("extract", str(pdf), "-o", str(tmp_path / "out"), "--engine", "scripted")
    assert "1 extracted" in run.stdout and "converted" not in run.stdout, run.stdout + run.stderr


def test_show_of_a_failed_result_says_so_and_exits_1(tmp_path: Path) -> None:
    bad = tmp_path / "in" / "bad.pdf"
    bad.parent.mkdir()
    bad.write_bytes(b"%PDF-1.4\n1 0 obj garbage")
    docvlm("convert", str(bad), "-o", str(tmp_path / "out"), "--engine", "scripted")
    result = tmp_path / "out" / "bad.pdf.json"
    assert json.loads(result.read_text())["status"] == "failure"
    run = CliRunner().invoke(main, ["show", str(result)])
    assert run.exit_code == 1
    assert "failed" in run.output and "nothing to show" in run.output
    assert "bbox_page_px" not in run.output  # no empty table


def test_page_numbers_say_their_base(tmp_path: Path) -> None:
    pdf = make_pdf(tmp_path / "in" / "a.pdf", pages=1)
    docvlm("convert", str(pdf), "-o", str(tmp_path / "out"), "--engine", "scripted")
    run = CliRunner().invoke(main, ["show", str(tmp_path / "out" / "a.pdf.json"), "--out", str(tmp_path / "png")],
                             terminal_width=200)
    assert run.exit_code == 0, run.output
    assert "page (1-based)" in run.output
    schema = json.loads((ROOT / "schemas" / "docvlm-result.schema.json").read_text())
    assert "0-based" in schema["$defs"]["PageResult"]["properties"]["index"]["description"]
    readme = (ROOT / "README.md").read_text()
    assert "1-based" in readme and "0-based" in readme


def test_ray_local_prints_no_authentication_warning(tmp_path: Path) -> None:
    pytest.importorskip("ray", reason="the ray extra is not installed")
    home = tmp_path / "home"
    home.mkdir()  # Ray keeps its token under ~/.ray: not the user's
    env = ENV | {"HOME": str(home), "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0",
                 "RAY_DEFAULT_OBJECT_STORE_MEMORY_PROPORTION": "0.01"}
    pdf = make_pdf(tmp_path / "in" / "a.pdf", pages=1)
    run = docvlm("convert", str(pdf), "-o", str(tmp_path / "out"), "--engine", "scripted", "--ray", "local",
                 "--ray-workers", "1", env=env)
    assert run.returncode == 0, run.stderr
    assert "Token authentication" not in run.stderr and "RAY_AUTH_MODE" not in run.stderr, run.stderr


def test_brackets_in_paths_and_errors_are_printed_as_they_are(tmp_path):
    """rich markup must not eat text from documents: `bad[x].png` and `docvlm[models]` print literally."""
    inbox = tmp_path / "in"
    inbox.mkdir()
    (inbox / "bad[x].png").write_bytes(b"\x89PNG\r\n\x1a\n not a png [red]at all[/]")
    r = docvlm("convert", str(inbox), "-o", str(tmp_path / "out"), env={"COLUMNS": "200"})
    assert r.returncode == 1
    text = r.stdout + r.stderr
    assert "bad[x].png" in text
