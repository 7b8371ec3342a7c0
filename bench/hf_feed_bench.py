"""Does the hf engine's feed keep a GPU busy? A scripted `generate` that sleeps like a GPU (`--batch-seconds`
per batch of `--batch-size` tiles) behind the real VLM path (plan, cut, parse, layout) on a folder of receipts.

Reported: pages/s, the share of the time `generate` is busy (from its first call to its last), the padding
share of the batches (tiles padded to the largest tile of their batch, in visual tokens), for:

- feed: `docvlm.pipeline.stream_documents` (what `docvlm convert --engine hf` runs): pages are prepared while
  `generate` runs, across documents, batches grouped by visual tokens;
- serial: each document planned, generated and finished before the next (the code before the feed).

The feed runs once per `--prep-workers` setting (0: pages prepared in the feed's thread; N: by N preparing
processes, their tiles handed over as images).

    python bench/hf_feed_bench.py --receipts 48 --batch-size 8 --batch-seconds 0.4
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from docvlm.datamodel import EngineInfo  # noqa: E402
from docvlm.engines.vlm import GenerateStats, TileRequest, TileResponse, VlmEngine  # noqa: E402

ANSWER = '[{"bbox_2d": [10, 10, 200, 40], "text_content": "TOTAL 12.50"}]'


class SleepingGpu(VlmEngine):
    """generate_batch sleeps `seconds` per call (any batch up to batch_size), like a GPU that is not CPU-bound."""

    name = "sleeping-gpu"

    def __init__(self, options, seconds: float) -> None:  # noqa: ANN001
        super().__init__(options, family="qwen2.5")
        self.seconds = seconds

    def generate_batch(self, requests: Sequence[TileRequest]) -> list[TileResponse]:
        time.sleep(self.seconds)
        return [TileResponse(text=ANSWER) for _ in requests]

    def device_memory_bytes(self) -> int | None:
        return 24 * 2**30  # a 24-GiB GPU: the planner's budget as on a real card

    def info(self) -> EngineInfo:
        return EngineInfo(name=self.name, family=self.family)


def run(paths: list[Path], batch_size: int, seconds: float, feed: bool, prep_workers: str = "0") -> dict:
    from docvlm.options import make_options
    from docvlm.pipeline import _run_batch, stream_documents
    from docvlm.sources import open_document

    options = make_options(engine="hf", family="qwen2.5", batch_size=batch_size,
                           prep_workers=prep_workers if prep_workers == "auto" else int(prep_workers))
    engine = SleepingGpu(options, seconds)
    if engine.prep_pool() is not None:  # warm: the preparers' start is not the feed's cost
        for _ in stream_documents([(p, p, p.name) for p in paths[:2]], options, engine=engine):
            pass
        engine._generate_loop().stats = GenerateStats()
    started = time.perf_counter()
    cpu0 = time.process_time()
    prep0 = preparer_cpu_s(engine)
    pages = 0
    if feed:
        for _, result in stream_documents([(p, p, p.name) for p in paths], options, engine=engine):
            pages += len(result.pages)
    else:  # one document after the other, as before the feed
        from docvlm.engines.base import Task

        for p in paths:
            with open_document(p, options) as doc:
                batch = list(doc.pages())
                pages += len(_run_batch(engine, batch, Task(), p.name, None, options))
    wall = time.perf_counter() - started
    main_cpu, prep_cpu = time.process_time() - cpu0, preparer_cpu_s(engine) - prep0
    engine.close_prep_pool()
    st: GenerateStats = engine.stats
    return {"pages": pages, "seconds": wall, "pages_per_s": pages / wall, "generate_calls": st.calls,
            "tiles": st.tiles, "busy_share": st.busy_share, "padding_share": st.padding_share,
            "busy_over_wall": st.busy_s / wall, "main_cpu_ms_per_page": 1000 * main_cpu / max(1, pages),
            "prep_cpu_ms_per_page": 1000 * prep_cpu / max(1, pages)}


def preparer_cpu_s(engine) -> float:  # noqa: ANN001
    """CPU seconds used so far by the engine's preparing processes."""
    pool = getattr(engine, "_prep_pool", None)
    return 0.0 if pool is None else pool.cpu_seconds()[0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path("/work/shared/data"))
    ap.add_argument("--receipts", type=int, default=48)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--batch-seconds", type=float, default=0.4)
    ap.add_argument("--prep-workers", default="0,2", help="Feed runs, one per comma-separated setting.")
    args = ap.parse_args()
    imgs = sorted(p for p in (args.data / "sroie-dev" / "img").glob("*.jpg") if p.stem[:3].isdigit()
                  and int(p.stem[:3]) < 150)
    paths = imgs[:: max(1, len(imgs) // args.receipts)][: args.receipts]
    load = os.getloadavg()
    run(paths[:2], args.batch_size, 0.0, True)  # warm imports
    report = {"load_at_start": load, "receipts": len(paths), "batch_size": args.batch_size,
              "batch_seconds": args.batch_seconds}
    runs = [(f"feed --prep-workers {w}", True, w) for w in args.prep_workers.split(",")] + [("serial", False, "0")]
    for name, feed, workers in runs:
        r = run(paths, args.batch_size, args.batch_seconds, feed, workers)
        report[name] = r
        print(f"{name:<24} {r['pages_per_s']:5.2f} pages/s  generate busy {100 * r['busy_share']:5.1f}% of its span "
              f"({100 * r['busy_over_wall']:.1f}% of wall)  {r['generate_calls']} calls for {r['tiles']} tiles  "
              f"padding {100 * r['padding_share']:.1f}%  CPU ms/page main {r['main_cpu_ms_per_page']:.0f} preparers "
              f"{r['prep_cpu_ms_per_page']:.0f}")
    report["load_at_end"] = os.getloadavg()
    dst = ROOT / "bench" / "results" / f"hf_feed_bench-{time.strftime('%Y%m%d-%H%M%S')}.json"
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_text(json.dumps(report, indent=1))
    print(f"load {load[0]:.1f} -> {report['load_at_end'][0]:.1f}; wrote {dst}")


if __name__ == "__main__":
    main()
