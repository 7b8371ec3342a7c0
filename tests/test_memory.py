"""The memory estimate of `docvlm plan`: parameter counts, config reading, the parts, the device warning."""

from __future__ import annotations

import json

import pytest

from docvlm.memory import (
    GIB,
    KNOWN_MODELS,
    estimate_memory,
    find_model_shape,
    kv_cache_bytes,
    shape_from_config,
    weights_bytes,
)


def _hf_config(shape):
    """The transformers config of a ModelShape (what the released config.json holds)."""
    import transformers as tf

    text = dict(vocab_size=shape.vocab, hidden_size=shape.hidden, intermediate_size=shape.intermediate,
                num_hidden_layers=shape.layers, num_attention_heads=shape.heads, num_key_value_heads=shape.kv_heads,
                tie_word_embeddings=shape.tied)
    if shape.family == "qwen2":
        vision = dict(depth=shape.v_depth, embed_dim=shape.v_hidden, mlp_ratio=shape.v_intermediate // shape.v_hidden,
                      num_heads=shape.v_heads, hidden_size=shape.v_out, patch_size=shape.patch)
        return tf.Qwen2VLForConditionalGeneration, tf.Qwen2VLConfig(text_config=text, vision_config=vision,
                                                                    tie_word_embeddings=shape.tied)
    vision = dict(depth=shape.v_depth, hidden_size=shape.v_hidden, intermediate_size=shape.v_intermediate,
                  num_heads=shape.v_heads, out_hidden_size=shape.v_out, patch_size=shape.patch)
    if shape.family == "qwen2.5":
        return tf.Qwen2_5_VLForConditionalGeneration, tf.Qwen2_5_VLConfig(text_config=text, vision_config=vision,
                                                                          tie_word_embeddings=shape.tied)
    text["head_dim"] = shape.head_dim
    return tf.Qwen3VLForConditionalGeneration, tf.Qwen3VLConfig(text_config=text, vision_config=vision,
                                                                tie_word_embeddings=shape.tied)


@pytest.mark.parametrize("hub_id", ["Qwen/Qwen2-VL-2B-Instruct", "Qwen/Qwen2.5-VL-3B-Instruct",
                                    "Qwen/Qwen2.5-VL-7B-Instruct", "Qwen/Qwen3-VL-2B-Instruct"])
def test_parameter_count_equals_transformers(hub_id, tmp_path):
    """The count from the shape equals the real architecture's (built on the meta device: no memory)."""
    torch = pytest.importorskip("torch")
    shape = KNOWN_MODELS[hub_id.lower()]
    cls, cfg = _hf_config(shape)
    with torch.device("meta"):
        model = cls(cfg)
    real = sum(p.numel() for p in model.parameters())
    assert abs(shape.params / real - 1) < 1e-3, (shape.params, real)
    # and the config.json transformers writes reads back to the same shape
    cfg.save_pretrained(tmp_path)
    found, source = find_model_shape(str(tmp_path), "qwen2.5")
    assert found is not None and source.endswith("config.json")
    assert found.family == shape.family and found.params == pytest.approx(shape.params, rel=1e-3)


def test_known_sizes_and_unknown_model(tmp_path):
    sizes = {k: s.params / 1e9 for k, s in KNOWN_MODELS.items()}
    assert 2.1 < sizes["qwen/qwen2-vl-2b-instruct"] < 2.3
    assert 8.2 < sizes["qwen/qwen2.5-vl-7b-instruct"] < 8.4
    assert 70 < sizes["qwen/qwen2.5-vl-72b-instruct"] < 75
    shape, why = find_model_shape("someone/unknown-model", "qwen2")
    assert shape is None and "not a known hub id" in why
    (tmp_path / "config.json").write_text("{not json")
    shape, why = find_model_shape(str(tmp_path), "qwen2")
    assert shape is None and "not a Qwen-VL config" in why
    default, origin = find_model_shape(None, "qwen3")
    assert default is not None and default.family == "qwen3" and "default model" in origin


def test_parts_of_the_estimate():
    s = KNOWN_MODELS["qwen/qwen2-vl-2b-instruct"]
    # KV cache: 2 (k, v) x 28 layers x 2 kv heads x 128 dims x 2 bytes per token
    assert kv_cache_bytes(s, 1000, "bf16", 1) == 2 * 28 * 2 * 128 * 2 * 1000
    assert kv_cache_bytes(s, 1000, "bf16", 8) == 8 * kv_cache_bytes(s, 1000, "bf16", 1)
    bf16 = weights_bytes(s, "bf16", "none")
    assert bf16 == pytest.approx(2 * s.params, rel=1e-6)
    nf4 = weights_bytes(s, "bf16", "4bit")
    assert 0.3 * bf16 < nf4 < 0.6 * bf16  # decoder linears at ~4 bits, the rest in bf16
    small = estimate_memory(s, "t", max_tile_tokens=1000, batch=1, max_new_tokens=600, dtype="bf16", quant="none",
                            device_bytes=80 * GIB)
    big = estimate_memory(s, "t", max_tile_tokens=4000, batch=8, max_new_tokens=600, dtype="bf16", quant="none",
                          device_bytes=80 * GIB)
    assert big.vision_bytes > 4 * small.vision_bytes and big.kv_cache_bytes > 8 * small.kv_cache_bytes
    assert small.fits and small.total_bytes == (small.weights_bytes + max(small.vision_bytes, small.prefill_bytes)
                                                + small.kv_cache_bytes + small.context_bytes)


def test_warns_when_over_the_device_and_auto_quantizes():
    s = KNOWN_MODELS["qwen/qwen2.5-vl-7b-instruct"]
    over = estimate_memory(s, "t", max_tile_tokens=2000, batch=4, max_new_tokens=1024, dtype="bf16", quant="none",
                           device_name="8 GiB card", device_bytes=8 * GIB)
    assert over.fits is False and "needs" in over.reason and "--quant 4bit" in over.reason
    auto = estimate_memory(s, "t", max_tile_tokens=2000, batch=1, max_new_tokens=1024, dtype="bf16", quant="auto",
                           device_bytes=12 * GIB)
    assert auto.quant == "4bit" and auto.fits and "NF4" in auto.reason


def test_plan_cli_shows_memory_and_warns(tmp_path, samples_dir):
    from click.testing import CliRunner

    from docvlm.cli import main

    r = CliRunner().invoke(main, ["plan", str(samples_dir / "receipt_long.jpg"), "--model",
                                  "Qwen/Qwen2.5-VL-7B-Instruct", "--quant", "none", "--dtype", "bf16",
                                  "--gpu-memory", "8", "--max-visual-tokens", "4096"])
    assert r.exit_code == 0, r.output
    out = " ".join(r.output.split())
    assert "memory for Qwen/Qwen2.5-VL-7B-Instruct" in out and "KV cache" in out and "weights" in out
    assert "warning" in out and "needs" in out
    r = CliRunner().invoke(main, ["plan", str(samples_dir / "receipt_long.jpg"), "--json", "--model",
                                  "Qwen/Qwen2-VL-2B-Instruct", "--gpu-memory", "80"])
    data = json.loads(r.output)
    mem = data["memory"]
    assert mem["fits"] is True and mem["weights_bytes"] > 4e9 and mem["kv_cache_bytes"] > 0
    page = data["pages"][0]["plan"]
    assert page["text_line_px"] > 0 and page["min_text_px"] == 16.0 and page["scale_rule"]
    assert page["max_visual_tokens"] == 16384  # planned for the 80 GiB GPU's budget, not the CPU's 1280
    assert shape_from_config({"model_type": "qwen2_vl", "hidden_size": 64, "num_attention_heads": 4,
                              "intermediate_size": 128, "num_hidden_layers": 2, "vocab_size": 100}, "x").layers == 2
