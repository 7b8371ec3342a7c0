"""olmOCR-bench sample: per fact type, docvlm (offline `ocr` engine, Markdown) against pymupdf4llm, one run.

Data (never copied into the repo): ../shared/data/olmocr-bench-sample (pdfs/, dataset.jsonl, blanks.jsonl).
Scorer: ../shared/tools/olmocr_facts.py, called as a program (never copied). Each page is converted to
Markdown by each system into bench/results/olmocr-<stamp>/<system>/<pdf>_pg<N>_repeat1.md, then scored.

Also measured here, per page of the text-layer path: the time of the layout stage (page + document
processors) against the time of the engine's text-layer read + assembly, interleaved in the same run.

`--also-docling` converts ../shared/data/docling-pdf/sources too and compares each document's Markdown with
the peer's groundtruth Markdown there (not truth: a second opinion): text similarity, headings found, and the
lines docvlm marked as furniture, so rules tuned on the 21 bench files can be checked on other pages.

pymupdf4llm: the venv holds only the empty pymupdf4llm 2.0 placeholder (its code moved into pymupdf 2.x),
so pass a folder with pymupdf4llm 0.0.27 unpacked (pure Python, works with pymupdf 1.28):
    pip download pymupdf4llm==0.0.27 --no-deps -d /tmp/p4l && unzip -o /tmp/p4l/*.whl -d /tmp/p4l/src

    python bench/olmocr_bench.py --pymupdf4llm-path /tmp/p4l/src --also-docling
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHARED = next((p for p in (ROOT.parent / "shared", ROOT.parent.parent / "shared") if p.is_dir()), ROOT.parent / "shared")
DEFAULT_DATA = SHARED / "data"  # ../shared/data from the repo root (or from a worktree's parent)
DEFAULT_SCORER = SHARED / "tools" / "olmocr_facts.py"
RESULTS = ROOT / "bench" / "results"


def md_name(rel: str, page: int) -> str:
    return f"{rel[:-4] if rel.endswith('.pdf') else rel}_pg{page}_repeat1.md"


def convert_docvlm(pdf: Path, options, engine) -> tuple[list[str], dict]:
    """Markdown per page, plus timings of the text-layer path and of the layout stage (seconds, per page)."""
    from docvlm.engines.base import Task
    from docvlm.layout import (
        DocumentContext,
        LayoutTimings,
        PageContext,
        apply_document_layout,
        apply_page_layout,
    )
    from docvlm.pipeline import assemble_page
    from docvlm.sources import open_document
    from docvlm.writers import render_page_markdown

    timings = LayoutTimings()
    read_s: list[float] = []
    layout_s: list[float] = []
    sources: list[str] = []
    pages = []
    with open_document(pdf, options, display_path=pdf.name) as doc:
        for sp in doc.pages():
            t0 = time.perf_counter()
            result = engine.process_pages([sp], Task())[0]
            result = assemble_page(sp, result)
            t1 = time.perf_counter()
            result = apply_page_layout(result, PageContext(source=sp, options=options, shown=pdf.name,
                                                           engine="ocr"), timings)
            t2 = time.perf_counter()
            pages.append(result)
            read_s.append(t1 - t0)
            layout_s.append(t2 - t1)
            sources.append(result.text_source or "failed")
    t3 = time.perf_counter()
    pages = apply_document_layout(pages, DocumentContext(options=options, shown=pdf.name), timings)
    doc_s = (time.perf_counter() - t3) / max(1, len(pages))
    mds = [render_page_markdown(p, keep_furniture=options.keep_furniture) for p in pages]
    info = {
        "pages": [
            {"read_s": r, "layout_s": la + doc_s, "source": s, "errors": [e.code for e in p.errors]}
            for r, la, s, p in zip(read_s, layout_s, sources, pages, strict=True)
        ],
        "steps_s": timings.seconds,
    }
    return mds, info


def convert_pymupdf4llm(pdf: Path) -> list[str]:
    import pymupdf
    import pymupdf4llm

    with pymupdf.open(pdf) as doc:
        return [pymupdf4llm.to_markdown(doc, pages=[i], show_progress=False) for i in range(doc.page_count)]


def score(scorer: Path, dataset: Path, md_dir: Path, name: str, out: Path) -> dict:
    proc = subprocess.run(
        [sys.executable, str(scorer), str(dataset), str(md_dir), "--name", name, "--out", str(out)],
        capture_output=True, text=True, check=False,
    )
    print(proc.stdout)
    if proc.returncode != 0:
        print(proc.stderr, file=sys.stderr)
    return json.loads(out.read_text()) if out.is_file() else {}


def per_type(facts: dict) -> dict[str, tuple[int, int]]:
    """{type: (passed, total)} from the scorer's per-fact JSON (list of facts with 'type' and 'passed')."""
    items = facts.get("facts") or facts.get("results") or (facts if isinstance(facts, list) else [])
    out: dict[str, list[int]] = {}
    for f in items:
        t = f.get("type", "?")
        out.setdefault(t, [0, 0])
        out[t][1] += 1
        out[t][0] += 1 if f.get("passed") else 0
    return {k: (v[0], v[1]) for k, v in sorted(out.items())}


def _plain(md: str) -> str:
    md = re.sub(r"<!--.*?-->", " ", md)
    md = re.sub(r"<[^>]+>", " ", md)
    md = re.sub(r"[#*_|`>\-]+", " ", md)
    return " ".join(md.split()).lower()


def docling_compare(data: Path, out_dir: Path, options, engine, use_p4l: bool) -> list[dict]:
    from rapidfuzz import fuzz

    src = data / "docling-pdf" / "sources"
    gt = data / "docling-pdf" / "groundtruth"
    rows = []
    for pdf in sorted(src.glob("*.pdf")):
        gt_md = gt / (pdf.stem + ".md")
        if not gt_md.is_file():
            continue
        truth = gt_md.read_text(errors="replace")
        mds, info = convert_docvlm(pdf, options, engine)
        ours = "\n\n".join(mds)
        (out_dir / "docling" / "docvlm").mkdir(parents=True, exist_ok=True)
        (out_dir / "docling" / "docvlm" / (pdf.stem + ".md")).write_text(ours)
        row = {
            "doc": pdf.stem,
            "pages": len(mds),
            "similarity_docvlm": round(fuzz.ratio(_plain(ours), _plain(truth)) / 100, 3),
            "headings_truth": len(re.findall(r"^#{1,6} ", truth, re.M)),
            "headings_docvlm": len(re.findall(r"^#{1,6} ", ours, re.M)),
            "read_s": sum(p["read_s"] for p in info["pages"]),
            "layout_s": sum(p["layout_s"] for p in info["pages"]),
            "text_layer_pages": sum(1 for p in info["pages"] if p["source"] == "text_layer"),
        }
        if use_p4l:
            p4 = "\n\n".join(convert_pymupdf4llm(pdf))
            row["similarity_pymupdf4llm"] = round(fuzz.ratio(_plain(p4), _plain(truth)) / 100, 3)
            row["headings_pymupdf4llm"] = len(re.findall(r"^#{1,6} ", p4, re.M))
        rows.append(row)
        print(json.dumps(row))
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--scorer", type=Path, default=DEFAULT_SCORER)
    ap.add_argument("--pymupdf4llm-path", type=Path, default=None, help="folder with pymupdf4llm unpacked")
    ap.add_argument("--dpi", type=int, default=200)
    ap.add_argument("--keep-furniture", action="store_true")
    ap.add_argument("--also-docling", action="store_true", help="also compare on docling-pdf (second opinion)")
    ap.add_argument("--only", default="", help="comma-separated pdf names (debugging)")
    args = ap.parse_args()

    from docvlm.engines.ocr import OcrEngine
    from docvlm.options import make_options

    dataset = args.data / "olmocr-bench-sample"
    stamp = time.strftime("%Y%m%d-%H%M%S")
    out_dir = RESULTS / f"olmocr-{stamp}"
    use_p4l = False
    if args.pymupdf4llm_path:
        sys.path.insert(0, str(args.pymupdf4llm_path))
    try:
        import pymupdf4llm

        use_p4l = hasattr(pymupdf4llm, "to_markdown")
    except ImportError:
        pass
    if not use_p4l:
        print("pymupdf4llm not importable (see the module docstring for --pymupdf4llm-path); docvlm only")

    options = make_options(engine="ocr", dpi=args.dpi, keep_furniture=args.keep_furniture)
    engine = OcrEngine(options)
    pdfs = sorted((dataset / "pdfs").rglob("*.pdf"))
    if args.only:
        keep = set(args.only.split(","))
        pdfs = [p for p in pdfs if p.name in keep or p.stem in keep]
    page_rows = []
    steps_tl: dict[str, float] = {}  # seconds per layout step, summed over text-layer documents
    for pdf in pdfs:
        rel = str(pdf.relative_to(dataset / "pdfs"))
        mds, info = convert_docvlm(pdf, options, engine)
        for i, md in enumerate(mds):
            target = out_dir / "docvlm" / md_name(rel, i + 1)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(md)
        for p in info["pages"]:
            page_rows.append({"pdf": rel, **p})
        if all(p["source"] == "text_layer" for p in info["pages"]):
            for step, sec in info["steps_s"].items():
                steps_tl[step] = steps_tl.get(step, 0.0) + sec
        if use_p4l:
            for i, md in enumerate(convert_pymupdf4llm(pdf)):
                target = out_dir / "pymupdf4llm" / md_name(rel, i + 1)
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(md)
    out_dir.mkdir(parents=True, exist_ok=True)
    summary: dict[str, object] = {"load": os.getloadavg(), "dpi": args.dpi, "pdfs": len(pdfs)}
    systems = ["docvlm"] + (["pymupdf4llm"] if use_p4l else [])
    for name in systems:
        facts = score(args.scorer, dataset, out_dir / name, name, out_dir / f"facts_{name}.json")
        summary[name] = per_type(facts)
    tl = [r for r in page_rows if r["source"] == "text_layer"]
    if tl:
        read = statistics.median(r["read_s"] for r in tl)
        lay = statistics.median(r["layout_s"] for r in tl)
        summary["text_layer_pages"] = len(tl)
        summary["median_read_ms"] = round(read * 1000, 2)
        summary["median_layout_ms"] = round(lay * 1000, 2)
        read_total = sum(r["read_s"] for r in tl)
        summary["layout_over_read_total"] = round(sum(r["layout_s"] for r in tl) / read_total, 3)
        summary["step_over_read"] = {k: round(v / read_total, 4) for k, v in sorted(steps_tl.items())}
    summary["pages"] = page_rows
    if args.also_docling:
        rows = docling_compare(args.data, out_dir, options, engine, use_p4l)
        summary["docling"] = rows
        if rows:
            read = sum(r["read_s"] for r in rows)
            lay = sum(r["layout_s"] for r in rows)
            summary["docling_layout_over_read"] = round(lay / read, 3) if read else None
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    print(f"\nresults in {out_dir}")
    for name in systems:
        table = summary[name]
        total = sum(v[0] for v in table.values()), sum(v[1] for v in table.values())  # type: ignore[union-attr]
        print(name, {k: f"{a}/{b}" for k, (a, b) in table.items()}, f"total {total[0]}/{total[1]}")  # type: ignore[union-attr]
    for k in ("text_layer_pages", "median_read_ms", "median_layout_ms", "layout_over_read_total", "step_over_read",
              "docling_layout_over_read"):
        if k in summary:
            print(k, summary[k])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
