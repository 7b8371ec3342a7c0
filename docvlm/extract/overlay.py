"""Overlays of an extraction result: each field's box with its name and value, colored by status.

Drawing is `docvlm.overlay.draw_boxes`; pages are re-rendered from the source like `docvlm show` does for a
conversion result (an extraction result carries the same `source` and page geometry, recognisable by
`kind == "extraction"`).
"""

from __future__ import annotations

from pathlib import Path

from docvlm.extract.models import ExtractionResult, FieldBase

STATUS_CONFIDENCE = {"verified": 1.0, "found": 0.8, "inferred": 0.6, "unverified": 0.6, "invalid": 0.0}
"""Status -> the confidence whose color the overlay uses: green verified, yellow found/inferred/unverified, red invalid."""


def field_label(name: str, field: FieldBase, max_chars: int = 40) -> str:
    value = getattr(field, "value", None)
    text = f"{name}: {value}" if value is not None else f"{name}: {field.raw or ''}"
    return text if len(text) <= max_chars else text[: max_chars - 1] + "…"


def field_boxes(result: ExtractionResult, page_index: int) -> list:
    """The overlay boxes of the fields read on one page."""
    from docvlm.overlay import OverlayBox

    out = []
    for name, field in result.iter_fields():
        if field.page == page_index and field.bbox_page_px is not None:
            out.append(OverlayBox(field.bbox_page_px, field_label(name, field), STATUS_CONFIDENCE.get(field.status)))
    return out


def render_extraction_overlays(
    result: ExtractionResult, source_path: str | Path | None, out_dir: str | Path, *, relpath: str | None = None,
    password: str | None = None,
) -> list:
    """Write `out_dir/<relpath>.page-N.png` with every field box drawn; blank pages when the source is gone.

    Returns:
        `docvlm.overlay.OverlayPage` per page written.
    """
    from docvlm.overlay import write_page_overlays

    return write_page_overlays(
        result, source_path, out_dir, lambda page: field_boxes(result, page.index), suffix=".fields.page",
        relpath=relpath, password=password,
    )


def field_rows(result: ExtractionResult) -> list[tuple[str, str, str, str, str, str, str]]:
    """(field, value, raw, page, box, status, note) rows for a terminal table: the note says how each value was
    chosen (label, row, votes, repairs), so a wrong choice shows at a glance."""
    rows = []
    for name, field in result.iter_fields():
        value = getattr(field, "value", None)
        box = "" if field.bbox_page_px is None else "[" + ", ".join(f"{v:.0f}" for v in field.bbox_page_px) + "]"
        page = "" if field.page is None else str(field.page + 1)
        rows.append((name, "" if value is None else str(value), field.raw or "", page, box, field.status,
                     field.note or ""))
    return rows
