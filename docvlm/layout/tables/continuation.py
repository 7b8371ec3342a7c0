"""Continuation: a table split over consecutive pages is marked `continued` on the later page."""

from __future__ import annotations

from dataclasses import dataclass

from docvlm.datamodel import PageResult

# --- across pages -----------------------------------------------------------------------------------------

EDGE_SHARE = 0.25
"""A table continues onto the next page when it ends in the page's bottom quarter and the next page's first
table starts in its top quarter with the same column count."""


def mark_continuations(pages: list[PageResult]) -> list[PageResult]:
    """Set `continued` on a page's first table when it carries on the previous page's last table."""
    out = list(pages)
    for k in range(1, len(out)):
        prev, cur = out[k - 1], out[k]
        if not prev.tables or not cur.tables or cur.index != prev.index + 1:
            continue
        last, first = prev.tables[-1], cur.tables[0]
        if (last.n_cols == first.n_cols
                and last.bbox_page_px[3] >= (1 - EDGE_SHARE) * prev.height_px
                and first.bbox_page_px[1] <= EDGE_SHARE * cur.height_px):
            out[k] = cur.model_copy(update={"tables": [first.model_copy(update={"continued": True}),
                                                       *cur.tables[1:]]})
    return out


@dataclass(frozen=True)
class MarkTableContinuations:
    """Document step: tables split over consecutive pages are marked `continued` on the later page."""

    name: str = "table_continuations"

    def __call__(self, pages: list[PageResult], ctx: object) -> list[PageResult]:
        return mark_continuations(pages)


TABLE_DOCUMENT_PROCESSORS: list[MarkTableContinuations] = [MarkTableContinuations()]
"""For `docvlm.layout.DOCUMENT_PROCESSORS` (any place: it reads only `page.tables`)."""
