"""The encoding planner on real pages: text-size estimate vs annotations, tokens vs fixed policies, readability.

For every page of ../shared/data (SROIE receipts, FUNSD forms, the PDF sets) it records:

- docvlm's small-text estimate (docvlm.textsize: text layer for PDFs, detector for images) against the
  annotations: SROIE line boxes (5th percentile of line heights), FUNSD word boxes (5th percentile of the
  heights of words of 3+ characters), PDF font sizes (5th percentile x dpi/72; the detector is also run on the
  rendered PDF page and compared with them, since docvlm plans PDFs from the text layer itself);
- visual tokens (Qwen2-VL rule, factor 28) of docvlm's plan (`plan_page`, 16384-token budget so the count has
  no tile overlap; `docvlm-cpu` is the 1280-token CPU budget with its overlap), of the released default
  (smart_resize, max_pixels 16384*28*28) and of a fixed 1288-px longest side (olmOCR's rendering);
- whether the page stays readable under each policy: a page passes when >= 95% of its annotated lines (words
  for FUNSD, text-layer words for PDFs) are >= --min-text-px tall as encoded.

Splits: `dev` = SROIE 000-149 and the first half of FUNSD (tuned on), `check` = SROIE 150-299 and the second
half of FUNSD (not tuned on); PDFs are in both. `--limit N` samples N files evenly per dataset and split.
`--scales 0.3,1,3,5` adds the scale-invariance table: each sampled image resampled by those factors and
planned again (encoded content size and tokens relative to x1).

    python bench/plan_bench.py --split check --limit 60 --scale-limit 8
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FAMILY = "qwen2"
F = 28
MIN_PIXELS = 56 * 56
DEFAULT_MAX_PIXELS = 16384 * 28 * 28
FIXED_LONGEST = 1288
GPU_BUDGET = 16384
POLICIES = ("docvlm", "docvlm-cpu", "default", "fixed-1288", "oracle")
PDF_SETS = ("docling-pdf", "olmocr-bench-sample", "invoice2data", "camelot-tables")


def even_sample(items: list, n: int | None) -> list:
    """n items spread evenly over the list (all when n is None or larger)."""
    if n is None or n >= len(items):
        return items
    step = len(items) / n
    return [items[int(i * step)] for i in range(n)]


def datasets(data: Path, split: str, limit: int | None, pdf_limit: int | None = None) -> dict[str, list[Path]]:
    out: dict[str, list[Path]] = {}
    sroie = sorted((data / "sroie-dev" / "img").glob("*.jpg"))
    funsd = sorted((data / "funsd-train" / "images").glob("*.png"))
    halves = {"dev": (lambda p: int(p.stem[:3]) < 150, funsd[: len(funsd) // 2]),
              "check": (lambda p: int(p.stem[:3]) >= 150, funsd[len(funsd) // 2:])}
    for name, (in_split, funsd_half) in halves.items():
        if split in (name, "all"):
            out[f"sroie-{name}"] = even_sample([p for p in sroie if p.stem[:3].isdigit() and in_split(p)], limit)
            out[f"funsd-{name}"] = even_sample(funsd_half, limit)
    for name in PDF_SETS:
        files = sorted((data / name).rglob("*.pdf")) + (sorted((data / name).rglob("*.png")) if name == "invoice2data"
                                                        else [])
        out[name] = even_sample(files, pdf_limit if pdf_limit is not None else limit)
    return out


def annotated_heights(dataset: str, path: Path) -> list[float]:
    """Heights (page px) of the annotated lines of an image page: SROIE line boxes, FUNSD words of 3+ chars."""
    heights: list[float] = []
    if dataset.startswith("sroie"):
        box = path.parent.parent / "box" / f"{path.stem}.csv"
        for row in box.read_text(encoding="utf-8", errors="replace").splitlines() if box.is_file() else []:
            parts = row.split(",", 8)
            if len(parts) == 9 and parts[8].strip():
                try:
                    c = [float(v) for v in parts[:8]]
                except ValueError:
                    continue
                heights.append(((c[7] - c[1]) + (c[5] - c[3])) / 2)
    elif dataset.startswith("funsd"):
        ann = path.parent.parent / "annotations" / f"{path.stem}.json"
        for entity in json.loads(ann.read_text()).get("form", []) if ann.is_file() else []:
            for w in entity.get("words", []):
                if len(w.get("text", "").strip()) >= 3:
                    heights.append(float(w["box"][3] - w["box"][1]))
    return [h for h in heights if h > 0]


def fixed_tokens(width: int, height: int, longest: int | None) -> tuple[int, float]:
    """(visual tokens, vertical scale) of a fixed policy: the default smart_resize, after a longest-side resize."""
    from docvlm.plan import smart_resize

    w, h = width, height
    if longest is not None:
        k = longest / max(width, height)
        w, h = max(1, round(width * k)), max(1, round(height * k))
    eh, ew = smart_resize(h, w, F, MIN_PIXELS, DEFAULT_MAX_PIXELS)
    return (ew // F) * (eh // F), eh / height


def plan_scale(plan) -> float:
    """Vertical encoded px per page px of the plan's reading tiles (the smallest, thumbnail aside)."""
    return min(t.encoded_size[1] / (t.crop_page_px[3] - t.crop_page_px[1]) for t in plan.tiles if t.kind != "thumbnail")


def page_row(dataset: str, path: Path, page, min_text_px: float) -> dict:
    from docvlm.plan import plan_page
    from docvlm.textsize import detect_text_size, estimate_text_size, percentile

    cpu = time.process_time()
    size = estimate_text_size(page)
    cpu = time.process_time() - cpu
    row: dict = {"dataset": dataset, "file": path.name, "page": page.index, "size": [page.width_px, page.height_px],
                 "source": size.source, "estimate": size.line_px, "estimate_ms": 1000 * size.seconds,
                 "estimate_cpu_ms": 1000 * cpu, "reason": size.reason}
    if page.kind == "pdf":
        layer = page.text_layer()
        k = (page.dpi or 72) / 72.0
        heights = [w.font_size_pt * k for w in layer.words if len(w.text.strip()) >= 3] if layer else []
        if size.source == "text_layer":  # the detector on the same page, against the font sizes
            det = detect_text_size(page.render())
            row["detector_estimate"] = det.line_px
            row["detector_ms"] = 1000 * det.seconds
    else:
        heights = annotated_heights(dataset, path)
    row["annotation"] = percentile(heights, 5.0) if heights else None
    row["heights"] = [round(h, 2) for h in heights] if page.kind != "pdf" else []
    src = size.source
    plans = {
        "docvlm": plan_page(row["size"], FAMILY, text_line_px=size.line_px, line_height_px=size.tall_px,
                            min_text_px=min_text_px, max_visual_tokens=GPU_BUDGET, text_height_source=src),
        "docvlm-cpu": plan_page(row["size"], FAMILY, text_line_px=size.line_px, line_height_px=size.tall_px,
                                min_text_px=min_text_px, max_visual_tokens=1280, text_height_source=src),
    }
    if heights:  # the bound: the plan given the true line heights (the line that 95% of lines reach)
        ordered = sorted(heights)
        plans["oracle"] = plan_page(row["size"], FAMILY, text_line_px=ordered[len(ordered) - math.ceil(0.95 * len(ordered))],
                                    min_text_px=min_text_px, max_visual_tokens=GPU_BUDGET,
                                    text_height_source="text_layer")
    pol: dict = {}
    for name, plan in plans.items():
        pol[name] = {"tokens": plan.visual_tokens, "scale": plan_scale(plan), "tiles": len(plan.tiles),
                     "rule": plan.scale_rule, "decided_scale": plan.scale}
    for name, longest in (("default", None), ("fixed-1288", FIXED_LONGEST)):
        tokens, scale = fixed_tokens(*row["size"], longest)
        pol[name] = {"tokens": tokens, "scale": scale, "tiles": 1}
    for p in pol.values():
        if heights:
            p["lines_ok"] = sum(1 for h in heights if h * p["scale"] >= min_text_px - 1e-9) / len(heights)
    row["policies"] = pol
    return row


def run_pages(data: Path, split: str, limit: int | None, max_pages: int, min_text_px: float,
              pdf_limit: int | None = None) -> list[dict]:
    from docvlm.errors import DocvlmError
    from docvlm.options import make_options
    from docvlm.sources import open_document

    options = make_options(dpi=200, max_pages=max_pages)
    rows = []
    for name, files in datasets(data, split, limit, pdf_limit).items():
        for path in files:
            try:
                with open_document(path, options) as doc:
                    for page in doc.pages():
                        rows.append(page_row(name, path, page, min_text_px))
            except DocvlmError as exc:
                rows.append({"dataset": name, "file": path.name, "error": str(exc)})
    print(f"{len(rows)} page(s)")
    return rows


def pct(values: list[float], q: float) -> float:
    from docvlm.textsize import percentile

    return percentile(values, q) if values else float("nan")


def default_readable(row: dict, min_text_px: float = 16.0) -> bool:
    """Whether the family default keeps the page's small text at the floor by docvlm's own estimate (on the
    floor's yardstick): such a page must never get more tokens than the default."""
    from docvlm.plan import ESTIMATE_PER_LINE_BOX, default_scale

    if not row["estimate"]:
        return False
    line = row["estimate"] / ESTIMATE_PER_LINE_BOX.get(row["source"], 1.0)
    return line * default_scale(*row["size"], FAMILY) >= min_text_px


def summarize(rows: list[dict]) -> dict:
    groups: dict[str, list[dict]] = {}
    for r in rows:
        if "policies" in r:
            groups.setdefault(r["dataset"], []).append(r)
    table = {}
    for g, rs in groups.items():
        ratios = [r["estimate"] / r["annotation"] for r in rs if r["estimate"] and r["annotation"]]
        det = [r["detector_estimate"] / r["annotation"] for r in rs if r.get("detector_estimate") and r["annotation"]]
        entry: dict = {
            "pages": len(rs),
            "no_estimate": sum(1 for r in rs if r["estimate"] is None),
            "estimate_ms_median": statistics.median(r["estimate_ms"] for r in rs),
            "estimate_over_annotation": {"median": pct(ratios, 50), "p5": pct(ratios, 5), "p95": pct(ratios, 95),
                                         "n": len(ratios)},
        }
        if det:
            entry["detector_over_font_size"] = {"median": pct(det, 50), "p5": pct(det, 5), "p95": pct(det, 95),
                                                "n": len(det),
                                                "ms_median": statistics.median(r["detector_ms"] for r in rs
                                                                               if "detector_ms" in r)}
        entry["over_default_when_readable"] = sum(1 for r in rs if default_readable(r) and
                                                  r["policies"]["docvlm"]["tokens"] > r["policies"]["default"]["tokens"])
        entry["default_readable_by_estimate"] = sum(1 for r in rs if default_readable(r)) / len(rs)
        entry["estimate_cpu_ms"] = {"median": statistics.median(r["estimate_cpu_ms"] for r in rs),
                                    "p90": pct([r["estimate_cpu_ms"] for r in rs], 90)}
        for p in POLICIES:
            if any(p not in r["policies"] for r in rs):
                continue
            toks = [r["policies"][p]["tokens"] for r in rs]
            vs_default = [r["policies"][p]["tokens"] / r["policies"]["default"]["tokens"] for r in rs]
            vs_fixed = [r["policies"][p]["tokens"] / r["policies"]["fixed-1288"]["tokens"] for r in rs]
            scored = [r["policies"][p]["lines_ok"] for r in rs if "lines_ok" in r["policies"][p]]
            entry[p] = {
                "tokens_per_page": sum(toks) / len(toks),
                "mean_ratio_vs_default": sum(vs_default) / len(vs_default),
                "total_ratio_vs_default": sum(toks) / sum(r["policies"]["default"]["tokens"] for r in rs),
                "mean_ratio_vs_fixed1288": sum(vs_fixed) / len(vs_fixed),
                "tiles_per_page": sum(r["policies"][p]["tiles"] for r in rs) / len(rs),
                "pages_95pct_lines_ok": (sum(1 for v in scored if v >= 0.95) / len(scored)) if scored else None,
                "pages_under_floor": (sum(1 for v in scored if v < 0.95) / len(scored)) if scored else None,
            }
        table[g] = entry
    return table


BOUND_PERCENTILES = (5.0, 10.0, 25.0, 50.0)
"""The honest bounds: the plan given a percentile of the page's own annotated line heights (what a perfect
measurement of that statistic would give a planner that does not know the page's exact 95%-line) times the
smallest uniform factor that keeps 95% of the pages readable."""
FACTOR_GRID = [round(0.80 + 0.005 * i, 3) for i in range(161)]


def oracle_line(heights: list[float]) -> float:
    """The line that 95% of a page's lines reach (the oracle plans its text to the floor)."""
    ordered = sorted(heights)
    return ordered[len(ordered) - math.ceil(0.95 * len(ordered))]


def _plan_tokens(row: dict, line: float | None, min_text_px: float) -> tuple[int, bool]:
    """(tokens, readable) of the plan of the page of `row` for a small text of `line` page px (text-layer
    yardstick, no correction), readable = 95% of its annotated lines at the floor."""
    from docvlm.plan import plan_page

    plan = plan_page(row["size"], FAMILY, text_line_px=line, min_text_px=min_text_px, max_visual_tokens=GPU_BUDGET,
                     text_height_source="text_layer" if line else "default")
    s = plan_scale(plan)
    hs = row["heights"]
    return plan.visual_tokens, sum(1 for h in hs if h * s >= min_text_px - 1e-9) / len(hs) >= 0.95


def _with_factor(rs: list[dict], lines: list[float | None], min_text_px: float, goal: float = 0.95) -> dict:
    """The smallest factor k on FACTOR_GRID (plan for line / k) that keeps `goal` of the pages readable."""
    defaults = [r["policies"]["default"]["tokens"] for r in rs]
    for k in FACTOR_GRID:
        got = [_plan_tokens(r, (v / k) if v else None, min_text_px) for r, v in zip(rs, lines, strict=True)]
        ok = sum(1 for _, good in got if good) / len(got)
        if ok >= goal:
            return {"factor": k, "pages_95pct_lines_ok": ok,
                    "mean_ratio_vs_default": sum(t / d for (t, _), d in zip(got, defaults, strict=True)) / len(rs),
                    "total_ratio_vs_default": sum(t for t, _ in got) / sum(defaults)}
    return {"factor": None}


def bounds(rows: list[dict], min_text_px: float) -> dict:
    """Per annotated image dataset: what a planner could reach with better estimates, and where docvlm's tokens
    above the oracle go.

    - `oracle-drop5`: the oracle that also lets the 5% of pages it spends most on fall to the smallest plan (the
      absolute floor under the 95%-of-pages rule; no planner that does not know the truth gets there);
    - `estimate-best-factor`: docvlm's own raster estimate with the smallest uniform factor for 95% of pages
      (what plan.ESTIMATE_PER_LINE_BOX is fitted to on dev);
    - `ann-pN`: the N-th percentile of the page's annotated line heights with its smallest uniform factor;
    - `loss`: docvlm's mean token ratio minus the oracle's, split into the estimate's error (the plan for the
      raw estimate, no factor, against the oracle's), the safety factor (docvlm against the raw estimate's plan)
      and the oracle's own rounding to the 28-px grid (its tokens against its exact scale's area / 28^2).
    """
    out: dict = {}
    groups: dict[str, list[dict]] = {}
    for r in rows:
        if "policies" in r and r.get("heights") and r["dataset"].startswith(("sroie", "funsd")):
            groups.setdefault(r["dataset"], []).append(r)
    for g, rs in groups.items():
        entry: dict = {}
        defaults = [r["policies"]["default"]["tokens"] for r in rs]
        oracle = [r["policies"]["oracle"]["tokens"] for r in rs]
        ratios = sorted(((o / d, i) for i, (o, d) in enumerate(zip(oracle, defaults, strict=True))), reverse=True)
        dropped = {i for _, i in ratios[: int(0.05 * len(rs))]}
        low = [(_plan_tokens(r, 1e9, min_text_px)[0] if i in dropped else o) for i, (r, o) in enumerate(zip(rs, oracle, strict=True))]
        entry["oracle-drop5"] = {"mean_ratio_vs_default": sum(t / d for t, d in zip(low, defaults, strict=True)) / len(rs),
                                 "total_ratio_vs_default": sum(low) / sum(defaults), "dropped": len(dropped)}
        entry["estimate-best-factor"] = _with_factor(rs, [r["estimate"] for r in rs], min_text_px)
        for q in BOUND_PERCENTILES:
            entry[f"ann-p{q:g}"] = _with_factor(rs, [pct(r["heights"], q) for r in rs], min_text_px)
        raw = [_plan_tokens(r, r["estimate"], min_text_px)[0] for r in rs]
        mine = [r["policies"]["docvlm"]["tokens"] for r in rs]
        exact = []
        for r in rs:
            w, h = r["size"]
            s = r["policies"]["oracle"]["decided_scale"]  # the policy's scale before the 28-px grid
            exact.append(w * h * s * s / F**2)
        n = len(rs)
        entry["loss"] = {
            "estimate_error": sum((a - o) / d for a, o, d in zip(raw, oracle, defaults, strict=True)) / n,
            "safety_factor": sum((m - a) / d for m, a, d in zip(mine, raw, defaults, strict=True)) / n,
            "oracle_grid_rounding": sum((o - e) / d for o, e, d in zip(oracle, exact, defaults, strict=True)) / n,
            "pages_over_oracle": sum(1 for m, o in zip(mine, oracle, strict=True) if m > o) / n,
            "pages_upscale_capped": sum(1 for r in rs if r["policies"]["docvlm"]["rule"] == "upscale-capped") / n,
            "pages_longest_side_floor": sum(1 for r in rs if r["policies"]["docvlm"]["rule"] == "longest-side") / n,
        }
        out[g] = entry
    return out


def print_bounds(table: dict) -> None:
    print("\nbounds: mean / total token ratio vs default at >= 95% of pages readable (uniform factor in brackets)")
    for g, e in table.items():
        cells = []
        for name in ["oracle-drop5", "estimate-best-factor"] + [f"ann-p{q:g}" for q in BOUND_PERCENTILES]:
            v = e[name]
            if v.get("mean_ratio_vs_default") is None:
                cells.append(f"{name} -")
                continue
            k = f" [x{v['factor']:g}]" if v.get("factor") else ""
            cells.append(f"{name} {v['mean_ratio_vs_default']:.3f}/{v['total_ratio_vs_default']:.3f}{k}")
        print(f"{g:<12}" + "; ".join(cells))
        lo = e["loss"]
        print(f"{'':<12}docvlm over the oracle (mean ratio): estimate error {lo['estimate_error']:+.3f}, safety factor "
              f"{lo['safety_factor']:+.3f}; oracle's own 28-px rounding {lo['oracle_grid_rounding']:+.3f}; pages over "
              f"the oracle {100 * lo['pages_over_oracle']:.0f}%, upscale-capped {100 * lo['pages_upscale_capped']:.0f}%, "
              f"at the longest-side floor {100 * lo['pages_longest_side_floor']:.0f}%")


def print_summary(table: dict, min_text_px: float) -> None:
    print(f"\nestimate = small-text line height (page px); annotation = 5th percentile of annotated heights; "
          f"floor {min_text_px:g} px")
    print(f"{'dataset':<20}{'pages':>6}{'cpu ms':>7}{'est/ann med [p5,p95]':>23}  "
          + "".join(f"{p:>24}" for p in POLICIES))
    print(f"{'':<58}" + "".join(f"{'tok/pg mean/tot ok95':>24}" for _ in POLICIES))
    for g, e in table.items():
        r = e["estimate_over_annotation"]
        ratio = f"{r['median']:.2f} [{r['p5']:.2f},{r['p95']:.2f}]" if r["n"] else "-"
        cells = []
        for p in POLICIES:
            if p not in e:
                cells.append("-")
                continue
            s = e[p]
            ok = "-" if s["pages_95pct_lines_ok"] is None else f"{100 * s['pages_95pct_lines_ok']:.0f}%"
            cells.append(f"{s['tokens_per_page']:>6.0f} {s['mean_ratio_vs_default']:>5.2f}/{s['total_ratio_vs_default']:.2f}"
                         f" {ok:>4}")
        print(f"{g:<20}{e['pages']:>6}{e['estimate_cpu_ms']['median']:>7.1f}{ratio:>23}  " + "".join(f"{c:>24}" for c in cells))
        print(f"{'':<20}default readable by the estimate: {100 * e['default_readable_by_estimate']:.0f}% of pages; "
              f"of them, planned over the default's tokens: {e['over_default_when_readable']}")
        if "detector_over_font_size" in e:
            d = e["detector_over_font_size"]
            print(f"{'':<20}detector on the rendered pages / PDF font sizes: median {d['median']:.2f} "
                  f"[{d['p5']:.2f}, {d['p95']:.2f}] over {d['n']} pages, {d['ms_median']:.0f} ms/page")


def scale_invariance(rows: list[dict], data: Path, scales: list[float], limit: int, min_text_px: float) -> list[dict]:
    """Resample sampled image pages by each factor and plan again; compare with x1."""
    from PIL import Image

    from docvlm.plan import plan_page
    from docvlm.textsize import detect_text_size

    Image.MAX_IMAGE_PIXELS = None
    images = [r for r in rows if "policies" in r and r["file"].lower().endswith((".jpg", ".png"))
              and r["dataset"].startswith(("sroie", "funsd"))]
    # the largest scans first (the hard case), then an even sample of the rest
    images.sort(key=lambda r: -r["size"][0] * r["size"][1])
    picked = images[: max(1, limit // 3)] + even_sample(images[max(1, limit // 3):], limit - max(1, limit // 3))
    out = []
    for r in picked:
        folder = "img" if r["dataset"].startswith("sroie") else "images"
        base = "sroie-dev" if r["dataset"].startswith("sroie") else "funsd-train"
        src = Image.open(data / base / folder / r["file"]).convert("RGB")
        entry = {"dataset": r["dataset"], "file": r["file"], "size": r["size"], "by_scale": {}}
        for s in scales:
            w, h = max(8, round(src.width * s)), max(8, round(src.height * s))
            if w * h > 80_000_000:  # the default --max-page-pixels: such a page is refused, not planned
                entry["by_scale"][str(s)] = {"skipped": f"{w}x{h} over the 80 MP page cap"}
                continue
            img = src if s == 1 else src.resize((w, h), Image.Resampling.LANCZOS if s < 1 else Image.Resampling.BICUBIC)
            size = detect_text_size(img)
            plan = plan_page((w, h), FAMILY, text_line_px=size.line_px, line_height_px=size.tall_px,
                             text_height_source=size.source,
                             min_text_px=min_text_px, max_visual_tokens=GPU_BUDGET)
            content = plan.scale * math.sqrt(w * h)  # encoded side of the page's content (geometric mean)
            entry["by_scale"][str(s)] = {"size": [w, h], "estimate_rel": (size.line_px or 0) / s,
                                         "content_px": content, "tokens": plan.visual_tokens,
                                         "ms": 1000 * size.seconds}
            del img
        base1 = entry["by_scale"].get("1") or entry["by_scale"].get("1.0")
        for v in entry["by_scale"].values():
            if "tokens" in v and base1:
                v["content_vs_x1"] = v["content_px"] / base1["content_px"]
                v["tokens_vs_x1"] = v["tokens"] / base1["tokens"]
        out.append(entry)

    return out


def print_invariance(inv: list[dict], scales: list[float]) -> None:
    keys = [str(s) for s in scales]
    print("\nscale invariance: encoded content size / tokens relative to x1 (goal: within 25% / 1.33x)")
    print(f"{'page':<28}{'size':>11}" + "".join(f"{'x' + k:>16}" for k in keys))
    pairs = fails = 0
    for e in inv:
        cells = []
        for k in keys:
            v = e["by_scale"].get(k, {})
            if "content_vs_x1" in v:
                cells.append(f"{v['content_vs_x1']:.2f} / {v['tokens_vs_x1']:.2f}")
                if k not in ("1", "1.0"):
                    pairs += 1
                    bad = abs(v["content_vs_x1"] - 1) > 0.25 or not (1 / 1.33 <= v["tokens_vs_x1"] <= 1.33)
                    fails += bad
            else:
                cells.append("skip")
        print(f"{e['dataset'] + '/' + e['file']:<28}{'x'.join(map(str, e['size'])):>11}" + "".join(f"{c:>16}" for c in cells))
    print(f"{pairs - fails} of {pairs} resampled pairs within 25% content size and 1.33x tokens")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--split", choices=["dev", "check", "all"], default="all")
    ap.add_argument("--limit", type=int, default=None, help="Files per dataset and split, sampled evenly.")
    ap.add_argument("--pdf-limit", type=int, default=None, help="Files per PDF set [default: --limit].")
    ap.add_argument("--max-pages", type=int, default=2, help="Pages per PDF.")
    ap.add_argument("--min-text-px", type=float, default=16.0)
    ap.add_argument("--scales", default="0.3,1,3,5", help="Resampling factors of the invariance table ('' = off).")
    ap.add_argument("--scale-limit", type=int, default=8, help="Image pages in the invariance table.")
    ap.add_argument("--tag", default="")
    args = ap.parse_args()
    if not args.data.is_dir():
        ap.error(f"--data {args.data}: no such folder (the shared data sits at ../shared/data of the main checkout)")
    started = time.time()
    load = os.getloadavg()[0]
    rows = run_pages(args.data, args.split, args.limit, args.max_pages, args.min_text_px, args.pdf_limit)
    table = summarize(rows)
    print_summary(table, args.min_text_px)
    bound_table = bounds(rows, args.min_text_px)
    print_bounds(bound_table)
    scales = [float(s) for s in args.scales.split(",") if s.strip()]
    inv = scale_invariance(rows, args.data, scales, args.scale_limit, args.min_text_px) if scales else []
    if inv:
        print_invariance(inv, scales)
    errors = [r for r in rows if "error" in r]
    if errors:
        print(f"{len(errors)} file(s) could not be opened: " + "; ".join(r["error"][:80] for r in errors[:5]))
    out = ROOT / "bench" / "results" / f"plan_bench-{time.strftime('%Y%m%d-%H%M%S')}{'-' + args.tag if args.tag else ''}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, "load_at_start": load,
                               "seconds": time.time() - started, "summary": table, "bounds": bound_table, "invariance": inv, "rows": rows},
                              indent=1, default=str))
    print(f"load at start {load:.2f}; {time.time() - started:.0f} s; wrote {out}")


if __name__ == "__main__":
    main()
