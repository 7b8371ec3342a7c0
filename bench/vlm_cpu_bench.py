"""CPU cost of docvlm's encoding plan versus the released Qwen2-VL preprocessor default, on the real architecture.

Builds Qwen2-VL-2B-Instruct's architecture (config values of the released checkpoint) with random weights,
and for a few pages times, in one run:

- the vision encoder and the prefill (vision + text forward over the whole prompt) for docvlm's plan
  (native or tiled, each tile a separate request, as the hf engine sends them), and
- the same for the default policy: the page at its rendered resolution through smart_resize with
  max_pixels = 16384*28*28 (what `AutoProcessor` does with the released preprocessor_config.json),
- decode speed (tokens per second) on the full-depth text model.

The patch embedding runs as a matmul, as the hf engine runs it on CPU (`linearize_patch_embed`).
Inputs are built by the hf engine's own code (`HfEngine.prepare_inputs`: chat template, image-only processor,
the identity size budget and the image_grid_thw check), with a tokenizer trained on the spot (its ids fit the
real vocabulary; the random weights do not care what the tokens mean).

2 CPU cores cannot run 32 vision blocks over a 20k-patch page in reasonable time, so by default the vision
tower is timed with --vision-blocks of its 32 blocks and the decoder with --text-layers of its 28 layers, and
the full-depth time is estimated by scaling the per-block/per-layer part linearly (patch embedding, merger,
embeddings and lm_head are scaled with them, a slight overestimate that both policies share). --full-depth times the whole model instead.

Usage: python bench/vlm_cpu_bench.py [--data ../shared/data] [--pages N] [--vision-blocks 2] [--text-layers 2]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # tiny_models.build_tokenizer

# Qwen2-VL-2B-Instruct config.json (the released checkpoint)
QWEN2_VL_2B = {
    "text_config": {
        "vocab_size": 151936, "hidden_size": 1536, "intermediate_size": 8960, "num_hidden_layers": 28,
        "num_attention_heads": 12, "num_key_value_heads": 2, "hidden_act": "silu", "max_position_embeddings": 32768,
        "rms_norm_eps": 1e-6, "use_sliding_window": False, "sliding_window": 32768, "max_window_layers": 28,
        "rope_parameters": {"rope_type": "default", "rope_theta": 1_000_000.0, "mrope_section": [16, 24, 24]},
        "tie_word_embeddings": True,
    },
    "vision_config": {
        "depth": 32, "embed_dim": 1280, "mlp_ratio": 4, "num_heads": 16, "in_channels": 3, "hidden_size": 1536,
        "patch_size": 14, "spatial_merge_size": 2, "temporal_patch_size": 2, "hidden_act": "quick_gelu",
    },
    "tie_word_embeddings": True,
}
FULL_VISION_BLOCKS = 32
FULL_TEXT_LAYERS = 28
DEFAULT_MAX_PIXELS = 16384 * 28 * 28


@dataclass
class PolicyTiming:
    policy: str
    images: int
    visual_tokens: int
    prompt_tokens: int
    encoded: str
    vision_s: float  # measured with the truncated tower
    prefill_s: float  # measured (vision + text forward) with the truncated model
    vision_full_s: float  # estimated at full depth
    prefill_full_s: float


def pick_pages(data: Path, n: int) -> list[tuple[str, Path]]:
    """(name, path) of first pages: the project's samples, then real pages from the shared data."""
    pages: list[tuple[str, Path]] = []
    for name in ("samples/invoice.pdf", "samples/receipt_long.jpg"):
        p = ROOT / name
        if p.is_file():
            pages.append((name, p))
    for pattern in ("sroie-dev/**/*.jpg", "funsd-train/**/*.png", "invoice2data/**/*.pdf"):
        found = sorted(data.glob(pattern))
        if found:
            pages.append((str(found[0].relative_to(data.parent)), found[0]))
    return pages[:n]


def build_model(vision_blocks: int, text_layers: int, dtype, token_ids: dict[str, int]):
    """Qwen2-VL-2B with random weights, normal(0, 0.02) as transformers initialises it, truncated to the given
    depths. Built directly in `dtype` with transformers' init skipped and a single fill pass (much faster)."""
    import torch
    from transformers import Qwen2VLConfig, Qwen2VLForConditionalGeneration
    from transformers.initialization import no_init_weights

    cfg = json.loads(json.dumps(QWEN2_VL_2B))
    cfg["vision_config"]["depth"] = vision_blocks
    cfg["text_config"]["num_hidden_layers"] = text_layers
    cfg["text_config"]["max_window_layers"] = text_layers
    cfg.update(token_ids)
    torch.manual_seed(0)
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with no_init_weights():
            model = Qwen2VLForConditionalGeneration(Qwen2VLConfig(**cfg))
    finally:
        torch.set_default_dtype(previous)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() >= 2:
                p.normal_(0.0, 0.02)
            elif name.endswith("bias"):
                p.zero_()
            else:  # norm weights
                p.fill_(1.0)
    from docvlm.engines.hf import linearize_patch_embed

    model = model.to(dtype).eval()
    linearize_patch_embed(model)  # as the hf engine does on CPU
    return model


def prepare_folder(tmp: Path) -> dict[str, int]:
    """Write the 2B config, a tokenizer trained on the spot and the image processor; return the vision token ids."""
    from tiny_models import QWEN2_VL_CHAT_TEMPLATE, build_tokenizer
    from transformers import Qwen2VLConfig, Qwen2VLImageProcessorPil

    tok = build_tokenizer(tmp)
    ids = {
        "image_token_id": tok.convert_tokens_to_ids("<|image_pad|>"),
        "video_token_id": tok.convert_tokens_to_ids("<|video_pad|>"),
        "vision_start_token_id": tok.convert_tokens_to_ids("<|vision_start|>"),
        "vision_end_token_id": tok.convert_tokens_to_ids("<|vision_end|>"),
    }
    Qwen2VLConfig(**QWEN2_VL_2B, **ids).save_pretrained(tmp)
    Qwen2VLImageProcessorPil(min_pixels=56 * 56, max_pixels=DEFAULT_MAX_PIXELS).save_pretrained(tmp)
    (tmp / "chat_template.jinja").write_text(QWEN2_VL_CHAT_TEMPLATE)
    return ids


def make_engine(tmp: Path, model, dtype_name: str):
    """An HfEngine over the prepared folder, with the random model injected (the real input-building code runs)."""
    from docvlm.engines.hf import HfEngine
    from docvlm.options import make_options

    engine = HfEngine(make_options(engine="hf", model=str(tmp), device="cpu", dtype=dtype_name))
    engine._load_config()
    engine._processor = engine._load_processor()
    engine._processor.tokenizer.padding_side = "left"
    engine._model = model
    return engine


def time_requests(engine, requests, repeats: int = 1) -> tuple[float, float, int, int]:
    """(vision seconds, prefill seconds, visual tokens, prompt tokens) summed over requests, one at a time."""
    import torch

    model = engine._model
    vision = prefill = 0.0
    vtok = ptok = 0
    for req in requests:
        inputs = engine.prepare_inputs([req])
        grid = inputs["image_grid_thw"]
        vtok += int(grid.prod(dim=1).sum()) // 4
        ptok += int(inputs["attention_mask"].sum())
        best_v = best_p = float("inf")
        for _ in range(repeats):
            with torch.inference_mode():
                t = time.perf_counter()
                model.model.get_image_features(inputs["pixel_values"].to(model.dtype), grid)
                best_v = min(best_v, time.perf_counter() - t)
                t = time.perf_counter()
                model(**inputs, use_cache=False, logits_to_keep=1)
                best_p = min(best_p, time.perf_counter() - t)
        vision += best_v
        prefill += best_p
    return vision, prefill, vtok, ptok


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--pages", type=int, default=5)
    ap.add_argument("--vision-blocks", type=int, default=2)
    ap.add_argument("--text-layers", type=int, default=2)
    ap.add_argument("--full-depth", action="store_true", help="Time all 32 vision blocks and 28 text layers.")
    ap.add_argument("--dtype", choices=["bf16", "fp32"], default="bf16")
    ap.add_argument("--decode-tokens", type=int, default=24)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch default)")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "vlm_cpu_bench.json")
    args = ap.parse_args()

    import torch
    from PIL import Image as PILImage

    from docvlm.engines.vlm import TileRequest
    from docvlm.options import make_options
    from docvlm.plan import plan_for_page, render_tile, smart_resize
    from docvlm.sources import open_document

    if args.threads:
        torch.set_num_threads(args.threads)
    dtype = {"bf16": torch.bfloat16, "fp32": torch.float32}[args.dtype]
    vb, tl = (FULL_VISION_BLOCKS, FULL_TEXT_LAYERS) if args.full_depth else (args.vision_blocks, args.text_layers)

    with tempfile.TemporaryDirectory() as tmpdir:
        ids = prepare_folder(Path(tmpdir))
        t0 = time.perf_counter()
        model = build_model(vb, tl, dtype, ids)
        print(f"built Qwen2-VL-2B architecture ({vb}/{FULL_VISION_BLOCKS} vision blocks, {tl}/{FULL_TEXT_LAYERS} "
              f"text layers, {args.dtype}, random weights) in {time.perf_counter() - t0:.1f} s; "
              f"torch threads {torch.get_num_threads()}", file=sys.stderr)
        engine = make_engine(Path(tmpdir), model, args.dtype)
        options = make_options(engine="hf", model=tmpdir)
        prompt = "Spotting all the text in the image with line-level, and output in JSON format."

        rows: list[dict] = []
        for name, path in pick_pages(args.data, args.pages):
            with open_document(path, options) as doc:
                page = next(iter(doc.pages()))
                image = page.render()
                plan = plan_for_page(page, options, "qwen2", "read")
                ours = [TileRequest(image=render_tile(image, t), prompt=prompt) for t in plan.tiles]
                h, w = smart_resize(image.height, image.width, 28, 56 * 56, DEFAULT_MAX_PIXELS)
                default = [TileRequest(image=image.convert("RGB").resize((w, h), PILImage.Resampling.BICUBIC),
                                       prompt=prompt)]
            results = {}
            for policy, reqs, enc in (
                ("docvlm", ours, ", ".join(f"{t.encoded_size[0]}x{t.encoded_size[1]}" for t in plan.tiles)),
                ("default", default, f"{w}x{h}"),
            ):
                v, p, vt, pt = time_requests(engine, reqs)
                vs, ts = FULL_VISION_BLOCKS / vb, FULL_TEXT_LAYERS / tl
                text_part = max(0.0, p - v)
                results[policy] = PolicyTiming(
                    policy=policy, images=len(reqs), visual_tokens=vt, prompt_tokens=pt, encoded=enc,
                    vision_s=round(v, 3), prefill_s=round(p, 3), vision_full_s=round(v * vs, 2),
                    prefill_full_s=round(v * vs + text_part * ts, 2),
                )
                print(f"  {name}: {policy}: {len(reqs)} image(s) {enc}: {vt} visual tokens, vision {v:.2f} s, "
                      f"prefill {p:.2f} s", file=sys.stderr)
            d, o = results["default"], results["docvlm"]
            rows.append({
                "page": name, "page_size_px": [image.width, image.height], "plan_mode": plan.mode,
                "plan_reason": plan.reason, "docvlm": asdict(o), "default": asdict(d),
                "token_ratio": round(d.visual_tokens / max(1, o.visual_tokens), 3),
                "vision_speedup": round(d.vision_full_s / max(1e-9, o.vision_full_s), 3),
                "prefill_speedup": round(d.prefill_full_s / max(1e-9, o.prefill_full_s), 3),
            })

        # decode speed on the full-depth decoder (vision tower truncated: it does not run during decode)
        del model
        dec_model = build_model(1, FULL_TEXT_LAYERS, dtype, ids)
        engine._model = dec_model
        small = TileRequest(image=PILImage.new("RGB", (448, 448), "white"), prompt=prompt)
        inputs = engine.prepare_inputs([small])
        with torch.inference_mode():
            dec_model.generate(**inputs, max_new_tokens=2, do_sample=False, min_new_tokens=2)  # warm-up
            t = time.perf_counter()
            dec_model.generate(**inputs, max_new_tokens=1, min_new_tokens=1, do_sample=False)
            t1 = time.perf_counter() - t
            t = time.perf_counter()
            n = args.decode_tokens
            dec_model.generate(**inputs, max_new_tokens=n + 1, min_new_tokens=n + 1, do_sample=False)
            tn = time.perf_counter() - t
        decode_tps = n / max(1e-9, tn - t1)

    print()
    hdr = (f"{'page':38} {'plan':6} {'tok ours':>8} {'tok dflt':>8} {'vis ours':>8} {'vis dflt':>8} "
           f"{'pre ours':>8} {'pre dflt':>8} {'vis x':>6} {'pre x':>6}")
    print(hdr)
    print("-" * len(hdr))
    for r in rows:
        o, d = r["docvlm"], r["default"]
        print(f"{r['page'][:38]:38} {r['plan_mode']:6} {o['visual_tokens']:8d} {d['visual_tokens']:8d} "
              f"{o['vision_full_s']:8.1f} {d['vision_full_s']:8.1f} {o['prefill_full_s']:8.1f} "
              f"{d['prefill_full_s']:8.1f} {r['vision_speedup']:6.2f} {r['prefill_speedup']:6.2f}")
    so = sum(r["docvlm"]["prefill_full_s"] for r in rows)
    sd = sum(r["default"]["prefill_full_s"] for r in rows)
    to = sum(r["docvlm"]["visual_tokens"] for r in rows)
    td = sum(r["default"]["visual_tokens"] for r in rows)
    print(f"\ntotal visual tokens: docvlm {to}, default {td} (x{td / max(1, to):.2f}); "
          f"prefill at full depth (est.): docvlm {so:.1f} s, default {sd:.1f} s (x{sd / max(1e-9, so):.2f})")
    print(f"decode: {decode_tps:.2f} tokens/s (full 28-layer decoder, {args.dtype}, batch 1, "
          f"{inputs['input_ids'].shape[1]}-token prompt)")
    depth = "full depth" if args.full_depth else (
        f"{vb}/{FULL_VISION_BLOCKS} vision blocks and {tl}/{FULL_TEXT_LAYERS} text layers timed, scaled linearly")
    print(f"({depth}; times are the best of 1 run per request on {torch.get_num_threads()} threads)")

    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "config": {"architecture": "Qwen2-VL-2B-Instruct", "dtype": args.dtype, "vision_blocks_timed": vb,
                   "text_layers_timed": tl, "full_depth": args.full_depth, "threads": torch.get_num_threads(),
                   "command": " ".join(sys.argv)},
        "pages": rows,
        "totals": {"visual_tokens_docvlm": to, "visual_tokens_default": td, "prefill_full_s_docvlm": so,
                   "prefill_full_s_default": sd},
        "decode_tokens_per_s": round(decode_tps, 3),
    }, indent=2))
    print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
