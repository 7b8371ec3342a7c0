"""`docvlm convert`, `show`, `summary`: exit codes, --json, overlays, Ctrl-C and resume, light imports."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image

from docvlm.cli import main
from docvlm.datamodel import DocumentResult
from tests.test_batch import make_pdf, make_png

ROOT = Path(__file__).resolve().parent.parent
ENV = {k: v for k, v in os.environ.items() if not k.startswith("DOCVLM_")} | {"PYTHONWARNINGS": "ignore"}


def run(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


@pytest.fixture
def inbox(tmp_path: Path) -> Path:
    make_pdf(tmp_path / "in" / "a.pdf")
    make_png(tmp_path / "in" / "sub" / "b.png")
    return tmp_path / "in"


def test_convert_ok_exit_0_and_summary_table(inbox: Path, tmp_path: Path) -> None:
    res = run("convert", str(inbox), "-o", str(tmp_path / "out"), "--engine", "scripted", "--format", "json,md")
    assert res.exit_code == 0, res.output
    assert "2 document(s): 2 success" in res.stdout
    assert (tmp_path / "out/a.pdf.json").is_file() and (tmp_path / "out/sub/b.png.md").is_file()
    again = run("convert", str(inbox), "-o", str(tmp_path / "out"), "--engine", "scripted", "--format", "json,md")
    assert again.exit_code == 0 and "(0 converted, 2 resumed)" in again.stdout


def test_convert_bad_file_exit_1_names_the_file(inbox: Path, tmp_path: Path) -> None:
    (inbox / "zero.pdf").write_bytes(b"")
    res = run("convert", str(inbox), "-o", str(tmp_path / "out"), "--engine", "scripted")
    assert res.exit_code == 1
    assert "zero.pdf" in res.stdout and "failure" in res.stdout
    assert (tmp_path / "out/a.pdf.json").is_file()
    failed = DocumentResult.model_validate_json((tmp_path / "out/zero.pdf.json").read_bytes())
    assert failed.status == "failure" and "zero.pdf" in failed.errors[0].message


def test_partial_is_ok_unless_strict(tmp_path: Path) -> None:
    make_pdf(tmp_path / "in" / "x_failpage.pdf")
    args = ["convert", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--engine", "scripted"]
    assert run(*args).exit_code == 0
    assert run(*args, "--strict", "--force").exit_code == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--format", "json,docx"], "unknown format 'docx'"),
        (["--shard", "0/2"], "1-based"),
        (["--dpi", "5"], "dpi"),
        (["--workers", "0"], "workers"),
        (["--engine", "nope"], "engine"),
    ],
)
def test_usage_errors_exit_2(inbox: Path, tmp_path: Path, args: list[str], message: str) -> None:
    res = CliRunner().invoke(main, ["convert", str(inbox), "-o", str(tmp_path / "out"), *args])
    assert res.exit_code == 2
    assert message in res.output
    assert not (tmp_path / "out").exists()


def test_usage_errors_missing_out_and_missing_input(tmp_path: Path) -> None:
    res = CliRunner().invoke(main, ["convert", str(tmp_path)])
    assert res.exit_code == 2 and "-o OUT" in res.output
    res = CliRunner().invoke(main, ["convert", str(tmp_path / "nope.pdf"), "-o", str(tmp_path / "out")])
    assert res.exit_code == 2 and "nope.pdf" in res.output


def test_json_to_stdout_is_clean_json_lines(inbox: Path) -> None:
    res = run("convert", str(inbox), "--json", "--engine", "scripted")
    assert res.exit_code == 0
    lines = res.stdout.strip().splitlines()
    results = [DocumentResult.model_validate_json(line) for line in lines]
    assert sorted(Path(r.source.path).name for r in results) == ["a.pdf", "b.png"]
    assert "document(s)" in res.stderr  # the human summary goes to stderr


def test_show_writes_pngs_colored_by_confidence(inbox: Path, tmp_path: Path) -> None:
    assert run("convert", str(inbox), "-o", str(tmp_path / "out"), "--engine", "scripted").exit_code == 0
    res = run("show", str(tmp_path / "out/a.pdf.json"), "--out", str(tmp_path / "png"), "--words")
    assert res.exit_code == 0, res.output
    pngs = sorted((tmp_path / "png").glob("*.png"))
    assert [p.name for p in pngs] == ["a.pdf.page-0001.png", "a.pdf.page-0002.png"]
    result = DocumentResult.model_validate_json((tmp_path / "out/a.pdf.json").read_bytes())
    page = result.pages[0]
    img = Image.open(pngs[0]).convert("RGB")
    assert img.size == (page.width_px, page.height_px)
    red_line, green_line = page.lines[0], page.lines[2]  # scripted confidences 0.3 and 0.9
    x = int((red_line.bbox_page_px[0] + red_line.bbox_page_px[2]) / 2)
    r, g, b = img.getpixel((x, int(red_line.bbox_page_px[3])))
    assert r > 150 and g < 160 and b < 100, (r, g, b)
    r, g, b = img.getpixel((x, int(green_line.bbox_page_px[3])))
    assert g > 150 and r < 150, (r, g, b)
    # the page behind the boxes is the re-rendered source: the PDF's "hello 0" text is there (dark pixels)
    assert img.convert("L").getextrema()[0] < 80
    assert "page 1 line 1" in res.stdout and "bbox_page_px" in res.stdout and "0.30" in res.stdout


def test_show_without_source_draws_on_blank_page(inbox: Path, tmp_path: Path) -> None:
    assert run("convert", str(inbox / "sub"), "-o", str(tmp_path / "out"), "--engine", "scripted").exit_code == 0
    (inbox / "sub" / "b.png").unlink()
    res = run("show", str(tmp_path / "out/b.png.json"))
    assert res.exit_code == 0
    assert "not found" in res.stderr and "blank" in res.stderr
    assert Image.open(tmp_path / "out/b.png.page-0001.png").size == (120, 80)


def test_show_finds_source_through_run_summary(inbox: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert run("convert", "in", "-o", "out", "--engine", "scripted").exit_code == 0
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # 'in/a.pdf' as recorded no longer resolves from here
    res = run("show", str(tmp_path / "out/a.pdf.json"))
    assert res.exit_code == 0 and "not found" not in res.stderr


def test_convert_overlay_dir(inbox: Path, tmp_path: Path) -> None:
    res = run("convert", str(inbox), "-o", str(tmp_path / "out"), "--engine", "scripted",
              "--overlay", str(tmp_path / "ov"))
    assert res.exit_code == 0
    assert (tmp_path / "ov/a.pdf.page-0002.png").is_file() and (tmp_path / "ov/sub/b.png.page-0001.png").is_file()


def test_summary_command_merges_shards(inbox: Path, tmp_path: Path) -> None:
    (inbox / "c_bad.pdf").write_bytes(b"not a pdf at all")
    out = str(tmp_path / "out")
    base = ["convert", str(inbox), "-o", out, "--engine", "scripted"]
    run(*base, "--shard", "1/2")
    res = run("summary", out)
    merged = json.loads(run("summary", out, "--json").stdout)
    assert res.exit_code == 1
    assert merged["missing"] and "missing" in res.stdout
    run(*base, "--shard", "2/2")
    res = run("summary", out, "--json")
    merged = json.loads(res.stdout)
    assert res.exit_code == 1 and merged["missing"] == []
    assert [d["key"] for d in merged["documents"] if d["status"] == "failure"] == ["c_bad.pdf"]
    (inbox / "c_bad.pdf").unlink()
    run(*base, "--shard", "1/2")
    run(*base, "--shard", "2/2")
    # each shard's summary file is replaced by its latest run: the removed input is gone from the merge
    assert run("summary", out).exit_code == 0
    res = CliRunner().invoke(main, ["summary", str(tmp_path)])
    assert res.exit_code == 2 and "no _docvlm_summary" in res.output


def _no_heavy_imports(args: list[str]) -> dict:
    code = (
        "import sys, json\nfrom docvlm.cli import main\n"
        f"try:\n    main({args!r})\nexcept SystemExit:\n    pass\n"
        "print(json.dumps({m: m in sys.modules for m in ('torch', 'transformers', 'rapidocr', 'onnxruntime')}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env=ENV,
                         timeout=120, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("args", [["--help"], ["convert", "--help"], ["show", "--help"], ["summary", "--help"]])
def test_help_does_not_import_torch(args: list[str]) -> None:
    loaded = _no_heavy_imports(args)
    assert not loaded["torch"] and not loaded["transformers"]


def test_ctrl_c_stops_cleanly_and_rerun_resumes(tmp_path: Path) -> None:
    """A real process on a slow engine gets SIGINT mid-batch: exit 130, nothing half-written, rerun resumes."""
    for i in range(5):
        make_pdf(tmp_path / "in" / f"doc{i}.pdf", pages=2)
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "docvlm", "convert", str(tmp_path / "in"), "-o", str(out),
           "--engine", "scripted", "--model", "delay=0.25"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT, env=ENV)
    deadline = time.monotonic() + 90
    while not list(out.glob("doc*.pdf.json")) and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert proc.poll() is None, "the batch finished before it could be interrupted"
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert "Rerun the same command to resume" in stderr and "Traceback" not in stderr
    assert not list(out.rglob("*.tmp"))
    done_before = sorted(p.name for p in out.glob("doc*.pdf.json"))
    assert 1 <= len(done_before) < 5
    for p in out.glob("doc*.pdf.json"):
        DocumentResult.model_validate_json(p.read_bytes())  # complete, valid JSON
    assert json.loads((out / "_docvlm_summary.json").read_text())["interrupted"] is True

    rerun = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=ENV, timeout=120)
    assert rerun.returncode == 0, rerun.stderr
    summary = json.loads((out / "_docvlm_summary.json").read_text())
    assert summary["interrupted"] is False and summary["totals"]["success"] == 5
    assert sorted(d["key"] + ".json" for d in summary["documents"] if d["resumed"]) == done_before


def test_real_invoice_sample_with_default_engine(samples_dir: Path, tmp_path: Path) -> None:
    """The default (ocr) engine on the born-digital sample invoice: text layer, boxes inside the page."""
    pdf = samples_dir / "invoice.pdf"
    if not pdf.is_file():
        pytest.skip("samples/invoice.pdf not generated")
    res = run("convert", str(pdf), "-o", str(tmp_path / "out"), "--format", "json,md")
    assert res.exit_code == 0, res.output
    result = DocumentResult.model_validate_json((tmp_path / "out/invoice.pdf.json").read_bytes())
    assert result.status == "success" and result.pages[0].lines
    page = result.pages[0]
    for line in page.lines:
        x0, y0, x1, y1 = line.bbox_page_px
        assert 0 <= x0 < x1 <= page.width_px and 0 <= y0 < y1 <= page.height_px
    md = (tmp_path / "out/invoice.pdf.md").read_text()
    assert "<!-- page 1 -->" in md and page.lines[0].text.split()[0] in md


@pytest.mark.slow  # spawns worker processes twice: ~40 s on 2 busy cores
def test_ctrl_c_with_workers_in_process_group(tmp_path: Path) -> None:
    """Ctrl-C in a terminal hits the whole process group, workers included: still exit 130, no traceback."""
    for i in range(8):
        make_pdf(tmp_path / "in" / f"doc{i}.pdf", pages=2)
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "docvlm", "convert", str(tmp_path / "in"), "-o", str(out),
           "--engine", "scripted", "--model", "delay=0.5", "--workers", "2"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT, env=ENV,
                            start_new_session=True)
    deadline = time.monotonic() + 120
    while not list(out.glob("doc*.pdf.json")) and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "Traceback" not in stderr, stderr
    done_before = sorted(p.name for p in out.glob("doc*.pdf.json"))
    rerun = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=ENV, timeout=180)
    assert rerun.returncode == 0, rerun.stderr
    summary = json.loads((out / "_docvlm_summary.json").read_text())
    assert sorted(d["key"] + ".json" for d in summary["documents"] if d["resumed"]) == done_before
    assert summary["totals"]["success"] == 8


def test_show_of_an_extraction_result(samples_dir: Path, tmp_path: Path) -> None:
    """`docvlm show` on a `docvlm extract` output (kind "extraction"): field boxes drawn, field table printed."""
    from docvlm.extract.models import ExtractionResult

    pdf = samples_dir / "invoice.pdf"
    if not pdf.is_file():
        pytest.skip("samples/invoice.pdf not generated")
    assert run("extract", str(pdf), "-o", str(tmp_path / "out")).exit_code == 0  # default engine: ocr
    result_json = tmp_path / "out/invoice.pdf.json"
    result = ExtractionResult.model_validate_json(result_json.read_bytes())
    res = CliRunner().invoke(main, ["show", str(result_json), "--out", str(tmp_path / "png")],
                             catch_exceptions=False, env={"COLUMNS": "300"})
    assert res.exit_code == 0, res.output
    for name in ("invoice_number", "invoice_date", "total", "line_items[0].amount"):
        assert name in res.stdout
    assert "INV-2024-0173" in res.stdout and "verified" in res.stdout and "page 1 line" not in res.stdout
    pngs = sorted((tmp_path / "png").glob("*.png"))
    assert [p.name for p in pngs] == ["invoice.pdf.fields.page-0001.png"]
    page = result.pages[0]
    img = Image.open(pngs[0]).convert("RGB")
    assert img.size == (page.width_px, page.height_px)
    x0, y0, x1, y1 = (int(v) for v in result.fields["total"].bbox_page_px)
    edge = [img.getpixel((x, y1)) for x in range(x0 + 2, x1 - 2)]  # the bottom edge (drawn inside the box)
    assert any(g > 150 and r < 120 for r, g, b in edge)  # the verified total is outlined in green
    assert img.convert("L").getextrema()[0] < 80  # drawn over the re-rendered source page
    bad = tmp_path / "list.json"
    bad.write_text("[]")
    assert CliRunner().invoke(main, ["show", str(bad)]).exit_code == 2
