"""Throughput of the `openai` engine against the scripted OpenAI-compatible server with a fixed latency.

The server (tests/fake_openai_server.py) runs in its own process on 127.0.0.1, answers every request after
`--latency` seconds and serves at most `--server-limit` requests at once (like vLLM's --max-num-seqs); the rest
queue. docvlm converts one PDF of `--pages` pages (samples/invoice.pdf and samples/invoice_scan.pdf alternated)
in this process with `--concurrency` 1, 4, 16, ...

Reported per concurrency: pages/s; the ideal (concurrency / latency, capped by the server limit); per request
the client's HTTP round trip minus the server's own time (transport + JSON); per tile the PNG encoding time;
and docvlm's whole overhead per page at concurrency 1 (wall time per page minus the server latency: render,
plan, crop/resize, encode, HTTP, parse, geometry).

    python bench/openai_bench.py --latency 0.2 --server-limit 16 --pages 48 --concurrency 1,4,16
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

MODEL = "Qwen/Qwen2.5-VL-7B-Instruct"


def make_pdf(path: Path, pages: int) -> Path:
    import pymupdf

    srcs = [pymupdf.open(ROOT / "samples" / "invoice.pdf"), pymupdf.open(ROOT / "samples" / "invoice_scan.pdf")]
    out = pymupdf.open()
    for i in range(pages):
        out.insert_pdf(srcs[i % 2], from_page=0, to_page=0)
    out.save(path)
    return path


def start_server(latency: float, limit: int) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "tests" / "fake_openai_server.py"), "--latency", str(latency),
         "--max-concurrency", str(limit), "--lifetime", "1800", "--no-detect"],
        stdout=subprocess.PIPE, text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    if not line.startswith("URL "):
        proc.kill()
        raise SystemExit(f"fake server did not start: {line!r}")
    return proc, line.split()[1]


def server_call(url: str, path: str, method: str = "GET") -> dict:
    req = urllib.request.Request(url + path, method=method, data=b"" if method == "POST" else None)
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read())


def run_one(pdf: Path, url: str, concurrency: int, dpi: int) -> dict:
    from docvlm.engines import openai as oa
    from docvlm.options import make_options
    from docvlm.pipeline import convert_document

    options = make_options(engine="openai", base_url=url, model=MODEL, concurrency=concurrency, dpi=dpi,
                           timeout=120, retries=0)
    engine = oa.OpenAIEngine(options)
    client_s: list[float] = []
    encode_s: list[float] = []
    attempt, encode = engine._attempt, oa.encode_png_data_url

    def timed_attempt(body: bytes):
        t = time.perf_counter()
        try:
            return attempt(body)
        finally:
            client_s.append(time.perf_counter() - t)

    def timed_encode(image):
        t = time.perf_counter()
        try:
            return encode(image)
        finally:
            encode_s.append(time.perf_counter() - t)

    engine._attempt = timed_attempt  # type: ignore[method-assign]
    oa.encode_png_data_url = timed_encode
    server_call(url, "/reset", "POST")
    try:
        t0 = time.perf_counter()
        result = convert_document(pdf, options, engine=engine)
        wall = time.perf_counter() - t0
    finally:
        oa.encode_png_data_url = encode
        engine.close()
    stats = server_call(url, "/stats")
    server_s = [r["t_done"] - r["t_arrival"] for r in stats["records"]]
    pages = len(result.pages)
    bad = [p.index for p in result.pages if p.status == "failure"]
    tiles = sum(len(p.plan.tiles) for p in result.pages if p.plan)
    return {
        "concurrency": concurrency,
        "pages": pages,
        "tiles": tiles,
        "failed_pages": len(bad),
        "wall_s": round(wall, 3),
        "pages_per_s": round(pages / wall, 2),
        "requests": stats["count"],
        "server_max_in_flight": stats["max_in_flight"],
        "client_request_ms_median": round(1000 * statistics.median(client_s), 1),
        "server_request_ms_median": round(1000 * statistics.median(server_s), 1),
        "transport_overhead_ms_median": round(1000 * statistics.median(
            c - s for c, s in zip(sorted(client_s), sorted(server_s), strict=False)), 1),
        "png_encode_ms_median": round(1000 * statistics.median(encode_s), 1),
        "encoded_sizes": sorted({tuple(t.encoded_size) for p in result.pages if p.plan for t in p.plan.tiles}),
    }


def run_engine_only(url: str, concurrency: int, requests: int, tile_px: tuple[int, int]) -> dict:
    """generate_batch on ready tiles: the engine's own cost (PNG encode + HTTP + JSON), no render/plan/parse."""
    import pymupdf
    from PIL import Image

    from docvlm.engines.openai import OpenAIEngine
    from docvlm.engines.vlm import TileRequest
    from docvlm.options import make_options

    page = pymupdf.open(ROOT / "samples" / "invoice_scan.pdf")[0].get_pixmap(dpi=200)
    image = Image.frombytes("RGB", (page.width, page.height), page.samples)
    tile = image.crop((0, 0, page.width, page.width * tile_px[1] // tile_px[0])).resize(tile_px)
    options = make_options(engine="openai", base_url=url, model=MODEL, concurrency=concurrency, retries=0,
                           timeout=120)
    engine = OpenAIEngine(options)
    reqs = [TileRequest(image=tile, prompt=f"read {i}") for i in range(requests)]
    server_call(url, "/reset", "POST")
    t0 = time.perf_counter()
    out = engine.generate_batch(reqs)
    wall = time.perf_counter() - t0
    engine.close()
    stats = server_call(url, "/stats")
    return {"concurrency": concurrency, "requests": requests, "tile_px": list(tile_px), "wall_s": round(wall, 3),
            "requests_per_s": round(requests / wall, 2), "errors": sum(1 for r in out if r.error),
            "server_max_in_flight": stats["max_in_flight"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--latency", type=float, default=0.2, help="Server latency per request, seconds.")
    ap.add_argument("--server-limit", type=int, default=16, help="Requests the server serves at once.")
    ap.add_argument("--pages", type=int, default=48, help="0: only the engine-only rows.")
    ap.add_argument("--dpi", type=int, default=200)
    ap.add_argument("--concurrency", default="1,4,16", help="Comma-separated list.")
    ap.add_argument("--engine-only-requests", type=int, default=48, help="0 to skip the engine-only rows.")
    ap.add_argument("--tile", default="1456x532", help="Tile size for the engine-only rows (a planned strip).")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "openai_bench.json")
    args = ap.parse_args()

    levels = [int(c) for c in args.concurrency.split(",")]
    proc, url = start_server(args.latency, args.server_limit)
    rows = []
    engine_rows = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            pdf = make_pdf(Path(tmp) / "bench.pdf", max(1, args.pages))
            run_one(make_pdf(Path(tmp) / "warm.pdf", 2), url, 1, args.dpi)  # imports, first connection
            for c in levels if args.pages else []:
                row = run_one(pdf, url, c, args.dpi)
                tiles_per_page = row["tiles"] / row["pages"]
                row["ideal_pages_per_s"] = round(min(c, args.server_limit) / args.latency / tiles_per_page, 2)
                # wall time per request slot minus the server latency: what docvlm adds around each request
                per_slot = row["wall_s"] * min(c, args.server_limit) / row["tiles"]
                row["overhead_per_request_ms"] = round(1000 * (per_slot - args.latency), 1)
                rows.append(row)
            if args.engine_only_requests:
                tile_px = tuple(int(v) for v in args.tile.split("x"))
                for c in levels:
                    engine_rows.append(run_engine_only(url, c, args.engine_only_requests, tile_px))
    finally:
        proc.terminate()
        proc.wait(timeout=10)

    print(f"fake server: latency {args.latency * 1000:.0f} ms, limit {args.server_limit} concurrent; "
          f"{args.pages} pages at {args.dpi} dpi (invoice.pdf / invoice_scan.pdf alternated)")
    print(f"{'conc':>4} {'pages/s':>8} {'ideal':>7} {'eff%':>5} {'in-flight':>9} {'client ms':>9} {'server ms':>9} "
          f"{'transport ms':>12} {'png ms':>7} {'overhead/req ms':>15}")
    for r in rows:
        eff = 100 * r["pages_per_s"] / r["ideal_pages_per_s"]
        print(f"{r['concurrency']:>4} {r['pages_per_s']:>8.2f} {r['ideal_pages_per_s']:>7.2f} {eff:>5.0f} "
              f"{r['server_max_in_flight']:>9} {r['client_request_ms_median']:>9.1f} {r['server_request_ms_median']:>9.1f} "
              f"{r['transport_overhead_ms_median']:>12.1f} {r['png_encode_ms_median']:>7.1f} {r['overhead_per_request_ms']:>15.1f}")
    if engine_rows:
        print(f"\nengine only: generate_batch of {args.engine_only_requests} ready {args.tile} tiles")
        print(f"{'conc':>4} {'req/s':>7} {'ideal':>7} {'eff%':>5} {'in-flight':>9} {'overhead/req ms':>15}")
        for r in engine_rows:
            c = r["concurrency"]
            ideal = min(c, args.server_limit) / args.latency
            over = 1000 * (r["wall_s"] * min(c, args.server_limit) / r["requests"] - args.latency)
            r["ideal_requests_per_s"], r["overhead_per_request_ms"] = round(ideal, 2), round(over, 1)
            print(f"{c:>4} {r['requests_per_s']:>7.2f} {ideal:>7.2f} {100 * r['requests_per_s'] / ideal:>5.0f} "
                  f"{r['server_max_in_flight']:>9} {over:>15.1f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, "rows": rows,
                                    "engine_only": engine_rows, "load_average": os.getloadavg()}, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
