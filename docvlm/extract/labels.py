"""The label table: which words name which field, per language (EN, NL, FR, DE, MS), and which rule answers
which schema field (`FIELD_ALIASES`).

A label is a regular expression matched on a whole word boundary, case-insensitive. Order inside a field's list is
strength; a total's label strength is its list: `total_strong` (payable, due, incl. tax, paid) over `total` over
`total_weak` (subtotal, excl. tax, before rounding), in every language of the table. Add a language by adding its
lists here.
"""

from __future__ import annotations

import re

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

