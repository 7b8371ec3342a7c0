"""Searchable PDF: the input with an invisible text layer (render mode 3) laid exactly over each read word.

Reads only the result model, so it works for every engine (ocr, hf, openai).

- PDF input: a copy of the input PDF. Pages that already had a usable text layer are left untouched: those
  whose lines came from it (`PageResult.text_source == "text_layer"`) and those whose own text passes the
  ocr engine's character/garbage rule (`page_has_text`: a born-digital page read by a VLM engine, or a scan
  some other tool already made searchable). Every other page with lines gets our layer. With
  `redo_text=True` our layer is added to every page with lines (meant for runs with `text_layer="ignore"`,
  whose lines are then OCR/model text). Nothing is ever removed from the input: an old invisible OCR layer
  from another tool stays and is searched alongside ours.
  Page images, metadata, bookmarks (outline) and links are kept, because the text is added to the opened
  input document rather than to a rebuilt one.
- Image input: a new PDF, one page per image page, the image drawn full-page at its own resolution
  (embedded DPI when plausible, else `DEFAULT_IMAGE_DPI`), with the same invisible layer.

Word placement: each word's box in visible-page points (`bbox_pdf_pt`, origin top-left, after /Rotate and
CropBox) is mapped into the page's unrotated space through PyMuPDF's page matrices; the font size makes the
font's ascender-to-descender height equal the box height, the baseline sits at the descender above the box
bottom, and a horizontal scale makes the text's width equal the box width, so a viewer's selection and a text
extractor's word box coincide with the printed word. Each word but a line's last is followed by a space
character, so extractors and search split words even where OCR boxes touch. Fonts: Helvetica (base-14, not embedded) for Latin-1
text; otherwise MuPDF's built-in Droid Sans Fallback (CJK, Cyrillic, Greek, ...), embedded and subset.
Characters neither font has are counted in `SearchablePdfReport.words_missing_glyphs`.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from docvlm.datamodel import Box, DocumentResult, PageResult
from docvlm.errors import OutputError
from docvlm.geometry import is_valid_box, page_to_pdf, split_line_into_words
from docvlm.writers.files import atomic_write_bytes

if TYPE_CHECKING:
    import pymupdf

    from docvlm.options import ConvertOptions

DEFAULT_IMAGE_DPI = 300.0
"""Resolution assumed for an image without a plausible DPI tag (scanners' common setting)."""
PLAUSIBLE_IMAGE_DPI = (100.0, 1200.0)
"""An embedded DPI outside this range (72 is the usual meaningless default of cameras and JFIF) is ignored."""
LATIN_FONT = "helv"
FALLBACK_FONT = "cjk"
"""MuPDF's built-in Droid Sans Fallback: CJK, Cyrillic, Greek and more; embedded and subset when used."""
FALLBACK_FONT_NAME = "DvFallback"
PAGE_SIZE_TOLERANCE_PT = 1.0
"""A result whose page size differs from the PDF's visible page by more than this belongs to another file."""


@dataclass(frozen=True)
class PlacedWord:
    """One word to write, its box in PDF points of the visible page (origin top-left)."""

    text: str
    bbox_pdf_pt: Box
    space_after: bool = field(
        default=False, metadata={"doc": "Write a space after the word (not the line's last word)."}
    )


@dataclass(frozen=True)
class SearchablePdfReport:
    """What was written: which pages got a text layer and how many words."""

    pages_with_layer: tuple[int, ...] = field(default=(), metadata={"doc": "0-based page indices."})
    pages_skipped_text_layer: tuple[int, ...] = field(
        default=(), metadata={"doc": "Pages left untouched because they already had a usable text layer."}
    )
    words_written: int = 0
    words_missing_glyphs: int = field(default=0, metadata={"doc": "Words with characters no font here has."})
    fallback_font_used: bool = False


def write_searchable_pdf(
    result: DocumentResult,
    source_path: str | Path,
    out_path: str | Path,
    *,
    redo_text: bool = False,
    password: str | None = None,
) -> SearchablePdfReport:
    """Write a searchable PDF for `result`, converted from `source_path`, atomically to `out_path`.

    Args:
        result: the conversion result (any engine).
        source_path: the input file the result was made from (PDF or image); it must be unchanged.
        out_path: where to write the PDF (temp file in the same folder, then renamed).
        redo_text: also lay our text on pages that already had a usable text layer.
        password: password of an encrypted input PDF (the output keeps its encryption).

    Returns:
        A report of the pages and words written.

    Raises:
        OutputError: the source is missing, changed since conversion, or does not match the result.
    """
    data, report = render_searchable_pdf(result, source_path, redo_text=redo_text, password=password)
    atomic_write_bytes(out_path, data)
    return report


def render_searchable_pdf(
    result: DocumentResult,
    source_path: str | Path,
    *,
    redo_text: bool = False,
    password: str | None = None,
) -> tuple[bytes, SearchablePdfReport]:
    """The searchable PDF's bytes and a report (see `write_searchable_pdf`)."""
    source = Path(source_path)
    shown = result.source.path or str(source)
    if not result.pages:
        raise OutputError("no page was read, so there is no text to lay on the PDF (see the JSON's errors)",
                          path=shown)
    if not source.is_file():
        raise OutputError(f"source file {source} is gone: the PDF output copies it; keep the input", path=shown)
    if result.source.sha256 and _sha256(source) != result.source.sha256:
        raise OutputError(f"{source} changed since it was converted: convert it again", path=shown)
    if result.source.kind == "pdf" or source.suffix.lower() == ".pdf":
        return _pdf_with_layer(result, source, shown, redo_text=redo_text, password=password)
    return _image_pdf(result, source, shown)


# --- PDF input --------------------------------------------------------------------------------------------


def _pdf_with_layer(
    result: DocumentResult, source: Path, shown: str, *, redo_text: bool, password: str | None
) -> tuple[bytes, SearchablePdfReport]:
    import pymupdf

    try:
        doc = pymupdf.open(source, filetype="pdf")
    except Exception as exc:  # noqa: BLE001 - any open failure of the source is this output's error
        raise OutputError(f"cannot open {source} as PDF: {exc}", path=shown) from exc
    with doc:
        if doc.needs_pass and not (password and doc.authenticate(password)):
            raise OutputError(f"{source} is encrypted: pass its password (--password)", path=shown)
        writer = _LayerWriter(doc)
        skipped: list[int] = []
        for page_result in result.pages:
            if not page_result.lines:
                continue
            if not 0 <= page_result.index < doc.page_count:
                raise OutputError(
                    f"the result has page {page_result.index + 1} but the PDF has {doc.page_count}: "
                    "convert it again",
                    path=shown,
                    page=page_result.index,
                )
            page = doc[page_result.index]
            if not redo_text and (page_result.text_source == "text_layer" or page_has_text(page)):
                skipped.append(page_result.index)
                continue
            _check_page_size(page, page_result, shown)
            dpi = page_result.dpi or 72.0 * page_result.width_px / page.rect.width
            writer.add(page, placed_words(page_result, dpi=dpi, prefer_pdf_boxes=True))
        data = writer.finish(garbage=1)
        report = replace(writer.report, pages_skipped_text_layer=tuple(skipped))
    return data, report


def page_has_text(page: pymupdf.Page) -> bool:
    """The page already carries a text layer worth keeping (the ocr engine's character and garbage rule).

    Unlike the engine, a page mostly covered by an image still counts: it is a scan some other tool already
    made searchable, and without `redo_text` we add nothing on top of that (like `ocrmypdf --skip-text`).
    """
    from docvlm.engines.ocr import MAX_GARBAGE_RATIO, MIN_TEXT_LAYER_CHARS
    from docvlm.text_plausibility import judge_words

    text = page.get_text("text")
    chars = [c for c in text if not c.isspace()]
    if len(chars) < MIN_TEXT_LAYER_CHARS:
        return False
    garbage = sum(1 for c in chars if c == "\ufffd" or ord(c) < 0x20)
    return garbage / len(chars) <= MAX_GARBAGE_RATIO and judge_words(text.split()).plausible  # not mojibake


def _check_page_size(page: pymupdf.Page, page_result: PageResult, shown: str) -> None:
    if page_result.width_pt is None or page_result.height_pt is None:
        return
    dw = abs(page.rect.width - page_result.width_pt)
    dh = abs(page.rect.height - page_result.height_pt)
    if dw > PAGE_SIZE_TOLERANCE_PT or dh > PAGE_SIZE_TOLERANCE_PT:
        raise OutputError(
            f"page size {page.rect.width:.1f}x{page.rect.height:.1f} pt differs from the result's "
            f"{page_result.width_pt:.1f}x{page_result.height_pt:.1f} pt: convert the file again",
            path=shown,
            page=page_result.index,
        )


# --- image input ------------------------------------------------------------------------------------------


def image_dpi(image: Any) -> float:
    """The image's embedded DPI when plausible, else `DEFAULT_IMAGE_DPI`."""
    dpi = image.info.get("dpi")
    try:
        x = round(float(dpi[0]), 2) if dpi else 0.0  # PNG stores dots per metre: 100 dpi reads 99.9998
    except (TypeError, ValueError, IndexError):
        x = 0.0
    lo, hi = PLAUSIBLE_IMAGE_DPI
    return x if lo <= x <= hi else DEFAULT_IMAGE_DPI


def _image_pdf(result: DocumentResult, source: Path, shown: str) -> tuple[bytes, SearchablePdfReport]:
    import pymupdf
    from PIL import Image, ImageOps

    try:
        image = Image.open(source)
    except Exception as exc:  # noqa: BLE001
        raise OutputError(f"cannot open {source} as an image: {exc}", path=shown) from exc
    doc = pymupdf.open()
    with image, doc:
        writer = _LayerWriter(doc)
        frames = getattr(image, "n_frames", 1)
        for page_result in result.pages:
            if not 0 <= page_result.index < frames:
                raise OutputError(
                    f"the result has page {page_result.index + 1} but the image has {frames} frame(s)",
                    path=shown,
                    page=page_result.index,
                )
            image.seek(page_result.index)
            dpi = image_dpi(image)
            stream, size = _page_image_stream(image, frames, source, ImageOps)
            if size != (page_result.width_px, page_result.height_px):
                raise OutputError(
                    f"image is {size[0]}x{size[1]} px but the result's page is "
                    f"{page_result.width_px}x{page_result.height_px} px: convert it again",
                    path=shown,
                    page=page_result.index,
                )
            width_pt, height_pt = page_to_pdf((0, 0, size[0], size[1]), dpi)[2:]
            page = doc.new_page(width=width_pt, height=height_pt)
            page.insert_image(page.rect, stream=stream)
            writer.add(page, placed_words(page_result, dpi=dpi, prefer_pdf_boxes=False))
        doc.set_metadata({"title": Path(shown).name, "producer": "docvlm", "creator": "docvlm"})
        data = writer.finish(garbage=3)
    return data, writer.report


def _page_image_stream(image: Any, frames: int, source: Path, image_ops: Any) -> tuple[bytes, tuple[int, int]]:
    """The page image as embeddable bytes: the file itself when it needs no change (no recompression)."""
    orientation = image.getexif().get(0x0112, 1)
    if frames == 1 and orientation in (None, 1) and image.format in ("JPEG", "PNG"):
        return source.read_bytes(), image.size
    frame = image_ops.exif_transpose(image.copy()) if orientation not in (None, 1) else image.copy()
    if frame.mode not in ("RGB", "L", "1"):
        frame = frame.convert("RGB")
    buf = io.BytesIO()
    frame.save(buf, format="PNG")
    return buf.getvalue(), frame.size


# --- words and the text layer -----------------------------------------------------------------------------


def placed_words(page_result: PageResult, *, dpi: float, prefer_pdf_boxes: bool) -> list[PlacedWord]:
    """The page's words in visible-page points; lines without word boxes are split by character share."""
    out: list[PlacedWord] = []
    for line in page_result.lines:
        if line.words:
            items = []
            for w in line.words:
                if len(w.text.split()) > 1:  # a "word" with spaces inside: split it on its own box
                    items.extend((t, b, None) for t, b in split_line_into_words(w.text, w.bbox_page_px))
                else:
                    items.append((w.text.strip(), w.bbox_page_px, w.bbox_pdf_pt))
        else:
            items = [(t, b, None) for t, b in split_line_into_words(line.text, line.bbox_page_px)]
        line_words = []
        for text, box_px, box_pt in items:
            if not text:
                continue
            box = box_pt if (prefer_pdf_boxes and box_pt is not None) else page_to_pdf(box_px, dpi)
            if is_valid_box(box):
                line_words.append(PlacedWord(text=text, bbox_pdf_pt=box, space_after=True))
        if line_words:
            # a real space between words: extractors split on it even when OCR boxes touch
            line_words[-1] = replace(line_words[-1], space_after=False)
        out.extend(line_words)
    return out


class _LayerWriter:
    """Adds invisible words to pages of one document; embeds the fallback font only when a page needs it."""

    def __init__(self, doc: pymupdf.Document) -> None:
        import pymupdf

        self.doc = doc
        self.latin = pymupdf.Font(LATIN_FONT)
        self._fallback: pymupdf.Font | None = None
        self._fallback_missing = False
        self.report = SearchablePdfReport()

    def fallback(self) -> pymupdf.Font | None:
        import pymupdf

        if self._fallback is None and not self._fallback_missing:
            try:
                self._fallback = pymupdf.Font(FALLBACK_FONT)
            except Exception:  # noqa: BLE001 - a MuPDF build without CJK fonts: such words keep '?' glyphs
                self._fallback_missing = True
        return self._fallback

    def add(self, page: pymupdf.Page, words: Sequence[PlacedWord]) -> None:
        import pymupdf

        if not words:
            return
        rot = page.rotation_matrix
        # a direction in the visible frame -> the same direction in unrotated page space (see module doc)
        direction = pymupdf.Matrix(rot.a, rot.b, rot.c, rot.d, 0, 0)
        derotate = page.derotation_matrix
        shape = page.new_shape()
        fallback_inserted = False
        written = missing = 0
        for word in words:
            if all(ord(c) < 256 for c in word.text):
                font, fontname = self.latin, LATIN_FONT
            else:
                fb = self.fallback()
                if fb is None:
                    font, fontname = self.latin, LATIN_FONT
                    missing += 1
                else:
                    if not fallback_inserted:
                        page.insert_font(fontname=FALLBACK_FONT_NAME, fontbuffer=fb.buffer)
                        fallback_inserted = True
                    font, fontname = fb, FALLBACK_FONT_NAME
                    if not all(fb.has_glyph(ord(c)) or c.isspace() for c in word.text):
                        missing += 1
            placement = word_placement(word, font)
            if placement is None:
                continue
            origin_visible, fontsize, x_scale = placement
            origin = pymupdf.Point(origin_visible) * derotate
            morph = pymupdf.Matrix(x_scale, 0, 0, 1, 0, 0) * direction
            text = word.text + " " if word.space_after else word.text
            shape.insert_text(origin, text, fontsize=fontsize, fontname=fontname, render_mode=3,
                              morph=(origin, morph))
            written += 1
        shape.commit(overlay=True)
        r = self.report
        self.report = replace(
            r,
            pages_with_layer=(*r.pages_with_layer, page.number),
            words_written=r.words_written + written,
            words_missing_glyphs=r.words_missing_glyphs + missing,
            fallback_font_used=r.fallback_font_used or fallback_inserted,
        )

    def finish(self, *, garbage: int) -> bytes:
        if self.report.fallback_font_used:
            self.doc.subset_fonts()  # the fallback font is ~3.5 MB whole; its subset is a few KB
        import pymupdf

        # PDF_ENCRYPT_KEEP: an encrypted input stays encrypted with its own passwords (the default would drop it)
        return self.doc.tobytes(garbage=garbage, deflate=True, encryption=pymupdf.PDF_ENCRYPT_KEEP)


def word_placement(word: PlacedWord, font: pymupdf.Font) -> tuple[tuple[float, float], float, float] | None:
    """(baseline origin in visible points, font size, horizontal scale) that fit `word` into its box."""
    x0, y0, x1, y1 = word.bbox_pdf_pt
    ascender, descender = font.ascender, font.descender
    em_height = ascender - descender
    if em_height <= 0:
        return None
    fontsize = (y1 - y0) / em_height
    width = font.text_length(word.text, fontsize=fontsize)
    if fontsize <= 0 or width <= 0:
        return None
    return (x0, y1 + descender * fontsize), fontsize, (x1 - x0) / width


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# --- writer registry entry --------------------------------------------------------------------------------


@dataclass(frozen=True)
class SearchablePdfWriter:
    """`--format pdf`: see the module docstring. `with_options` carries `--redo-text` and `--password`."""

    name: str = "pdf"
    suffix: str = ".pdf"
    redo_text: bool = False
    password: str | None = None

    def with_options(self, options: ConvertOptions) -> SearchablePdfWriter:
        return replace(self, redo_text=bool(getattr(options, "redo_text", False)), password=options.password)

    def write(self, result: DocumentResult, source_path: str | Path | None, out_path: Path) -> None:
        if source_path is None:
            raise OutputError("the PDF output needs the input file, which was not given", path=result.source.path)
        write_searchable_pdf(result, source_path, out_path, redo_text=self.redo_text, password=self.password)
