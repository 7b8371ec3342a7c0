"""Overlays for visual debugging: boxes with their index drawn over the page image, colored by confidence.

`draw_boxes` works on any page image (reused by other commands); `render_overlays` re-renders the pages of a
result from its source file (or blank pages of the right size when the source is gone) and writes PNGs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from PIL import Image, ImageDraw, ImageFont

from docvlm.writers import atomic_write_bytes, output_path

if TYPE_CHECKING:
    from docvlm.datamodel import Box, DocumentResult, PageResult

UNKNOWN_COLOR = (40, 110, 230)
"""Boxes without a confidence are blue."""


@dataclass(frozen=True)
class OverlayBox:
    """A box to draw, in page pixels of the image it is drawn on."""

    bbox_page_px: Box
    label: str
    confidence: float | None = None
    width: int | None = None


@dataclass(frozen=True)
class OverlayPage:
    """One written overlay image."""

    page_index: int
    png_path: Path
    blank: bool
    note: str | None = None


def confidence_color(confidence: float | None) -> tuple[int, int, int]:
    """Red (0) -> yellow (0.5) -> green (1); blue when unknown."""
    if confidence is None:
        return UNKNOWN_COLOR
    c = min(1.0, max(0.0, float(confidence)))
    if c < 0.5:
        return (220, int(40 + 360 * c), 40)
    return (int(220 - 400 * (c - 0.5)), 200, 40)


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # pragma: no cover - Pillow < 10.1
        return ImageFont.load_default()


def draw_boxes(image: Image.Image, boxes: Sequence[OverlayBox]) -> Image.Image:
    """Return a copy of `image` with each box outlined and its label on a filled tag at the box's top-left."""
    out = image.convert("RGB").copy()
    draw = ImageDraw.Draw(out, "RGBA")
    scale = max(out.size) / 1000
    line_w = max(1, round(1.5 * scale))
    font = _font(max(9, round(11 * scale)))
    for box in boxes:
        x0, y0, x1, y1 = box.bbox_page_px
        color = confidence_color(box.confidence)
        draw.rectangle((x0, y0, x1, y1), outline=color + (255,), width=box.width or line_w)
        if box.label:
            tx0, ty0, tx1, ty1 = draw.textbbox((0, 0), box.label, font=font)
            tw, th = tx1 - tx0 + 4, ty1 - ty0 + 4
            ly = y0 - th if y0 - th >= 0 else y0
            draw.rectangle((x0, ly, x0 + tw, ly + th), fill=color + (170,))
            draw.text((x0 + 2 - tx0, ly + 2 - ty0), box.label, fill=(0, 0, 0, 255), font=font)
    return out


def page_boxes(page: PageResult, *, words: bool = False) -> list[OverlayBox]:
    """Line boxes labelled by line index (and word boxes labelled 'line.word' when `words`)."""
    boxes = []
    for i, line in enumerate(page.lines):
        boxes.append(OverlayBox(line.bbox_page_px, str(i), line.confidence))
        if words:
            for j, word in enumerate(line.words):
                conf = word.confidence if word.confidence is not None else line.confidence
                boxes.append(OverlayBox(word.bbox_page_px, f"{i}.{j}", conf, width=1))
    return boxes


def render_overlays(
    result: DocumentResult,
    source_path: str | Path | None,
    out_dir: str | Path,
    *,
    relpath: str | None = None,
    words: bool = False,
    password: str | None = None,
    max_page_pixels: int | None = None,
) -> list[OverlayPage]:
    """Draw every page of `result` over its re-rendered source page and write `out_dir/<relpath>.page-N.png`.

    The source is re-rendered at the result's DPI. When it is missing or unreadable, or when its sha256 no
    longer matches, the boxes are drawn on a blank page of the recorded size (and `OverlayPage.note` says why).

    Raises:
        PageTooLargeError: a page of `result` claims more pixels than `max_page_pixels` (default: rendering's
            cap): nothing is drawn.
    """
    return write_page_overlays(
        result, source_path, out_dir, lambda page: page_boxes(page, words=words), suffix=".page",
        relpath=relpath, password=password, max_page_pixels=max_page_pixels,
    )


def check_page_sizes(result: DocumentResult, max_page_pixels: int | None = None) -> int:
    """The pixel cap for drawing `result` (`max_page_pixels`, default: rendering's `--max-page-pixels`), after
    checking that no page of it claims more: a result file's page size is not trusted (a damaged or hostile
    file claiming 200000x200000 px would need tens of GB).

    Raises:
        PageTooLargeError: naming the page, its claimed size and the cap.
    """
    from docvlm.errors import PageTooLargeError
    from docvlm.options import ConvertOptions

    cap = max_page_pixels or ConvertOptions.model_fields["max_page_pixels"].default
    for page in result.pages:
        pixels = max(1, page.width_px) * max(1, page.height_px)
        if pixels > cap:
            raise PageTooLargeError(
                f"page {page.index + 1} claims {page.width_px}x{page.height_px} px ({pixels:,} pixels), over the "
                f"cap of {cap:,}: nothing drawn. Raise --max-page-pixels if the page is really that large",
            )
    return cap


def write_page_overlays(
    result: DocumentResult,
    source_path: str | Path | None,
    out_dir: str | Path,
    boxes_of: Callable[[PageResult], Sequence[OverlayBox]],
    *,
    suffix: str,
    relpath: str | None = None,
    password: str | None = None,
    max_page_pixels: int | None = None,
) -> list[OverlayPage]:
    """Draw `boxes_of(page)` over each re-rendered page and write `out_dir/<relpath><suffix>-NNNN.png` atomically.

    Shared by conversion and extraction overlays (`result` needs `.source` and `.pages` with page geometry).

    Raises:
        PageTooLargeError: see `check_page_sizes`.
    """
    from io import BytesIO

    cap = check_page_sizes(result, max_page_pixels)
    images, note = source_images(result, source_path, password, max_page_pixels=cap)
    written = []
    stem = relpath or Path(result.source.path).name
    for page in result.pages:
        image = images.get(page.index)
        blank = image is None
        page_note = note
        if image is None:
            image = Image.new("RGB", (max(1, page.width_px), max(1, page.height_px)), "white")
        elif image.size != (page.width_px, page.height_px):
            page_note = f"re-rendered page is {image.size[0]}x{image.size[1]}, result says " \
                        f"{page.width_px}x{page.height_px}: resized"
            image = image.resize((page.width_px, page.height_px))
        drawn = draw_boxes(image, boxes_of(page))
        png = output_path(out_dir, stem, f"{suffix}-{page.index + 1:04d}.png")
        buf = BytesIO()
        drawn.save(buf, format="PNG")
        atomic_write_bytes(png, buf.getvalue())
        written.append(OverlayPage(page.index, png, blank, page_note))
    return written


def source_images(
    result: DocumentResult, source_path: str | Path | None, password: str | None, *,
    max_page_pixels: int = 10**10,
) -> tuple[dict[int, Image.Image], str | None]:
    """The pages of `result` re-rendered from `source_path` at the result's DPI, by page index, and a note.

    Duck-typed: any result with `.source` (path, sha256) and `.pages` (index, dpi) works, e.g. an
    `ExtractionResult`. Returns no images and a note saying why (drawn on blank pages) when the source is
    missing, changed since (sha256 differs) or cannot be rendered.
    """
    if source_path is None or not Path(source_path).is_file():
        return {}, f"source file {source_path or result.source.path} not found: drawn on blank pages"
    from docvlm.options import make_options
    from docvlm.pipeline import sha256_file
    from docvlm.sources import open_document

    note = None
    if result.source.sha256 and sha256_file(source_path) != result.source.sha256:
        return {}, f"{source_path} changed since it was converted (sha256 differs): drawn on blank pages"
    dpis = {p.dpi for p in result.pages if p.dpi}
    wanted = {p.index for p in result.pages}
    if not wanted:
        return {}, None
    try:
        options = make_options(
            dpi=round(dpis.pop()) if dpis else 200,
            pages=",".join(str(i + 1) for i in sorted(wanted)),
            password=password,
            max_page_pixels=max_page_pixels,
        )
        images = {}
        with open_document(source_path, options) as doc:
            for page in doc.pages():
                if page.index in wanted:
                    images[page.index] = page.render()
        return images, note
    except Exception as exc:  # noqa: BLE001 - an overlay of an unreadable source is still drawn, on blank pages
        return {}, f"cannot re-render {source_path}: {exc}: drawn on blank pages"


def find_source(result: DocumentResult, result_path: str | Path) -> Path | None:
    """Where the source of a result file is now: its recorded path (from here or next to the result), else the
    absolute path recorded in a run summary of an enclosing output folder. None when it cannot be found."""
    from docvlm.summary import BatchSummary, summary_files

    recorded = Path(result.source.path)
    result_path = Path(result_path).resolve()
    for candidate in (recorded, result_path.parent / recorded):
        if candidate.is_file():
            return candidate
    for folder in list(result_path.parents)[:8]:
        for summary_file in summary_files(folder):
            try:
                summary = BatchSummary.model_validate_json(summary_file.read_bytes())
            except Exception:  # noqa: BLE001 - an unreadable summary just does not help
                continue
            rel = result_path.relative_to(folder).as_posix()
            for rec in summary.documents:
                if rel in rec.outputs and rec.abspath and Path(rec.abspath).is_file():
                    return Path(rec.abspath)
    return None
