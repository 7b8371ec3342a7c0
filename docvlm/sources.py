"""Sources and rasterization: input paths -> documents -> pages with their geometry.

Interface used by every later stage (engines, planner, pipeline):

- `expand_inputs(paths) -> list[InputFile]`: files, folders (recursive), several paths; stable order
  (`walk_inputs` also says what it skipped and why).
- `open_document(path, options, display_path=None) -> SourceDocument` (a context manager); raises `InputError`
  subclasses naming the file (as `display_path`) for corrupt / encrypted / empty / unsupported inputs.
- `SourceDocument.pages() -> Iterator[SourcePage]` honours `options.pages` and `options.max_pages`.
- `SourcePage.render() -> PIL.Image.Image` (RGB, exactly width_px x height_px, the page frame); raises
  `PageTooLargeError` beyond `options.max_page_pixels`.
- `SourcePage.text_layer() -> TextLayer | None`: PDF words in page pixels (already rotated and cropped into
  the visible frame), with font sizes; None for images.

PyMuPDF frames (verified by tests/test_sources.py on pages with /Rotate 0/90/180/270 and an offset CropBox):
`page.get_text("words")` and `page.get_image_info()` give boxes in the *unrotated* page, origin at the
top-left of the CropBox (the CropBox offset is already removed, y points down). `page.rotation_matrix` maps
that frame into the visible frame (`page.rect`, origin top-left, what a viewer shows and what `get_pixmap`
renders). So: visible pdf_pt = word_rect * page.rotation_matrix, then page_px = pdf_pt * dpi / 72
(docvlm.geometry). The pixel size is that of `(page.rect * zoom).irect`, exactly what `get_pixmap` returns.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import os
import re
import unicodedata
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from docvlm.datamodel import SourceInfo
from docvlm.errors import (
    CorruptInputError,
    EmptyInputError,
    EncryptedInputError,
    InputError,
    PageTooLargeError,
    UnsupportedInputError,
    UsageError,
)
from docvlm.geometry import pdf_to_page

if TYPE_CHECKING:
    from PIL import Image

    from docvlm.datamodel import Box
    from docvlm.options import ConvertOptions
    from docvlm.textsize import TextSizeResult


@dataclass(frozen=True)
class InputFile:
    path: Path = field(metadata={"doc": "Absolute or as-given path of the input file."})
    relpath: str = field(
        metadata={"doc": "Path relative to the input root it was found under (for outputs)."}
    )


@dataclass(frozen=True)
class TextWord:
    """One word of a PDF text layer, in page pixels of the visible (rotated, cropped) page."""

    text: str
    bbox_page_px: Box
    font_size_pt: float
    block: int
    line: int
    bold: bool = False
    glued: bool = False  # split off the previous word at a glyph gap: the PDF had no space between them


@dataclass(frozen=True)
class TextLayer:
    words: tuple[TextWord, ...]
    char_count: int
    garbage_ratio: float  # share of characters that are replacement chars / unmapped glyphs / controls
    image_coverage: float  # share of the page area covered by images (a scanned page with invisible OCR text)


Kind = Literal["pdf", "image"]

SUPPORTED_EXTENSIONS: dict[str, str] = {
    ".pdf": "PDF",
    ".png": "PNG",
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".tif": "TIFF",
    ".tiff": "TIFF",
    ".webp": "WebP",
    ".bmp": "BMP",
}
SUPPORTED_TYPES = "PDF, PNG, JPEG, TIFF (multi-page too), WebP, BMP"
_IMAGE_FORMATS = {"PNG", "JPEG", "TIFF", "WEBP", "BMP"}

# --- file type detection ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FileType:
    """What a file's first bytes say it is."""

    kind: Kind | None = field(metadata={"doc": "pdf or image when docvlm can read it, else None."})
    name: str = field(metadata={"doc": "Human name: 'PDF', 'PNG image', 'HTML page', ..."})


def sniff_file_type(head: bytes) -> FileType:
    """Identify a file from its first bytes (extension is not trusted)."""
    if b"%PDF-" in head[:1024]:
        return FileType("pdf", "PDF")
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return FileType("image", "PNG image")
    if head.startswith(b"\xff\xd8\xff"):
        return FileType("image", "JPEG image")
    if head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return FileType("image", "TIFF image")
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return FileType("image", "WebP image")
    if head[:2] == b"BM" and len(head) >= 26:
        return FileType("image", "BMP image")
    for magic, name in (
        (b"GIF8", "GIF image"),
        (b"PK\x03\x04", "ZIP archive (or DOCX/XLSX/ODT)"),
        (b"\xd0\xcf\x11\xe0", "legacy Microsoft Office file"),
        (b"\x1f\x8b", "gzip archive"),
        (b"7z\xbc\xaf", "7-Zip archive"),
        (b"Rar!", "RAR archive"),
        (b"\x00\x00\x00\x0cjP  ", "JPEG 2000 image"),
        (b"{\\rtf", "RTF document"),
        (b"%!PS", "PostScript file"),
    ):
        if head.startswith(magic):
            return FileType(None, name)
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in (b"heic", b"heix", b"mif1", b"msf1", b"avif"):
            return FileType(None, "HEIC/AVIF image")
        return FileType(None, "MP4/QuickTime media file")
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if text.startswith((b"<!doctype html", b"<html", b"<head", b"<body")):
        return FileType(None, "HTML page (a download that returned a web page?)")
    if text.startswith(b"<?xml") or text.startswith(b"<svg"):
        return FileType(None, "XML/SVG file")
    if text.startswith((b"{", b"[")):
        return FileType(None, "JSON or text file")
    try:
        decoded = head.decode("utf-8")
    except UnicodeDecodeError:
        decoded = None
    if decoded is not None and all(c.isprintable() or c in "\r\n\t" for c in decoded):
        return FileType(None, "plain text file")
    return FileType(None, f"unknown binary data (starts with {head[:8].hex(' ')})")


# --- inputs -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SkippedPath:
    """A path the input walk passed over on purpose, listed in the run summary (`BatchSummary.skipped`)."""

    path: str = field(metadata={"doc": "The path as found under the folder given."})
    reason: str = field(metadata={"doc": "Why it was not read: hidden, symlinked folder, unreadable, ..."})


@dataclass(frozen=True)
class InputWalk:
    """What `walk_inputs` found: the input files, and what it skipped (with why)."""

    files: list[InputFile]
    skipped: list[SkippedPath]
    unsupported: int = field(default=0, metadata={"doc": "Files inside folders with an unsupported extension."})


MAX_SKIPPED_LISTED = 1000
"""At most this many skipped paths are listed (then one entry says how many more)."""
SKIP_HIDDEN = "hidden (name starts with '.')"
SKIP_SYMLINKED_FOLDER = "symbolic link to a folder (not followed: it could loop or leave the input folder)"
SKIP_UNREADABLE = "folder cannot be read"
SKIP_OWN_OUTPUT = "docvlm's output folder (-o / --overlay lies inside the inputs; its files are never read)"


def expand_inputs(paths: Sequence[str | Path]) -> list[InputFile]:
    """The input files of `walk_inputs(paths)` (what it skipped is dropped)."""
    return walk_inputs(paths).files


def walk_inputs(paths: Sequence[str | Path], *, exclude: Sequence[str | Path] = ()) -> InputWalk:
    """Expand files and folders (recursively) into input files, in a stable order.

    Args:
        paths: files and folders. A file named explicitly is always taken (so an unsupported one gets a clear
            error later); inside folders, hidden entries, symbolic links to folders, unreadable folders and
            the folders in `exclude` are skipped (and listed in `InputWalk.skipped`), files without a
            supported extension are counted. A file that cannot be resolved (a symlink loop) is still an input:
            opening it fails that document alone, with the reason.
        exclude: folders never read (docvlm's own output and overlay folders).

    Returns:
        One `InputFile` per file; `relpath` is relative to the folder given, or the file name for a file.

    Raises:
        InputError: a path does not exist.
    """
    out: list[InputFile] = []
    skipped: list[SkippedPath] = []
    unsupported = 0
    seen: set[Path] = set()
    excluded = {_resolved(Path(e)) for e in exclude}
    for given in paths:
        p = Path(given)
        if p.is_dir():
            found: list[tuple[str, Path]] = []

            def unreadable(err: OSError, found_in: Path = p) -> None:
                where = err.filename or str(found_in)
                skipped.append(SkippedPath(str(where), f"{SKIP_UNREADABLE}: {err.strerror or err}"))

            for dirpath, dirnames, filenames in os.walk(p, onerror=unreadable):
                here = Path(dirpath)
                keep = []
                for d in sorted(dirnames):
                    full = here / d
                    if d.startswith("."):
                        skipped.append(SkippedPath(str(full), SKIP_HIDDEN))
                    elif full.is_symlink():
                        skipped.append(SkippedPath(str(full), SKIP_SYMLINKED_FOLDER))
                    elif _resolved(full) in excluded:
                        skipped.append(SkippedPath(str(full), SKIP_OWN_OUTPUT))
                    else:
                        keep.append(d)
                dirnames[:] = keep
                for name in filenames:
                    full = here / name
                    if name.startswith("."):
                        skipped.append(SkippedPath(str(full), SKIP_HIDDEN))
                    elif Path(name).suffix.lower() not in SUPPORTED_EXTENSIONS:
                        unsupported += 1
                    else:
                        found.append((full.relative_to(p).as_posix(), full))
            for rel, full in sorted(found):
                key = _resolved(full)
                if key not in seen:
                    seen.add(key)
                    out.append(InputFile(path=full, relpath=rel))
        elif p.exists() or p.is_symlink():
            key = _resolved(p)
            if key not in seen:
                seen.add(key)
                out.append(InputFile(path=p, relpath=p.name))
        else:
            raise InputError("no such file or folder: check the path", path=str(given))
    skipped.sort(key=lambda s: s.path)
    if len(skipped) > MAX_SKIPPED_LISTED:  # a folder of 100,000 dot-files must not bloat the run summary
        more = len(skipped) - MAX_SKIPPED_LISTED
        skipped = [*skipped[:MAX_SKIPPED_LISTED], SkippedPath(f"... {more} more", "not listed")]
    return InputWalk(out, skipped, unsupported)


def _resolved(path: Path) -> Path:
    """`path.resolve()`, or its absolute form when it cannot be resolved (a symlink loop raises)."""
    try:
        return path.resolve()
    except (OSError, RuntimeError):
        return path.absolute()


_RANGE = re.compile(r"(\d+)\s*-\s*(\d*)")


def parse_page_ranges(spec: str) -> list[tuple[int, int | None]]:
    """The 1-based inclusive ranges of a page selection such as '1-3,7' or '5-' (None: to the end).

    Checks the syntax only, so it can run before any document is opened.

    Raises:
        UsageError: bad syntax, page 0, a reversed range.
    """
    ranges: list[tuple[int, int | None]] = []
    for raw in spec.split(","):
        part = raw.strip()
        if not part:
            raise UsageError(f"--pages {spec!r}: empty item between commas; use e.g. '1-3,7'")
        m = _RANGE.fullmatch(part)
        if m:
            first, last = int(m.group(1)), (int(m.group(2)) if m.group(2) else None)
        elif part.isdigit():
            first = last = int(part)
        else:
            raise UsageError(
                f"--pages {spec!r}: cannot read {part!r}; use page numbers and ranges like '1-3,7,10-'"
            )
        if first == 0 or last == 0:
            raise UsageError(f"--pages {spec!r}: pages are numbered from 1, not 0")
        if last is not None and last < first:
            raise UsageError(f"--pages {spec!r}: range {part!r} is reversed; write {last}-{first}")
        ranges.append((first, last))
    return ranges


def parse_page_selection(spec: str | None, page_count: int) -> list[int]:
    """Parse a 1-based page selection such as '1-3,7' or '5-' into the sorted 0-based indices of the pages
    that exist; selected pages beyond the document are left out (`page_selection_note` says which).

    Raises:
        UsageError: bad syntax, page 0, a reversed range, or no selected page exists in the document.
    """
    if spec is None or not spec.strip():
        return list(range(page_count))
    chosen: set[int] = set()
    for first, last in parse_page_ranges(spec):
        chosen.update(range(first - 1, min(page_count, last if last is not None else page_count)))
    if not chosen:
        raise UsageError(
            f"--pages {spec!r}: none of the selected pages exists; the document has {page_count} page(s)"
        )
    return sorted(chosen)


def page_selection_note(spec: str | None, page_count: int | None) -> str | None:
    """A warning when `spec` selects pages beyond a document of `page_count` pages (they are skipped)."""
    if spec is None or not spec.strip() or page_count is None:
        return None
    beyond = [(max(first, page_count + 1), last) for first, last in parse_page_ranges(spec)
              if last is not None and last > page_count]
    if not beyond:
        return None
    named = ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in sorted(set(beyond)))
    return (f"--pages {spec}: page(s) {named} are beyond the document's {page_count} page(s); "
            "the selected pages that exist were read")


def check_page_selection(spec: str | None) -> None:
    """Check the syntax of a page selection before any document is opened (for the CLI and the batch).

    Raises:
        UsageError: see `parse_page_ranges`.
    """
    if spec is not None and spec.strip():
        parse_page_ranges(spec)


# --- pages and documents ------------------------------------------------------------------------------------


class SourcePage:
    """One page of a source document with its geometry. `render()` and `text_layer()` do the work lazily."""

    path: str
    index: int
    kind: Kind
    width_px: int
    height_px: int
    dpi: float | None
    width_pt: float | None
    height_pt: float | None
    rotation: int

    def __init__(
        self,
        *,
        path: str,
        index: int,
        kind: Kind,
        width_px: int,
        height_px: int,
        dpi: float | None,
        max_page_pixels: int,
        width_pt: float | None = None,
        height_pt: float | None = None,
        rotation: int = 0,
    ) -> None:
        self.path = path
        self.index = index
        self.kind = kind
        self.width_px = width_px
        self.height_px = height_px
        self.dpi = dpi
        self.width_pt = width_pt
        self.height_pt = height_pt
        self.rotation = rotation
        self.max_page_pixels = max_page_pixels

    def __repr__(self) -> str:
        return (
            f"SourcePage({self.path!r}, index={self.index}, kind={self.kind!r}, "
            f"{self.width_px}x{self.height_px}px, dpi={self.dpi}, rotation={self.rotation})"
        )

    @property
    def pixel_count(self) -> int:
        return self.width_px * self.height_px

    def check_size(self) -> None:
        """Raise `PageTooLargeError` when the page is over the pixel cap (checked before any rendering)."""
        if self.pixel_count > self.max_page_pixels:
            how = f" at {self.dpi:g} dpi" if self.dpi else ""
            lower = " or lower --dpi" if self.dpi else ""
            raise PageTooLargeError(
                f"page is {self.width_px}x{self.height_px} = {self.pixel_count:,} pixels{how}, "
                f"over the cap of "
                f"{self.max_page_pixels:,}: raise --max-page-pixels{lower} to read it",
                path=self.path,
                page=self.index,
            )

    _image: Image.Image | None = None
    text_size: TextSizeResult | None = None
    """The page's text-size estimate (docvlm.textsize.estimate_text_size), kept so no caller computes it twice."""

    def preview(self, area: int) -> Image.Image:
        """A grayscale copy of the whole page of about `area` pixels (at least that many where the page has
        them), made as cheaply as the source allows: from the kept rendering when there is one, else by the
        subclass (JPEG draft decode, MuPDF at a lower zoom). Callers resample it to the size they need.

        Raises:
            PageTooLargeError, CorruptInputError: as `render()`.
        """
        if self._image is None:
            reduced = self._preview(area)
            if reduced is not None:
                return reduced
        return self.render().convert("L")

    def _preview(self, area: int) -> Image.Image | None:
        """A subclass's cheap reduced grayscale copy of the page, or None to reduce the full rendering."""
        return None

    def render_at(self, scale: float) -> tuple[Image.Image, float]:
        """The whole page in RGB at `scale` x its pixel size or a little more, as cheaply as the source allows
        (MuPDF straight at that zoom, a JPEG decoded reduced), with the scale it has (image px per page px).
        The planner cuts and resizes the tiles from it, so a page is never rasterized at --dpi only to be
        shrunk. Default: the full rendering (scale 1).

        Raises:
            PageTooLargeError, CorruptInputError: as `render()` (the cap applies to what is rasterized).
        """
        if self._image is None:
            reduced = self._render_at(scale)
            if reduced is not None:
                return reduced, reduced.width / self.width_px
        return self.render(), 1.0

    def _render_at(self, scale: float) -> Image.Image | None:
        return None

    def render_sized(self, size: tuple[int, int]) -> Image.Image:
        """The whole page in RGB at exactly `size` (w, h): a one-tile plan's tile. PDF pages are rendered by
        MuPDF straight at that size; other pages are rendered at the nearest cheap scale and resized once."""
        from PIL import Image as PILImage

        image, _ = self.render_at(max(size[0] / self.width_px, size[1] / self.height_px))
        if image.size == tuple(size):
            return image if image.mode == "RGB" else image.convert("RGB")
        rgb = image if image.mode == "RGB" else image.convert("RGB")
        return rgb.resize(tuple(size), PILImage.Resampling.BICUBIC)

    def render(self) -> Image.Image:
        """The page as an RGB image of exactly width_px x height_px, rendered once: the engine, the planner
        and the layout stage get the same image (treat it as read-only) until `release()`.

        Raises:
            PageTooLargeError: the page is over `options.max_page_pixels` (nothing is rendered).
            CorruptInputError: the page's data is damaged.
        """
        if self._image is None:
            self._image = self._render()
        return self._image

    def release(self) -> None:
        """Drop the kept rendering (the pipeline calls this once the page's result is complete)."""
        self._image = None

    def _render(self) -> Image.Image:
        raise NotImplementedError

    def text_layer(self) -> TextLayer | None:
        """The PDF text layer in visible page pixels; None for images."""
        return None

    def pdf_page(self):  # -> pymupdf.Page | None
        """The PyMuPDF page (drawings, rulings, raw text) for PDF pages; None for images."""
        return None


class SourceDocument:
    """An opened input document (a context manager)."""

    path: str
    kind: Kind
    sha256: str
    size_bytes: int
    page_count: int
    format_name: str

    def __init__(
        self,
        *,
        path: str,
        kind: Kind,
        sha256: str,
        size_bytes: int,
        page_count: int,
        options: ConvertOptions,
        format_name: str,
    ) -> None:
        self.path = path
        self.kind = kind
        self.sha256 = sha256
        self.size_bytes = size_bytes
        self.page_count = page_count
        self.options = options
        self.format_name = format_name

    def __enter__(self) -> SourceDocument:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def info(self, display_path: str | None = None) -> SourceInfo:
        return SourceInfo(
            path=display_path or self.path,
            sha256=self.sha256,
            kind=self.kind,
            size_bytes=self.size_bytes,
            page_count=self.page_count,
        )

    def selected_indices(self) -> list[int]:
        """0-based indices of the pages chosen by `options.pages` and `options.max_pages`."""
        try:
            chosen = parse_page_selection(self.options.pages, self.page_count)
        except UsageError as exc:
            raise UsageError(exc.message, path=self.path) from None
        if self.options.max_pages is not None:
            chosen = chosen[: self.options.max_pages]
        return chosen

    def pages(self) -> Iterator[SourcePage]:
        for index in self.selected_indices():
            yield self.page(index)

    def page(self, index: int) -> SourcePage:
        raise NotImplementedError

    def close(self) -> None:
        pass


# --- PDF ----------------------------------------------------------------------------------------------------

# MuPDF repairs what it can and reports damage only as warnings; these mean the page's data was not all there.
_DAMAGE_PATTERNS = (
    "zlib error",
    "read error",
    "bad xref",
    "object out of range",
    "cannot find object",
    "premature end",
    "truncated",
    "unexpected eof",
    "non-page object",
    "cannot load object",
    "invalid page object",
)
_REPAIRED_DAMAGE_PATTERNS = ("length incorrect", "syntax error", "expected object number")


def _damage(messages: str, repaired: bool) -> str | None:
    """The first MuPDF message that says page data is damaged, or None."""
    patterns = _DAMAGE_PATTERNS + (_REPAIRED_DAMAGE_PATTERNS if repaired else ())
    for line in messages.splitlines():
        low = line.lower()
        if any(p in low for p in patterns):
            return line.strip()
    return None


class PdfPage(SourcePage):
    def __init__(
        self, doc: PdfDocument, index: int, *, load_error: str | None = None, **geometry: object
    ) -> None:
        super().__init__(
            path=doc.path, index=index, kind="pdf", max_page_pixels=doc.options.max_page_pixels, **geometry
        )  # type: ignore[arg-type]
        self._doc = doc
        self._load_error = load_error
        self._text_layer: TextLayer | None = None

    def _load(self):  # -> pymupdf.Page
        if self._load_error:
            raise CorruptInputError(
                f"page is damaged and cannot be read: {self._load_error}", path=self.path, page=self.index
            )
        try:
            return self._doc.fitz.load_page(self.index)
        except Exception as exc:  # noqa: BLE001 - MuPDF raises plain RuntimeError/ValueError for damaged pages
            raise CorruptInputError(
                f"page is damaged and cannot be read: {exc}", path=self.path, page=self.index
            ) from None

    def _check_damage(self, what: str) -> None:
        import pymupdf

        found = _damage(pymupdf.TOOLS.mupdf_warnings(reset=True), self._doc.repaired)
        if found:
            raise CorruptInputError(
                f"page data is damaged or truncated ({what} reported: {found}); repair the file (e.g. "
                "`qpdf in.pdf out.pdf` or re-export it) and try again",
                path=self.path,
                page=self.index,
            )

    def _render(self) -> Image.Image:
        from PIL import Image

        self.check_size()
        zoom = self.dpi / 72.0  # type: ignore[operator]
        img = self._pixmap_image(zoom, zoom)
        if img.size != (self.width_px, self.height_px):  # never expected: both come from the same rounding
            canvas = Image.new("RGB", (self.width_px, self.height_px), "white")
            canvas.paste(img, (0, 0))
            img = canvas
        return img

    def _preview(self, area: int) -> Image.Image | None:
        """MuPDF renders the page in gray straight at the zoom that gives `area` pixels (None when that is
        the page's own --dpi or more: the full rendering is as cheap and is kept for the tiles)."""

        if not self.width_pt or not self.height_pt:
            return None
        zoom = math.sqrt(area / (self.width_pt * self.height_pt))
        if zoom >= self.dpi / 72.0 * PREVIEW_MAX_SHARE:  # type: ignore[operator]
            return None
        self.check_size()
        return self._pixmap_image(zoom, zoom, gray=True)

    def render_sized(self, size: tuple[int, int]) -> Image.Image:
        """MuPDF renders the page straight at `size` (one zoom per axis): no resize afterwards."""
        from PIL import Image as PILImage

        if self._image is not None or not self.width_pt or not self.height_pt:
            return super().render_sized(size)
        image = self._render_matrix(size[0] / self.width_pt, size[1] / self.height_pt)
        if image.size != tuple(size):  # MuPDF rounds the pixmap's edges outwards: at most a pixel off
            image = image.resize(tuple(size), PILImage.Resampling.BICUBIC)
        return image

    def _render_at(self, scale: float) -> Image.Image | None:
        """MuPDF renders the page straight at `scale` x --dpi (up or down); the pixel cap applies to that."""
        if abs(scale - 1.0) < 1e-6:
            return None
        zoom = self.dpi / 72.0 * scale  # type: ignore[operator]
        return self._render_matrix(zoom, zoom)

    def _render_matrix(self, zx: float, zy: float) -> Image.Image:
        import pymupdf

        rect = pymupdf.Rect(0, 0, self.width_pt or 0, self.height_pt or 0) * pymupdf.Matrix(zx, zy)
        if rect.irect.width * rect.irect.height > self.max_page_pixels:
            self.check_size()  # the message names the page's own size and the options to change
            raise PageTooLargeError(f"page rendered at {rect.irect.width}x{rect.irect.height} px is over the pixel "
                                    "cap: raise --max-page-pixels", path=self.path, page=self.index)
        return self._pixmap_image(zx, zy)

    def _pixmap_image(self, zx: float, zy: float, *, gray: bool = False) -> Image.Image:
        """MuPDF renders the page at zoom (zx, zy), RGB or gray; damage found while rendering is an error."""
        import pymupdf
        from PIL import Image

        pymupdf.TOOLS.reset_mupdf_warnings()
        page = self._load()
        try:
            pix = page.get_pixmap(matrix=pymupdf.Matrix(zx, zy), alpha=False,
                                  colorspace=pymupdf.csGRAY if gray else pymupdf.csRGB)
        except Exception as exc:  # noqa: BLE001
            raise CorruptInputError(
                f"page cannot be rendered, its data is damaged: {exc}", path=self.path, page=self.index
            ) from None
        self._check_damage("rendering")
        return Image.frombytes("L" if gray else "RGB", (pix.width, pix.height), pix.samples)

    def pdf_page(self):  # -> pymupdf.Page
        return self._load()

    def text_layer(self) -> TextLayer:
        """The page's words (cached: the engine and the layout stage read the same layer once)."""
        if self._text_layer is None:
            self._text_layer = self._read_text_layer()
        return self._text_layer

    def _read_text_layer(self) -> TextLayer:
        import pymupdf

        pymupdf.TOOLS.reset_mupdf_warnings()
        page = self._load()
        try:
            tp = page.get_textpage(flags=pymupdf.TEXTFLAGS_WORDS)
            raw_words = page.get_text("words", textpage=tp)
            blocks = page.get_text("dict", textpage=tp)["blocks"]
            images = page.get_image_info()
        except Exception as exc:  # noqa: BLE001
            raise CorruptInputError(
                f"the page's text cannot be read, its data is damaged: {exc}", path=self.path, page=self.index
            ) from None
        self._check_damage("text extraction")
        # Font size of a word = size of the span of its line overlapping it most (same textpage, numbering).
        spans: dict[tuple[int, int], list[tuple[float, float, float]]] = {}
        for b in blocks:
            for li, line in enumerate(b.get("lines", ())):
                spans[(b["number"], li)] = [
                    (s["bbox"][0], s["bbox"][2], float(s["size"]), _is_bold(s))
                    for s in line["spans"] if s["text"].strip()
                ]
        to_visible = page.rotation_matrix
        dpi = float(self.dpi)  # type: ignore[arg-type]
        words: list[TextWord] = []
        chars = garbage = 0
        pieces = _glued_word_pieces(page, raw_words, tp) if self.rotation == 0 else {}
        for n, (x0, y0, x1, y1, text, block_no, line_no, _) in enumerate(raw_words):
            size = 0.0
            bold = False
            best = -1.0
            for sx0, sx1, ssize, sbold in spans.get((block_no, line_no), ()):
                overlap = min(x1, sx1) - max(x0, sx0)
                if overlap > best:
                    best, size, bold = overlap, ssize, sbold
            for k, (ptext, (px0, px1)) in enumerate(pieces.get(n, ())):
                r = pymupdf.Rect(px0, y0, px1, y1) * to_visible
                words.append(TextWord(text=ptext, bbox_page_px=pdf_to_page((r.x0, r.y0, r.x1, r.y1), dpi),
                                      font_size_pt=round(size, 3), block=int(block_no), line=int(line_no),
                                      bold=bold, glued=k > 0))
            r = pymupdf.Rect(x0, y0, x1, y1) * to_visible
            if size == 0.0:
                size = float(min(y1 - y0, x1 - x0) if self.rotation % 180 else (y1 - y0))
            for ch in text:
                if ch.isspace():
                    continue
                chars += 1
                if _is_garbage(ch):
                    garbage += 1
            if n in pieces:
                continue
            words.append(
                TextWord(
                    text=text,
                    bbox_page_px=pdf_to_page((r.x0, r.y0, r.x1, r.y1), dpi),
                    font_size_pt=round(size, 3),
                    block=int(block_no),
                    line=int(line_no),
                    bold=bold,
                )
            )
        unrotated = page.rect * page.derotation_matrix
        coverage = _coverage([tuple(i["bbox"]) for i in images], unrotated.width, unrotated.height)
        return TextLayer(
            words=tuple(words),
            char_count=chars,
            garbage_ratio=garbage / chars if chars else 0.0,
            image_coverage=coverage,
        )


GLUED_WORD_LETTERS = 17
"""A text-layer word with this many letters or more (rare in real words) makes its line a candidate for
missing spaces: only such lines pay for reading glyph boxes (rawdict), so clean pages cost nothing extra."""
MAX_GLUED_LINES = 20
"""At most this many candidate lines per page are re-read glyph by glyph (bounded time on odd pages)."""
GAP_EM = 0.08
"""A gap between two glyphs wider than this share of the font size (and clearly wider than the word's usual
letter gap) is a missing space. Letters of one word touch (gap 0) or overlap (kerning)."""


def _looks_glued(word: str) -> bool:
    """A run of 17+ Latin letters (digits allowed, trailing punctuation ignored): words with missing spaces.

    URLs, formulas and scripts written without spaces (CJK) are not candidates: they have no spaces to lose.
    """
    core = word.rstrip(".,;:!?)]}\"'")
    letters = sum(1 for ch in core if ch.isascii() and ch.isalpha())
    return letters >= GLUED_WORD_LETTERS and all(ch.isascii() and ch.isalnum() for ch in core)


def _is_bold(span: dict) -> bool:
    font = str(span.get("font", "")).lower()
    return bool(int(span.get("flags", 0)) & 16) or any(k in font for k in ("bold", "black", "heavy", "semibold"))


def _glued_word_pieces(page, raw_words: Sequence, textpage) -> dict[int, list[tuple[str, tuple[float, float]]]]:
    """Word number -> its pieces (text, x-range in unrotated points) where glyph gaps show missing spaces.

    `textpage` is the page's text page that `raw_words` came from (reused for a whole-page glyph read).

    Only lines holding a candidate word (`GLUED_WORD_LETTERS`) are read again, glyph by glyph, with a
    clipped rawdict extraction (about 1-2 ms a line). A word is split only when its glyphs line up one to one
    with its characters.
    """
    import pymupdf

    lines: dict[tuple[int, int], list[int]] = {}
    for n, w in enumerate(raw_words):
        lines.setdefault((w[5], w[6]), []).append(n)
    candidates = [key for key, ns in lines.items() if any(_looks_glued(raw_words[n][4]) for n in ns)][:MAX_GLUED_LINES]
    out: dict[int, list[tuple[str, tuple[float, float]]]] = {}
    def read_glyphs(clip) -> list[tuple[str, tuple, float]]:
        if clip is None:  # the whole page: the text page the words came from, not a second extraction
            raw = page.get_text("rawdict", textpage=textpage)
        else:
            raw = page.get_text("rawdict", clip=clip, flags=pymupdf.TEXTFLAGS_WORDS)
        return [
            (c["c"], c["bbox"], float(s["size"]))
            for b in raw.get("blocks", ()) for ln in b.get("lines", ()) for s in ln.get("spans", ())
            for c in s.get("chars", ()) if not c["c"].isspace()
        ]

    page_glyphs = None
    if len(candidates) > 2:  # many lines: one glyph read of the page costs less than one per line
        try:
            page_glyphs = read_glyphs(None)
        except Exception:  # noqa: BLE001 - the words stay as they are
            return {}
    for key in candidates:
        ns = lines[key]
        clip = pymupdf.Rect(
            min(raw_words[n][0] for n in ns), min(raw_words[n][1] for n in ns),
            max(raw_words[n][2] for n in ns), max(raw_words[n][3] for n in ns),
        )
        if page_glyphs is not None:
            glyphs = [g for g in page_glyphs if clip.y0 - 1 <= (g[1][1] + g[1][3]) / 2 <= clip.y1 + 1]
        else:
            try:
                glyphs = read_glyphs(clip)
            except Exception:  # noqa: BLE001 - a line that cannot be re-read keeps its words as they are
                continue
        for n in ns:
            x0, y0, x1, y1, text = raw_words[n][:5]
            mine = [g for g in glyphs
                    if x0 - 0.5 <= (g[1][0] + g[1][2]) / 2 <= x1 + 0.5 and y0 - 0.5 <= (g[1][1] + g[1][3]) / 2 <= y1 + 0.5]
            if len(mine) != len(text) or "".join(g[0] for g in mine) != text or len(mine) < 2:
                continue
            gaps = [mine[k + 1][1][0] - mine[k][1][2] for k in range(len(mine) - 1)]
            size = max(1.0, sorted(g[2] for g in mine)[len(mine) // 2])
            usual = sorted(gaps)[len(gaps) // 2]
            cuts = [k + 1 for k, gap in enumerate(gaps) if gap > max(GAP_EM * size, usual + 0.06 * size)]
            if not cuts:
                continue
            bounds = [0, *cuts, len(mine)]
            out[n] = [
                (text[a:b], (mine[a][1][0], mine[b - 1][1][2])) for a, b in zip(bounds, bounds[1:], strict=False)
            ]
    return out


def _is_garbage(ch: str) -> bool:
    if ch == "\ufffd":
        return True
    return unicodedata.category(ch) in ("Cc", "Co", "Cs", "Cn")


def _coverage(boxes: list[tuple[float, ...]], width: float, height: float, grid: int = 200) -> float:
    """Share of a width x height area covered by the union of boxes (on a grid x grid raster)."""
    if not boxes or width <= 0 or height <= 0:
        return 0.0
    import numpy as np

    mask = np.zeros((grid, grid), dtype=bool)
    for x0, y0, x1, y1 in boxes:
        c0 = int(max(0.0, min(x0, x1)) / width * grid)
        c1 = int(np.ceil(min(width, max(x0, x1)) / width * grid))
        r0 = int(max(0.0, min(y0, y1)) / height * grid)
        r1 = int(np.ceil(min(height, max(y0, y1)) / height * grid))
        if c1 > c0 and r1 > r0:
            mask[r0:r1, c0:c1] = True
    return float(mask.mean())


class PdfDocument(SourceDocument):
    def __init__(self, fitz_doc, **kw: object) -> None:  # fitz_doc: pymupdf.Document
        super().__init__(kind="pdf", page_count=fitz_doc.page_count, **kw)  # type: ignore[arg-type]
        self.fitz = fitz_doc
        self.repaired = bool(fitz_doc.is_repaired)

    def page(self, index: int) -> SourcePage:
        import pymupdf

        dpi = float(self.options.dpi)
        zoom = dpi / 72.0
        try:
            pg = self.fitz.load_page(index)
            rect = pg.rect
            rotation = int(pg.rotation)
            error = None
            if self.repaired and self.fitz.xref_get_key(pg.xref, "Type") != ("name", "/Page"):
                error = "its page object is missing (the file is truncated or damaged)"
        except Exception as exc:  # noqa: BLE001 - a damaged page fails alone, from render()/text_layer()
            error = str(exc) or type(exc).__name__
            try:
                rect = self.fitz.page_cropbox(index)
            except Exception:  # noqa: BLE001
                rect = pymupdf.Rect(0, 0, 0, 0)
            rotation = 0
        irect = (pymupdf.Rect(0, 0, rect.width, rect.height) * pymupdf.Matrix(zoom, zoom)).irect
        return PdfPage(
            self,
            index,
            load_error=error,
            width_px=int(irect.width),
            height_px=int(irect.height),
            dpi=dpi,
            width_pt=float(rect.width),
            height_pt=float(rect.height),
            rotation=rotation,
        )

    def close(self) -> None:
        self.fitz.close()


# --- images -------------------------------------------------------------------------------------------------

_EXIF_ORIENTATION = 0x0112
_EXIF_ROTATION = {3: 180, 6: 90, 8: 270, 5: 90, 7: 270}
"""EXIF orientation -> clockwise rotation applied to reach the page frame (5 and 7 also mirror)."""


def _exif_transpose(frame, orientation: int):  # PIL.Image.Image -> PIL.Image.Image
    """What ImageOps.exif_transpose does, driven by an orientation read from the file (TIFF frames too)."""
    from PIL import Image

    t = Image.Transpose
    method = {
        2: t.FLIP_LEFT_RIGHT,
        3: t.ROTATE_180,
        4: t.FLIP_TOP_BOTTOM,
        5: t.TRANSPOSE,
        6: t.ROTATE_270,
        7: t.TRANSVERSE,
        8: t.ROTATE_90,
    }.get(orientation)
    return frame if method is None else frame.transpose(method)


def _load_frame(img, path: str, index: int) -> None:  # img: PIL.Image.Image
    """Decode frame `index` of an opened image in place; a damaged one raises CorruptInputError naming the page."""
    try:
        img.seek(index)
        img.load()
    except (OSError, ValueError, EOFError, SyntaxError) as exc:
        raise CorruptInputError(
            f"image data is truncated or damaged ({exc}); re-save or re-scan it", path=path, page=index
        ) from None


def _orientation(img) -> int:  # img: PIL.Image.Image at the wanted frame
    try:
        if img.format == "PNG":  # Pillow's getexif() decodes a whole PNG to look for an eXIf chunk after IDAT
            from PIL import Image

            data = img.info.get("exif")  # an eXIf chunk before the pixels (where the PNG spec puts it)
            if not data:
                return 1
            exif = Image.Exif()
            exif.load(data)
            value = exif.get(_EXIF_ORIENTATION, 1)
            return int(value) if int(value) in range(1, 9) else 1
        value = img.getexif().get(_EXIF_ORIENTATION, 1)
        return int(value) if int(value) in range(1, 9) else 1
    except Exception:  # noqa: BLE001 - a broken EXIF block does not make the image unreadable
        return 1


@contextlib.contextmanager
def _pixel_cap(cap: int, path: str, page: int | None = None) -> Iterator[None]:
    """Pillow's decompression-bomb guard set to our cap; its warning and error become PageTooLargeError."""
    from PIL import Image

    before = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = cap
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            yield
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise PageTooLargeError(
            f"image is too large to read safely (possible decompression bomb): {exc} Raise --max-page-pixels "
            f"(now {cap:,}) if you trust this file",
            path=path,
            page=page,
        ) from None
    finally:
        Image.MAX_IMAGE_PIXELS = before


LARGE_IMAGE_PIXELS = 16_000_000
"""From this size on, an image other than a JPEG is reduced strip by strip for the estimate and the tiles
(`ImagePage._reduced_decode`): decoded once in its own mode (a 1-bit or gray scan stays one byte a pixel) and
never copied or converted to RGB at full size. A 20000x20000 1-bit PNG: 0.4 GB, not 3 GB
(bench/big_page_memory.py). Below it, the full rendering is decoded and kept for the tiles and the layout."""
REDUCE_STRIP_ROWS = 512
"""Rows converted and reduced at a time (a 20000-px-wide strip is 10 MB in gray, 30 MB in RGB)."""
_STRIP_MODES = {"1": "L", "L": "L", "RGB": "RGB"}
"""Stored modes the strip reduction reads (others, with alpha or a palette, take the full rendering) -> the mode
each strip is reduced in."""

PREVIEW_MAX_SHARE = 0.7
"""A reduced preview is made only when it is under 70% of the page's own size per side (a smaller saving is
not worth a second decode: the full image is decoded for the tiles anyway)."""


class ImagePage(SourcePage):
    def __init__(self, doc: ImageDocument, index: int, **geometry: object) -> None:
        super().__init__(
            path=doc.path,
            index=index,
            kind="image",
            dpi=None,
            max_page_pixels=doc.options.max_page_pixels,
            **geometry,
        )  # type: ignore[arg-type]
        self._doc = doc

    def _preview(self, area: int) -> Image.Image | None:
        """A JPEG decoded reduced in the decoder (Pillow's draft mode: 1/2, 1/4 or 1/8 scale, never under
        `area` pixels), a large image of another format reduced strip by strip (`_reduced_decode`), in gray;
        None otherwise (their full decode is the one the tiles need)."""
        found = self._preview_decode(area, "L")
        if found is None and self.pixel_count >= LARGE_IMAGE_PIXELS:
            found = self._reduced_decode(math.sqrt(area / self.pixel_count), "L")
        return found

    def _preview_decode(self, area: float, mode: str) -> Image.Image | None:
        from PIL import Image

        src = self._doc.image
        filename = getattr(src, "filename", None)
        if src.format != "JPEG" or not filename:
            return None
        w, h = src.size  # stored frame (before EXIF rotation)
        s = math.sqrt(area / (w * h))
        if s >= PREVIEW_MAX_SHARE:
            return None
        self.check_size()
        with _pixel_cap(self.max_page_pixels, self.path, self.index), Image.open(filename) as img:
            try:
                img.draft(mode, (max(1, math.ceil(w * s)), max(1, math.ceil(h * s))))
                frame = img.convert(mode)
            except (OSError, ValueError, EOFError, SyntaxError) as exc:
                raise CorruptInputError(
                    f"image data is truncated or damaged ({exc}); re-save or re-scan it",
                    path=self.path,
                    page=self.index,
                ) from None
            orientation = _orientation(img)
        return _exif_transpose(frame, orientation)

    def _reduced_decode(self, scale: float, mode: str) -> Image.Image | None:
        """A large image (`LARGE_IMAGE_PIXELS`) other than a JPEG at 1/k of its size (k = the whole reduction
        `scale` allows, at least 2; so at `scale` or a little more), in `mode`: decoded once in its stored
        mode, then converted and box-reduced `REDUCE_STRIP_ROWS` rows at a time. Its largest allocation is the
        decoded frame itself. None where it does not apply (small, a JPEG, k < 2, a mode with alpha)."""
        from PIL import Image

        src = self._doc.image
        if (self.pixel_count < LARGE_IMAGE_PIXELS or src.format == "JPEG" or scale <= 0
                or not getattr(src, "filename", None)):
            return None
        k = math.floor(1.0 / scale + 1e-9)
        if k < 2:
            return None
        frame, orientation = self._decode_frame()
        work = _STRIP_MODES.get(frame.mode)
        if work is None:
            return None
        w, h = frame.size
        out = Image.new(work, (math.ceil(w / k), math.ceil(h / k)), "white")
        rows = max(k, REDUCE_STRIP_ROWS // k * k)  # whole blocks of k rows per strip
        for y in range(0, h, rows):
            strip = frame.crop((0, y, w, min(h, y + rows)))
            out.paste(strip.convert(work).reduce(k), (0, y // k))
        del frame
        return _exif_transpose(out if out.mode == mode else out.convert(mode), orientation)

    def _decode_frame(self) -> tuple[Image.Image, int]:
        """The page's frame decoded from the file opened again (nothing decoded stays with the document), in its
        stored mode and orientation, with its EXIF orientation. Raises CorruptInputError when it is damaged."""
        from PIL import Image

        self.check_size()
        with _pixel_cap(self.max_page_pixels, self.path, self.index), Image.open(self._doc.image.filename) as img:
            _load_frame(img, self.path, self.index)
            orientation = _orientation(img)
        stored = (self.height_px, self.width_px) if self.rotation in (90, 270) else (self.width_px, self.height_px)
        if img.size != stored:
            raise CorruptInputError(
                f"decoded image is {img.size[0]}x{img.size[1]}, its header said {self.width_px}x"
                f"{self.height_px}; the file is damaged",
                path=self.path,
                page=self.index,
            )
        return img, orientation

    def _render_at(self, scale: float) -> Image.Image | None:
        """A JPEG decoded reduced in the decoder when the tiles need at most half its size, a large image of
        another format reduced strip by strip (`_reduced_decode`); else None."""
        if scale > 0.5:
            return None
        found = self._preview_decode(scale * scale * self.width_px * self.height_px, "RGB")
        if found is None and self.pixel_count >= LARGE_IMAGE_PIXELS:
            found = self._reduced_decode(scale, "RGB")
        return found

    def _render(self) -> Image.Image:
        from PIL import Image

        self.check_size()
        if getattr(self._doc.image, "filename", None):
            frame, orientation = self._decode_frame()  # decoded once, from the file: no copy kept elsewhere
        else:
            with _pixel_cap(self.max_page_pixels, self.path, self.index):
                img = self._doc.image
                _load_frame(img, self.path, self.index)
                frame = img.copy()
                orientation = _orientation(img)
        frame = _exif_transpose(frame, orientation)
        if frame.mode in ("RGBA", "LA", "PA") or (frame.mode == "P" and "transparency" in frame.info):
            rgba = frame.convert("RGBA")
            canvas = Image.new("RGB", rgba.size, "white")
            canvas.paste(rgba, mask=rgba.getchannel("A"))
            frame = canvas
        elif frame.mode in ("I;16", "I;16B", "I;16L", "I"):
            frame = (
                frame.point(lambda v: v / 256).convert("L").convert("RGB")
            )  # 16-bit scans: keep the top byte
        elif frame.mode != "RGB":
            frame = frame.convert("RGB")
        if frame.size != (self.width_px, self.height_px):
            raise CorruptInputError(
                f"decoded image is {frame.size[0]}x{frame.size[1]}, its header said {self.width_px}x"
                f"{self.height_px}; the file is damaged",
                path=self.path,
                page=self.index,
            )
        return frame


class ImageDocument(SourceDocument):
    def __init__(self, image, **kw: object) -> None:  # image: PIL.Image.Image (open, not decoded)
        self.image = image
        frames = int(getattr(image, "n_frames", 1)) if image.format == "TIFF" else 1
        super().__init__(kind="image", page_count=frames, **kw)  # type: ignore[arg-type]

    def page(self, index: int) -> SourcePage:
        with _pixel_cap(self.options.max_page_pixels, self.path, index):
            try:
                self.image.seek(index)
            except (OSError, ValueError, EOFError) as exc:
                raise CorruptInputError(
                    f"cannot read this frame: {exc}", path=self.path, page=index
                ) from None
            w, h = self.image.size
            orientation = _orientation(self.image)
        rotation = _EXIF_ROTATION.get(orientation, 0)
        if rotation in (90, 270):
            w, h = h, w
        return ImagePage(self, index, width_px=w, height_px=h, rotation=rotation)

    def pages(self) -> Iterator[SourcePage]:
        for index in self.selected_indices():
            try:
                yield self.page(index)
            except CorruptInputError as exc:  # a bad frame fails alone, from render()
                yield _BrokenPage(self, index, exc)

    def close(self) -> None:
        self.image.close()


class _BrokenPage(SourcePage):
    """A page whose geometry could not even be read: every access raises the stored error."""

    def __init__(self, doc: SourceDocument, index: int, error: InputError) -> None:
        super().__init__(
            path=doc.path,
            index=index,
            kind=doc.kind,
            width_px=0,
            height_px=0,
            dpi=None,
            max_page_pixels=doc.options.max_page_pixels,
        )
        self._error = error

    def _render(self) -> Image.Image:
        raise self._error

    def text_layer(self) -> TextLayer | None:
        raise self._error


# --- opening ------------------------------------------------------------------------------------------------


def _read_head_and_hash(p: Path, shown: str) -> tuple[bytes, str, int]:
    h = hashlib.sha256()
    head = b""
    size = 0
    try:
        with open(p, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                if not head:
                    head = chunk[:4096]
                h.update(chunk)
                size += len(chunk)
    except PermissionError:
        raise InputError(
            "permission denied: the file cannot be read (check its permissions)", path=shown
        ) from None
    except IsADirectoryError:
        raise InputError("is a folder, not a file", path=shown) from None
    except OSError as exc:
        raise InputError(f"cannot read the file: {exc.strerror or exc}", path=shown) from None
    return head, h.hexdigest(), size


def open_document(
    path: str | Path, options: ConvertOptions, *, display_path: str | None = None
) -> SourceDocument:
    """Open a PDF or image, detecting its type from its bytes.

    Args:
        path: the input file.
        options: dpi, password, pages, max_pages and max_page_pixels are used.
        display_path: the path to name in errors and `info()` (default: `path`).

    Returns:
        An open `SourceDocument`; use it as a context manager.

    Raises:
        InputError: missing or unreadable path. EmptyInputError: 0 bytes or no pages.
        CorruptInputError: damaged.
        EncryptedInputError: password missing or wrong. UnsupportedInputError: not a PDF or supported image.
        PageTooLargeError: an image over the pixel cap (decompression bomb guard).
    """
    p = Path(path)
    shown = display_path or str(path)
    if not p.exists():
        if p.is_symlink():
            raise InputError("a symbolic link that leads nowhere (broken, or a loop of links): fix or remove "
                             "the link", path=shown)
        raise InputError("no such file: check the path", path=shown)
    if p.is_dir():
        raise InputError("is a folder, not a file (folders are expanded by `docvlm convert`)", path=shown)
    head, digest, size = _read_head_and_hash(p, shown)
    if size == 0:
        raise EmptyInputError("the file is empty (0 bytes)", path=shown)
    ftype = sniff_file_type(head)
    common = {"path": shown, "sha256": digest, "size_bytes": size, "options": options}
    if ftype.kind == "pdf":
        return _open_pdf(p, shown, options, common)
    if ftype.kind == "image":
        return _open_image(p, shown, options, common, ftype)
    suffix = p.suffix.lower()
    if suffix == ".pdf":
        if ftype.name.startswith("unknown binary"):
            raise CorruptInputError(
                f"named .pdf but has no PDF header: it is damaged or not a PDF ({ftype.name})", path=shown
            )
        raise UnsupportedInputError(
            f"named .pdf but it is not a PDF: it looks like a {ftype.name}. "
            f"Supported types: {SUPPORTED_TYPES}",
            path=shown,
        )
    if suffix in SUPPORTED_EXTENSIONS:
        raise CorruptInputError(
            f"named {suffix} but it is not a {SUPPORTED_EXTENSIONS[suffix]} file: "
            f"it looks like a {ftype.name}",
            path=shown,
        )
    raise UnsupportedInputError(
        f"unsupported file type ({ftype.name}); supported types: {SUPPORTED_TYPES}", path=shown
    )


def _quiet_mupdf() -> None:
    """MuPDF prints repair messages to stderr; docvlm reads them per page instead (see `_damage`)."""
    import pymupdf

    pymupdf.TOOLS.mupdf_display_errors(False)
    pymupdf.TOOLS.mupdf_display_warnings(False)


def _open_pdf(p: Path, shown: str, options: ConvertOptions, common: dict) -> PdfDocument:
    import pymupdf

    _quiet_mupdf()
    pymupdf.TOOLS.reset_mupdf_warnings()
    try:
        fitz = pymupdf.open(str(p), filetype="pdf")
    except Exception as exc:  # noqa: BLE001 - FileDataError, RuntimeError, ... all mean a damaged file here
        raise CorruptInputError(
            f"cannot be read as a PDF, it is damaged or truncated ({exc}); re-export it or repair it with "
            "`qpdf in.pdf out.pdf`",
            path=shown,
        ) from None
    try:
        if fitz.needs_pass:
            if options.password is None:
                raise EncryptedInputError(
                    "the PDF is encrypted: pass its password with --password", path=shown
                )
            if not fitz.authenticate(options.password):
                raise EncryptedInputError(
                    "the password given with --password does not open this encrypted PDF", path=shown
                )
        if fitz.page_count == 0:
            if fitz.is_repaired:
                raise CorruptInputError(
                    "the PDF is damaged and no page could be recovered; re-export it or repair it with "
                    "`qpdf in.pdf out.pdf`",
                    path=shown,
                )
            raise EmptyInputError("the PDF has no pages", path=shown)
        return PdfDocument(fitz, format_name="PDF", **common)
    except BaseException:
        fitz.close()
        raise


def _open_image(p: Path, shown: str, options: ConvertOptions, common: dict, ftype: FileType) -> ImageDocument:
    from PIL import Image, UnidentifiedImageError

    with _pixel_cap(options.max_page_pixels, shown):
        try:
            img = Image.open(p)
        except UnidentifiedImageError:
            raise CorruptInputError(
                f"looks like a {ftype.name} but cannot be decoded: the file is damaged", path=shown
            ) from None
        except (OSError, ValueError, SyntaxError, EOFError) as exc:
            raise CorruptInputError(f"cannot decode this {ftype.name}: {exc}", path=shown) from None
    if img.format not in _IMAGE_FORMATS:
        img.close()
        raise UnsupportedInputError(
            f"unsupported image format {img.format}; supported: {SUPPORTED_TYPES}", path=shown
        )
    return ImageDocument(img, format_name=ftype.name, **common)
