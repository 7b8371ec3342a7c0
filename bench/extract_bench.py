"""Field extraction accuracy of the offline `ocr` engine on SROIE receipts and invoice2data invoices.

SROIE (../shared/data/sroie-dev): per field (company, address, date, total) precision, recall and F1 by the
competition rule (exact match after collapsing whitespace, case-insensitive; the date as printed), and overall.
The OCR of each image is cached (--ocr-cache, default bench/results/ocr_cache/sroie) as the `docvlm convert`
JSON of the image, so the rules are iterated on cached lines. Develop on --split dev (000-149), measure on
--split check (150-299); failures are listed with a coarse cause.

invoice2data (../shared/data/invoice2data/compare): accuracy of date, total amount, currency and invoice number
against the expected JSON of each PDF.

    python bench/extract_bench.py                      # both sets
    python bench/extract_bench.py --set sroie --split dev --ocr-cache /work/cache/sroie-ocr
    python bench/extract_bench.py --set sroie --split check --ocr-cache /work/cache/sroie-ocr --worst 0

A cache can be filled by another build's OCR (`PYTHONPATH=<that checkout> docvlm convert <images> -o CACHE`);
--cached-only then scores the images already there and never OCRs with this checkout. Results go to
bench/results/extract_bench_<split>_<cache folder name>.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from decimal import Decimal
from difflib import SequenceMatcher
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
SROIE_FIELDS = ("company", "address", "date", "total")


def ocr_cached(image_path: Path, cache_dir: Path):
    """OCR lines of one image: the `docvlm convert` JSON of the image, cached as `<cache>/<name>.json`.

    The cache holds exactly what `docvlm convert IMAGE -o CACHE` writes, so it can be filled by that command
    (several processes, another machine) or by this function, and the rules are iterated on the cached lines.
    """
    from docvlm.datamodel import DocumentResult

    cache = cache_dir / (image_path.name + ".json")
    if cache.exists():
        doc = DocumentResult.model_validate_json(cache.read_bytes())
    else:
        from docvlm.options import ConvertOptions
        from docvlm.pipeline import convert_document
        from docvlm.writers import atomic_write_text

        doc = convert_document(image_path, ConvertOptions(), display_path=image_path.name)
        cache_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(cache, doc.model_dump_json(indent=2) + "\n")
    return doc


SPLITS = {"dev": range(0, 150), "check": range(150, 300), "all": range(0, 10**6)}
"""sroie-dev halves: rules are developed on `dev` (000-149) and checked on `check` (150-299)."""


def _norm(text: str | None) -> str:
    return " ".join((text or "").split()).upper()


def prf(tp: int, n_pred: int, n_true: int) -> dict[str, float]:
    p = tp / n_pred if n_pred else 0.0
    r = tp / n_true if n_true else 0.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return {"precision": round(p, 4), "recall": round(r, 4), "f1": round(f, 4), "tp": tp, "pred": n_pred,
            "true": n_true}


def sroie_prediction(lines, width: int, height: int) -> dict[str, str | None]:
    """The four SROIE fields from the receipt rules, as printed (raw text)."""
    from docvlm.extract.rules import extract_sroie_fields

    return extract_sroie_fields(lines, width, height)


def _squash(text: str) -> str:
    return "".join(ch for ch in text.upper() if ch.isalnum())


def failure_cause(truth: str, pred: str, lines: list) -> str:
    """A coarse cause for one miss, from the truth, the prediction and the OCR text alone."""
    page = _squash(" ".join(ln.text for ln in lines))
    if not truth:
        return "no truth (predicted something)"
    if truth and pred and _squash(truth) == _squash(pred):
        return "spacing/punctuation only"
    if _squash(truth) not in page:
        return "truth not in the OCR text (OCR misread or missed)" + ("" if pred else "; nothing predicted")
    if not pred:
        return "in the OCR text, nothing predicted"
    if _squash(pred) in _squash(truth) or _squash(truth) in _squash(pred):
        return "right place, wrong extent (too short / too long)"
    return "wrong line or candidate chosen"


def run_sroie(data: Path, limit: int | None, ocr_only: bool, split: str, cache_dir: Path,
              cached_only: bool = False) -> dict:
    images = [p for p in sorted((data / "img").glob("*.jpg")) if p.stem.isdigit() and int(p.stem) in SPLITS[split]]
    images = images[: limit or None]
    if cached_only:  # a cache filled by another engine's `docvlm convert` (still running): never fill it here
        images = [p for p in images if (cache_dir / (p.name + ".json")).exists()]
    if not images:
        raise SystemExit(f"no SROIE images under {data / 'img'} (give the shared data folder with --data)")
    counts = {f: [0, 0, 0] for f in SROIE_FIELDS}  # tp, pred, true
    failures = []
    started = time.perf_counter()
    from docvlm.extract.choose import choose_schema

    chose_receipt = 0
    for i, img in enumerate(images):
        doc = ocr_cached(img, cache_dir)
        page = doc.pages[0] if doc.pages else None
        lines, w, h = (list(page.lines), page.width_px, page.height_px) if page else ([], 1, 1)
        chose_receipt += choose_schema(doc)[0] == "receipt"
        if ocr_only:
            print(f"\r{i + 1}/{len(images)} {img.name}", end="", file=sys.stderr, flush=True)
            continue
        truth = json.loads((data / "key" / (img.stem + ".json")).read_text())
        pred = sroie_prediction(lines, w, h)
        for f in SROIE_FIELDS:
            t, p = _norm(truth.get(f)), _norm(pred.get(f))
            counts[f][1] += bool(p)
            counts[f][2] += bool(t)
            if p and p == t:
                counts[f][0] += 1
            elif t or p:
                sim = SequenceMatcher(None, t, p).ratio()
                failures.append({"image": img.name, "field": f, "truth": t, "pred": p, "similarity": round(sim, 3),
                                 "cause": failure_cause(t, p, lines)})
    if ocr_only:
        print(file=sys.stderr)
        return {}
    per_field = {f: prf(*counts[f]) for f in SROIE_FIELDS}
    overall = prf(*(sum(c[k] for c in counts.values()) for k in range(3)))
    failures.sort(key=lambda x: (x["similarity"], x["field"], x["image"]))  # worst (least similar) first
    return {"images": len(images), "schema_auto_receipt": chose_receipt, "per_field": per_field, "overall": overall, "failures": failures,
            "seconds": round(time.perf_counter() - started, 2)}


def _amount_eq(a, b) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return abs(Decimal(str(a)) - Decimal(str(b))) < Decimal("0.005")


def run_invoice2data(data: Path) -> dict:
    from docvlm.extract import extract_document
    from docvlm.options import ConvertOptions

    compare = data / "compare"
    rows = []
    scores = {"date": [0, 0], "amount": [0, 0], "currency": [0, 0], "invoice_number": [0, 0]}
    started = time.perf_counter()
    chose_invoice = 0
    for pdf in sorted(compare.glob("*.pdf")):
        truth = json.loads(pdf.with_suffix(".json").read_text())[0]
        auto = extract_document(pdf, ConvertOptions(), schema="auto")
        chose_invoice += auto.schema_choice is not None and auto.schema_choice.startswith("auto -> invoice")
        result = extract_document(pdf, ConvertOptions(), schema="invoice")
        fields = result.fields
        pred = {
            "date": fields["invoice_date"].value.isoformat() if fields["invoice_date"].value else None,
            "amount": fields["total"].value,
            "currency": fields["currency"].value,
            "invoice_number": fields["invoice_number"].value,
        }
        row = {"doc": pdf.stem}
        for key in scores:
            if key == "amount" and "amount" not in truth:
                continue
            t = truth.get(key)
            p = pred[key]
            ok = _amount_eq(p, t) if key == "amount" else (p is not None and str(p).strip() == str(t).strip())
            scores[key][0] += ok
            scores[key][1] += 1
            row[key] = {"truth": t, "pred": str(p) if p is not None else None, "ok": ok}
        rows.append(row)
    acc = {k: {"correct": c, "total": n, "accuracy": round(c / n, 4) if n else 0.0} for k, (c, n) in scores.items()}
    return {"documents": len(rows), "schema_auto_invoice": chose_invoice, "accuracy": acc, "rows": rows, "seconds": round(time.perf_counter() - started, 2)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data", help="the shared data folder")
    ap.add_argument("--set", choices=("sroie", "invoice2data", "both"), default="both")
    ap.add_argument("--limit", type=int, default=None, help="first N SROIE images only")
    ap.add_argument("--ocr-only", action="store_true", help="only fill the OCR cache")
    ap.add_argument("--worst", type=int, default=15, help="failures to list (0: counts by cause only)")
    ap.add_argument("--split", choices=tuple(SPLITS), default="all",
                    help="sroie-dev half: dev = 000-149 (tune here), check = 150-299 (measure only)")
    ap.add_argument("--ocr-cache", type=Path, default=RESULTS / "ocr_cache" / "sroie",
                    help="folder of `docvlm convert` JSONs of the images (filled when missing)")
    ap.add_argument("--cached-only", action="store_true",
                    help="score only the images already in --ocr-cache, never OCR here (e.g. a cache filled by "
                         "`docvlm convert` of another OCR build)")
    args = ap.parse_args()
    out: dict = {"engine": "ocr"}
    if args.set in ("sroie", "both"):
        res = run_sroie(args.data / "sroie-dev", args.limit, args.ocr_only, args.split, args.ocr_cache,
                         args.cached_only)
        if args.ocr_only:
            return 0
        out["sroie"] = res
        print(f"SROIE split {args.split} ({res['images']} receipts, OCR cache {args.ocr_cache}, {res['seconds']} s); "
              f"--schema auto chose receipt for {res['schema_auto_receipt']}/{res['images']}")
        print(f"{'field':<10}{'P':>8}{'R':>8}{'F1':>8}{'tp':>6}{'pred':>6}{'true':>6}")
        for f, m in [*res["per_field"].items(), ("overall", res["overall"])]:
            print(f"{f:<10}{m['precision']:>8.3f}{m['recall']:>8.3f}{m['f1']:>8.3f}{m['tp']:>6}{m['pred']:>6}{m['true']:>6}")
        print(f"worst failures ({args.worst} least similar to the truth, of {len(res['failures'])}):")
        for fl in res["failures"][: args.worst]:
            print(f"  {fl['image']} {fl['field']:<8} sim={fl['similarity']:.2f} truth={fl['truth']!r} pred={fl['pred']!r}")
        near = sum(1 for fl in res["failures"] if fl["similarity"] >= 0.9)
        print(f"near misses (similarity >= 0.9): {near}")
        causes: dict[tuple[str, str], int] = {}
        for fl in res["failures"]:
            causes[(fl["field"], fl["cause"])] = causes.get((fl["field"], fl["cause"]), 0) + 1
        print("misses by cause:")
        for (f, c), n in sorted(causes.items(), key=lambda kv: (kv[0][0], -kv[1])):
            print(f"  {f:<8} {n:>4}  {c}")
    if args.set in ("invoice2data", "both"):
        res = run_invoice2data(args.data / "invoice2data")
        out["invoice2data"] = res
        print(f"\ninvoice2data ({res['documents']} PDFs, ocr engine / text layer, {res['seconds']} s); "
              f"--schema auto chose invoice for {res['schema_auto_invoice']}/{res['documents']}")
        for k, m in res["accuracy"].items():
            print(f"  {k:<15} {m['correct']}/{m['total']} = {m['accuracy']:.3f}")
        for row in res["rows"]:
            bad = {k: v for k, v in row.items() if isinstance(v, dict) and not v["ok"]}
            if bad:
                print(f"  {row['doc']}: " + "; ".join(f"{k} truth={v['truth']!r} pred={v['pred']!r}" for k, v in bad.items()))
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"extract_bench_{args.split}_{args.ocr_cache.name}.json"
    path.write_text(json.dumps(out, indent=2, default=str))
    print(f"\nwrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
