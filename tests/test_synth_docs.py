"""The synthetic receipts and invoices (samples/synth_docs.py): their truth adds up, and the rules read it back
from the text-layer PDFs (the photos are measured by bench/extract_bench.py --set synth)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from docvlm.extract import extract_document
from docvlm.options import ConvertOptions
from samples.synth_docs import make_doc, render_pdf, render_photo


@pytest.mark.parametrize("seed", range(12))
def test_truth_adds_up(seed):
    doc = make_doc(seed)
    assert doc.subtotal == sum((it.amount for it in doc.items), Decimal(0))
    assert all(it.amount == (it.quantity * it.unit_price).quantize(Decimal("0.01")) for it in doc.items)
    assert doc.total == doc.subtotal - doc.discount + doc.tax + doc.rounding
    assert 0 < doc.tax < doc.total
    assert make_doc(seed).truth() == doc.truth()  # deterministic


def test_varied_documents_across_seeds():
    docs = [make_doc(s) for s in range(60)]
    assert {d.kind for d in docs} == {"receipt", "invoice"}
    assert len({d.currency for d in docs}) >= 3 and len({d.font for d in docs}) == 3
    assert any(len(d.taxes) == 2 for d in docs) and any(d.discount for d in docs) and any(d.rounding for d in docs)
    assert any(it.wrapped for d in docs for it in d.items)


@pytest.mark.parametrize("seed", [0, 1, 4, 7])
def test_rules_read_the_truth_back_from_the_pdf(tmp_path, seed):
    doc = make_doc(seed)
    truth = doc.truth()
    r = extract_document(render_pdf(doc, tmp_path / "d.pdf"), ConvertOptions(), schema=doc.kind)
    f = r.fields
    tax = f["tax"] if doc.kind == "receipt" else f["tax_total"]
    assert tax.value == Decimal(truth["tax"]) and f["total"].value == Decimal(truth["total"])
    assert f["subtotal"].value == Decimal(truth["subtotal"])
    got = [(" ".join(i["description"].value.split()).casefold(), i["amount"].value) for i in f["line_items"]]
    assert got == [(t["description"].casefold(), Decimal(t["amount"])) for t in truth["line_items"]]
    assert f["total"].status == "verified"


def test_photo_rendering_is_a_jpeg_of_the_page(tmp_path):
    from PIL import Image

    path = render_photo(make_doc(3), tmp_path / "p.jpg")
    with Image.open(path) as im:
        assert im.format == "JPEG" and im.width > 300 and im.height > 300
    assert not list(tmp_path.glob("*.pdf"))  # the intermediate page is not left behind
