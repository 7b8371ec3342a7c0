"""Self-made invoices for the extraction tests: PDFs with a text layer drawn by PyMuPDF at known positions."""

from __future__ import annotations

from pathlib import Path

DPI = 200
K = DPI / 72.0


def make_pdf(path: Path, rows: list[tuple[float, float, str]], *, fontsize: float = 10) -> dict[str, tuple]:
    """Write a one-page A4 PDF with `text` at (x, y) points; returns text -> its box in page pixels at 200 dpi."""
    import pymupdf

    doc = pymupdf.open()
    page = doc.new_page(width=595, height=842)
    boxes = {}
    for x, y, text in rows:
        page.insert_text((x, y), text, fontsize=fontsize, fontname="helv")
        width = pymupdf.get_text_length(text, fontname="helv", fontsize=fontsize)
        boxes[text] = (x * K, (y - fontsize) * K, (x + width) * K, (y + 2) * K)
    doc.save(str(path))
    doc.close()
    return boxes


def invoice_rows(*, total: str | None = "Total: 1,103.13 EUR", extra: list | None = None,
                 date: str = "15.03.2024", due: str = "14.04.2024") -> list[tuple[float, float, str]]:
    rows = [
        (50, 60, "Nordlicht Office Supplies GmbH"),
        (50, 76, "Hafenstrasse 12"),
        (50, 90, "20457 Hamburg, Germany"),
        (50, 104, "VAT ID: DE298765431"),
        (430, 60, "INVOICE"),
        (50, 170, "Bill to:"),
        (50, 184, "Acme Robotics B.V."),
        (340, 170, "Invoice number:"),
        (470, 170, "INV-2024-0173"),
        (340, 184, "Invoice date:"),
        (470, 184, date),
        (340, 198, "Due date:"),
        (470, 198, due),
        (50, 260, "Description"), (300, 260, "Qty"), (370, 260, "Unit price"), (480, 260, "Amount"),
        (50, 280, "Ergonomic office chair"), (300, 280, "2"), (370, 280, "189.00"), (480, 280, "378.00"),
        (50, 296, "Standing desk 160x80 cm"), (300, 296, "1"), (370, 296, "549.00"), (480, 296, "549.00"),
        (370, 340, "Subtotal:"), (480, 340, "927.00"),
        (370, 356, "VAT 19%:"), (480, 356, "176.13"),
    ]
    if total is not None:
        label, _, value = total.partition(": ")
        rows += [(370, 374, label + ":"), (470, 374, value)]
    return rows + (extra or [])


MONO = ("/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf", "/usr/share/fonts/dejavu/DejaVuSansMono.ttf",
        "/usr/share/fonts/TTF/DejaVuSansMono.ttf")


def _mono(size: int):
    from PIL import ImageFont

    for path in MONO:
        if Path(path).is_file():
            return ImageFont.truetype(path, size)
    return ImageFont.load_default(size)


def render_receipt(path: Path, rows: list[tuple[str, str] | str], *, width: int = 640, size: int = 26,
                   tilt_deg: float = 0.0, rotate: int = 0) -> Path:
    """A till-receipt photo: each row is a centred text or a (left, right) pair printed at the two margins, so
    a label and its amount are far apart (two OCR boxes). `tilt_deg` tilts the paper like a hand-held photo;
    `rotate` (90, 180, 270) turns the whole image (a photo taken sideways or upside down)."""
    from PIL import Image, ImageDraw

    font = _mono(size)
    gap = int(size * 1.7)
    height = 80 + gap * len(rows) + 80
    paper = Image.new("L", (width, height), 255)
    d = ImageDraw.Draw(paper)
    y = 60
    for row in rows:
        if isinstance(row, str):
            d.text(((width - font.getlength(row)) / 2, y), row, font=font, fill=20)
        else:
            left, right = row
            d.text((40, y), left, font=font, fill=20)
            d.text((width - 40 - font.getlength(right), y), right, font=font, fill=20)
        y += gap
    if tilt_deg:
        paper = paper.rotate(tilt_deg, resample=Image.BICUBIC, expand=True, fillcolor=255)
    if rotate:
        paper = paper.rotate(rotate, expand=True)
    paper.convert("RGB").save(path, quality=92)
    return path


def make_receipt_pdf(path: Path, rows: list[tuple[str, str] | str], *, width: float = 230, size: float = 8) -> Path:
    """A till receipt as a born-digital PDF (an 80 mm strip with a text layer): centred rows and (left, right)
    pairs at the two margins."""
    import pymupdf

    gap = size * 1.6
    doc = pymupdf.open()
    page = doc.new_page(width=width, height=40 + gap * len(rows) + 40)
    font = pymupdf.Font("cour")
    y = 40.0
    for row in rows:
        if isinstance(row, str):
            page.insert_text(((width - font.text_length(row, fontsize=size)) / 2, y), row, fontsize=size,
                             fontname="cour")
        else:
            left, right = row
            page.insert_text((12, y), left, fontsize=size, fontname="cour")
            page.insert_text((width - 12 - font.text_length(right, fontsize=size), y), right, fontsize=size,
                             fontname="cour")
        y += gap
    doc.save(str(path))
    doc.close()
    return path


def receipt_lines(*texts: str, x0: float = 100, step: float = 35) -> list:
    """One OCR line per row, each word boxed 12 px apart (a normal printed space): receipt lines as a recogniser
    returns them, for the field rules."""
    from docvlm.datamodel import Line, Word

    lines = []
    for k, text in enumerate(texts):
        x, words = x0, []
        for w in text.split():
            words.append(Word(text=w, bbox_page_px=(x, 10 + k * step, x + 14 * len(w), 40 + k * step)))
            x += 14 * len(w) + 12
        lines.append(Line(text=text, bbox_page_px=(x0, 10 + k * step, x - 12, 40 + k * step), words=words))
    return lines
