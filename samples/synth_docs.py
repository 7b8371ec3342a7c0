"""Synthetic receipts and invoices with known truth (tax, subtotal, discount, rounding, line items), one per seed.

Built on the conventions of make_samples.py (PyMuPDF base-14 fonts, amounts as Decimal, truth in the field names
of schemas/receipt.py and schemas/invoice.py). Each seed draws a layout (till receipt strip or A4 invoice),
font, currency and decimal convention, label language, items (some names wrapped over two lines), one or two
tax rates printed per rate, a discount or voucher, cash rounding, and a date. Rendered two ways:

- `render_pdf`: a born-digital PDF with a text layer;
- `render_photo`: that page rasterized, tilted, blurred, noised and JPEG-compressed like a phone photo.

Nothing here is committed as files: bench/extract_bench.py --set synth generates them on the fly into a cache
folder. Seeds are split like SROIE: even seeds develop the rules, odd seeds check them.

    python samples/synth_docs.py --out /tmp/synth --count 4     # look at a few
"""

from __future__ import annotations

import argparse
import io
import json
import random
from dataclasses import asdict, dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

CENT = Decimal("0.01")
FONTS = ("helv", "cour", "tiro")
"""PyMuPDF base-14 fonts: Helvetica, Courier, Times."""
CURRENCIES = (("MYR", "RM", "EN", False), ("EUR", "€", "NL", True), ("EUR", "EUR", "DE", True),
              ("USD", "$", "EN", False), ("GBP", "£", "EN", False))
"""(code, mark printed, label language, decimal comma)."""
RATES = {"MYR": (Decimal(6), Decimal(10)), "EUR": (Decimal(9), Decimal(21)), "USD": (Decimal("8.25"),),
         "GBP": (Decimal(20), Decimal(5))}
LABELS = {
    "EN": {"subtotal": "SUBTOTAL", "tax": "TAX", "total": "TOTAL", "discount": "DISCOUNT", "voucher": "VOUCHER",
           "rounding": "ROUNDING ADJ", "cash": "CASH", "change": "CHANGE", "invoice": "INVOICE",
           "number": "Invoice no:", "date": "Date:", "due": "Due date:", "desc": "Description", "qty": "Qty",
           "price": "Unit price", "amount": "Amount", "bill": "Bill to:"},
    "NL": {"subtotal": "Subtotaal", "tax": "BTW", "total": "Totaal", "discount": "Korting", "voucher": "Korting",
           "rounding": "Afronding", "cash": "Contant", "change": "Wisselgeld", "invoice": "FACTUUR",
           "number": "Factuurnummer:", "date": "Factuurdatum:", "due": "Vervaldatum:", "desc": "Omschrijving",
           "qty": "Aantal", "price": "Prijs", "amount": "Bedrag", "bill": "Factuuradres:"},
    "DE": {"subtotal": "Zwischensumme", "tax": "MwSt", "total": "Gesamtbetrag", "discount": "Rabatt",
           "voucher": "Rabatt", "rounding": "Rundung", "cash": "Bar gegeben", "change": "Rückgeld",
           "invoice": "RECHNUNG", "number": "Rechnungsnummer:", "date": "Rechnungsdatum:", "due": "Fällig am:",
           "desc": "Bezeichnung", "qty": "Menge", "price": "Preis", "amount": "Betrag", "bill": "Rechnungsempfänger:"},
}
TAX_WORD = {"MYR": "GST", "USD": "SALES TAX", "GBP": "VAT"}
VENDORS = ("KEDAI MAJU JAYA SDN BHD", "Nordlicht Buerobedarf GmbH", "Bakkerij De Zon B.V.", "SUNRISE TRADING LTD",
           "GREEN LEAF CAFE SDN BHD", "Harbour Hardware Ltd", "Kwik Mart Pte Ltd", "Atelier Blanc SARL")
WORDS = ("chair", "desk", "lamp", "coffee", "tea", "bread", "milk", "rice", "paper", "cable", "battery", "soap",
         "towel", "pen", "notebook", "shelf", "cup", "plate", "sugar", "butter", "cheese", "apple", "tomato")
QUALIFIERS = ("large", "small", "organic", "black", "white", "premium", "2kg", "pack of 6", "with lid", "deluxe",
              "stainless steel", "extra strong", "family size")


@dataclass
class Item:
    description: str
    quantity: Decimal
    unit_price: Decimal
    amount: Decimal
    rate: Decimal
    wrapped: tuple[str, str] | None = None  # the name printed over two lines


@dataclass
class SynthDoc:
    seed: int
    kind: str  # receipt | invoice
    font: str
    currency: str
    mark: str
    lang: str
    decimal_comma: bool
    vendor: str
    date_iso: str
    date_printed: str
    items: list[Item]
    subtotal: Decimal
    discount: Decimal
    taxes: list[tuple[Decimal, Decimal]]  # (rate, amount) per rate
    rounding: Decimal
    total: Decimal
    cash: Decimal | None = None
    number: str = ""
    rows: list = field(default_factory=list)  # (x_pt, y_pt, text, align) as drawn

    @property
    def tax(self) -> Decimal:
        return sum((a for _, a in self.taxes), Decimal(0))

    def truth(self) -> dict:
        """Truth in schema field names (amounts as decimal strings)."""
        d = {"kind": self.kind, "seed": self.seed, "currency": self.currency, "date": self.date_iso,
             "vendor_name": self.vendor, "subtotal": str(self.subtotal), "tax": str(self.tax),
             "total": str(self.total), "discount": str(self.discount), "rounding": str(self.rounding),
             "tax_lines": [[str(r), str(a)] for r, a in self.taxes],
             "line_items": [{"description": it.description, "quantity": str(it.quantity),
                             "unit_price": str(it.unit_price), "amount": str(it.amount)} for it in self.items]}
        if self.kind == "invoice":
            d["invoice_number"] = self.number
        return d


def fmt(v: Decimal, comma: bool) -> str:
    s = f"{v:,.2f}"
    if comma:
        s = s.replace(",", "\x00").replace(".", ",").replace("\x00", ".")
    return s


def make_doc(seed: int) -> SynthDoc:
    """One document with its truth, drawn from `seed` (deterministic)."""
    rnd = random.Random(seed)
    kind = "receipt" if rnd.random() < 0.55 else "invoice"
    code, mark, lang, comma = rnd.choice(CURRENCIES)
    if lang == "EN" or rnd.random() < 0.3:
        lang = "EN"
    rates = RATES[code]
    n_rates = 2 if len(rates) > 1 and rnd.random() < 0.4 else 1
    used = list(rates[:n_rates])
    items = []
    for k in range(rnd.randint(2, 6)):
        name = f"{rnd.choice(WORDS)} {rnd.choice(QUALIFIERS)}"
        if kind == "receipt":
            name = name.upper()
        else:
            name = name.capitalize()
        wrapped = None
        if rnd.random() < 0.25:
            extra = rnd.choice(QUALIFIERS)
            extra = extra.upper() if kind == "receipt" else extra
            wrapped = (name, extra)
            name = f"{name} {extra}"
        qty = Decimal(rnd.choice((1, 1, 1, 2, 3, 4, 12)))
        unit = (Decimal(rnd.randint(50, 9000 if kind == "invoice" else 3000)) / 100).quantize(CENT)
        items.append(Item(name, qty, unit, (qty * unit).quantize(CENT), used[k % n_rates], wrapped))
    subtotal = sum((it.amount for it in items), Decimal(0))
    discount = Decimal(0)
    if rnd.random() < 0.3:
        discount = (subtotal * Decimal(rnd.choice((5, 10, 15))) / 100).quantize(CENT, ROUND_HALF_UP)
    taxes = []
    share = (subtotal - discount) / subtotal if subtotal else Decimal(1)
    for r in used:
        base = sum((it.amount for it in items if it.rate == r), Decimal(0)) * share
        taxes.append((r, (base * r / 100).quantize(CENT, ROUND_HALF_UP)))
    raw_total = subtotal - discount + sum((a for _, a in taxes), Decimal(0))
    rounding = Decimal(0)
    if kind == "receipt" and code == "MYR":
        rounded = (raw_total * 20).quantize(Decimal(1), ROUND_HALF_UP) / 20
        rounding = (rounded - raw_total).quantize(CENT)
    total = (raw_total + rounding).quantize(CENT)
    cash = None
    if kind == "receipt" and rnd.random() < 0.7:
        cash = Decimal(int(total) + rnd.choice((1, 5, 10, 20)))
    y, mth, day = 2018 + rnd.randint(0, 7), rnd.randint(1, 12), rnd.randint(1, 28)
    printed = rnd.choice((f"{day:02d}/{mth:02d}/{y}", f"{day:02d}.{mth:02d}.{y}", f"{day:02d}-{mth:02d}-{y}"))
    doc = SynthDoc(seed, kind, rnd.choice(FONTS), code, mark, lang, comma, rnd.choice(VENDORS),
                   f"{y}-{mth:02d}-{day:02d}", printed, items, subtotal, discount, taxes, rounding, total, cash,
                   number=f"INV-{y}-{rnd.randint(100, 9999)}")
    doc.rows = receipt_rows(doc, rnd) if kind == "receipt" else invoice_rows(doc, rnd)
    return doc


def _tax_label(doc: SynthDoc, rate: Decimal) -> str:
    word = LABELS[doc.lang]["tax"] if doc.lang != "EN" else TAX_WORD.get(doc.currency, "TAX")
    r = f"{rate.normalize():f}".replace(".", "," if doc.decimal_comma else ".")
    return f"{word} {r}%"


def receipt_rows(doc: SynthDoc, rnd: random.Random) -> list:
    """(x, y, text, align) rows of an 80 mm till strip: 'c' centred, 'l' left margin, 'r' right margin."""
    L = LABELS[doc.lang]
    def m(v):
        return fmt(v, doc.decimal_comma)
    rows: list = []
    y = 40.0
    gap = 13.0

    def put(text, align="c", dy=gap):
        nonlocal y
        rows.append((0.0, y, text, align))
        y += dy

    def pair(left, right, dy=gap):
        nonlocal y
        rows.append((0.0, y, left, "l"))
        rows.append((0.0, y, right, "r"))
        y += dy

    put(doc.vendor)
    put(f"(CO.REG {rnd.randint(100000, 999999)}-{rnd.choice('ABCKXPW')})")
    put(f"NO. {rnd.randint(1, 99)}, JALAN {rnd.choice(('MERANTI', 'BESAR', 'TUN RAZAK'))} {rnd.randint(1, 9)},")
    put(f"{rnd.randint(10000, 99999)} KUALA LUMPUR")
    put("TAX INVOICE")
    pair(f"{L['date']} {doc.date_printed}", f"{rnd.randint(8, 21):02d}:{rnd.randint(0, 59):02d}")
    y += 4
    for it in doc.items:
        if it.wrapped:
            put(it.wrapped[0], "l", dy=10.5)
            if it.quantity == 1:
                pair(it.wrapped[1], m(it.amount))
                continue
            put(it.wrapped[1], "l", dy=10.5)
        elif it.quantity == 1:
            pair(it.description, m(it.amount))
            continue
        else:
            put(it.description, "l", dy=10.5)
        pair(f"  {it.quantity} x {m(it.unit_price)}", m(it.amount))
    y += 4
    pair(L["subtotal"], m(doc.subtotal))
    if doc.discount:
        pair(L["voucher"] if rnd.random() < 0.5 else L["discount"], "-" + m(doc.discount))
    for rate, amount in doc.taxes:
        pair(_tax_label(doc, rate), m(amount))
    if doc.rounding:
        pair(L["rounding"], m(doc.rounding))
    pair(L["total"], f"{doc.mark} {m(doc.total)}" if rnd.random() < 0.5 else m(doc.total))
    if doc.cash is not None:
        pair(L["cash"], m(doc.cash))
        pair(L["change"], m(doc.cash - doc.total))
    put("THANK YOU")
    return rows


def invoice_rows(doc: SynthDoc, rnd: random.Random) -> list:
    """(x, y, text, align) rows of an A4 invoice; align 'l' at x, 'r' right-aligned ending at x."""
    L = LABELS[doc.lang]
    def m(v):
        return fmt(v, doc.decimal_comma)
    rows: list = [(50, 60, doc.vendor, "l"), (50, 76, f"{rnd.choice(('Hafenstrasse', 'Dorpsstraat', 'Main Street'))} "
                                                  f"{rnd.randint(1, 99)}", "l"),
                  (50, 90, f"{rnd.randint(1000, 99999)} {rnd.choice(('Hamburg', 'Utrecht', 'London'))}", "l"),
                  (430, 60, L["invoice"], "l"), (50, 170, L["bill"], "l"), (50, 184, "Acme Robotics B.V.", "l"),
                  (340, 170, L["number"], "l"), (470, 170, doc.number, "l"), (340, 184, L["date"], "l"),
                  (470, 184, doc.date_printed, "l"),
                  (50, 260, L["desc"], "l"), (320, 260, L["qty"], "r"), (420, 260, L["price"], "r"),
                  (540, 260, L["amount"], "r")]
    y = 280.0
    for it in doc.items:
        first = it.wrapped[0] if it.wrapped else it.description
        rows += [(50, y, first, "l"), (320, y, f"{it.quantity}", "r"), (420, y, m(it.unit_price), "r"),
                 (540, y, m(it.amount), "r")]
        if it.wrapped:
            y += 10
            rows.append((50, y, it.wrapped[1], "l"))
        y += 18
    y += 14
    rows += [(380, y, L["subtotal"], "l"), (540, y, m(doc.subtotal), "r")]
    if doc.discount:
        y += 16
        rows += [(380, y, L["discount"], "l"), (540, y, "-" + m(doc.discount), "r")]
    for rate, amount in doc.taxes:
        y += 16
        rows += [(380, y, _tax_label(doc, rate), "l"), (540, y, m(amount), "r")]
    y += 18
    rows += [(380, y, L["total"], "l"), (540, y, f"{m(doc.total)} {doc.currency}", "r")]
    return rows


def render_pdf(doc: SynthDoc, path: Path) -> Path:
    """The document as a born-digital PDF with a text layer."""
    import pymupdf

    size = 8.0 if doc.kind == "receipt" else 10.0
    if doc.kind == "receipt":
        width, height = 230.0, max(r[1] for r in doc.rows) + 40
    else:
        width, height = 595.0, 842.0
    pdf = pymupdf.open()
    page = pdf.new_page(width=width, height=height)
    for x, y, text, align in doc.rows:
        w = pymupdf.get_text_length(text, fontname=doc.font, fontsize=size)
        if doc.kind == "receipt":
            x = {"c": (width - w) / 2, "l": 12, "r": width - 12 - w}[align]
        elif align == "r":
            x = x - w
        page.insert_text((x, y), text, fontsize=size, fontname=doc.font)
    path.parent.mkdir(parents=True, exist_ok=True)
    pdf.save(str(path))
    pdf.close()
    return path


def render_photo(doc: SynthDoc, path: Path, *, dpi: int = 150) -> Path:
    """The PDF page rasterized, then tilted, blurred, noised and JPEG-compressed (seeded by the document)."""
    import numpy as np
    import pymupdf
    from PIL import Image, ImageFilter

    rnd = random.Random(doc.seed * 7919 + 1)
    tmp = io.BytesIO()
    pdf_path = path.with_name(path.stem + ".photo-source.pdf")
    render_pdf(doc, pdf_path)
    with pymupdf.open(str(pdf_path)) as pdf:
        pix = pdf[0].get_pixmap(dpi=dpi, colorspace=pymupdf.csGRAY)
        img = Image.frombytes("L", (pix.width, pix.height), pix.samples)
    pdf_path.unlink()
    pad = 40
    canvas = Image.new("L", (img.width + 2 * pad, img.height + 2 * pad), rnd.randint(90, 160))
    canvas.paste(img, (pad, pad))
    img = canvas.rotate(rnd.uniform(-2.5, 2.5), resample=Image.BICUBIC, expand=True, fillcolor=rnd.randint(90, 160))
    img = img.filter(ImageFilter.GaussianBlur(rnd.uniform(0.3, 0.9)))
    arr = np.asarray(img, dtype=np.float32)
    h = arr.shape[0]
    light = np.linspace(rnd.uniform(0.85, 1.0), rnd.uniform(0.85, 1.0), h)[:, None]  # uneven light
    nrng = np.random.default_rng(doc.seed)
    arr = np.clip(arr * light + nrng.normal(0, rnd.uniform(4, 10), arr.shape), 0, 255).astype(np.uint8)
    Image.fromarray(arr).save(tmp, format="JPEG", quality=rnd.randint(55, 85))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(tmp.getvalue())
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--count", type=int, default=4)
    ap.add_argument("--start", type=int, default=0)
    args = ap.parse_args()
    for seed in range(args.start, args.start + args.count):
        doc = make_doc(seed)
        render_pdf(doc, args.out / f"synth_{seed:04d}.pdf")
        render_photo(doc, args.out / f"synth_{seed:04d}.jpg")
        (args.out / f"synth_{seed:04d}.truth.json").write_text(json.dumps(doc.truth(), indent=1))
        print(seed, doc.kind, doc.currency, doc.lang, doc.total)
    _ = asdict


if __name__ == "__main__":
    main()
