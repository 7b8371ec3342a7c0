"""`docvlm extract` and `docvlm schema`: outputs, resume, --json, exit codes, the overlay of a result."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner
from PIL import Image

from docvlm.cli import main
from docvlm.extract.models import ExtractionResult
from docvlm.extract.overlay import render_extraction_overlays
from tests.extract_docs import invoice_rows, make_pdf


def _run(*args):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_schema_command_prints_the_json_schema():
    r = _run("schema", "invoice")
    assert r.exit_code == 0
    schema = json.loads(r.output)
    assert "total" in schema["properties"] and "MoneyField" in schema["$defs"]
    assert _run("schema", "no-such-schema").exit_code == 2


def test_extract_batch_resume_and_failures(tmp_path):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    make_pdf(inbox / "a.pdf", invoice_rows())
    (inbox / "broken.pdf").write_bytes(b"%PDF-1.4 this is not a pdf")
    out = tmp_path / "out"
    r = _run("extract", str(inbox), "--schema", "invoice", "-o", str(out))
    assert r.exit_code == 1, r.output  # one input failed
    result = ExtractionResult.model_validate_json((out / "a.pdf.json").read_text())
    assert result.kind == "extraction" and str(result.fields["total"].value) == "1103.13"
    broken = ExtractionResult.model_validate_json((out / "broken.pdf.json").read_text())
    assert broken.status == "failure" and broken.errors
    summary = json.loads(next(out.glob("_docvlm_summary*.json")).read_text())
    assert {d["key"]: d["status"] for d in summary["documents"]} == {"a.pdf": "success", "broken.pdf": "failure"}
    # rerun: the good one is resumed, the failed one retried
    r = _run("extract", str(inbox), "--schema", "invoice", "-o", str(out))
    summary = json.loads(next(out.glob("_docvlm_summary*.json")).read_text())
    assert {d["key"]: d["resumed"] for d in summary["documents"]} == {"a.pdf": True, "broken.pdf": False}
    # another schema is another output digest: recomputed, not resumed
    _run("extract", str(inbox / "a.pdf"), "--schema", "receipt", "-o", str(out))
    again = ExtractionResult.model_validate_json((out / "a.pdf.json").read_text())
    assert again.schema_name == "receipt"


def test_extract_json_to_stdout_for_one_file(tmp_path):
    make_pdf(tmp_path / "a.pdf", invoice_rows())
    r = CliRunner().invoke(main, ["extract", str(tmp_path / "a.pdf"), "--json"])
    assert r.exit_code == 0
    start = r.stdout.index("{")
    data = json.loads(r.stdout[start: r.stdout.rindex("}") + 1])
    assert data["kind"] == "extraction" and data["fields"]["invoice_number"]["value"] == "INV-2024-0173"


def test_usage_errors_exit_2(tmp_path):
    make_pdf(tmp_path / "a.pdf", invoice_rows())
    assert _run("extract", str(tmp_path / "a.pdf")).exit_code == 2  # neither -o nor --json
    assert _run("extract", str(tmp_path / "a.pdf"), "--json", "--schema", "x.py:Nope").exit_code == 2


def test_overlay_draws_each_field_box(tmp_path):
    from docvlm.extract import extract_document
    from docvlm.options import ConvertOptions

    pdf = tmp_path / "a.pdf"
    make_pdf(pdf, invoice_rows())
    result = extract_document(pdf, ConvertOptions(), schema="invoice")
    pages = render_extraction_overlays(result, pdf, tmp_path / "ov")
    assert len(pages) == 1 and not pages[0].blank
    image = Image.open(pages[0].png_path).convert("RGB")
    x0, y0, x1, y1 = (round(v) for v in result.fields["total"].bbox_page_px)
    # the box outline is drawn in the "verified" green over white paper
    edge = [image.getpixel((x, y1)) for x in range(x0 + 2, x1 - 2)]
    assert any(g > 150 and r < 120 for r, g, b in edge)


def test_show_extraction_table_and_png(tmp_path):
    from docvlm.cli.extract_cmds import show_extraction

    make_pdf(tmp_path / "a.pdf", invoice_rows())
    out = tmp_path / "out"
    assert _run("extract", str(tmp_path / "a.pdf"), "-o", str(out)).exit_code == 0

    @__import__("click").command()
    def cmd():
        show_extraction(str(out / "a.pdf.json"), str(tmp_path / "png"), None, None)

    r = CliRunner().invoke(cmd, [], catch_exceptions=False, env={"COLUMNS": "300"})
    assert r.exit_code == 0
    assert "invoice_number" in r.output and "INV-2024-0173" in r.output and "verified" in r.output
    pngs = list((tmp_path / "png").glob("*.png"))
    assert len(pngs) == 1


def _inbox(tmp_path):
    """Four invoices (two in a subfolder, one with another total) and a broken PDF."""
    inbox = tmp_path / "inbox"
    (inbox / "sub").mkdir(parents=True)
    make_pdf(inbox / "a.pdf", invoice_rows())
    make_pdf(inbox / "b.pdf", invoice_rows(total="Total: 99.50 EUR"))
    make_pdf(inbox / "sub" / "c.pdf", invoice_rows(date="01.02.2024", due="03.03.2024"))
    make_pdf(inbox / "sub" / "d.pdf", invoice_rows())
    (inbox / "broken.pdf").write_bytes(b"%PDF-1.4 this is not a pdf")
    return inbox


KEYS = ["a.pdf", "b.pdf", "broken.pdf", "sub/c.pdf", "sub/d.pdf"]


def _stable(path):
    data = json.loads(path.read_text())
    data.pop("seconds")
    return data


def test_extract_workers_2_gives_the_same_outputs_as_workers_1(tmp_path):
    inbox = _inbox(tmp_path)
    one, two = tmp_path / "one", tmp_path / "two"
    assert _run("extract", str(inbox), "-o", str(one), "--workers", "1").exit_code == 1  # broken.pdf failed
    r = CliRunner().invoke(main, ["extract", str(inbox), "-o", str(two), "--workers", "2", "--json"])
    assert r.exit_code == 1, r.output
    # --json: every result, collected from the worker processes, as one JSON line on stdout
    printed = [ExtractionResult.model_validate_json(line) for line in r.stdout.splitlines() if line.startswith("{")]
    assert sorted(Path(x.source.path).name for x in printed) == sorted(Path(k).name for k in KEYS)
    for key in KEYS:
        assert _stable(one / f"{key}.json") == _stable(two / f"{key}.json"), key
    assert str(ExtractionResult.model_validate_json((two / "b.pdf.json").read_text()).fields["total"].value) == "99.50"
    s1, s2 = (json.loads((d / "_docvlm_summary.json").read_text()) for d in (one, two))
    assert s1["kind"] == s2["kind"] == "extract" and s1["options_digest"] == s2["options_digest"]
    assert {d["key"]: d["status"] for d in s1["documents"]} == {d["key"]: d["status"] for d in s2["documents"]}
    assert {d["key"]: d["outputs"] for d in s2["documents"]} == {k: [f"{k}.json"] for k in KEYS}
    # outputs written by worker processes resume like in-process ones
    r = _run("extract", str(inbox), "-o", str(two), "--workers", "2")
    again = json.loads((two / "_docvlm_summary.json").read_text())
    assert {d["key"] for d in again["documents"] if d["resumed"]} == set(KEYS) - {"broken.pdf"}


def test_extract_shards_cover_all_inputs_without_overlap(tmp_path):
    from docvlm.batch import Shard, merge_summaries, summary_filename

    inbox = _inbox(tmp_path)
    out = tmp_path / "out"
    done: list[str] = []
    for i in (1, 2, 3):
        r = _run("extract", str(inbox), "-o", str(out), "--shard", f"{i}/3")
        assert r.exit_code in (0, 1), r.output
        shard = json.loads((out / summary_filename(Shard(i, 3))).read_text())
        assert shard["shard"] == f"{i}/3" and shard["all_inputs"] == KEYS
        keys = [d["key"] for d in shard["documents"]]
        assert keys == [k for k in KEYS if Shard(i, 3).owns(k)]
        done += keys
    assert sorted(done) == KEYS and len(done) == len(set(done))  # every input once, by exactly one shard
    merged = merge_summaries(out)
    assert merged.missing == [] and [d.key for d in merged.failed] == ["broken.pdf"]
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*.pdf.json")) == [f"{k}.json" for k in KEYS]
    assert _run("extract", str(inbox), "-o", str(out), "--shard", "4/3").exit_code == 2

