"""A batch killed with SIGKILL midway, then rerun: every output is complete valid JSON, nothing is converted
twice, nothing is missing. Also the resource bounds that keep a batch going: --max-pages and --doc-timeout.

Real processes (`docvlm convert` as a subprocess in its own process group), real files, a slow scripted engine.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pymupdf as fitz
import pytest

from docvlm.datamodel import DocumentResult

ROOT = Path(__file__).resolve().parent.parent
N_DOCS = 20
PAGES_PER_DOC = 3
DELAY_S = 0.1  # per page: 20 docs x 3 pages x 0.1 s = 6 s of work for one worker


def make_pdf(path: Path, pages: int, tag: str) -> None:
    doc = fitz.open()
    for i in range(pages):
        page = doc.new_page(width=300, height=400)
        page.insert_text((30, 60), f"{tag} page {i + 1}", fontsize=14)
    doc.save(path)
    doc.close()


def cli_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCVLM_")}
    env["PYTHONWARNINGS"] = "ignore"
    return env


def run_cli(*args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "docvlm", *args], capture_output=True, text=True,
                          timeout=timeout, env=cli_env(), cwd=ROOT)


def done_outputs(out: Path) -> dict[str, Path]:
    return {p.name: p for p in out.rglob("*.json") if not p.name.startswith("_docvlm_summary")}


@pytest.mark.parametrize("workers", [1, pytest.param(2, marks=pytest.mark.slow)])
def test_sigkill_midway_then_resume(tmp_path: Path, workers: int) -> None:
    inp, out = tmp_path / "in", tmp_path / "out"
    inp.mkdir()
    for i in range(N_DOCS):
        make_pdf(inp / f"doc_{i:02d}.pdf", PAGES_PER_DOC, f"doc {i}")
    args = ["convert", str(inp), "-o", str(out), "--engine", "scripted", "--model", f"delay={DELAY_S}",
            "--workers", str(workers)]

    # first run: SIGKILL the whole process tree once a few documents are done
    proc = subprocess.Popen([sys.executable, "-m", "docvlm", *args], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env=cli_env(), cwd=ROOT, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while len(done_outputs(out)) < 5 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert proc.poll() is None, "the batch finished before it could be killed: make the engine slower"
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        proc.wait(timeout=30)
    time.sleep(0.3)  # let killed workers of the group vanish

    before = done_outputs(out)
    assert 5 <= len(before) < N_DOCS, len(before)
    stamps = {}
    for name, path in before.items():
        DocumentResult.model_validate_json(path.read_bytes())  # complete valid JSON, never half of one
        st = path.stat()
        stamps[name] = (st.st_ino, st.st_mtime_ns)

    # second run: resumes
    rerun = run_cli(*args)
    assert "Traceback" not in rerun.stdout + rerun.stderr, rerun.stderr[-3000:]
    assert rerun.returncode == 0, (rerun.returncode, rerun.stderr[-2000:])
    after = done_outputs(out)
    assert len(after) == N_DOCS  # nothing missing
    for path in after.values():
        result = DocumentResult.model_validate_json(path.read_bytes())
        assert result.status == "success"
        assert len(result.pages) == PAGES_PER_DOC
    for name, stamp in stamps.items():  # nothing converted twice: files done before the kill are untouched
        st = after[name].stat()
        assert (st.st_ino, st.st_mtime_ns) == stamp, f"{name} was rewritten on resume"
    summary = json.loads((out / "_docvlm_summary.json").read_text())
    assert summary["totals"]["resumed"] == len(before)
    assert summary["totals"]["converted"] == N_DOCS - len(before)
    assert summary["interrupted"] is False


def test_max_pages_and_doc_timeout(tmp_path: Path) -> None:
    inp, out = tmp_path / "in", tmp_path / "out"
    inp.mkdir()
    make_pdf(inp / "long.pdf", 40, "long")
    proc = run_cli("convert", str(inp / "long.pdf"), "-o", str(out), "--engine", "scripted", "--max-pages", "5")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert len(done_outputs(out)) == 1, (proc.returncode, proc.stdout[-2000:], proc.stderr[-2000:])
    result = DocumentResult.model_validate_json(next(iter(done_outputs(out).values())).read_bytes())
    assert [p.index for p in result.pages] == [0, 1, 2, 3, 4]
    assert result.source.page_count == 40

    out2 = tmp_path / "out2"
    proc = run_cli("convert", str(inp / "long.pdf"), "-o", str(out2), "--engine", "scripted", "--model",
                   "delay=0.1", "--doc-timeout", "0.5")
    assert "Traceback" not in proc.stdout + proc.stderr
    assert len(done_outputs(out2)) == 1, (proc.returncode, proc.stdout[-2000:], proc.stderr[-2000:])
    result = DocumentResult.model_validate_json(next(iter(done_outputs(out2).values())).read_bytes())
    assert 1 <= len(result.pages) < 40  # stopped early, the pages done are kept
    assert any(e.code == "timeout" and "--doc-timeout" in e.message for e in result.errors)
