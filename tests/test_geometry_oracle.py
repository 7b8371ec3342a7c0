"""Oracle geometry: pages with known truth -> what a perfect model of each family prints per planned tile ->
parse -> geometry -> merge; every box must come back within one grid unit (0-1000 families) or one encoded
pixel (Qwen2.5-VL), for native and tiled plans, rotated PDF pages included.

Truth: PDF text-layer line boxes (PDFs made here with PyMuPDF, one page with /Rotate 90, plus the repo's
samples) and synthetic images with black marks at known places (the ink is checked to be where the truth says).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image, ImageDraw

from docvlm.datamodel import EncodingPlan, TileOutput, TilePlan
from docvlm.geometry import intersection, page_to_model
from docvlm.grounding import page_lines_from_outputs
from docvlm.options import make_options
from docvlm.plan import plan_page

ROOT = Path(__file__).resolve().parent.parent
FAMILIES = ["qwen2", "qwen2.5", "qwen3"]
Truth = list[tuple[str, tuple[float, float, float, float]]]


# --- a perfect model ------------------------------------------------------------------------------------


def contains(tile: TilePlan, box) -> bool:
    x0, y0, x1, y1 = tile.crop_page_px
    return x0 <= box[0] and y0 <= box[1] and box[2] <= x1 and box[3] <= y1


def perfect_output(tile: TilePlan, family: str, truth: Truth, style: str = "native") -> str:
    """What a perfect model prints for this tile, in the family's own syntax (only lines wholly inside it)."""
    rows = []
    for text, box in truth:
        if not contains(tile, box):
            continue
        b = [int(v) for v in page_to_model(box, tile, family)]
        rows.append((text, b))
    if family == "qwen2":
        return "\n".join(
            f"<|object_ref_start|>{t}<|object_ref_end|><|box_start|>({b[0]},{b[1]}),({b[2]},{b[3]})<|box_end|>"
            for t, b in rows
        ) + "<|im_end|>"
    if style == "html":
        body = "\n".join(f'<p data-bbox="{b[0]} {b[1]} {b[2]} {b[3]}">{t}</p>' for t, b in rows)
        return f"```html\n<html><body>\n{body}\n</body></html>\n```"
    items = [{"bbox_2d": b, "text_content": t} for t, b in rows]
    return "```json\n" + json.dumps(items, indent=2, ensure_ascii=False) + "\n```"


def tolerance(tile: TilePlan, family: str) -> tuple[float, float]:
    """One grid unit (0-1000) or one encoded pixel (qwen2.5), in page pixels, per axis."""
    cx0, cy0, cx1, cy1 = tile.crop_page_px
    ew, eh = tile.encoded_size
    if family in ("qwen2", "qwen3"):
        return (cx1 - cx0) / 1000.0, (cy1 - cy0) / 1000.0
    return (cx1 - cx0) / ew, (cy1 - cy0) / eh


def run_oracle(plan: EncodingPlan, truth: Truth, style: str = "native") -> None:
    reading = [t for t in plan.tiles if t.kind != "thumbnail"]
    for text, box in truth:
        assert any(contains(t, box) for t in reading), f"{text!r} {box} is cut by every tile: overlap too small"
    outputs = [TileOutput(tile=t.index, raw_text=perfect_output(t, plan.family, truth, style)) for t in plan.tiles]
    lines, errors = page_lines_from_outputs(plan, outputs, page_index=0, where="oracle")
    assert errors == []
    by_text: dict[str, list] = {}
    for ln in lines:
        by_text.setdefault(ln.text, []).append(ln)
    tiles = {t.index: t for t in plan.tiles}
    for text, box in truth:
        got = by_text.get(text, [])
        assert len(got) == 1, f"{text!r}: {len(got)} lines after merging ({plan.mode}, {plan.family})"
        line = got[0]
        tx, ty = tolerance(tiles[line.tile], plan.family)
        w, h = plan.page_size_px
        for k, (a, b) in enumerate(zip(line.bbox_page_px, box, strict=True)):
            tol = tx if k % 2 == 0 else ty
            assert abs(a - b) <= tol + 1e-6, (
                f"{text!r} edge {k}: got {a:.3f}, truth {b:.3f}, tol {tol:.3f} (tile {line.tile}, {plan.family})"
            )
        assert 0 <= line.bbox_page_px[0] < line.bbox_page_px[2] <= w
        assert 0 <= line.bbox_page_px[1] < line.bbox_page_px[3] <= h


def plans_for(size, x_height, family, truth: Truth, *, horizontal: bool = True):
    """Native (generous budget), tiled in strips and with a thumbnail (small budgets), and a grid (tiny budget).

    Returns (plan, truth) pairs. In the grid, lines wider than a grid tile are cut by every tile (a grid is only
    chosen for pages too dense for strips); the truth for the grid keeps the lines some tile holds whole.
    So does the truth for strips when the page has vertical text (`horizontal=False`): a vertical line taller
    than a strip is cut by every strip.
    """
    line_h = max(b[3] - b[1] for _, b in truth)  # what estimate_text_heights reports as the tallest line
    kw = dict(x_height_px=x_height, line_height_px=line_h)
    native = plan_page(size, family, max_visual_tokens=16384, **kw)
    tiled = plan_page(size, family, max_visual_tokens=600, **kw)
    extract = plan_page(size, family, max_visual_tokens=700, task_kind="extract", **kw)
    grid = plan_page(size, family, max_visual_tokens=120, **kw)
    assert native.mode == "native" and tiled.mode == "tiled" and extract.mode == "tiled"
    assert any(t.kind == "thumbnail" for t in extract.tiles)
    def whole(plan):
        return [(t, b) for t, b in truth if any(contains(tile, b) for tile in plan.tiles if tile.kind != "thumbnail")]

    def columns(plan):
        return len({(t.crop_page_px[0], t.crop_page_px[2]) for t in plan.tiles if t.kind != "thumbnail"})

    # strips must hold every horizontal line whole: that is the planner's promise, checked by run_oracle
    return [(p, truth if horizontal and columns(p) == 1 else whole(p)) for p in (native, tiled, extract, grid)]


# --- truth from PDF text layers ---------------------------------------------------------------------------


def text_layer_truth(page) -> Truth:
    layer = page.text_layer()
    groups: dict[tuple[int, int], list] = {}
    for w in layer.words:
        groups.setdefault((w.block, w.line), []).append(w)
    truth = []
    seen = set()
    for ws in groups.values():
        text = " ".join(w.text for w in ws)
        if text in seen:
            continue
        seen.add(text)
        box = (min(w.bbox_page_px[0] for w in ws), min(w.bbox_page_px[1] for w in ws),
               max(w.bbox_page_px[2] for w in ws), max(w.bbox_page_px[3] for w in ws))
        truth.append((text, box))
    return truth


@pytest.fixture(scope="module")
def made_pdf(tmp_path_factory) -> Path:
    pymupdf = pytest.importorskip("pymupdf")
    doc = pymupdf.open()
    page = doc.new_page(width=595, height=842)
    for i in range(14):
        size = 7 + (i % 5) * 2
        page.insert_text((40 + (i % 3) * 30, 60 + i * 52), f"Row {i}: amount {i * 7}.50 EUR", fontsize=size)
    rot = doc.new_page(width=595, height=842)
    for i in range(10):
        rot.insert_text((60, 80 + i * 70), f"Rotated line {i} total {i}.00", fontsize=9 + i % 3)
    rot.set_rotation(90)
    path = tmp_path_factory.mktemp("oracle") / "made.pdf"
    doc.save(path)
    return path


def pdf_pages(path: Path, dpi: int = 110):
    from docvlm.sources import open_document

    with open_document(path, make_options(dpi=dpi)) as d:
        for page in d.pages():
            yield page, text_layer_truth(page), page.render()


def ink_inside(image: Image.Image, box) -> bool:
    a = np.asarray(image.convert("L"))
    x0, y0, x1, y1 = (int(round(v)) for v in box)
    return bool((a[max(0, y0):y1 + 1, max(0, x0):x1 + 1] < 128).any())


@pytest.mark.parametrize("family", FAMILIES)
def test_oracle_pdf_text_layer_native_and_tiled(made_pdf, family):
    pages = list(pdf_pages(made_pdf))
    assert len(pages) == 2
    rotated = pages[1][0]
    assert rotated.rotation == 90 and rotated.width_px > rotated.height_px  # landscape after /Rotate 90
    for page, truth, image in pages:
        assert len(truth) >= 10
        # the truth is where the ink is (rotation included)
        assert all(ink_inside(image, box) for _, box in truth)
        for plan, t in plans_for((page.width_px, page.height_px), 6.0, family, truth):
            run_oracle(plan, t)
            if family == "qwen2.5":
                run_oracle(plan, t, style="html")


@pytest.mark.parametrize("name", ["invoice.pdf", "rotated.pdf", "two_column.pdf"])
def test_oracle_sample_pdfs(name):
    path = ROOT / "samples" / name
    if not path.is_file():
        pytest.skip(f"{path} absent")
    for page, truth, _ in pdf_pages(path, dpi=100):
        for family in FAMILIES:
            size = (page.width_px, page.height_px)
            for plan, t in plans_for(size, 5.0, family, truth, horizontal=name != "rotated.pdf"):
                run_oracle(plan, t)


# --- truth from marks on synthetic images -----------------------------------------------------------------


def marks_image(w: int, h: int, seed: int) -> tuple[Image.Image, Truth]:
    rng = np.random.default_rng(seed)
    img = Image.new("RGB", (w, h), "white")
    draw = ImageDraw.Draw(img)
    truth: Truth = []
    for i in range(12):
        mw, mh = int(rng.integers(8, max(9, w // 4))), int(rng.integers(6, 22))
        x0, y0 = int(rng.integers(0, w - mw)), int(rng.integers(0, h - mh))
        draw.rectangle((x0, y0, x0 + mw - 1, y0 + mh - 1), fill="black")
        truth.append((f"mark {i}", (float(x0), float(y0), float(x0 + mw), float(y0 + mh))))
    return img, truth


def measured_truth(img: Image.Image, truth: Truth) -> Truth:
    """The marks' boxes measured back from the pixels (guards the truth itself), for isolated marks."""
    a = np.asarray(img.convert("L")) < 128
    out = []
    for text, (x0, y0, x1, y1) in truth:
        if any(intersection((x0 - 1, y0 - 1, x1 + 1, y1 + 1), b) > 0 for t, b in truth if t != text):
            continue  # touching marks merge in the pixels; keep only isolated ones
        ys, xs = np.nonzero(a[int(y0):int(y1), int(x0):int(x1)])
        assert xs.min() == 0 and ys.min() == 0 and xs.max() + 1 == x1 - x0 and ys.max() + 1 == y1 - y0
        out.append((text, (x0, y0, x1, y1)))
    return out


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("size", [(463, 1013), (1240, 1754), (300, 2600)])
def test_oracle_synthetic_marks(family, size):
    img, truth = marks_image(*size, seed=size[0])
    truth = measured_truth(img, truth)
    assert len(truth) >= 4
    for plan, t in plans_for(size, 6.0, family, truth):
        run_oracle(plan, t)


@settings(max_examples=30, deadline=None)
@given(
    w=st.integers(200, 3000),
    h=st.integers(200, 4000),
    family=st.sampled_from(FAMILIES),
    budget=st.integers(200, 3000),
    seed=st.integers(0, 10_000),
)
def test_oracle_property_random_pages(w, h, family, budget, seed):
    rng = np.random.default_rng(seed)
    truth: Truth = []
    for i in range(6):
        bw, bh = float(rng.integers(4, max(5, w // 3))), float(rng.integers(4, 20))
        x0, y0 = float(rng.integers(0, int(w - bw))), float(rng.integers(0, int(h - bh)))
        truth.append((f"t{i}", (x0, y0, x0 + bw, y0 + bh)))
    plan = plan_page((w, h), family, x_height_px=6.0, max_visual_tokens=budget)
    reading = [t for t in plan.tiles if t.kind != "thumbnail"]
    truth = [(t, b) for t, b in truth if any(contains(tile, b) for tile in reading)]
    run_oracle(plan, truth)
