"""Recompute every box of a VLM result from its stored plan and raw outputs, without any model.

For debugging the parser and the geometry, and for re-running old results after a fix: a page with a plan
gets its lines and its `parse` / `invalid_box` errors recomputed by the same code path the engines use
(`docvlm.grounding.page_lines_from_outputs`); every other error (repetition, timeouts, ...) is kept as is.
Pages without a plan (the `ocr` engine) and extraction pages (prompt id `extract-*`, whose outputs the
extraction stage parses against its schema) are left untouched. Outputs of failed requests (stop_reason
"error") are skipped, as the engine does.
"""

from __future__ import annotations

from docvlm.datamodel import DocumentResult, PageResult, document_status, page_status
from docvlm.geometry import page_to_pdf
from docvlm.grounding import GROUNDING_ERROR_CODES, page_lines_from_outputs


def reparse_page(page: PageResult, *, where: str = "", label: str | None = None,
                 family: str | None = None) -> PageResult:
    """One page recomputed from `page.plan` and `page.outputs` (unchanged when it has no plan).

    `family` re-reads the outputs in that family's convention (the plan's tiles, hence the frame, are kept).
    Read pages of a family that does not ground documents (LLaVA-NeXT) are left as they are: their boxes came
    from aligning the text with the ocr engine's lines at run time, not from the raw output.
    """
    from docvlm.families import get_family

    if page.plan is None or (page.prompt_id or "").startswith("extract-"):
        return page  # no VLM plan (ocr engine), or extraction output that docvlm.extract parses
    if family is not None and family != page.plan.family:
        page = page.model_copy(update={"plan": page.plan.model_copy(update={"family": family})})
    if not get_family(page.plan.family).grounds_documents and not (page.prompt_id or "").startswith("ground-"):
        return page
    shown = f"{where} (page {page.index + 1})" if where else f"page {page.index + 1}"
    lines, errors = page_lines_from_outputs(page.plan, page.outputs, page_index=page.index, where=shown,
                                            label=label)
    if page.dpi:
        lines = [
            ln.model_copy(update={
                "bbox_pdf_pt": page_to_pdf(ln.bbox_page_px, page.dpi),
                "words": [w.model_copy(update={"bbox_pdf_pt": page_to_pdf(w.bbox_page_px, page.dpi)})
                          for w in ln.words],
            })
            for ln in lines
        ]
    kept = [e for e in page.errors if e.code not in GROUNDING_ERROR_CODES]
    all_errors = kept + errors
    status = "failure" if page.status == "failure" and not lines else page_status(lines, all_errors)
    return page.model_copy(update={"lines": lines, "errors": all_errors, "status": status})


def reparse_result(result: DocumentResult, *, family: str | None = None) -> DocumentResult:
    """The whole document recomputed page by page (in `family`'s convention when given); the document status
    follows the pages."""
    pages = [reparse_page(p, where=result.source.path, label=_ground_label(p), family=family) for p in result.pages]
    return result.model_copy(update={"pages": pages, "status": document_status(pages, result.errors)})


def _ground_label(page: PageResult) -> str | None:
    """The query of a grounding run, when every line of the page carried the same label (kept on reparse)."""
    labels = {ln.label for ln in page.lines if ln.label}
    return labels.pop() if len(labels) == 1 else None
