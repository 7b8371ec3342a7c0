"""The `invoice` extraction schema: every field is a value object (value, raw text, page, box, source, status).

Loaded by file path like any user schema (`--schema schemas/invoice.py:Invoice`); `docvlm schema invoice`
prints its JSON Schema.
"""

from __future__ import annotations

from pydantic import Field

from docvlm.extract.models import CurrencyField, DateField, MoneyField, NumberField, SchemaModel, TextField


class InvoiceLineItem(SchemaModel):
    """One line of the invoice table."""

    description: TextField = Field(default_factory=TextField, description="What was sold, as printed.")
    quantity: NumberField = Field(default_factory=NumberField, description="Quantity (units, hours, ...).")
    unit_price: MoneyField = Field(default_factory=MoneyField, description="Price of one unit.")
    amount: MoneyField = Field(default_factory=MoneyField, description="Line total.")


class Invoice(SchemaModel):
    """Fields of an invoice."""

    vendor_name: TextField = Field(default_factory=TextField, description="Name of the seller issuing the invoice.")
    vendor_address: TextField = Field(default_factory=TextField, description="Postal address of the seller.")
    vendor_tax_id: TextField = Field(default_factory=TextField, description="Seller's VAT / GST / tax number.")
    buyer_name: TextField = Field(default_factory=TextField, description="Name of the customer billed.")
    invoice_number: TextField = Field(default_factory=TextField, description="Invoice number as printed.")
    invoice_date: DateField = Field(default_factory=DateField, description="Date of issue.")
    due_date: DateField = Field(default_factory=DateField, description="Payment due date.")
    currency: CurrencyField = Field(default_factory=CurrencyField, description="ISO 4217 code of the amounts.")
    subtotal: MoneyField = Field(default_factory=MoneyField, description="Total before tax.")
    tax_total: MoneyField = Field(default_factory=MoneyField, description="Total tax (VAT, GST, ...): the sum of "
                                  "the per-rate tax lines (listed in the note), 0.00 when exempt or 0%; never at or "
                                  "above the total.")
    total: MoneyField = Field(default_factory=MoneyField, description="Amount to pay, tax included.")
    line_items: list[InvoiceLineItem] = Field(default_factory=list, description="Lines of the invoice table.")


SCHEMA = Invoice
