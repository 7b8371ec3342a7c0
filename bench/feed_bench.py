"""Feed bench: can docvlm keep a model server busy? Pages/s against a stand-in GPU server, side by side with a
minimal client, and the CPU each stage of docvlm costs per page.

The server is tests/fake_openai_server.py in its own process: it answers every request after `--latency`
seconds, does no work on the image (`--no-detect`) and lets requests overlap without limit. Three inputs:

- receipts: SROIE dev images (000-149, every k-th), one document each;
- text-layer PDF pages: the first pages of the docling-pdf and olmocr-bench-sample PDFs;
- scanned PDF pages: SROIE check images (150-299, every k-th) put one per page into PDFs of 4 pages.

For each input, in the same run and one after the other:

- docvlm: `docvlm.pipeline.stream_documents` with the openai engine at `--concurrency` (what `docvlm convert
  --engine openai` runs in-process), each result written as JSON;
- minimal: what olmOCR's client does: render each page to 1288 px on its longest side (MuPDF for PDFs, Pillow
  for images), encode PNG, send one request; a pool of `--concurrency` threads.
- with `--before PATH`: the same docvlm run with the code at PATH (e.g. /work/main) in a subprocess, pages/s.

docvlm runs once per `--prep-workers` setting (e.g. `0,1,auto`: pages prepared in the feed's thread, by one
preparing process, by the engine's choice). With preparers, their CPU is measured apart (psutil, per process)
from the main process's: main ms/page bounds one process's pages/s on any number of cores (1000 / main ms), and
preparer ms/page says how many cores feed that (the ceiling printed for 4, 8 and 16 cores).

CPU ms per page and stage (thread CPU time, summed over the threads that did the stage): decode/render,
estimate, plan, cut, encode, request (HTTP client side), parse, layout, write; median and p90 over pages.

    python bench/feed_bench.py --latency 0.5 --concurrency 32 --receipts 48 --scanned 24 --before /work/main
"""

from __future__ import annotations

import argparse
import base64
import collections
import http.client
import io
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
if __name__ == "__main__" and os.environ.get("FEED_BENCH_ROOT"):
    sys.path.insert(0, os.environ["FEED_BENCH_ROOT"])
else:
    sys.path.insert(0, str(ROOT))

MODEL = "Qwen/Qwen2.5-VL-7B-Instruct"
MINIMAL_LONGEST_PX = 1288
STAGES = ("render", "estimate", "plan", "cut", "encode", "request", "parse", "layout", "write",
          "prep-open", "prep-plan", "prep-cut", "prep-encode")
"""prep-*: CPU in a preparing process (docvlm.engines.prep.PreparedPage.seconds; prep-plan = text layer,
estimate and plan)."""
CEILING_CORES = (2, 4, 8, 16)


# --- inputs -------------------------------------------------------------------------------------------------


def inputs(data: Path, tmp: Path, receipts: int, text_pdfs: int, scanned: int) -> dict[str, list[Path]]:
    import pymupdf

    sroie = sorted(p for p in (data / "sroie-dev" / "img").glob("*.jpg") if p.stem[:3].isdigit())
    dev = [p for p in sroie if int(p.stem[:3]) < 150]
    check = [p for p in sroie if int(p.stem[:3]) >= 150]
    out: dict[str, list[Path]] = {"receipts": dev[:: max(1, len(dev) // receipts)][:receipts]}
    pdfs = sorted((data / "docling-pdf").rglob("*.pdf")) + sorted((data / "olmocr-bench-sample").rglob("*.pdf"))
    text: list[Path] = []
    for p in pdfs:
        try:
            with pymupdf.open(p) as doc:
                if doc.needs_pass or not doc.page_count or len(doc[0].get_text("words")) < 50:
                    continue
                one = pymupdf.open()
                one.insert_pdf(doc, from_page=0, to_page=min(1, doc.page_count - 1))
                dst = tmp / f"text-{len(text):02d}.pdf"
                one.save(dst)
                text.append(dst)
        except Exception:  # noqa: BLE001, S112 - a PDF the bench cannot split is left out
            continue
        if len(text) >= text_pdfs:
            break
    out["text-layer PDF"] = text
    scans = check[:: max(1, len(check) // scanned)][:scanned]
    docs = []
    for i in range(0, len(scans), 4):
        pdf = pymupdf.open()
        for img in scans[i:i + 4]:
            from PIL import Image

            w, h = Image.open(img).size
            page = pdf.new_page(width=w * 72 / 200, height=h * 72 / 200)  # a 200-dpi scan
            page.insert_image(page.rect, filename=str(img))
        dst = tmp / f"scan-{i // 4:02d}.pdf"
        pdf.save(dst)
        docs.append(dst)
    out["scanned PDF"] = docs
    return out


def page_count(paths: list[Path]) -> int:
    import pymupdf

    n = 0
    for p in paths:
        if p.suffix == ".pdf":
            with pymupdf.open(p) as d:
                n += d.page_count
        else:
            n += 1
    return n


# --- the server -----------------------------------------------------------------------------------------------


def start_server(latency: float) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "tests" / "fake_openai_server.py"), "--latency", str(latency),
         "--max-concurrency", "0", "--lifetime", "3600", "--no-detect"],
        stdout=subprocess.PIPE, text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    if not line.startswith("URL "):
        proc.kill()
        raise SystemExit(f"fake server did not start: {line!r}")
    return proc, line.split()[1]


def server_call(url: str, path: str, method: str = "GET") -> dict:
    import urllib.request

    req = urllib.request.Request(url + path, method=method, data=b"" if method == "POST" else None)
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read())


# --- docvlm, with per-stage CPU timing -------------------------------------------------------------------------


class StageClock:
    """Thread CPU time per stage, summed per page (stages run in several threads: the feed and the requests)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.per_call: dict[str, list[float]] = collections.defaultdict(list)
        self.local = threading.local()

    def wrap(self, stage: str, fn, *, exclusive_of: tuple[str, ...] = ()):  # noqa: ANN001
        clock = self

        def timed(*a, **kw):  # noqa: ANN002, ANN003
            t = time.thread_time()
            nested = getattr(clock.local, "nested", 0.0)
            clock.local.nested = 0.0
            try:
                return fn(*a, **kw)
            finally:
                spent = time.thread_time() - t
                inner = clock.local.nested
                clock.local.nested = nested + spent
                with clock.lock:
                    clock.per_call[stage].append(max(0.0, spent - inner))

        return timed


def instrument(clock: StageClock) -> None:
    import docvlm.engines.openai as oa
    import docvlm.grounding as grounding
    import docvlm.pipeline as pipeline
    import docvlm.plan as plan
    import docvlm.sources as sources
    import docvlm.textsize as textsize

    for cls in (sources.PdfPage, sources.ImagePage):
        for name in ("render_at", "preview", "_render"):
            if name in cls.__dict__ or hasattr(cls, name):
                setattr(cls, name, clock.wrap("render", getattr(cls, name)))
    if hasattr(plan, "render_tiles"):
        plan.render_tiles = clock.wrap("cut", plan.render_tiles)
    plan.render_tile = clock.wrap("cut", plan.render_tile)
    # this branch measures in measure_text_size; the code before it in detect_text_size (the DB detector)
    raster = "measure_text_size" if hasattr(textsize, "measure_text_size") else "detect_text_size"
    setattr(textsize, raster, clock.wrap("estimate", getattr(textsize, raster)))
    textsize.text_size_from_text_layer = clock.wrap("estimate", textsize.text_size_from_text_layer)
    plan.plan_with_text_size = clock.wrap("plan", plan.plan_with_text_size)
    oa.encode_png_data_url = clock.wrap("encode", oa.encode_png_data_url)
    oa.OpenAIEngine._attempt = clock.wrap("request", oa.OpenAIEngine._attempt)
    grounding.page_lines_from_outputs = clock.wrap("parse", grounding.page_lines_from_outputs)
    pipeline.apply_page_layout = clock.wrap("layout", pipeline.apply_page_layout)
    try:
        import docvlm.engines.prep as prep
    except ImportError:  # code before the preparers
        return
    poll = prep.PrepPool.poll

    def timed_poll(self, ticket):  # noqa: ANN001, ANN202
        had = ticket.result is not None
        out = poll(self, ticket)
        if out is not None and not had:
            with clock.lock:
                for stage, sec in out.seconds.items():
                    clock.per_call[f"prep-{stage}"].append(sec)
        return out

    prep.PrepPool.poll = timed_poll


_ENGINES: dict[tuple, object] = {}


def make_engine(url: str, concurrency: int, prep_workers: str, tile_format: str):  # noqa: ANN201
    """One engine per setting, kept for the warm run and the timed run (its preparers start once)."""
    from docvlm.engines.openai import OpenAIEngine
    from docvlm.options import make_options

    key = (url, concurrency, prep_workers, tile_format)
    if key not in _ENGINES:
        extra = {}
        if "prep_workers" in __import__("docvlm.options", fromlist=["x"]).ConvertOptions.model_fields:
            extra = {"prep_workers": prep_workers if prep_workers == "auto" else int(prep_workers),
                     "tile_format": tile_format}
        options = make_options(engine="openai", base_url=url, model=MODEL, concurrency=concurrency, timeout=120,
                               retries=0, **extra)
        _ENGINES[key] = OpenAIEngine(options)
    return _ENGINES[key]


def close_engines() -> None:
    for engine in _ENGINES.values():
        close = getattr(engine, "close_prep_pool", None)
        if close is not None:
            close()
    _ENGINES.clear()


def preparer_cpu_s(engine) -> tuple[float, int]:  # noqa: ANN001
    """CPU seconds used so far by the engine's preparing processes, and how many there are."""
    pool = getattr(engine, "_prep_pool", None)
    return (0.0, 0) if pool is None else pool.cpu_seconds()


def run_docvlm(paths: list[Path], url: str, concurrency: int, out_dir: Path, clock: StageClock | None,
               prep_workers: str = "0", tile_format: str = "png") -> dict:
    engine = make_engine(url, concurrency, prep_workers, tile_format)
    options = engine.options
    server_call(url, "/reset", "POST")
    pages = 0
    failed = 0
    write = clock.wrap("write", _write) if clock else _write
    started = time.perf_counter()
    cpu0 = time.process_time()
    prep0, _ = preparer_cpu_s(engine)
    try:
        from docvlm.pipeline import stream_documents

        results = stream_documents([(p, p, p.name) for p in paths], options, engine=engine)
    except ImportError:  # code before the feed: one document after the other
        from docvlm.pipeline import convert_document

        results = ((p, convert_document(p, options, engine=engine)) for p in paths)
    for p, result in results:
        pages += len(result.pages)
        failed += sum(1 for pg in result.pages if pg.status == "failure")
        write(result, out_dir / (Path(p).stem + ".json"))
    wall = time.perf_counter() - started
    prep1, preparers = preparer_cpu_s(engine)
    stats = server_call(url, "/stats")
    return {"pages": pages, "failed": failed, "seconds": wall, "pages_per_s": pages / wall,
            "cpu_s": time.process_time() - cpu0, "prep_cpu_s": prep1 - prep0, "preparers": preparers,
            "max_in_flight": stats["max_in_flight"], "requests": stats["count"]}


def ceiling(row: dict) -> dict:
    """Pages/s one docvlm process could reach on N cores, from its CPU per page: the main process on one core
    (its threads share the GIL), the preparers on the other N - 1 (or the main process does all on one)."""
    pages = max(1, row["pages"])
    main_ms = 1000 * row["cpu_s"] / pages
    prep_ms = 1000 * row.get("prep_cpu_s", 0.0) / pages
    out = {"main_ms_per_page": main_ms, "prep_ms_per_page": prep_ms}
    for n in CEILING_CORES:
        out[f"{n}_cores"] = (1000 / main_ms if not prep_ms else min(1000 / main_ms, (n - 1) * 1000 / prep_ms))
    return out


def _write(result, path: Path) -> None:  # noqa: ANN001
    path.write_text(result.model_dump_json(indent=1))


# --- the minimal client (olmOCR's) ----------------------------------------------------------------------------


def minimal_pages(paths: list[Path]):  # noqa: ANN201
    for p in paths:
        if p.suffix == ".pdf":
            import pymupdf

            with pymupdf.open(p) as d:
                for i in range(d.page_count):
                    yield p, i
        else:
            yield p, 0


def minimal_one(url: str, path: Path, index: int) -> bool:
    from PIL import Image

    if path.suffix == ".pdf":
        import pymupdf

        with pymupdf.open(path) as d:
            page = d[index]
            zoom = MINIMAL_LONGEST_PX / max(page.rect.width, page.rect.height)
            pix = page.get_pixmap(matrix=pymupdf.Matrix(zoom, zoom), alpha=False)
            img = Image.frombytes("RGB", (pix.width, pix.height), pix.samples)
    else:
        img = Image.open(path).convert("RGB")
        k = MINIMAL_LONGEST_PX / max(img.size)
        img = img.resize((round(img.width * k), round(img.height * k)), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    payload = {"model": MODEL, "temperature": 0.0, "max_tokens": 1024, "messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()}},
        {"type": "text", "text": "Read the page."}]}]}
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=120)
    conn.request("POST", parts.path.rstrip("/") + "/chat/completions", body=json.dumps(payload),
                 headers={"Content-Type": "application/json"})
    resp = conn.getresponse()
    json.loads(resp.read())
    conn.close()
    return resp.status == 200


def run_minimal(paths: list[Path], url: str, concurrency: int) -> dict:
    server_call(url, "/reset", "POST")
    jobs = list(minimal_pages(paths))
    started = time.perf_counter()
    cpu0 = time.process_time()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        ok = list(pool.map(lambda j: minimal_one(url, *j), jobs))
    wall = time.perf_counter() - started
    stats = server_call(url, "/stats")
    return {"pages": len(jobs), "failed": ok.count(False), "seconds": wall, "pages_per_s": len(jobs) / wall,
            "cpu_s": time.process_time() - cpu0, "max_in_flight": stats["max_in_flight"]}


# --- main -----------------------------------------------------------------------------------------------------


def pct(values: list[float], q: float) -> float:
    vals = sorted(values)
    if not vals:
        return float("nan")
    return vals[min(len(vals) - 1, int(round(q / 100 * (len(vals) - 1))))]


def stage_table(clock: StageClock, pages: int) -> dict:
    n = max(1, pages)
    return {s: {"median": 1000 * pct(v, 50), "p90": 1000 * pct(v, 90), "calls": len(v), "per_page": 1000 * sum(v) / n}
            for s, v in ((s, clock.per_call.get(s, [])) for s in STAGES)}


def stage_line(stages: dict) -> str:
    return "; ".join(f"{s} {v['median']:.0f}/{v['p90']:.0f} ({v['calls']}; {v['per_page']:.0f})"
                     for s, v in stages.items() if v["calls"])


def before_run(code: Path, paths: list[Path], url: str, concurrency: int) -> dict:
    """The docvlm run with the code at `code` (another checkout), in a subprocess."""
    with tempfile.TemporaryDirectory() as out:
        cmd = [sys.executable, str(Path(__file__).resolve()), "--child", "--url", url, "--concurrency",
               str(concurrency), "--out", out, "--prep-workers", "0", *map(str, paths)]
        env = {**os.environ, "PYTHONPATH": str(code), "FEED_BENCH_ROOT": str(code)}
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=3600)
        if proc.returncode != 0:
            return {"error": proc.stderr[-500:]}
        return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path("/work/shared/data"))
    ap.add_argument("--latency", type=float, default=0.5)
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--receipts", type=int, default=48)
    ap.add_argument("--text-pdfs", type=int, default=12)
    ap.add_argument("--scanned", type=int, default=24)
    ap.add_argument("--before", type=Path, help="Also time docvlm from this checkout (e.g. /work/main).")
    ap.add_argument("--prep-workers", default="0,1,auto",
                    help="docvlm runs, one per comma-separated --prep-workers setting (0: in the feed's thread).")
    ap.add_argument("--tile-format", choices=("png", "webp"), default="png")
    ap.add_argument("--sets", default="receipts,text-layer PDF,scanned PDF", help="Comma-separated input sets.")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--url", help=argparse.SUPPRESS)
    ap.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("paths", nargs="*", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        clock = StageClock()
        instrument(clock)
        row = run_docvlm(args.paths, args.url, args.concurrency, args.out, clock, args.prep_workers.split(",")[0])
        row["stages"] = stage_table(clock, row["pages"])
        print(json.dumps(row))
        return
    load = os.getloadavg()
    proc, url = start_server(args.latency)
    report: dict = {"latency_s": args.latency, "concurrency": args.concurrency, "load_at_start": load, "sets": {}}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            sets = inputs(args.data, Path(tmp), args.receipts, args.text_pdfs, args.scanned)
            clock = StageClock()
            instrument(clock)
            settings = args.prep_workers.split(",")
            wanted = args.sets.split(",")
            for name, paths in sets.items():
                if name not in wanted:
                    continue
                row: dict = {"docvlm": {}, "stages_cpu_ms_per_call": {}, "ratio": {}, "ceiling": {}}
                minimal_runs = []
                for setting in settings:
                    out = Path(tmp) / f"{name.replace(' ', '-')}-{setting}"
                    out.mkdir()
                    # warm: the engine's imports, its preparers' start and the estimator's first call are not
                    # the feed's cost
                    run_docvlm(paths[:2], url, args.concurrency, out, None, setting, args.tile_format)
                    clock.per_call.clear()
                    row["docvlm"][setting] = run_docvlm(paths, url, args.concurrency, out, clock, setting,
                                                        args.tile_format)
                    row["stages_cpu_ms_per_call"][setting] = stage_table(clock, row["docvlm"][setting]["pages"])
                    row["ceiling"][setting] = ceiling(row["docvlm"][setting])
                    minimal_runs.append(run_minimal(paths, url, args.concurrency))  # interleaved: same load
                    row["ratio"][setting] = row["docvlm"][setting]["pages_per_s"] / minimal_runs[-1]["pages_per_s"]
                row["minimal"] = minimal_runs
                if args.before:
                    row["before"] = before_run(args.before, paths, url, args.concurrency)
                report["sets"][name] = row
                n_pages = row["docvlm"][settings[0]]["pages"]
                print(f"\n{name}: {n_pages} pages")
                for setting in settings:
                    r, m = row["docvlm"][setting], minimal_runs[settings.index(setting)]
                    c = row["ceiling"][setting]
                    print(f"  docvlm --prep-workers {setting:<4} {r['pages_per_s']:6.2f} pages/s (preparers "
                          f"{r['preparers']}) vs minimal {m['pages_per_s']:6.2f} = {row['ratio'][setting]:.2f}x  "
                          f"max in flight {r['max_in_flight']:>3}  failed {r['failed']}")
                    print(f"      CPU ms/page: main {c['main_ms_per_page']:.0f}, preparers {c['prep_ms_per_page']:.0f}"
                          f", minimal {1000 * m['cpu_s'] / max(1, m['pages']):.0f}; ceiling pages/s "
                          + ", ".join(f"{n} cores {c[f'{n}_cores']:.1f}" for n in CEILING_CORES))
                    print("      stage CPU ms per call median / p90 (calls; ms per page): " + stage_line(
                        row["stages_cpu_ms_per_call"][setting]))
                r = row.get("before")
                if r and "pages_per_s" in r:
                    print(f"  before   {r['pages_per_s']:6.2f} pages/s  CPU {1000 * r['cpu_s'] / max(1, r['pages']):.0f}"
                          " ms/page")
                    if "stages" in r:
                        print("  before:  " + stage_line(r["stages"]))
                elif r:
                    print(f"  before   error: {r.get('error', '')[:200]}")
    finally:
        close_engines()
        proc.kill()
    report["load_at_end"] = os.getloadavg()
    dst = ROOT / "bench" / "results" / f"feed_bench-{time.strftime('%Y%m%d-%H%M%S')}.json"
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_text(json.dumps(report, indent=1, default=str))
    print(f"\nload at start {load[0]:.1f}, at end {report['load_at_end'][0]:.1f}; wrote {dst}")


if __name__ == "__main__":
    main()
