"""Encoding plan vs the fixed resize policies peers use: visual tokens per page and pages left unreadable.

Policies (all with the Qwen2-VL resize rule, factor 28):
- docvlm:        `plan_page` (smallest scale keeping the smallest x-height >= 10 px; tiles within the budget),
                 at the CPU budget (1280 tokens/request) and at a 24-GiB GPU budget; `-noup` is the same
                 plan with up-scaling of tiny text disabled (max_upscale 1.0), to show what the 2x costs.
- default:       the released Qwen2-VL preprocessor: smart_resize with max_pixels = 16384*28*28 (native).
- fixed-1288:    the page resized so its longest side is 1288 px, then smart_resize.

A page is unreadable under a policy when its smallest text's x-height (page px) times the policy's scale is
below the threshold (10 px). The x-height is docvlm's estimate (PDF text layer, else the raster detector);
because docvlm plans from that same estimate, the SROIE and FUNSD pages are also scored against an
independent x-height from their annotations (half the 10th-percentile height of the annotated line / word
boxes), reported as `unreadable_gt`.

    python bench/plan_bench.py --data ../shared/data [--limit 40] [--max-pages 3]
"""

from __future__ import annotations

import argparse
import glob
import json
import statistics
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FAMILY = "qwen2"
F = 28
DEFAULT_MAX_PIXELS = 16384 * 28 * 28
MIN_PIXELS = 56 * 56
FIXED_LONGEST = 1288
GPU_BUDGET_BYTES = 24 * 2**30
POLICIES = ["docvlm-cpu", "docvlm-gpu24", "docvlm-gpu24-noup", "default", "fixed-1288"]


def datasets(data: Path, limit: int) -> dict[str, list[Path]]:
    def pick(pattern: str) -> list[Path]:
        return [Path(p) for p in sorted(glob.glob(str(data / pattern)))][:limit]

    return {
        "sroie-dev": pick("sroie-dev/img/*.jpg"),
        "funsd-train": pick("funsd-train/images/*.png"),
        "docling-pdf": pick("docling-pdf/sources/*.pdf"),
        "olmocr-bench-sample": pick("olmocr-bench-sample/pdfs/*.pdf"),
        "invoice2data": pick("invoice2data/compare/*.pdf") + pick("invoice2data/compare/*.png"),
    }


def gt_x_height(dataset: str, path: Path) -> float | None:
    """Independent smallest x-height from the annotations (SROIE line boxes, FUNSD word boxes)."""
    from docvlm.plan import percentile

    heights: list[float] = []
    if dataset == "sroie-dev":
        box = path.parent.parent / "box" / f"{path.stem}.csv"
        if not box.is_file():
            return None
        for row in box.read_text(encoding="utf-8", errors="replace").splitlines():
            parts = row.split(",")
            if len(parts) >= 9 and parts[8].strip():
                try:
                    ys = [float(parts[i]) for i in (1, 3, 5, 7)]
                except ValueError:
                    continue
                heights.append(max(ys) - min(ys))
    elif dataset == "funsd-train":
        ann = path.parent.parent / "annotations" / f"{path.stem}.json"
        if not ann.is_file():
            return None
        for entity in json.loads(ann.read_text()).get("form", []):
            for w in entity.get("words", []):
                if len(w.get("text", "")) >= 3:
                    heights.append(float(w["box"][3] - w["box"][1]))
    heights = [h for h in heights if h > 0]
    return percentile(heights, 10.0) * 0.5 if heights else None


def fixed_policy(width: int, height: int, longest: int | None) -> tuple[int, float]:
    """(visual tokens, min scale) of a fixed policy."""
    from docvlm.plan import smart_resize

    w, h = width, height
    if longest is not None:
        k = longest / max(width, height)
        w, h = max(1, round(width * k)), max(1, round(height * k))
    eh, ew = smart_resize(h, w, F, MIN_PIXELS, DEFAULT_MAX_PIXELS)
    return (ew // F) * (eh // F), min(ew / width, eh / height)


def plan_scale(plan) -> float:
    """The smallest scale (encoded px per page px) among the plan's reading tiles (the thumbnail aside)."""
    scales = []
    for t in plan.tiles:
        if t.kind == "thumbnail":
            continue
        x0, y0, x1, y1 = t.crop_page_px
        scales.append(min(t.encoded_size[0] / (x1 - x0), t.encoded_size[1] / (y1 - y0)))
    return min(scales)


def bench(data: Path, limit: int, max_pages: int, threshold: float) -> dict:
    from docvlm.options import make_options
    from docvlm.plan import budget_from_device, estimate_text_heights, plan_page
    from docvlm.sources import open_document

    options = make_options(dpi=200, max_pages=max_pages)
    cpu_budget = budget_from_device(None, FAMILY)
    gpu_budget = budget_from_device(GPU_BUDGET_BYTES, FAMILY)
    rows = []
    for name, files in datasets(data, limit).items():
        for path in files:
            try:
                doc = open_document(path, options)
            except Exception as exc:  # noqa: BLE001 - a bench row, not a crash
                rows.append({"dataset": name, "file": path.name, "error": str(exc)})
                continue
            with doc:
                for page in doc.pages():
                    started = time.perf_counter()
                    heights = estimate_text_heights(page)
                    est_s = time.perf_counter() - started
                    xh = heights.x_height_px if heights else None
                    kw = dict(x_height_px=xh, line_height_px=heights.line_height_px if heights else None,
                              min_x_height_px=threshold,
                              text_height_source=heights.source if heights else "default")
                    size = (page.width_px, page.height_px)
                    cpu = plan_page(size, FAMILY, max_visual_tokens=cpu_budget, **kw)
                    gpu = plan_page(size, FAMILY, max_visual_tokens=gpu_budget, **kw)
                    noup = plan_page(size, FAMILY, max_visual_tokens=gpu_budget, max_upscale=1.0, **kw)
                    d_tok, d_scale = fixed_policy(*size, None)
                    f_tok, f_scale = fixed_policy(*size, FIXED_LONGEST)
                    rows.append({
                        "dataset": name, "file": path.name, "page": page.index, "size": list(size),
                        "source": heights.source if heights else "default", "x_height": xh,
                        "x_height_gt": gt_x_height(name, path) if page.kind == "image" else None,
                        "estimate_s": est_s,
                        "policies": {
                            "docvlm-cpu": {"tokens": cpu.visual_tokens, "scale": plan_scale(cpu),
                                           "tiles": len(cpu.tiles)},
                            "docvlm-gpu24": {"tokens": gpu.visual_tokens, "scale": plan_scale(gpu),
                                             "tiles": len(gpu.tiles)},
                            "docvlm-gpu24-noup": {"tokens": noup.visual_tokens, "scale": plan_scale(noup),
                                                  "tiles": len(noup.tiles)},
                            "default": {"tokens": d_tok, "scale": d_scale, "tiles": 1},
                            "fixed-1288": {"tokens": f_tok, "scale": f_scale, "tiles": 1},
                        },
                    })
    return summarize(rows, threshold)


def summarize(rows: list[dict], threshold: float) -> dict:
    ok = [r for r in rows if "policies" in r]
    policies = POLICIES
    groups = {"ALL": ok}
    for r in ok:
        groups.setdefault(r["dataset"], []).append(r)
    table = {}
    for g, rs in groups.items():
        entry = {"pages": len(rs), "unknown_x_height": sum(1 for r in rs if r["x_height"] is None),
                 "estimate_ms_median": round(1000 * statistics.median(r["estimate_s"] for r in rs), 1)}
        for p in policies:
            toks = [r["policies"][p]["tokens"] for r in rs]
            known = [r for r in rs if r["x_height"] is not None]
            bad = [r for r in known if r["x_height"] * r["policies"][p]["scale"] < threshold - 1e-9]
            gt = [r for r in rs if r.get("x_height_gt")]
            bad_gt = [r for r in gt if r["x_height_gt"] * r["policies"][p]["scale"] < threshold - 1e-9]
            entry[p] = {
                "tokens_total": sum(toks),
                "tokens_per_page": round(sum(toks) / len(toks), 1) if toks else 0,
                "tiles_per_page": round(sum(r["policies"][p]["tiles"] for r in rs) / len(rs), 2) if rs else 0,
                "unreadable": round(len(bad) / len(known), 4) if known else None,
                "unreadable_gt": round(len(bad_gt) / len(gt), 4) if gt else None,
            }
        table[g] = entry
    return {"threshold_px": threshold, "family": FAMILY, "summary": table, "rows": rows,
            "errors": [r for r in rows if "error" in r]}


def print_table(result: dict) -> None:
    policies = POLICIES
    head = f"{'dataset':<20}{'pages':>6}{'est ms':>7}" + "".join(f"{p:>25}" for p in policies)
    print(head)
    print(f"{'':<33}" + "".join(f"{'tok/pg unread unr_gt':>25}" for _ in policies))
    for g, e in result["summary"].items():
        cells = []
        for p in policies:
            s = e[p]
            un = "-" if s["unreadable"] is None else f"{100 * s['unreadable']:.0f}%"
            ug = "-" if s["unreadable_gt"] is None else f"{100 * s['unreadable_gt']:.0f}%"
            cells.append(f"{s['tokens_per_page']:>10.0f} {un:>6} {ug:>6}")
        print(f"{g:<20}{e['pages']:>6}{e['estimate_ms_median']:>7}" + "".join(f"{c:>25}" for c in cells))
    if result["errors"]:
        print(f"{len(result['errors'])} file(s) could not be opened")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--limit", type=int, default=1000, help="Files per dataset.")
    ap.add_argument("--max-pages", type=int, default=3, help="Pages per document.")
    ap.add_argument("--threshold", type=float, default=10.0, help="Readable x-height in encoded px.")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "plan_bench.json")
    args = ap.parse_args()
    result = bench(args.data, args.limit, args.max_pages, args.threshold)
    print_table(result)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
