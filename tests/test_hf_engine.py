"""The hf engine on tiny checkpoints built by the tests (tests/tiny_models.py), through the real from_pretrained,
processor and generate path on CPU; plus the device/precision decision with fake hardware.

The text the tiny models print is garbage; the loading, the preprocessing at the planned size, the generation,
token counts, stop reasons, the plan and the statuses are real.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

from docvlm.datamodel import DocumentResult
from docvlm.engines.device import (
    GIB,
    SKIP_QUANT_MODULES,
    CudaDevice,
    HardwareFacts,
    count_safetensors_params,
    decide,
    estimate_params_from_config,
)
from docvlm.engines.vlm import TileRequest
from docvlm.errors import MissingExtraError, ModelLoadError, UsageError
from docvlm.options import make_options
from docvlm.plan import FAMILIES, plan_page, render_tile

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from docvlm.engines.hf import HfEngine, linearize_patch_embed, require_hf  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent

from tiny_models import SPECIAL_TOKENS, TINY_FAMILIES, build_tiny_checkpoint  # noqa: E402


@pytest.fixture(scope="session")
def tiny_dirs(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("tiny_qwen_vl")
    return {f: build_tiny_checkpoint(f, root / f.replace(".", "_")) for f in TINY_FAMILIES}


_ENGINES: dict[tuple, HfEngine] = {}


def engine_for(model_dir: Path, **opts) -> HfEngine:
    """One loaded engine per (dir, options) for the whole session: loading once is the engine's contract too."""
    opts = {"dtype": "fp32", **opts}  # fp32: the tiny models' fastest CPU path (bf16 is emulated in places)
    options = make_options(engine="hf", model=str(model_dir), device="cpu", max_new_tokens=6, batch_size=4, **opts)
    key = (str(model_dir), tuple(sorted(opts.items())))
    if key not in _ENGINES:
        _ENGINES[key] = HfEngine(options)
    return _ENGINES[key]


@pytest.fixture(scope="module")
def small_png(tmp_path_factory) -> Path:
    img = Image.new("RGB", (320, 200), "white")
    d = ImageDraw.Draw(img)
    for i in range(5):
        d.text((10, 10 + 30 * i), f"Total {i}.50 EUR", fill="black")
    path = tmp_path_factory.mktemp("pages") / "small.png"
    img.save(path)
    return path


# --- tiny checkpoints load through the real path ----------------------------------------------------------


@pytest.mark.parametrize("family", TINY_FAMILIES)
def test_tiny_checkpoint_tokenizer_has_the_real_special_tokens_in_order(tiny_dirs, family):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_dirs[family])
    ids = tok.convert_tokens_to_ids(list(SPECIAL_TOKENS))
    assert ids == list(range(ids[0], ids[0] + len(SPECIAL_TOKENS)))  # consecutive, in the released order
    assert tok.eos_token == "<|im_end|>" and tok.pad_token == "<|endoftext|>"
    enc = tok("<|box_start|>(1,2),(3,4)<|box_end|>").input_ids
    assert enc[0] == tok.convert_tokens_to_ids("<|box_start|>")


@pytest.mark.parametrize("family", TINY_FAMILIES)
def test_convert_document_end_to_end(tiny_dirs, family, small_png):
    from docvlm.pipeline import convert_document

    engine = engine_for(tiny_dirs[family])
    result = convert_document(small_png, engine.options, engine=engine)
    # a valid, JSON-round-trippable result
    again = DocumentResult.model_validate_json(result.model_dump_json())
    assert again == result
    assert result.engine.name == "hf" and result.engine.family == family
    assert result.engine.device == "cpu" and result.engine.quant == "none"
    assert "image-only processor" in result.engine.detail  # no torchvision here: built from its parts
    [page] = result.pages
    assert page.status in ("success", "partial") and page.text_source == "model"
    assert page.prompt_id == f"read-{family}@1"
    plan = page.plan
    assert plan is not None and plan.family == family
    assert sorted(o.tile for o in page.outputs) == [t.index for t in plan.tiles]
    for out, tile in zip(sorted(page.outputs, key=lambda o: o.tile), plan.tiles, strict=True):
        assert out.stop_reason in ("eos", "length", "repetition")
        assert 1 <= out.generated_tokens <= 6
        assert out.prompt_tokens > tile.visual_tokens  # image pads + chat template + prompt
        if out.stop_reason != "eos":
            assert out.retried  # the guard retried the runaway tile once
    for e in page.errors:  # garbage text: parse/runaway errors are expected, engine failures are not
        assert e.code in ("parse", "runaway", "invalid_box"), e


def test_convert_a_real_sample_pdf(tiny_dirs, samples_dir):
    sample = samples_dir / "invoice.pdf"
    if not sample.is_file():
        pytest.skip(f"{sample} not generated yet")
    from docvlm.pipeline import convert_document

    # x-height threshold 5 px: a quarter of the default pixels, so the tiny model reads 2-3 tiles, not 16
    engine = engine_for(tiny_dirs["qwen2.5"], max_visual_tokens=1024, min_text_px=10.0)
    opts = engine.options.model_copy(update={"pages": "1"})
    result = convert_document(sample, opts, engine=engine)
    [page] = result.pages
    assert page.plan.text_height_source == "text_layer"
    assert len(page.outputs) == len(page.plan.tiles)
    assert page.plan.mode == "tiled" and all(t.visual_tokens <= 1024 for t in page.plan.tiles)
    assert page.status in ("success", "partial") and page.dpi


@pytest.mark.parametrize("family", TINY_FAMILIES)
def test_processor_keeps_the_planned_encoded_size(tiny_dirs, family):
    """image_grid_thw * patch must equal the planned encoded size: nothing resizes our images out of sight."""
    engine = engine_for(tiny_dirs[family])
    patch = FAMILIES[family].patch_size
    page = Image.new("RGB", (1237, 1751), "white")
    sizes = [(500, 300), (1237, 1751), (333, 2900)]
    tiles = []
    for w, h in sizes:
        plan = plan_page((w, h), family, x_height_px=7.3, max_visual_tokens=300)
        tiles.extend(plan.tiles)
    requests = [TileRequest(image=render_tile(page, t), prompt="Read.") for t in tiles]
    assert len({r.image.size for r in requests}) >= 2  # different sizes in one batch
    inputs = engine.prepare_inputs(requests)
    grids = inputs["image_grid_thw"].tolist()
    for tile, (t, gh, gw) in zip(tiles, grids, strict=True):
        assert t == 1
        assert (gw * patch, gh * patch) == tuple(tile.encoded_size)
        assert (gw // 2) * (gh // 2) == tile.visual_tokens
    image_pad = engine._processor.tokenizer.convert_tokens_to_ids("<|image_pad|>")
    pads = (inputs["input_ids"] == image_pad).sum(dim=1).tolist()
    assert pads == [t.visual_tokens for t in tiles]
    assert (inputs["attention_mask"][:, -1] == 1).all()  # left padding: every row ends with a real token
    # without the engine's per-call budget the checkpoint's own (narrow) min/max pixels would resize them
    default = engine._processor.image_processor(images=[r.image for r in requests], return_tensors="pt")
    assert default["image_grid_thw"].tolist() != grids


def test_batched_generate_returns_one_response_per_request_in_order(tiny_dirs):
    engine = engine_for(tiny_dirs["qwen2"])
    images = [Image.new("RGB", (56 * k, 56), "white") for k in (1, 2, 3)]
    reqs = [TileRequest(image=im, prompt="Read the text.", max_new_tokens=5) for im in images]
    batch = engine.generate_batch(reqs)
    single = [engine.generate_batch([r])[0] for r in reqs]
    assert len(batch) == 3
    assert [r.prompt_tokens for r in batch] == [r.prompt_tokens for r in single]
    assert [r.prompt_tokens for r in batch] == sorted(r.prompt_tokens for r in batch)  # more pixels, more tokens
    assert [r.text for r in batch] == [r.text for r in single]  # greedy, left padding: same answer as alone
    assert all(r.error is None and 1 <= r.generated_tokens <= 5 for r in batch)


def test_4bit_on_cpu_loads_and_generates(tiny_dirs):
    pytest.importorskip("bitsandbytes")
    pytest.importorskip("accelerate")
    engine = engine_for(tiny_dirs["qwen2"], quant="4bit")
    try:
        engine.load()
    except ModelLoadError as exc:  # pragma: no cover - only where bitsandbytes has no CPU kernels
        pytest.skip(f"bitsandbytes cannot run 4-bit on this CPU: {exc}")
    names = engine.quantized_module_names()
    assert names and all(n.startswith("model.language_model.") for n in names)
    assert not any(n.startswith(SKIP_QUANT_MODULES) for n in names)  # vision tower and lm_head kept
    [resp] = engine.generate_batch([TileRequest(image=Image.new("RGB", (112, 84), "white"), prompt="Read.",
                                                max_new_tokens=4)])
    assert resp.error is None and resp.generated_tokens >= 1 and resp.prompt_tokens > 12
    info = engine.info()
    assert info.quant == "4bit" and "0 of them in model.visual" in info.detail


def test_family_comes_from_the_config_and_other_models_are_refused(tiny_dirs, tmp_path):
    assert engine_for(tiny_dirs["qwen3"]).resolve_family() == "qwen3"
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "llama", "hidden_size": 64}))
    with pytest.raises(ModelLoadError, match="qwen2_vl"):
        HfEngine(make_options(engine="hf", model=str(tmp_path))).resolve_family()
    with pytest.raises(ModelLoadError, match="cannot read the model config"):
        HfEngine(make_options(engine="hf", model=str(tmp_path / "missing"))).resolve_family()
    with pytest.raises(UsageError, match="--model"):
        HfEngine(make_options(engine="hf"))


def test_missing_extras_name_the_pip_command(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "transformers" else real(name))
    with pytest.raises(MissingExtraError, match=r"pip install 'docvlm\[hf\]'"):
        require_hf()
    with pytest.raises(MissingExtraError, match=r"bitsandbytes is not installed: pip install 'docvlm\[gpu\]'"):
        decide(device="cpu", dtype="auto", quant="4bit", param_count=None, facts=HardwareFacts())


def test_importing_the_engine_modules_does_not_import_torch():
    code = ("import sys, docvlm.engines.hf, docvlm.engines.vlm, docvlm.engines.device; "
            "print('torch' in sys.modules, 'transformers' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_cli_convert_with_the_hf_engine(tiny_dirs, small_png, tmp_path):
    from click.testing import CliRunner

    from docvlm.cli import main

    out = tmp_path / "out"
    res = CliRunner().invoke(main, ["convert", str(small_png), "-o", str(out), "--engine", "hf", "--model",
                                    str(tiny_dirs["qwen2.5"]), "--device", "cpu", "--max-new-tokens", "4"])
    assert res.exit_code in (0, 1), res.output
    [written] = [p for p in out.rglob("*.json") if p.name == small_png.name + ".json"]
    result = DocumentResult.model_validate_json(written.read_text())
    assert result.engine.name == "hf" and result.pages[0].plan is not None and result.pages[0].outputs


# --- the device decision with fake hardware -------------------------------------------------------------

A100 = CudaDevice(0, "NVIDIA A100-SXM4-80GB", (8, 0), 80 * GIB, 78 * GIB)
RTX3060 = CudaDevice(0, "NVIDIA GeForce RTX 3060", (8, 6), 12 * GIB, 11 * GIB)
T4 = CudaDevice(0, "Tesla T4", (7, 5), 16 * GIB, 15 * GIB)
B2, B7 = 2_200_000_000, 8_300_000_000


def _d(facts, device="auto", dtype="auto", quant="auto", params=B7):
    return decide(device=device, dtype=dtype, quant=quant, param_count=params, facts=facts)


def test_cpu_decisions():
    d = _d(HardwareFacts(cpu_bf16=True))
    assert (d.device, d.dtype, d.quant, d.device_memory_bytes) == ("cpu", "bf16", "none", None)
    assert "no CUDA GPU" in d.reason and "bf16" in d.reason
    assert _d(HardwareFacts(cpu_bf16=False)).dtype == "fp32"
    assert _d(HardwareFacts(cuda=(A100,), cpu_bf16=True), device="cpu").device == "cpu"
    d4 = _d(HardwareFacts(bitsandbytes=True), device="cpu", quant="4bit")
    assert d4.quant == "4bit" and d4.dtype == "fp32"


def test_gpu_decisions():
    big = _d(HardwareFacts(cuda=(A100,), bitsandbytes=True))
    assert (big.device, big.dtype, big.quant) == ("cuda:0", "bf16", "none")
    assert big.device_memory_bytes == 80 * GIB and "8.0 >= 8.0" in big.reason
    small = _d(HardwareFacts(cuda=(RTX3060,), bitsandbytes=True))
    assert (small.dtype, small.quant) == ("bf16", "4bit") and "NF4" in small.reason and "free" in small.reason
    assert _d(HardwareFacts(cuda=(RTX3060,), bitsandbytes=True), params=B2).quant == "none"
    old = _d(HardwareFacts(cuda=(T4,), bitsandbytes=True), params=B2)
    assert (old.dtype, old.quant) == ("fp16", "none") and "7.5 < 8.0" in old.reason
    assert _d(HardwareFacts(cuda=(T4,), bitsandbytes=True), params=None).quant == "none"  # unknown size
    assert _d(HardwareFacts(cuda=(A100,), bitsandbytes=True), quant="8bit").quant == "8bit"
    assert _d(HardwareFacts(cuda=(A100,), bitsandbytes=True), dtype="fp32").dtype == "fp32"
    with pytest.raises(MissingExtraError, match="docvlm\\[gpu\\]"):
        _d(HardwareFacts(cuda=(RTX3060,), bitsandbytes=False))  # needs 4-bit, bitsandbytes absent


def test_gpu_selection_and_bad_devices():
    busy = CudaDevice(0, "GPU0", (8, 9), 24 * GIB, 2 * GIB)
    idle = CudaDevice(1, "GPU1", (8, 9), 24 * GIB, 23 * GIB)
    facts = HardwareFacts(cuda=(busy, idle), bitsandbytes=True)
    assert _d(facts).device == "cuda:1"
    assert _d(facts, device="cuda").device == "cuda:0"
    assert _d(facts, device="cuda:0").quant == "4bit"  # 2 GiB free is not enough for 7B in bf16
    with pytest.raises(UsageError, match="only 2 CUDA device"):
        _d(facts, device="cuda:5")
    with pytest.raises(UsageError, match="no CUDA GPU"):
        _d(HardwareFacts(), device="cuda")
    with pytest.raises(UsageError, match="auto, cpu, cuda"):
        _d(HardwareFacts(), device="tpu")
    assert _d(facts) == _d(facts)  # pure


def test_parameter_estimates(tiny_dirs):
    from transformers import AutoConfig, Qwen2VLConfig

    cfg = Qwen2VLConfig(
        text_config={"hidden_size": 1536, "intermediate_size": 8960, "num_hidden_layers": 28,
                     "num_attention_heads": 12, "num_key_value_heads": 2, "vocab_size": 151936},
        vision_config={"depth": 32, "embed_dim": 1280, "hidden_size": 1536, "num_heads": 16, "mlp_ratio": 4},
        tie_word_embeddings=True,
    )
    assert 2.0e9 < estimate_params_from_config(cfg) < 2.4e9  # Qwen2-VL-2B has 2.21B parameters
    model_dir = tiny_dirs["qwen2"]
    counted = count_safetensors_params(model_dir)
    from safetensors import safe_open

    with safe_open(str(model_dir / "model.safetensors"), "pt") as fh:
        assert counted == sum(fh.get_tensor(k).numel() for k in fh.keys())
    tiny_estimate = estimate_params_from_config(AutoConfig.from_pretrained(model_dir))
    assert 0.5 < tiny_estimate / counted < 2.0


@pytest.mark.parametrize("family", TINY_FAMILIES)
def test_patch_embed_as_matmul_is_exact(tiny_dirs, family):
    from transformers import AutoModelForImageTextToText

    model = AutoModelForImageTextToText.from_pretrained(tiny_dirs[family], dtype=torch.float32).eval()
    patch = FAMILIES[family].patch_size
    grid = torch.tensor([[1, 4, 6]])
    pixels = torch.randn(24, 3 * 2 * patch * patch)
    with torch.inference_mode():
        before = model.model.visual.patch_embed(pixels)
        assert linearize_patch_embed(model)
        after = model.model.visual.patch_embed(pixels)
        assert model.model.get_image_features(pixels, grid) is not None
    assert torch.allclose(before, after, atol=1e-5, rtol=1e-5)
