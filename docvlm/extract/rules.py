"""Layout-aware extraction rules for the offline `ocr` engine: the one place where field rules live.

Read top to bottom:

1. `LABELS`: the label table, per field and per language (EN, NL, FR, DE, MS). A label is a regular
   expression matched on a whole word boundary, case-insensitive. Order inside a field's list is strength;
   a total's label strength is its list: `total_strong` (payable, due, incl. tax, paid) over `total` over
   `total_weak` (subtotal, excl. tax, before rounding), in every language of the table.
2. Page model: lines grouped into printed rows on deskewed bands (`estimate_skew`), never stacking lines that
   share their width, so a label and its value printed as separate OCR boxes on one row are seen together.
3. `value_candidates`: a label's value is the rest of its own line, else the nearest text to its right on the
   same row, else the row below, else the nearest line under it in its column.
4. One function per field family: dates (label first, else the first date; day/month order decided by the
   document's unambiguous dates), the total by evidence (`find_total`: label strength and arithmetic votes),
   merchant (top of the page, the registered name under a brand line), address (from the street row to the
   region), identifiers, payment method, line items. Every value's note says how it was chosen.
5. `FIELD_ALIASES`: which rule answers which schema field name (built-in and user schemas alike).

Every value keeps its raw text and the box of exactly the words it was read from.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from difflib import SequenceMatcher

from docvlm.datamodel import Box, Line
from docvlm.extract.candidates import Evidence, Found, FoundItem, PageText, RuleResult, TaxLine
from docvlm.extract.evidence import close_totals, judge_fields, settle_tax
from docvlm.extract.normalize import (
    AmountMatch,
    decide_day_first,
    detect_currency,
    find_amounts,
    find_dates,
    parse_time,
    resolve_date,
)
from docvlm.geometry import split_line_into_words, union_box
from docvlm.rows import estimate_skew, group_rows

# --- 1. label table ----------------------------------------------------------------------------------------
LABELS: dict[str, dict[str, list[str]]] = {
    "total": {  # strongest first; a bare "total" is the weakest
        "EN": [r"grand\s*total", r"total\s*amount\s*due", r"amount\s*due", r"balance\s*due", r"total\s*due",
               r"rounded\s*total", r"total\s*rounded", r"total\s*amt", r"round(?:ing)?\s*d?\s*total", r"nett?\s*total", r"total\s*payable",
               r"total\s*\(?incl\w*", r"total\s*amount", r"total\s*sales", r"amount\s*payable", r"total", r"t[o0]t?a?[l1]",
               r"due"],
        "NL": [r"te\s*betalen", r"totaal\s*incl\w*", r"totaalbedrag", r"totaal"],
        "FR": [r"net\s*[àa]\s*payer", r"somme\s*[àa]\s*payer", r"montant\s*[àa]\s*payer", r"total\s*ttc", r"montant\s*total", r"total\s*[àa]\s*payer"],
        "DE": [r"gesamtbetrag", r"zu\s*zahlen", r"rechnungsbetrag", r"endbetrag", r"gesamt", r"summe"],
        "MS": [r"jumlah\s*besar", r"jumlah\s*keseluruhan", r"jumlah\s*bayaran", r"jumlah"],
    },
    "not_total": {  # lines that mention "total" but are not the amount to pay
        "EN": [r"sub\s*-?\s*total", r"total\s*(?:qty|quantity|items?|item\(s\)|disc\w*|savings?|tax|gst|vat|"
               r"excl\w*|before|pcs|units?|points?|weight|no\.)", r"total\s*sales\s*\(?excl", r"tax\s*total",
               r"change", r"cash\s*(?:tendered|received|paid)?", r"tendered", r"rounding", r"gst\s*summary"],
        "NL": [r"subtotaal", r"totaal\s*excl\w*", r"totaal\s*btw", r"wisselgeld"],
        "FR": [r"sous[-\s]*total", r"total\s*ht", r"total\s*tva", r"rendu"],
        "DE": [r"zwischensumme", r"netto\w*", r"summe\s*netto", r"mwst", r"r[üu]ckgeld"],
        "MS": [r"jumlah\s*kecil", r"jumlah\s*cukai", r"baki", r"tunai\s*diterima"],
    },
    "rounding": {
        "EN": [r"round(?:ing|d)?\s*(?:adj\w*)?"], "NL": [r"afronding"], "FR": [r"arrondi"], "DE": [r"rundung"],
        "MS": [r"pelarasan\s*bundar\w*"],
    },
    "subtotal": {
        "EN": [r"sub\s*-?\s*total", r"total\s*(?:excl\w*|before\s*tax|net)", r"net\s*amount",
               r"total\s*sales\s*\(?excl\w*", r"amount\s*\(?excl\w*"],
        "NL": [r"exclusief\s*btw", r"totaal\s*excl\w*", r"subtotaal", r"netto\s*bedrag"],
        "FR": [r"sous[-\s]*total", r"total\s*ht", r"montant\s*ht"],
        "DE": [r"zwischensumme", r"nettobetrag", r"summe\s*netto", r"netto"],
        "MS": [r"jumlah\s*kecil"],
    },
    "tax": {
        "EN": [r"total\s*(?:tax|gst|vat)", r"(?:gst|vat|sales\s*tax|sst|service\s*tax)\s*(?:amount|@|\d)",
               r"tax\s*amount", r"gst", r"vat", r"tax", r"sst"],
        "NL": [r"btw\s*bedrag", r"totaal\s*btw", r"btw"],
        "FR": [r"total\s*tva", r"montant\s*tva", r"tva"],
        "DE": [r"mwst\.?", r"ust\.?", r"umsatzsteuer", r"mehrwertsteuer"],
        "MS": [r"cukai"],
    },
    "invoice_number": {
        "EN": [r"invoice\s*(?:no|number|num|#|nr)\.?", r"inv\.?\s*(?:no|#)\.?", r"bill\s*(?:no|number)\.?",
               r"receipt\s*(?:no|number|#)\.?", r"document\s*(?:no|number)\.?", r"doc\.?\s*no\.?",
               r"order\s*(?:no|number)\.?", r"invoice\s*:", r"ref(?:erence)?\s*(?:no|number)\.?", r"booking\s*(?:id|no|ref)\.?", r"invoice"],
        "NL": [r"factuur\s*(?:nummer|nr)\.?", r"factuurnummer", r"bonnummer", r"factuur"],
        "FR": [r"(?:num[ée]ro\s*de\s*)?facture\s*(?:n[°o]|num[ée]ro)\.?", r"n[°o]\s*de\s*facture", r"facture"],
        "DE": [r"rechnungs\s*-?\s*(?:nummer|nr)\.?", r"beleg\s*-?\s*nr\.?", r"rechnung"],
        "MS": [r"no\.?\s*invois", r"no\.?\s*resit", r"no\.?\s*bil"],
    },
    "invoice_date": {
        "EN": [r"invoice\s*date", r"date\s*of\s*issue", r"issue\s*date", r"billing\s*date", r"bill\s*date",
               r"order\s*date", r"date"],
        "NL": [r"factuurdatum", r"datum"],
        "FR": [r"date\s*de\s*(?:la\s*)?facture", r"date\s*d'?\s*[ée]mission", r"date"],
        "DE": [r"rechnungsdatum", r"datum"],
        "MS": [r"tarikh"],
    },
    "due_date": {
        "EN": [r"due\s*date", r"payment\s*due", r"pay\s*by", r"due\s*by"],
        "NL": [r"vervaldatum", r"uiterste\s*betaaldatum"],
        "FR": [r"date\s*d'?\s*[ée]ch[ée]ance", r"[ée]ch[ée]ance", r"date\s*limite(?:\s*de\s*paiement)?"],
        "DE": [r"f[äa]llig(?:keitsdatum)?", r"zahlbar\s*bis"],
        "MS": [r"tarikh\s*akhir", r"tarikh\s*matang"],
    },
    "vendor_tax_id": {
        "EN": [r"gst\s*(?:reg\w*)?\s*(?:id|no)\.?", r"vat\s*(?:reg\w*)?\s*(?:id|no|number)\.?", r"tax\s*id",
               r"abn", r"gstin", r"tin"],
        "NL": [r"btw[-\s]*(?:nummer|nr|id)\.?", r"btw"],
        "FR": [r"n[°o]\s*tva(?:\s*intracom\w*)?", r"tva\s*intracom\w*", r"siret"],
        "DE": [r"ust[-\s]*id(?:nr)?\.?", r"steuer\s*-?\s*nr\.?", r"steuernummer"],
        "MS": [r"no\.?\s*(?:daftar\s*)?(?:gst|sst)"],
    },
    "buyer_name": {
        "EN": [r"bill\s*to", r"billed\s*to", r"sold\s*to", r"customer(?:\s*name)?", r"invoice\s*to", r"client"],
        "NL": [r"klant(?:naam)?", r"factuuradres", r"aan"],
        "FR": [r"client", r"factur[ée]\s*[àa]", r"destinataire"],
        "DE": [r"kunde", r"rechnungsempf[äa]nger"],
        "MS": [r"pelanggan", r"nama\s*pelanggan"],
    },
    "payment_method": {  # these are values, not labels: the word itself is the answer
        "EN": [r"cash", r"visa", r"master\s*card", r"credit\s*card", r"debit\s*card", r"card", r"amex",
               r"paypal", r"e-?wallet", r"grab\s*pay", r"touch\s*'?n\s*go", r"boost"],
        "NL": [r"contant", r"pin(?:betaling)?", r"ideal"],
        "FR": [r"esp[èe]ces", r"carte\s*bancaire", r"cb", r"ch[èe]que"],
        "DE": [r"bar(?:zahlung)?", r"ec-?karte", r"karte"],
        "MS": [r"tunai", r"kad\s*kredit"],
    },
    "total_strong": {  # the amount actually to pay: beats a bare "total" and every weak label
        "EN": [r"grand\s*total", r"(?:amount|amt)\.?\s*due", r"balance\s*due", r"total\s*due", r"total\s*payable",
               r"amount\s*payable", r"nett?\s*total", r"rounded\s*total", r"total\s*rounded",
               r"(?:total|amount|amt)\s*after\s*round\w*", r"total\s*\(?\s*incl\w*", r"incl\w*\.?\s*(?:of\s*)?(?:gst|tax|vat|sst)",
               r"(?:amount|amt|total)\s*paid", r"paid\s*amount", r"total\s*to\s*pay", r"nett?\s*amount\s*payable"],
        "NL": [r"te\s*betalen", r"totaal\s*incl\w*", r"totaalbedrag", r"incl\w*\.?\s*btw"],
        "FR": [r"net\s*[àa]\s*payer", r"montant\s*[àa]\s*payer", r"total\s*ttc", r"total\s*[àa]\s*payer",
               r"somme\s*[àa]\s*payer", r"montant\s*ttc"],
        "DE": [r"zu\s*zahlen", r"gesamtbetrag", r"rechnungsbetrag", r"endbetrag", r"brutto\w*"],
        "MS": [r"jumlah\s*besar", r"jumlah\s*bayaran", r"jumlah\s*keseluruhan", r"jumlah\s*perlu\s*dibayar",
               r"jumlah\s*termasuk\s*cukai"],
    },
    "total_weak": {  # totals that are not the amount to pay: before tax, before rounding, a subtotal
        "EN": [r"sub\s*-?\s*total", r"excl\w*\.?\s*(?:of\s*)?(?:gst|tax|vat|sst)", r"before\s*(?:round\w*|tax|gst|disc\w*)",
               r"total\s*(?:excl\w*|net)\b", r"net\s*amount", r"total\s*sales\s*\(?excl\w*", r"amount\s*\(?excl\w*"],
        "NL": [r"subtotaal", r"excl\w*\.?\s*btw", r"totaal\s*excl\w*", r"netto\s*bedrag"],
        "FR": [r"sous[-\s]*total", r"total\s*ht", r"montant\s*ht", r"hors\s*tax\w*"],
        "DE": [r"zwischensumme", r"nettobetrag", r"summe\s*netto", r"netto", r"ohne\s*mwst"],
        "MS": [r"jumlah\s*kecil", r"sebelum\s*(?:cukai|bundar\w*)", r"tidak\s*termasuk\s*cukai"],
    },
    "cash": {  # money handed over
        "EN": [r"cash\s*(?:tendered|received|paid)?", r"tendered", r"amount\s*tendered", r"payment\s*received",
               r"payment", r"pay", r"credit\s*card", r"credit", r"debit\s*card", r"card", r"visa", r"master\s*card",
               r"amex", r"e-?wallet"],
        "NL": [r"contant", r"ontvangen", r"pin", r"pinbetaling"], "FR": [r"esp[èe]ces", r"montant\s*re[çc]u", r"carte"],
        "DE": [r"bar\s*gegeben", r"gegeben", r"barzahlung", r"karte", r"ec-?karte"],
        "MS": [r"tunai", r"wang\s*diterima", r"kad\s*kredit"],
    },
    "change": {  # money handed back
        "EN": [r"change\s*(?:due|given)?", r"balance\s*(?:returned|change)"], "NL": [r"wisselgeld", r"terug"],
        "FR": [r"rendu", r"monnaie\s*rendue"], "DE": [r"r[üu]ckgeld", r"zur[üu]ck"], "MS": [r"baki", r"wang\s*baki", r"kembalian"],
    },
    "discount": {
        "EN": [r"discount", r"disc\.?", r"less", r"voucher", r"coupon", r"promo\w*"], "NL": [r"korting"],
        "FR": [r"remise", r"r[ée]duction", r"rabais"], "DE": [r"rabatt", r"nachlass"], "MS": [r"diskaun", r"potongan"],
    },
    "void": {  # a cancelled line or receipt: its amounts are not the amount to pay
        "EN": [r"void(?:ed)?", r"cancel+ed", r"cancel+ation", r"refund\w*"], "NL": [r"geannuleerd", r"storno"],
        "FR": [r"annul[ée]e?s?", r"annulation"], "DE": [r"storn\w*", r"storniert"], "MS": [r"batal", r"dibatalkan"],
    },
    "line_items_header": {
        "EN": [r"description", r"item", r"qty", r"quantity", r"unit\s*price", r"price", r"amount"],
        "NL": [r"omschrijving", r"aantal", r"prijs", r"bedrag"],
        "FR": [r"d[ée]signation", r"quantit[ée]", r"prix", r"montant"],
        "DE": [r"beschreibung", r"bezeichnung", r"menge", r"preis", r"betrag"],
        "MS": [r"perkara", r"kuantiti", r"harga", r"amaun"],
    },
}
"""Labels per field and language, strongest first. Add a language by adding its lists here."""

COMPANY_SUFFIXES = re.compile(
    r"\b(sdn\.?\s*bhd\.?|bhd\.?|s/b|enterprise|trading|restaurant|restoran|store|stores|mart|hardware|"
    r"b\.v\.?|n\.v\.?|gmbh|ag|sarl|sas|s\.a\.?|ltd\.?|limited|inc\.?|llc|plc|co\.|company|corporation|"
    r"pte\.?\s*ltd\.?|stationery|bakery|cafe|kitchen|shop|supermarket|pharmacy|electrical|machinery)\b",
    re.IGNORECASE,
)
"""Words that end a company name (its legal form or trade)."""

REGISTRATION = re.compile(
    r"(co\.?\s*-?\s*re?[gf]|\bco\.?\s*no\b|\broc\b|company\s*(?:reg|no)|\bbr\s*no|reg\.?\s*no|\bgst\b|\bsst\b|tax\s*id|"
    r"^\(?[a-z]{0,3}\s*\d{4,}[\s\-]*[a-z]?\s*\)?\.?$)",
    re.IGNORECASE,
)
"""A company registration line printed under the name (e.g. '(CO.REG : 933109-X)', '(JM0517726)')."""

ADDRESS_STOP = re.compile(
    r"\b(tel|telephone|phone|fax|h/p|hp|email|e-mail|www|http|care\s*line|hot\s*line|gst|sst|vat|btw|tva|ust|kvk|iban|siret|invoice|"
    r"receipt|cash\s*bill|tax\b|taxinvoice|inv[o0][il1]ce|guest\s*check|shopping\s*hours|opening\s*hours|"
    r"date|cashier|document|doc\s*no|bill\s*no|order|table)|@|(?:\d{2,4}-\d{3,4}\s?\d{3,4})",
    re.IGNORECASE,
)
"""A line that ends the address block (phone, e-mail, tax number, the receipt's own header)."""

ADDRESS_WORDS = re.compile(
    r"\b(no\.?|lot|jalan|jln|jl|taman|road|rd|street|st\.|avenue|ave|lorong|persiaran|bandar|kampung|"
    r"selangor|johor|kuala|lumpur|straat|weg|laan|rue|avenue|strasse|straße|platz)\b|\b\d{4,5}\b|"
    r"^\s*\d{1,4}[A-Za-z]?\s*,",
    re.IGNORECASE,
)


def _compile(field_name: str) -> list[tuple[int, re.Pattern[str]]]:
    """(strength rank, pattern) for every label of a field, all languages; lower rank is stronger."""
    out = []
    for labels in LABELS[field_name].values():
        n = len(labels)
        for i, label in enumerate(labels):
            # rank by position within its language list, scaled so every language's first label is strongest
            out.append((round(10 * i / max(1, n - 1)) if n > 1 else 0, re.compile(rf"(?<![a-z]){label}(?![a-z])", re.I)))
    return out


PATTERNS = {name: _compile(name) for name in LABELS}

FIELD_ALIASES: dict[str, tuple[str, ...]] = {
    "vendor_name": ("vendor_name", "merchant_name", "company", "merchant", "vendor", "seller", "issuer",
                    "store_name", "shop_name", "supplier"),
    "vendor_address": ("vendor_address", "merchant_address", "address", "store_address", "seller_address"),
    "vendor_tax_id": ("vendor_tax_id", "tax_id", "vat_number", "gst_id", "vat"),
    "buyer_name": ("buyer_name", "customer_name", "customer", "bill_to", "buyer"),
    "invoice_number": ("invoice_number", "invoice_no", "number", "receipt_number", "document_number"),
    "date": ("invoice_date", "date", "receipt_date", "issue_date", "purchase_date"),
    "due_date": ("due_date", "payment_due"),
    "time": ("time", "receipt_time", "purchase_time"),
    "currency": ("currency", "currency_code"),
    "subtotal": ("subtotal", "sub_total", "net_amount", "amount_untaxed"),
    "tax": ("tax_total", "tax", "tax_amount", "vat_amount", "gst_amount"),
    "total": ("total", "total_amount", "amount", "amount_due", "grand_total"),
    "payment_method": ("payment_method", "payment", "payment_type"),
    "line_items": ("line_items", "items", "lines", "products"),
}
"""Rule key -> schema field names it answers (first match wins)."""


# --- 2. page model -----------------------------------------------------------------------------------------
def build_page(lines: Sequence[Line], index: int, width_px: float, height_px: float) -> PageText:
    """Sort lines top to bottom and group those on one printed row (`docvlm.rows`, the shared rule), with the
    page's slope (`estimate_skew`) taken out, so a label and an amount far to its right on a tilted photo stay
    on one row, and lines that share their width are never stacked into one row."""
    boxes = [ln.bbox_page_px for ln in lines]
    skew = estimate_skew(boxes)
    ordered = group_rows(boxes, skew=skew)
    flat = [j for row in ordered for j in row]
    remap = {old: new for new, old in enumerate(flat)}
    return PageText(
        index=index,
        lines=tuple(lines[j] for j in flat),
        rows=tuple(tuple(remap[j] for j in row) for row in ordered),
        width_px=width_px,
        height_px=height_px,
        skew=skew,
    )


def span_box(line: Line, start: int, end: int) -> Box:
    """Box of the characters [start, end) of a line: the union of the words they touch."""
    words = [(w.text, w.bbox_page_px) for w in line.words] or split_line_into_words(line.text, line.bbox_page_px)
    pos, hit = 0, []
    for text, box in words:
        at = line.text.find(text, pos)
        if at < 0:
            return line.bbox_page_px  # words do not spell the line: fall back to the whole line
        if at < end and start < at + len(text):
            hit.append(box)
        pos = at + len(text)
    return union_box(hit) if hit else line.bbox_page_px


def _found(page: PageText, i: int, start: int, end: int, value: object, *, note: str | None = None,
           currency: str | None = None, score: float = 0.0) -> Found:
    line = page.lines[i]
    return Found(value, line.text[start:end].strip(), page.index, span_box(line, start, end), note, currency, score)


# --- 3. label -> value by position ---------------------------------------------------------------------
def find_labels(page: PageText, field_name: str) -> list[tuple[int, int, int, int]]:
    """(line index, label start, label end, rank) of every label of a field, strongest rank first per line."""
    hits = []
    for i, line in enumerate(page.lines):
        best = None
        for rank, pattern in PATTERNS[field_name]:
            m = pattern.search(line.text)
            if m and (best is None or rank < best[3] or rank == best[3] and m.end() - m.start() > best[2] - best[1]):
                best = (i, m.start(), m.end(), rank)
        if best:
            hits.append(best)
    return hits


def value_candidates(page: PageText, i: int, label_end: int) -> list[tuple[int, int]]:
    """Where a label's value may stand: (line index, start offset), in order of preference.

    The rest of the label's own line, then the lines to its right on the same row, then the row below
    (the lines that overlap the label horizontally or lie to its right).
    """
    out = [(i, label_end)]
    row = page.rows[page.row_of(i)]
    x1 = page.lines[i].bbox_page_px[2]
    out += [(j, 0) for j in row if page.lines[j].bbox_page_px[0] >= x1 - 2 and j != i]
    r = page.row_of(i)
    if page.lines[i].text[label_end:].strip(" :#.-=()"):
        return out  # text follows the label on its own line: that is its value, or there is none
    if r + 1 < len(page.rows):
        x0, lx1 = page.lines[i].bbox_page_px[0], page.lines[i].bbox_page_px[2]
        below = [j for j in page.rows[r + 1] if page.lines[j].bbox_page_px[2] > x0]
        under = [j for j in below if page.lines[j].bbox_page_px[0] < lx1]
        if any(page.lines[j].text.rstrip().endswith(":") for j in under):
            return out  # a column of labels: the line under this label is the next label, not its value
        out += [(j, 0) for j in below]
    # column layouts: the nearest line under the label that shares its x-range, whatever the rows between
    lb = page.lines[i].bbox_page_px
    h = lb[3] - lb[1]
    under_col = [j for j in range(len(page.lines)) if j != i
                 and page.lines[j].bbox_page_px[1] >= lb[3] - 0.25 * h
                 and page.lines[j].bbox_page_px[1] - lb[3] <= 1.5 * h
                 and min(page.lines[j].bbox_page_px[2], lb[2]) - max(page.lines[j].bbox_page_px[0], lb[0]) > 0]
    if under_col:
        nearest = min(under_col, key=lambda k: page.lines[k].bbox_page_px[1])
        if (nearest, 0) not in out:
            out.append((nearest, 0))
    return out


def _label_note(page: PageText, i: int, j: int, label: str) -> str:
    """'label 'Date' on row 7, value to its right' -- how a labelled value was paired, for the field's note."""
    ri, rj = page.row_of(i), page.row_of(j)
    where = "on its line" if i == j else "to its right" if ri == rj else f"below it (row {rj + 1})"
    return f"label {label!r} on row {ri + 1}{'' if page.index == 0 else f' of page {page.index + 1}'}, value {where}"


def _after_separator(text: str, start: int) -> int:
    m = re.match(r"[\s:#.\-=]*(?:\((?:rm|\$|€|eur|usd|myr)\)\s*[:=]?)?[\s:#\-=]*", text[start:], re.IGNORECASE)
    return start + (m.end() if m else 0)


# --- 4. fields -----------------------------------------------------------------------------------------
def all_lines_text(pages: Sequence[PageText]) -> str:
    return "\n".join(line.text for p in pages for line in p.lines)


def find_date(pages: Sequence[PageText], label_field: str, *, day_first: bool, require_label: bool = False) -> Found | None:
    """A date next to one of the field's labels; else (unless `require_label`) the first date of the document."""
    best: Found | None = None
    for page in pages:
        for i, start, end, rank in find_labels(page, label_field):
            if label_field == "invoice_date" and PATTERNS_DUE_OR_OTHER.search(page.lines[i].text):
                continue
            for j, at in value_candidates(page, i, end):
                dates = [d for d in find_dates(page.lines[j].text) if d.start >= at]
                if dates:
                    d = dates[0]
                    value = resolve_date(d, day_first=day_first)
                    cand = _found(page, j, d.start, d.end, value, note=_label_note(page, i, j, page.lines[i].text[start:end]),
                                  score=10 - rank)
                    if best is None or cand.score > best.score:
                        best = cand
                    break
    if best is not None or require_label:
        return best
    unlabelled = [(page, j, d) for page in pages for j, line in enumerate(page.lines)
                  if not PATTERNS_DUE_OR_OTHER.search(line.text) and not _has_label(page, j, "due_date")
                  for d in find_dates(line.text)[:1]]
    # a date printed with a time of day is the transaction's date; else the first date of the document
    with_time = [u for u in unlabelled if parse_time(u[0].lines[u[1]].text[u[2].end:])]
    for page, j, d in with_time[:1] or unlabelled[:1]:
        return _found(page, j, d.start, d.end, resolve_date(d, day_first=day_first),
                      note="first date on the document (no date label)")
    return None


PATTERNS_DUE_OR_OTHER = re.compile(
    r"\b(due|vervaldatum|[ée]ch[ée]ance|f[äa]llig|order\s*date|delivery|lever|livraison|period|geboorte|"
    r"printed|expiry|valid|limite|paiement|betaal|zahlbar)\b", re.IGNORECASE
)


def _amount_in(text: str, start: int, *, decimal_comma: bool | None) -> AmountMatch | None:
    """The first money-looking amount at or after `start` (prefers amounts with decimals; skips dates, times)."""
    tail = text[start:]
    masked = tail
    for d in find_dates(tail):
        masked = masked[: d.start] + " " * (d.end - d.start) + masked[d.end:]
    masked = re.sub(r"\d{1,2}:\d{2}(?::\d{2})?", lambda m: " " * len(m.group(0)), masked)
    masked = re.sub(r"\d+\s?%", lambda m: " " * len(m.group(0)), masked)
    amounts = [a for a in find_amounts(masked, decimal_comma=decimal_comma)]
    # an amount is money-looking when it has cents or a currency mark ("Rs 1939", "€ 50")
    with_dec = [a for a in amounts if a.has_decimals or a.currency and not re.match(r"\s\d", masked[a.end:])]
    pick = with_dec[0] if with_dec else None
    if pick is None:
        # the decimal point lost by OCR: "10 00" alone at the end of a value is 10.00
        m = re.search(r"(?<![\d.,-])(\d{1,6})[ -](\d{2})\s*$", masked)
        if m:
            fixed = f"{m.group(1)}.{m.group(2)}"
            return AmountMatch(m.group(0).strip(), m.start() + start, m.end() + start, Decimal(fixed), None, True,
                               f"read {m.group(0).strip()!r} as {fixed!r} (decimal point not read)", fixed)
        return None
    return replace(pick, start=pick.start + start, end=pick.end + start)


def find_amount_for(page: PageText, i: int, label_end: int, *, decimal_comma: bool | None) -> tuple[int, AmountMatch] | None:
    for j, at in value_candidates(page, i, label_end):
        at = _after_separator(page.lines[j].text, at) if j == i else at
        a = _amount_in(page.lines[j].text, at, decimal_comma=decimal_comma)
        if a is not None:
            return j, a
    return None


def _money(page: PageText, j: int, a: AmountMatch, note: str, score: float) -> Found:
    raw_start, raw_end = a.start, a.end
    text = page.lines[j].text
    fixed = a.repaired_raw if a.repair else text[a.start:a.end]
    # keep a currency mark printed as one token with the number ("$8.20", "RM41.45"): that is what is printed;
    # a code set apart by a space ("RM 3.90") is a column mark, not part of the amount
    m = re.match(r"(?:RM|EUR|USD|MYR|GBP|INR|PLN|CHF|Rs\.?)\s+", text[raw_start:raw_end], re.IGNORECASE)
    if m:
        raw_start += m.end()
    trailing = re.search(r"\s*(?:€|EUR|USD|MYR|GBP|INR|PLN|CHF|zł|RM)?\s*$", text[raw_start:raw_end], re.IGNORECASE)
    raw_end = raw_start + (trailing.start() if trailing else raw_end - raw_start)
    printed = fixed[raw_start - a.start:raw_end - a.start].strip() if a.repair else None
    if a.repair:
        note = f"{note}; {a.repair}" if note else a.repair
    return Found(a.value, text[raw_start:raw_end].strip(), page.index, span_box(page.lines[j], raw_start, raw_end),
                 note, a.currency, score, printed=printed)


def find_labelled_amounts(pages: Sequence[PageText], label_field: str, *, exclude: str | None,
                          decimal_comma: bool | None) -> list[Found]:
    """Every amount next to a label of `label_field` (not on lines matching `exclude` labels), scored by strength."""
    out = []
    for page in pages:
        excluded = {i for i, *_ in find_labels(page, exclude)} if exclude else set()
        for i, start, end, rank in find_labels(page, label_field):
            if i in excluded and not _stronger_than_exclusion(page.lines[i].text, label_field, exclude):
                continue
            hit = find_amount_for(page, i, end, decimal_comma=decimal_comma)
            if hit is None:
                continue
            j, a = hit
            label = page.lines[i].text[start:end]
            out.append(_money(page, j, a, _label_note(page, i, j, label), 10 - rank + page.index * 0.01 + i * 1e-4))
    return out


def _stronger_than_exclusion(text: str, label_field: str, exclude: str | None) -> bool:
    """'Total (incl GST)' matches both 'total' and the 'tax' exclusion: the longer label wins."""
    if exclude is None:
        return True
    best_in = max((m.end() - m.start() for _, p in PATTERNS[label_field] for m in [p.search(text)] if m), default=0)
    best_out = max((m.end() - m.start() for _, p in PATTERNS[exclude] for m in [p.search(text)] if m), default=0)
    return best_in > best_out


TAX_RATE = re.compile(r"(?<![\d.,])(\d{1,2}(?:[.,]\d{1,2})?)\s?%")
"""A tax rate printed on a tax line ('GST 6%', 'BTW 21 %', 'MwSt 7,0%')."""
TAX_EXEMPT = re.compile(r"\b(exempt\w*|zero[\s-]*rated|tax[\s-]*free|non[\s-]*taxable|vrijgesteld|exon[ée]r\w*|"
                        r"steuerfrei)\b", re.IGNORECASE)
"""A tax line that says no tax is due."""
NOT_TAX_LINE = re.compile(r"\b(incl\w*|inkl\w*|ttc|termasuk|reg\w*\s*(?:no|id)|id\s*no|summary|no\.?\s*:)", re.IGNORECASE)
"""A line that names a tax but whose amount is not the tax: a total 'incl. GST', a tax registration number."""


def find_tax_lines(pages: Sequence[PageText], *, decimal_comma: bool | None) -> list[TaxLine]:
    """Every printed tax line: the amount next to a tax label, its rate, exempt or not (see evidence.settle_tax)."""
    out: list[TaxLine] = []
    for page in pages:
        excluded = {i for i, *_ in find_labels(page, "subtotal")}
        for i, start, end, rank in find_labels(page, "tax"):
            text = page.lines[i].text
            if i in excluded and not _stronger_than_exclusion(text, "tax", "subtotal"):
                continue
            if NOT_TAX_LINE.search(text) or find_labels_in(page, i, "total_strong"):
                continue
            rate_m = TAX_RATE.search(text)
            rate = Decimal(rate_m.group(1).replace(",", ".")) if rate_m else None
            exempt = bool(TAX_EXEMPT.search(text)) or rate == 0
            hit = find_amount_for(page, i, end, decimal_comma=decimal_comma)
            label = _label_note(page, i, i, text[start:end])
            if hit is None:
                if exempt:
                    zero = _found(page, i, start, end, Decimal("0.00"), note=f"{label}; exempt, no amount printed",
                                  score=10 - rank)
                    out.append(TaxLine(zero, rate, True))
                continue
            j, a = hit
            out.append(TaxLine(_money(page, j, a, _label_note(page, i, j, text[start:end]), 10 - rank + i * 1e-4),
                               rate, exempt))
    return out


TOTAL_STRENGTH = {"total_strong": 3, "total": 2, "total_weak": 1}
"""Label strength of an amount offered as the total: strong (payable, due, incl. tax, paid), plain, weak."""


@dataclass(frozen=True)
class RoleAmount:
    """An amount next to a label, with the part it plays in the receipt's arithmetic."""

    found: Found
    role: str  # total, cash, change, rounding, tax, discount
    strength: int  # TOTAL_STRENGTH of its label (totals only)
    label: str
    row: int
    void: bool = False
    line_text: str = ""


def label_role(text: str) -> tuple[str, int, re.Match[str]] | None:
    """What a line's label says its amount is: (role, strength, label match), strongest reading first."""
    def first(field_name: str) -> re.Match[str] | None:
        hits = [m for _, p in PATTERNS[field_name] for m in [p.search(text)] if m]
        return max(hits, key=lambda m: (m.end() - m.start(), -m.start())) if hits else None

    for role, field_name in (("change", "change"),):
        m = first(field_name)
        if m and not first("total_strong"):
            return role, 0, m
    strong, weak = first("total_strong"), first("total_weak")
    if weak and (not strong or weak.end() - weak.start() >= strong.end() - strong.start()
                 and not re.search(r"incl|ttc|inkl|termasuk", strong.group(0), re.I)):
        return "total", TOTAL_STRENGTH["total_weak"], weak
    if strong:
        return "total", TOTAL_STRENGTH["total_strong"], strong
    for role in ("cash", "rounding", "discount"):
        m = first(role)
        if m:
            return role, 0, m
    plain = first("total")
    if plain and not first("not_total"):
        return "total", TOTAL_STRENGTH["total"], plain
    m = first("tax")
    if m:
        return "tax", 0, m
    return None


def collect_role_amounts(pages: Sequence[PageText], *, decimal_comma: bool | None) -> list[RoleAmount]:
    """Every labelled amount of the totals block, paired by printed row (see `find_amount_for`)."""
    out = []
    for page in pages:
        void_rows = {page.row_of(i) for i, *_ in find_labels(page, "void")}
        for i, line in enumerate(page.lines):
            got = label_role(line.text)
            at, start = i, 0  # the line whose text the label ends in, and where that text starts in the join
            nxt = _label_continuation(page, i)
            if nxt is not None:
                # a label split by OCR into two boxes ('Total' | 'Payable:'): read it whole when that says more
                joined = label_role(f"{line.text} {page.lines[nxt].text}")
                if joined is not None and joined[2].end() > len(line.text) + 1 and (
                        got is None or joined[1] > got[1] or joined[0] != got[0]):
                    got, at, start = joined, nxt, len(line.text) + 1
            if got is None:
                continue
            role, strength, m = got
            hit = find_amount_for(page, at, m.end() - start, decimal_comma=decimal_comma)
            if hit is None:
                continue
            j, a = hit
            r = page.row_of(i)
            found = _money(page, j, a, "", 0.0)
            out.append(RoleAmount(found, role, strength, m.group(0), r, r in void_rows or r - 1 in void_rows,
                                  line.text))
    return out


def _label_continuation(page: PageText, i: int) -> int | None:
    """The box right after line i on its row, close enough to continue its words and holding no amount."""
    row = page.rows[page.row_of(i)]
    k = row.index(i)
    if k + 1 >= len(row):
        return None
    a, b = page.lines[i].bbox_page_px, page.lines[row[k + 1]].bbox_page_px
    text = page.lines[row[k + 1]].text
    if b[0] - a[2] > 2.0 * (a[3] - a[1]) or re.search(r"\d", text):
        return None
    return row[k + 1]


def find_total(pages: Sequence[PageText], *, decimal_comma: bool | None, subtotal: Found | None = None,
               tax: Found | None = None, items_sum: Decimal | None = None,
               item_amounts: Sequence[Decimal] = ()) -> tuple[Found | None, list[tuple[str, str]]]:
    """The amount to pay, chosen by evidence: label strength, then arithmetic votes.

    Every amount offered as a total scores 2 x its label strength (strong 3, plain 2, weak 1) and gets votes
    from the receipt's own arithmetic: cash - change, subtotal + tax - discount + rounding, a labelled total
    plus a rounding adjustment (this one also lends the base total's label strength), the sum of the line
    items. A voided row loses. The note of the chosen total lists its label, row and votes, and the runner-up.
    When only a weak total (a subtotal) exists it is returned `unverified`, with a warning.
    """
    notes: list[tuple[str, str]] = []
    roles = collect_role_amounts(pages, decimal_comma=decimal_comma)
    roles = [r for r in roles if r.found.value is not None]
    by = {k: [r for r in roles if r.role == k and not r.void] for k in ("total", "cash", "change", "rounding", "tax",
                                                                         "discount")}
    # "amount paid" is the total on some receipts and the money handed over on others: it votes as cash too
    by["cash"] += [r for r in by["total"] if re.search(r"paid", r.label, re.I)]
    rounding = [r.found.value for r in by["rounding"] if abs(r.found.value) < 1]  # type: ignore[arg-type]
    weak = [r for r in by["total"] if r.strength == TOTAL_STRENGTH["total_weak"]]
    taxes = [r.found.value for r in by["tax"]] + ([tax.value] if tax is not None else [])
    discounts = [abs(r.found.value) for r in by["discount"]]  # type: ignore[arg-type]
    cands: dict[Decimal, dict] = {}

    def cand(value: Decimal, found: Found, strength: int, why: str, role: RoleAmount | None) -> dict:
        c = cands.setdefault(value, {"found": found, "strength": -1, "label": None, "votes": [], "void": False,
                                     "roles": []})
        if role is not None:
            c["roles"].append(role)
        if strength > c["strength"]:
            c.update(found=found, strength=strength, label=why)
        return c

    for r in by["total"]:
        if r.found.value >= 0:  # type: ignore[operator]
            cand(r.found.value, r.found, r.strength, f"label {r.label!r} on row {r.row + 1}", r)  # type: ignore[arg-type]
    for r in roles:
        if r.void and r.role == "total" and r.found.value in cands:
            cands[r.found.value]["void"] = True
    # arithmetic: which printed amounts do the receipt's own sums explain?
    printed = _printed_amounts(pages, decimal_comma=decimal_comma)
    sums: list[tuple[Decimal, str, int]] = []  # (value, how, lent strength)
    for c_ in by["cash"]:
        for ch in by["change"]:
            sums.append((c_.found.value - ch.found.value, f"cash {c_.found.raw} - change {ch.found.raw}", 0))  # type: ignore[operator]
    for base in by["total"]:
        for adj in rounding:
            if adj:
                # receipts print the adjustment with either sign convention; only a printed result counts
                lent = base.strength + 1 if base.strength != TOTAL_STRENGTH["total_weak"] else 2
                sums.append((base.found.value + adj, f"{base.label!r} {base.found.raw} + rounding {adj}", lent))  # type: ignore[operator]
                flipped = base.found.value - adj  # type: ignore[operator]
                if (flipped * 100) % 5 == 0 and (base.found.value * 100) % 5 != 0:  # type: ignore[operator]
                    # the other sign only when it rounds to the 0.05 that cash rounding aims at
                    sums.append((flipped, f"{base.label!r} {base.found.raw} - rounding {adj}", lent))
    for sub in [r.found for r in weak] + ([subtotal] if subtotal is not None else []):
        for t in taxes or [Decimal(0)]:
            for d in [Decimal(0), *discounts]:
                for adj in [Decimal(0), *rounding]:
                    if not (t or d or adj):
                        continue
                    how = f"subtotal {sub.raw}" + (f" + tax {t}" if t else "") + (f" - discount {d}" if d else "") \
                        + (f" + rounding {adj}" if adj else "")
                    sums.append((sub.value + t - d + adj, how, 0))  # type: ignore[operator]
    if items_sum is not None and items_sum > 0:
        sums.append((items_sum, f"sum of the line items {items_sum}", 0))
    seen_votes: set[tuple[Decimal, str]] = set()
    for value, how, lent in sums:
        if value <= 0 or (value, how) in seen_votes:
            continue
        seen_votes.add((value, how))
        if value in cands:
            c = cands[value]
        elif value in printed and (lent or not how.startswith("sum of")):
            c = cand(value, printed[value], 0, "printed amount (no total label read)", None)
        else:
            continue
        c["votes"].append(how)
        if lent > c["strength"]:
            c["strength"] = lent
            c["label"] = (c["label"] or "") + f"; takes the label of {how.split(' + ')[0]}"
    for c_ in by["cash"]:
        if c_.role == "cash" and c_.found.value in cands and not by["change"]:
            cands[c_.found.value]["votes"].append(f"cash paid {c_.found.raw} (no change)")
    if not cands:
        guess = _unlabelled_total(pages, subtotal, tax, decimal_comma=decimal_comma)
        if guess is not None:
            guess = replace(guess, score=0.0, status="inferred")
            return guess, [("no_total_label", f"no amount next to a 'total' label; took {guess.raw} ({guess.note})")]
        return None, [("missing_total", "no amount next to a 'total' label")]

    two_decimals = any(re.search(r"[.,]\d{2}$", c["found"].raw) for c in cands.values())
    largest_item = max(item_amounts, default=Decimal(0))
    for c in cands.values():
        if two_decimals and re.search(r"(?<![.,\d])\d+[.,]\d$", c["found"].raw):
            c["doubt"] = "one decimal where the page prints two (a misread amount)"
        elif c["strength"] > 0 and largest_item and c["found"].value < largest_item and re.search(
                r"gst|tax|vat|sst|btw|tva|mwst|cukai", " ".join(r.line_text for r in c["roles"]), re.I):
            c["doubt"] = f"names a tax and is smaller than a line item ({largest_item}): the tax, not the total"

    def score(c: dict) -> int:
        return 2 * c["strength"] + 2 * sum(not v.startswith(("sum of", "cash paid")) for v in c["votes"]) \
            + sum(v.startswith(("sum of", "cash paid")) for v in c["votes"]) - (10 if c["void"] else 0) \
            - (5 if c.get("doubt") else 0)

    ranked = sorted(cands.items(), key=lambda kv: (score(kv[1]), len(kv[1]["votes"]), kv[0]), reverse=True)
    value, best = ranked[0]
    top = score(best)
    ties = [(v, c) for v, c in ranked[1:] if score(c) == top and len(c["votes"]) == len(best["votes"]) and v != value]
    runner = ranked[1] if len(ranked) > 1 else None
    note = f"{best['label']}" + (f"; votes: {'; '.join(best['votes'])}" if best["votes"] else "; no arithmetic vote")
    if best["found"].note:
        note += f"; {best['found'].note}"
    if best["void"]:
        note += "; on a voided row"
    if best.get("doubt"):
        note += f"; doubtful: {best['doubt']}"
    if runner is not None:
        note += f"; beat {runner[1]['found'].raw} ({runner[1]['label']}, score {score(runner[1])} vs {top})"
    if ties:
        notes.append(("two_totals", "different amounts under equally strong total evidence: "
                      + ", ".join([best["found"].raw] + [c["found"].raw for _, c in ties])
                      + f"; took {best['found'].raw} (the largest)"))
    else:
        rivals = [c for v, c in ranked[1:] if c["strength"] >= best["strength"] and not c["void"]
                  and any(r.role == "total" for r in c["roles"])]
        if rivals:
            notes.append(("two_totals", "different amounts under equally strong total labels: "
                          + ", ".join([best["found"].raw] + [c["found"].raw for c in rivals])
                          + f"; took {best['found'].raw} by its votes ({'; '.join(best['votes']) or 'none'})"))
    if any(r.void for r in roles if r.role == "total"):
        voided = sorted({r.found.raw for r in roles if r.role == "total" and r.void})
        notes.append(("voided_total", f"a voided total was skipped: {', '.join(voided)}"))
    f = best["found"]
    for vote in best["votes"]:
        kind = "repeat" if vote.startswith("cash paid") else "arithmetic"
        f = f.with_evidence(Evidence(kind, vote))
    if best["strength"] > 0 and best["label"]:
        f = f.with_evidence(Evidence("label", str(best["label"])))
    if best["void"]:
        f = f.with_evidence(Evidence("doubt", "on a voided row"))
    if best.get("doubt"):
        f = f.with_evidence(Evidence("doubt", best["doubt"]))
    if ties:
        f = f.with_evidence(Evidence("doubt", "another amount has equally strong total evidence"))
    status = None
    if best["strength"] == TOTAL_STRENGTH["total_weak"] and not any(
            c["strength"] > TOTAL_STRENGTH["total_weak"] for c in cands.values()):
        nonzero_tax = [t for t in taxes if t]
        if nonzero_tax and not [v for v in best["votes"] if not v.startswith("sum of")]:
            sub = f.value + nonzero_tax[0]  # type: ignore[operator]
            return None, [("missing_total", f"no total label was read; the subtotal {f.raw} plus tax "
                           f"{nonzero_tax[0]} = {sub} is not printed, so no total is given")]
        status = "inferred"
        f = f.with_evidence(Evidence("doubt", "only a subtotal was read, offered as the total"))
        notes.append(("only_subtotal", f"no total label was read, only a subtotal ({f.raw}): it is returned as the "
                      "total, inferred"))
    return replace(f, note=note, score=float(top), status=status), notes


def _printed_amounts(pages: Sequence[PageText], *, decimal_comma: bool | None) -> dict[Decimal, Found]:
    """Every amount with cents printed on the pages (the lowest printing of each value)."""
    out: dict[Decimal, Found] = {}
    for page in pages:
        for j, line in enumerate(page.lines):
            for a in find_amounts(line.text, decimal_comma=decimal_comma):
                if a.has_decimals and a.value > 0:
                    out[a.value] = _money(page, j, a, "", 0.0)
    return out


def _unlabelled_total(pages: Sequence[PageText], subtotal: Found | None, tax: Found | None, *,
                      decimal_comma: bool | None) -> Found | None:
    """No readable total label: subtotal + tax when printed, else the amount printed most often (receipts print
    the payable amount as total and again as the cash paid), at least twice."""
    printed: dict[Decimal, list[Found]] = {}
    for page in pages:
        for j, line in enumerate(page.lines):
            a = _amount_in(line.text, 0, decimal_comma=decimal_comma)
            if a is not None and a.value > 0:
                printed.setdefault(a.value, []).append(_money(page, j, a, "", 0.0))
    if subtotal is not None and tax is not None:
        value = subtotal.value + tax.value  # type: ignore[operator]
        if value in printed:
            f = printed[value][0]
            return Found(f.value, f.raw, f.page, f.bbox_page_px, "no total label: subtotal + tax", f.currency)
    if not printed:
        return None
    # printed on at least two rows (a unit price and its line amount share one row; a total and the cash paid
    # do not)
    def rows_of(hits: list[Found]) -> int:
        return len({(h.page, round(h.bbox_page_px[1] / max(1.0, h.bbox_page_px[3] - h.bbox_page_px[1]))) for h in hits})

    value, hits = max(printed.items(), key=lambda kv: (rows_of(kv[1]), kv[0]))
    if rows_of(hits) < 2:
        return None
    # the amount to pay is the largest amount printed, bar the cash handed over and the change
    paid_rows = {(p.index, p.row_of(i)) for p in pages for i, *_ in find_labels(p, "not_total")}
    others = [v for v, fs in printed.items()
              if any((f.page, _row_at(pages, f)) not in paid_rows for f in fs)]
    if others and value < max(others):
        return None
    f = hits[0]
    return Found(f.value, f.raw, f.page, f.bbox_page_px, f"no total label: printed {len(hits)} times", f.currency)


def _row_at(pages: Sequence[PageText], found: Found) -> int:
    """Row index of the line whose box holds `found` (its page's row nearest to the box's vertical centre)."""
    page = next(p for p in pages if p.index == found.page)
    cy = (found.bbox_page_px[1] + found.bbox_page_px[3]) / 2
    return min(range(len(page.rows)), key=lambda r: abs((row_box(page, r)[1] + row_box(page, r)[3]) / 2 - cy))


HEADER_WORDS = re.compile(
    r"^\W*(tax\s*invoice|invoice|receipt|facture|factuur|rechnung|credit\s*note|cash\s*bill|official\s*receipt|"
    r"quittung|kwitantie|re[çc]u|resit|bon)\W*$", re.IGNORECASE)
"""A document-type heading printed on the same row as the merchant name (e.g. 'INVOICE' at the right)."""


def _row_cluster(page: PageText, r: int) -> list[int]:
    """The lines of a row that belong together: split where the gap exceeds three line heights, headings dropped,
    and the first group kept (the merchant block is left-aligned or centred; a heading sits apart)."""
    row = [j for j in page.rows[r] if not HEADER_WORDS.match(page.lines[j].text)] or list(page.rows[r])
    groups = [[row[0]]]
    for j in row[1:]:
        prev = page.lines[groups[-1][-1]].bbox_page_px
        cur = page.lines[j].bbox_page_px
        if cur[0] - prev[2] > 3 * max(prev[3] - prev[1], cur[3] - cur[1]):
            groups.append([j])
        else:
            groups[-1].append(j)
    return groups[0]


WORD_GAP_SPACE = 0.4
"""A gap between two word boxes wider than this many line heights is a printed space (text spaces: median 0.3)."""


def spaced_line_text(line: Line) -> str:
    """The line's text with a space wherever two of its word boxes stand apart by more than `WORD_GAP_SPACE`
    line heights but the OCR text has none ('JALANAIR' read from the boxes 'JALAN' | 'AIR').

    The recogniser drops spaces its own word boxes keep; the gap decides, never the words. Nothing else
    changes: punctuation stays as read, and a line whose words do not spell its text is returned as is.
    """
    text, words = line.text, line.words
    height = line.bbox_page_px[3] - line.bbox_page_px[1]
    if len(words) < 2 or height <= 0:
        return text
    cuts, pos = [], 0
    for a, b in zip(words, words[1:], strict=False):
        at = text.find(a.text, pos)
        if at < 0:
            return text
        pos = at + len(a.text)
        if text[pos:pos + 1] not in ("", " ") and text.startswith(b.text, pos) \
                and b.bbox_page_px[0] - a.bbox_page_px[2] > WORD_GAP_SPACE * height \
                and not (_is_cjk(a.text[-1]) or _is_cjk(b.text[0])):
            cuts.append(pos)
    for at in reversed(cuts):
        text = text[:at] + " " + text[at:]
    return text


def _is_cjk(ch: str) -> bool:
    return "\u2e80" <= ch <= "\u9fff" or "\uac00" <= ch <= "\ud7af" or "\uff00" <= ch <= "\uffef"


def row_text(page: PageText, r: int) -> str:
    """The first group of lines of a row joined left to right (spaces where the word boxes show them), with
    full-width brackets made ASCII."""
    text = " ".join(spaced_line_text(page.lines[j]).strip() for j in _row_cluster(page, r))
    return text.replace("（", "(").replace("）", ")").replace("：", ":")


def row_box(page: PageText, r: int) -> Box:
    return union_box([page.lines[j].bbox_page_px for j in _row_cluster(page, r)])


def _row_height(page: PageText, r: int) -> float:
    b = row_box(page, r)
    return b[3] - b[1]


def _block(page: PageText, rows: list[int], note: str) -> Found:
    text = " ".join(row_text(page, r) for r in rows)
    text = re.sub(r"(?<=\s)&(?=[A-Za-z])", "& ", text)
    return Found(text, text, page.index, union_box([row_box(page, r) for r in rows]), note)


def find_company(page: PageText) -> tuple[Found | None, int]:
    """The merchant: the first name-like row(s) at the top of the first page; returns the last row used."""
    limit = min(len(page.rows), 10)
    start = None
    for r in range(limit):
        text = row_text(page, r)
        letters = sum(ch.isalpha() for ch in text)
        if letters < 3 or text == text.lower() and not COMPANY_SUFFIXES.search(text):
            continue  # handwriting / stamps OCR'd in lower case, numbers, noise
        if re.search(r"\b(tax\s*invoice|receipt|invoice|facture|factuur|rechnung|welcome|selamat|credit\s*note|cash\s*bill|"
                     r"thank\s*you|please|goods\s*sold|returnable|terima\s*kasih|dank\s*u|merci|danke)\b", text, re.I):
            continue
        if ADDRESS_STOP.search(text) or REGISTRATION.search(text) or find_dates(text) or re.search(r"\.com\b", text, re.I):
            continue
        if ADDRESS_WORDS.search(text) and re.search(r"\d", text) and not COMPANY_SUFFIXES.search(text):
            return None, r - 1  # the address comes first: the name was not read (a logo); the address is here
        start = r
        break
    if start is None:
        return None, -2
    parts = [start]
    r = start + 1
    while r < limit and len(parts) < 4:
        so_far = " ".join(row_text(page, k) for k in parts)
        text = row_text(page, r)
        if _ends_with_suffix(so_far) and not _continues(so_far, "") and not COMPANY_SUFFIXES.match(text.strip()):
            break  # a name that ends with its legal form or trade is complete (unless the next row goes on with one)
        if any(ch.isdigit() for ch in text) or ADDRESS_WORDS.search(text) or REGISTRATION.search(text) \
                or ADDRESS_STOP.search(text):
            break
        if row_box(page, r)[1] - row_box(page, parts[-1])[3] > 1.0 * _row_height(page, r):
            break
        parts.append(r)
        r += 1
    if not _ends_with_suffix(" ".join(row_text(page, k) for k in parts)):
        # a name without its legal form, followed closely by one that has it: the second is the company
        # (the first is a brand or slogan printed above it)
        nxt = parts[-1] + 1
        if nxt < limit and len(parts) == 1 and _ends_with_suffix(row_text(page, nxt)) \
                and not ADDRESS_WORDS.search(row_text(page, nxt)):
            parts = [nxt]
    if len(parts) >= 2 and LEGAL_FORMS.search(" ".join(row_text(page, k) for k in parts)):
        # a brand or slogan above a legal name: the company is the shortest tail of rows that is a full legal name
        for k in range(len(parts) - 1, 0, -1):
            tail = parts[k:]
            if _is_full_legal_name(" ".join(row_text(page, t) for t in tail)) \
                    and not _continues(row_text(page, parts[k - 1]), "") \
                    and not re.match(r"\s*(&|and\b)", row_text(page, tail[0]), re.I) \
                    and not COMPANY_SUFFIXES.match(row_text(page, tail[0]).strip()):  # 'ENTERPRISE (..) SDN BHD'
                found = _block(page, tail, "top of the first page (legal name under a brand line)")
                return _cut_after_suffix(found), parts[-1]
    if not LEGAL_FORMS.search(" ".join(row_text(page, k) for k in parts)):
        legal = _legal_name_below(page, parts[-1] + 1) or _registered_name_below(page, parts[-1] + 1)
        if legal is not None:
            return legal
    return _cut_after_suffix(_block(page, parts, f"top of the first page, rows {parts[0] + 1}-{parts[-1] + 1}")), \
        parts[-1]


def _legal_name_below(page: PageText, first: int) -> tuple[Found, int] | None:
    """A brand, outlet or slogan name on top, the registered name (ending in its legal form) a few rows below,
    before the address: the registered name is the company. Returns it and its row."""
    for r in range(first, min(len(page.rows), first + 5)):
        text = LEADING_REGISTRATION.sub("", row_text(page, r))
        if ADDRESS_START.match(text) or ADDRESS_STOP.search(text) or find_dates(text):
            return None
        cut = re.split(r"\(\s*(?:co\.?\s*)?(?:reg\w*\.?\s*)?(?:no\.?\s*)?[:.]?\s*[A-Z]{0,3}\d{4,}", text, maxsplit=1,
                       flags=re.IGNORECASE)[0].strip()
        if LEGAL_FORMS.search(cut) and _is_full_legal_name(cut) and not _continues(row_text(page, r - 1), ""):
            found = _block(page, [r], f"row {r + 1}: the registered name (legal form) under a brand line")
            return _cut_after_suffix(found), r
    return None


def _is_registration_row(text: str) -> bool:
    """A row that is only a registration number, bracketed or labelled ('(81109-A)', 'Co. Reg: 933109-X')."""
    return bool(re.fullmatch(r"\(\s*[A-Z]{0,3}[.:]?\s*\d{4,}\s?-?\s?[A-Z]?\s*\)?\W*", text.strip(), re.I)
                or re.match(r"^\W*(co\.?\s*-?\s*re?[gf]|company\s*(?:reg|no)|reg\.?\s*no|roc\b|br\s*no)", text, re.I))


def _registered_name_below(page: PageText, first: int) -> tuple[Found, int] | None:
    """The top row was not followed by its registration number, but a name row a little lower is: the name
    printed right above the registration number is the registered one (the rows above it are a logo or
    slogan the OCR read as noise). Returns it and its row."""
    if first < len(page.rows) and _is_registration_row(row_text(page, first)):
        return None  # the top name is itself the registered one
    for r in range(first, min(len(page.rows) - 1, first + 4)):
        text = row_text(page, r)
        if ADDRESS_START.match(text) or ADDRESS_STOP.search(text) or find_dates(text):
            return None
        words = re.findall(r"[A-Za-z]{2,}", text)
        if len(words) >= 2 and not any(ch.isdigit() for ch in text) and _is_registration_row(row_text(page, r + 1)):
            found = _block(page, [r], f"row {r + 1}: the name printed above its registration number")
            return found, r
    return None


LEGAL_FORMS = re.compile(
    r"\b(sdn\.?\s*bhd\.?|bhd\.?|s/b|gmbh|ag|ltd\.?|limited|inc\.?|llc|plc|b\.v\.?|n\.v\.?|sarl|sas|"
    r"s\.a\.?|pte\.?\s*ltd\.?|corporation)\W*$", re.IGNORECASE)


def _is_full_legal_name(text: str) -> bool:
    """A row that is a whole company name by itself: two or more name words, then a legal form."""
    m = LEGAL_FORMS.search(text)
    if not m:
        return False
    words = [w for w in re.findall(r"[A-Za-z][\w'&.-]*", text[: m.start()])
             if len(w.strip(".")) >= 2 and not COMPANY_SUFFIXES.search(w)]
    return len(words) >= 2


def _cut_after_suffix(found: Found) -> Found:
    """Drop a registration number (and what follows it) printed after the legal form or trade word:
    'AEON CO. (M) BHD (126926-H)' -> 'AEON CO. (M) BHD'."""
    for m in COMPANY_SUFFIXES.finditer(found.raw):
        end = m.end() + (1 if found.raw[m.end():m.end() + 1] == "." else 0)
        if re.match(r"[\s'\"`,.]*[(\[]?\s*[A-Z]{0,3}\s*\d{4,}", found.raw[end:], re.IGNORECASE):
            text = found.raw[:end].rstrip(" ,-")
            return Found(text, text, found.page, found.bbox_page_px, found.note)
    return found


def _ends_with_suffix(text: str) -> bool:
    return any(m.end() >= len(text.rstrip(" .,)")) - 1 for m in COMPANY_SUFFIXES.finditer(text))


def _continues(prev: str, cur: str) -> bool:
    """A row that leads into the next: it ends in '&', 'and' or '-', or leaves a bracket open ('(SETIA')."""
    return bool(re.search(r"(&|\band\b|-)\s*$", prev.strip(), re.I)) or prev.count("(") > prev.count(")")


def find_address(page: PageText, after: int) -> Found | None:
    """The rows under the merchant name up to the first phone / tax / header row.

    Registration numbers and a date printed before the address are skipped; after them they end it. The row
    with the postcode may be followed by one short row (a state, a mall), then the address is over.
    """
    parts: list[int] = []
    postcode_seen = False
    for r in range(after + 1, min(len(page.rows), after + 9)):
        text = row_text(page, r)
        registration = REGISTRATION.search(text) and (
            not parts and not ADDRESS_WORDS.search(text.split()[0] if text else "")
            or not ADDRESS_WORDS.search(REGISTRATION.sub("", text)) or re.search(r"\b(roc|reg)\b", text, re.I))
        dated = bool(find_dates(text)) or parse_time(text) is not None
        if registration or dated:
            if parts:
                break
            continue
        text = LEADING_REGISTRATION.sub("", text)
        if ADDRESS_STOP.search(text):
            break
        if parts and row_box(page, r)[1] - row_box(page, parts[-1])[3] > 2.0 * _row_height(page, r):
            break
        if postcode_seen and _town_then_state(page, r):
            parts += [r, r + 1]  # the town on its own row, then the state: both belong to the address
            break
        if postcode_seen and (len(text.split()) > 4 or not (
                row_text(page, parts[-1]).rstrip().endswith(",") or REGION.search(text) or BUILDING.search(text))):
            break  # after the postcode row only a state or country (or a row the postcode row leads into)
        parts.append(r)
        if postcode_seen:
            break
        postcode_seen = bool(POSTCODE.search(text))
    if not parts or not ADDRESS_WORDS.search(" ".join(row_text(page, k) for k in parts)):
        return None
    # a brand, branch or licensee row printed above the street: the address starts at the row that starts
    # like one ('NO 2A', 'LOT 6,', 'LEVEL 6,', '176 JLN ...'), when the rows before it hold no postcode
    starts = [k for k, r in enumerate(parts) if ADDRESS_START.match(row_text(page, r))]
    skipped = ""
    if starts and starts[0] > 0 and not any(POSTCODE.search(row_text(page, r)) for r in parts[:starts[0]]):
        skipped = "; skipped " + " / ".join(repr(row_text(page, r)) for r in parts[:starts[0]])
        parts = parts[starts[0]:]
    found = _block(page, parts, f"rows {parts[0] + 1}-{parts[-1] + 1} under the merchant{skipped}")
    read = LEADING_REGISTRATION.sub("", found.raw)
    text = repair_address_numbers(split_glued_address_numbers(read))
    if text == read:
        return Found(text, text, found.page, found.bbox_page_px, found.note)
    ops = SequenceMatcher(None, read, text, autojunk=False).get_opcodes()
    changed = [f"'{read[max(i0 - 2, 0):i1 + 2]}' as '{text[max(j0 - 2, 0):j1 + 2]}'" for op, i0, i1, j0, j1 in ops
               if op != "equal"]
    note = f"{found.note}; read " + ", ".join(changed[:3])
    return Found(text, read, found.page, found.bbox_page_px, note, printed=text)


def _town_then_state(page: PageText, r: int) -> bool:
    """Row r is a short name without digits (a town) right above a state or country row (under the postcode)."""
    if r + 1 >= len(page.rows):
        return False
    town, state = row_text(page, r), row_text(page, r + 1)
    return (len(town.split()) <= 3 and not any(ch.isdigit() for ch in town) and not REGION.search(town)
            and not ADDRESS_STOP.search(town) and bool(REGION.search(state)) and not ADDRESS_STOP.search(state)
            and row_box(page, r + 1)[1] - row_box(page, r)[3] <= 1.0 * _row_height(page, r + 1))


GLUED_POSTCODE = re.compile(r"(?<![\w-])(\d{5})(?=[A-Za-z]{2,}\b)")
GLUED_HOUSE_NUMBER = re.compile(r"(?<![\w./])(\d{1,4}[A-Za-z]?)(?=(?:jalan|jln|lorong|taman|tmn)\b)", re.IGNORECASE)


def split_glued_address_numbers(text: str) -> str:
    """A space the recogniser dropped inside one word box between a number and the word it precedes: a
    postcode and its town ('53300KL'), a house number and its street ('14JALAN'). Word boxes cannot show this
    gap (the box spans both); no address prints them glued. Nothing else is touched."""
    return GLUED_HOUSE_NUMBER.sub(r"\1 ", GLUED_POSTCODE.sub(r"\1 ", text))


ADDRESS_NUMBER_WITH_O = re.compile(r"(?<![\w./-])(?=[\dOo]*\d[\dOo]*\d)(?=\d*[Oo])([\dOo]{3,})(?=[,.]?(?:\s|$))")


def repair_address_numbers(text: str) -> str:
    """A house or lot number whose 0 the recogniser read as the letter O ('NO 29O,' -> 'NO 290,'): only tokens
    of at least two real digits and O's, nothing else (so 'NO', 'LOT' and '47G' stay)."""
    return ADDRESS_NUMBER_WITH_O.sub(lambda m: m.group(1).replace("O", "0").replace("o", "0"), text)


ADDRESS_START = re.compile(
    r"^\W{0,2}(?:no\b|no\.|no:|lot\b|lot\s*\d|level\b|lvl\b|unit\b|block\b|blk\b|suite\b|lorong\b|jalan\b|jln\b|"
    r"g-?\d|(?:\d{1,2}(?:st|nd|rd|th)?\s*)?(?:flr|floor)\b|ground\s*floor|"
    r"[a-z]?\d{1,4}[a-z]?(?:[-/&]\s?\d*[a-z]?)*\s*(?:,|&|\s+(?:jalan|jln|jl|lorong|taman|lot|road|rd|street|st)\b))",
    re.IGNORECASE)
"""A row that starts a street address: a house or lot number, a unit or level, or the street itself."""
POSTCODE = re.compile(r"(?<![\d-])\d{5}(?![\d-])|\b\d{4}\s?[A-Z]{2}\b|\b[A-Z]{1,2}\d[A-Z\d]?\s\d[A-Z]{2}\b")
"""A postcode: 5 digits (MY, DE, FR, US), '1016 DV' (NL), 'SW1A 1AA' (UK)."""
LEADING_REGISTRATION = re.compile(r"^\(?\s*(?:[A-Z]{0,3}[.:]?\s*)?\d{4,}-?\s?[A-Z]?\s*\)\s*", re.IGNORECASE)
REGION = re.compile(
    r"\b(selangor|johor|kedah|perak|pahang|melaka|malacca|sabah|sarawak|penang|pulau\s*pinang|negeri\s*sembilan|"
    r"terengganu|kelantan|perlis|putrajaya|labuan|kuala\s*lumpur|malaysia|singapore|darul\s*\w+|d\.\s?e\.?|wilayah\b.*|"
    r"germany|deutschland|nederland|netherlands|france|belgi[eëu]m?|united\s*kingdom|uk|usa|india|poland|polska|d\.?\s?e)\W*$"
    r"|^\(.*\)$|^\d{3,4}\s?-?\s?[a-z]",
    re.IGNORECASE)
"""A state or country printed on its own row under the postcode."""
BUILDING = re.compile(r"\b(mall|plaza|complex|centre|center|tower|square|arcade|galleria)\W*$", re.IGNORECASE)
"""A mall or building printed on its own row under the postcode (the shop's location in it)."""


def find_identifier(pages: Sequence[PageText], label_field: str) -> Found | None:
    """A code next to a label (invoice number, tax id): the first token with a digit after the label."""
    best = None
    for page in pages:
        for i, start, end, rank in find_labels(page, label_field):
            for j, at in value_candidates(page, i, end):
                at = _after_separator(page.lines[j].text, at) if j == i else at
                m = re.search(r"(?<![\w/])[A-Z0-9][A-Z0-9/\-_.]*\d[A-Z0-9/\-_.]*", page.lines[j].text[at:], re.IGNORECASE)
                if m and not find_dates(m.group(0)) and len(m.group(0)) >= 3 and not _is_amount(m.group(0)):
                    s, e = at + m.start(), at + m.end()
                    raw = page.lines[j].text[s:e].rstrip(".")
                    cand = _found(page, j, s, s + len(raw), raw, note=_label_note(page, i, j, page.lines[i].text[start:end]),
                                  score=10 - rank)
                    if best is None or cand.score > best.score:
                        best = cand
                    break
    return best


def find_buyer(pages: Sequence[PageText]) -> Found | None:
    """The customer: the text after a 'bill to' label on its line, else the line right under the label."""
    for page in pages:
        for i, _start, end, _rank in find_labels(page, "buyer_name"):
            line = page.lines[i]
            if end < len(line.text) * 0.2 + 12 and line.text[:_start].strip():
                continue  # a label word in the middle of a sentence
            at = _after_separator(line.text, end)
            if sum(ch.isalpha() for ch in line.text[at:]) >= 3:
                return _found(page, i, at, len(line.text), line.text[at:].strip(), note="text after the label")
            below = [j for j in range(i + 1, len(page.lines))
                     if page.lines[j].bbox_page_px[1] >= line.bbox_page_px[3] - 2
                     and page.lines[j].bbox_page_px[0] < line.bbox_page_px[2]
                     and page.lines[j].bbox_page_px[2] > line.bbox_page_px[0]]
            if below:
                j = min(below, key=lambda k: page.lines[k].bbox_page_px[1])
                text = page.lines[j].text
                if page.lines[j].bbox_page_px[1] - line.bbox_page_px[3] < 2 * (line.bbox_page_px[3] - line.bbox_page_px[1]):
                    return _found(page, j, 0, len(text), text.strip(), note="line under the label")
    return None


def _is_amount(token: str) -> bool:
    return bool(re.fullmatch(r"\d{1,3}(?:[.,]\d{3})*[.,]\d{2}", token))


def find_payment_method(pages: Sequence[PageText]) -> Found | None:
    for page in pages:
        for i, start, end, _rank in find_labels(page, "payment_method"):
            raw = page.lines[i].text[start:end]
            return _found(page, i, start, end, raw.upper() if len(raw) <= 4 else raw.title(), note="payment keyword")
    return None


def find_time(pages: Sequence[PageText], near: Found | None) -> Found | None:
    for page in pages:
        order = range(len(page.lines))
        if near is not None and near.page == page.index:
            order = sorted(order, key=lambda k: abs(page.lines[k].bbox_page_px[1] - near.bbox_page_px[1]))
        for i in order:
            text = page.lines[i].text
            got = parse_time(text)
            if got:
                value, raw = got
                s = text.find(raw)
                return _found(page, i, s, s + len(raw), value, note="time of day")
    return None


QTY_TIMES_PRICE = re.compile(r"(?<![\d.,])(\d{1,4})\s*[x×X*@]\s*(?:RM|\$|€|£)?\s*(\d+[.,]\d{2})(?!\d)")
"""'2 x 1.29', '3 × 0.85', '1 X 19.00': a quantity and its unit price on a receipt row."""


def find_line_items(pages: Sequence[PageText], *, decimal_comma: bool | None) -> list[FoundItem]:
    """Rows between the table start and the first total-like label: a description and an amount at the right.

    The table starts after the header row with the most header words, or, on receipts without a header, after
    the last row carrying a date or time above the totals. A row with only 'quantity x unit price' and an amount
    belongs to the description on the row above it.
    """
    items: list[FoundItem] = []
    for page in pages:
        header_rows = {page.row_of(i) for i, *_ in find_labels(page, "line_items_header")}
        stop_rows = {page.row_of(i) for f in ("total", "subtotal") for i, *_ in find_labels(page, f)}
        if header_rows:
            first = max(header_rows,
                        key=lambda r: (sum(len(find_labels_in(page, j, "line_items_header")) for j in page.rows[r]), -r))
        else:
            end = min(stop_rows or {len(page.rows)})
            dated = [r for r in range(end) if any(find_dates(page.lines[j].text) or
                                                  re.search(r"\b\d{1,2}:\d{2}\b", page.lines[j].text)
                                                  for j in page.rows[r])]
            if not dated:
                continue
            first = dated[-1]
        last = min([r for r in stop_rows if r > first] or [len(page.rows)])
        pending: list[tuple[int, Line]] = []  # name lines printed above their amounts row
        last_item_row = -2
        page_items: list[FoundItem] = []
        for r in range(first + 1, last):
            row = page.rows[r]
            text_parts = [(j, page.lines[j]) for j in row]
            desc, amounts = _row_parts(page, r, decimal_comma)
            if desc and not amounts:
                if r == last_item_row + 1 and page_items and _continues_previous(page, r, decimal_comma, last):
                    page_items[-1] = _extend_description(page, page_items[-1], desc[0][0])
                    last_item_row = r
                elif len(page.rows[r]) >= 2:
                    pending = []  # names in two columns and no amount: a header row, not an item's name
                else:
                    if pending and row_box(page, r)[1] - row_box(page, r - 1)[3] > NAME_LINE_GAP * _row_height(page, r):
                        pending = []  # a name wraps onto tightly spaced lines; a wider gap starts afresh
                    pending.append(desc[0])
                continue
            if not amounts:
                continue
            if not desc and not pending:
                continue
            dj, dl = desc[0] if desc else pending[-1]
            d_end = _name_end(dl.text)
            description = _found(page, dj, 0, d_end, dl.text[:d_end].strip(), note="table row")
            above = pending[:-1] if not desc else pending
            if above:  # a name printed over several lines above its amounts: joined, top to bottom
                parts = [page.lines[k].text.strip() for k, _ in above] + [description.raw]
                description = replace(description, value=" ".join(parts), raw=" ".join(parts),
                                      bbox_page_px=union_box([page.lines[k].bbox_page_px for k, _ in above]
                                                             + [description.bbox_page_px]),
                                      note=f"table row; name over {len(parts)} lines")
            pending = []
            last_item_row = r
            aj, am = amounts[-1]
            amount = _money(page, aj, am, "rightmost amount of the row", 0)
            unit = qty = None
            for j, ln in text_parts:
                qp = QTY_TIMES_PRICE.search(ln.text)
                if qp:
                    qty = _found(page, j, qp.start(1), qp.end(1), Decimal(qp.group(1)), note="quantity x unit price")
                    price = find_amounts(qp.group(2), decimal_comma=decimal_comma)
                    if price:
                        unit = Found(price[0].value, qp.group(2), page.index, span_box(ln, qp.start(2), qp.end(2)),
                                     "quantity x unit price")
                    break
            if unit is None and len(amounts) > 1:
                unit = _money(page, amounts[-2][0], amounts[-2][1], "amount before the line total", 0)
            if qty is None:
                for j, ln in text_parts:
                    q = re.search(r"(?<![\d.,])(\d{1,4})(?:\s*(?:x|pcs?|pc|st|stk|h)\b|\s*$)", ln.text, re.I)
                    if q and j not in (aj, dj):  # a number ending the description is part of it ("eggs 12")
                        qty = _found(page, j, q.start(1), q.end(1), Decimal(q.group(1)), note="count on the row")
                        break
            page_items.append(FoundItem(description, qty, unit, amount))
        items += page_items
    return items


NUMERIC_TAIL = re.compile(r"(?:\s+(?:[-(]?\d+(?:[.,]\d+)*\)?|[x×@*]|RM|\$|€|£|EUR|MYR|USD|GBP))+\s*$")
"""The columns printed after an item's name inside one box: quantity, 'x', unit price, amount, currency."""


def _name_end(text: str) -> int:
    """Where an item's name ends in its line: before a tail of numbers that holds an amount with cents (the
    row's columns read into one box); a number with no amount after it is part of the name ('PACK OF 6')."""
    m = NUMERIC_TAIL.search(text)
    if m and m.start() > 0 and re.search(r"\d[.,]\d{2}(?!\d)", m.group(0)):
        return m.start()
    return len(text.rstrip())


NAME_LINE_GAP = 0.6
"""Lines of one wrapped item name are at most this many line heights apart."""
ITEM_NAME_LETTERS = 2
"""A row part with at least this many letters (besides 'quantity x price') is an item's name ('2KG' included)."""


def _row_parts(page: PageText, r: int, decimal_comma: bool | None) -> tuple[list[tuple[int, Line]], list]:
    """(name lines, amounts with cents) of one row of the items table."""
    parts = [(j, page.lines[j]) for j in page.rows[r]]
    desc = [(j, ln) for j, ln in parts if sum(c.isalpha() for c in QTY_TIMES_PRICE.sub("", ln.text)) >= ITEM_NAME_LETTERS]
    amounts = [(j, am) for j, ln in parts for am in find_amounts(ln.text, decimal_comma=decimal_comma) if am.has_decimals]
    return desc, amounts


def _continues_previous(page: PageText, r: int, decimal_comma: bool | None, last: int) -> bool:
    """A name-only row right under an item row continues that item's name when it sits closer to it than to the
    next row, or equally close while the next row carries its own name (so it is not this row's item)."""
    top, bottom = row_box(page, r)[1], row_box(page, r)[3]
    gap_prev = top - row_box(page, r - 1)[3]
    if r + 1 >= last:
        return gap_prev <= (bottom - top)
    gap_next = row_box(page, r + 1)[1] - bottom
    desc_next, amounts_next = _row_parts(page, r + 1, decimal_comma)
    if amounts_next and not desc_next:
        return False  # 'qty x price  amount' under it: this row names the next item
    return gap_prev < gap_next - 0.1 * (bottom - top) or (abs(gap_prev - gap_next) <= 0.1 * (bottom - top)
                                                          and bool(desc_next))


def _extend_description(page: PageText, item: FoundItem, j: int) -> FoundItem:
    d = item.description
    text = page.lines[j].text.strip()
    if d is None:
        return item
    joined = f"{d.raw} {text}"
    return replace(item, description=replace(d, value=joined, raw=joined,
                                             bbox_page_px=union_box([d.bbox_page_px, page.lines[j].bbox_page_px]),
                                             note="table row; name continued on the line(s) below"))


def _has_label(page: PageText, i: int, field_name: str) -> bool:
    """True when line i, or a line on its row, carries a label of the field (e.g. 'Due date:' left of a date)."""
    return any(find_labels_in(page, j, field_name) or PATTERNS_DUE_OR_OTHER.search(page.lines[j].text)
               for j in page.rows[page.row_of(i)])


def find_labels_in(page: PageText, i: int, field_name: str) -> list[re.Match[str]]:
    return [m for _, p in PATTERNS[field_name] for m in [p.search(page.lines[i].text)] if m]


# --- the whole document --------------------------------------------------------------------------------
def decimal_comma_hint(text: str) -> bool | None:
    """True when the document writes amounts as 1.234,56 (more decimal commas than decimal points)."""
    commas = len(re.findall(r"\d,\d{2}(?!\d)", text))
    points = len(re.findall(r"\d\.\d{2}(?!\d)", text))
    if commas == points:
        return None
    return commas > points


def extract_rules(pages: Sequence[PageText]) -> RuleResult:
    """Run every rule over a document's pages (fields from any page; line items of every page concatenated)."""
    text = all_lines_text(pages)
    dec_comma = decimal_comma_hint(text)
    dates = [d for p in pages for ln in p.lines for d in find_dates(ln.text)]
    day_first = decide_day_first(dates)
    values: dict[str, Found] = {}
    notes: list[tuple[str, str]] = []

    if pages:
        company, last = find_company(pages[0])
        if company:
            values["vendor_name"] = company
        if last >= -1:
            address = find_address(pages[0], last)
            if address:
                values["vendor_address"] = address
    date = find_date(pages, "invoice_date", day_first=day_first)
    if date:
        values["date"] = date
    due = find_date(pages, "due_date", day_first=day_first, require_label=True)
    if due:
        values["due_date"] = due
    tm = find_time(pages, date)
    if tm:
        values["time"] = tm
    subs = find_labelled_amounts(pages, "subtotal", exclude=None, decimal_comma=dec_comma)
    if subs:
        values["subtotal"] = max(subs, key=lambda c: c.score)
    tax_lines = find_tax_lines(pages, decimal_comma=dec_comma)
    tax, _ = settle_tax(tax_lines, total=None, subtotal=values.get("subtotal"))
    if tax is not None:
        values["tax"] = tax
    items = find_line_items(pages, decimal_comma=dec_comma)
    item_amounts = [it.amount.value for it in items if it.amount is not None]
    items_sum = sum(item_amounts, Decimal(0)) if len(item_amounts) >= 2 else None  # type: ignore[arg-type]
    sub, tax_now = values.get("subtotal"), values.get("tax")
    if items_sum is not None and sub is not None and sub.value == items_sum and tax_now is not None and tax_now.value:
        items_sum = None  # the items add up to the subtotal before tax: no vote for a total of that amount
    total, total_notes = find_total(pages, decimal_comma=dec_comma, subtotal=values.get("subtotal"),
                                    tax=values.get("tax"), items_sum=items_sum,
                                    item_amounts=[a for a in item_amounts if isinstance(a, Decimal)])
    notes += total_notes
    if total:
        values["total"] = total
    tax, tax_notes = settle_tax(tax_lines, total=total, subtotal=values.get("subtotal"))
    notes += tax_notes
    values.pop("tax", None)
    if tax is not None:
        values["tax"] = tax
    roles = [r for r in collect_role_amounts(pages, decimal_comma=dec_comma) if not r.void]
    values, items = close_totals(
        values, items, discounts=[abs(r.found.value) for r in roles if r.role == "discount"],  # type: ignore[arg-type]
        roundings=[r.found.value for r in roles if r.role == "rounding" and abs(r.found.value) < 1])  # type: ignore[arg-type, misc]
    for key, label in (("invoice_number", "invoice_number"), ("vendor_tax_id", "vendor_tax_id")):
        found = find_identifier(pages, label)
        if found:
            values[key] = found
    buyer = find_buyer(pages)
    if buyer:
        values["buyer_name"] = buyer
    pm = find_payment_method(pages)
    if pm:
        values["payment_method"] = pm
    currency = (total.currency if total and total.currency else None) or detect_currency(text)
    if currency:
        values["currency"] = Found(currency, currency, total.page if total else 0,
                                   total.bbox_page_px if total else (0.0, 0.0, 1.0, 1.0),
                                   "currency mark on the page")
    values, items = judge_fields(values, items, pages)
    return RuleResult(values=values, line_items=items, notes=notes, tax_lines=tax_lines)


SROIE_KEYS = {"company": "vendor_name", "address": "vendor_address", "date": "date", "total": "total"}
"""The four SROIE fields and the rule keys that answer them."""


def extract_sroie_judged(lines: Sequence[Line], width_px: float, height_px: float
                         ) -> dict[str, tuple[str | None, str | None]]:
    """The four SROIE fields as printed, each with its status (verified / found / inferred; None when missing)."""
    v = extract_rules([build_page(lines, 0, width_px, height_px)]).values
    out: dict[str, tuple[str | None, str | None]] = {}
    for name, key in SROIE_KEYS.items():
        f = v.get(key)
        printed = None if f is None else (f.printed or f.raw) if name in ("address", "total") else f.raw
        out[name] = (printed, None if f is None else f.status)
    return out


def extract_sroie_fields(lines: Sequence[Line], width_px: float, height_px: float) -> dict[str, str | None]:
    """The four SROIE fields (company, address, date, total) as printed: the bench's view of the rules."""
    return {k: v for k, (v, _) in extract_sroie_judged(lines, width_px, height_px).items()}
