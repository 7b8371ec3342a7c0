"""Batch runner and Markdown reading order on real documents.

1. Throughput of `run_batch` (default ocr engine; born-digital PDFs take the text-layer path) with --workers 1
   and 2, then the resume pass (every document skipped) on the same output folder.
2. Reading order of the Markdown writer against the `order` facts of olmocr-bench-sample (text A must come
   before text B), next to a naive top-to-bottom, left-to-right order of the same lines.

    python bench/batch_bench.py --data ../shared/data
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def norm(text: str) -> str:
    text = text.replace("\\", "")
    return re.sub(r"[^0-9a-z]+", "", text.lower())


def find(hay: str, needle: str) -> int:
    """Position of `needle` in `hay` after normalization; tries a 40-char prefix, then a 40-char suffix."""
    n = norm(needle)
    for probe in (n, n[:40], n[-40:]):
        if probe and (i := hay.find(probe)) >= 0:
            return i
    return -1


def order_facts(data: Path) -> list[dict]:
    facts = []
    for raw in (data / "olmocr-bench-sample" / "dataset.jsonl").read_text().splitlines():
        if raw.strip():
            fact = json.loads(raw)
            if fact.get("type") == "order":
                facts.append(fact)
    return facts


def bench_order(data: Path) -> dict:
    import docvlm
    from docvlm.writers import render_markdown

    facts = order_facts(data)
    cache: dict[tuple[str, int], tuple[str, str]] = {}
    rows = {"markdown": [0, 0, 0], "naive": [0, 0, 0]}  # pass, fail, not found
    for fact in facts:
        key = (fact["pdf"], fact["page"])
        if key not in cache:
            result = docvlm.convert(str(data / "olmocr-bench-sample" / "pdfs" / fact["pdf"]), pages=str(fact["page"]))
            md = render_markdown(result)
            naive = " ".join(
                ln.text for p in result.pages
                for ln in sorted(p.lines, key=lambda ln: (round(ln.bbox_page_px[1] / 10), ln.bbox_page_px[0]))
            )
            cache[key] = (norm(md), norm(naive))
        for name, hay in zip(("markdown", "naive"), cache[key], strict=True):
            a, b = find(hay, fact["before"]), find(hay, fact["after"])
            rows[name][2 if a < 0 or b < 0 else 0 if a < b else 1] += 1
    return {"facts": len(facts), "pages": len(cache),
            **{name: {"pass": r[0], "fail": r[1], "not_found": r[2]} for name, r in rows.items()}}


def bench_batch(data: Path, workers_list: list[int]) -> list[dict]:
    from docvlm.batch import run_batch
    from docvlm.options import make_options

    inputs = [data / "docling-pdf", data / "invoice2data"]
    out_rows = []
    for workers in workers_list:
        tmp = Path(tempfile.mkdtemp(prefix="docvlm-batch-bench-"))
        try:
            options = make_options(formats=("json", "md"))
            t0 = time.perf_counter()
            s = run_batch(inputs, tmp, options, workers=workers)
            first = time.perf_counter() - t0
            t0 = time.perf_counter()
            s2 = run_batch(inputs, tmp, options, workers=workers)
            resume = time.perf_counter() - t0
            out_rows.append({
                "workers": workers, "documents": s.totals.documents, "pages": s.totals.pages,
                "failure": s.totals.failure, "partial": s.totals.partial, "seconds": round(first, 2),
                "pages_per_s": round(s.totals.pages / first, 2), "docs_per_s": round(s.totals.documents / first, 2),
                "resume_seconds": round(resume, 2), "resumed": s2.totals.resumed,
            })
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return out_rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--workers", default="1,2", help="comma list of worker counts")
    parser.add_argument("--skip-batch", action="store_true")
    args = parser.parse_args()
    results: dict = {"data": str(args.data)}
    results["order"] = bench_order(args.data)
    o = results["order"]
    print(f"reading order on olmocr-bench-sample: {o['facts']} order facts on {o['pages']} pages")
    print(f"{'order':<10} {'pass':>5} {'fail':>5} {'not found':>10}")
    for name in ("markdown", "naive"):
        print(f"{name:<10} {o[name]['pass']:>5} {o[name]['fail']:>5} {o[name]['not_found']:>10}")
    if not args.skip_batch:
        results["batch"] = bench_batch(args.data, [int(w) for w in args.workers.split(",")])
        cols = ["workers", "documents", "pages", "failure", "partial", "seconds", "pages_per_s", "docs_per_s",
                "resume_seconds", "resumed"]
        print(" ".join(f"{c:>14}" for c in cols))
        for row in results["batch"]:
            print(" ".join(f"{row[c]:>14}" for c in cols))
    out = ROOT / "bench" / "results" / "batch_bench.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
