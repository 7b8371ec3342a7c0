"""A second reading of a value's letters: the recognizer run again on the value's crop of the page image, at
another scale than the first reading (the judge, extract/evidence.py, asks for it).

A legal form proves which line is the company's, not that OCR read its letters right ("URBAN 1DEA SDN BHD").
The same recognizer on the same crop at `REREAD_SCALE` sees other pixels and disagrees on a good share of its
own misreads (measured on SROIE dev, bench/extract_bench.py --reread), while it agrees on almost every name it read
right. So a text value is `verified` only when a second route reads the same letters (evidence.py).

`CropReader` is the `ReadAgain` of candidates.py: `reader(page_index, box_page_px)` -> the crop's text, or None
when the page image is not at hand (a text-layer page, a failed page, a page read turned). It renders a page
once and recognizes only the crops it is asked for (a few per document), and counts them and their time.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from docvlm.datamodel import Box

if TYPE_CHECKING:
    from PIL.Image import Image

    from docvlm.datamodel import DocumentResult
    from docvlm.options import ConvertOptions

REREAD_SCALE = 0.7
"""The crop is read again at this scale of the page image (the first reading saw it at 1.0 after the engine's
own resizing). On SROIE dev 0.7, 1.5 and a 1-px blur each disagreed with 5-6 of the 11 company names OCR misread
and with 3 of 104 it read right; 0.7 is the cheapest (fewer pixels)."""
CROP_PAD = 0.15
"""White margin kept around the crop, as a share of its height (the recognizer clips glyphs at a tight edge)."""
UPRIGHT = (None, "none")
"""Read orientations whose page image shows the text upright (a page read turned is not re-read)."""


class CropReader:
    """`ReadAgain` over page images: the recognizer's text of a box's crop at `scale` (see the module doc)."""

    def __init__(self, page_image: Callable[[int], Image | None], recognize: Callable[[Image], str], *,
                 scale: float = REREAD_SCALE) -> None:
        self._page_image = page_image
        self._recognize = recognize
        self._images: dict[int, Image | None] = {}
        self.scale = scale
        self.crops = 0
        """Crops recognized so far (for the bench's cost figure)."""
        self.seconds = 0.0
        """Time spent rendering and recognizing, in seconds."""

    def __call__(self, page: int, box: Box) -> str | None:
        started = time.perf_counter()
        try:
            if page not in self._images:
                self._images[page] = self._page_image(page)
            image = self._images[page]
            if image is None:
                return None
            x0, y0, x1, y1 = box
            pad = CROP_PAD * (y1 - y0)
            crop = image.crop((max(0, round(x0 - pad)), max(0, round(y0 - pad)),
                               min(image.width, round(x1 + pad)), min(image.height, round(y1 + pad))))
            if crop.width < 2 or crop.height < 2:
                return None
            if self.scale != 1.0:
                from PIL import Image as PILImage

                crop = crop.resize((max(1, round(crop.width * self.scale)), max(1, round(crop.height * self.scale))),
                                   PILImage.Resampling.BICUBIC)
            self.crops += 1
            return self._recognize(crop)
        finally:
            self.seconds += time.perf_counter() - started


def rapidocr_recognizer(options: ConvertOptions | None = None) -> Callable[[Image], str]:
    """The ocr engine's recognizer (the process-wide RapidOCR instance, loaded on first use) reading one crop as
    one text line, no detection."""
    state: dict[str, Any] = {}

    def recognize(crop: Image) -> str:
        import numpy as np

        if "model" not in state:
            from docvlm.engines.ocr import load_rapidocr

            state["model"], _ = load_rapidocr(backend=getattr(options, "ocr_backend", "auto"),
                                              line_orientation=bool(getattr(options, "line_orientation", False)))
        arr = np.ascontiguousarray(np.asarray(crop.convert("RGB"))[:, :, ::-1])
        out = state["model"](arr, use_det=False, use_cls=False, use_rec=True)
        txts = list(getattr(out, "txts", None) or [])
        return " ".join(str(txts[0]).split()) if txts else ""

    return recognize


def image_pages(image: Image) -> Callable[[int], Image | None]:
    """Page images of a one-page document already in memory (a bench's photo)."""
    return lambda index: image if index == 0 else None


def document_pages(path: str | Path, options: ConvertOptions, read: DocumentResult
                   ) -> Callable[[int], Image | None]:
    """Page images of `path` as the ocr engine read them, rendered on demand: only pages read by OCR, upright,
    at the size their boxes are in (anything else: None, no second reading)."""
    pages = {p.index: p for p in read.pages}

    def page_image(index: int) -> Image | None:
        p = pages.get(index)
        if p is None or p.status == "failure" or p.text_source != "ocr" or \
                (p.read_orientation is not None and p.read_orientation.orientation not in UPRIGHT):
            return None
        from docvlm.sources import open_document

        try:
            with open_document(path, options) as doc:
                image = doc.page(index).render().convert("RGB")
        except Exception:  # noqa: BLE001 - no second reading then: the value is simply not confirmed by one
            return None
        return image if (image.width, image.height) == (round(p.width_px), round(p.height_px)) else None

    return page_image
