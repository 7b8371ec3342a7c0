"""Searchable-PDF bench: can a text search find the receipt's printed lines in the output PDF?

SROIE receipts (../shared/data/sroie-dev/img) are wrapped as image-only one-page PDFs in a temp folder
(page size from the JPEG's DPI, so rendering at that DPI gives back the original pixels), converted with
docvlm's `ocr` engine and written as searchable PDFs; optionally the same PDFs go through `ocrmypdf`
(Tesseract). For each truth line of box/NNN.csv:

- strict: `page.search_for(text)` finds it (MuPDF search: case-insensitive, text as annotated);
- normalized: the line with all whitespace removed and case-folded is a substring of the page's extracted
  text treated the same way.

Also reported: the same normalized share against docvlm's own JSON text (what the writer had to work with),
and pages per second (docvlm: in-process, model load included; ocrmypdf: one process per file, as a user
runs it on a folder).

    python bench/searchable_bench.py --limit 40
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pymupdf
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent


def read_truth_lines(csv_path: Path) -> list[str]:
    lines = []
    for row in csv_path.read_text(encoding="utf-8", errors="replace").splitlines():
        parts = row.split(",", 8)
        if len(parts) == 9 and parts[8].strip():
            lines.append(parts[8].strip())
    return lines


def norm(text: str) -> str:
    return "".join(text.split()).casefold()


def make_pdf(image_path: Path, out: Path) -> float:
    """An image-only one-page PDF; returns the DPI at which a render reproduces the image's pixels."""
    with Image.open(image_path) as im:
        dpi = float(round((im.info.get("dpi") or (150, 150))[0])) or 150.0
        w, h = im.size
    doc = pymupdf.open()
    page = doc.new_page(width=w * 72 / dpi, height=h * 72 / dpi)
    page.insert_image(page.rect, filename=str(image_path))
    doc.save(out)
    doc.close()
    return dpi


def score_pdf(pdf: Path, truth: list[str]) -> tuple[int, int]:
    with pymupdf.open(pdf) as doc:
        page = doc[0]
        strict = sum(1 for t in truth if page.search_for(t))
        text = norm(page.get_text())
        normalized = sum(1 for t in truth if norm(t) in text)
    return strict, normalized


def run_docvlm(items: list[tuple[str, Path, float, list[str]]], out_dir: Path) -> dict:
    from docvlm.engines import get_engine
    from docvlm.options import make_options
    from docvlm.pipeline import convert_document
    from docvlm.writers.pdf import write_searchable_pdf

    started = time.perf_counter()
    engine = get_engine(make_options(engine="ocr"))
    strict = normalized = json_norm = total = words = 0
    write_seconds = 0.0
    failures = []
    for name, pdf, dpi, truth in items:
        result = convert_document(pdf, make_options(engine="ocr", dpi=int(dpi)), engine=engine)
        if result.status == "failure":
            failures.append(name)
        t0 = time.perf_counter()
        out = out_dir / f"{name}.pdf"
        report = write_searchable_pdf(result, pdf, out)
        write_seconds += time.perf_counter() - t0
        words += report.words_written
        s, n = score_pdf(out, truth)
        json_text = norm(" ".join(line.text for p in result.pages for line in p.lines))
        json_norm += sum(1 for t in truth if norm(t) in json_text)
        strict, normalized, total = strict + s, normalized + n, total + len(truth)
    seconds = time.perf_counter() - started
    return {
        "tool": "docvlm (ocr engine)",
        "pages": len(items),
        "truth_lines": total,
        "strict": strict / total,
        "normalized": normalized / total,
        "json_normalized": json_norm / total,
        "seconds": seconds,
        "pages_per_second": len(items) / seconds,
        "writer_seconds_per_page": write_seconds / len(items),
        "words_written": words,
        "failures": failures,
    }


def run_ocrmypdf(items: list[tuple[str, Path, float, list[str]]], out_dir: Path, jobs: int) -> dict:
    exe = shutil.which("ocrmypdf") or str(Path(sys.executable).parent / "ocrmypdf")
    if not Path(exe).exists():
        return {"tool": "ocrmypdf", "error": "ocrmypdf is not installed (pip install ocrmypdf)"}
    version = subprocess.run([exe, "--version"], capture_output=True, text=True).stdout.strip()
    started = time.perf_counter()
    strict = normalized = total = 0
    failures = []
    for name, pdf, _dpi, truth in items:
        out = out_dir / f"{name}.pdf"
        proc = subprocess.run(
            [exe, "--output-type", "pdf", "--optimize", "0", "-l", "eng", "--jobs", str(jobs), "-q", str(pdf),
             str(out)],
            capture_output=True, text=True,
        )
        if proc.returncode != 0 or not out.exists():
            failures.append(f"{name}: exit {proc.returncode}: {proc.stderr.strip()[-200:]}")
            total += len(truth)
            continue
        s, n = score_pdf(out, truth)
        strict, normalized, total = strict + s, normalized + n, total + len(truth)
    seconds = time.perf_counter() - started
    return {
        "tool": f"ocrmypdf {version} (tesseract, --jobs {jobs}, --optimize 0)",
        "pages": len(items),
        "truth_lines": total,
        "strict": strict / total,
        "normalized": normalized / total,
        "seconds": seconds,
        "pages_per_second": len(items) / seconds,
        "failures": failures,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data", help="shared data folder")
    parser.add_argument("--limit", type=int, default=40, help="number of receipts (first N by name)")
    parser.add_argument("--no-ocrmypdf", action="store_true", help="skip the ocrmypdf comparison")
    parser.add_argument("--jobs", type=int, default=1, help="ocrmypdf --jobs")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "searchable_bench.json")
    parser.add_argument("--keep", type=Path, default=None, help="keep the output PDFs in this folder")
    args = parser.parse_args(argv)

    sroie = args.data / "sroie-dev"
    images = sorted((sroie / "img").glob("*.jpg"))[: args.limit]
    if not images:
        print(f"no images under {sroie / 'img'}: pass --data", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="searchable_bench_") as tmp:
        work = args.keep or Path(tmp)
        for sub in ("in", "docvlm", "ocrmypdf"):
            (work / sub).mkdir(parents=True, exist_ok=True)
        items = []
        for image in images:
            pdf = work / "in" / f"{image.stem}.pdf"
            dpi = make_pdf(image, pdf)
            items.append((image.stem, pdf, dpi, read_truth_lines(sroie / "box" / f"{image.stem}.csv")))
        rows = [run_docvlm(items, work / "docvlm")]
        if not args.no_ocrmypdf:
            rows.append(run_ocrmypdf(items, work / "ocrmypdf", args.jobs))

    print(f"{len(images)} SROIE receipts as one-page image-only PDFs, "
          f"{sum(len(i[3]) for i in items)} truth lines")
    print(f"{'tool':58} {'strict':>7} {'normal':>7} {'json':>7} {'pages/s':>8}")
    for row in rows:
        if "error" in row:
            print(f"{row['tool']:58} {row['error']}")
            continue
        json_share = f"{row['json_normalized']:.3f}" if "json_normalized" in row else "-"
        print(f"{row['tool']:58} {row['strict']:7.3f} {row['normalized']:7.3f} {json_share:>7} "
              f"{row['pages_per_second']:8.3f}")
        if row.get("failures"):
            print(f"  failures: {row['failures'][:3]}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    payload = {"data": str(sroie), "images": [i.name for i in images], "results": rows}
    args.out.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
