"""Pages per second of the `ocr` engine's text-layer path on born-digital PDFs.

Data (never copied into the repo): ../shared/data/invoice2data/compare/*.pdf and ../shared/data/docling-pdf/
sources/*.pdf. Each PDF goes through the whole pipeline (`convert_document`: sources -> OcrEngine ->
assembled, validated result). Pages whose text layer is not usable would be OCRed; by default they are
counted and skipped (the engine's OCR step is replaced by a fast typed failure) so the numbers measure the
text-layer path alone; --with-ocr runs real OCR on them instead.

    python bench/textlayer_bench.py --repeat 3
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA = ROOT.parent / "shared" / "data"
RESULTS = ROOT / "bench" / "results"
SETS = {"invoice2data": "invoice2data/compare", "docling-pdf": "docling-pdf/sources"}


def make_engine(options, with_ocr: bool):
    from docvlm.engines.ocr import OcrEngine
    from docvlm.errors import DocvlmError

    class OcrSkipped(DocvlmError):
        code = "ocr_skipped"

    class TextLayerOnlyEngine(OcrEngine):
        """The real engine, except that a page needing OCR fails fast instead of being read."""

        def ocr_image(self, image):
            raise OcrSkipped("no usable text layer; OCR skipped by the bench")

    return OcrEngine(options) if with_ocr else TextLayerOnlyEngine(options)


def run(pdfs: Sequence[Path], repeat: int, with_ocr: bool) -> dict:
    from docvlm.options import ConvertOptions
    from docvlm.pipeline import convert_document

    options = ConvertOptions()
    engine = make_engine(options, with_ocr)
    if pdfs:
        convert_document(pdfs[0], options, engine=engine)  # warm-up: imports and first-use costs, untimed
    docs = []
    for pdf in pdfs:
        walls = []
        for _ in range(repeat):
            started = time.perf_counter()
            result = convert_document(pdf, options, engine=engine)
            walls.append(time.perf_counter() - started)
        sources = Counter(p.text_source or (p.errors[0].code if p.errors else p.status) for p in result.pages)
        tl_pages = [p for p in result.pages if p.text_source == "text_layer"]
        docs.append(
            {
                "pdf": str(pdf.relative_to(pdf.parents[1])),
                "status": result.status,
                "pages": len(result.pages),
                "by_source": dict(sources),
                "text_layer_lines": sum(len(p.lines) for p in tl_pages),
                "text_layer_words": sum(len(ln.words) for p in tl_pages for ln in p.lines),
                "wall_s_median": round(statistics.median(walls), 4),
                "errors": [e.message for e in result.errors][:2],
            }
        )
        print(f"  {docs[-1]['pdf']}: {docs[-1]['pages']} pages {dict(sources)} {docs[-1]['wall_s_median']:.3f} s",
              file=sys.stderr)
    pure = [d for d in docs if d["pages"] and d["by_source"].get("text_layer", 0) == d["pages"]]
    tl_pages = sum(d["by_source"].get("text_layer", 0) for d in docs)
    all_pages = sum(d["pages"] for d in docs)
    wall_all = sum(d["wall_s_median"] for d in docs)
    wall_pure = sum(d["wall_s_median"] for d in pure)
    pure_pages = sum(d["pages"] for d in pure)
    return {
        "documents": len(docs),
        "pages": all_pages,
        "text_layer_pages": tl_pages,
        "other_pages": all_pages - tl_pages,
        "pages_per_s_all_docs": round(all_pages / wall_all, 2) if wall_all else None,
        "text_layer_only_docs": len(pure),
        "text_layer_only_pages": pure_pages,
        "pages_per_s_text_layer_only_docs": round(pure_pages / wall_pure, 2) if wall_pure else None,
        "docs": docs,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder holding invoice2data, docling-pdf")
    parser.add_argument("--sets", default="invoice2data,docling-pdf")
    parser.add_argument("--repeat", type=int, default=3, help="runs per PDF; the median wall time is used")
    parser.add_argument("--with-ocr", action="store_true", help="OCR the pages without a usable text layer")
    args = parser.parse_args(argv)

    report: dict = {
        "bench": "textlayer_bench",
        "command": " ".join([Path(sys.argv[0]).name, *(argv if argv is not None else sys.argv[1:])]),
        "data": str(args.data),
        "repeat": args.repeat,
        "with_ocr": args.with_ocr,
        "host": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "load_average_1_5_15_at_start": [round(v, 2) for v in os.getloadavg()],
        "sets": {},
    }
    for name in args.sets.split(","):
        folder = args.data / SETS[name]
        pdfs = sorted(folder.glob("*.pdf"))
        if not pdfs:
            print(f"no PDFs under {folder}", file=sys.stderr)
            continue
        report["sets"][name] = run(pdfs, args.repeat, args.with_ocr)
    report["load_average_1_5_15_at_end"] = [round(v, 2) for v in os.getloadavg()]

    print(f"\nText-layer path (median of {args.repeat} runs per PDF, whole pipeline)")
    print(f"{'set':14} {'docs':>5} {'pages':>6} {'TL pages':>8} {'other':>6} {'pages/s all':>12} "
          f"{'TL-only docs':>12} {'pages/s TL-only':>16}")
    for name, s in report["sets"].items():
        print(
            f"{name:14} {s['documents']:>5} {s['pages']:>6} {s['text_layer_pages']:>8} {s['other_pages']:>6} "
            f"{s['pages_per_s_all_docs']!s:>12} {s['text_layer_only_docs']:>12} "
            f"{s['pages_per_s_text_layer_only_docs']!s:>16}"
        )
    print(f"load average at start {report['load_average_1_5_15_at_start']}, "
          f"at end {report['load_average_1_5_15_at_end']} on {os.cpu_count()} cores")
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"textlayer_bench-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(report, indent=2))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
