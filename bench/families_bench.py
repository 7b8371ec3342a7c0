"""Every model family on real pages: oracle geometry, tokens vs each family's own default, LLaVA-NeXT alignment.

1. Oracle round trip (per family): for each page, docvlm's plan for the family; for each tile, what a perfect
   model of that family prints for the truth boxes the tile holds whole (`family.render_output` of
   `family.encoded_to_model`: rounded/quantized in the family's own convention); parsed and mapped back by the
   same code as the engines (`grounding.page_lines_from_outputs`); error of every box edge in page px, and
   the share of edges within one grid unit of the tile. Truth: SROIE line boxes (receipts, axis-aligned hull of
   the quadrilaterals) and PDF text-layer words (invoice2data and docling PDFs, page 1, 150 dpi).
2. Tokens per page and readability: the family's own processor on the whole page (`family.default_policy`:
   Qwen smart_resize default, PaliGemma 448 stretch, Florence-2 768 stretch, DeepSeek-OCR Base 1024 pad,
   LLaVA-NeXT AnyRes best pinpoint) against docvlm's plan; a page is readable when its small text (5th
   percentile of truth line heights) reaches the 16-px floor in encoded pixels.
3. LLaVA-NeXT alignment on receipts: the ocr engine's own lines (cache of current main, --ocr-cache) stand in
   for the model's output, with words dropped and misspelt at known rates, plus one line that is not on the
   page; `families.align.align_lines` grounds them on the OCR words. Reported: share of real lines grounded,
   share of fake lines grounded (must be 0), mean / p95 edge error of grounded boxes against the box of the
   words the stand-in kept.

Splits: dev = SROIE 000-149, check = 150-299 (PDFs in both). `--limit N` samples N receipts evenly.

    nice python bench/families_bench.py --split dev --limit 60
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
from pathlib import Path

from PIL import Image

from docvlm.datamodel import Line, TileOutput, Word
from docvlm.families import FAMILY_NAMES, get_family
from docvlm.families.align import align_lines
from docvlm.geometry import page_to_encoded
from docvlm.grounding import page_lines_from_outputs

DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
"""../shared/data of the checkout; --data overrides (a worktree elsewhere)."""
MIN_TEXT_PX = 16.0
READABLE = 0.99
"""A page counts as readable when its small text reaches 99% of the floor (rounding of encoded sizes)."""
FAKE_LINE = "purple elephant orchestra tuesday"
"""The stand-in line that is not on any receipt: it must stay ungrounded."""
PDF_DPI = 150


def pdf_files() -> list[Path]:
    return [*sorted((DATA / "invoice2data" / "compare").glob("*.pdf")),
            *sorted((DATA / "docling-pdf" / "sources").glob("*.pdf"))]


def pct(values, q):
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, int(q * (len(s) - 1) + 0.5))]


def sroie_pages(split: str, limit: int | None):
    ids = range(0, 150) if split == "dev" else range(150, 300)
    ids = list(ids)
    if limit and limit < len(ids):
        step = len(ids) / limit
        ids = [ids[int(i * step)] for i in range(limit)]
    for i in ids:
        img = DATA / "sroie-dev" / "img" / f"{i:03d}.jpg"
        box = DATA / "sroie-dev" / "box" / f"{i:03d}.csv"
        if not img.exists() or not box.exists():
            continue
        with Image.open(img) as im:
            size = im.size
        truth = []
        for row in box.read_text(encoding="utf-8", errors="replace").splitlines():
            parts = row.split(",", 8)
            if len(parts) < 9:
                continue
            try:
                xs = [float(v) for v in parts[0:8:2]]
                ys = [float(v) for v in parts[1:8:2]]
            except ValueError:
                continue
            b = (max(0.0, min(xs)), max(0.0, min(ys)), min(size[0], max(xs)), min(size[1], max(ys)))
            if b[2] > b[0] and b[3] > b[1]:
                truth.append(b)
        if truth:
            yield f"sroie/{i:03d}", size, truth


def pdf_pages():
    from docvlm.options import make_options
    from docvlm.sources import open_document

    for path in pdf_files():
        try:
            with open_document(str(path), make_options(dpi=PDF_DPI, max_pages=1)) as doc:
                for page in doc.pages():
                    layer = page.text_layer()
                    if layer is None or not layer.words:
                        continue
                    truth = [tuple(float(v) for v in w.bbox_page_px) for w in layer.words
                             if w.bbox_page_px[2] > w.bbox_page_px[0] and w.bbox_page_px[3] > w.bbox_page_px[1]]
                    yield f"pdf/{path.name}", (page.width_px, page.height_px), truth
        except Exception as exc:  # noqa: BLE001 - a bench skips a PDF it cannot open, and says so
            print(f"skip {path.name}: {type(exc).__name__}: {exc}")


def small_text(truth) -> float:
    return pct([b[3] - b[1] for b in truth], 0.05)


def plan_family(family: str, size, truth):
    heights = [b[3] - b[1] for b in truth]
    return get_family(family).plan(size, text_line_px=small_text(truth), min_text_px=MIN_TEXT_PX,
                                   max_visual_tokens=None, task_kind="read", text_height_source="text_layer",
                                   line_height_px=pct(heights, 0.95), device_memory_bytes=2**33)


def oracle(family: str, size, truth, stats: dict) -> None:
    fam = get_family(family)
    plan = plan_family(family, size, truth)
    named = [(f"L{i}", b) for i, b in enumerate(truth)]
    task = "ground" if family == "llava-next" else "read"
    outputs = []
    for tile in plan.tiles:
        x0, y0, x1, y1 = tile.crop_page_px
        items = [(t, fam.encoded_to_model(page_to_encoded(b, tile), tile.encoded_size))
                 for t, b in named if x0 <= b[0] and y0 <= b[1] and b[2] <= x1 and b[3] <= y1]
        outputs.append(TileOutput(tile=tile.index, raw_text=fam.render_output(items, task=task)))
    lines, errors = page_lines_from_outputs(plan, outputs)
    stats["errors"] += len(errors)
    tiles = {t.index: t for t in plan.tiles}
    got = {}
    for ln in lines:
        got.setdefault(ln.text, ln)
    stats["boxes"] += len(truth)
    for t, b in named:
        ln = got.get(t)
        if ln is None:
            stats["not_whole"] += 1
            continue
        tile = tiles[ln.tile]
        ux, uy = fam.grid_unit_px(tile.encoded_size)
        kx = (tile.crop_page_px[2] - tile.crop_page_px[0]) / tile.encoded_size[0]
        ky = (tile.crop_page_px[3] - tile.crop_page_px[1]) / tile.encoded_size[1]
        for k, (a, c) in enumerate(zip(ln.bbox_page_px, b, strict=True)):
            err = abs(a - c)
            unit = ux * kx if k % 2 == 0 else uy * ky
            stats["err"].append(err)
            stats["within"] += err <= unit + 1e-6
            stats["units"].append(unit)


def tokens(family: str, size, truth, stats: dict) -> None:
    fam = get_family(family)
    line = small_text(truth)
    default_tokens, default_scale = fam.default_policy(size)
    plan = plan_family(family, size, truth)
    stats["default_tokens"].append(default_tokens)
    stats["plan_tokens"].append(plan.visual_tokens)
    # the plan's real scale: encoded px per page px of its coarsest reading tile (y axis, as text height)
    scale = min(t.encoded_size[1] / (t.crop_page_px[3] - t.crop_page_px[1]) for t in plan.tiles
                if t.kind != "thumbnail")
    stats["default_readable"] += line * default_scale >= READABLE * MIN_TEXT_PX
    stats["plan_readable"] += line * scale >= READABLE * MIN_TEXT_PX
    stats["capped"] += plan.scale_rule in ("upscale-capped", "page-tokens")
    stats["pages"] += 1


def corrupt(word: str, rng: random.Random) -> str:
    if len(word) < 2:
        return word + "x"
    i = rng.randrange(len(word))
    return word[:i] + rng.choice("abcdefghijklmnopqrstuvwxyz0123456789") + word[i + 1:]


def alignment(cache: Path, split: str, limit: int | None, drop: float, miss: float, seed: int = 0) -> dict:
    rng = random.Random(seed)
    out = {"lines": 0, "grounded": 0, "correct": 0, "fake": 0, "fake_grounded": 0, "err": [], "pages": 0}
    ids = list(range(0, 150) if split == "dev" else range(150, 300))
    if limit and limit < len(ids):
        step = len(ids) / limit
        ids = [ids[int(i * step)] for i in range(limit)]
    for i in ids:
        f = cache / f"{i:03d}.jpg.json"
        if not f.exists():
            continue
        page = json.loads(f.read_text())["pages"][0]
        ocr = [Line.model_validate(ln) for ln in page["lines"]]
        model_lines, sources = [], []
        for ln in ocr:
            words = ln.words or [Word(text=ln.text, bbox_page_px=ln.bbox_page_px)]
            kept = [w for w in words if rng.random() >= drop]
            if not kept:
                continue
            text = " ".join(corrupt(w.text, rng) if rng.random() < miss else w.text for w in kept)
            model_lines.append(text)
            sources.append(kept)
        fake_at = rng.randrange(len(model_lines) + 1)
        model_lines.insert(fake_at, FAKE_LINE)
        sources.insert(fake_at, None)
        result = align_lines(model_lines, ocr)
        by_text = {}
        for ln in result.lines:
            by_text.setdefault(ln.text, []).append(ln)
        out["pages"] += 1
        for text, src in zip(model_lines, sources, strict=True):
            hits = by_text.get(text, [])
            if src is None:
                out["fake"] += 1
                out["fake_grounded"] += bool(hits)
                continue
            out["lines"] += 1
            if not hits:
                continue
            ln = hits.pop(0)
            out["grounded"] += 1
            want = (min(w.bbox_page_px[0] for w in src), min(w.bbox_page_px[1] for w in src),
                    max(w.bbox_page_px[2] for w in src), max(w.bbox_page_px[3] for w in src))
            errs = [abs(a - b) for a, b in zip(ln.bbox_page_px, want, strict=True)]
            out["err"].extend(errs)
            out["correct"] += max(errs) <= 2.0
    return out


def main() -> None:
    global DATA
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--split", choices=("dev", "check"), default="dev")
    ap.add_argument("--limit", type=int, default=None, help="receipts sampled evenly from the split")
    ap.add_argument("--ocr-cache", type=Path, default=Path("/work/cache/sroie-ocr-main"))
    ap.add_argument("--json", type=Path, default=None, help="write the figures here")
    ap.add_argument("--data", type=Path, default=None, help="[default: ../shared/data of the checkout]")
    args = ap.parse_args()
    DATA = args.data or DATA
    if not DATA.is_dir():
        ap.error(f"--data {DATA}: no such folder (the shared data sits at ../shared/data of the main checkout)")

    sets = {"receipts": list(sroie_pages(args.split, args.limit)), "pdf": list(pdf_pages())}
    report: dict = {"split": args.split, "pages": {k: len(v) for k, v in sets.items()}, "oracle": {}, "tokens": {}}
    print(f"pages: {report['pages']}")
    print("\n1. oracle round trip: |edge error| in page px; share of edges within one grid unit")
    print(f"{'set':9} {'family':13} {'boxes':>6} {'mean':>6} {'p95':>6} {'<=1u':>7} {'unit':>6} {'cut':>6} {'errors':>6}")
    for name, pages in sets.items():
        for family in FAMILY_NAMES:
            st = {"err": [], "units": [], "within": 0, "boxes": 0, "not_whole": 0, "errors": 0}
            for _, size, truth in pages:
                oracle(family, size, truth, st)
            n = len(st["err"])
            row = {"boxes": st["boxes"], "mean_px": statistics.fmean(st["err"]) if n else None,
                   "p95_px": pct(st["err"], 0.95), "within_one_unit": st["within"] / n if n else None,
                   "median_unit_px": pct(st["units"], 0.5), "cut_by_every_tile": st["not_whole"] / max(1, st["boxes"]),
                   "parse_errors": st["errors"]}
            report["oracle"][f"{name}/{family}"] = row
            print(f"{name:9} {family:13} {row['boxes']:6d} {row['mean_px']:6.2f} {row['p95_px']:6.2f} "
                  f"{row['within_one_unit']:7.1%} {row['median_unit_px']:6.2f} {row['cut_by_every_tile']:6.1%} "
                  f"{row['parse_errors']:6d}")
    print("\n2. tokens per page (median) and readable pages (small text >= 16 encoded px)")
    print(f"{'set':9} {'family':13} {'default tok':>11} {'docvlm tok':>10} {'default ok':>10} {'docvlm ok':>9} "
          f"{'capped':>6}")
    for name, pages in sets.items():
        for family in FAMILY_NAMES:
            st = {"default_tokens": [], "plan_tokens": [], "default_readable": 0, "plan_readable": 0, "pages": 0,
                  "capped": 0}
            for _, size, truth in pages:
                tokens(family, size, truth, st)
            row = {"default_tokens_median": statistics.median(st["default_tokens"]),
                   "plan_tokens_median": statistics.median(st["plan_tokens"]),
                   "default_tokens_sum": sum(st["default_tokens"]), "plan_tokens_sum": sum(st["plan_tokens"]),
                   "default_readable": st["default_readable"] / st["pages"],
                   "plan_readable": st["plan_readable"] / st["pages"],
                   "plan_capped": st["capped"] / st["pages"]}
            report["tokens"][f"{name}/{family}"] = row
            print(f"{name:9} {family:13} {row['default_tokens_median']:11.0f} {row['plan_tokens_median']:10.0f} "
                  f"{row['default_readable']:10.1%} {row['plan_readable']:9.1%} {row['plan_capped']:6.1%}")
    print("\n3. LLaVA-NeXT text-to-OCR alignment (stand-in output = OCR text, words dropped / misspelt)")
    print(f"{'drop':>5} {'miss':>5} {'pages':>5} {'lines':>6} {'grounded':>8} {'exact':>6} {'mean':>6} {'p95':>6} {'fake grounded':>13}")
    report["alignment"] = []
    for drop, miss in ((0.0, 0.0), (0.1, 0.1), (0.2, 0.2), (0.3, 0.3)):
        a = alignment(args.ocr_cache, args.split, args.limit, drop, miss)
        row = {"drop": drop, "misspell": miss, "pages": a["pages"], "lines": a["lines"],
               "grounded": a["grounded"] / max(1, a["lines"]), "edges_within_2px": a["correct"] / max(1, a["grounded"]),
               "mean_px": statistics.fmean(a["err"]) if a["err"] else None, "p95_px": pct(a["err"], 0.95),
               "fake_grounded": a["fake_grounded"] / max(1, a["fake"])}
        report["alignment"].append(row)
        print(f"{drop:5.0%} {miss:5.0%} {row['pages']:5d} {row['lines']:6d} {row['grounded']:8.1%} "
              f"{row['edges_within_2px']:6.1%} {row['mean_px'] or 0:6.2f} {row['p95_px']:6.2f} {row['fake_grounded']:13.1%}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
