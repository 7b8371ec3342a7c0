"""Accents that are not on the page (issue 17 item 12): lines with an accented Latin letter in the ocr engine's
text of SROIE receipts (plain English and Malay), before and after the stray-accent rule of the layout stage
(`docvlm.layout.text_repair.has_stray_accents`), and a page with real French / German accents that must keep
them.

The OCR is not rerun: each image's `docvlm convert` JSON (e.g. /work/cache/sroie-ocr-main, written by a build
without the rule) is taken as the engine's output and `RepairText` is applied to its pages again.

    python bench/accent_bench.py --cache /work/cache/sroie-ocr-main --split dev     # 000-149
    python bench/accent_bench.py --cache /work/cache/sroie-ocr-main --split check   # 150-299, once
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import unicodedata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SPLITS = {"dev": range(0, 150), "check": range(150, 300)}
FRENCH_GERMAN = ["Café de la Gare", "Reçu n° 1234", "Crème brûlée 6,50", "Thé vert 3,20", "Total à payer 9,70",
                 "Espèces remis 10,00", "Monnaie rendue 0,30", "Müllerstraße 12, München", "Größe: mittel",
                 "Merci de votre visite", "Société Générale", "Prix unitaire TTC"]


def accented(text: str) -> bool:
    return any(c.isalpha() and not c.isascii() and unicodedata.name(c, "").startswith("LATIN") for c in text)


def relaid(page):  # a PageResult from a build without the rule -> RepairText applied again
    from docvlm.layout.base import PageContext
    from docvlm.layout.text_repair import RepairText

    return RepairText()(page, PageContext())


def main() -> int:
    from docvlm.datamodel import DocumentResult

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cache", type=Path, required=True, help="folder of <NNN>.jpg.json convert results")
    ap.add_argument("--split", choices=sorted(SPLITS), default="dev")
    args = ap.parse_args()
    before = after = lines = docs = 0
    changed: list[tuple[str, str, str]] = []
    for i in SPLITS[args.split]:
        path = args.cache / f"{i:03d}.jpg.json"
        if not path.is_file():
            continue
        docs += 1
        result = DocumentResult.model_validate_json(path.read_bytes())
        for page in result.pages:
            new = relaid(page)
            for old_ln, new_ln in zip(page.lines, new.lines, strict=True):
                lines += 1
                before += accented(old_ln.text)
                after += accented(new_ln.text)
                if old_ln.text != new_ln.text:
                    changed.append((path.name, old_ln.text, new_ln.text))
    from PIL import Image, ImageDraw, ImageFont

    import docvlm

    font_path = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
    with tempfile.TemporaryDirectory() as tmp:
        img = Image.new("RGB", (1000, 660), "white")
        draw = ImageDraw.Draw(img)
        font = ImageFont.truetype(font_path, 30)
        for k, text in enumerate(FRENCH_GERMAN):
            draw.text((40, 40 + 50 * k), text, font=font, fill="black")
        img.save(Path(tmp) / "fr.png")
        real = docvlm.convert(str(Path(tmp) / "fr.png"))
    real_lines = [ln.text for ln in real.pages[0].lines]
    kept = sum(accented(t) for t in real_lines)
    want = sum(accented(t) for t in FRENCH_GERMAN)
    report = {"split": args.split, "documents": docs, "lines": lines, "accented_lines_before": before,
              "accented_lines_after": after, "changed": changed,
              "french_german_page": {"accented_lines_printed": want, "accented_lines_read": kept, "lines": real_lines}}
    print(json.dumps(report, ensure_ascii=False, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
