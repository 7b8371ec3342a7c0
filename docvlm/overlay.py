"""Overlays for visual debugging: boxes with their index drawn over the page image, colored by confidence.

`draw_boxes` works on any page image (reused by other commands); `render_overlays` re-renders the pages of a
result from its source file (or blank pages of the right size when the source is gone) and writes PNGs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

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


INK_LEVEL = 160
"""Grey levels below this are ink (printed text) when a label's place is chosen."""
LABEL_ALPHA = 170
"""Opacity of a label's tag (0-255)."""
LABEL_REACH = 8
"""A tag is placed at most this many tag heights (or widths) away from its box, with a leader line to it."""


def draw_boxes(image: Image.Image, boxes: Sequence[OverlayBox]) -> Image.Image:
    """Return a copy of `image` with each box outlined and its label on a filled tag placed where it hides
    nothing (`place_labels`: outside every box, off other labels, on as little ink as can be found)."""
    out = image.convert("RGB").copy()
    draw = ImageDraw.Draw(out, "RGBA")
    line_w = max(1, round(1.5 * max(out.size) / 1000))
    font = _label_font(out)
    sizes = _label_sizes(draw, boxes, font)
    places = place_labels([b.bbox_page_px for b in boxes], [s[:2] if s else None for s in sizes], image)
    leaders = Image.new("L", out.size, 0)
    leader_draw = ImageDraw.Draw(leaders)
    for box in boxes:
        x0, y0, x1, y1 = box.bbox_page_px
        draw.rectangle((x0, y0, x1, y1), outline=confidence_color(box.confidence) + (255,), width=box.width or line_w)
    for box, size, place in zip(boxes, sizes, places, strict=True):
        if size is None or place is None:
            continue
        color = confidence_color(box.confidence)
        lx0, ly0, lx1, ly1 = place
        x0, y0, x1, y1 = box.bbox_page_px
        if lx1 < x0 - 1 or lx0 > x1 + 1 or ly1 < y0 - 1 or ly0 > y1 + 1:  # not touching its box: a leader line
            tx, ty = min(max(x0, (lx0 + lx1) / 2), x1), min(max(y0, (ly0 + ly1) / 2), y1)
            leader_draw.line(((lx0 + lx1) / 2, (ly0 + ly1) / 2, tx, ty), fill=255, width=1)
        draw.rectangle((lx0, ly0, lx1, ly1), fill=color + (LABEL_ALPHA,))
        draw.text((lx0 + 2 - size[2], ly0 + 2 - size[3]), box.label, fill=(0, 0, 0, 255), font=font)
    if leaders.getbbox() is not None:  # leader lines, dotted, never over text or tags
        import numpy as np

        keep = np.asarray(leaders, dtype=np.uint8) > 0
        keep &= ~text_mask(image)
        keep[::2, ::2] = False
        for (lx0, ly0, lx1, ly1) in (p for p in places if p is not None):
            keep[max(0, int(ly0)):int(ly1) + 1, max(0, int(lx0)):int(lx1) + 1] = False
        out.paste((90, 90, 90), mask=Image.fromarray((keep * 255).astype(np.uint8), "L"))
    return out


def _label_font(image: Image.Image) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    return _font(max(9, round(11 * max(image.size) / 1000)))


def _label_sizes(draw: ImageDraw.ImageDraw, boxes: Sequence[OverlayBox], font: object) -> list:
    """(width, height, text x offset, text y offset) of each box's tag; None for a box without a label."""
    sizes = []
    for box in boxes:
        if box.label:
            tx0, ty0, tx1, ty1 = draw.textbbox((0, 0), box.label, font=font)
            sizes.append((tx1 - tx0 + 4, ty1 - ty0 + 4, tx0, ty0))
        else:
            sizes.append(None)
    return sizes


def label_places(image: Image.Image, boxes: Sequence[OverlayBox]) -> list[Box | None]:
    """The tag rectangles `draw_boxes` draws for `boxes` on `image` (None for a box without a label)."""
    draw = ImageDraw.Draw(image.convert("RGB"))
    sizes = _label_sizes(draw, boxes, _label_font(image))
    return place_labels([b.bbox_page_px for b in boxes], [s[:2] if s else None for s in sizes], image)


def place_labels(
    boxes: Sequence[Box], sizes: Sequence[tuple[float, float] | None], image: Image.Image | None = None
) -> list[Box | None]:
    """Where each box's label tag goes (None for a box without a label), in the image's pixels.

    Candidates hug the box: above or below it (left- or right-aligned), then left or right of it, then the
    same further out, up to `LABEL_REACH` tag heights (`draw_boxes` then joins tag and box by a line). The first choice is a place inside the image that touches no box
    (its own included) and no label placed before; among those, the one on the least ink of `image` (text
    that the boxes do not cover). When every candidate touches something, the one touching least is taken.
    """
    import numpy as np

    width, height = image.size if image is not None else (
        max((b[2] for b in boxes), default=1), max((b[3] for b in boxes), default=1))
    text = None if image is None else text_mask(image)
    ink = None
    if text is not None:
        ink = np.zeros((text.shape[0] + 1, text.shape[1] + 1), dtype=np.int64)
        ink[1:, 1:] = text.cumsum(0).cumsum(1)
    obstacles = np.asarray([tuple(b) for b in boxes], dtype=float).reshape(-1, 4)
    placed: list[Box] = []
    out: list[Box | None] = []
    for (x0, y0, x1, y1), size in zip(boxes, sizes, strict=True):
        if size is None:
            out.append(None)
            continue
        tw, th = size
        best: tuple[float, Box] | None = None
        candidates = _candidates(x0, y0, x1, y1, tw, th) + _row_ends(text, obstacles, x0, y0, x1, y1, tw, th)
        for step, (cx, cy) in enumerate(candidates):
            if cx < 0 or cy < 0 or cx + tw > width or cy + th > height:
                continue
            rect = (cx, cy, cx + tw, cy + th)
            hits = _overlaps(obstacles, rect) + _overlaps(np.asarray(placed, dtype=float).reshape(-1, 4), rect)
            share = _ink_share(ink, rect)
            cost = 1000.0 * hits + 100.0 * (share > 0) + 10.0 * share + 0.01 * step
            if best is None or cost < best[0]:
                best = (cost, rect)
            if cost < 1.0:  # touches nothing and covers no text: the nearest such place
                break
        if best is None:  # the tag is larger than the image: top-left corner
            best = (0.0, (0.0, 0.0, float(tw), float(th)))
        placed.append(best[1])
        out.append(best[1])
    return out


def text_mask(image: Image.Image) -> Any:
    """Boolean array, True on ink (grey below `INK_LEVEL`) and a couple of pixels around it."""
    import numpy as np
    from PIL import ImageFilter

    grey = image.convert("L")
    reach = max(1, round(2 * max(grey.size) / 1000))
    dark = grey.point(lambda v: 255 if v < INK_LEVEL else 0).filter(ImageFilter.MaxFilter(2 * reach + 1))
    return np.asarray(dark, dtype=np.uint8) > 0


def _row_ends(text: Any, obstacles: Any, x0: float, y0: float, x1: float, y1: float, tw: float,
              th: float) -> list[tuple[float, float]]:
    """Tags just past the right end (or before the left end) of everything printed or boxed on the box's row."""
    pad = max(4.0, th / 2)  # clear of the row's last glyph and of a line box drawn a little wider
    band = (obstacles[:, 1] < y1) & (obstacles[:, 3] > y0) if len(obstacles) else None
    right = max([x1] + ([float(obstacles[band, 2].max())] if band is not None and band.any() else []))
    left = min([x0] + ([float(obstacles[band, 0].min())] if band is not None and band.any() else []))
    if text is not None:
        rows = text[max(0, int(y0)):max(int(y0) + 1, int(y1)), :].any(axis=0)
        cols = rows.nonzero()[0]
        if len(cols):
            right, left = max(right, float(cols[-1])), min(left, float(cols[0]))
    return [(right + pad, y0), (right + pad, y1 - th), (left - pad - tw, y0)]


def _candidates(x0: float, y0: float, x1: float, y1: float, tw: float, th: float) -> list[tuple[float, float]]:
    """Top-left corners of label tags around a box, nearest first; beside the box a little apart from it (the
    text line a field was read from may be drawn a little wider than the field)."""
    out = []
    side = max(2.0, th / 3)
    for k in range(LABEL_REACH):
        gap = k * th
        out += [(x0, y0 - th - gap), (x0, y1 + gap), (x1 - tw, y0 - th - gap), (x1 - tw, y1 + gap),
                (x0 - tw - side - gap, y0), (x1 + side + gap, y0), (x0 - tw - side - gap, y1 - th),
                (x1 + side + gap, y1 - th)]
    return out


def _overlaps(rects: Any, rect: Box) -> int:
    """How many of `rects` (an (n, 4) array) share area with `rect` (touching edges do not count)."""
    if not len(rects):
        return 0
    x0, y0, x1, y1 = rect
    return int(((rects[:, 0] < x1) & (rects[:, 2] > x0) & (rects[:, 1] < y1) & (rects[:, 3] > y0)).sum())


def _ink_share(ink: Any, rect: Box) -> float:
    """Share of ink pixels under `rect` (0 without an image)."""
    if ink is None:
        return 0.0
    h, w = ink.shape[0] - 1, ink.shape[1] - 1
    x0, y0 = max(0, int(rect[0])), max(0, int(rect[1]))
    x1, y1 = min(w, int(rect[2]) + 1), min(h, int(rect[3]) + 1)
    if x1 <= x0 or y1 <= y0:
        return 0.0
    total = ink[y1, x1] - ink[y0, x1] - ink[y1, x0] + ink[y0, x0]
    return float(total) / ((x1 - x0) * (y1 - y0))


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
