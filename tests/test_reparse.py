"""`docvlm reparse`: every box recomputed from the stored plan + raw outputs, without a model; and `docvlm ground`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from docvlm import __version__
from docvlm.cli import main
from docvlm.datamodel import DocumentResult, EngineInfo, ErrorItem, Line, PageResult, SourceInfo, TileOutput
from docvlm.geometry import page_to_model
from docvlm.plan import plan_page
from docvlm.reparse import reparse_result

ROOT = Path(__file__).resolve().parent.parent
TRUTH = [("Invoice INV-7", (100.0, 80.0, 700.0, 130.0)), ("Total 1,642.56 EUR", (900.0, 2000.0, 1500.0, 2040.0))]


def qwen25_output(tile, truth) -> str:
    items = []
    for text, box in truth:
        x0, y0, x1, y1 = tile.crop_page_px
        if x0 <= box[0] and y0 <= box[1] and box[2] <= x1 and box[3] <= y1:
            items.append({"bbox_2d": [int(v) for v in page_to_model(box, tile, "qwen2.5")], "text_content": text})
    return json.dumps(items)


def vlm_result() -> DocumentResult:
    """A stored hf result whose lines are stale (e.g. written by an older, buggy parser)."""
    plan = plan_page((1654, 2339), "qwen2.5", x_height_px=9.0, line_height_px=40.0, max_visual_tokens=1280)
    assert plan.mode == "tiled"
    outputs = [TileOutput(tile=t.index, raw_text=qwen25_output(t, TRUTH)) for t in plan.tiles]
    outputs.append(TileOutput(tile=0, raw_text='[{"bbox_2d": [50, 50, 10, 10], "text_content": "inverted"}, {"bbox_2d'))
    stale = [Line(text="Invoice INV-7", bbox_page_px=(0.0, 0.0, 10.0, 10.0), tile=0)]  # a drifted box
    page = PageResult(
        index=0, width_px=1654, height_px=2339, dpi=200.0, width_pt=595.44, height_pt=842.04, status="partial",
        text_source="model", lines=stale, plan=plan, outputs=outputs, prompt_id="read-qwen2.5@1",
        errors=[
            ErrorItem(code="parse", message="stale parse error from the old parser", page=0, tile=1),
            ErrorItem(code="repetition", message="tile 2 repeated itself; retried", page=0, tile=2),
        ],
    )
    ocr_page = PageResult(index=1, width_px=100, height_px=100, dpi=200.0, status="success", text_source="ocr",
                          lines=[Line(text="kept", bbox_page_px=(1.0, 2.0, 3.0, 4.0))])
    return DocumentResult(
        docvlm_version=__version__, status="partial",
        source=SourceInfo(path="inbox/invoice.pdf", sha256="0" * 64, kind="pdf", page_count=2),
        engine=EngineInfo(name="hf", model="tiny", family="qwen2.5"), options_digest="x",
        pages=[page, ocr_page],
    )


def check_reparsed(result: DocumentResult) -> None:
    page, ocr_page = result.pages
    texts = {ln.text: ln for ln in page.lines}
    assert set(texts) == {t for t, _ in TRUTH}  # duplicates from overlapping tiles merged, stale line replaced
    for text, box in TRUTH:
        got = texts[text].bbox_page_px
        assert all(abs(a - b) <= 1.5 for a, b in zip(got, box, strict=True)), (text, got, box)
        pdf = texts[text].bbox_pdf_pt
        assert pdf is not None and abs(pdf[0] - got[0] * 72 / 200) < 1e-6
    codes = sorted(e.code for e in page.errors)
    assert codes == ["invalid_box", "parse", "repetition"]  # recomputed + the engine's own error kept
    assert any("truncated" in e.message and "inbox/invoice.pdf (page 1)" in e.message for e in page.errors)
    assert page.status == "partial" and result.status == "partial"
    assert ocr_page.lines[0].text == "kept"  # no plan: untouched


def test_reparse_result_recomputes_lines_and_grounding_errors():
    check_reparsed(reparse_result(vlm_result()))


def test_reparse_is_idempotent():
    once = reparse_result(vlm_result())
    assert reparse_result(once) == once


def test_reparse_cli_writes_out_and_in_place(tmp_path):
    src = tmp_path / "invoice.json"
    src.write_text(vlm_result().model_dump_json(indent=2))
    out = tmp_path / "sub" / "reparsed.json"
    r = CliRunner().invoke(main, ["reparse", str(src), "-o", str(out)])
    assert r.exit_code == 0, r.output
    assert "1/2 page(s) with a plan reparsed" in r.output
    check_reparsed(DocumentResult.model_validate_json(out.read_text()))
    assert DocumentResult.model_validate_json(src.read_text()).pages[0].lines[0].bbox_page_px == (0, 0, 10, 10)
    r = CliRunner().invoke(main, ["reparse", str(src)])
    assert r.exit_code == 0
    check_reparsed(DocumentResult.model_validate_json(src.read_text()))
    assert not list(tmp_path.glob(".*.tmp"))  # atomic write leaves no temp file


def test_reparse_cli_rejects_non_results(tmp_path):
    bad = tmp_path / "x.json"
    bad.write_text('{"hello": 1}')
    r = CliRunner().invoke(main, ["reparse", str(bad)])
    assert r.exit_code == 2 and "not a docvlm result" in r.output


def test_reparse_never_imports_torch(tmp_path):
    src = tmp_path / "r.json"
    src.write_text(vlm_result().model_dump_json())
    code = (
        "import sys\nfrom click.testing import CliRunner\nfrom docvlm.cli import main\n"
        f"r = CliRunner().invoke(main, ['reparse', {str(src)!r}])\n"
        "assert r.exit_code == 0, r.output\nassert 'torch' not in sys.modules\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr


def test_ground_cli_with_ocr_engine_on_a_real_pdf(tmp_path):
    pdf = ROOT / "samples" / "invoice.pdf"
    if not pdf.is_file():
        import pytest

        pytest.skip("samples/ not generated")
    r = CliRunner().invoke(main, ["ground", str(pdf), "Total", "--json", "--engine", "ocr",
                                  "--overlay", str(tmp_path / "ov")])
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    assert data["query"] == "Total" and data["boxes"] and data["status"] == "found"
    for b in data["boxes"]:
        x0, y0, x1, y1 = b["bbox_page_px"]
        assert 0 <= x0 < x1 and 0 <= y0 < y1 and b["how"]
        if b["found_by"] == "literal":
            assert b["label"] == "Total" and "total" in b["text"].lower()
    # "Total" also names the total field: the amount itself is answered by the extraction rules
    assert [b["found_by"] for b in data["boxes"]][:1] == ["field"]
    assert list((tmp_path / "ov").glob("*.png"))
    r = CliRunner().invoke(main, ["ground", str(pdf), "   "])
    assert r.exit_code == 2


def test_reparse_skips_failed_requests_and_extract_pages():
    result = vlm_result()
    page = result.pages[0]
    failed = TileOutput(tile=1, raw_text='[{"bbox_2d": [1, 2, 3, 4], "text_content": "half"}]', stop_reason="error")
    errored = page.model_copy(update={"outputs": [*page.outputs, failed]})
    got = reparse_result(result.model_copy(update={"pages": [errored, result.pages[1]]}))
    assert "half" not in {ln.text for ln in got.pages[0].lines}
    extract = page.model_copy(update={"prompt_id": "extract-qwen2.5@1"})
    got = reparse_result(result.model_copy(update={"pages": [extract, result.pages[1]]}))
    assert got.pages[0] == extract
