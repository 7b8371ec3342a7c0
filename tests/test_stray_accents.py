"""Issue 17 item 12: accents the OCR model made up are removed; accents printed on the page stay.

The recognition model's character set holds accented Latin letters, and on plain English / Malay receipts it
now and then prints one (SROIE: "JÁLAN", "INVOICÉ", "Totäl"). The layout stage removes them on an OCR page
whose accented words are too few to be its language; a French / German page read by OCR keeps its accents,
and a text layer is never touched.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image, ImageDraw, ImageFont

from docvlm.datamodel import Line, PageResult, Word
from docvlm.layout import PageContext, apply_page_layout

RECEIPT = ["SETIA ALAM HARDWARE SDN BHD", "NO 37, JALAN MANIS 7, TAMAN SEGAR", "SIMPLIFIED TAX INVOICE",
           "QTY ITEM PRICE AMOUNT", "1 SILICONE SEALANT 12.50 12.50", "2 PAINT BRUSH 3.00 6.00",
           "TOTAL INCLUSIVE GST 18.50", "CASH 20.00", "CHANGE 1.50", "THANK YOU PLEASE COME AGAIN",
           "GOODS SOLD ARE NOT RETURNABLE", "KEEP THIS RECEIPT FOR EXCHANGE"]
MADE_UP = {0: "SETIA ÁLAM HARDWARE SDN BHD", 2: "SIMPLIFIED TAX INVOICÉ"}
FRENCH_GERMAN = ["Café de la Gare", "Crème brûlée 6,50", "Thé vert 3,20", "Total à payer 9,70",
                 "Espèces remis 10,00", "Müllerstraße 12, München", "Größe: mittel", "Société Générale",
                 "Merci de votre visite"]
FONT = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")


def _page(texts: list[str], source: str) -> PageResult:
    lines = []
    for i, text in enumerate(texts):
        y = 40 + 40 * i
        x, words = 40.0, []
        for w in text.split():
            words.append(Word(text=w, bbox_page_px=(x, y, x + 14 * len(w), y + 24), confidence=0.9))
            x += 14 * len(w) + 10
        lines.append(Line(text=text, bbox_page_px=(40, y, x, y + 24), confidence=0.9, words=words))
    return PageResult(index=0, width_px=1000, height_px=800, dpi=None, status="success", lines=lines,
                      text_source=source)


def test_made_up_accents_on_an_ocr_page_are_removed_and_kept_in_raw_text() -> None:
    texts = [MADE_UP.get(i, t) for i, t in enumerate(RECEIPT)]
    page = apply_page_layout(_page(texts, "ocr"), PageContext())
    by_raw = {ln.raw_text: ln for ln in page.lines if ln.raw_text}
    assert sorted(by_raw) == sorted(MADE_UP.values())
    assert sorted(ln.text for ln in page.lines) == sorted(RECEIPT)
    assert all(w.text.isascii() for ln in page.lines for w in ln.words)


def test_the_same_accents_in_a_text_layer_are_kept() -> None:
    texts = [MADE_UP.get(i, t) for i, t in enumerate(RECEIPT)]
    page = apply_page_layout(_page(texts, "text_layer"), PageContext())
    assert sorted(ln.text for ln in page.lines) == sorted(texts)


def test_an_ocr_page_in_french_keeps_its_accents_as_given() -> None:
    page = apply_page_layout(_page(FRENCH_GERMAN, "ocr"), PageContext())
    assert sorted(ln.text for ln in page.lines) == sorted(FRENCH_GERMAN)


def test_real_accents_read_by_ocr_survive(tmp_path: Path) -> None:
    """A French / German page rendered here with a font that has the letters, read by the default engine."""
    if not FONT.is_file():
        pytest.skip("DejaVuSans.ttf not installed")
    import docvlm

    img = Image.new("RGB", (900, 60 + 50 * len(FRENCH_GERMAN)), "white")
    draw = ImageDraw.Draw(img)
    font = ImageFont.truetype(str(FONT), 30)
    for k, text in enumerate(FRENCH_GERMAN):
        draw.text((40, 30 + 50 * k), text, font=font, fill="black")
    img.save(tmp_path / "fr.png")
    result = docvlm.convert(str(tmp_path / "fr.png"))
    read = " ".join(ln.text for ln in result.pages[0].lines)
    assert result.pages[0].text_source == "ocr"
    for word in ("Café", "Crème", "brûlée", "Thé", "à", "Espèces", "München", "Größe", "Société", "Générale"):
        assert word in read, (word, read)
