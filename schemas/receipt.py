"""The `receipt` extraction schema: every field is a value object (value, raw text, page, box, source, status)."""

from __future__ import annotations

from pydantic import Field

from docvlm.extract.models import DateField, MoneyField, NumberField, SchemaModel, TextField, TimeField


class ReceiptLineItem(SchemaModel):
    """One purchased item."""

    description: TextField = Field(default_factory=TextField, description="Item as printed.")
    quantity: NumberField = Field(default_factory=NumberField, description="Quantity.")
    unit_price: MoneyField = Field(default_factory=MoneyField, description="Price of one unit.")
    amount: MoneyField = Field(default_factory=MoneyField, description="Line total.")


class Receipt(SchemaModel):
    """Fields of a till receipt."""

    merchant_name: TextField = Field(default_factory=TextField, description="Shop or company name at the top.")
    merchant_address: TextField = Field(default_factory=TextField, description="Address printed under the name.")
    date: DateField = Field(default_factory=DateField, description="Date of the purchase.")
    time: TimeField = Field(default_factory=TimeField, description="Time of the purchase.")
    total: MoneyField = Field(default_factory=MoneyField, description="Amount paid, tax included.")
    subtotal: MoneyField = Field(default_factory=MoneyField, description="Total before tax (and before rounding).")
    tax: MoneyField = Field(default_factory=MoneyField, description="Tax (GST / VAT / SST) of the receipt: the sum "
                            "of its per-rate tax lines (listed in the note), 0.00 when exempt or 0%; never at or "
                            "above the total.")
    payment_method: TextField = Field(default_factory=TextField, description="Cash, card, e-wallet, ...")
    line_items: list[ReceiptLineItem] = Field(default_factory=list, description="Purchased items.")


SCHEMA = Receipt
