"""The executor seam without Ray: a third executor is one small class; the worker callable runs shipped bytes
like a path; the overlay module no longer imports the batch runner."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from docvlm.batch import run_batch
from docvlm.datamodel import DocumentResult
from docvlm.executors import PageEvent, WorkDone, WorkerSpec, WorkItem
from docvlm.executors.worker import DocumentWorker
from docvlm.options import make_options
from tests.test_batch import make_pdf, make_png, stable_json

ROOT = Path(__file__).resolve().parent.parent


class ThreadsExecutor:
    """A third executor, written as a user would: the shared worker callable on two threads."""

    def __init__(self) -> None:
        self.ran: list[str] = []

    def run(self, items: Sequence[WorkItem], spec: WorkerSpec, on_page: PageEvent) -> Iterator[WorkDone]:
        worker = DocumentWorker(spec)
        with ThreadPoolExecutor(2) as pool:
            for done in pool.map(worker.run_one, items):
                self.ran.append(done.key)
                yield done


def test_a_third_executor_gives_the_same_outputs(tmp_path: Path) -> None:
    inp = tmp_path / "in"
    make_pdf(inp / "a.pdf")
    make_png(inp / "b.png")
    (inp / "c_corrupt.pdf").write_bytes(b"%PDF-1.4\n1 0 obj garbage")
    options = make_options(engine="scripted", formats=("json", "md"))
    ref = run_batch([inp], tmp_path / "ref", options)
    threads = ThreadsExecutor()
    got = run_batch([inp], tmp_path / "got", options, executor=threads)
    assert sorted(threads.ran) == ["a.pdf", "b.png", "c_corrupt.pdf"]
    assert [(d.key, d.status, d.pages, d.outputs) for d in got.documents] == \
           [(d.key, d.status, d.pages, d.outputs) for d in ref.documents]
    for name in ("a.pdf.json", "b.png.json", "c_corrupt.pdf.json"):
        assert stable_json(tmp_path / "got" / name) == stable_json(tmp_path / "ref" / name)
    assert (tmp_path / "got" / "a.pdf.md").read_text() == (tmp_path / "ref" / "a.pdf.md").read_text()


def test_shipped_bytes_give_the_result_of_the_path(tmp_path: Path) -> None:
    """Inputs travel as bytes to workers that cannot see the driver's files: same result, same source path."""
    from docvlm.batch import CONVERT

    pdf = make_pdf(tmp_path / "deep" / "doc.pdf", pages=2)
    worker = DocumentWorker(WorkerSpec(make_options(engine="ocr"), CONVERT))
    by_path = worker.run_one(WorkItem("doc.pdf", str(pdf), str(pdf)))
    shipped = worker.run_one(WorkItem("doc.pdf", str(pdf), "/nonexistent/elsewhere.pdf", pdf.read_bytes()))
    assert isinstance(shipped.result, DocumentResult) and shipped.result.status == "success"
    assert shipped.result.source.path == str(pdf) and shipped.result.source.sha256 == by_path.result.source.sha256
    assert _timeless(shipped.result.model_dump()) == _timeless(by_path.result.model_dump())


def _timeless(value: object) -> object:
    if isinstance(value, dict):
        return {k: _timeless(v) for k, v in value.items() if k != "seconds"}
    if isinstance(value, list):
        return [_timeless(v) for v in value]
    return value


def test_an_engine_that_cannot_start_is_fatal_not_a_crash() -> None:
    from docvlm.batch import CONVERT

    worker = DocumentWorker(WorkerSpec(make_options(engine="openai"), CONVERT))  # no --base-url
    done = worker.run_one(WorkItem("a.pdf", "a.pdf", "/a.pdf"))
    assert done.result is None and done.fatal and done.fatal_usage


def test_overlay_does_not_import_the_batch_runner() -> None:
    code = "import sys, docvlm.overlay; print('docvlm.batch' in sys.modules)"
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert res.stdout.strip() == "False", res.stderr
