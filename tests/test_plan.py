"""The encoding planner: the processor's resize rule, scale choice, native vs tiled, budgets, `docvlm plan`."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from docvlm.options import make_options
from docvlm.plan import (
    DEFAULT_MIN_TEXT_PX,
    ESTIMATE_PER_LINE_BOX,
    FAMILIES,
    MAX_UPSCALE,
    budget_from_device,
    choose_scale,
    default_scale,
    encode_size_for_crop,
    family_smart_resize,
    plan_for_page,
    plan_page,
    render_tile,
    smart_resize,
    visual_tokens,
)
from docvlm.textsize import text_size_from_text_layer

ROOT = Path(__file__).resolve().parent.parent
FAMS = ["qwen2", "qwen2.5", "qwen3"]


def test_smart_resize_equals_installed_transformers():
    """Our copy must equal transformers' function (Qwen2-VL image processor; Qwen3-VL reuses it)."""
    # the PIL module holds a "Copied from ... image_processing_qwen2_vl.smart_resize" (the torchvision one
    # needs torchvision, which docvlm does not require)
    try:
        from transformers.models.qwen2_vl.image_processing_qwen2_vl import smart_resize as ref
    except ImportError:
        ref = pytest.importorskip("transformers.models.qwen2_vl.image_processing_pil_qwen2_vl").smart_resize
    rng = random.Random(7)
    cases = 0
    for _ in range(1500):
        h = rng.randint(1, 9000)
        w = rng.randint(1, 9000)
        if max(h, w) / min(h, w) > 200:
            continue
        for fam in FAMS:
            spec = FAMILIES[fam]
            args = (h, w, spec.factor, spec.min_pixels, spec.max_pixels)
            assert smart_resize(*args) == tuple(ref(*args)), args
        mx = rng.choice([1280 * 28 * 28, 256 * 32 * 32, 4096 * 28 * 28])
        assert smart_resize(h, w, 28, 3136, mx) == tuple(ref(h, w, 28, 3136, mx))
        cases += 1
    assert cases > 1000
    with pytest.raises(ValueError):
        smart_resize(1, 500)
    with pytest.raises(ValueError):
        ref(1, 500)


def test_family_constants_match_released_configs():
    assert FAMILIES["qwen2"].factor == 28 and FAMILIES["qwen2.5"].factor == 28
    assert FAMILIES["qwen3"].factor == 32
    assert FAMILIES["qwen2"].max_pixels == 16384 * 28 * 28 == 12845056
    assert FAMILIES["qwen2.5"].min_pixels == 3136
    assert FAMILIES["qwen3"].min_pixels == 65536 and FAMILIES["qwen3"].max_pixels == 16777216


def _check_plan(plan, budget):
    w, h = plan.page_size_px
    f = FAMILIES[plan.family].factor
    covered_rows: set[int] = set()
    for t in plan.tiles:
        ew, eh = t.encoded_size
        assert ew % f == 0 and eh % f == 0
        # the processor must leave our image alone
        assert family_smart_resize(eh, ew, plan.family) == (eh, ew)
        assert t.visual_tokens == visual_tokens(t.encoded_size, plan.family) == (ew // f) * (eh // f)
        assert t.visual_tokens <= max(budget, plan.max_visual_tokens)
        x0, y0, x1, y1 = t.crop_page_px
        assert all(isinstance(v, int) for v in t.crop_page_px)
        assert 0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h
        if t.kind != "thumbnail":
            covered_rows.update((y0, y1))
    assert plan.visual_tokens == sum(t.visual_tokens for t in plan.tiles)
    # tiles cover the page: union of crops spans it (checked per column below for tiled plans)
    crops = [t.crop_page_px for t in plan.tiles if t.kind != "thumbnail"]
    assert min(c[0] for c in crops) == 0 and min(c[1] for c in crops) == 0
    assert max(c[2] for c in crops) == w and max(c[3] for c in crops) == h


@settings(max_examples=80, deadline=None)
@given(
    w=st.integers(20, 6000),
    h=st.integers(20, 9000),
    xh=st.one_of(st.none(), st.floats(2.0, 80.0)),
    fam=st.sampled_from(FAMS),
    budget=st.integers(64, 6000),
    task=st.sampled_from(["read", "extract"]),
)
def test_plan_invariants(w, h, xh, fam, budget, task):
    plan = plan_page((w, h), fam, x_height_px=xh, max_visual_tokens=budget, task_kind=task)
    _check_plan(plan, budget)
    if plan.mode == "tiled":
        # adjacent tiles overlap (no text line falls between two tiles)
        ys = sorted({(t.crop_page_px[1], t.crop_page_px[3]) for t in plan.tiles if t.kind == "tile"})
        for (_, a1), (b0, _) in zip(ys, ys[1:], strict=False):
            assert b0 < a1
        has_thumb = any(t.kind == "thumbnail" for t in plan.tiles)
        assert has_thumb == (task == "extract" and "no thumbnail" not in plan.reason)
    else:
        assert len(plan.tiles) == 1 and plan.tiles[0].kind == "page"


def test_policy_scales_small_text_to_the_floor():
    # 200-dpi letter page, small text 27.8 px: scaled down until it is 16 px, and no further
    plan = plan_page((1700, 2200), "qwen2.5", text_line_px=27.8, max_visual_tokens=8000)
    assert plan.mode == "native" and plan.scale_rule == "floor" and plan.min_text_px == DEFAULT_MIN_TEXT_PX
    ew, eh = plan.tiles[0].encoded_size
    assert 27.8 * ew / 1700 >= 16.0 and 27.8 * eh / 2200 >= 16.0
    assert 27.8 * (ew - 28) / 1700 < 16.0  # one factor step less would be under the floor
    assert plan.text_line_px == 27.8 and "floor 16 px" in plan.reason
    # small text is enlarged exactly to the floor...
    up = plan_page((800, 600), "qwen2", text_line_px=10.0, max_visual_tokens=100_000)
    assert up.scale == pytest.approx(1.6) and up.scale_rule == "floor"
    # ...but never more than MAX_UPSCALE
    tiny = plan_page((800, 600), "qwen2", text_line_px=2.0, max_visual_tokens=100_000)
    assert tiny.scale == MAX_UPSCALE and tiny.scale_rule == "upscale-capped" and "capped" in tiny.reason
    # --min-text-px moves the floor
    big = plan_page((800, 600), "qwen2", text_line_px=10.0, min_text_px=24, max_visual_tokens=100_000)
    assert big.scale == pytest.approx(2.4)
    # unknown text size: olmOCR's 1288-px longest side, never above the default
    unknown = plan_page((2000, 3000), "qwen3", text_line_px=None, max_visual_tokens=100_000)
    assert unknown.scale_rule == "no-text" and unknown.text_height_source == "default"
    assert max(unknown.tiles[0].encoded_size) <= 1288 + 32
    small_unknown = plan_page((600, 800), "qwen2", text_line_px=None, max_visual_tokens=100_000)
    assert small_unknown.scale == pytest.approx(default_scale(600, 800, "qwen2"))


@settings(max_examples=120, deadline=None)
@given(w=st.integers(200, 8000), h=st.integers(200, 8000), line=st.floats(3.0, 200.0),
       floor=st.floats(8.0, 30.0), fam=st.sampled_from(FAMS))
def test_policy_never_spends_more_than_the_default_when_it_is_readable(w, h, line, floor, fam):
    """When the family default already keeps the small text at the floor, the plan costs no more than it;
    otherwise the plan reaches the floor (up to MAX_UPSCALE and the family's tokens per page)."""
    if max(w, h) / min(w, h) > 100:
        return
    plan = plan_page((w, h), fam, text_line_px=line, min_text_px=floor, max_visual_tokens=16384)
    dh, dw = family_smart_resize(h, w, fam)
    default_tokens = visual_tokens((dw, dh), fam)
    if line * default_scale(w, h, fam) >= floor:
        assert plan.visual_tokens <= default_tokens
    assert plan.visual_tokens <= FAMILIES[fam].max_pixels // FAMILIES[fam].factor ** 2
    ew, eh = plan.tiles[0].encoded_size if plan.mode == "native" else (None, None)
    if plan.scale_rule == "floor" and ew:
        assert line * eh / h >= floor - 1e-6  # the floor is reached, in encoded pixels


@settings(max_examples=80, deadline=None)
@given(w=st.integers(200, 8000), h=st.integers(200, 8000), line=st.floats(3.0, 200.0), fam=st.sampled_from(FAMS))
def test_raster_estimates_are_put_on_the_line_box_yardstick(w, h, line, fam):
    """A raster (ink) estimate is divided by ESTIMATE_PER_LINE_BOX before the floor; the default-is-readable
    promise holds on that corrected line, and the floor is reached by it."""
    if max(w, h) / min(w, h) > 100:
        return
    k = ESTIMATE_PER_LINE_BOX["detector"]
    ink = plan_page((w, h), fam, text_line_px=line, max_visual_tokens=16384, text_height_source="detector")
    box = plan_page((w, h), fam, text_line_px=line / k, max_visual_tokens=16384, text_height_source="text_layer")
    assert ink.visual_tokens == box.visual_tokens and ink.scale == box.scale
    dh, dw = family_smart_resize(h, w, fam)
    if (line / k) * default_scale(w, h, fam) >= DEFAULT_MIN_TEXT_PX:
        assert ink.visual_tokens <= visual_tokens((dw, dh), fam)
    if ink.scale_rule == "floor" and ink.mode == "native":
        assert (line / k) * ink.tiles[0].encoded_size[1] / h >= DEFAULT_MIN_TEXT_PX - 1e-6


def test_choose_scale_is_resolution_free():
    """The same page at 5 resolutions (text scaled with it) gets the same encoded size."""
    sizes = []
    for k in (0.3, 1, 3, 5):
        d = choose_scale((round(900 * k), round(2000 * k)), "qwen2", 30.0 * k)
        sizes.append(d.scale * 900 * k)
    assert max(sizes) / min(sizes) < 1.05


def test_native_when_within_budget_tiled_when_not():
    small = plan_page((1000, 1000), "qwen2.5", x_height_px=10.0, max_visual_tokens=1296)
    assert small.mode == "native" and small.visual_tokens <= 1296 and "native" in small.reason
    big = plan_page((1000, 1000), "qwen2.5", x_height_px=10.0, max_visual_tokens=600)
    assert big.mode == "tiled" and all(t.visual_tokens <= 600 for t in big.tiles)
    assert "budget 600" in big.reason


def test_long_receipt_gets_full_width_strips():
    plan = plan_page((480, 4000), "qwen2", text_line_px=12.0, max_visual_tokens=1280)
    assert plan.mode == "tiled" and "strips" in plan.reason
    assert all(t.crop_page_px[0] == 0 and t.crop_page_px[2] == 480 for t in plan.tiles)
    ys = [(t.crop_page_px[1], t.crop_page_px[3]) for t in plan.tiles]
    for (_, a1), (b0, _) in zip(ys, ys[1:], strict=False):
        assert a1 - b0 >= 2 * 12.0  # overlap holds two small-text lines


def test_dense_wide_page_gets_a_grid():
    plan = plan_page((5000, 7000), "qwen3", x_height_px=5.0, max_visual_tokens=1024)
    xs = {(t.crop_page_px[0], t.crop_page_px[2]) for t in plan.tiles}
    assert plan.mode == "tiled" and "grid" in plan.reason and len(xs) > 1


def test_extract_adds_thumbnail_within_budget():
    plan = plan_page((1700, 2200), "qwen2.5", x_height_px=10.0, max_visual_tokens=1280, task_kind="extract")
    thumbs = [t for t in plan.tiles if t.kind == "thumbnail"]
    assert len(thumbs) == 1 and thumbs[0].crop_page_px == (0, 0, 1700, 2200)
    assert thumbs[0].visual_tokens <= 1280


def test_budget_from_device():
    assert budget_from_device(None, "qwen2.5") == 1280
    assert budget_from_device(8 * 2**30, "qwen2.5") == 4096
    assert budget_from_device(80 * 2**30, "qwen2.5") == 16384
    assert budget_from_device(2 * 2**30, "qwen3") == 2048
    # qwen3's min_pixels is 64 tokens: a smaller budget is clamped up
    assert plan_page((500, 500), "qwen3", x_height_px=10, max_visual_tokens=10).max_visual_tokens == 64


def test_render_tile_exact_size():
    img = Image.new("RGB", (1000, 3000), "white")
    plan = plan_page((1000, 3000), "qwen2", x_height_px=8.0, max_visual_tokens=700, task_kind="extract")
    for t in plan.tiles:
        assert render_tile(img, t).size == t.encoded_size


def test_text_layer_estimate_and_plan_for_page(tmp_path):
    pymupdf = pytest.importorskip("pymupdf")
    from docvlm.sources import open_document

    doc = pymupdf.open()
    page = doc.new_page(width=595, height=842)
    for i in range(30):
        page.insert_text((50, 60 + i * 20), f"Line {i} of ordinary body text", fontsize=10)
    page.insert_text((50, 800), "tiny footnote words here", fontsize=6)
    pdf = tmp_path / "t.pdf"
    doc.save(pdf)
    options = make_options(dpi=144, max_visual_tokens=1280)
    with open_document(pdf, options) as d:
        src = next(d.pages())
        layer = src.text_layer()
        size = text_size_from_text_layer(layer, src.dpi)
        # 5th percentile of font sizes (mostly 10 pt, a few 6 pt words), in page px at 144 dpi
        assert size is not None and 6 * 2 <= size.line_px <= 10 * 2 + 1e-6
        assert size.body_px == pytest.approx(20.0)
        plan = plan_for_page(src, options, "qwen2.5", "read")
    assert plan.text_height_source == "text_layer" and plan.text_line_px == pytest.approx(size.line_px, abs=1e-3)
    assert plan.reason.startswith("text layer:")
    assert plan.page_size_px == (src.width_px, src.height_px)
    _check_plan(plan, 1280)


def test_plan_cli_json_and_never_imports_torch(tmp_path):
    samples = ROOT / "samples"
    if not (samples / "invoice.pdf").is_file():
        pytest.skip("samples/ not generated")
    code = (
        "import sys, json\n"
        "from click.testing import CliRunner\n"
        "from docvlm.cli import main\n"
        f"r = CliRunner().invoke(main, ['plan', {str(samples / 'invoice.pdf')!r}, "
        f"{str(samples / 'receipt_long.jpg')!r}, '--json', '--family', 'qwen2', '--max-visual-tokens', '900'])\n"
        "assert r.exit_code == 0, r.output\n"
        "assert 'torch' not in sys.modules and 'transformers' not in sys.modules\n"
        "print(r.output)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["family"] == "qwen2" and data["totals"]["pages"] == 2
    for p in data["pages"]:
        assert p["plan"]["max_visual_tokens"] == 900
        assert all(t["visual_tokens"] <= 900 for t in p["plan"]["tiles"])
    assert data["totals"]["visual_tokens"] == sum(p["plan"]["visual_tokens"] for p in data["pages"])


def test_plan_cli_table_and_bad_input(tmp_path):
    from click.testing import CliRunner

    from docvlm.cli import main

    img = tmp_path / "page.png"
    Image.new("RGB", (400, 300), "white").save(img)
    bad = tmp_path / "bad.pdf"
    bad.write_bytes(b"%PDF-1.4 garbage")
    r = CliRunner().invoke(main, ["plan", str(img), str(bad)])
    assert r.exit_code == 1
    assert "native" in r.output and "bad.pdf" in r.output and "total: 1 page(s)" in r.output


@settings(max_examples=150, deadline=None)
@given(w=st.integers(40, 6000), h=st.integers(40, 6000), scale=st.floats(0.05, 3.0), fam=st.sampled_from(FAMS))
def test_encoded_height_rounds_up_and_width_to_the_nearest_cell(w, h, scale, fam):
    """The floor is a line height: the encoded height never falls under the scale (unless the family's
    max_pixels shrinks the crop), while the width lands on the nearest cell, never a whole cell wider."""
    if max(w, h) / min(w, h) > 100:
        return
    f = FAMILIES[fam].factor
    ew, eh = encode_size_for_crop(w, h, scale, fam)
    assert ew % f == 0 and eh % f == 0
    spec = FAMILIES[fam]
    hs, ws = h * scale, w * scale
    if max(hs, f) * max(ws - f / 2, f) < spec.min_pixels or (hs + f) * (ws + f / 2) > spec.max_pixels:
        return  # near min_pixels or max_pixels smart_resize rescales the crop: not a rounding question
    assert h * scale - 1e-6 <= eh < h * scale + f
    assert abs(ew - w * scale) <= f / 2 + 1e-6 or ew == f
