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
from PIL import Image, ImageDraw, ImageFont

from docvlm.options import make_options
from docvlm.plan import (
    FAMILIES,
    MAX_UPSCALE,
    budget_from_device,
    detect_x_height,
    family_smart_resize,
    plan_for_page,
    plan_page,
    render_tile,
    smart_resize,
    visual_tokens,
    x_height_from_text_layer,
)

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


def test_scale_keeps_smallest_text_readable():
    # 200-dpi letter page, 10-pt text (x-height 13.9 px): scaled down, x-height stays >= 10 px
    plan = plan_page((1700, 2200), "qwen2.5", x_height_px=13.9, max_visual_tokens=8000)
    assert plan.mode == "native"
    ew, eh = plan.tiles[0].encoded_size
    assert 13.9 * ew / 1700 >= 10.0 and 13.9 * eh / 2200 >= 10.0
    assert plan.scale < 1.0
    assert 13.9 * (ew - 28) / 1700 < 10.0  # and no bigger than needed (one factor step less is too small)
    # tiny text is enlarged, but never more than MAX_UPSCALE
    tiny = plan_page((800, 600), "qwen2", x_height_px=2.0, max_visual_tokens=100_000)
    assert tiny.scale == MAX_UPSCALE and "capped" in tiny.reason
    # unknown text height: page resolution kept
    unknown = plan_page((800, 600), "qwen3", x_height_px=None, max_visual_tokens=100_000)
    assert unknown.scale == 1.0 and unknown.text_height_source == "default"


def test_native_when_within_budget_tiled_when_not():
    small = plan_page((1000, 1000), "qwen2.5", x_height_px=10.0, max_visual_tokens=1296)
    assert small.mode == "native" and small.visual_tokens <= 1296 and "native" in small.reason
    big = plan_page((1000, 1000), "qwen2.5", x_height_px=10.0, max_visual_tokens=600)
    assert big.mode == "tiled" and all(t.visual_tokens <= 600 for t in big.tiles)
    assert "budget 600" in big.reason


def test_long_receipt_gets_full_width_strips():
    plan = plan_page((480, 4000), "qwen2", x_height_px=9.0, max_visual_tokens=1280)
    assert plan.mode == "tiled" and "strips" in plan.reason
    assert all(t.crop_page_px[0] == 0 and t.crop_page_px[2] == 480 for t in plan.tiles)
    ys = [(t.crop_page_px[1], t.crop_page_px[3]) for t in plan.tiles]
    for (_, a1), (b0, _) in zip(ys, ys[1:], strict=False):
        assert a1 - b0 >= 4 * 9.0  # overlap holds a text line


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


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    for p in ("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", "/usr/share/fonts/dejavu/DejaVuSans.ttf"):
        if Path(p).is_file():
            return ImageFont.truetype(p, size)
    return ImageFont.load_default(size)


@pytest.mark.parametrize("font_px", [16, 28, 44])
def test_detector_tracks_text_size(font_px):
    img = Image.new("RGB", (1200, 1400), "white")
    draw = ImageDraw.Draw(img)
    font = _font(font_px)
    y = 40
    while y < 1300:
        draw.text((40, y), "The quick brown fox jumps over lazy dogs 1234", fill="black", font=font)
        y += int(font_px * 1.8)
    xh = detect_x_height(img)
    assert xh is not None
    # x-height of DejaVu Sans is 0.55 em; the detector errs low (ascender-descender / 2), never far off
    assert 0.3 * font_px <= xh <= 0.65 * font_px, xh


def test_detector_ignores_dashed_rules(samples_dir):
    """The receipt sample's '-----' separators are bars, not lines of tiny text: they must not set the estimate.

    Its text is DejaVu Sans Mono at 24 px (x-height about 13 px); the detector errs low (ascender-descender / 2)
    but not below half of that. Counting the dashed rules as text gave 4 px, and a needless 2x upscale.
    """
    xh = detect_x_height(Image.open(samples_dir / "receipt_long.jpg"))
    assert xh is not None and 6.5 <= xh <= 13.5, xh


def test_detector_blank_page():
    assert detect_x_height(Image.new("RGB", (600, 800), "white")) is None


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
        xh = x_height_from_text_layer(layer, src.dpi)
        # 5th percentile of sizes (mostly 10 pt, a few 6 pt words) -> between 6 and 10 pt, x-height = size/2
        assert 6 * 0.5 * 2 <= xh <= 10 * 0.5 * 2 + 1e-6
        plan = plan_for_page(src, options, "qwen2.5", "read")
    assert plan.text_height_source == "text_layer"
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
