"""`docvlm plan` on bad input: a sane plan with its reason, or a clear per-page error; never a traceback, never
a plan over the family's maximum tokens."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from docvlm.cli import main
from docvlm.options import make_options
from docvlm.plan import FAMILIES, plan_document

FAMS = ["qwen2", "qwen2.5", "qwen3"]


def _max_tokens(family: str) -> int:
    spec = FAMILIES[family]
    return spec.max_pixels // spec.factor**2


@pytest.fixture(scope="module")
def bad_inputs(tmp_path_factory):
    pymupdf = pytest.importorskip("pymupdf")
    d = tmp_path_factory.mktemp("bad")
    Image.new("RGB", (1240, 1754), "white").save(d / "no_text.png")
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (1400, 1000, 3), dtype=np.uint8)).save(d / "noise.png")
    Image.new("L", (1, 20000), 255).save(d / "strip.png")
    doc = pymupdf.open()
    doc.new_page(width=595, height=842)
    doc.save(d / "blank.pdf")
    huge = pymupdf.open()  # 7200 pt square at 200 dpi = 20000 x 20000 px, over the 80 MP default cap
    page = huge.new_page(width=7200, height=7200)
    page.insert_text((100, 100), "a page far too large to render at this dpi", fontsize=40)
    huge.save(d / "huge.pdf")
    scan = pymupdf.open()  # the same size without a text layer: it would have to be rasterized to be sized
    scan.new_page(width=7200, height=7200).draw_rect(pymupdf.Rect(100, 100, 3000, 300), fill=(0, 0, 0))
    scan.save(d / "huge_scan.pdf")
    return d


@pytest.mark.parametrize("family", FAMS)
def test_each_bad_input_gets_a_sane_plan_or_a_clear_error(bad_inputs, family):
    options = make_options(max_visual_tokens=1280)
    for name in ("no_text.png", "noise.png", "strip.png", "blank.pdf"):
        rows = plan_document(str(bad_inputs / name), options, family)  # type: ignore[arg-type]
        assert len(rows) == 1 and rows[0].error is None, (name, rows)
        plan = rows[0].plan
        assert plan is not None and plan.reason
        assert plan.visual_tokens <= _max_tokens(family), (name, plan.visual_tokens)
        assert all(t.visual_tokens <= 1280 for t in plan.tiles)
        if name != "noise.png":  # noise may show specks the detector keeps; it must not read as small text
            assert plan.scale_rule == "no-text" and "no text size measured" in plan.reason, (name, plan.reason)
        else:
            assert plan.text_line_px is None or plan.text_line_px >= 8, plan.reason
    # a 20000 x 20000 px page (at 200 dpi) with a text layer: sized from its words, no rendering needed; its
    # tiles are rendered at their encoded scale, so it gets a plan within the family's tokens
    rows = plan_document(str(bad_inputs / "huge.pdf"), options, family)  # type: ignore[arg-type]
    assert len(rows) == 1 and rows[0].error is None and rows[0].plan is not None
    assert rows[0].plan.text_height_source == "text_layer"
    assert rows[0].plan.visual_tokens <= _max_tokens(family)
    rows = plan_document(str(bad_inputs / "huge_scan.pdf"), options, family)  # type: ignore[arg-type]
    assert len(rows) == 1 and rows[0].plan is None
    assert "--max-page-pixels" in rows[0].error and "20000x20000" in rows[0].error


def test_huge_image_is_refused_before_decoding(tmp_path):
    """A 20000 x 20000 image (1-bit, so the test stays small): refused by the pixel cap, naming the option."""
    path = tmp_path / "huge.png"
    Image.new("1", (20000, 20000), 1).save(path)
    rows = plan_document(str(path), make_options(), "qwen2.5")
    assert rows[0].plan is None and "--max-page-pixels" in rows[0].error


def test_plan_cli_on_all_bad_inputs(bad_inputs):
    names = ["no_text.png", "noise.png", "strip.png", "blank.pdf", "huge.pdf", "huge_scan.pdf"]
    r = CliRunner().invoke(main, ["plan", *[str(bad_inputs / n) for n in names], "--json"])
    assert r.exit_code == 1  # one page failed
    assert "Traceback" not in r.output
    data = json.loads(r.output)
    errors = [p for p in data["pages"] if p["error"]]
    assert len(errors) == 1 and "huge_scan.pdf" in errors[0]["path"] and "--max-page-pixels" in errors[0]["error"]
    assert data["totals"]["pages"] == 5
    r = CliRunner().invoke(main, ["plan", *[str(bad_inputs / n) for n in names]])
    assert r.exit_code == 1 and "Traceback" not in r.output and "max-page-pixels" in r.output
