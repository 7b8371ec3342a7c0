"""Field extraction accuracy of the offline `ocr` engine on SROIE receipts and invoice2data invoices.

SROIE (../shared/data/sroie-dev): per field (company, address, date, total) precision, recall and F1 by the
competition rule (exact match after collapsing whitespace, case-insensitive; the date as printed), and overall.
The OCR of each image is cached (--ocr-cache, default bench/results/ocr_cache/sroie) as the `docvlm convert`
JSON of the image, so the rules are iterated on cached lines. Develop on --split dev (000-149), measure on
--split check (150-299); failures are listed with a coarse cause.

invoice2data (../shared/data/invoice2data/compare): accuracy of date, total amount, currency and invoice number
against the expected JSON of each PDF.

Every set also reports precision per status (verified / found / inferred / missing): of the fields given that
status, how many are right. Synthetic receipts and invoices (--set synth, samples/synth_docs.py, generated on the
fly into --synth-cache, never committed): tax, subtotal, total and line-item F1, as text-layer PDFs and as photos.

    python bench/extract_bench.py                      # both sets
    python bench/extract_bench.py --set sroie --split dev --ocr-cache /work/cache/sroie-ocr
    python bench/extract_bench.py --set sroie --split check --ocr-cache /work/cache/sroie-ocr --worst 0
    python bench/extract_bench.py --set synth --split dev --synth-render photo   # even seeds; check = odd seeds

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

    cache = cache_dir / (image_path.name + ".json")
    if cache.exists():
        doc = _load_cached(cache)
    else:
        from docvlm.options import ConvertOptions
        from docvlm.pipeline import convert_document
        from docvlm.writers import atomic_write_text

        doc = convert_document(image_path, ConvertOptions(), display_path=image_path.name)
        cache_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(cache, doc.model_dump_json(indent=2) + "\n")
    return doc


def _load_cached(cache: Path):
    """A cached `docvlm convert` JSON. A cache written by an older build may hold a table today's model rejects
    (overlapping grid slots); the field rules read lines only, so such tables are dropped, with a note."""
    from pydantic import ValidationError

    from docvlm.datamodel import DocumentResult

    try:
        return DocumentResult.model_validate_json(cache.read_bytes())
    except ValidationError as exc:
        if not all(len(e["loc"]) >= 3 and e["loc"][0] == "pages" and e["loc"][2] == "tables" for e in exc.errors()):
            raise
        raw = json.loads(cache.read_text())
        for page in raw.get("pages", []):
            page["tables"] = []
        print(f"note: {cache.name}: tables dropped (rejected by today's table model; lines kept)", file=sys.stderr)
        return DocumentResult.model_validate(raw)


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


def status_table(by_status: dict[str, list[int]]) -> dict[str, dict]:
    """status -> precision (right / fields with that status), count and share of all fields."""
    n = sum(v[1] for v in by_status.values()) or 1
    return {k: {"precision": round(r / c, 4) if c else None, "right": r, "count": c, "share": round(c / n, 4)}
            for k, (r, c) in sorted(by_status.items())}


def status_by_field(cells: dict[str, dict[str, list[int]]]) -> dict[str, dict[str, str]]:
    """field -> status -> 'right/count'."""
    return {f: {k: f"{r}/{c}" for k, (r, c) in sorted(v.items())} for f, v in cells.items()}


def print_status_table(table: dict[str, dict]) -> None:
    print(f"  {'status':<10}{'precision':>10}{'right':>7}{'count':>7}{'share':>7}")
    for k, m in table.items():
        p = "-" if m["precision"] is None else f"{m['precision']:.3f}"
        print(f"  {k:<10}{p:>10}{m['right']:>7}{m['count']:>7}{m['share']:>7.2f}")


def sroie_judged(lines, width: int, height: int, read_again=None) -> dict[str, tuple[str | None, str | None]]:
    """The four SROIE fields as printed, each with its status."""
    from docvlm.extract.rules import extract_sroie_judged

    return extract_sroie_judged(lines, width, height, read_again=read_again)


def photo_reader(image_path: Path, doc):
    """The judge's second reading (docvlm/extract/reread.py) over the photo the cached OCR was read from: the
    pages `docvlm extract` would read again (reread.document_pages: OCR'd upright, at the size their boxes are in)."""
    from docvlm.extract.reread import CropReader, document_pages, rapidocr_recognizer
    from docvlm.options import ConvertOptions

    return CropReader(document_pages(image_path, ConvertOptions(), doc),
                      _RECOGNIZER.setdefault("rapidocr", rapidocr_recognizer()))


_RECOGNIZER: dict = {}
"""One recognizer per bench process (the RapidOCR model loads once)."""


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

PUNCTUATION = ".,:;"
"""Marks OCR confuses with one another on small receipt print (a comma read as a period, a colon as a period)."""


def _strip_accents(text: str) -> str:
    import unicodedata

    return "".join(ch for ch in unicodedata.normalize("NFD", text) if not unicodedata.combining(ch))


def miss_class(truth: str, pred: str, lines: list) -> str:
    """A finer class for one miss (truth and prediction already whitespace-collapsed and upper-cased).

    Text classes first (the extent is right): spacing only; punctuation marks swapped (',' '.' ':' ';'),
    spacing aside; an accent the OCR added; OCR character errors (the truth's letters are not in the OCR text).
    Then extent classes, from the squashed letters: first or last line(s) missing, extra line(s) before or
    after (with the kind of the extra text: phone / tax / registration number, or a name line), wrong block.
    """
    if not truth:
        return "no truth (predicted something)"
    if not pred:
        return "nothing predicted" + ("" if _squash(truth) in _squash(" ".join(ln.text for ln in lines))
                                      else " (truth not in the OCR text)")
    if truth.replace(" ", "") == pred.replace(" ", ""):
        return "spacing only"
    table = str.maketrans({ch: "." for ch in PUNCTUATION})
    if truth.replace(" ", "").translate(table) == pred.replace(" ", "").translate(table):
        return "punctuation marks swapped (',' '.' ':'), spacing aside"
    if _squash(truth) == _squash(pred):
        return "punctuation added or dropped"
    if _squash(_strip_accents(pred)) == _squash(truth):
        return "accent added by the OCR"
    page = _squash(" ".join(ln.text for ln in lines))
    t, p = _squash(truth), _squash(pred)
    if t not in page:
        ratio = SequenceMatcher(None, t, p).ratio()
        return "OCR character error (truth not in the OCR text)" + (", extent right" if ratio >= 0.9 else "")
    if p in t:
        return "first line(s) missing" if t.endswith(p) else "last line(s) missing" if t.startswith(p) \
            else "too short"
    if t in p:
        import re

        extra = pred.replace(truth, " ") if truth in pred else pred
        kind = ("phone / tax / registration text" if re.search(r"\b(tel|fax|gst|sst|reg|co\.?|no)\b|\d{6,}", extra)
                else "name line")
        return ("extra line(s) after: " if p.startswith(t) else "extra line(s) before: " if p.endswith(t)
                else "extra text: ") + kind
    return "wrong line or block"

def truth_lines(image_path: Path):
    """SROIE's own line annotations (`box/NNN.csv`: 4 corners, then the text) as OCR lines, words boxed by
    character share: the rules read without OCR errors, so a miss left is the rule's (or the key's)."""
    from PIL import Image

    from docvlm.datamodel import Line, Word
    from docvlm.geometry import split_line_into_words

    lines = []
    for raw in (image_path.parent.parent / "box" / (image_path.stem + ".csv")).read_text(errors="replace").splitlines():
        parts = raw.split(",", 8)
        if len(parts) < 9 or not parts[8].strip():
            continue
        xs, ys = [float(v) for v in parts[0:8:2]], [float(v) for v in parts[1:8:2]]
        text = " ".join(parts[8].split())
        box = (min(xs), min(ys), max(xs), max(ys))
        words = [Word(text=t, bbox_page_px=b) for t, b in split_line_into_words(text, box)]
        lines.append(Line(text=text, bbox_page_px=box, words=words))
    with Image.open(image_path) as im:
        return lines, im.width, im.height


def replay_text_repair(page):
    """Today's text repair (`docvlm.layout.text_repair.RepairText`: NFC, controls, stray OCR accents) on a
    cached OCR page written by a build from before it; a page it already ran on comes back unchanged."""
    from docvlm.layout.text_repair import RepairText

    return RepairText()(page, None)


def run_sroie(data: Path, limit: int | None, ocr_only: bool, split: str, cache_dir: Path,
              cached_only: bool = False, use_truth_lines: bool = False, replay_repair: bool = False,
              reread: bool = True) -> dict:
    images = [p for p in sorted((data / "img").glob("*.jpg")) if p.stem.isdigit() and int(p.stem) in SPLITS[split]]
    images = images[: limit or None]
    if cached_only:  # a cache filled by another engine's `docvlm convert` (still running): never fill it here
        images = [p for p in images if (cache_dir / (p.name + ".json")).exists()]
    if not images:
        raise SystemExit(f"no SROIE images under {data / 'img'} (give the shared data folder with --data)")
    counts = {f: [0, 0, 0] for f in SROIE_FIELDS}  # tp, pred, true
    by_status: dict[str, list[int]] = {}  # status -> [right, fields]; missing is right when there is no truth
    field_status: dict[str, dict[str, list[int]]] = {}  # field -> status -> [right, fields]
    failures = []
    started = time.perf_counter()
    from docvlm.extract.choose import choose_schema

    chose_receipt = 0
    reread_cost = [0, 0.0]  # crops recognized again, seconds
    for i, img in enumerate(images):
        doc = page = None
        if use_truth_lines:
            lines, w, h = truth_lines(img)
        else:
            doc = ocr_cached(img, cache_dir)
            page = doc.pages[0] if doc.pages else None
            if page is not None and replay_repair:
                page = replay_text_repair(page)
            lines, w, h = (list(page.lines), page.width_px, page.height_px) if page else ([], 1, 1)
            chose_receipt += choose_schema(doc)[0] == "receipt"
        if ocr_only:
            print(f"\r{i + 1}/{len(images)} {img.name}", end="", file=sys.stderr, flush=True)
            continue
        truth = json.loads((data / "key" / (img.stem + ".json")).read_text())
        reader = photo_reader(img, doc) if reread and page is not None else None
        judged = sroie_judged(lines, w, h, reader)
        if reader is not None:
            reread_cost[0] += reader.crops
            reread_cost[1] += reader.seconds
        pred = {f: v for f, (v, _) in judged.items()}
        for f in SROIE_FIELDS:
            t, p = _norm(truth.get(f)), _norm(pred.get(f))
            counts[f][1] += bool(p)
            counts[f][2] += bool(t)
            status = judged[f][1] or "missing"
            cell = field_status.setdefault(f, {}).setdefault(status, [0, 0])
            cell[1] += 1
            cell[0] += bool(p) and p == t if status != "missing" else not t
            by_status.setdefault(status, [0, 0])
            by_status[status][1] += 1
            by_status[status][0] += bool(p) and p == t if status != "missing" else not t
            if p and p == t:
                counts[f][0] += 1
            elif t or p:
                sim = SequenceMatcher(None, t, p).ratio()
                failures.append({"image": img.name, "field": f, "truth": t, "pred": p, "similarity": round(sim, 3),
                                 "cause": failure_cause(t, p, lines),
                                 "class": miss_class(t, p, lines), "status": status})
    if ocr_only:
        print(file=sys.stderr)
        return {}
    per_field = {f: prf(*counts[f]) for f in SROIE_FIELDS}
    overall = prf(*(sum(c[k] for c in counts.values()) for k in range(3)))
    failures.sort(key=lambda x: (x["similarity"], x["field"], x["image"]))  # worst (least similar) first
    return {"images": len(images), "schema_auto_receipt": chose_receipt, "per_field": per_field, "overall": overall,
            "per_status": status_table(by_status), "per_field_status": status_by_field(field_status),
            "failures": failures, "reread": {"crops": reread_cost[0], "ms_per_receipt":
                                             round(1000 * reread_cost[1] / max(len(images), 1), 1)},
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
    by_status: dict[str, list[int]] = {}
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
        status_of = {"date": fields["invoice_date"].status, "amount": fields["total"].status,
                     "currency": fields["currency"].status, "invoice_number": fields["invoice_number"].status}
        for key in scores:
            if key == "amount" and "amount" not in truth:
                continue
            t = truth.get(key)
            p = pred[key]
            ok = _amount_eq(p, t) if key == "amount" else (p is not None and str(p).strip() == str(t).strip())
            scores[key][0] += ok
            scores[key][1] += 1
            st = by_status.setdefault(status_of[key], [0, 0])
            st[1] += 1
            st[0] += ok if status_of[key] != "missing" else t is None
            row[key] = {"truth": t, "pred": str(p) if p is not None else None, "ok": ok}
        rows.append(row)
    acc = {k: {"correct": c, "total": n, "accuracy": round(c / n, 4) if n else 0.0} for k, (c, n) in scores.items()}
    return {"documents": len(rows), "schema_auto_invoice": chose_invoice, "accuracy": acc,
            "per_status": status_table(by_status), "rows": rows, "seconds": round(time.perf_counter() - started, 2)}


SYNTH_SPLITS = {"dev": 0, "check": 1}
"""Synthetic seeds: even seeds develop the rules (dev), odd seeds check them (check)."""


def _squash_text(text) -> str:
    return " ".join(str(text or "").split()).casefold()


def _match_items(pred: list[dict], truth: list[dict]) -> list[tuple[dict, dict]]:
    """Greedy one-to-one pairs (pred, truth) with the same description (case and spacing aside) and amount."""
    pairs, used = [], set()
    for p in pred:
        for k, t in enumerate(truth):
            if k in used:
                continue
            amount = p.get("amount")
            desc = p.get("description")
            if amount is not None and amount.value is not None and _amount_eq(amount.value, t["amount"]) and \
                    desc is not None and _squash_text(desc.value) == _squash_text(t["description"]):
                pairs.append((p, t))
                used.add(k)
                break
    return pairs


def run_synth(count: int, split: str, render: str, cache_dir: Path, reread: bool = True) -> dict:
    """Synthetic receipts and invoices (samples/synth_docs.py), generated into `cache_dir` on the fly.

    Per rendering (pdf: text layer; photo: OCR of the rasterized, tilted, noisy page): tax, subtotal and total
    F1 (value equal to the truth to the cent), line items F1 (an item counts when its description and amount
    both match), and per-status precision of every field the truth covers (items' parts included).
    """
    sys.path.insert(0, str(ROOT))
    from docvlm.extract import fields_from_rules
    from docvlm.extract.schema_loading import load_schema
    from docvlm.options import ConvertOptions
    from docvlm.pipeline import convert_document
    from samples.synth_docs import make_doc, render_pdf, render_photo

    seeds = [s for s in range(count) if s % 2 == SYNTH_SPLITS[split]]
    renders = ("pdf", "photo") if render == "both" else (render,)
    out: dict = {"seeds": f"{split}: {len(seeds)} of range({count})"}
    started = time.perf_counter()
    for kind in renders:
        counts = {k: [0, 0, 0] for k in ("tax", "subtotal", "total", "items")}
        by_status: dict[str, list[int]] = {}
        field_status: dict[str, dict[str, list[int]]] = {}  # field -> status -> [right, fields] (items aside)
        by_kind: dict[str, list[int]] = {}
        misses = []
        reread_cost = [0, 0.0]  # crops recognized again, seconds
        for seed in seeds:
            doc = make_doc(seed)
            truth = doc.truth()
            if kind == "pdf":
                path = render_pdf(doc, cache_dir / f"synth_{seed:04d}.pdf")
                read = convert_document(path, ConvertOptions(), display_path=path.name)
            else:
                path = cache_dir / f"synth_{seed:04d}.jpg"
                if not (cache_dir / (path.name + ".json")).exists():
                    render_photo(doc, path)
                read = ocr_cached(path, cache_dir)
            schema = load_schema(doc.kind)
            reader = photo_reader(path, read) if kind == "photo" and reread else None
            fields, _ = fields_from_rules(read, schema, read_again=reader)
            if reader is not None:
                reread_cost[0] += reader.crops
                reread_cost[1] += reader.seconds
            tax_name = "tax" if doc.kind == "receipt" else "tax_total"
            vendor = "merchant_name" if doc.kind == "receipt" else "vendor_name"
            date_name = "date" if doc.kind == "receipt" else "invoice_date"
            scalar = {"tax": (fields[tax_name], truth["tax"]), "subtotal": (fields["subtotal"], truth["subtotal"]),
                      "total": (fields["total"], truth["total"])}
            for name, (f, t) in scalar.items():
                ok = f.value is not None and _amount_eq(f.value, t)
                counts[name][0] += ok
                counts[name][1] += f.value is not None
                counts[name][2] += 1
                if not ok:
                    misses.append({"seed": seed, "render": kind, "field": name, "truth": t,
                                   "pred": str(f.value) if f.value is not None else None, "status": f.status})
            graded = [(f, ok) for name, (f, t) in scalar.items() for ok in [f.value is not None and _amount_eq(f.value, t)]]
            d = fields[date_name]
            graded.append((d, d.value is not None and d.value.isoformat() == truth["date"]))
            v = fields[vendor]
            graded.append((v, v.value is not None and _squash_text(v.value) == _squash_text(truth["vendor_name"])))
            pred_items = fields["line_items"]
            pairs = _match_items(pred_items, truth["line_items"])
            counts["items"][0] += len(pairs)
            counts["items"][1] += len(pred_items)
            counts["items"][2] += len(truth["line_items"])
            matched = {id(p) for p, _ in pairs}
            for p in pred_items:
                t = next((t for q, t in pairs if q is p), None)
                for part in ("description", "quantity", "unit_price", "amount"):
                    f = p.get(part)
                    if f is None or f.status == "missing":
                        continue
                    if t is None:
                        ok = False
                    elif part == "description":
                        ok = _squash_text(f.value) == _squash_text(t["description"])
                    else:
                        ok = _amount_eq(f.value, t[part])
                    graded.append((f, ok))
            _ = matched
            for name, (f, ok) in zip([*scalar, "date", "vendor"], graded[:5], strict=True):
                cell = field_status.setdefault(name, {}).setdefault(f.status, [0, 0])
                cell[1] += 1
                cell[0] += ok if f.status != "missing" else 0
            for f, ok in graded:
                st = by_status.setdefault(f.status, [0, 0])
                st[1] += 1
                st[0] += ok if f.status != "missing" else 0
            kk = by_kind.setdefault(doc.kind, [0, 0])
            kk[0] += all(ok for f, ok in graded[:3])
            kk[1] += 1
        out[kind] = {"f1": {k: prf(*v) for k, v in counts.items()}, "per_status": status_table(by_status),
                     "docs_with_tax_subtotal_total_right": {k: f"{a}/{b}" for k, (a, b) in by_kind.items()},
                     "per_field_status": status_by_field(field_status),
                     "reread": {"crops": reread_cost[0],
                                "ms_per_doc": round(1000 * reread_cost[1] / max(len(seeds), 1), 1)},
                     "misses": misses}
    out["seconds"] = round(time.perf_counter() - started, 2)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data", help="the shared data folder")
    ap.add_argument("--set", choices=("sroie", "invoice2data", "synth", "both"), default="both",
                    help="both = sroie + invoice2data; synth = generated receipts and invoices (samples/synth_docs.py)")
    ap.add_argument("--synth-count", type=int, default=400, help="synthetic seeds range(N), split even/odd")
    ap.add_argument("--synth-render", choices=("pdf", "photo", "both"), default="both")
    ap.add_argument("--synth-cache", type=Path, default=RESULTS / "synth_cache",
                    help="where the generated documents and their OCR are kept (never committed)")
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
    ap.add_argument("--truth-lines", action="store_true",
                    help="SROIE: read SROIE's own line annotations (box/*.csv) instead of OCR, to tell the rules' "
                         "misses from the OCR's")
    ap.add_argument("--replay-text-repair", action="store_true",
                    help="SROIE: run today's text repair (stray OCR accents removed) on cached OCR written before it")
    ap.add_argument("--no-reread", action="store_true",
                    help="judge without the second reading of a value's crop (docvlm/extract/reread.py): OCR'd "
                         "company names are then never verified")
    args = ap.parse_args()
    out: dict = {"engine": "ocr"}
    if args.set in ("sroie", "both"):
        res = run_sroie(args.data / "sroie-dev", args.limit, args.ocr_only, args.split, args.ocr_cache,
                         args.cached_only, args.truth_lines, args.replay_text_repair, reread=not args.no_reread)
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
        print("per status (precision = right / fields given that status; missing is right when there is no truth):")
        print_status_table(res["per_status"])
        print("  per field (right/count): " + "; ".join(
            f"{f} " + ", ".join(f"{k} {v}" for k, v in cells.items()) for f, cells in res["per_field_status"].items()))
        print(f"  second readings (extract/reread.py): {res['reread']['crops']} crops, "
              f"{res['reread']['ms_per_receipt']} ms per receipt")
        near = sum(1 for fl in res["failures"] if fl["similarity"] >= 0.9)
        print(f"near misses (similarity >= 0.9): {near}")
        causes: dict[tuple[str, str], int] = {}
        for fl in res["failures"]:
            causes[(fl["field"], fl["cause"])] = causes.get((fl["field"], fl["cause"]), 0) + 1
        print("misses by cause:")
        for (f, c), n in sorted(causes.items(), key=lambda kv: (kv[0][0], -kv[1])):
            print(f"  {f:<8} {n:>4}  {c}")
        classes: dict[tuple[str, str], int] = {}
        for fl in res["failures"]:
            classes[(fl["field"], fl["class"])] = classes.get((fl["field"], fl["class"]), 0) + 1
        print("misses by class (miss_class):")
        for (f, c), n in sorted(classes.items(), key=lambda kv: (kv[0][0], -kv[1])):
            print(f"  {f:<8} {n:>4}  {c}")
    if args.set == "synth":
        split = args.split if args.split in SYNTH_SPLITS else "dev"
        res = run_synth(args.synth_count, split, args.synth_render, args.synth_cache, reread=not args.no_reread)
        out["synth"] = res
        print(f"synthetic receipts and invoices, seeds {res['seeds']} ({res['seconds']} s)")
        for kind in ("pdf", "photo"):
            if kind not in res:
                continue
            r = res[kind]
            print(f" {kind}: " + ", ".join(f"{k} F1 {m['f1']:.3f} (P {m['precision']:.3f} R {m['recall']:.3f})"
                                          for k, m in r["f1"].items()))
            print(f"   documents with tax, subtotal and total all right: {r['docs_with_tax_subtotal_total_right']}")
            print_status_table(r["per_status"])
            print("   per field (right/count): " + "; ".join(
                f"{f} " + ", ".join(f"{k} {v}" for k, v in cells.items()) for f, cells in r["per_field_status"].items()))
            print(f"   second readings: {r['reread']['crops']} crops, {r['reread']['ms_per_doc']} ms per document")
            for m in r["misses"][: args.worst]:
                print(f"   miss seed {m['seed']} {m['field']}: truth {m['truth']} pred {m['pred']} ({m['status']})")
    if args.set in ("invoice2data", "both"):
        res = run_invoice2data(args.data / "invoice2data")
        out["invoice2data"] = res
        print(f"\ninvoice2data ({res['documents']} PDFs, ocr engine / text layer, {res['seconds']} s); "
              f"--schema auto chose invoice for {res['schema_auto_invoice']}/{res['documents']}")
        for k, m in res["accuracy"].items():
            print(f"  {k:<15} {m['correct']}/{m['total']} = {m['accuracy']:.3f}")
        print("  per status (date, amount, currency, invoice number):")
        print_status_table(res["per_status"])
        for row in res["rows"]:
            bad = {k: v for k, v in row.items() if isinstance(v, dict) and not v["ok"]}
            if bad:
                print(f"  {row['doc']}: " + "; ".join(f"{k} truth={v['truth']!r} pred={v['pred']!r}" for k, v in bad.items()))
    RESULTS.mkdir(parents=True, exist_ok=True)
    name = f"synth_{args.synth_render}" if args.set == "synth" else "truth_lines" if args.truth_lines \
        else args.ocr_cache.name + ("_repaired" if args.replay_text_repair else "")
    path = RESULTS / f"extract_bench_{args.split}_{name}.json"
    path.write_text(json.dumps(out, indent=2, default=str))
    print(f"\nwrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
