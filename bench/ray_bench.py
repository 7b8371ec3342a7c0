"""`--ray local` against the local process pool, on the same machine, interleaved in one run.

1. Throughput: the same N scanned pages (SROIE receipts, default 40 from --start 0) converted with the default
   ocr engine by `--workers 2` and by `--ray local` on 2 CPUs (2 actors), alternated `--repeat` times; pages/s
   of each, the ratio of their times (goal: Ray <= 1.15x the pool's), and the time from the start of the run
   (before Ray starts) to the first finished document.
2. Driver memory: `--ray local` (and `--workers 2` for reference) on `--tiny` self-made one-page PDFs (text
   layer: the real ocr engine, fast); the driver's RSS is sampled at every finished document: peak, and RSS
   at 10% / 50% / 100% of the batch (flat = no growth with the number of documents).

Every measurement runs in its own child process (a fresh driver, nothing cached), with the machine's load
average recorded before and after.

    python bench/ray_bench.py --data ../shared/data [--pages 40] [--start 0] [--repeat 1] [--tiny 2000]
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

ROOT = Path(__file__).resolve().parent.parent
RAY_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0"}


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def child(args: argparse.Namespace) -> None:
    """One run in this process; prints one JSON line."""
    from docvlm.batch import BatchCallbacks, run_batch
    from docvlm.executors.ray import RayExecutor
    from docvlm.options import make_options

    inputs = [line for line in Path(args.inputs).read_text().splitlines() if line]
    options = make_options(engine="ocr")
    executor = None
    if args.mode == "ray":
        executor = RayExecutor("local", local_cpus=2, workers=2, object_store_bytes=256 * 1024**2)
    started = time.perf_counter()
    samples: list[int] = []
    firsts: list[float] = []

    class Probe(BatchCallbacks):
        def document(self, record, result) -> None:
            if not firsts:
                firsts.append(time.perf_counter() - started)
            samples.append(rss_bytes())

    summary = run_batch(inputs, args.out, options, workers=2, callbacks=Probe(), executor=executor)
    wall = time.perf_counter() - started
    n = len(samples)
    print(json.dumps({
        "mode": args.mode, "documents": summary.totals.documents, "pages": summary.totals.pages,
        "failed": summary.totals.failure, "wall_s": round(wall, 3), "first_result_s": round(firsts[0], 3),
        "pages_per_s": round(summary.totals.pages / wall, 4),
        "ray_connect_s": None if executor is None else round(executor.connect_seconds or 0.0, 3),
        "rss_peak_mib": round(max(samples) / 2**20, 1),
        "rss_mib_at_10_50_100pct": [round(samples[max(0, int(n * f) - 1)] / 2**20, 1) for f in (0.1, 0.5, 1.0)],
    }))


def run_child(mode: str, inputs: list[str], tmp: Path, tag: str) -> dict:
    listing = tmp / f"{tag}.txt"
    listing.write_text("\n".join(inputs) + "\n")
    out = tmp / f"out-{tag}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCVLM_")} | RAY_ENV
    load_before = os.getloadavg()
    proc = subprocess.run([sys.executable, __file__, "--child", mode, "--inputs", str(listing), "--out", str(out)],
                          capture_output=True, text=True, env=env, cwd=ROOT)
    if proc.returncode != 0:
        raise SystemExit(f"{mode} run failed:\n{proc.stderr[-3000:]}")
    row = json.loads(proc.stdout.strip().splitlines()[-1])
    row["load_before_after"] = [round(load_before[0], 2), round(os.getloadavg()[0], 2)]
    print(json.dumps(row), flush=True)
    return row


def make_tiny(folder: Path, count: int) -> list[str]:
    import pymupdf

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        doc = pymupdf.open()
        page = doc.new_page(width=200, height=120)
        page.insert_text((12, 40), f"tiny document {i} total 12.{i % 100:02d}")
        path = folder / f"tiny{i:05d}.pdf"
        doc.save(path)
        doc.close()
        paths.append(str(path))
    return paths


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--pages", type=int, default=40, help="scanned pages (SROIE receipts)")
    ap.add_argument("--start", type=int, default=0, help="first SROIE file index (000-149: dev, 150-299: check)")
    ap.add_argument("--repeat", type=int, default=1, help="interleaved pool/ray pairs")
    ap.add_argument("--tiny", type=int, default=2000, help="tiny documents for the driver-memory phase (0: skip)")
    ap.add_argument("--skip-throughput", action="store_true")
    ap.add_argument("--tag", default="")
    ap.add_argument("--child", choices=["pool", "ray"], help=argparse.SUPPRESS)
    ap.add_argument("--inputs", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        args.mode = args.child
        child(args)
        return

    results: dict = {"argv": sys.argv[1:], "cores": os.cpu_count(), "started": time.strftime("%Y-%m-%dT%H:%M:%S"),
                     "throughput": [], "tiny": []}
    with tempfile.TemporaryDirectory(prefix="ray_bench-") as tmp_s:
        tmp = Path(tmp_s)
        if not args.skip_throughput:
            imgs = sorted((args.data / "sroie-dev" / "img").glob("*.jpg"))[args.start:args.start + args.pages]
            if len(imgs) < args.pages:
                raise SystemExit(f"{args.data}/sroie-dev/img: fewer than {args.pages} images from {args.start}")
            inputs = [str(p) for p in imgs]
            for r in range(args.repeat):
                order = ("pool", "ray") if r % 2 == 0 else ("ray", "pool")
                for mode in order:
                    results["throughput"].append(run_child(mode, inputs, tmp, f"{mode}-{r}"))
            for mode in ("pool", "ray"):
                rows = [row for row in results["throughput"] if row["mode"] == mode]
                results[f"{mode}_wall_s"] = round(sum(row["wall_s"] for row in rows) / len(rows), 3)
            results["ray_over_pool_time"] = round(results["ray_wall_s"] / results["pool_wall_s"], 3)
            print(f"ray / pool time: {results['ray_over_pool_time']} (goal <= 1.15)", flush=True)
        if args.tiny:
            tiny = make_tiny(tmp / "tiny", args.tiny)
            for mode in ("ray", "pool"):
                results["tiny"].append(run_child(mode, tiny, tmp, f"tiny-{mode}"))
    out_dir = ROOT / "bench" / "results"
    out_dir.mkdir(parents=True, exist_ok=True)
    name = f"ray_bench-{time.strftime('%Y%m%d-%H%M%S')}{'-' + args.tag if args.tag else ''}.json"
    (out_dir / name).write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote bench/results/{name}")


if __name__ == "__main__":
    main()
