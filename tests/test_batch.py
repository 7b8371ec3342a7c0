"""The batch runner (library level) with the scripted engine: resume, bad files, sharding, workers, Ctrl-C."""

from __future__ import annotations

import json
from pathlib import Path

import pymupdf
import pytest
from PIL import Image

from docvlm.batch import (
    BatchCallbacks,
    BatchInterrupted,
    DocRecord,
    Shard,
    merge_summaries,
    parse_shard,
    run_batch,
    summary_filename,
)
from docvlm.datamodel import DocumentResult
from docvlm.errors import UsageError
from docvlm.options import make_options


def make_pdf(path: Path, pages: int = 2, text: str = "hello") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = pymupdf.open()
    for i in range(pages):
        page = doc.new_page(width=300, height=200)
        page.insert_text((20, 50), f"{text} {i}")
    doc.save(path)
    doc.close()
    return path


def make_png(path: Path, size: tuple[int, int] = (120, 80)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, "white").save(path)
    return path


@pytest.fixture
def inbox(tmp_path: Path) -> Path:
    root = tmp_path / "in"
    make_pdf(root / "a.pdf")
    make_png(root / "b.png")
    (root / "c_corrupt.pdf").write_bytes(b"%PDF-1.4\n1 0 obj garbage")  # a bad file in the middle
    make_pdf(root / "sub" / "d.pdf", pages=1)
    make_pdf(root / "sub" / "deep" / "e.pdf", pages=3)
    return root


def opts(**kw: object):
    return make_options(engine="scripted", **kw)


class Recorder(BatchCallbacks):
    def __init__(self) -> None:
        self.records: list[DocRecord] = []
        self.pages: list[tuple[str, int]] = []

    def page(self, key: str, page_index: int, status: str) -> None:
        self.pages.append((key, page_index))

    def document(self, record: DocRecord, result: DocumentResult | None) -> None:
        self.records.append(record)


def by_key(summary) -> dict[str, DocRecord]:
    return {d.key: d for d in summary.documents}


def stable_json(path: Path) -> dict:
    data = json.loads(path.read_text())
    data.pop("seconds")
    for page in data["pages"]:
        page.pop("seconds")
    return data


KEYS = ["a.pdf", "b.png", "c_corrupt.pdf", "sub/d.pdf", "sub/deep/e.pdf"]


def test_batch_converts_mirrors_folders_and_records_bad_file(inbox: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    cb = Recorder()
    summary = run_batch([inbox], out, opts(formats=("json", "md")), callbacks=cb)
    docs = by_key(summary)
    assert sorted(docs) == KEYS
    assert docs["c_corrupt.pdf"].status == "failure"
    assert "c_corrupt.pdf" in docs["c_corrupt.pdf"].errors[0]
    assert all(docs[k].status == "success" for k in KEYS if k != "c_corrupt.pdf")
    for key in KEYS:  # every input has its outputs, even the failed one (its JSON is the failure record)
        assert (out / f"{key}.json").is_file() and (out / f"{key}.md").is_file()
    e = DocumentResult.model_validate_json((out / "sub/deep/e.pdf.json").read_bytes())
    assert [p.index for p in e.pages] == [0, 1, 2] and e.pages[0].lines
    assert summary.totals.failure == 1 and summary.totals.success == 4 and summary.totals.pages == 7
    assert len(cb.pages) == 7 and len(cb.records) == 5
    written = json.loads((out / "_docvlm_summary.json").read_text())
    assert written["all_inputs"] == KEYS and written["totals"]["failure"] == 1
    assert not list(out.rglob("*.tmp"))


def test_resume_skips_then_redoes_on_sha_option_or_force(inbox: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    run_batch([inbox], out, opts())
    second = by_key(run_batch([inbox], out, opts()))
    assert {k for k, d in second.items() if d.resumed} == set(KEYS) - {"c_corrupt.pdf"}
    assert not second["c_corrupt.pdf"].resumed  # failed documents are retried on every rerun

    make_pdf(inbox / "a.pdf", text="changed")  # new bytes -> new sha256 -> redone
    third = by_key(run_batch([inbox], out, opts()))
    assert not third["a.pdf"].resumed and third["b.png"].resumed

    (out / "sub/d.pdf.json").write_text("{truncated")  # an unreadable output is redone
    assert not by_key(run_batch([inbox], out, opts()))["sub/d.pdf"].resumed

    changed = by_key(run_batch([inbox], out, opts(dpi=100)))  # an output-shaping option changed
    assert not any(d.resumed for d in changed.values())
    forced = by_key(run_batch([inbox], out, opts(dpi=100), force=True))
    assert not any(d.resumed for d in forced.values())
    assert all(d.resumed for k, d in by_key(run_batch([inbox], out, opts(dpi=100))).items() if k != "c_corrupt.pdf")


def test_resume_redoes_when_a_requested_format_is_missing(inbox: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    run_batch([inbox], out, opts(formats=("json", "md")))
    (out / "b.png.md").unlink()
    docs = by_key(run_batch([inbox], out, opts(formats=("json", "md"))))
    assert not docs["b.png"].resumed and docs["a.pdf"].resumed
    assert (out / "b.png.md").is_file()


def test_engine_exception_is_a_failure_record_naming_the_file(tmp_path: Path) -> None:
    make_pdf(tmp_path / "in" / "1.pdf")
    make_pdf(tmp_path / "in" / "2_raise.pdf")
    make_pdf(tmp_path / "in" / "3_failpage.pdf")
    make_pdf(tmp_path / "in" / "4.pdf")
    docs = by_key(run_batch([tmp_path / "in"], tmp_path / "out", opts()))
    assert docs["2_raise.pdf"].status == "failure" and "2_raise.pdf" in docs["2_raise.pdf"].errors[0]
    assert docs["3_failpage.pdf"].status == "partial" and "3_failpage.pdf" in docs["3_failpage.pdf"].errors[0]
    assert docs["1.pdf"].status == docs["4.pdf"].status == "success"


def test_shards_cover_all_inputs_without_overlap(inbox: Path, tmp_path: Path) -> None:
    for n in (1, 2, 3, 7):
        owned = [[k for k in KEYS if Shard(i, n).owns(k)] for i in range(1, n + 1)]
        assert sorted(k for share in owned for k in share) == KEYS
    out = tmp_path / "out"
    seen: list[str] = []
    for i in (1, 2):
        s = run_batch([inbox], out, opts(), shard=Shard(i, 3))
        assert (out / summary_filename(Shard(i, 3))).is_file()
        seen += [d.key for d in s.documents]
    merged = merge_summaries(out)
    assert merged.all_inputs == KEYS
    assert sorted(merged.missing) == sorted(k for k in KEYS if Shard(3, 3).owns(k))
    assert len(seen) == len(set(seen))
    run_batch([inbox], out, opts(), shard=Shard(3, 3))
    merged = merge_summaries(out)
    assert merged.missing == []
    assert [d.key for d in merged.failed] == ["c_corrupt.pdf"]
    assert merged.totals.documents == len(KEYS)


def test_shard_hash_is_stable() -> None:
    # sha1 of the relative path: the same share on every machine, Python version and run
    assert [k for k in KEYS if Shard(1, 2).owns(k)] == [k for k in KEYS if Shard(1, 2).owns(k.replace("/", "\\"))]
    assert Shard(1, 1).owns("anything")


@pytest.mark.parametrize("spec", ["0/3", "4/3", "1/0", "a/b", "2", "1/2/3", "-1/2"])
def test_parse_shard_rejects(spec: str) -> None:
    with pytest.raises(UsageError, match="--shard"):
        parse_shard(spec)


def test_parse_shard_is_one_based() -> None:
    assert parse_shard("1/4") == Shard(1, 4) and parse_shard("4/4") == Shard(4, 4)


def test_workers_2_gives_same_outputs_as_workers_1(inbox: Path, tmp_path: Path) -> None:
    one, two = tmp_path / "one", tmp_path / "two"
    cb = Recorder()
    s1 = run_batch([inbox], one, opts(formats=("json", "md")), workers=1)
    s2 = run_batch([inbox], two, opts(formats=("json", "md")), workers=2, callbacks=cb)
    assert {d.key: d.status for d in s1.documents} == {d.key: d.status for d in s2.documents}
    for key in KEYS:
        assert stable_json(one / f"{key}.json") == stable_json(two / f"{key}.json")
        assert (one / f"{key}.md").read_text() == (two / f"{key}.md").read_text()
    assert sorted(cb.pages) == sorted(
        (k, i) for k, n in {"a.pdf": 2, "b.png": 1, "sub/d.pdf": 1, "sub/deep/e.pdf": 3}.items() for i in range(n)
    )


@pytest.mark.slow  # three pools of spawned workers: ~20 s on 2 busy cores
def test_crashed_worker_costs_one_file_not_the_batch(tmp_path: Path) -> None:
    make_pdf(tmp_path / "in" / "ok1.pdf")
    make_pdf(tmp_path / "in" / "worker_crash.pdf")  # the scripted engine kills its worker process
    make_pdf(tmp_path / "in" / "ok2.pdf")
    docs = by_key(run_batch([tmp_path / "in"], tmp_path / "out", opts(), workers=2))
    assert docs["worker_crash.pdf"].status == "failure"
    assert "worker process died" in docs["worker_crash.pdf"].errors[0]
    assert docs["ok1.pdf"].status == docs["ok2.pdf"].status == "success"


def test_a_dead_worker_is_charged_to_the_document_it_was_running() -> None:
    import signal
    from types import SimpleNamespace

    from docvlm.executors.local import _crashed_jobs

    procs = {1: SimpleNamespace(exitcode=70), 2: SimpleNamespace(exitcode=-signal.SIGTERM),
             3: SimpleNamespace(exitcode=-signal.SIGKILL), 4: SimpleNamespace(exitcode=0)}
    running = {1: "crash.pdf", 2: "stopped_by_the_pool.pdf", 3: "oom_killed.pdf", 4: "done.pdf"}
    assert _crashed_jobs(procs, running) == {"crash.pdf", "oom_killed.pdf"}
    assert _crashed_jobs({5: SimpleNamespace(exitcode=-11)}, {}) == set()  # unknown: every broken job is charged


def test_interrupt_writes_summary_and_rerun_resumes(inbox: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"

    class CtrlC(Recorder):
        def document(self, record: DocRecord, result: DocumentResult | None) -> None:
            super().document(record, result)
            if len(self.records) == 2:
                raise KeyboardInterrupt

    with pytest.raises(BatchInterrupted) as info:
        run_batch([inbox], out, opts(), callbacks=CtrlC())
    summary = info.value.summary
    assert summary.interrupted and len(summary.documents) == 2
    assert json.loads((out / "_docvlm_summary.json").read_text())["interrupted"] is True
    assert merge_summaries(out).missing == KEYS[2:]
    again = by_key(run_batch([inbox], out, opts()))
    assert [k for k, d in again.items() if d.resumed] == KEYS[:2]
    assert merge_summaries(out).missing == []
    assert not list(out.rglob("*.tmp"))


def test_no_out_dir_collects_results_only(inbox: Path) -> None:
    got: list[DocumentResult] = []

    class Collect(BatchCallbacks):
        def document(self, record: DocRecord, result: DocumentResult | None) -> None:
            assert result is not None
            got.append(result)

    summary = run_batch([inbox / "a.pdf", inbox / "b.png"], None, opts(), callbacks=Collect(), collect_results=True)
    assert [r.source.path for r in got] == [str(inbox / "a.pdf"), str(inbox / "b.png")]
    assert summary.out_dir is None and all(not d.outputs for d in summary.documents)


def test_colliding_output_names_get_distinct_files(tmp_path: Path) -> None:
    make_pdf(tmp_path / "x" / "same.pdf", text="x")
    make_pdf(tmp_path / "y" / "same.pdf", text="y")
    summary = run_batch([tmp_path / "x", tmp_path / "y"], tmp_path / "out", opts())
    keys = [d.key for d in summary.documents]
    assert len(set(keys)) == 2 and keys[0] == "same.pdf" and keys[1].startswith("same.pdf~")
    assert len(list((tmp_path / "out").glob("same.pdf*.json"))) == 2


def test_overlays_during_batch(inbox: Path, tmp_path: Path) -> None:
    run_batch([inbox / "sub"], tmp_path / "out", opts(), overlay_dir=tmp_path / "ov")
    pngs = sorted(p.relative_to(tmp_path / "ov").as_posix() for p in (tmp_path / "ov").rglob("*.png"))
    assert pngs == ["d.pdf.page-0001.png", "deep/e.pdf.page-0001.png", "deep/e.pdf.page-0002.png",
                    "deep/e.pdf.page-0003.png"]


def test_no_inputs_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(UsageError, match="no input files"):
        run_batch([tmp_path / "empty"], tmp_path / "out", opts())


def test_summary_checkpoints_during_a_long_run(inbox: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import docvlm.batch as batch

    monkeypatch.setattr(batch, "CHECKPOINT_SECONDS", 0.0)
    seen: list[bool] = []

    class Peek(BatchCallbacks):
        def document(self, record: DocRecord, result: DocumentResult | None) -> None:
            path = tmp_path / "out" / "_docvlm_summary.json"
            seen.append(json.loads(path.read_text())["interrupted"] if path.exists() else None)

    run_batch([inbox], tmp_path / "out", opts(), callbacks=Peek())
    assert seen[0] is None and all(s is True for s in seen[1:])  # a killed run leaves an "unfinished" summary
    assert json.loads((tmp_path / "out" / "_docvlm_summary.json").read_text())["interrupted"] is False


# --- document kinds: the same runner for `docvlm extract` -------------------------------------------------


def test_extract_kind_pickles_as_its_spec_and_keeps_the_resume_digest(tmp_path: Path, monkeypatch) -> None:
    import pickle

    import docvlm.extract as extract
    from docvlm.extract import ExtractKind, load_schema, schema_digest

    slip = tmp_path / "slip.json"
    slip.write_text(json.dumps({"title": "Slip", "type": "object", "properties": {
        "merchant": {"type": "string"}, "total": {"type": "number", "x-docvlm-type": "money"}}}))
    options = make_options()
    for spec in ("invoice", str(slip)):
        kind = ExtractKind.of(load_schema(spec))
        # the resume key of an extraction output: the options digest and the schema digest, as before
        assert kind.digest(options) == f"{options.digest()}-{schema_digest(load_schema(spec))}"
        blob = pickle.dumps(kind)
        assert b"pydantic" not in blob  # the spec travels to the spawn workers, not the (unpicklable) model
        monkeypatch.setattr(extract, "_LOADED", {})  # a fresh worker process: nothing loaded yet
        monkeypatch.setattr(extract, "_CHECKED", set())
        clone = pickle.loads(blob)
        assert clone == kind
        clone.prepare()
        assert clone.schema().fields == load_schema(spec).fields
    # a worker that would load another schema than the one the batch started with stops the batch
    slip.write_text(json.dumps({"title": "Slip", "type": "object", "properties": {"merchant": {"type": "string"}}}))
    monkeypatch.setattr(extract, "_LOADED", {})
    with pytest.raises(UsageError, match="changed while the batch ran"):
        pickle.loads(blob).prepare()


def test_run_batch_with_the_extract_kind(tmp_path: Path) -> None:
    from docvlm.extract import ExtractKind
    from docvlm.extract.models import ExtractionResult
    from tests.extract_docs import invoice_rows
    from tests.extract_docs import make_pdf as make_invoice

    (tmp_path / "in" / "sub").mkdir(parents=True)
    make_invoice(tmp_path / "in" / "a.pdf", invoice_rows(total=None))  # text layer: no OCR needed
    make_invoice(tmp_path / "in" / "sub" / "b.pdf", invoice_rows())
    (tmp_path / "in" / "c_corrupt.pdf").write_bytes(b"%PDF-1.4\n1 0 obj garbage")
    out, kind = tmp_path / "out", ExtractKind.of("invoice")
    options = make_options(formats=("json", "md"))  # the extract kind writes its JSON only
    summary = run_batch([tmp_path / "in"], out, options, kind=kind, overlay_dir=tmp_path / "ov")
    assert summary.kind == "extract" and summary.options_digest == kind.digest(options)
    docs = by_key(summary)
    assert {k: d.status for k, d in docs.items()} == {"a.pdf": "success", "c_corrupt.pdf": "failure",
                                                      "sub/b.pdf": "success"}
    assert docs["sub/b.pdf"].outputs == ["sub/b.pdf.json"] and not list(out.rglob("*.md"))
    assert any("total" in w for w in docs["a.pdf"].warnings)  # the cross-checks' warnings reach the summary
    failed = ExtractionResult.model_validate_json((out / "c_corrupt.pdf.json").read_bytes())
    assert failed.status == "failure" and "c_corrupt.pdf" in failed.errors[0].message
    assert sorted(p.name for p in (tmp_path / "ov").rglob("*.png")) == [
        "a.pdf.fields.page-0001.png", "b.pdf.fields.page-0001.png"]
    again = by_key(run_batch([tmp_path / "in"], out, options, kind=kind))
    assert {k for k, d in again.items() if d.resumed} == {"a.pdf", "sub/b.pdf"}
    assert again["a.pdf"].warnings == docs["a.pdf"].warnings
    # a convert run over the same outputs does not take the extraction results for its own
    assert not any(d.resumed for d in run_batch([tmp_path / "in"], out, make_options()).documents)
