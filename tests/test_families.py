"""Every model family of the registry: oracle geometry (what a perfect model prints per planned tile, in the
family's own convention, back to page pixels within one grid unit) on native, tiled and rotated pages; bad
output (wrong convention, out-of-range locations, inverted boxes, truncated tokens) reported on its page with
the raw output kept; reparse; LLaVA-NeXT text-to-OCR alignment; the registry wiring (CLI choices, detection).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image

from docvlm import __version__
from docvlm.cli import main
from docvlm.datamodel import (
    DocumentResult,
    EncodingPlan,
    EngineInfo,
    Line,
    PageResult,
    SourceInfo,
    TileOutput,
    TilePlan,
    Word,
)
from docvlm.engines.vlm import TileRequest, TileResponse, VlmEngine
from docvlm.families import FAMILY_NAMES, family_for_model_type, family_for_served_name, get_family
from docvlm.families.align import align_lines
from docvlm.families.llava_next import anyres_tokens, select_best_resolution
from docvlm.geometry import page_to_encoded
from docvlm.grounding import page_lines_from_outputs, parse_output
from docvlm.options import make_options
from docvlm.plan import render_tile
from docvlm.reparse import reparse_result
from docvlm.sources import SourcePage

ROOT = Path(__file__).resolve().parent.parent
NEW = ("paligemma", "florence2", "deepseek-ocr", "llava-next")
Truth = list[tuple[str, tuple[float, float, float, float]]]


# --- a perfect model of each family ---------------------------------------------------------------------


def contains(tile: TilePlan, box) -> bool:
    x0, y0, x1, y1 = tile.crop_page_px
    return x0 <= box[0] and y0 <= box[1] and box[2] <= x1 and box[3] <= y1


def oracle_task(family: str) -> str:
    # LLaVA-NeXT prints boxes only for a referring query; its read output has none (see the alignment tests)
    return "ground" if family == "llava-next" else "read"


def perfect_output(tile: TilePlan, family: str, truth: Truth) -> str:
    fam = get_family(family)
    items = [(text, fam.encoded_to_model(page_to_encoded(box, tile), tile.encoded_size))
             for text, box in truth if contains(tile, box)]
    return fam.render_output(items, task=oracle_task(family))


def tolerance(tile: TilePlan, family: str) -> tuple[float, float]:
    """One grid unit of the family, in page pixels of this tile, per axis."""
    ux, uy = get_family(family).grid_unit_px(tile.encoded_size)
    cx0, cy0, cx1, cy1 = tile.crop_page_px
    return ux * (cx1 - cx0) / tile.encoded_size[0], uy * (cy1 - cy0) / tile.encoded_size[1]


def run_oracle(plan: EncodingPlan, truth: Truth) -> int:
    family = plan.family
    whole = [(t, b) for t, b in truth if any(contains(tile, b) for tile in plan.tiles)]
    outputs = [TileOutput(tile=t.index, raw_text=perfect_output(t, family, whole)) for t in plan.tiles]
    lines, errors = page_lines_from_outputs(plan, outputs, page_index=0, where="oracle")
    assert errors == []
    tiles = {t.index: t for t in plan.tiles}
    by_text: dict[str, list[Line]] = {}
    for ln in lines:
        by_text.setdefault(ln.text, []).append(ln)
    w, h = plan.page_size_px
    for text, box in whole:
        got = by_text.get(text, [])
        assert len(got) == 1, f"{text!r}: {len(got)} lines after merging ({plan.mode}, {family})"
        line = got[0]
        tx, ty = tolerance(tiles[line.tile], family)
        for k, (a, b) in enumerate(zip(line.bbox_page_px, box, strict=True)):
            tol = tx if k % 2 == 0 else ty
            assert abs(a - b) <= tol + 1e-6, f"{family} {text!r} edge {k}: {a:.2f} vs {b:.2f} (tol {tol:.2f})"
        assert 0 <= line.bbox_page_px[0] < line.bbox_page_px[2] <= w
        assert 0 <= line.bbox_page_px[1] < line.bbox_page_px[3] <= h
    return len(whole)


def plan_for(family: str, size: tuple[int, int], text_line_px: float, tall: float) -> EncodingPlan:
    return get_family(family).plan(size, text_line_px=text_line_px, min_text_px=16.0, max_visual_tokens=1280,
                                   task_kind="read", text_height_source="text_layer", line_height_px=tall,
                                   device_memory_bytes=None)


def synthetic_truth(width: int, height: int, line_h: int = 14) -> Truth:
    truth = []
    y = 20
    i = 0
    while y + line_h < height - 10:
        x = 15 + (i * 37) % max(1, width // 3)
        truth.append((f"line {i} total {i * 1.25:.2f}", (float(x), float(y), float(min(width - 5, x + 180)),
                                                          float(y + line_h))))
        y += line_h * 2
        i += 1
    return truth


@pytest.mark.parametrize("family", FAMILY_NAMES)
@pytest.mark.parametrize("size", [(600, 800), (420, 2600), (1700, 2200)])
def test_oracle_round_trip_within_one_grid_unit_native_and_tiled(family, size):
    truth = synthetic_truth(*size)
    native = plan_for(family, size, text_line_px=80.0, tall=30.0)  # big text: the page fits one image
    # small text: the floor needs tiles (Qwen: x2.7 into full-width strips; squares: x1.1, each square wider
    # than a line, so every line is whole in some square)
    tiled = plan_for(family, size, text_line_px=6.0 if family.startswith("qwen") else 14.0, tall=16.0)
    if family == "deepseek-ocr" and tiled.mode == "native":
        assert tiled.tiles[0].encoded_size in ((1024, 1024), (1280, 1280))  # one big square: fewer tokens
        assert run_oracle(tiled, truth) == len(truth)
        return
    assert tiled.mode == "tiled" and len(tiled.tiles) > 1
    columns = len({(t.crop_page_px[0], t.crop_page_px[2]) for t in tiled.tiles})
    if columns == 1:
        assert run_oracle(tiled, truth) == len(truth)  # strips / one column of squares: every line whole somewhere
    else:
        # columns: a line across a vertical seam wider than the overlap is cut by both tiles (checked: the lines
        # some tile holds whole are every line but those)
        assert run_oracle(tiled, truth) >= 0.7 * len(truth)
    if native.mode == "native":
        assert run_oracle(native, truth) == len(truth)  # one image holds every line


def test_square_tiles_are_squares_cut_not_stretched_and_padded_white_past_the_page():
    fam = get_family("paligemma")
    plan = plan_for("paligemma", (420, 2600), text_line_px=40.0, tall=50.0)
    for t in plan.tiles:
        x0, y0, x1, y1 = t.crop_page_px
        assert x1 - x0 == y1 - y0  # square crop: one scale for x and y
        assert t.encoded_size == (fam.side, fam.side)
    assert plan.tiles[0].crop_page_px[2] > 420  # narrower than a square: reaches past the right edge
    page = Image.new("RGB", (420, 2600), (200, 0, 0))
    img = render_tile(page, plan.tiles[0])
    assert img.size == (fam.side, fam.side)
    assert img.getpixel((fam.side - 1, fam.side // 2)) == (255, 255, 255)  # padding is white
    assert img.getpixel((2, 2))[0] > 150  # the page itself is kept
    ys = [t.crop_page_px[1] for t in plan.tiles]
    assert ys == sorted(ys) and plan.tiles[-1].crop_page_px[3] == 2600  # the last square ends at the page edge


def test_oracle_on_pdf_pages_including_rotated(tmp_path):
    import fitz
    from test_geometry_oracle import text_layer_truth

    from docvlm.sources import open_document

    doc = fitz.open()
    for rot in (0, 90):
        page = doc.new_page(width=595, height=842)
        for i in range(30):
            page.insert_text((50, 60 + i * 24), f"Row {i} amount {i * 3.5:.2f} EUR", fontsize=9)
        page.set_rotation(rot)
    pdf = tmp_path / "rot.pdf"
    doc.save(pdf)
    options = make_options(dpi=150)
    with open_document(str(pdf), options) as src:
        pages = list(src.pages())
        truths = [(p.width_px, p.height_px, text_layer_truth(p)) for p in pages]
    assert truths[1][0] > truths[1][1]  # the /Rotate 90 page is landscape in page pixels
    for family in FAMILY_NAMES:
        for w, h, truth in truths:
            line = min(b[3] - b[1] for _, b in truth)
            tall = max(b[3] - b[1] for _, b in truth)
            tall = max(tall, max(b[2] - b[0] for _, b in truth) if w > h else tall)
            for plan in (plan_for(family, (w, h), line, tall), plan_for(family, (w, h), 4 * line, tall)):
                assert run_oracle(plan, truth) > 0


# --- bad output: reported on its page, never silently fixed ---------------------------------------------


def one_tile_plan(family: str, side: int = 448) -> EncodingPlan:
    tile = TilePlan(index=0, kind="page", crop_page_px=(0, 0, 896, 896), encoded_size=(side, side), visual_tokens=1)
    return EncodingPlan(family=family, mode="native", page_size_px=(800, 896), scale=side / 896, tiles=[tile],
                        visual_tokens=1, max_visual_tokens=1, reason="test")


BAD = [
    ("paligemma", '[{"bbox_2d": [10, 20, 100, 40], "text_content": "TOTAL"}]', "Qwen JSON"),
    ("paligemma", "<loc0100><loc0200><loc1500><loc0400> TOTAL", "outside 0..1023"),
    ("paligemma", "<loc0100><loc0200><loc0150> TOTAL", "3 <loc> tokens"),
    ("paligemma", "<loc0100><loc0200><loc0300><loc04", "truncated"),
    ("florence2", "TOTAL<loc_10><loc_20><loc_1000><loc_40>", "outside 0..999"),
    ("florence2", "TOTAL<loc_10><loc_20><loc_30><loc_40><loc_50><loc_60>", "6 <loc_> tokens"),
    ("florence2", "TOTAL<loc_10><loc_20><loc_30><loc_", "truncated"),
    ("florence2", "<loc0100><loc0200><loc0300><loc0400> TOTAL", "PaliGemma"),
    ("deepseek-ocr", "<|ref|>text<|/ref|><|det|>[[10, 20, 1200, 40]]<|/det|>\nTOTAL", "outside 0..999"),
    ("deepseek-ocr", "<|ref|>text<|/ref|><|det|>[[10, 20, 300", "unterminated"),
    ("deepseek-ocr", "<|ref|>text<|/ref|><|det|>[[10, 20, 30]]<|/det|>", "3 numbers"),
    ("llava-next", "TOTAL: [0.10, 0.20, 1.30, 0.40]", "outside 0..1"),
    ("llava-next", "TOTAL: [0.10, 0.20, 0.3", "unterminated"),
    ("llava-next", "<loc0100><loc0200><loc0300><loc0400> TOTAL", "PaliGemma"),
    ("qwen2.5", "<loc0100><loc0200><loc0300><loc0400> TOTAL", "PaliGemma"),
    ("qwen3", "TOTAL<loc_10><loc_20><loc_30><loc_40>", "Florence-2"),
]


@pytest.mark.parametrize(("family", "raw", "needle"), BAD)
def test_bad_output_is_a_parse_error_on_its_page_and_no_box_is_kept(family, raw, needle):
    plan = one_tile_plan(family)
    lines, errors = page_lines_from_outputs(plan, [TileOutput(tile=0, raw_text=raw)], page_index=3,
                                            where="bad.pdf (page 4)")
    assert lines == []
    assert errors and all(e.page == 3 and e.tile == 0 and e.code == "parse" for e in errors)
    assert any(needle in e.message for e in errors), [e.message for e in errors]
    assert all(e.message.startswith("bad.pdf (page 4)") for e in errors)


@pytest.mark.parametrize(("family", "raw"), [
    # y and x swapped: x_min/y_min printed where PaliGemma expects y_min/x_min -> y_max < y_min
    ("paligemma", "<loc0500><loc0100><loc0200><loc0900> TOTAL"),
    ("florence2", "TOTAL<loc_500><loc_100><loc_200><loc_900>"),
    ("deepseek-ocr", "<|ref|>TOTAL<|/ref|><|det|>[[500, 100, 200, 900]]<|/det|>"),
    ("llava-next", "TOTAL: [0.5, 0.1, 0.2, 0.9]"),
])
def test_inverted_box_is_reported_invalid_never_swapped(family, raw):
    lines, errors = page_lines_from_outputs(one_tile_plan(family), [TileOutput(tile=0, raw_text=raw)], page_index=0)
    assert lines == []
    assert [e.code for e in errors] == ["invalid_box"]


def test_paligemma_box_order_is_y_then_x():
    fam = get_family("paligemma")
    assert fam.model_to_encoded((256, 512, 768, 1024), (448, 448)) == (224.0, 112.0, 448.0, 336.0)
    assert fam.encoded_to_model((224.0, 112.0, 448.0, 336.0), (448, 448)) == (256.0, 512.0, 768.0, 1023.0)


def test_florence2_bins_dequantize_to_the_bin_centre():
    fam = get_family("florence2")
    # transformers Florence2PostProcessor.dequantize: (bin + 0.5) * size / 1000
    assert fam.model_to_encoded((0, 0, 999, 999), (768, 768)) == (0.384, 0.384, 767.616, 767.616)
    assert fam.encoded_to_model((100.0, 200.0, 300.0, 767.9), (768, 768)) == (130.0, 260.0, 390.0, 999.0)


def test_deepseek_divides_by_999_and_takes_the_text_after_the_det():
    fam = get_family("deepseek-ocr")
    parsed = fam.parse("<|ref|>title<|/ref|><|det|>[[0, 0, 999, 499]]<|/det|>\n# Receipt\n\n"
                       "<|ref|>text<|/ref|><|det|>[[10, 600, 500, 650], [10, 700, 500, 750]]<|/det|>\nTotal 12.50")
    assert parsed.errors == []
    assert [(i.label, i.text) for i in parsed.items] == [("title", "# Receipt"), ("text", "Total 12.50"),
                                                         ("text", "Total 12.50")]
    assert fam.model_to_encoded(parsed.items[0].box_model, (1024, 1024)) == (0.0, 0.0, 1024.0, 499 / 999 * 1024)


# --- raw outputs are kept and reparse re-reads them -----------------------------------------------------


class Canned(VlmEngine):
    """Answers every tile with `answer(tile image)`; the shared VLM pipeline does the rest."""

    name = "canned"

    def __init__(self, options, family, answer) -> None:
        super().__init__(options, family=family)
        self.answer = answer

    def generate_batch(self, requests: Sequence[TileRequest]) -> list[TileResponse]:
        return [TileResponse(text=self.answer(r)) for r in requests]

    def info(self) -> EngineInfo:
        return EngineInfo(name=self.name, family=self.family)


class ImagePage(SourcePage):
    """A SourcePage over an in-memory image."""

    def __init__(self, image: Image.Image) -> None:
        super().__init__(path="inbox/receipt.png", index=0, kind="image", width_px=image.width,
                         height_px=image.height, dpi=None, max_page_pixels=80_000_000)
        self._image = image

    def render(self) -> Image.Image:
        return self._image.copy()


def document(page: PageResult, family: str) -> DocumentResult:
    return DocumentResult(docvlm_version=__version__, status=page.status,
                          source=SourceInfo(path="inbox/receipt.png", sha256="0" * 64, kind="image", page_count=1),
                          engine=EngineInfo(name="canned", family=family), options_digest="x", pages=[page])


def test_wrong_convention_page_is_partial_raw_kept_and_reparse_with_the_right_family_recovers(tmp_path):
    from docvlm.engines.base import Task

    qwen_json = '[{"bbox_2d": [40, 40, 200, 80], "text_content": "TOTAL 12.50"}]'
    engine = Canned(make_options(max_visual_tokens=4096), "paligemma", lambda r: qwen_json)
    page_img = Image.new("RGB", (400, 400), "white")  # no text: one 448 square
    [page] = engine.process_pages([ImagePage(page_img)], Task(kind="read"))
    assert page.status == "partial" and page.lines == []
    assert page.outputs and all(o.raw_text == qwen_json for o in page.outputs)
    assert any(e.code == "parse" and "Qwen JSON" in e.message and "inbox/receipt.png (page 1)" in e.message
               for e in page.errors)
    # the stored result re-read as the family that really printed it: boxes in the plan's tile frame
    path = tmp_path / "r.json"
    path.write_text(document(page, "paligemma").model_dump_json())
    res = CliRunner().invoke(main, ["reparse", str(path), "--family", "qwen2.5", "-o", str(tmp_path / "o.json")])
    assert res.exit_code == 0, res.output
    again = DocumentResult.model_validate_json((tmp_path / "o.json").read_text())
    [ln] = again.pages[0].lines
    tile = page.plan.tiles[0]
    k = (tile.crop_page_px[2] - tile.crop_page_px[0]) / tile.encoded_size[0]
    assert ln.text == "TOTAL 12.50" and ln.bbox_page_px == pytest.approx((40 * k, 40 * k, 200 * k, 80 * k), abs=1e-3)


@pytest.mark.parametrize("family", FAMILY_NAMES)
def test_reparse_recomputes_every_family_from_stored_raw_outputs(family):
    truth = synthetic_truth(700, 1800)
    plan = plan_for(family, (700, 1800), text_line_px=7.0, tall=16.0)
    whole = [(t, b) for t, b in truth if any(contains(tile, b) for tile in plan.tiles)]
    outputs = [TileOutput(tile=t.index, raw_text=perfect_output(t, family, whole)) for t in plan.tiles]
    task = oracle_task(family)
    stale = [Line(text="stale", bbox_page_px=(0.0, 0.0, 1.0, 1.0), tile=0)]
    page = PageResult(index=0, width_px=700, height_px=1800, dpi=None, status="success", text_source="model",
                      lines=stale, plan=plan, outputs=outputs, prompt_id=f"{task}-{family}@1")
    after = reparse_result(document(page, family)).pages[0]
    assert {ln.text for ln in after.lines} == {t for t, _ in whole}
    assert after.errors == [] and after.status == "success"


# --- LLaVA-NeXT: AnyRes figures, frame, and text-to-OCR alignment ----------------------------------------


def test_anyres_best_resolution_and_tokens_match_the_processor_rules():
    assert select_best_resolution((672, 672)) == (672, 672)
    assert select_best_resolution((2000, 600)) == (1008, 336)
    # a 672 square: 336 thumbnail (576) + 48x48 grid features + 48 newline tokens
    assert anyres_tokens((672, 672)) == (576 + 48 * 48 + 48, 1.0)
    fam = get_family("llava-next")

    class Ip:
        image_grid_pinpoints = [[336, 672], [672, 336], [672, 672], [1008, 336], [336, 1008]]

    assert fam.processor_keeps(Ip(), (672, 672)) and not fam.processor_keeps(Ip(), (700, 700))


def ocr_lines() -> list[Line]:
    rows = ["STARBUCKS COFFEE", "Caffe Latte 4.50", "Blueberry Muffin 3.25", "TOTAL 7.75", "THANK YOU"]
    out = []
    for i, text in enumerate(rows):
        y = 20 + 30 * i
        x = 10
        words = []
        for w in text.split():
            words.append(Word(text=w, bbox_page_px=(float(x), float(y), float(x + 12 * len(w)), float(y + 18))))
            x += 12 * len(w) + 8
        out.append(Line(text=text, bbox_page_px=(10.0, float(y), float(x - 8), float(y + 18)), words=words))
    return out


def test_alignment_grounds_read_lines_on_ocr_words_and_reports_unseen_lines():
    ocr = ocr_lines()
    model = ["STARBUCKS COFFEE", "Caffe Late 4.50", "Blueberry Muffin", "TOTAL 7.75", "Visit us again soon"]
    result = align_lines(model, ocr)
    got = {ln.text: ln for ln in result.lines}
    assert set(got) == {"STARBUCKS COFFEE", "Caffe Late 4.50", "Blueberry Muffin", "TOTAL 7.75"}
    assert got["TOTAL 7.75"].bbox_page_px == ocr[3].bbox_page_px
    assert got["Caffe Late 4.50"].bbox_page_px == ocr[1].bbox_page_px  # misspelt word paired by similarity
    # only the model's words get boxes: the muffin line stops before the OCR's price
    assert got["Blueberry Muffin"].bbox_page_px[2] == ocr[2].words[1].bbox_page_px[2]
    assert result.ungrounded == ["Visit us again soon"]  # never a made-up box


def test_llava_read_page_gets_ocr_boxes_and_ungrounded_errors(monkeypatch):
    from docvlm.engines.base import Task

    ocr = ocr_lines()
    engine = Canned(make_options(max_visual_tokens=4096), "llava-next",
                    lambda r: "STARBUCKS COFFEE\nTOTAL 7.75\nFREE REFILL TODAY")
    monkeypatch.setattr(engine, "reference_lines", lambda image: ocr)
    [page] = engine.process_pages([ImagePage(Image.new("RGB", (300, 200), "white"))], Task(kind="read"))
    assert {ln.text: ln.bbox_page_px for ln in page.lines} == {"STARBUCKS COFFEE": ocr[0].bbox_page_px,
                                                               "TOTAL 7.75": ocr[3].bbox_page_px}
    [err] = page.errors
    assert err.code == "ungrounded" and "FREE REFILL TODAY" in err.message and page.status == "partial"


def test_llava_referring_box_is_relative_to_the_image():
    fam = get_family("llava-next")
    plan = one_tile_plan("llava-next", side=672)
    parsed = parse_output("the total: [0.25, 0.5, 0.75, 0.625]", "llava-next")
    assert parsed.errors == [] and parsed.items[0].label == "the total"
    lines, errors = page_lines_from_outputs(plan, [TileOutput(tile=0, raw_text="the total: [0.25, 0.5, 0.75, 0.625]")])
    assert errors == [] and lines[0].bbox_page_px == (224.0, 448.0, 672.0, 560.0)
    assert fam.grounds_documents is False


# --- registry wiring ------------------------------------------------------------------------------------


def test_registry_names_detection_and_cli_choices():
    assert tuple(FAMILY_NAMES) == ("qwen2", "qwen2.5", "qwen3", *NEW)
    assert family_for_model_type("paligemma") == "paligemma"
    assert family_for_model_type("llava_next") == "llava-next"
    assert family_for_model_type("qwen2_5_vl") == "qwen2.5"
    assert family_for_model_type("bert") is None
    for name, fam in [("google/paligemma2-3b-mix-448", "paligemma"), ("microsoft/Florence-2-large", "florence2"),
                      ("deepseek-ai/DeepSeek-OCR", "deepseek-ocr"), ("llava-hf/llava-v1.6-mistral-7b-hf", "llava-next"),
                      ("Qwen/Qwen2.5-VL-7B-Instruct", "qwen2.5"), ("qwen2.5vl:7b", "qwen2.5"),
                      ("Qwen/Qwen2-VL-2B-Instruct", "qwen2"), ("Qwen/Qwen3-VL-8B-Instruct", "qwen3"),
                      ("gpt-4o", None)]:
        assert family_for_served_name(name) == fam, name
    for cmd in ("convert", "plan", "ground", "reparse", "extract"):
        res = CliRunner().invoke(main, [cmd, "--help"])
        assert "llava-next" in res.output and "deepseek-ocr" in res.output, cmd


def test_plan_cli_for_every_new_family(tmp_path):
    img = Image.new("RGB", (800, 1100), "white")
    path = tmp_path / "p.png"
    img.save(path)
    for family in NEW:
        res = CliRunner().invoke(main, ["plan", str(path), "--family", family, "--json"])
        assert res.exit_code == 0, res.output
        import json

        payload = json.loads(res.output[res.output.index("{"):])
        plan = payload["pages"][0]["plan"]
        assert plan["family"] == family and plan["visual_tokens"] == sum(t["visual_tokens"] for t in plan["tiles"])
        assert payload["memory_note"]


def test_openai_engine_accepts_every_family():
    from docvlm.engines.openai import OpenAIEngine

    for model, fam in [("google/paligemma2-3b-mix-448", "paligemma"), ("microsoft/Florence-2-large", "florence2"),
                       ("deepseek-ai/DeepSeek-OCR", "deepseek-ocr"), ("llava-hf/llava-v1.6-mistral-7b-hf", "llava-next")]:
        eng = OpenAIEngine(make_options(engine="openai", base_url="http://127.0.0.1:9/v1", model=model))
        assert eng.resolve_family() == fam
