"""OCR quality and speed of docvlm's `ocr` engine against a bare RapidOCR call and Tesseract.

Data (never copied into the repo): ../shared/data/sroie-dev (receipt line boxes, box/NNN.csv) and
../shared/data/funsd-train (form word boxes, annotations/*.json).

Phase 1, quality and overhead (one process, sequential, the systems interleaved image by image so that
CPU contention from other jobs hits all of them alike):
  - docvlm: `docvlm.convert(image)` (sources -> OcrEngine -> assembled, validated result), default options
    (OpenVINO where it runs, orientation once per page);
  - docvlm-ort / docvlm-cls / docvlm-ort-cls: the same with `ocr_backend="onnxruntime"` and/or
    `line_orientation=True` (docvlm-ort-cls is the engine as it was before issue 12);
  - bare:   `RapidOCR(...)(image_path, return_word_box=True)` with docvlm's default models and parameters;
    bare-ort-cls: the same call with onnxruntime and the angle classifier (RapidOCR's own defaults);
  - tesseract: `tesseract IMAGE - tsv` (lines = TSV level 4, words = level 5).
  Metrics: greedy one-to-one matching at IoU >= 0.5 (SROIE: lines, FUNSD: words); precision, recall, F1,
  character error rate of matched text (case-sensitive and case-folded), mean / p95 absolute box-edge error.
  Overhead ratio = docvlm seconds / bare seconds (model load excluded; goal <= 1.10).
Phase 2, throughput: pages/s over all images with --workers N (ProcessPoolExecutor, one engine per worker,
  inference threads = `choose_inference_threads(cores, N)` as in docvlm's own pool). All pools are started
  and warmed first, then the images go through them in chunks, pool after pool, so a change in machine load
  hits every configuration alike.
Phase 3, orientation (--rotate N): N receipts turned 90/180/270 degrees (PIL transpose, saved as JPEG) and
  read by docvlm; predicted boxes are mapped back to the upright frame and scored against the same truth as
  the upright images, so the F1 of turned and upright receipts compare directly.

Images are taken evenly spaced from an index range: SROIE 000-149 is for developing thresholds,
150-299 for checking (--sroie-range).

    python bench/ocr_bench.py --sroie-range 150-299 --limit 30 --workers 1,2 --rotate 10
"""

from __future__ import annotations

import argparse
import csv
import functools
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from collections import Counter
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


def evenly(items: Sequence, limit: int) -> list:
    """`limit` items spread evenly over `items` (all of them when there are fewer)."""
    if limit >= len(items):
        return list(items)
    return [items[round(i * (len(items) - 1) / max(1, limit - 1))] for i in range(limit)] if limit > 1 else [items[0]]


def _in_range(paths: Sequence[Path], spec: str | None) -> list[Path]:
    """Paths whose position in the sorted list lies in 'A-B' (inclusive; SROIE: the file number)."""
    if not spec:
        return list(paths)
    lo, hi = (int(v) for v in spec.split("-"))
    return [p for i, p in enumerate(paths) if lo <= i <= hi]


def load_sroie(data: Path, limit: int, index_range: str | None = None) -> list[Sample]:
    out = []
    csvs = _in_range(sorted((data / "sroie-dev" / "box").glob("*.csv")), index_range)
    for csv_path in evenly(csvs, limit):
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


def load_funsd(data: Path, limit: int, index_range: str | None = None) -> list[Sample]:
    out = []
    anns = _in_range(sorted((data / "funsd-train" / "annotations").glob("*.json")), index_range)
    for ann in evenly(anns, limit):
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


DOCVLM_CONFIGS: dict[str, dict] = {
    "docvlm": {},
    "docvlm-ort": {"ocr_backend": "onnxruntime"},
    "docvlm-cls": {"line_orientation": True},
    "docvlm-ort-cls": {"ocr_backend": "onnxruntime", "line_orientation": True},
}
"""docvlm configurations: default; onnxruntime; angle classifier on; both (the engine before issue 12)."""
BARE_CONFIGS: dict[str, dict] = {
    "bare": {},
    "bare-ort-cls": {"backend": "onnxruntime", "line_orientation": True},
}


def run_docvlm_config(name: str, image: str) -> Reading:
    import docvlm

    options = {**_STATE.get("docvlm_options", {}), **DOCVLM_CONFIGS[name]}  # type: ignore[dict-item]
    started = time.perf_counter()
    result = docvlm.convert(image, **options)
    seconds = time.perf_counter() - started
    if result.status == "failure":
        raise RuntimeError(f"docvlm failed on {image}: {result.errors or result.pages[0].errors}")
    lines = [ln for page in result.pages for ln in page.lines]
    return Reading(
        tuple(Item(ln.text, _box(ln.bbox_page_px)) for ln in lines),
        tuple(Item(w.text, _box(w.bbox_page_px)) for ln in lines for w in ln.words),
        seconds,
    )


def run_docvlm(image: str) -> Reading:
    return run_docvlm_config("docvlm", image)


def _bare_model(name: str = "bare"):
    models: dict = _STATE.setdefault("bare_models", {})  # type: ignore[assignment]
    if name not in models:
        from rapidocr import RapidOCR

        from docvlm.engines.ocr import rapidocr_params
        from docvlm.engines.ocr_backend import choose_ocr_backend
        from docvlm.threads import inference_threads

        config = BARE_CONFIGS[name]
        backend = config.get("backend") or choose_ocr_backend("auto").name
        # the same packaged models and parameters as docvlm, so the ratio measures docvlm's own overhead
        params = rapidocr_params(
            max_side_len=int(_STATE.get("max_side_len", 2400)), threads=inference_threads(), backend=backend,
            line_orientation=bool(config.get("line_orientation")),
        )
        models[name] = RapidOCR(params=params)
    return models[name]


def run_bare_config(name: str, image: str) -> Reading:
    model = _bare_model(name)
    use_cls = bool(BARE_CONFIGS[name].get("line_orientation"))
    started = time.perf_counter()
    out = model(image, return_word_box=True, use_det=True, use_cls=use_cls, use_rec=True)
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


def run_bare(image: str) -> Reading:
    return run_bare_config("bare", image)


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


SYSTEMS: dict[str, Callable[[str], Reading]] = {
    **{name: functools.partial(run_docvlm_config, name) for name in DOCVLM_CONFIGS},
    **{name: functools.partial(run_bare_config, name) for name in BARE_CONFIGS},
    "tesseract": run_tesseract,
}


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
                     docvlm_options: dict, chunk: int = 6, oversubscribed: Sequence[str] = ()) -> list[dict]:
    """Pages/s per (system, workers, threads); `oversubscribed` systems also run every worker count > 1
    with all cores' threads per worker, to measure what docvlm's even thread share saves."""
    from docvlm.threads import available_cores, choose_inference_threads

    cores = available_cores()
    keys = [(system, w, choose_inference_threads(cores, w)) for system in systems for w in workers]
    keys += [(system, w, cores) for system in oversubscribed for w in workers if w > 1 and cores > 1]
    pools: dict[tuple[str, int, int], ProcessPoolExecutor] = {}
    walls: dict[tuple[str, int, int], float] = {}
    per_image: dict[tuple[str, int, int], list[float]] = {}
    try:
        for key in keys:
            system, w, threads = key
            pool = ProcessPoolExecutor(
                max_workers=w, initializer=_init_worker, initargs=(threads, max_side_len, docvlm_options)
            )
            for f in [pool.submit(_warm, system, samples[0].image) for _ in range(w)]:
                f.result()
            pools[key], walls[key], per_image[key] = pool, 0.0, []
        for n, start in enumerate(range(0, len(samples), chunk)):
            images = [s.image for s in samples[start : start + chunk]]
            for key in keys[n % len(keys):] + keys[: n % len(keys)]:  # rotate who goes first
                started = time.perf_counter()
                per_image[key] += list(pools[key].map(_run_one, [key[0]] * len(images), images))
                walls[key] += time.perf_counter() - started
            print(f"  throughput chunk {n + 1}: {start + len(images)}/{len(samples)} images", file=sys.stderr)
    finally:
        for pool in pools.values():
            pool.shutdown()
    rows = []
    for (system, w, threads), wall in walls.items():
        rows.append(
            {
                "system": system,
                "workers": w,
                "threads_per_worker": 1 if system == "tesseract" else threads,  # Tesseract: OMP_THREAD_LIMIT=1
                "pages": len(samples),
                "wall_s": round(wall, 2),
                "pages_per_s": round(len(samples) / wall, 3),
                "mean_page_s": round(statistics.fmean(per_image[(system, w, threads)]), 3),
            }
        )
        print(f"  throughput {system} workers={w} threads={threads}: {rows[-1]['pages_per_s']} pages/s",
              file=sys.stderr)
    return rows


def prefetch_phase(samples: list[Sample], tmp: Path, rounds: int = 3) -> dict:
    """A scanned PDF made of the sample images (one per page, no text layer), read by the engine page by page
    and with the next page rendered in the background; rounds alternate the two so load hits both alike."""
    import pymupdf

    from docvlm.engines.base import Task
    from docvlm.engines.ocr import OcrEngine
    from docvlm.options import make_options
    from docvlm.sources import open_document

    path = tmp / "scans.pdf"
    with pymupdf.open() as pdf:
        for sample in samples:
            with pymupdf.open(sample.image) as img:
                rect = img[0].rect
            page = pdf.new_page(width=rect.width * 72 / 200, height=rect.height * 72 / 200)  # a 200-dpi scan
            page.insert_image(page.rect, filename=sample.image)
        pdf.save(path)
    options = make_options(dpi=200)
    engine = OcrEngine(options)
    with open_document(str(path), options) as doc:
        engine.process_pages([next(iter(doc.pages()))], Task())  # load and warm the model
    seconds: dict[str, list[float]] = {"sequential": [], "prefetch": []}
    for r in range(rounds):
        for mode in (("sequential", "prefetch") if r % 2 == 0 else ("prefetch", "sequential")):
            with open_document(str(path), options) as doc:
                pages = list(doc.pages())
                started = time.perf_counter()
                if mode == "prefetch":
                    results = engine.process_pages(pages, Task())
                else:
                    results = [engine.process_page(p, Task()) for p in pages]
                seconds[mode].append(time.perf_counter() - started)
            assert all(r.status == "success" for r in results), [r.errors for r in results]
        print(f"  prefetch round {r + 1}/{rounds}", file=sys.stderr)
    n = len(samples)
    return {
        "pages": n,
        "rounds": rounds,
        "seconds": {k: [round(v, 2) for v in vs] for k, vs in seconds.items()},
        "pages_per_s": {k: round(n * len(vs) / sum(vs), 3) for k, vs in seconds.items()},
    }


ROTATIONS = {90: "rotate_270", 180: "rotate_180", 270: "rotate_90"}
"""Clockwise degrees a photo is turned by -> the PIL transpose that makes it (PIL ROTATE_90 is anticlockwise)."""


def rotation_phase(samples: list[Sample], systems: list[str], tmp: Path) -> dict:
    """Read receipts upright and turned 90/180/270; score every reading in the upright frame."""
    from PIL import Image

    from docvlm.engines import get_engine
    from docvlm.geometry import upright_to_page
    from docvlm.options import make_options

    per: dict[str, dict[str, list]] = {}
    decisions: dict[str, dict[str, list[str]]] = {}
    seconds: dict[str, dict[str, float]] = {}
    for n, sample in enumerate(samples, 1):
        with Image.open(sample.image) as im:
            upright = im.convert("RGB")
        for degrees in (0, *ROTATIONS):
            transform = ROTATIONS.get(degrees, "none")
            if degrees:
                path = tmp / f"{Path(sample.image).stem}_rot{degrees}.jpg"
                upright.transpose(getattr(Image.Transpose, {"rotate_90": "ROTATE_90", "rotate_180": "ROTATE_180",
                                                          "rotate_270": "ROTATE_270"}[transform])).save(path, quality=95)
                size = Image.open(path).size
            else:
                path, size = Path(sample.image), upright.size
            for system in systems:
                reading = SYSTEMS[system](str(path))
                pred = reading.lines if sample.level == "line" else reading.words
                back = tuple(Item(it.text, upright_to_page(it.bbox_image_px, transform, size)) for it in pred)
                per.setdefault(system, {}).setdefault(str(degrees), []).append((back, sample.truth))
                bucket = seconds.setdefault(system, {})
                bucket[str(degrees)] = bucket.get(str(degrees), 0.0) + reading.seconds
                if system.startswith("docvlm"):
                    options = make_options(**DOCVLM_CONFIGS[system])
                    last = getattr(get_engine(options), "last_orientation", None)
                    label = "classifier" if last is None else last.orientation + (
                        " (checked)" if last.confidences else "")  # checked: the explicit per-page test ran
                    decisions.setdefault(system, {}).setdefault(str(degrees), []).append(label)
        print(f"  rotation [{n}/{len(samples)}] {Path(sample.image).name}", file=sys.stderr, flush=True)
    return {
        "scores": {s: {d: asdict(score(v)) for d, v in by.items()} for s, by in per.items()},
        "decisions": {s: {d: dict(sorted(Counter(v).items())) for d, v in by.items()} for s, by in decisions.items()},
        "seconds": {s: {d: round(v, 2) for d, v in by.items()} for s, by in seconds.items()},
    }


def print_tables(report: dict) -> None:
    q = report["quality"]
    print(f"\nQuality (IoU >= 0.5, greedy one-to-one); limit {report['limit']} images per set")
    head = f"{'set':6} {'system':15} {'truth':>6} {'pred':>6} {'match':>6} {'P':>6} {'R':>6} {'F1':>6} "
    print(head + f"{'CER':>6} {'CERcf':>6} {'edge':>6} {'p95':>6}")
    for ds, by_sys in q["scores"].items():
        for system, s in by_sys.items():
            print(
                f"{ds:6} {system:15} {s['truth']:>6} {s['predicted']:>6} {s['matched']:>6} {s['precision']:>6.3f} "
                f"{s['recall']:>6.3f} {s['f1']:>6.3f} {s['cer']:>6.3f} {s['cer_casefold']:>6.3f} "
                f"{s['edge_err_mean_px']:>6.1f} {s['edge_err_p95_px']:>6.1f}"
            )
    print("\nSequential timing in one process (model load excluded)")
    for system, t in q["timing"].items():
        print(f"  {system:15} total {t['total_s']:>8.2f} s   median {t['median_s']:.3f} s/page")
    if "overhead_ratio_total" in q:
        print(
            f"  overhead docvlm/bare: {q['overhead_ratio_total']:.3f} (total), "
            f"{q['overhead_ratio_median']:.3f} (median per image); goal <= 1.10"
        )
    print(f"\nload average (1, 5, 15 min) at start {report['load_average_1_5_15_at_start']}, "
          f"at end {report['load_average_1_5_15_at_end']} on {report['host']['cpus']} cores")
    if report.get("rotation"):
        rot = report["rotation"]
        print("\nTurned receipts, scored in the upright frame: line F1 / CER (decisions of the page check)")
        for system, by in rot["scores"].items():
            for deg, sc in by.items():
                dec = rot["decisions"].get(system, {}).get(deg, {})
                print(f"  {system:16} {deg:>4} deg  F1 {sc['f1']:.3f}  CER {sc['cer']:.3f}  "
                      f"{rot['seconds'][system][deg]:7.1f} s  {dec}")
    if report.get("prefetch"):
        pf = report["prefetch"]
        print(f"\nOne scanned PDF of {pf['pages']} receipts, {pf['rounds']} rounds: pages/s {pf['pages_per_s']}")
    if report["throughput"]:
        print("\nThroughput")
        print(f"  {'system':15} {'workers':>7} {'threads':>7} {'pages':>6} {'wall s':>8} {'pages/s':>8}")
        for r in report["throughput"]:
            print(
                f"  {r['system']:15} {r['workers']:>7} {r['threads_per_worker']:>7} {r['pages']:>6} "
                f"{r['wall_s']:>8.2f} {r['pages_per_s']:>8.3f}"
            )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder holding sroie-dev and funsd-train")
    parser.add_argument("--limit", type=int, default=40, help="images per dataset (default 40)")
    parser.add_argument("--sets", default="sroie,funsd", help="comma list: sroie, funsd")
    parser.add_argument("--sroie-range", default="150-299",
                        help="SROIE file numbers to sample from: 000-149 develop, 150-299 check (default)")
    parser.add_argument("--funsd-range", default=None, help="FUNSD positions (sorted) to sample from, e.g. 0-74")
    parser.add_argument("--systems", default="docvlm,docvlm-ort,docvlm-cls,docvlm-ort-cls,bare,bare-ort-cls,tesseract",
                        help=f"systems for the quality phase, from: {', '.join(SYSTEMS)}")
    parser.add_argument("--workers", default="1,2", help="worker counts for the throughput phase ('' to skip)")
    parser.add_argument("--throughput-systems", default="docvlm,docvlm-ort,docvlm-ort-cls,tesseract",
                        help="systems timed with --workers")
    parser.add_argument("--throughput-limit", type=int, default=None,
                        help="images per set for the throughput phase (default: all of --limit)")
    parser.add_argument("--oversubscribe", default="",
                        help="systems to time also with all cores' threads in each of several workers")
    parser.add_argument("--prefetch", type=int, default=0,
                        help="receipts to put in one scanned PDF to time page prefetch against page by page")
    parser.add_argument("--rotate", type=int, default=0, help="receipts to read turned 90/180/270 (phase 3)")
    parser.add_argument("--rotate-systems", default="docvlm,docvlm-ort", help="systems for the rotation phase")
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
    unknown = sorted(set(systems + tp_systems) - set(SYSTEMS))
    if unknown:
        parser.error(f"unknown system(s) {', '.join(unknown)}; known: {', '.join(SYSTEMS)}")
    if ("tesseract" in systems + tp_systems) and shutil.which("tesseract") is None:
        print("tesseract not found: apt-get install -y tesseract-ocr (skipping it)", file=sys.stderr)
        systems = [s for s in systems if s != "tesseract"]
        tp_systems = [s for s in tp_systems if s != "tesseract"]
    samples: list[Sample] = []
    sets = args.sets.split(",")
    if "sroie" in sets:
        samples += load_sroie(args.data, args.limit, args.sroie_range)
    if "funsd" in sets:
        samples += load_funsd(args.data, args.limit, args.funsd_range)
    if not samples:
        print(f"no images found under {args.data}", file=sys.stderr)
        return 2

    workers = [int(w) for w in args.workers.split(",") if w.strip()]
    started = time.perf_counter()
    load_at_start = [round(v, 2) for v in os.getloadavg()]
    # throughput first, in fresh worker processes, before this process loads any model
    tp_samples = samples
    if args.throughput_limit:
        tp_samples = [x for ds in sets for x in evenly([s for s in samples if s.dataset == ds], args.throughput_limit)]
    throughput = throughput_phase(
        tp_samples, tp_systems, workers, max_side_len, docvlm_options,
        oversubscribed=[s for s in args.oversubscribe.split(",") if s],
    ) if workers else []
    quality = quality_phase(samples, systems) if systems else {"scores": {}, "timing": {}}
    prefetch = {}
    if args.prefetch:
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            prefetch = prefetch_phase(evenly([s for s in samples if s.dataset == "sroie"], args.prefetch), Path(tmp))
    rotation = {}
    if args.rotate:
        import tempfile

        receipts = evenly([s for s in samples if s.dataset == "sroie"], args.rotate)
        with tempfile.TemporaryDirectory() as tmp:  # turned copies live outside the repo and are removed
            rotation = rotation_phase(receipts, [s for s in args.rotate_systems.split(",") if s], Path(tmp))
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
        "sroie_range": args.sroie_range,
        "funsd_range": args.funsd_range,
        "quality": quality,
        "throughput": throughput,
        "rotation": rotation,
        "prefetch": prefetch,
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
