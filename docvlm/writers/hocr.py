"""hOCR output: the result as XHTML with `ocr_page`, `ocr_line` and `ocrx_word`, boxes in page pixels.

Conventions (hOCR 1.2, as Tesseract writes it):
- `bbox x0 y0 x1 y1` in integer page pixels (the frame of `bbox_page_px`), rounded outward (floor the
  top-left, ceil the bottom-right, then clamped to the page) so an hOCR box always contains the JSON box.
- `ppageno` is the 0-based page index in the source document; `image` names the source file.
- `x_wconf` is the word's confidence as an integer percentage (0-100), omitted when unknown; lines carry their
  own confidence the same way.
- Lines without word boxes (some VLM outputs) get words split from the line box by character share, as the
  searchable PDF does, so every `ocr_line` has `ocrx_word` children.
- `ocr_carea` / `ocr_par` are not written: docvlm's result has no block structure to report honestly.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

from docvlm.datamodel import Box, DocumentResult, PageResult
from docvlm.geometry import split_line_into_words
from docvlm.writers.files import atomic_write_text

CAPABILITIES = "ocr_page ocr_line ocrx_word ocrp_wconf"


def hocr_box(box_page_px: Sequence[float], width_px: int, height_px: int) -> tuple[int, int, int, int]:
    """A page-pixel box as hOCR integers, rounded outward and clamped to the page."""
    x0, y0, x1, y1 = box_page_px
    return (
        max(0, math.floor(x0)),
        max(0, math.floor(y0)),
        min(width_px, math.ceil(x1)),
        min(height_px, math.ceil(y1)),
    )


def _title(box: tuple[int, int, int, int], confidence: float | None = None) -> str:
    title = "bbox {} {} {} {}".format(*box)
    if confidence is not None:
        title += f"; x_wconf {round(confidence * 100)}"
    return title


def render_hocr(result: DocumentResult) -> str:
    """The whole document as one hOCR (XHTML) string."""
    system = f"docvlm {result.docvlm_version} (engine {result.engine.name}"
    system += f", model {result.engine.model})" if result.engine.model else ")"
    out = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        '<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Transitional//EN"',
        '    "http://www.w3.org/TR/xhtml1/DTD/xhtml1-transitional.dtd">',
        '<html xmlns="http://www.w3.org/1999/xhtml" xml:lang="en" lang="en">',
        " <head>",
        f"  <title>{escape(result.source.path)}</title>",
        '  <meta http-equiv="Content-Type" content="text/html;charset=utf-8"/>',
        f"  <meta name='ocr-system' content={quoteattr(system)}/>",
        f"  <meta name='ocr-capabilities' content='{CAPABILITIES}'/>",
        f"  <meta name='ocr-number-of-pages' content='{len(result.pages)}'/>",
        " </head>",
        " <body>",
    ]
    for page in result.pages:
        out.extend(_page(page, result.source.path))
    out += [" </body>", "</html>", ""]
    return "\n".join(out)


def _page(page: PageResult, image: str) -> list[str]:
    n = page.index + 1
    title = f'image "{image.replace(chr(34), "%22")}"; bbox 0 0 {page.width_px} {page.height_px}; ppageno {page.index}'
    if page.dpi:
        title += f"; scan_res {round(page.dpi)} {round(page.dpi)}"
    out = [f"  <div class='ocr_page' id='page_{n}' title={quoteattr(title)}>"]
    for li, line in enumerate(page.lines, start=1):
        words = hocr_words(line.text, line.bbox_page_px, line.confidence, line.words)
        if not words:
            continue
        lbox = hocr_box(line.bbox_page_px, page.width_px, page.height_px)
        out.append(f"   <span class='ocr_line' id='line_{n}_{li}' title={quoteattr(_title(lbox, line.confidence))}>")
        for wi, (text, box, conf) in enumerate(words, start=1):
            wbox = hocr_box(box, page.width_px, page.height_px)
            out.append(
                f"    <span class='ocrx_word' id='word_{n}_{li}_{wi}' title={quoteattr(_title(wbox, conf))}>"
                f"{escape(_xml_text(text))}</span>"
            )
        out.append("   </span>")
    out.append("  </div>")
    return out


def hocr_words(
    text: str, box_page_px: Box, confidence: float | None, words: Sequence
) -> list[tuple[str, Box, float | None]]:
    """(text, page-pixel box, confidence) of a line's words; split from the line box when it has none."""
    if words:
        return [(w.text, w.bbox_page_px, w.confidence) for w in words if w.text.strip()]
    return [(t, b, confidence) for t, b in split_line_into_words(text, box_page_px)]


def _xml_text(text: str) -> str:
    """Drop characters XML 1.0 cannot carry (controls other than tab/newline)."""
    return "".join(c for c in text if c in "\t\n" or ord(c) >= 0x20 and not 0xFFFE <= ord(c) <= 0xFFFF
                   and not 0xD800 <= ord(c) <= 0xDFFF)


def write_hocr(result: DocumentResult, out_path: str | Path) -> None:
    """Write `render_hocr(result)` atomically to `out_path`."""
    atomic_write_text(out_path, render_hocr(result))


@dataclass(frozen=True)
class HocrWriter:
    """`--format hocr`."""

    name: str = "hocr"
    suffix: str = ".hocr"

    def write(self, result: DocumentResult, source_path: str | Path | None, out_path: Path) -> None:
        write_hocr(result, out_path)
