"""Peak memory of the whole process tree and pages/s of `docvlm convert` on a long PDF made from the samples.

The PDF alternates samples/invoice.pdf (text layer: read without rendering) and samples/invoice_scan.pdf
(a scan: rendered and OCRed) pages; `--scan-every K` puts one scanned page in every K (2 = alternate).

`--workers` parallelises across documents, never inside one, so each configuration is run twice:

- `single`: the one long PDF (workers 1; a second worker would have nothing to do);
- `split`:  the same pages cut into `--split` PDFs, with `--workers 1` and `2`.

`docvlm convert` runs as a subprocess; RSS of it and all its children is sampled every `--interval` seconds
from /proc (psutil). Reported: peak total RSS, peak of the largest single process, RSS at 25/50/75/100% of
the run (flat = pages are streamed and freed), pages/s (pages over wall time, startup included).

    python bench/memory_bench.py --pages 500 --scan-every 2 --workers 1,2
    python bench/memory_bench.py --pages 2000 --scan-every 0 --modes single     # 2,000 text-layer pages
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent


def make_pdfs(folder: Path, pages: int, scan_every: int, split: int) -> tuple[Path, list[Path]]:
    """One long PDF, and the same pages split into `split` PDFs."""
    import pymupdf

    text = pymupdf.open(ROOT / "samples" / "invoice.pdf")
    scan = pymupdf.open(ROOT / "samples" / "invoice_scan.pdf")

    def is_scan(i: int) -> bool:
        return bool(scan_every) and i % scan_every == scan_every - 1

    def build(indices: range, path: Path) -> None:
        # two real pages, then page copies that share their resources (fonts, the scan image): the file stays
        # small and writing it stays linear (garbage=3 deduplication is quadratic on thousands of pages)
        doc = pymupdf.open()
        doc.insert_pdf(text, from_page=0, to_page=0)
        doc.insert_pdf(scan, from_page=0, to_page=0)
        for i in indices:
            doc.fullcopy_page(1 if is_scan(i) else 0)
        doc.delete_pages(0, 1)
        doc.save(path, garbage=1, deflate=True)
        doc.close()

    long_pdf = folder / "single" / f"long_{pages}.pdf"
    long_pdf.parent.mkdir(parents=True)
    build(range(pages), long_pdf)
    parts: list[Path] = []
    (folder / "split").mkdir()
    per = -(-pages // split)
    for k in range(split):
        path = folder / "split" / f"part_{k + 1:02d}.pdf"
        build(range(k * per, min(pages, (k + 1) * per)), path)
        parts.append(path)
    return long_pdf, parts


def tree_rss(proc: psutil.Process) -> tuple[int, int, int]:
    """(total RSS of the tree, largest single RSS, process count)."""
    total = largest = count = 0
    try:
        procs = [proc, *proc.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0, 0, 0
    for p in procs:
        try:
            rss = p.memory_info().rss
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        total += rss
        largest = max(largest, rss)
        count += 1
    return total, largest, count


def start_fake_server() -> tuple[subprocess.Popen, str]:
    """The scripted OpenAI-compatible server (no latency, no pixel decoding) for `--engine openai` runs."""
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "tests" / "fake_openai_server.py"), "--latency", "0", "--max-concurrency", "16",
         "--lifetime", "7200", "--no-detect"], stdout=subprocess.PIPE, text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    if not line.startswith("URL "):
        proc.kill()
        raise SystemExit(f"fake server did not start: {line!r}")
    return proc, line.split()[1]


def run_convert(inputs: Path, out: Path, workers: int, extra: list[str], interval: float) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCVLM_")}
    cmd = [sys.executable, "-m", "docvlm", "convert", str(inputs), "-o", str(out),
           "--workers", str(workers), *extra]
    t0 = time.perf_counter()
    popen = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
    proc = psutil.Process(popen.pid)
    samples: list[tuple[float, int, int, int]] = []
    while popen.poll() is None:
        total, largest, count = tree_rss(proc)
        if total:
            samples.append((time.perf_counter() - t0, total, largest, count))
        time.sleep(interval)
    wall = time.perf_counter() - t0
    stderr = popen.stderr.read() if popen.stderr else ""
    summary = json.loads((out / "_docvlm_summary.json").read_text())
    totals = summary["totals"]
    peak_total = max(s[1] for s in samples)
    peak_single = max(s[2] for s in samples)

    def at(frac: float) -> float:
        t = wall * frac
        near = min(samples, key=lambda s: abs(s[0] - t))
        return round(near[1] / 2**20, 1)

    return {
        "cmd": " ".join(cmd),
        "returncode": popen.returncode,
        "stderr_tail": stderr[-500:],
        "documents": totals["documents"],
        "pages": totals["pages"],
        "failed": totals["failure"],
        "wall_s": round(wall, 2),
        "pages_per_s": round(totals["pages"] / wall, 2),
        "peak_tree_rss_mb": round(peak_total / 2**20, 1),
        "peak_single_rss_mb": round(peak_single / 2**20, 1),
        "max_processes": max(s[3] for s in samples),
        "rss_mb_at_25_50_75_100": [at(0.25), at(0.5), at(0.75), at(0.999)],
        "samples": len(samples),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pages", type=int, default=500)
    ap.add_argument("--scan-every", type=int, default=2, help="One scanned page in every K (0: none).")
    ap.add_argument("--split", type=int, default=4, help="Documents the pages are cut into for the split runs.")
    ap.add_argument("--workers", default="1,2", help="Worker counts for the split runs.")
    ap.add_argument("--modes", default="single,split")
    ap.add_argument("--dpi", type=int, default=200)
    ap.add_argument("--engine", default="ocr", choices=["ocr", "openai"],
                    help="openai: every page is rendered and sent to the local fake server (tests/).")
    ap.add_argument("--interval", type=float, default=0.2)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    out_json = args.out or ROOT / "bench" / "results" / (
        f"memory_bench_{args.engine}_{args.pages}p_scan{args.scan_every}.json")
    modes = args.modes.split(",")
    extra = ["--dpi", str(args.dpi), "--engine", args.engine]
    server = None
    if args.engine == "openai":
        server, url = start_fake_server()
        extra += ["--base-url", url, "--model", "Qwen/Qwen2.5-VL-7B-Instruct", "--concurrency", "4"]
    rows = []
    with tempfile.TemporaryDirectory(prefix="docvlm_mem_") as tmp:
        folder = Path(tmp)
        long_pdf, parts = make_pdfs(folder, args.pages, args.scan_every, args.split)
        size_mb = long_pdf.stat().st_size / 2**20
        if "single" in modes:
            row = run_convert(long_pdf, folder / "out_single", 1, extra, args.interval)
            rows.append({"mode": f"single ({args.pages}-page PDF)", "workers": 1, **row})
            print(json.dumps(rows[-1])[:400], flush=True)
        if "split" in modes:
            for w in [int(x) for x in args.workers.split(",")]:
                row = run_convert(folder / "split", folder / f"out_split_{w}", w, extra, args.interval)
                rows.append({"mode": f"split ({len(parts)} PDFs)", "workers": w, **row})
                print(json.dumps(rows[-1])[:400], flush=True)
    if server is not None:
        server.terminate()
        server.wait(timeout=10)

    print(f"\n{args.pages} pages (one scan in every {args.scan_every or 'none'}), PDF {size_mb:.1f} MB, "
          f"{args.engine} engine, {args.dpi} dpi, load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"{'mode':<24} {'workers':>7} {'pages':>6} {'wall s':>8} {'pages/s':>8} {'peak tree MB':>12} "
          f"{'peak proc MB':>12} {'RSS MB at 25/50/75/100%':>26}")
    for r in rows:
        print(f"{r['mode']:<24} {r['workers']:>7} {r['pages']:>6} {r['wall_s']:>8.1f} {r['pages_per_s']:>8.2f} "
              f"{r['peak_tree_rss_mb']:>12.0f} {r['peak_single_rss_mb']:>12.0f} "
              f"{'/'.join(f'{v:.0f}' for v in r['rss_mb_at_25_50_75_100']):>26}")
    out_json.parent.mkdir(parents=True, exist_ok=True)
    out_json.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, "rows": rows}, indent=2))
    print(f"wrote {out_json}")


if __name__ == "__main__":
    main()
