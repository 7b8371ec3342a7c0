"""OCR quality and speed of docvlm's `ocr` engine against a bare RapidOCR call and Tesseract.

Data (never copied into the repo): ../shared/data/sroie-dev (receipt line boxes, box/NNN.csv) and
../shared/data/funsd-train (form word boxes, annotations/*.json).

Phase 1, quality and overhead (one process, sequential, the three systems interleaved image by image so that
CPU contention from other jobs hits all of them alike):
  - docvlm: `docvlm.convert(image)` (sources -> OcrEngine -> assembled, validated result);
  - bare:   `RapidOCR(...)(image_path, return_word_box=True)` with the same models and parameters;
  - tesseract: `tesseract IMAGE - tsv` (lines = TSV level 4, words = level 5).
  Metrics: greedy one-to-one matching at IoU >= 0.5 (SROIE: lines, FUNSD: words); precision, recall, F1,
  character error rate of matched text (case-sensitive and case-folded), mean / p95 absolute box-edge error.
  Overhead ratio = docvlm seconds / bare seconds (model load excluded; goal <= 1.10).
Phase 2, throughput: pages/s over all images with --workers N (ProcessPoolExecutor, one engine per worker,
  onnxruntime / Tesseract threads = cores / N so workers do not oversubscribe the CPU).

    python bench/ocr_bench.py --limit 40 --workers 1,2
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA = ROOT.parent / "shared" / "data"
RESULTS = ROOT / "bench" / "results"

Box = tuple[float, float, float, float]


@dataclass(frozen=True)
class Item:
    """One annotated text element: a line (SROIE) or a word (FUNSD), box in image pixels."""

    text: str
    bbox_image_px: Box


@dataclass(frozen=True)
class Sample:
    dataset: str
    image: str
    truth: tuple[Item, ...]
    level: str  # "line" or "word"


@dataclass(frozen=True)
class Reading:
    """What a system read on one image: lines and words, and the seconds it took."""

    lines: tuple[Item, ...]
    words: tuple[Item, ...]
    seconds: float


@dataclass(frozen=True)
class Scores:
    truth: int
    predicted: int
    matched: int
    precision: float
    recall: float
    f1: float
    cer: float
    cer_casefold: float
    edge_err_mean_px: float
    edge_err_p95_px: float


# --- data ------------------------------------------------------------------------------------------------


def load_sroie(data: Path, limit: int) -> list[Sample]:
    out = []
    for csv_path in sorted((data / "sroie-dev" / "box").glob("*.csv"))[:limit]:
        image = data / "sroie-dev" / "img" / (csv_path.stem + ".jpg")
        items = []
        with open(csv_path, encoding="utf-8", errors="replace", newline="") as fh:
            for row in csv.reader(fh):
                if len(row) < 9:
                    continue
                # 4 corners then the text, which may itself contain commas
                coords = [float(v) for v in row[:8]]
                text = " ".join(",".join(row[8:]).split())
                xs, ys = coords[0::2], coords[1::2]
                if text:
                    items.append(Item(text, (min(xs), min(ys), max(xs), max(ys))))
        if image.is_file():
            out.append(Sample("sroie", str(image), tuple(items), "line"))
    return out


def load_funsd(data: Path, limit: int) -> list[Sample]:
    out = []
    for ann in sorted((data / "funsd-train" / "annotations").glob("*.json"))[:limit]:
        image = data / "funsd-train" / "images" / (ann.stem + ".png")
        form = json.loads(ann.read_text(encoding="utf-8"))["form"]
        items = [
            Item(" ".join(w["text"].split()), tuple(float(v) for v in w["box"]))
            for entity in form
            for w in entity.get("words", [])
            if w.get("text", "").strip()
        ]
        if image.is_file():
            out.append(Sample("funsd", str(image), tuple(items), "word"))
    return out


# --- metrics ---------------------------------------------------------------------------------------------


def levenshtein(a: str, b: str) -> int:
    if len(a) < len(b):
        a, b = b, a
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def iou(a: Box, b: Box) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def match(pred: Sequence[Item], truth: Sequence[Item], min_iou: float = 0.5) -> list[tuple[Item, Item]]:
    """Greedy one-to-one matching: highest IoU pairs first, each box used once."""
    pairs = []
    for i, p in enumerate(pred):
        for j, t in enumerate(truth):
            v = iou(p.bbox_image_px, t.bbox_image_px)
            if v >= min_iou:
                pairs.append((v, i, j))
    pairs.sort(reverse=True)
    used_p: set[int] = set()
    used_t: set[int] = set()
    out = []
    for _, i, j in pairs:
        if i not in used_p and j not in used_t:
            used_p.add(i)
            used_t.add(j)
            out.append((pred[i], truth[j]))
    return out


def score(results: Sequence[tuple[Sequence[Item], Sequence[Item]]]) -> Scores:
    """Micro-averaged scores over images: (predicted, truth) per image."""
    n_truth = n_pred = n_match = 0
    edits = edits_cf = chars = 0
    edge_errs: list[float] = []
    for pred, truth in results:
        pairs = match(pred, truth)
        n_truth += len(truth)
        n_pred += len(pred)
        n_match += len(pairs)
        for p, t in pairs:
            edits += levenshtein(p.text, t.text)
            edits_cf += levenshtein(p.text.casefold(), t.text.casefold())
            chars += len(t.text)
            edge_errs.extend(abs(u - v) for u, v in zip(p.bbox_image_px, t.bbox_image_px, strict=True))
    precision = n_match / n_pred if n_pred else 0.0
    recall = n_match / n_truth if n_truth else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    edge_errs.sort()
    return Scores(
        truth=n_truth,
        predicted=n_pred,
        matched=n_match,
        precision=round(precision, 4),
        recall=round(recall, 4),
        f1=round(f1, 4),
        cer=round(edits / chars, 4) if chars else 0.0,
        cer_casefold=round(edits_cf / chars, 4) if chars else 0.0,
        edge_err_mean_px=round(statistics.fmean(edge_errs), 2) if edge_errs else 0.0,
        edge_err_p95_px=round(edge_errs[int(0.95 * (len(edge_errs) - 1))], 2) if edge_errs else 0.0,
    )


# --- systems (each is created once per process) -----------------------------------------------------------

_STATE: dict[str, object] = {}


def _box(b: Sequence[float]) -> Box:
    return (float(b[0]), float(b[1]), float(b[2]), float(b[3]))


def run_docvlm(image: str) -> Reading:
    import docvlm

    started = time.perf_counter()
    result = docvlm.convert(image, **_STATE.get("docvlm_options", {}))  # type: ignore[arg-type]
    seconds = time.perf_counter() - started
    if result.status == "failure":
        raise RuntimeError(f"docvlm failed on {image}: {result.errors or result.pages[0].errors}")
    lines = [ln for page in result.pages for ln in page.lines]
    return Reading(
        tuple(Item(ln.text, _box(ln.bbox_page_px)) for ln in lines),
        tuple(Item(w.text, _box(w.bbox_page_px)) for ln in lines for w in ln.words),
        seconds,
    )


def _bare_model():
    model = _STATE.get("bare")
    if model is None:
        from rapidocr import RapidOCR

        from docvlm.engines.ocr import ocr_threads, rapidocr_params

        # the same packaged models and parameters as docvlm, so the ratio measures docvlm's own overhead
        params = rapidocr_params(max_side_len=int(_STATE.get("max_side_len", 2400)), threads=ocr_threads())
        model = _STATE["bare"] = RapidOCR(params=params)
    return model


def run_bare(image: str) -> Reading:
    model = _bare_model()
    started = time.perf_counter()
    out = model(image, return_word_box=True)
    seconds = time.perf_counter() - started
    lines, words = [], []
    if out.boxes is not None and out.txts is not None:
        for quad, text in zip(out.boxes, out.txts, strict=True):
            xs, ys = [p[0] for p in quad], [p[1] for p in quad]
            lines.append(Item(" ".join(text.split()), _box((min(xs), min(ys), max(xs), max(ys)))))
        for line_words in out.word_results or ():
            for text, _, quad in line_words:
                xs, ys = [p[0] for p in quad], [p[1] for p in quad]
                words.append(Item(str(text).strip(), _box((min(xs), min(ys), max(xs), max(ys)))))
    return Reading(tuple(lines), tuple(words), seconds)


def run_tesseract(image: str) -> Reading:
    started = time.perf_counter()
    # OMP_THREAD_LIMIT=1: Tesseract's OpenMP threads spin and slow it down badly on a shared CPU
    env = {**os.environ, "OMP_THREAD_LIMIT": "1"}
    proc = subprocess.run(["tesseract", image, "-", "tsv"], capture_output=True, text=True, check=True, env=env)
    seconds = time.perf_counter() - started
    line_boxes: dict[tuple, Box] = {}
    line_words: dict[tuple, list[str]] = {}
    words = []
    for row in proc.stdout.splitlines()[1:]:
        cols = row.split("\t")
        if len(cols) < 12:
            continue
        level = int(cols[0])
        key = tuple(cols[1:5])  # page, block, paragraph, line
        left, top, width, height = (float(v) for v in cols[6:10])
        box = (left, top, left + width, top + height)
        if level == 4:
            line_boxes[key] = box
        elif level == 5 and cols[11].strip():
            words.append(Item(cols[11].strip(), box))
            line_words.setdefault(key, []).append(cols[11].strip())
    lines = [Item(" ".join(line_words[k]), b) for k, b in line_boxes.items() if line_words.get(k)]
    return Reading(tuple(lines), tuple(words), seconds)


SYSTEMS: dict[str, Callable[[str], Reading]] = {"docvlm": run_docvlm, "bare": run_bare, "tesseract": run_tesseract}


def _init_worker(threads: int, max_side_len: int, docvlm_options: dict) -> None:
    os.environ["OMP_NUM_THREADS"] = str(threads)  # read by docvlm's OcrEngine and the bare model
    _STATE["max_side_len"] = max_side_len
    _STATE["docvlm_options"] = docvlm_options
    from docvlm.engines import ocr

    ocr.MAX_SIDE_LEN_PX = max_side_len


def _run_one(system: str, image: str) -> float:
    return SYSTEMS[system](image).seconds


def _warm(system: str, image: str) -> None:
    SYSTEMS[system](image)
    time.sleep(0.3)  # keep this worker busy so the other warm-up lands on another worker


# --- main ------------------------------------------------------------------------------------------------


def quality_phase(samples: list[Sample], systems: list[str]) -> dict:
    for system in systems:  # load models before timing
        SYSTEMS[system](samples[0].image)
    per_set: dict[str, dict[str, list]] = {}
    seconds: dict[str, list[float]] = {s: [] for s in systems}
    for n, sample in enumerate(samples, 1):
        for system in systems:
            reading = SYSTEMS[system](sample.image)
            pred = reading.lines if sample.level == "line" else reading.words
            per_set.setdefault(sample.dataset, {}).setdefault(system, []).append((pred, sample.truth))
            seconds[system].append(reading.seconds)
        print(f"  [{n}/{len(samples)}] {Path(sample.image).name}", file=sys.stderr, flush=True)
    scores = {ds: {s: asdict(score(v)) for s, v in by_sys.items()} for ds, by_sys in per_set.items()}
    timing = {s: {"total_s": round(sum(v), 2), "median_s": round(statistics.median(v), 3)} for s, v in seconds.items()}
    out = {"scores": scores, "timing": timing}
    if "docvlm" in seconds and "bare" in seconds:
        ratios = [d / b for d, b in zip(seconds["docvlm"], seconds["bare"], strict=True) if b > 0]
        out["overhead_ratio_total"] = round(sum(seconds["docvlm"]) / sum(seconds["bare"]), 3)
        out["overhead_ratio_median"] = round(statistics.median(ratios), 3)
    return out


def throughput_phase(samples: list[Sample], systems: list[str], workers: list[int], max_side_len: int,
                     docvlm_options: dict) -> list[dict]:
    cores = os.cpu_count() or 1
    rows = []
    for system in systems:
        for w in workers:
            threads = max(1, cores // w)
            with ProcessPoolExecutor(
                max_workers=w, initializer=_init_worker, initargs=(threads, max_side_len, docvlm_options)
            ) as pool:
                for f in [pool.submit(_warm, system, samples[0].image) for _ in range(w)]:
                    f.result()
                started = time.perf_counter()
                per_image = list(pool.map(_run_one, [system] * len(samples), [s.image for s in samples]))
                wall = time.perf_counter() - started
            rows.append(
                {
                    "system": system,
                    "workers": w,
                    "threads_per_worker": 1 if system == "tesseract" else threads,  # Tesseract: OMP_THREAD_LIMIT=1
                    "pages": len(samples),
                    "wall_s": round(wall, 2),
                    "pages_per_s": round(len(samples) / wall, 3),
                    "mean_page_s": round(statistics.fmean(per_image), 3),
                }
            )
            print(f"  throughput {system} workers={w}: {rows[-1]['pages_per_s']} pages/s", file=sys.stderr)
    return rows


def print_tables(report: dict) -> None:
    q = report["quality"]
    print(f"\nQuality (IoU >= 0.5, greedy one-to-one); limit {report['limit']} images per set")
    head = f"{'set':6} {'system':10} {'truth':>6} {'pred':>6} {'match':>6} {'P':>6} {'R':>6} {'F1':>6} "
    print(head + f"{'CER':>6} {'CERcf':>6} {'edge':>6} {'p95':>6}")
    for ds, by_sys in q["scores"].items():
        for system, s in by_sys.items():
            print(
                f"{ds:6} {system:10} {s['truth']:>6} {s['predicted']:>6} {s['matched']:>6} {s['precision']:>6.3f} "
                f"{s['recall']:>6.3f} {s['f1']:>6.3f} {s['cer']:>6.3f} {s['cer_casefold']:>6.3f} "
                f"{s['edge_err_mean_px']:>6.1f} {s['edge_err_p95_px']:>6.1f}"
            )
    print("\nSequential timing in one process (model load excluded)")
    for system, t in q["timing"].items():
        print(f"  {system:10} total {t['total_s']:>8.2f} s   median {t['median_s']:.3f} s/page")
    if "overhead_ratio_total" in q:
        print(
            f"  overhead docvlm/bare: {q['overhead_ratio_total']:.3f} (total), "
            f"{q['overhead_ratio_median']:.3f} (median per image); goal <= 1.10"
        )
    print(f"\nload average (1, 5, 15 min) at start {report['load_average_1_5_15_at_start']}, "
          f"at end {report['load_average_1_5_15_at_end']} on {report['host']['cpus']} cores")
    if report["throughput"]:
        print("\nThroughput")
        print(f"  {'system':10} {'workers':>7} {'threads':>7} {'pages':>6} {'wall s':>8} {'pages/s':>8}")
        for r in report["throughput"]:
            print(
                f"  {r['system']:10} {r['workers']:>7} {r['threads_per_worker']:>7} {r['pages']:>6} "
                f"{r['wall_s']:>8.2f} {r['pages_per_s']:>8.3f}"
            )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder holding sroie-dev and funsd-train")
    parser.add_argument("--limit", type=int, default=40, help="images per dataset (default 40)")
    parser.add_argument("--sets", default="sroie,funsd", help="comma list: sroie, funsd")
    parser.add_argument("--systems", default="docvlm,bare,tesseract", help="systems for the quality phase")
    parser.add_argument("--workers", default="1,2", help="worker counts for the throughput phase ('' to skip)")
    parser.add_argument("--throughput-systems", default="docvlm,tesseract", help="systems timed with --workers")
    parser.add_argument("--max-side-len", type=int, default=None, help="override the engine's RapidOCR max side")
    parser.add_argument("--tag", default="", help="suffix for the result file name")
    args = parser.parse_args(argv)

    from docvlm.engines import ocr

    max_side_len = args.max_side_len or ocr.MAX_SIDE_LEN_PX
    ocr.MAX_SIDE_LEN_PX = max_side_len  # read when get_engine builds the engine (also in forked workers)
    _STATE["max_side_len"] = max_side_len
    docvlm_options: dict = {}

    systems = [s for s in args.systems.split(",") if s]
    tp_systems = [s for s in args.throughput_systems.split(",") if s]
    if ("tesseract" in systems + tp_systems) and shutil.which("tesseract") is None:
        print("tesseract not found: apt-get install -y tesseract-ocr (skipping it)", file=sys.stderr)
        systems = [s for s in systems if s != "tesseract"]
        tp_systems = [s for s in tp_systems if s != "tesseract"]
    samples: list[Sample] = []
    sets = args.sets.split(",")
    if "sroie" in sets:
        samples += load_sroie(args.data, args.limit)
    if "funsd" in sets:
        samples += load_funsd(args.data, args.limit)
    if not samples:
        print(f"no images found under {args.data}", file=sys.stderr)
        return 2

    workers = [int(w) for w in args.workers.split(",") if w.strip()]
    started = time.perf_counter()
    load_at_start = [round(v, 2) for v in os.getloadavg()]
    # throughput first, in fresh worker processes, before this process loads any model
    throughput = throughput_phase(samples, tp_systems, workers, max_side_len, docvlm_options) if workers else []
    quality = quality_phase(samples, systems)
    report = {
        "bench": "ocr_bench",
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "data": str(args.data),
        "limit": args.limit,
        "images": {ds: sum(1 for s in samples if s.dataset == ds) for ds in sets},
        "max_side_len": max_side_len,
        "engine": ocr.OcrEngine(_options()).info().model_dump(),
        "host": {"cpus": os.cpu_count(), "python": platform.python_version(), "machine": platform.machine()},
        "tesseract": _tesseract_version(),
        "quality": quality,
        "throughput": throughput,
        "total_s": round(time.perf_counter() - started, 1),
        "load_average_1_5_15_at_start": load_at_start,
        "load_average_1_5_15_at_end": [round(v, 2) for v in os.getloadavg()],
    }
    print_tables(report)
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = RESULTS / f"ocr_bench-{stamp}{'-' + args.tag if args.tag else ''}.json"
    path.write_text(json.dumps(report, indent=2, default=float))
    print(f"\nwrote {path}")
    return 0


def _options():
    from docvlm.options import ConvertOptions

    return ConvertOptions()


def _tesseract_version() -> str | None:
    if shutil.which("tesseract") is None:
        return None
    out = subprocess.run(["tesseract", "--version"], capture_output=True, text=True)
    return (out.stdout or out.stderr).splitlines()[0]


if __name__ == "__main__":
    raise SystemExit(main())
