"""GPU throughput of docvlm's planned encodings vs the Qwen default, on real-shape models with random weights.

Needs only torch and transformers (numpy optional, bitsandbytes optional for NF4); nothing is downloaded and
docvlm is not imported: the pages' planned encodings come precomputed from `bench/gpu_bench_pages.json`
(written on a docvlm machine by `python bench/gpu_bench.py --write-pages`, from the project's samples/).

For Qwen2-VL-2B, Qwen2.5-VL-3B and Qwen2.5-VL-7B (their released config.json numbers, random weights, bf16;
NF4 too when bitsandbytes imports) and for each policy (docvlm's plan, the family default), it measures:

- vision + prefill seconds per page: one forward of every tile of the page (pixel values of the planned
  encoded size, the image tokens and a ~120-token prompt), summed over tiles; peak memory of that forward;
- decode tokens/s at batch 1, 8 and 32 (generate with min_new_tokens = max_new_tokens, prompt as long as the
  policy's mean page prompt), as (time of N+1 tokens - time of 1 token) / N steps;
- projected pages/s per GPU for a typical page (--output-tokens, 600): batch B pages take
  B x prefill(page) + output_tokens x step(B) seconds.

Budget: about 5 minutes on one H100 (--budget-s stops early, marking what was skipped).
`--tiny` runs the same code on tiny configs on the CPU in seconds (the default test suite runs it).

    python bench/gpu_bench.py                      # on the GPU box
    python bench/gpu_bench.py --tiny --out /tmp/x.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PAGES_JSON = ROOT / "bench" / "gpu_bench_pages.json"
PROMPT_TEXT_TOKENS = 120
IMAGE_TOKEN, VIDEO_TOKEN, VISION_START, VISION_END = 151655, 151656, 151652, 151653

# config.json numbers of the released checkpoints (text decoder; vision tower)
REAL_MODELS: dict[str, dict] = {
    "Qwen2-VL-2B": {
        "family": "qwen2",
        "text": {"vocab_size": 151936, "hidden_size": 1536, "intermediate_size": 8960, "num_hidden_layers": 28,
                 "num_attention_heads": 12, "num_key_value_heads": 2, "tie_word_embeddings": True},
        "vision": {"depth": 32, "embed_dim": 1280, "mlp_ratio": 4, "num_heads": 16, "hidden_size": 1536,
                   "patch_size": 14, "spatial_merge_size": 2, "temporal_patch_size": 2},
    },
    "Qwen2.5-VL-3B": {
        "family": "qwen2.5",
        "text": {"vocab_size": 151936, "hidden_size": 2048, "intermediate_size": 11008, "num_hidden_layers": 36,
                 "num_attention_heads": 16, "num_key_value_heads": 2, "tie_word_embeddings": True},
        "vision": {"depth": 32, "hidden_size": 1280, "intermediate_size": 3420, "num_heads": 16,
                   "out_hidden_size": 2048, "patch_size": 14, "spatial_merge_size": 2, "temporal_patch_size": 2,
                   "window_size": 112, "fullatt_block_indexes": [7, 15, 23, 31]},
    },
    "Qwen2.5-VL-7B": {
        "family": "qwen2.5",
        "text": {"vocab_size": 152064, "hidden_size": 3584, "intermediate_size": 18944, "num_hidden_layers": 28,
                 "num_attention_heads": 28, "num_key_value_heads": 4, "tie_word_embeddings": False},
        "vision": {"depth": 32, "hidden_size": 1280, "intermediate_size": 3420, "num_heads": 16,
                   "out_hidden_size": 3584, "patch_size": 14, "spatial_merge_size": 2, "temporal_patch_size": 2,
                   "window_size": 112, "fullatt_block_indexes": [7, 15, 23, 31]},
    },
}


def tiny_models() -> dict[str, dict]:
    """The same architectures shrunk to a few small layers (CPU, seconds)."""
    out = {}
    for name, spec in REAL_MODELS.items():
        text = {**spec["text"], "vocab_size": 512, "hidden_size": 64, "intermediate_size": 128,
                "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2}
        vision = {**spec["vision"], "depth": 2, "num_heads": 2}
        if spec["family"] == "qwen2":
            vision.update(embed_dim=32, hidden_size=64)
        else:
            vision.update(hidden_size=32, intermediate_size=64, out_hidden_size=64, fullatt_block_indexes=[1])
        out[name + "-tiny"] = {"family": spec["family"], "text": text, "vision": vision, "tiny": True}
    return out


def build_model(spec: dict, device: str, dtype):
    """A Qwen-VL model of this shape with random normal(0, 0.02) weights, built directly on `device`."""
    import torch
    import transformers as tf

    tiny = spec.get("tiny", False)
    ids = {"image_token_id": 500 if tiny else IMAGE_TOKEN, "video_token_id": 501 if tiny else VIDEO_TOKEN,
           "vision_start_token_id": 502 if tiny else VISION_START, "vision_end_token_id": 503 if tiny else VISION_END}
    rope = {"rope_type": "default", "rope_theta": 1_000_000.0, "mrope_section": [16, 24, 24]}
    if tiny:
        rope["mrope_section"] = [2, 3, 3]
    text = {**spec["text"], "rope_parameters": rope, "max_position_embeddings": 32768}
    if tiny:
        text.update(eos_token_id=2, bos_token_id=1, pad_token_id=0)
    if spec["family"] == "qwen2":
        cfg_cls, model_cls = tf.Qwen2VLConfig, tf.Qwen2VLForConditionalGeneration
    else:
        cfg_cls, model_cls = tf.Qwen2_5_VLConfig, tf.Qwen2_5_VLForConditionalGeneration
    cfg = cfg_cls(text_config=text, vision_config=spec["vision"],
                  tie_word_embeddings=spec["text"]["tie_word_embeddings"], **ids)
    try:
        from transformers.initialization import no_init_weights
    except ImportError:  # older transformers
        from transformers.modeling_utils import no_init_weights
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device), no_init_weights():
            model = model_cls(cfg)
    finally:
        torch.set_default_dtype(previous)
    gen = torch.Generator(device=device).manual_seed(0)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() >= 2:
                p.normal_(0.0, 0.02, generator=gen)
            elif name.endswith("bias"):
                p.zero_()
            else:
                p.fill_(1.0)
    model = model.to(dtype).eval()
    model.generation_config.eos_token_id = None
    model.generation_config.pad_token_id = 0
    return model, ids


def quantize_nf4(model, dtype) -> str:
    """Swap the text decoder's linear layers for bitsandbytes NF4 (double quantization), as docvlm's hf engine
    loads a model that does not fit (vision tower and lm_head kept in `dtype`). Returns '' or why not."""
    try:
        import bitsandbytes as bnb
        import torch
    except Exception as exc:  # noqa: BLE001 - any import failure means no NF4 row
        return f"bitsandbytes does not import: {type(exc).__name__}: {exc}"
    lm = model.model.language_model
    for parent in list(lm.modules()):
        for child_name, child in list(parent.named_children()):
            if isinstance(child, torch.nn.Linear):
                q = bnb.nn.Linear4bit(child.in_features, child.out_features, bias=child.bias is not None,
                                      compute_dtype=dtype, compress_statistics=True, quant_type="nf4",
                                      device="cpu")
                q.weight = bnb.nn.Params4bit(child.weight.data.to("cpu"), requires_grad=False,
                                             compress_statistics=True, quant_type="nf4")
                if child.bias is not None:
                    q.bias = torch.nn.Parameter(child.bias.data.to("cpu"), requires_grad=False)
                setattr(parent, child_name, q.to(child.weight.device))
    return ""


def page_inputs(tile_sizes: list[list[int]], ids: dict, spec: dict, device: str, dtype):
    """One request per tile: (input_ids, attention_mask, pixel_values, image_grid_thw) of a tile at its size."""
    import torch

    patch = spec["vision"]["patch_size"]
    merge = spec["vision"]["spatial_merge_size"]
    tp = spec["vision"]["temporal_patch_size"]
    out = []
    for w, h in tile_sizes:
        gh, gw = h // patch, w // patch
        n_img = gh * gw // (merge * merge)
        text = PROMPT_TEXT_TOKENS if not spec.get("tiny") else 8
        ids_list = [1] * (text // 2) + [ids["vision_start_token_id"]] + [ids["image_token_id"]] * n_img \
            + [ids["vision_end_token_id"]] + [2] * (text - text // 2)
        input_ids = torch.tensor([ids_list], device=device)
        pixel_values = torch.randn(gh * gw, 3 * tp * patch * patch, device=device, dtype=dtype)
        grid = torch.tensor([[1, gh, gw]], device=device)
        # recent transformers want the processor's token types (1 = image) to build M-RoPE positions
        types = (input_ids == ids["image_token_id"]).int()
        out.append((input_ids, torch.ones_like(input_ids), pixel_values, grid, types))
    return out


def accepts_mm_token_types() -> bool:
    """Whether this transformers' Qwen2-VL forward takes `mm_token_type_ids` (5.x does, 4.x does not)."""
    import inspect

    import transformers as tf

    return "mm_token_type_ids" in inspect.signature(tf.Qwen2VLModel.get_rope_index).parameters or \
        "mm_token_type_ids" in inspect.getsource(tf.models.qwen2_vl.modeling_qwen2_vl)


MM_TYPES = False
WARMUP = True
"""Warm-up runs before timing (kernels, allocator); off in --tiny, where the numbers are not the point."""


def sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def time_prefill(model, requests, device: str) -> tuple[float, int]:
    """Seconds of one forward over every tile of a page (vision + prefill) and the peak memory (bytes)."""
    import torch

    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    sync(device)
    started = time.perf_counter()
    with torch.inference_mode():
        for input_ids, mask, pixels, grid, types in requests:
            extra = {"mm_token_type_ids": types} if MM_TYPES else {}
            model(input_ids=input_ids, attention_mask=mask, pixel_values=pixels, image_grid_thw=grid,
                  use_cache=True, logits_to_keep=1, **extra)
    sync(device)
    took = time.perf_counter() - started
    peak = torch.cuda.max_memory_allocated() if device.startswith("cuda") else 0
    return took, peak


def time_decode(model, batch: int, prompt_len: int, steps: int, device: str) -> tuple[float, int]:
    """Seconds per decode step at `batch` sequences of `prompt_len` tokens, and the peak memory."""
    import torch

    vocab = model.config.text_config.vocab_size
    gen = torch.Generator(device="cpu").manual_seed(1)
    input_ids = torch.randint(10, min(vocab, 150000), (batch, prompt_len), generator=gen).to(device)
    mask = torch.ones_like(input_ids)

    def run(n: int) -> float:
        sync(device)
        t = time.perf_counter()
        with torch.inference_mode():
            model.generate(input_ids=input_ids, attention_mask=mask, max_new_tokens=n, min_new_tokens=n,
                           do_sample=False)
        sync(device)
        return time.perf_counter() - t

    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    if WARMUP:
        run(2)
    one = run(1)
    full = run(steps + 1)
    peak = torch.cuda.max_memory_allocated() if device.startswith("cuda") else 0
    if full <= one:  # a noisy (shared CPU) clock: fall back to the whole generate over its tokens
        return full / (steps + 1), peak
    return (full - one) / steps, peak


def bench_model(name: str, spec: dict, pages: list[dict], args, device: str, dtype, quant: str,
                deadline: float) -> dict:
    import torch

    started = time.perf_counter()
    model, ids = build_model(spec, device, dtype)
    note = ""
    if quant == "nf4":
        note = quantize_nf4(model, dtype)
        if note:
            del model
            return {"model": name, "quant": quant, "skipped": note}
    build_s = time.perf_counter() - started
    weights = torch.cuda.memory_allocated() if device.startswith("cuda") else 0
    row: dict = {"model": name, "quant": quant, "build_s": build_s, "weights_bytes": weights, "policies": {}}
    for policy in ("docvlm", "default"):
        prefill, peaks, prompts = [], [], []
        for page in pages:
            if time.perf_counter() > deadline:
                row.setdefault("skipped", []).append(f"{policy} {page['name']}: time budget")
                continue
            reqs = page_inputs(page[policy]["tiles"], ids, spec, device, dtype)
            if not prefill and WARMUP:
                time_prefill(model, reqs, device)  # warm-up (kernels, allocator)
            secs, peak = time_prefill(model, reqs, device)
            prefill.append(secs)
            peaks.append(peak)
            prompts.append(max(int(r[0].shape[1]) for r in reqs))
            del reqs
        if not prefill:
            continue
        entry: dict = {"pages": len(prefill), "prefill_s_per_page": statistics.mean(prefill),
                       "prefill_s": prefill, "peak_prefill_bytes": max(peaks),
                       "visual_tokens_per_page": statistics.mean(p[policy]["tokens"] for p in pages),
                       "mean_prompt_tokens": int(statistics.mean(prompts)), "decode": {}}
        for batch in args.batches:
            if time.perf_counter() > deadline:
                row.setdefault("skipped", []).append(f"{policy} decode batch {batch}: time budget")
                continue
            try:
                step, peak = time_decode(model, batch, entry["mean_prompt_tokens"], args.decode_steps, device)
            except torch.OutOfMemoryError:
                torch.cuda.empty_cache()
                entry["decode"][str(batch)] = {"error": "out of memory"}
                continue
            pages_per_s = batch / (batch * entry["prefill_s_per_page"] + args.output_tokens * step)
            entry["decode"][str(batch)] = {"step_s": step, "tokens_per_s": batch / step, "peak_bytes": peak,
                                           "projected_pages_per_s": pages_per_s}
        row["policies"][policy] = entry
    del model
    if device.startswith("cuda"):
        torch.cuda.empty_cache()
    row["seconds"] = time.perf_counter() - started
    return row


def print_table(rows: list[dict], batches: list[int], output_tokens: int) -> None:
    gib = 2**30
    print(f"\nprojected pages/s per GPU for a page of {output_tokens} output tokens; prefill = vision + prefill "
          f"per page; peak = max memory of the page forwards")
    head = f"{'model':<22}{'quant':>5}{'policy':>9}{'vis tok':>8}{'prefill s':>10}{'peak GiB':>9}"
    head += "".join(f"{'tok/s b' + str(b):>11}" for b in batches) + "".join(f"{'pg/s b' + str(b):>10}" for b in batches)
    print(head)
    for r in rows:
        if "policies" not in r:
            print(f"{r['model']:<22}{r['quant']:>5}  skipped: {r.get('skipped')}")
            continue
        for policy, e in r["policies"].items():
            dec = e["decode"]
            toks = "".join(f"{dec[str(b)]['tokens_per_s']:>11.0f}" if "tokens_per_s" in dec.get(str(b), {})
                           else f"{'-':>11}" for b in batches)
            pps = "".join(f"{dec[str(b)]['projected_pages_per_s']:>10.2f}" if "tokens_per_s" in dec.get(str(b), {})
                          else f"{'-':>10}" for b in batches)
            print(f"{r['model']:<22}{r['quant']:>5}{policy:>9}{e['visual_tokens_per_page']:>8.0f}"
                  f"{e['prefill_s_per_page']:>10.3f}{e['peak_prefill_bytes'] / gib:>9.2f}" + toks + pps)


def write_pages(out: Path) -> None:
    """Plan the project's samples with docvlm (needs docvlm and its deps) and write the encodings JSON."""
    sys.path.insert(0, str(ROOT))
    from docvlm.options import make_options
    from docvlm.plan import family_smart_resize, plan_document, visual_tokens

    options = make_options(max_visual_tokens=16384)
    pages = []
    for path in sorted((ROOT / "samples").iterdir()):
        if path.suffix.lower() not in (".pdf", ".jpg", ".png"):
            continue
        for family in ("qwen2.5",):
            for r in plan_document(str(path), options, family):
                if r.plan is None:
                    continue
                w, h = r.plan.page_size_px
                dh, dw = family_smart_resize(h, w, family)
                pages.append({
                    "name": f"{path.name}#{r.page + 1}", "page_size_px": [w, h],
                    "docvlm": {"tiles": [list(t.encoded_size) for t in r.plan.tiles], "tokens": r.plan.visual_tokens,
                               "reason": r.plan.reason},
                    "default": {"tiles": [[dw, dh]], "tokens": visual_tokens((dw, dh), family)},
                })
    out.write_text(json.dumps({"family": "qwen2.5 (factor 28; Qwen2-VL uses the same sizes)",
                               "written_by": "python bench/gpu_bench.py --write-pages", "pages": pages}, indent=1) + "\n")
    print(f"wrote {out}: {len(pages)} page(s)")


def tiny_pages(pages: list[dict]) -> list[dict]:
    """The planned pages shrunk so that a tile has a few dozen tokens (the tiny CPU mode)."""
    out = []
    for p in pages[:1]:
        def shrink(sizes: list[list[int]]) -> list[list[int]]:
            return [[max(28, (w // 8) // 28 * 28), max(28, (h // 8) // 28 * 28)] for w, h in sizes[:2]]
        d, f = shrink(p["docvlm"]["tiles"]), shrink(p["default"]["tiles"])
        out.append({"name": p["name"], "docvlm": {"tiles": d, "tokens": sum(w * h // 784 for w, h in d)},
                    "default": {"tiles": f, "tokens": sum(w * h // 784 for w, h in f)}})
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tiny", action="store_true", help="Tiny configs on the CPU (seconds): a smoke test.")
    ap.add_argument("--models", default=",".join(REAL_MODELS), help="Comma-separated subset.")
    ap.add_argument("--pages", type=Path, default=PAGES_JSON)
    ap.add_argument("--batches", default="1,8,32")
    ap.add_argument("--decode-steps", type=int, default=24)
    ap.add_argument("--output-tokens", type=int, default=600)
    ap.add_argument("--budget-s", type=float, default=320.0, help="Stop starting new measurements after this.")
    ap.add_argument("--no-nf4", action="store_true")
    ap.add_argument("--write-pages", action="store_true", help="Write --pages from samples/ (needs docvlm).")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    if args.write_pages:
        write_pages(args.pages)
        return
    import torch

    global MM_TYPES, WARMUP
    MM_TYPES = accepts_mm_token_types()
    WARMUP = not args.tiny
    started = time.perf_counter()
    args.batches = [int(b) for b in args.batches.split(",")]
    pages = json.loads(args.pages.read_text())["pages"]
    if args.tiny:
        device, dtype = "cpu", torch.float32
        models = tiny_models()
        pages = tiny_pages(pages)
        args.batches = [1, 2]
        args.decode_steps = 4
        args.output_tokens = 600
        quants = ["none"]
    else:
        if not torch.cuda.is_available():
            sys.exit("no CUDA device: run with --tiny on a CPU")
        device, dtype = "cuda", torch.bfloat16
        wanted = [m.strip() for m in args.models.split(",") if m.strip()]
        models = {m: REAL_MODELS[m] for m in wanted}
        quants = ["none"] if args.no_nf4 else ["none", "nf4"]
    deadline = started + args.budget_s
    rows = []
    for quant in quants:
        for name, spec in models.items():
            if time.perf_counter() > deadline:
                rows.append({"model": name, "quant": quant, "skipped": "time budget"})
                continue
            try:
                row = bench_model(name, spec, pages, args, device, dtype, quant, deadline)
            except Exception as exc:  # noqa: BLE001 - one model's failure (OOM, an API change) must not lose the table
                if device == "cuda":
                    torch.cuda.empty_cache()
                row = {"model": name, "quant": quant, "skipped": f"{type(exc).__name__}: {exc}"[:500]}
            rows.append(row)
            print(f"{name} {quant}: {row.get('seconds', 0):.1f} s", flush=True)
    env = {"torch": torch.__version__, "device": torch.cuda.get_device_name(0) if device == "cuda" else "cpu",
           "transformers": __import__("transformers").__version__, "seconds": time.perf_counter() - started}
    print_table(rows, args.batches, args.output_tokens)
    print(f"{env}")
    out = args.out or ROOT / "bench" / "results" / f"gpu_bench-{time.strftime('%Y%m%d-%H%M%S')}{'-tiny' if args.tiny else ''}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"env": env, "args": {k: str(v) for k, v in vars(args).items()}, "rows": rows},
                              indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
