"""Ray feed bench: does a Ray actor keep a model server busy on a folder of one-page receipts?

`docvlm convert --engine openai --ray local` on SROIE dev receipts (000-149, every k-th), against
tests/fake_openai_server.py in its own process (`--latency` seconds per request, no work on the image, unlimited
overlap). The same batch runs twice on the same in-run Ray, with the actors' calls carrying one document each
(as before) and `STREAM_DOCS_PER_CALL` documents each (the default for a VLM engine), which the actor streams
through its feed. Reported per setting: pages/s, the most requests in flight at the server, and how many
documents succeeded.

    python bench/ray_feed_bench.py --receipts 32 --latency 0.5 --concurrency 32 --ray-workers 1

Traffic stays on 127.0.0.1 (RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0); Ray is started inside the run and ended by it.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

from feed_bench import MODEL, server_call, start_server  # noqa: E402


def run(inputs: Path, out: Path, url: str, args: argparse.Namespace, docs_per_call: int | None) -> dict:
    from docvlm.batch import run_batch
    from docvlm.executors.ray import RayExecutor
    from docvlm.options import ConvertOptions

    options = ConvertOptions(engine="openai", base_url=url, model=MODEL, concurrency=args.concurrency, retries=0,
                             ray="local")
    executor = RayExecutor("local", workers=args.ray_workers, docs_per_call=docs_per_call)
    server_call(url, "/reset", "POST")
    started = time.perf_counter()
    summary = run_batch([inputs], out, options, executor=executor, force=True)
    wall = time.perf_counter() - started
    stats = server_call(url, "/stats")
    ok = sum(1 for d in summary.documents if d.status == "success")
    return {"docs_per_call": docs_per_call or "auto", "documents": len(summary.documents), "success": ok,
            "seconds": round(wall, 2), "pages_per_s": round(len(summary.documents) / wall, 2),
            "requests": stats["count"], "max_in_flight": stats["max_in_flight"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--receipts", type=int, default=32)
    ap.add_argument("--latency", type=float, default=0.5)
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--ray-workers", type=int, default=1)
    args = ap.parse_args()

    images = sorted((args.data / "sroie-dev" / "img").glob("*.jpg"))
    images = [p for p in images if p.stem.isdigit() and int(p.stem) < 150]
    step = max(1, len(images) // args.receipts)
    picked = images[::step][: args.receipts]
    if not picked:
        raise SystemExit(f"no SROIE dev images under {args.data / 'sroie-dev' / 'img'}")
    proc, url = start_server(args.latency)
    rows = []
    try:
        with tempfile.TemporaryDirectory(prefix="ray-feed-") as tmp:
            inputs = Path(tmp) / "in"
            inputs.mkdir()
            for p in picked:  # links: the data folder is never written, nothing is copied into the repository
                (inputs / p.name).symlink_to(p.resolve())
            for docs_per_call in (1, None):
                out = Path(tmp) / f"out-{docs_per_call or 'auto'}"
                rows.append(run(inputs, out, url, args, docs_per_call))
                shutil.rmtree(out, ignore_errors=True)
                r = rows[-1]
                print(f"docs per call {r['docs_per_call']!s:>4}: {r['pages_per_s']:6.2f} pages/s  "
                      f"max in flight {r['max_in_flight']:>3}  success {r['success']}/{r['documents']}  "
                      f"({r['seconds']} s)", flush=True)
    finally:
        proc.kill()
        proc.wait(timeout=10)
    ratio = rows[1]["pages_per_s"] / max(rows[0]["pages_per_s"], 1e-9)
    print(f"streamed / one per call: {ratio:.2f}x pages/s")
    dst = ROOT / "bench" / "results" / f"ray_feed_bench-{time.strftime('%Y%m%d-%H%M%S')}.json"
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, "rows": rows,
                               "ratio": ratio, "load": os.getloadavg()}, indent=2))
    print(f"wrote {dst}")


if __name__ == "__main__":
    main()
