"""How many good text layers would the mojibake check throw away? (issue 17 item 8)

Reads every page's text layer of the docling, olmOCR, camelot and invoice2data sample PDFs (no OCR, no
model), judges it with `docvlm.text_plausibility.judge_words`, and prints per data set: pages, pages whose
layer the ocr engine would read (its character/garbage/coverage rule, before the plausibility check), pages
judged implausible among them (must be 0: those layers are good), and the extreme figures seen. Then the same for mojibake PDFs made by tests/test_mojibake.py's generator
(every one must be judged implausible).

    PYTHONPATH=$PWD nice python bench/text_plausibility_bench.py [--data /work/shared/data]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from docvlm.engines.ocr import MAX_GARBAGE_RATIO, MAX_IMAGE_COVERAGE, MIN_TEXT_LAYER_CHARS
from docvlm.errors import DocvlmError
from docvlm.options import make_options
from docvlm.sources import open_document
from docvlm.text_plausibility import judge_words

SETS = {"docling": "docling-pdf", "olmocr": "olmocr-bench-sample", "camelot": "camelot-tables",
        "invoice2data": "invoice2data"}


def would_be_read(layer) -> bool:  # noqa: ANN001 - a docvlm.sources.TextLayer
    """The ocr engine's rule *before* the plausibility check (characters, garbage, image coverage): the
    layers the check could throw away."""
    return (bool(layer.words) and layer.char_count >= MIN_TEXT_LAYER_CHARS
            and layer.garbage_ratio <= MAX_GARBAGE_RATIO and layer.image_coverage < MAX_IMAGE_COVERAGE)


def judge_pdf(path: Path) -> list[tuple[int, bool, float, int, bool]]:
    """(page, usable, share, chars, plausible) per page."""
    rows = []
    with open_document(path, make_options()) as doc:
        for page in doc.pages():
            layer = page.text_layer()
            if layer is None:
                continue
            verdict = judge_words(w.text for w in layer.words)
            rows.append((page.index, would_be_read(layer), verdict.wordlike_share, verdict.chars,
                         verdict.plausible, verdict.symbol_share, verdict.script_switch_rate))
    return rows


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="/work/shared/data")
    args = ap.parse_args()
    started = time.perf_counter()
    bad_total = 0
    for name, folder in SETS.items():
        pdfs = sorted(Path(args.data, folder).rglob("*.pdf"))
        pages = usable = implausible = 0
        lowest: list[tuple[float, str]] = []
        highest_sym: list[tuple[float, str]] = []
        highest_mixed: list[tuple[float, str]] = []
        unreadable = 0
        for pdf in pdfs:
            try:
                rows = judge_pdf(pdf)
            except DocvlmError:  # encrypted, damaged: nothing to judge
                unreadable += 1
                continue
            for index, ok, share, chars, plausible, sym, mixed in rows:
                pages += 1
                usable += ok
                if ok and not plausible:
                    implausible += 1
                    print(f"  IMPLAUSIBLE {pdf.name} p{index + 1}: share {share:.2f} of {chars} chars")
                if chars >= 40:
                    lowest.append((share, f"{pdf.name} p{index + 1} ({chars} chars)"))
                    highest_sym.append((-sym, f"{pdf.name} p{index + 1} ({chars} chars)"))
                    highest_mixed.append((-mixed, f"{pdf.name} p{index + 1} ({chars} chars)"))
        lowest.sort()
        highest_sym.sort()
        highest_mixed.sort()
        bad_total += implausible
        print(f"{name}: {len(pdfs)} PDFs ({unreadable} unreadable), {pages} pages, {usable} whose layer would be read, "
              f"{implausible} judged implausible")
        print("  lowest word-like shares: " + "; ".join(f"{s:.3f} {where}" for s, where in lowest[:5]))
        print("  highest symbol shares: " + "; ".join(f"{-s:.3f} {where}" for s, where in highest_sym[:5]))
        print("  highest script-change rates: " + "; ".join(f"{-s:.3f} {where}" for s, where in highest_mixed[:5]))
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from tests.test_mojibake import MOJIBAKE_KINDS, make_mojibake_pdf

    with tempfile.TemporaryDirectory() as tmp:
        for kind in MOJIBAKE_KINDS:
            pdf = make_mojibake_pdf(Path(tmp) / f"{kind}.pdf", kind)
            rows = judge_pdf(pdf)
            print(f"mojibake {kind}: " + ", ".join(f"p{i + 1} usable={ok} words={s:.3f} symbols={y:.3f} "
                                                    f"script changes={m:.3f} plausible={p}"
                                                    for i, ok, s, _, p, y, m in rows))
    print(f"{time.perf_counter() - started:.1f} s")
    return 1 if bad_total else 0


if __name__ == "__main__":
    raise SystemExit(main())
