"""Field value objects and the extraction result.

Every extracted field is a value object: the typed value, the raw text as printed, the page and the box where
it was read (`bbox_page_px`), where it came from (`source`) and how far it can be trusted (`status`). The
`type` tag makes a stored result load back into the right value classes (and lets `docvlm show` recognise an
extraction result by its `kind`).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, time
from decimal import Decimal
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field

from docvlm.datamodel import SCHEMA_VERSION, Box, EngineInfo, ErrorItem, SourceInfo, Status

FieldStatus = Literal["verified", "found", "inferred", "unverified", "missing", "invalid"]
FieldSource = Literal["text_layer", "ocr", "model"]


class FieldBase(BaseModel):
    """What every field value object carries besides its typed value."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    raw: str | None = Field(default=None, description="The text as printed on the page (or as the model gave it).")
    page: int | None = Field(default=None, description="0-based page index where the value was read (page 1 is 0; "
                                  "`docvlm show` prints it 1-based).")
    bbox_page_px: Box | None = Field(default=None, description="Box of the value in page pixels [x0, y0, x1, y1].")
    source: FieldSource | None = Field(default=None, description="Where the value came from.")
    status: FieldStatus = Field(
        default="missing",
        description="How far the value can be trusted. verified: independent evidence on the page agrees, beyond "
        "the text being in its box (the arithmetic closes: items sum to the subtotal, subtotal + tax - discount + "
        "rounding = total, cash - change = total, tax = rate x base within a cent; the same value found twice by "
        "different routes; a labelled date that parses and is plausible, and no second reading of it disagrees; a "
        "company name on the line of its legal form or above its registration number whose letters a second route "
        "reads the same: a second recognition of its crop, the name printed twice, or a text layer). found: read under a clear label, nothing more confirms it. "
        "inferred: found by position or weak cues (the top rows, the first date, a subtotal offered as the total). "
        "unverified (VLM engines): the model's value is not printed at its box. missing: not on the document. "
        "invalid: present but not a valid value of its type. The note holds the evidence.",
    )
    note: str | None = Field(default=None, description="How the value was found (label, row, arithmetic votes, "
                             "OCR repairs) and its evidence: what confirmed it, or what was missing ('evidence: "
                             "...'); or why it is unverified or invalid.")


class TextField(FieldBase):
    type: Literal["text"] = "text"
    value: str | None = Field(default=None, description="The text value.")


class DateField(FieldBase):
    type: Literal["date"] = "date"
    value: date | None = Field(default=None, description="ISO 8601 date.")


class TimeField(FieldBase):
    type: Literal["time"] = "time"
    value: time | None = Field(default=None, description="Time of day, ISO 8601.")


class NumberField(FieldBase):
    type: Literal["number"] = "number"
    value: Decimal | None = Field(default=None, description="A decimal number (serialized as a string).")


class MoneyField(FieldBase):
    type: Literal["money"] = "money"
    value: Decimal | None = Field(default=None, description="The amount (serialized as a decimal string).")
    currency: str | None = Field(default=None, pattern=r"^[A-Z]{3}$", description="ISO 4217 code.")


class CurrencyField(FieldBase):
    type: Literal["currency"] = "currency"
    value: str | None = Field(default=None, pattern=r"^[A-Z]{3}$", description="ISO 4217 currency code.")


class BoolField(FieldBase):
    type: Literal["boolean"] = "boolean"
    value: bool | None = None


VALUE_CLASSES: dict[str, type[FieldBase]] = {
    "text": TextField, "date": DateField, "time": TimeField, "number": NumberField, "money": MoneyField,
    "currency": CurrencyField, "boolean": BoolField,
}
"""Value object class per `type` tag."""

FieldValue = Annotated[
    Union[TextField, DateField, TimeField, NumberField, MoneyField, CurrencyField, BoolField],  # noqa: UP007
    Field(discriminator="type"),
]


class SchemaModel(BaseModel):
    """Base of extraction schemas (schemas/invoice.py, schemas/receipt.py): fields are value objects."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class CheckWarning(BaseModel):
    """A cross-check that failed: reported, never silently corrected."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    code: str = Field(description="items_sum, subtotal_tax_total, due_before_issue, missing_total, ...")
    message: str
    fields: list[str] = Field(default_factory=list, description="The fields involved (dotted paths).")


class ModelAttempt(BaseModel):
    """One answer of a VLM to the extraction prompt, kept for debugging and reparse."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    page: int
    tile: int | None = None
    attempt: int = Field(description="1 for the first answer, 2 for the retry with the validation errors.")
    raw_text: str
    errors: list[str] = Field(default_factory=list, description="Parse or validation errors of this answer.")


class PageRef(BaseModel):
    """The geometry of a page the fields refer to (for overlays)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    index: int
    width_px: int
    height_px: int
    dpi: float | None = None
    text_source: FieldSource | None = None


FieldEntry = Union[FieldValue, list[dict[str, FieldValue]]]  # noqa: UP007


class ExtractionResult(BaseModel):
    """Fields of one document, validated against a schema, each with its page, box, source and status."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["extraction"] = Field(default="extraction", description="Tells an extraction result apart.")
    schema_version: str = SCHEMA_VERSION
    docvlm_version: str
    schema_name: str = Field(description="Built-in schema name, or the file (and model) the schema came from.")
    schema_choice: str | None = Field(
        default=None, description="With `--schema auto`: which schema was chosen for this document and why (its cues).")
    status: Status
    source: SourceInfo
    engine: EngineInfo
    options_digest: str
    pages: list[PageRef] = Field(default_factory=list)
    fields: dict[str, FieldEntry] = Field(
        default_factory=dict, description="Field name -> value object; list fields -> list of items."
    )
    warnings: list[CheckWarning] = Field(default_factory=list, description="Cross-checks that failed.")
    errors: list[ErrorItem] = Field(default_factory=list)
    attempts: list[ModelAttempt] = Field(default_factory=list, description="Raw model answers (VLM engines).")
    seconds: float | None = None

    def iter_fields(self) -> Iterator[tuple[str, FieldBase]]:
        """(dotted path, value object) for every field, line items as `line_items[0].amount`."""
        for name, entry in self.fields.items():
            if isinstance(entry, list):
                for i, item in enumerate(entry):
                    for sub, value in item.items():
                        yield f"{name}[{i}].{sub}", value
            else:
                yield name, entry

    def to_model(self, model: type[BaseModel]) -> Any:
        """The fields as an instance of the schema model (e.g. `schemas.invoice.Invoice`)."""
        return model.model_validate({k: _plain(v) for k, v in self.fields.items()})


def _plain(entry: Any) -> Any:
    if isinstance(entry, list):
        return [{k: v.model_dump() for k, v in item.items()} for item in entry]
    return entry.model_dump()
