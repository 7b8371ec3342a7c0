"""Cross-checks on extracted fields (every engine): failures are warnings on the result, never corrections."""

from __future__ import annotations

from decimal import Decimal

from docvlm.extract.models import CheckWarning, FieldBase
from docvlm.extract.rules import FIELD_ALIASES

TOLERANCE = Decimal("0.01")
"""Amounts are equal when they differ by at most one cent (rounding of printed amounts)."""


def _named(fields: dict, rule_key: str) -> tuple[str, FieldBase] | tuple[None, None]:
    for name in FIELD_ALIASES[rule_key]:
        entry = fields.get(name)
        if isinstance(entry, FieldBase):
            return name, entry
    return None, None


def _value(field: FieldBase | None):
    if field is None or field.status in ("missing", "invalid"):
        return None
    return getattr(field, "value", None)


def cross_check(fields: dict) -> list[CheckWarning]:
    """Line items sum to the subtotal (or, tax included, to the total), subtotal plus tax equals the total, the due
    date is not before the issue date.

    Args:
        fields: field name -> value object, list fields -> list of item dicts (an `ExtractionResult.fields`).

    Returns:
        One warning per failed check; checks whose inputs are missing are skipped.
    """
    out: list[CheckWarning] = []
    sub_name, sub = _named(fields, "subtotal")
    tax_name, tax = _named(fields, "tax")
    tot_name, tot = _named(fields, "total")
    subtotal, tax_v, total = _value(sub), _value(tax), _value(tot)

    items_name = next((n for n in FIELD_ALIASES["line_items"] if isinstance(fields.get(n), list)), None)
    amounts = []
    if items_name:
        for item in fields[items_name]:
            amount = _value(item.get("amount"))
            if amount is not None:
                amounts.append(amount)
    if amounts:
        s = sum(amounts, Decimal(0))
        target_name, target = (sub_name, subtotal) if subtotal is not None else (
            (tot_name, total) if tax_v in (None, Decimal(0)) else (None, None))
        # line amounts printed tax included add up to the total instead: that is consistent too
        gross_ok = total is not None and abs(s - total) <= TOLERANCE
        if target is not None and abs(s - target) > TOLERANCE and not gross_ok:
            out.append(CheckWarning(
                code="items_sum",
                message=f"line items sum to {s} but {target_name} is {target}",
                fields=[f"{items_name}[*].amount", target_name],
            ))
    if subtotal is not None and tax_v is not None and total is not None and abs(subtotal + tax_v - total) > TOLERANCE:
        out.append(CheckWarning(
            code="subtotal_tax_total",
            message=f"{sub_name} {subtotal} + {tax_name} {tax_v} = {subtotal + tax_v}, but {tot_name} is {total}",
            fields=[sub_name, tax_name, tot_name],
        ))
    date_name, issued = _named(fields, "date")
    due_name, due = _named(fields, "due_date")
    if _value(issued) is not None and _value(due) is not None and _value(due) < _value(issued):
        out.append(CheckWarning(
            code="due_before_issue",
            message=f"{due_name} {_value(due)} is before {date_name} {_value(issued)}",
            fields=[due_name, date_name],
        ))
    if tot_name is not None and total is None and tot is not None and tot.status == "missing":
        out.append(CheckWarning(code="missing_total", message=f"no {tot_name} found on the document",
                                fields=[tot_name]))
    return out
