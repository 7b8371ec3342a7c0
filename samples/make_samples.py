"""Regenerate docvlm's self-made sample documents, deterministically, with code only.

    python samples/make_samples.py            # writes into samples/
    python samples/make_samples.py --out DIR

Files: invoice.pdf (born-digital) + invoice.truth.json, invoice_scan.pdf (the same invoice rasterized at
150 dpi, rotated 1.5 degrees, noisy, image-only), receipt_long.jpg (long thin receipt photo) +
receipt_long.truth.json, two_column.pdf, rotated.pdf (/Rotate 90). Fonts: PyMuPDF's base-14 fonts for PDFs;
DejaVu Sans Mono from the system for the receipt when present (else Pillow's bundled font).
Truth files use the field names of schemas/invoice.py and schemas/receipt.py; amounts are decimal strings,
dates ISO 8601; `printed` holds the exact strings on the page.
"""

from __future__ import annotations

import argparse
import io
import json
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import numpy as np
import pymupdf
from PIL import Image, ImageDraw, ImageFilter, ImageFont

HERE = Path(__file__).resolve().parent
SEED = 20240315
A4 = (595.0, 842.0)
MONO_FONTS = (
    "/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf",
    "/usr/share/fonts/dejavu/DejaVuSansMono.ttf",
    "/usr/share/fonts/TTF/DejaVuSansMono.ttf",
)
MONO_BOLD_FONTS = tuple(p.replace("DejaVuSansMono.ttf", "DejaVuSansMono-Bold.ttf") for p in MONO_FONTS)


def money(v: Decimal) -> str:
    return f"{v.quantize(Decimal('0.01'), ROUND_HALF_UP):,.2f}"


def dec(v: Decimal) -> str:
    return str(v.quantize(Decimal("0.01"), ROUND_HALF_UP))


def save_pdf(doc: pymupdf.Document, path: Path) -> None:
    """Save without dates or random ids so the bytes are the same on every run."""
    doc.set_metadata({"title": path.stem, "creator": "docvlm samples/make_samples.py", "producer": "PyMuPDF"})
    doc.save(path, garbage=4, deflate=True, no_new_id=True)


# --- invoice ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Item:
    description: str
    quantity: int
    unit_price: Decimal

    @property
    def amount(self) -> Decimal:
        return self.unit_price * self.quantity


VENDOR = ("Nordlicht Office Supplies GmbH", ["Hafenstrasse 12", "20457 Hamburg, Germany"], "DE298765431")
BUYER = ("Acme Robotics B.V.", ["Keizersgracht 221", "1016 DV Amsterdam, Netherlands"])
INVOICE_NUMBER = "INV-2024-0173"
INVOICE_DATE = ("15.03.2024", "2024-03-15")
DUE_DATE = ("14.04.2024", "2024-04-14")
TAX_RATE = Decimal("19")
ITEMS = (
    Item("Ergonomic office chair", 2, Decimal("189.00")),
    Item("Standing desk 160x80 cm", 1, Decimal("549.00")),
    Item("Dual monitor arm", 3, Decimal("64.50")),
    Item("USB-C docking station", 2, Decimal("129.90")),
)


def invoice_truth() -> dict:
    subtotal = sum((i.amount for i in ITEMS), Decimal("0"))
    tax = (subtotal * TAX_RATE / 100).quantize(Decimal("0.01"), ROUND_HALF_UP)
    total = subtotal + tax
    return {
        "vendor_name": VENDOR[0],
        "vendor_address": ", ".join(VENDOR[1]),
        "vendor_tax_id": VENDOR[2],
        "buyer_name": BUYER[0],
        "buyer_address": ", ".join(BUYER[1]),
        "invoice_number": INVOICE_NUMBER,
        "invoice_date": INVOICE_DATE[1],
        "due_date": DUE_DATE[1],
        "currency": "EUR",
        "line_items": [
            {
                "description": i.description,
                "quantity": str(i.quantity),
                "unit_price": dec(i.unit_price),
                "amount": dec(i.amount),
            }
            for i in ITEMS
        ],
        "subtotal": dec(subtotal),
        "tax_rate": str(TAX_RATE),
        "tax_total": dec(tax),
        "total": dec(total),
        "printed": {
            "invoice_date": INVOICE_DATE[0],
            "due_date": DUE_DATE[0],
            "subtotal": money(subtotal),
            "tax_total": money(tax),
            "total": f"{money(total)} EUR",
            "vendor_tax_id": f"VAT ID: {VENDOR[2]}",
        },
    }


def make_invoice(out: Path) -> dict:
    truth = invoice_truth()
    doc = pymupdf.open()
    page = doc.new_page(width=A4[0], height=A4[1])
    black, grey = (0, 0, 0), (0.35, 0.35, 0.35)

    def text(x: float, y: float, s: str, size: float = 10, bold: bool = False, color=black) -> None:
        page.insert_text((x, y), s, fontsize=size, fontname="hebo" if bold else "helv", color=color)

    def rtext(x_right: float, y: float, s: str, size: float = 10, bold: bool = False) -> None:
        font = pymupdf.Font("hebo" if bold else "helv")
        text(x_right - font.text_length(s, fontsize=size), y, s, size, bold)

    # vendor block
    text(50, 70, VENDOR[0], 16, bold=True)
    for k, line in enumerate(VENDOR[1]):
        text(50, 90 + 13 * k, line, 10, color=grey)
    text(50, 90 + 13 * len(VENDOR[1]), truth["printed"]["vendor_tax_id"], 10, color=grey)
    rtext(545, 72, "INVOICE", 24, bold=True)
    # buyer and invoice facts
    text(50, 180, "Bill to:", 10, bold=True)
    text(50, 195, BUYER[0], 11)
    for k, line in enumerate(BUYER[1]):
        text(50, 209 + 13 * k, line, 10)
    facts = (
        ("Invoice number:", INVOICE_NUMBER),
        ("Invoice date:", INVOICE_DATE[0]),
        ("Due date:", DUE_DATE[0]),
        ("Currency:", "EUR"),
    )
    for k, (label, value) in enumerate(facts):
        text(340, 180 + 15 * k, label, 10, bold=True)
        rtext(545, 180 + 15 * k, value, 10)
    # table
    top = 290
    page.draw_rect(pymupdf.Rect(50, top - 14, 545, top + 6), color=None, fill=(0.88, 0.88, 0.88))
    text(56, top, "Description", 10, bold=True)
    rtext(350, top, "Qty", 10, bold=True)
    rtext(450, top, "Unit price", 10, bold=True)
    rtext(540, top, "Amount", 10, bold=True)
    y = top + 24
    for item in ITEMS:
        text(56, y, item.description, 10)
        rtext(350, y, str(item.quantity), 10)
        rtext(450, y, money(item.unit_price), 10)
        rtext(540, y, money(item.amount), 10)
        page.draw_line((50, y + 7), (545, y + 7), color=(0.8, 0.8, 0.8), width=0.5)
        y += 22
    y += 14
    for label, value, bold in (
        ("Subtotal", truth["printed"]["subtotal"], False),
        (f"VAT {truth['tax_rate']}%", truth["printed"]["tax_total"], False),
        ("Total", truth["printed"]["total"], True),
    ):
        text(360, y, label, 11 if bold else 10, bold=bold)
        rtext(540, y, value, 11 if bold else 10, bold=bold)
        y += 18
    text(50, y + 40, f"Please pay within 30 days, by {DUE_DATE[0]}, quoting {INVOICE_NUMBER}.", 9, color=grey)
    text(50, y + 54, "IBAN DE44 5001 0517 5407 3249 31  BIC INGDDEFFXXX", 9, color=grey)
    page.draw_line((50, 800), (545, 800), color=(0.6, 0.6, 0.6), width=0.5)
    text(50, 815, f"{VENDOR[0]} - {', '.join(VENDOR[1])} - VAT ID {VENDOR[2]}", 7, color=grey)
    save_pdf(doc, out / "invoice.pdf")
    doc.close()
    (out / "invoice.truth.json").write_text(json.dumps(truth, indent=2) + "\n")
    return truth


def make_invoice_scan(out: Path, dpi: int = 150) -> None:
    """Rasterize invoice.pdf like a cheap scanner: grey, tilted 1.5 degrees, noisy; an image-only PDF."""
    rng = np.random.default_rng(SEED)
    with pymupdf.open(out / "invoice.pdf") as src:
        pix = src[0].get_pixmap(dpi=dpi, colorspace=pymupdf.csGRAY, alpha=False)
    img = Image.frombytes("L", (pix.width, pix.height), pix.samples)
    img = img.rotate(-1.5, resample=Image.Resampling.BICUBIC, expand=False, fillcolor=255)
    img = img.filter(ImageFilter.GaussianBlur(0.6))
    arr = np.asarray(img, dtype=np.float32)
    arr = arr * 0.92 + 12  # paper is not white, ink is not black
    arr += rng.normal(0.0, 6.0, arr.shape)
    specks = rng.random(arr.shape) < 0.0015
    arr[specks] = rng.uniform(40, 140, int(specks.sum()))
    img = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "L")
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=55, optimize=True)
    doc = pymupdf.open()
    page = doc.new_page(width=A4[0], height=A4[1])
    page.insert_image(page.rect, stream=buf.getvalue())
    save_pdf(doc, out / "invoice_scan.pdf")
    doc.close()


# --- receipt ------------------------------------------------------------------------------------------------

RECEIPT_ITEMS = (
    ("Whole milk 1L", 2, Decimal("1.29")),
    ("Sourdough bread", 1, Decimal("3.49")),
    ("Free range eggs 12", 1, Decimal("4.19")),
    ("Bananas 1kg", 1, Decimal("1.69")),
    ("Cheddar cheese", 1, Decimal("5.25")),
    ("Ground coffee 500g", 1, Decimal("8.99")),
    ("Apples Gala", 3, Decimal("0.85")),
    ("Pasta fusilli", 2, Decimal("1.15")),
    ("Tomato sauce", 2, Decimal("2.30")),
    ("Olive oil 750ml", 1, Decimal("7.80")),
    ("Greek yogurt", 4, Decimal("0.99")),
    ("Dish soap", 1, Decimal("2.75")),
    ("Paper towels 6pk", 1, Decimal("6.49")),
    ("Orange juice 1.5L", 1, Decimal("3.89")),
    ("Butter unsalted", 1, Decimal("3.15")),
)
RECEIPT_TAX_RATE = Decimal("8.25")


def receipt_truth() -> dict:
    subtotal = sum((p * q for _, q, p in RECEIPT_ITEMS), Decimal("0"))
    tax = (subtotal * RECEIPT_TAX_RATE / 100).quantize(Decimal("0.01"), ROUND_HALF_UP)
    total = subtotal + tax
    return {
        "merchant_name": "GREEN LEAF MARKET",
        "merchant_address": "48 Baker Street, Springfield, IL 62704",
        "phone": "(217) 555-0148",
        "date": "2024-05-18",
        "time": "14:32",
        "line_items": [
            {"description": d, "quantity": str(q), "unit_price": dec(p), "amount": dec(p * q)}
            for d, q, p in RECEIPT_ITEMS
        ],
        "subtotal": dec(subtotal),
        "tax_rate": str(RECEIPT_TAX_RATE),
        "tax": dec(tax),
        "total": dec(total),
        "currency": "USD",
        "payment_method": "VISA",
        "card_last4": "4821",
        "printed": {"date": "05/18/2024", "time": "14:32", "total": f"${dec(total)}"},
    }


def _font(paths: tuple[str, ...], size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    for p in paths:
        if Path(p).is_file():
            return ImageFont.truetype(p, size)
    return ImageFont.load_default(size=size)


def make_receipt(out: Path, width: int = 600, height: int = 2200) -> dict:
    truth = receipt_truth()
    rng = np.random.default_rng(SEED + 1)
    size = 24  # DejaVu Sans Mono at 24 px: x-height ~13 px, char width ~14.5 px -> 34 columns on 500 px
    font, bold = _font(MONO_FONTS, size), _font(MONO_BOLD_FONTS, size + 6)
    paper = Image.new("L", (width - 60, height - 60), 250)
    d = ImageDraw.Draw(paper)
    cols = 34
    x0 = 22
    char_w = font.getlength("M")
    y = 40

    def line(s: str = "", *, center: bool = False, f=font, gap: int = 44) -> None:
        nonlocal y
        w = f.getlength(s)
        x = (paper.width - w) / 2 if center else x0
        d.text((x, y), s, font=f, fill=25)
        y += gap

    def lr(left: str, right: str, f=font, gap: int = 44) -> None:
        nonlocal y
        d.text((x0, y), left, font=f, fill=25)
        d.text((paper.width - x0 - f.getlength(right), y), right, font=f, fill=25)
        y += gap

    line("GREEN LEAF MARKET", center=True, f=bold, gap=48)
    line("48 Baker Street", center=True)
    line("Springfield, IL 62704", center=True)
    line("Tel: " + truth["phone"], center=True)
    line("-" * cols)
    lr("Date: " + truth["printed"]["date"], "Time: " + truth["time"])
    lr("Store #0112", "Till 3")
    line("-" * cols)
    for desc, qty, price in RECEIPT_ITEMS:
        if qty == 1:
            lr(desc, dec(price))
        else:
            line(desc)
            lr(f"  {qty} x {dec(price)}", dec(price * qty))
    line("-" * cols)
    lr("SUBTOTAL", truth["subtotal"])
    lr(f"TAX {truth['tax_rate']}%", truth["tax"])
    y += 6
    lr("TOTAL", truth["printed"]["total"], f=bold, gap=60)
    lr("VISA **** " + truth["card_last4"], truth["total"])
    lr("AUTH CODE", "083215")
    line("-" * cols)
    line(f"ITEMS SOLD: {sum(q for _, q, _ in RECEIPT_ITEMS)}", center=True)
    line("THANK YOU FOR SHOPPING!", center=True)
    line("Returns within 14 days", center=True)
    line("with this receipt", center=True)
    y += 30
    line("Receipt 0112-3-048213", center=True)
    line("Member points earned: 54", center=True)
    line("www.greenleaf.example", center=True)
    assert y < paper.height - 40, f"receipt text overflows the paper ({y})"
    assert char_w * cols < paper.width - x0, "receipt lines are wider than the paper"
    # photo: paper on a darker table, gentle shading and noise, a slight tilt
    photo = Image.new("L", (width, height), 95)
    photo.paste(paper, (30, 30))
    photo = photo.rotate(0.6, resample=Image.Resampling.BICUBIC, fillcolor=95)
    arr = np.asarray(photo, dtype=np.float32)
    shade = np.linspace(1.0, 0.86, height, dtype=np.float32)[:, None]
    arr = arr * shade + rng.normal(0.0, 4.0, arr.shape)
    rgb = np.stack([arr * 1.0, arr * 0.98, arr * 0.93], axis=-1)
    img = Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8), "RGB").filter(ImageFilter.GaussianBlur(0.5))
    img.save(out / "receipt_long.jpg", format="JPEG", quality=80, optimize=True)
    (out / "receipt_long.truth.json").write_text(json.dumps(truth, indent=2) + "\n")
    return truth


# --- two-column and rotated pages ---------------------------------------------------------------------------

COLUMN_TEXT = (
    "Grounded document conversion keeps every piece of text together with the place where it stands on the "
    "page. A reader who doubts a number can look at the box and see the print it came from. ",
    "Scanned pages and photos carry no text layer, so the words must be read from pixels. Born-digital "
    "files usually carry exact text, and then reading it is both faster and more accurate than recognition. ",
    "Two columns test the reading order: the left column is read to its end before the right one begins, "
    "even though the lines of both columns share the same heights on the page. ",
    "Receipts are long and thin. Their text is small compared with their height, so a tool that shrinks the "
    "whole image to a fixed size loses the digits that matter most: the total and the tax. ",
    "Every box names its frame. Pixels of the rendered page are the frame of the output; points of the PDF "
    "page are the frame of the file; the grid a model prints on is the frame of the model. ",
    "A page that cannot be read is a result with an error, not a crash. The batch goes on, the failure is "
    "recorded with the file name and the page number, and the summary says how many inputs failed. ",
    "Tiles overlap so that no line is cut in half without also being seen whole. Lines read twice in the "
    "overlap are merged, and the larger of the two boxes is kept. ",
    "The planner chooses the smallest scale that keeps the smallest text readable, because every visual "
    "token costs memory and time, and a page rarely needs all of its pixels. ",
)


def make_two_column(out: Path) -> None:
    doc = pymupdf.open()
    page = doc.new_page(width=A4[0], height=A4[1])
    page.insert_text((50, 80), "Reading Order in Two Columns", fontsize=20, fontname="hebo")
    page.insert_text(
        (50, 102), "A self-made test page for docvlm", fontsize=11, fontname="heit", color=(0.3, 0.3, 0.3)
    )
    page.draw_line((50, 114), (545, 114), color=(0, 0, 0), width=0.8)
    left = "\n".join(COLUMN_TEXT[0::2])
    right = "\n".join(COLUMN_TEXT[1::2])
    for rect, body, label in (
        (pymupdf.Rect(50, 130, 287, 780), left, "1. Left column"),
        (pymupdf.Rect(308, 130, 545, 780), right, "2. Right column"),
    ):
        page.insert_text((rect.x0, rect.y0 + 12), label, fontsize=13, fontname="tibo")
        rc = page.insert_textbox(
            pymupdf.Rect(rect.x0, rect.y0 + 22, rect.x1, rect.y1),
            body,
            fontsize=12,
            fontname="tiro",
            align=pymupdf.TEXT_ALIGN_JUSTIFY,
        )
        assert rc >= 0, "column text does not fit"
    page.insert_text((280, 815), "- 1 -", fontsize=9, fontname="tiro")
    save_pdf(doc, out / "two_column.pdf")
    doc.close()


def make_rotated(out: Path) -> None:
    """A portrait page whose /Rotate 90 makes a viewer show it landscape: text reads top to bottom."""
    doc = pymupdf.open()
    page = doc.new_page(width=A4[0], height=A4[1])
    page.insert_text((60, 80), "ROTATED PAGE", fontsize=22, fontname="hebo")
    page.insert_text((60, 120), "This page carries /Rotate 90 in its page dictionary.", fontsize=12)
    page.insert_text((60, 140), "A viewer turns it clockwise; boxes must follow.", fontsize=12)
    page.insert_text((400, 780), "Corner mark", fontsize=12)
    page.draw_rect(pymupdf.Rect(60, 300, 160, 340), color=None, fill=(0, 0, 0))
    page.set_rotation(90)
    save_pdf(doc, out / "rotated.pdf")
    doc.close()


def make_all(out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    make_invoice(out)
    make_invoice_scan(out)
    make_receipt(out)
    make_two_column(out)
    make_rotated(out)
    names = (
        "invoice.pdf",
        "invoice.truth.json",
        "invoice_scan.pdf",
        "receipt_long.jpg",
        "receipt_long.truth.json",
        "two_column.pdf",
        "rotated.pdf",
    )
    return [out / n for n in names]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=HERE, help="output folder (default: samples/)")
    args = ap.parse_args()
    total = 0
    for p in make_all(args.out):
        total += p.stat().st_size
        print(f"{p.stat().st_size:>9,}  {p}")
    print(f"{total:>9,}  total bytes")


if __name__ == "__main__":
    main()
