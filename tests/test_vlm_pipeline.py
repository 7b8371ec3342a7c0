"""The shared VLM path (VlmEngine.process_pages) with a scripted engine: batching, the runaway guard, task kinds,
and the end-to-end geometry of plan + parse + page mapping for tiled plans.

The scripted engine is a real `VlmEngine` subclass whose `generate_batch` returns canned text; everything after
it (planning, tile rendering, prompts, guard, parser, geometry, merging) is the production code.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence

import pytest
from PIL import Image, ImageDraw

from docvlm.datamodel import EngineInfo
from docvlm.engines.base import Task
from docvlm.engines.vlm import (
    RETRY_REPETITION_PENALTY,
    TileRequest,
    TileResponse,
    VlmEngine,
    detect_repetition,
    runaway_reason,
)
from docvlm.geometry import page_to_model
from docvlm.options import make_options
from docvlm.plan import plan_for_page
from docvlm.sources import SourcePage

Script = Callable[[TileRequest, int], TileResponse]


class ImagePage(SourcePage):
    """A SourcePage over an in-memory image."""

    def __init__(self, image: Image.Image, index: int = 0, path: str = "mem.png") -> None:
        super().__init__(path=path, index=index, kind="image", width_px=image.width, height_px=image.height,
                         dpi=None, max_page_pixels=80_000_000)
        self._image = image

    def render(self) -> Image.Image:
        return self._image.copy()


class ScriptedVlm(VlmEngine):
    """generate_batch answers each request with `script(request, call_number)`; calls are recorded."""

    name = "scripted-vlm"

    def __init__(self, options, family, script: Script) -> None:
        super().__init__(options, family=family)
        self.script = script
        self.batches: list[list[TileRequest]] = []
        self.n = 0

    def generate_batch(self, requests: Sequence[TileRequest]) -> list[TileResponse]:
        self.batches.append(list(requests))
        out = []
        for r in requests:
            out.append(self.script(r, self.n))
            self.n += 1
        return out

    def info(self) -> EngineInfo:
        return EngineInfo(name=self.name, family=self.family)


def text_page(width: int = 400, height: int = 300, lines: int = 5, index: int = 0) -> ImagePage:
    img = Image.new("RGB", (width, height), "white")
    d = ImageDraw.Draw(img)
    for i in range(lines):
        d.text((10, 10 + i * 24), f"Item {i} coffee 2.50 EUR", fill="black")
    return ImagePage(img, index=index)


CLEAN = '[{"bbox_2d": [10, 10, 100, 30], "text_content": "Item 0 coffee"}]'
LOOP = '[{"bbox_2d": [10, 10, 100, 30], "text_content": "a"}, ' + '{"bbox_2d": [1, 2, 3, 4], "text_content": "x"}, ' * 12


# --- detect_repetition -------------------------------------------------------------------------------------


def test_detect_repetition_finds_a_tail_loop_even_cut_mid_unit():
    text = "TOTAL 12.50\n" + "<|box_start|>(10,20),(30,40)<|box_end|>" * 6 + "<|box_sta"
    rep = detect_repetition(text)
    assert rep is not None
    assert rep.unit_chars == len("<|box_start|>(10,20),(30,40)<|box_end|>")
    assert rep.count >= 6
    assert detect_repetition("the the the " * 40) is not None
    assert detect_repetition("." * 300) is not None


def test_detect_repetition_ignores_normal_document_text():
    receipt = "\n".join(
        [f'{{"bbox_2d": [12, {40 + 30 * i}, 388, {60 + 30 * i}], "text_content": "item {i} {i * 1.25:.2f}"}}'
         for i in range(40)]
    )
    assert detect_repetition(receipt) is None
    assert detect_repetition("=" * 48 + "\nTOTAL 12.50\n" + "-" * 48) is None  # receipt rules
    assert detect_repetition("Total .......................... 12.00") is None
    assert detect_repetition("short") is None


def test_runaway_reason():
    assert runaway_reason(TileResponse(text=CLEAN)) is None
    assert runaway_reason(TileResponse(text=CLEAN, stop_reason="length")) == "length"
    assert runaway_reason(TileResponse(text=LOOP)) == "repetition"
    assert runaway_reason(TileResponse(text="", stop_reason="error", error="boom")) is None


# --- the guard through process_pages ----------------------------------------------------------------------


def _run(script: Script, pages, task=Task(), family="qwen2.5", **opts):
    options = make_options(engine="hf", model="scripted", max_new_tokens=64, **opts)
    engine = ScriptedVlm(options, family, script)
    return engine, engine.process_pages(pages, task)


def test_loop_is_retried_once_with_a_penalty_and_the_clean_retry_is_kept():
    def script(req: TileRequest, n: int) -> TileResponse:
        if req.repetition_penalty is None:
            return TileResponse(text=LOOP, generated_tokens=64, stop_reason="eos")
        return TileResponse(text=CLEAN, generated_tokens=20)

    engine, [page] = _run(script, [text_page()])
    assert [len(b) for b in engine.batches] == [1, 1]
    assert engine.batches[1][0].repetition_penalty == RETRY_REPETITION_PENALTY
    assert engine.batches[0][0].repetition_penalty is None
    assert page.status == "success", page.errors
    [out] = page.outputs
    assert out.retried and out.stop_reason == "eos" and out.raw_text == CLEAN
    assert [line.text for line in page.lines] == ["Item 0 coffee"]


def test_loop_that_survives_the_retry_makes_the_page_partial():
    engine, [page] = _run(lambda req, n: TileResponse(text=LOOP, stop_reason="length"), [text_page()])
    assert len(engine.batches) == 2  # first pass + exactly one retry
    assert page.status == "partial"
    assert [e.code for e in page.errors if e.code == "runaway"] == ["runaway"]
    runaway = next(e for e in page.errors if e.code == "runaway")
    assert "mem.png (page 1)" in runaway.message and "tile 0" in runaway.message
    [out] = page.outputs
    assert out.stop_reason == "repetition" and out.retried
    assert page.lines  # the complete objects before the loop are still read


def test_length_stop_is_retried_and_reported():
    def script(req, n):
        return TileResponse(text='[{"bbox_2d": [10, 10, 100, 30], "text_content": "Item"}, {"bbox_2d": [1',
                            stop_reason="length")

    engine, [page] = _run(script, [text_page()])
    assert len(engine.batches) == 2
    assert page.status == "partial"
    assert page.outputs[0].stop_reason == "length"
    codes = {e.code for e in page.errors}
    assert "runaway" in codes and "parse" in codes  # truncated JSON is also reported by the parser
    assert [line.text for line in page.lines] == ["Item"]


def test_failed_tiles_fail_the_page_and_keep_going():
    def script(req, n):
        return TileResponse(text="", stop_reason="error", error="server said 500")

    engine, pages = _run(script, [text_page(index=0), text_page(index=1)])
    assert len(engine.batches) == 1  # errors are not retried by the guard (the engine retries transport itself)
    assert [p.status for p in pages] == ["failure", "failure"]
    assert pages[1].errors[0].code == "engine" and "page 2" in pages[1].errors[0].message
    assert pages[0].outputs[0].stop_reason == "error"


def test_tiles_of_several_pages_are_batched_by_batch_size():
    long_page = text_page(600, 2400, lines=60, index=0)
    short_page = text_page(index=1)
    engine, pages = _run(lambda r, n: TileResponse(text="[]"), [long_page, short_page],
                         batch_size=3, max_visual_tokens=300)
    n_tiles = sum(len(p.plan.tiles) for p in pages)
    assert len(pages[0].plan.tiles) > 1 and pages[0].plan.mode == "tiled"
    sizes = [len(b) for b in engine.batches]
    assert sum(sizes) == n_tiles and max(sizes) == 3
    assert any(len({id(r) for r in b}) == len(b) for b in engine.batches)
    # every request image is exactly its tile's planned encoded size, in plan order
    planned = [t.encoded_size for p in pages for t in p.plan.tiles]
    assert [r.image.size for b in engine.batches for r in b] == planned
    assert all(p.status == "success" and p.prompt_id == "read-qwen2.5@1" and p.text_source == "model"
               for p in pages)
    assert [len(p.outputs) for p in pages] == [len(p.plan.tiles) for p in pages]


def test_ground_task_puts_the_query_in_the_prompt_and_labels_the_lines():
    seen = []

    def script(req, n):
        seen.append(req.prompt)
        return TileResponse(text="<|object_ref_start|>the total<|object_ref_end|><|box_start|>(100,200),(500,300)"
                                 "<|box_end|>")

    engine, [page] = _run(script, [text_page()], task=Task(kind="ground", query="the total"), family="qwen2")
    assert "the total" in seen[0]
    assert page.prompt_id.startswith("ground-qwen2@")
    [line] = page.lines
    assert line.label == "the total"
    x0, y0, x1, y1 = line.bbox_page_px
    assert (x0, y0, x1, y1) == pytest.approx((40, 60, 200, 90), abs=0.5)  # 0-1000 grid of a native 400x300 page


def test_extract_task_keeps_raw_outputs_and_plan_with_thumbnail():
    raw = '{"total": {"value": "12.50", "bbox_2d": [1, 2, 3, 4]}}'
    engine, [page] = _run(lambda r, n: TileResponse(text=raw), [text_page(600, 2400, lines=60)],
                          task=Task(kind="extract", schema_name="receipt", fields_schema='{"type": "object"}'),
                          max_visual_tokens=300)
    assert page.plan.mode == "tiled" and page.plan.tiles[-1].kind == "thumbnail"
    assert len(page.outputs) == len(page.plan.tiles)
    assert all(o.raw_text == raw for o in page.outputs)
    assert page.lines == [] and page.status == "success"
    assert page.prompt_id.startswith("extract-")


# --- end-to-end geometry: an oracle model's answer comes back to the right page pixels --------------------


@pytest.mark.parametrize("family", ["qwen2.5", "qwen2", "qwen3"])
def test_oracle_answers_on_a_tiled_plan_come_back_to_page_pixels(family):
    width, height = 700, 2600
    img = Image.new("RGB", (width, height), "white")
    d = ImageDraw.Draw(img)
    truth = []
    for i in range(40):
        y = 30 + i * 62
        box = (40 + (i * 37) % 200, y, 400 + (i * 53) % 250, y + 22)
        d.rectangle(box, outline="black")
        d.text((box[0] + 4, y + 5), f"LINE {i:02d}", fill="black")
        truth.append((f"LINE {i:02d}", box))
    page = ImagePage(img)
    options = make_options(engine="hf", model="oracle", max_visual_tokens=400, max_new_tokens=4096, batch_size=2)
    plan = plan_for_page(page, options, family, "read")
    assert plan.mode == "tiled" and len(plan.tiles) > 2
    tiles = list(plan.tiles)

    def answer(tile) -> str:
        cx0, cy0, cx1, cy1 = tile.crop_page_px
        inside = [(t, b) for t, b in truth if b[0] >= cx0 and b[1] >= cy0 and b[2] <= cx1 and b[3] <= cy1]
        if family == "qwen2":
            return "".join(f"<|object_ref_start|>{t}<|object_ref_end|><|box_start|>({int(m[0])},{int(m[1])}),"
                           f"({int(m[2])},{int(m[3])})<|box_end|>\n"
                           for t, b in inside for m in [page_to_model(b, tile, family)])
        objs = [{"bbox_2d": [int(v) for v in page_to_model(b, tile, family)], "text_content": t} for t, b in inside]
        return "```json\n" + json.dumps(objs) + "\n```"

    def script(req, n):
        tile = tiles[n]
        assert req.image.size == tuple(tile.encoded_size)
        return TileResponse(text=answer(tile))

    engine, [result] = _run(script, [page], family=family, max_visual_tokens=400, batch_size=2)
    assert result.plan == plan
    assert result.status == "success", result.errors
    got = {line.text: line.bbox_page_px for line in result.lines}
    assert sorted(got) == [t for t, _ in truth]  # each line once: duplicates from overlaps merged
    for text, box in truth:
        tile = tiles[next(line.tile for line in result.lines if line.text == text)]
        if family == "qwen2.5":
            tol_x = tol_y = 1.0  # one pixel
        else:  # one grid unit of the tile, in page pixels
            tol_x = (tile.crop_page_px[2] - tile.crop_page_px[0]) / 1000 + 1e-6
            tol_y = (tile.crop_page_px[3] - tile.crop_page_px[1]) / 1000 + 1e-6
        gx0, gy0, gx1, gy1 = got[text]
        assert abs(gx0 - box[0]) <= tol_x and abs(gx1 - box[2]) <= tol_x, (text, got[text], box)
        assert abs(gy0 - box[1]) <= tol_y and abs(gy1 - box[3]) <= tol_y, (text, got[text], box)
