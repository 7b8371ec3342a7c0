"""The result model: frozen pydantic types at every boundary, exported as JSON Schema to schemas/.

Every box names its frame in its field name (see docvlm.geometry):
`bbox_page_px` is pixels of the rendered page (the output frame), `bbox_pdf_pt` PDF points of the visible page,
`crop_page_px` a tile's rectangle on the page. Boxes are `[x0, y0, x1, y1]`, x0 < x1, y0 < y1.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from docvlm.families import FAMILY_NAMES

SCHEMA_VERSION = "1.0"

Box = tuple[float, float, float, float]
"""[x0, y0, x1, y1]; the frame is always in the field name."""

Status = Literal["success", "partial", "failure"]
TextSource = Literal["text_layer", "ocr", "model"]
Family = Literal[FAMILY_NAMES]  # type: ignore[valid-type]  # the names of docvlm.families' registry
StopReason = Literal["eos", "length", "repetition", "error"]
LineRole = Literal[
    "body", "heading", "header", "footer", "page_number", "caption", "footnote", "margin", "table", "formula"
]
FURNITURE_ROLES: frozenset[str] = frozenset({"header", "footer", "page_number"})
"""Roles of page furniture: kept in the JSON, left out of Markdown unless --keep-furniture."""


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ErrorItem(Frozen):
    """One problem found while processing: recorded in the result, never swallowed."""

    code: str = Field(description="Stable short identifier, e.g. 'corrupt', 'encrypted', 'parse', 'invalid_box'.")
    message: str = Field(description="Human-readable message naming the file and page.")
    page: int | None = Field(default=None, description="0-based page index, when the error belongs to a page.")
    tile: int | None = Field(default=None, description="Tile index within the page plan, when relevant.")


class Word(Frozen):
    text: str = Field(description="The word as read.")
    bbox_page_px: Box = Field(description="Word box in page pixels [x0, y0, x1, y1].")
    bbox_pdf_pt: Box | None = Field(default=None, description="Word box in PDF points (PDF pages only).")
    confidence: float | None = Field(default=None, ge=0.0, le=1.0, description="0..1; 1.0 for text-layer words.")


class Line(Frozen):
    text: str = Field(description="The line as read, words joined by single spaces.")
    bbox_page_px: Box = Field(description="Line box in page pixels [x0, y0, x1, y1].")
    bbox_pdf_pt: Box | None = Field(default=None, description="Line box in PDF points (PDF pages only).")
    confidence: float | None = Field(default=None, ge=0.0, le=1.0, description="0..1, or null when unknown.")
    words: list[Word] = Field(default_factory=list, description="Words of the line, left to right.")
    label: str | None = Field(default=None, description="Grounding label or query the box answers, if any.")
    tile: int | None = Field(default=None, description="Index of the plan tile the line was read from (VLM engines).")
    role: LineRole | None = Field(
        default=None,
        description="What the line is on the page (set by the layout stage): body text, a heading, page "
        "furniture (header, footer, page_number, left out of Markdown by default), a caption, a footnote, "
        "a margin note, or part of a table.",
    )
    heading_level: int | None = Field(default=None, ge=1, le=6, description="1 = top level; set when role is heading.")
    block: int | None = Field(
        default=None,
        ge=0,
        description="Reading-order index of the paragraph/block the line belongs to; lines are listed in "
        "reading order, and consecutive lines with the same block form one paragraph.",
    )
    raw_text: str | None = Field(
        default=None,
        description="The text as the source gave it, when the layout stage repaired it (spaces restored "
        "from glyph gaps, control characters dropped or made bullets, Unicode NFC, combining marks joined, "
        "ligatures expanded); null when unchanged.",
    )
    font_size_pt: float | None = Field(default=None, description="Median font size in points (text layer only).")
    bold: bool | None = Field(default=None, description="True when most of the line is set bold (text layer only).")


class TilePlan(Frozen):
    """One image handed to a model: a crop of the page, resized to an exact encoded size."""

    index: int = Field(description="0-based tile index within the page plan.")
    kind: Literal["page", "tile", "thumbnail"] = Field(description="Whole page, a crop of it, or a global thumbnail.")
    crop_page_px: tuple[int, int, int, int] = Field(description="Rectangle of the page this tile shows, page pixels.")
    encoded_size: tuple[int, int] = Field(description="[width, height] in pixels of the image the model sees.")
    visual_tokens: int = Field(description="Visual tokens after the merger: (w/factor) * (h/factor).")


class EncodingPlan(Frozen):
    """How a page is encoded for a VLM: natively or tiled, and why."""

    family: Family = Field(description="Model family whose resize rule and box convention apply.")
    mode: Literal["native", "tiled"]
    page_size_px: tuple[int, int] = Field(description="[width, height] of the page in page pixels.")
    scale: float = Field(description="Encoded pixels per page pixel chosen for readability.")
    min_text_height_px: float | None = Field(
        default=None, description="Estimated smallest text height (x-height) in page pixels."
    )
    text_height_source: Literal["text_layer", "detector", "default"] = "default"
    text_line_px: float | None = Field(
        default=None, description="Estimated small-text line height in page pixels (low percentile of lines)."
    )
    min_text_px: float | None = Field(
        default=None, description="Readability floor: small-text line height the plan aims for, encoded px."
    )
    scale_rule: str | None = Field(
        default=None, description="Which rule of the readability policy set the scale (floor, default, ...)."
    )
    tiles: list[TilePlan]
    visual_tokens: int = Field(description="Sum of visual tokens over the tiles.")
    max_visual_tokens: int = Field(description="The per-request visual-token budget the plan respected.")
    reason: str = Field(description="Why the planner chose this mode and scale.")


class TileOutput(Frozen):
    """What the model printed for one tile, kept so `docvlm reparse` can recompute every box."""

    tile: int
    raw_text: str = Field(description="Decoded model output, special tokens kept.")
    prompt_tokens: int | None = None
    generated_tokens: int | None = None
    stop_reason: StopReason = "eos"
    retried: bool = Field(default=False, description="True when a repetition retry produced this output.")


TableMethod = Literal["ruled", "aligned", "model", "structure_model"]


class TableCell(Frozen):
    """One cell of a table: its grid slot, span and text, grounded like a line."""

    row: int = Field(ge=0, description="0-based row of the cell's top-left grid slot.")
    col: int = Field(ge=0, description="0-based column of the cell's top-left grid slot.")
    row_span: int = Field(default=1, ge=1, description="Grid rows the cell covers.")
    col_span: int = Field(default=1, ge=1, description="Grid columns the cell covers.")
    text: str = Field(default="", description="The cell's text, words joined by spaces, lines by a space.")
    bbox_page_px: Box | None = Field(
        default=None,
        description="Tight box of the cell's text in page pixels (like a line's box); the grid box or null "
        "for an empty cell.",
    )
    bbox_pdf_pt: Box | None = Field(default=None, description="The same box in PDF points (PDF pages only).")
    header: bool = Field(default=False, description="True for cells of the table's header rows.")


class Table(Frozen):
    """A table found on a page: its region, grid size and cells (only slots that start a cell are listed)."""

    bbox_page_px: Box = Field(description="Table region in page pixels [x0, y0, x1, y1].")
    bbox_pdf_pt: Box | None = Field(default=None, description="Table region in PDF points (PDF pages only).")
    n_rows: int = Field(ge=1, description="Rows of the table's grid.")
    n_cols: int = Field(ge=1, description="Columns of the table's grid.")
    cells: list[TableCell] = Field(default_factory=list, description="Cells, row by row, left to right.")
    method: TableMethod = Field(
        description="How the structure was found: 'ruled' (drawn or detected rulings), 'aligned' (column "
        "alignment of words), 'model' (a VLM printed it), 'structure_model' (a trained table-structure model's "
        "grid, filled with the page's words)."
    )
    header_rows: int = Field(default=0, ge=0, description="Leading rows that form the header.")
    continued: bool = Field(
        default=False,
        description="True when the table looks like the continuation of a table ending the previous page "
        "(same column count, at the top of the page).",
    )
    caption: str | None = Field(
        default=None, description="The table's caption, when a layout model found one next to it (its lines "
        "keep role 'caption')."
    )

    @model_validator(mode="after")
    def _valid_grid(self) -> Table:
        """Every cell inside the grid and no grid slot in two cells (a renderer can place each cell)."""
        owner: dict[tuple[int, int], int] = {}
        for k, c in enumerate(self.cells):
            if c.row + c.row_span > self.n_rows or c.col + c.col_span > self.n_cols:
                raise ValueError(f"table cell {k} (row {c.row}, col {c.col}, spans {c.row_span}x{c.col_span}) "
                                 f"reaches outside the {self.n_rows}x{self.n_cols} grid")
            for r in range(c.row, c.row + c.row_span):
                for q in range(c.col, c.col + c.col_span):
                    if (r, q) in owner:
                        raise ValueError(f"table cells {owner[(r, q)]} and {k} overlap at grid slot (row {r}, "
                                         f"col {q}); build tables through docvlm.layout.tables.common.valid_grid")
                    owner[(r, q)] = k
        return self


class PageRegion(Frozen):
    """A page region found by a trained layout model (tables, figures, captions, formulas, headers, footers)."""

    kind: str = Field(description="table, figure, caption, formula, header, footer, title, text or reference.")
    bbox_page_px: Box = Field(description="Region in page pixels [x0, y0, x1, y1].")
    bbox_pdf_pt: Box | None = Field(default=None, description="The same region in PDF points (PDF pages only).")
    score: float = Field(description="The model's confidence, 0 to 1.")
    model: str = Field(description="The model that found it, e.g. 'layout_cdla'.")


class ReadOrientation(Frozen):
    """How the ocr engine turned a raster page to read it upright (its boxes are still in page pixels)."""

    orientation: str = Field(
        description="PIL transpose applied before reading: none, rotate_90, rotate_180, rotate_270, flip_lr, "
        "flip_tb, transpose or transverse."
    )
    reason: str = Field(description="Why: the detector's box shapes and recognition confidences compared.")


class PageResult(Frozen):
    index: int = Field(description="0-based page index in the source document (page 1 is index 0; terminal "
                       "tables, --pages and the Markdown page markers count from 1).")
    width_px: int = Field(description="Page width in page pixels.")
    height_px: int = Field(description="Page height in page pixels.")
    dpi: float | None = Field(description="Render DPI for PDF pages; null for images.")
    width_pt: float | None = Field(default=None, description="Visible page width in PDF points (PDF pages only).")
    height_pt: float | None = Field(default=None, description="Visible page height in PDF points (PDF pages only).")
    rotation: int = Field(default=0, description="Rotation applied to reach the page frame (/Rotate or EXIF), deg.")
    status: Status
    text_source: TextSource | None = Field(default=None, description="Where the lines came from.")
    text_layer_rejected: str | None = Field(
        default=None,
        description="Set when the page has a PDF text layer that was not used because it is implausible "
        "(fonts mapping glyphs to the wrong characters: mojibake): why, with the figures. The page was read "
        "by OCR instead (text_source 'ocr').",
    )
    lines: list[Line] = Field(default_factory=list)
    tables: list[Table] = Field(default_factory=list, description="Tables found on the page, top to bottom.")
    regions: list[PageRegion] = Field(
        default_factory=list, description="Regions from the layout model, when the table step ran it "
        "(`table_models`)."
    )
    errors: list[ErrorItem] = Field(default_factory=list)
    plan: EncodingPlan | None = Field(default=None, description="The encoding plan (VLM engines only).")
    outputs: list[TileOutput] = Field(default_factory=list, description="Raw model outputs per tile (VLM engines).")
    prompt_id: str | None = Field(default=None, description="Prompt template id@version used (VLM engines).")
    read_orientation: ReadOrientation | None = Field(
        default=None, description="Page orientation decided by the ocr engine (raster pages read per page)."
    )
    seconds: float | None = Field(default=None, description="Wall time spent on this page.")


class SourceInfo(Frozen):
    path: str = Field(description="Input path as given (or relative to the batch root).")
    sha256: str = Field(description="SHA-256 of the input file's bytes.")
    kind: Literal["pdf", "image", "unknown"]
    size_bytes: int | None = None
    page_count: int | None = Field(default=None, description="Pages in the document (before --pages selection).")


class EngineInfo(Frozen):
    name: str = Field(description="Engine name: ocr, hf, openai, ...")
    model: str | None = Field(default=None, description="Model id, folder or OCR model set.")
    family: Family | None = None
    device: str | None = None
    dtype: str | None = None
    quant: str | None = None
    detail: str | None = Field(default=None, description="Why this device/precision was chosen, versions, ...")


class DocumentResult(Frozen):
    schema_version: str = SCHEMA_VERSION
    docvlm_version: str
    status: Status
    source: SourceInfo
    engine: EngineInfo
    options_digest: str = Field(description="Digest of the options that shape the output (for resume).")
    pages: list[PageResult] = Field(default_factory=list)
    errors: list[ErrorItem] = Field(default_factory=list, description="Document-level errors.")
    seconds: float | None = None


def page_status(lines: list[Line], errors: list[ErrorItem], *, failed: bool = False) -> Status:
    """A page is a failure when it could not be read, partial when it has errors, else success."""
    if failed:
        return "failure"
    return "partial" if errors else "success"


def document_status(pages: list[PageResult], errors: list[ErrorItem]) -> Status:
    if not pages:
        return "failure"
    if all(p.status == "failure" for p in pages):
        return "failure"
    if errors or any(p.status != "success" for p in pages):
        return "partial"
    return "success"


def failed_page(page: object, shown: str, exc: Exception, *, seconds: float | None = None) -> PageResult:
    """The result of a page that could not be read: status "failure" and an error naming file and page.

    `page` is a `docvlm.sources.SourcePage` (index, width_px, height_px, dpi); `shown` the file as displayed.
    """
    index: int = page.index  # type: ignore[attr-defined]
    code = getattr(exc, "code", "error")
    msg = str(exc)
    if not msg.startswith(shown):
        msg = f"{shown} (page {index + 1}): {getattr(exc, 'message', msg)}"
    return PageResult(
        index=index,
        width_px=page.width_px,  # type: ignore[attr-defined]
        height_px=page.height_px,  # type: ignore[attr-defined]
        dpi=page.dpi,  # type: ignore[attr-defined]
        status="failure",
        errors=[ErrorItem(code=code, message=msg, page=index)],
        seconds=None if seconds is None else round(seconds, 4),
    )
