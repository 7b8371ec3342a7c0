"""The hf engine on tiny PaliGemma, Florence-2 and LLaVA-NeXT checkpoints (tests/tiny_families.py), through the real
from_pretrained, processor and generate path on CPU: family detection from the config, the planned squares
reaching the model unresized, the plan's visual-token figures equal to the image tokens the processor inserts,
and a converted page with its raw outputs kept.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

from docvlm.engines.vlm import TileRequest
from docvlm.errors import DocvlmError
from docvlm.options import make_options
from docvlm.plan import render_tile

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from tiny_families import build_tiny_florence2, build_tiny_llava_next, build_tiny_paligemma  # noqa: E402

from docvlm.engines.hf import HfEngine  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
FAMILIES = ["paligemma", "florence2", "llava-next"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("tiny_families")
    return {"paligemma": build_tiny_paligemma(root / "paligemma", side=224),
            "llava-next": build_tiny_llava_next(root / "llava_next"),
            "florence2": build_tiny_florence2(root / "florence2")}


_ENGINES: dict[str, HfEngine] = {}


def engine(tiny, family: str) -> HfEngine:
    if family not in _ENGINES:
        _ENGINES[family] = HfEngine(make_options(engine="hf", model=str(tiny[family]), device="cpu", dtype="fp32",
                                                 max_new_tokens=4, batch_size=2))
    return _ENGINES[family]


def page_image(width: int = 500, height: int = 700) -> Image.Image:
    img = Image.new("RGB", (width, height), "white")
    d = ImageDraw.Draw(img)
    for i in range(12):
        d.text((20, 20 + 50 * i), f"Item {i} coffee {i * 1.5:.2f} EUR", fill="black")
    return img


@pytest.mark.parametrize("family", FAMILIES)
def test_family_comes_from_the_checkpoint_config(tiny, family):
    eng = engine(tiny, family)
    assert eng.resolve_family() == family
    if family == "paligemma":
        assert eng.family_policy().side == 224  # vision_config.image_size, not the registry's 448 default


@pytest.mark.parametrize("family", FAMILIES)
def test_plan_tokens_equal_the_image_tokens_the_processor_inserts(tiny, family):
    eng = engine(tiny, family)
    policy = eng.family_policy()
    image = page_image()
    plan = policy.plan(image.size, text_line_px=12.0, min_text_px=16.0, max_visual_tokens=None, task_kind="read",
                       text_height_source="detector", line_height_px=14.0, device_memory_bytes=None)
    tiles = plan.tiles[:2]
    requests = [TileRequest(image=render_tile(image, t), prompt="read the text") for t in tiles]
    inputs = eng.prepare_inputs(requests)
    image_id = eng._processor.image_token_id if hasattr(eng._processor, "image_token_id") else None
    assert image_id is not None
    for row, tile in zip(inputs["input_ids"].tolist(), tiles, strict=True):
        # 256 (PaliGemma 224) / 577 (Florence-2 768) / 2928 (LLaVA-NeXT 672 square)
        assert row.count(image_id) == tile.visual_tokens
    assert inputs["pixel_values"].shape[-1] in (224, 336, 768)


@pytest.mark.parametrize("family", FAMILIES)
def test_a_tile_the_processor_would_resize_is_refused(tiny, family):
    eng = engine(tiny, family)
    with pytest.raises(DocvlmError, match="resized or padded"):
        eng.prepare_inputs([TileRequest(image=Image.new("RGB", (300, 200), "white"), prompt="x")])


@pytest.mark.parametrize("family", FAMILIES)
def test_generate_batch_answers_each_planned_square(tiny, family):
    eng = engine(tiny, family)
    side = eng.family_policy().plan((300, 300), text_line_px=None, min_text_px=16.0, max_visual_tokens=None,
                                    task_kind="read", text_height_source=None, line_height_px=None,
                                    device_memory_bytes=None).tiles[0]
    image = render_tile(page_image(300, 300), side)
    responses = eng.generate_batch([TileRequest(image=image, prompt="read the text", max_new_tokens=4)] * 2)
    assert len(responses) == 2
    for r in responses:
        assert r.error is None and r.prompt_tokens > side.visual_tokens and 1 <= r.generated_tokens <= 4
    assert responses[0].text == responses[1].text  # greedy, batched with left padding


@pytest.mark.slow
@pytest.mark.parametrize("family", FAMILIES)
def test_convert_through_generate_keeps_raw_outputs_per_planned_tile(tiny, family, tmp_path):
    from click.testing import CliRunner

    from docvlm.cli import main

    src = tmp_path / "page.png"
    page_image(420, 600).save(src)
    out = tmp_path / "out"
    res = CliRunner().invoke(main, ["convert", str(src), "--engine", "hf", "--model", str(tiny[family]),
                                    "--device", "cpu", "--dtype", "fp32", "--max-new-tokens", "4", "-o", str(out)])
    assert res.exit_code in (0, 1), res.output  # garbage text from random weights: partial pages are expected
    result = json.loads((out / "page.png.json").read_text())
    assert result["engine"]["family"] == family
    [page] = result["pages"]
    assert page["status"] != "failure", page["errors"]
    plan = page["plan"]
    assert plan["family"] == family and all(t["encoded_size"][0] == t["encoded_size"][1] for t in plan["tiles"])
    assert sorted(o["tile"] for o in page["outputs"]) == [t["index"] for t in plan["tiles"]]
    for o, t in zip(sorted(page["outputs"], key=lambda o: o["tile"]), plan["tiles"], strict=True):
        assert o["prompt_tokens"] > t["visual_tokens"] and o["generated_tokens"] >= 1
