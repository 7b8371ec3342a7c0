"""`--schema auto`: receipt or invoice, chosen from the document's own cues, with the reason.

Cues are words and page shape, never file names: a till receipt prints cash, change, cashier, a time of day and
sits on a narrow strip; an invoice prints a bill-to party, a due date, payment terms, bank details and sits on
an A4 / Letter page.
"""

from __future__ import annotations

import re

from docvlm.datamodel import DocumentResult

RECEIPT_CUES: dict[str, str] = {
    "cash or change": r"\b(cash|change|tunai|baki|contant|wisselgeld|esp[èe]ces|rendu|bar\s*gegeben|r[üu]ckgeld)\b",
    "cashier or till": r"\b(cashier|kasir|counter|till|pos\b|terminal|kassa|kasse|caisse|table\s*no|pax|server)\b",
    "thank-you line": r"\b(thank\s*you|terima\s*kasih|dank\s*u|merci|danke|please\s*come\s*again)\b",
    "receipt heading": r"\b(receipt|resit|kassabon|bon\b|ticket\s*de\s*caisse|quittung|kassenbon|cash\s*bill)\b",
    "rounding adjustment": r"\bround(?:ing|ed)\b",
    "tendered / card slip": r"\b(tendered|approval\s*code|card\s*no|visa|mastercard)\b",
}
INVOICE_CUES: dict[str, str] = {
    "bill-to party": r"\b(bill(?:ed)?\s*to|sold\s*to|ship\s*to|invoice\s*to|factuuradres|rechnungsempf[äa]nger|"
                     r"factur[ée]\s*[àa]|customer\s*(?:no|number|id))\b",
    "due date or terms": r"\b(due\s*date|payment\s*(?:terms|due)|pay\s*by|net\s*\d{2}|vervaldatum|"
                         r"f[äa]llig|[ée]ch[ée]ance|zahlbar)\b",
    "bank details": r"\b(iban|bic|swift|account\s*(?:no|number)|sort\s*code|bankrekening|bankverbindung)\b",
    "invoice number": r"\b(invoice\s*(?:no|number|#|date)|factuurnummer|rechnungsnummer|num[ée]ro\s*de\s*facture|"
                      r"n[°o]\s*de\s*facture)\b",
    "purchase order": r"\b(p\.?o\.?\s*(?:no|number)|purchase\s*order|order\s*reference)\b",
}


def choose_schema(read: DocumentResult) -> tuple[str, str]:
    """('receipt' | 'invoice', reason) from the read text of a document and the shape of its first page."""
    lines = [ln.text for p in read.pages for ln in p.lines]  # cues are matched within a line, never across

    def seen(pattern: str) -> bool:
        return any(re.search(pattern, text, re.IGNORECASE) for text in lines)

    receipt = [name for name, pat in RECEIPT_CUES.items() if seen(pat)]
    invoice = [name for name, pat in INVOICE_CUES.items() if seen(pat)]
    r_score, i_score = len(receipt), len(invoice)
    shape = ""
    if read.pages:
        p = read.pages[0]
        ratio = p.height_px / max(1, p.width_px)
        if ratio >= 1.8:
            r_score += 2
            shape = f"narrow strip page (height/width {ratio:.1f})"
        elif 1.2 <= ratio <= 1.6 and len(read.pages) >= 1 and p.text_source == "text_layer":
            i_score += 1
            shape = f"A4/Letter page with a text layer (height/width {ratio:.2f})"
    chosen = "receipt" if r_score > i_score else "invoice"
    why = [f"receipt cues: {', '.join(receipt) or 'none'}", f"invoice cues: {', '.join(invoice) or 'none'}"]
    if shape:
        why.append(shape)
    tie = " (a tie goes to invoice, the schema with more fields)" if r_score == i_score else ""
    return chosen, f"{chosen}: " + "; ".join(why) + f" (score receipt {r_score}, invoice {i_score}){tie}"
