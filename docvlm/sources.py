"""Sources and rasterization: input paths -> documents -> pages with their geometry.

Interface used by every later stage (engines, planner, pipeline):

- `expand_inputs(paths) -> list[InputFile]`: files, folders (recursive), several paths; stable order.
- `open_document(path, options) -> SourceDocument` (a context manager); raises `InputError` subclasses
  naming the file for corrupt / encrypted / empty / unsupported inputs.
- `SourceDocument.pages() -> Iterator[SourcePage]` honours `options.pages` and `options.max_pages`.
- `SourcePage.render() -> PIL.Image.Image` (RGB, exactly width_px x height_px, the page frame); raises
  `PageTooLargeError` beyond `options.max_page_pixels`.
- `SourcePage.text_layer() -> TextLayer | None`: PDF words in page pixels (already rotated and cropped into the
  visible frame), with font sizes; None for images.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:

    from docvlm.datamodel import Box


@dataclass(frozen=True)
class InputFile:
    path: Path = field(metadata={"doc": "Absolute or as-given path of the input file."})
    relpath: str = field(metadata={"doc": "Path relative to the input root it was found under (for outputs)."})


@dataclass(frozen=True)
class TextWord:
    """One word of a PDF text layer, in page pixels of the visible (rotated, cropped) page."""

    text: str
    bbox_page_px: Box
    font_size_pt: float
    block: int
    line: int


@dataclass(frozen=True)
class TextLayer:
    words: tuple[TextWord, ...]
    char_count: int
    garbage_ratio: float  # share of characters that are replacement chars / unmapped glyphs / controls
    image_coverage: float  # share of the page area covered by images (a scanned page with invisible OCR text)


# --- to be implemented below this line (see module docstring) ---
#
# class SourcePage:
#     path: str; index: int (0-based in the document); kind: Literal["pdf", "image"]
#     width_px: int; height_px: int; dpi: float | None
#     width_pt: float | None; height_pt: float | None   (visible page in PDF points; PDF only)
#     rotation: int                                      (/Rotate or EXIF rotation applied, degrees)
#     def render(self) -> Image.Image                    (RGB, width_px x height_px; cached is not required)
#     def text_layer(self) -> TextLayer | None
#
# class SourceDocument:  (context manager)
#     path: str; kind: Literal["pdf", "image"]; sha256: str; size_bytes: int; page_count: int
#     def info(self, display_path: str | None = None) -> SourceInfo
#     def pages(self) -> Iterator[SourcePage]
#     def close(self) -> None
#
# def expand_inputs(paths: Sequence[str | Path]) -> list[InputFile]
# def open_document(path: str | Path, options: ConvertOptions) -> SourceDocument
# def parse_page_selection(spec: str | None, page_count: int) -> list[int]   (0-based indices; UsageError)
_ = (Iterator, Literal)
