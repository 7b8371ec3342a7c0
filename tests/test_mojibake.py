"""Issue 17 item 8: a text layer whose fonts map glyphs to the wrong characters (mojibake) is judged
implausible; the ocr engine reads that page by OCR instead, and says so (`text_layer_rejected`, a warning).

The mojibake PDFs are made here: text set in an embedded font (MuPDF's built-in Droid Sans Fallback, so no
system font is needed), then the font's ToUnicode CMap rewritten so every glyph extracts as another character,
while the page still renders right."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pymupdf
import pytest

from docvlm.text_plausibility import is_wordlike, judge_words

TEXT_LINES = [
    "Invoice 2024-0117 from Northwind Traders",
    "Delivery address: 12 Harbour Road, Leeds",
    "Total amount due 142.50 EUR by 30 June",
    "Thank you for your business",
]
MOJIBAKE_KINDS = ("punctuation", "scripts", "symbols")
"""How the glyphs are mis-mapped: ASCII punctuation in glyph order (what a subset font without a real
ToUnicode gives), letters of mixed scripts, math symbols."""
_SCRIPT_LETTERS = "жλשكΩфתبΨдگπЯعξ"


def _unicode_of_codes(cmap: str) -> dict[int, int]:
    """code -> Unicode of a ToUnicode CMap (bfchar and bfrange with a start value)."""
    out: dict[int, int] = {}
    for a, b, c in re.findall(r"<([0-9a-fA-F]+)>\s*<([0-9a-fA-F]+)>\s*<([0-9a-fA-F]+)>", cmap):
        for i, code in enumerate(range(int(a, 16), int(b, 16) + 1)):
            out[code] = int(c, 16) + i
    for block in re.findall(r"beginbfchar(.*?)endbfchar", cmap, re.S):
        for a, c in re.findall(r"<([0-9a-fA-F]+)>\s*<([0-9a-fA-F]+)>", block):
            out[int(a, 16)] = int(c, 16)
    return out


def make_mojibake_pdf(path: Path, kind: str) -> Path:
    """A one-page PDF that renders TEXT_LINES but whose text layer extracts as mojibake of `kind`."""
    doc = pymupdf.open()
    page = doc.new_page(width=595, height=842)
    page.insert_font(fontname="F1", fontbuffer=pymupdf.Font("cjk").buffer)
    for i, line in enumerate(TEXT_LINES):
        page.insert_text((50, 80 + 28 * i), line, fontname="F1", fontsize=16)
    doc.subset_fonts()
    doc.save(path)
    doc = pymupdf.open(path)
    font_xref = next(x for x in range(1, doc.xref_length()) if "/ToUnicode" in doc.xref_object(x))
    cmap_xref = int(doc.xref_get_key(font_xref, "ToUnicode")[1].split()[0])
    real = _unicode_of_codes(doc.xref_stream(cmap_xref).decode("latin-1"))
    used = sorted({int(h[i:i + 4], 16) for h in re.findall(rb"<([0-9a-fA-F]+)>", doc[0].read_contents())
                   for i in range(0, len(h), 4)})
    wrong: dict[int, int] = {}
    for n, code in enumerate(used):
        if real.get(code) == 0x20:
            wrong[code] = 0x20  # spaces stay spaces: the mojibake still splits into "words"
        elif kind == "punctuation":
            wrong[code] = 0x21 + n
        elif kind == "scripts":
            wrong[code] = ord(_SCRIPT_LETTERS[n % len(_SCRIPT_LETTERS)])
        else:
            wrong[code] = 0x2200 + n
    entries = "\n".join(f"<{c:04x}> <{u:04x}>" for c, u in wrong.items())
    cmap = ("/CIDInit /ProcSet findresource begin\n12 dict begin\nbegincmap\n"
            "/CIDSystemInfo <</Registry(Adobe)/Ordering(UCS)/Supplement 0>> def\n"
            "/CMapName /Adobe-Identity-UCS def\n/CMapType 2 def\n1 begincodespacerange\n<0000> <FFFF>\n"
            f"endcodespacerange\n{len(wrong)} beginbfchar\n{entries}\nendbfchar\nendcmap\n"
            "CMapName currentdict /CMap defineresource pop\nend\nend\n")
    doc.update_stream(cmap_xref, cmap.encode("ascii"))
    doc.save(path, incremental=True, encryption=pymupdf.PDF_ENCRYPT_KEEP)
    return path


@pytest.mark.parametrize("kind", MOJIBAKE_KINDS)
def test_mojibake_layers_are_judged_implausible(tmp_path: Path, kind: str) -> None:
    pdf = make_mojibake_pdf(tmp_path / f"{kind}.pdf", kind)
    text = pymupdf.open(pdf)[0].get_text()
    assert "Invoice" not in text and len(text.split()) >= 20  # it extracts, as nonsense
    verdict = judge_words(text.split())
    assert not verdict.plausible and "mojibake" in verdict.reason


def test_real_text_of_many_kinds_is_plausible() -> None:
    samples = [
        "Invoice 2024-0117 from Northwind Traders, total 142.50 EUR (incl. VAT 19%).",
        "Le café coûte 3,50 € — l'addition s'il vous plaît ; merci !",
        "Счёт-фактура № 17 от 12.03.2024, итого 1 250,00 руб.",
        "東京都千代田区丸の内1-2-3 株式会社サンプル 合計 ¥12,000",
        "Email: j.doe@example.com, web https://example.org/a/b?c=1 tel. +44 (0)20 7946 0958",
        "iPhone McDonald's PhD x² + y² = z² α-helix β-sheet 3.14159 ±0.01 [12] (see Fig. 3b)",
        "| Item | Qty | Price |  12 x 4.50 = 54.00  • bullet — dash … 1/2 3:45 pm",
    ]
    for text in samples:
        verdict = judge_words(((text + " ") * 3).split())
        assert verdict.plausible, (text, verdict)
    assert is_wordlike("2024-0117") and is_wordlike("(incl.") and not is_wordlike('!"##$')


def test_ocr_engine_reads_a_mojibake_page_by_ocr_and_says_so(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from docvlm.cli import main

    (tmp_path / "in").mkdir()
    make_mojibake_pdf(tmp_path / "in" / "mojibake.pdf", "punctuation")
    good = tmp_path / "in" / "good.pdf"
    doc = pymupdf.open()
    page = doc.new_page(width=595, height=842)
    for i, line in enumerate(TEXT_LINES):
        page.insert_text((50, 80 + 28 * i), line, fontsize=16)
    doc.save(good)
    out = tmp_path / "out"
    res = CliRunner().invoke(main, ["convert", str(tmp_path / "in"), "-o", str(out)])
    assert res.exit_code == 0, res.output
    bad = json.loads((out / "mojibake.pdf.json").read_text())
    page = bad["pages"][0]
    assert page["text_source"] == "ocr" and "mojibake" in page["text_layer_rejected"]
    text = " ".join(line["text"] for line in page["lines"])
    assert "Invoice" in text and "Northwind" in text and "Thank" in text
    summary = json.loads((out / "_docvlm_summary.json").read_text())
    warned = {d["key"]: d["warnings"] for d in summary["documents"]}
    assert any("read by OCR" in w for w in warned["mojibake.pdf"]) and not warned["good.pdf"]
    assert "read by OCR" in res.output
    kept = json.loads((out / "good.pdf.json").read_text())["pages"][0]
    assert kept["text_source"] == "text_layer" and kept.get("text_layer_rejected") is None
