"""Rulings in a page image (scans and photos): long horizontal and vertical dark runs."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from docvlm.datamodel import Box
from docvlm.layout.tables.common import MAX_SEGMENTS

if TYPE_CHECKING:
    from PIL import Image

    from docvlm.sources import SourcePage


# --- rulings in a page image (scans) ----------------------------------------------------------------------


def rulings_from_image(image: Image.Image, *, min_length: float) -> list[Box]:
    """Long horizontal and vertical dark runs of a binarised page image, as segments in its pixels."""
    gray = np.asarray(image.convert("L"), dtype=np.uint8)
    # thin rules anti-alias to mid grey (~170 at 200 dpi); light cell shading stays above ~195
    ink = gray < min(185, int(np.mean(gray)) - 30 if gray.size else 185)
    segs: list[Box] = []
    for axis in (0, 1):
        m = ink if axis == 0 else ink.T
        h, w = m.shape
        padded = np.zeros((h, w + 2), dtype=np.int8)
        padded[:, 1:-1] = m
        d = np.diff(padded, axis=1)
        ys, xs = np.nonzero(d == 1)
        ye, xe = np.nonzero(d == -1)
        # starts and ends come in the same row-major order, one end per start
        length = xe - xs
        keep = length >= min_length
        for y, a, b in zip(ys[keep], xs[keep], xe[keep], strict=True):
            if axis == 0:
                segs.append((float(a), float(y), float(b), float(y)))
            else:
                segs.append((float(y), float(a), float(y), float(b)))
            if len(segs) > MAX_SEGMENTS * 4:
                return segs
    return segs


def scan_rulings(source: SourcePage, unit: float) -> list[Box]:
    """Rulings found in the page image (scans and photos): long dark runs, at least 3 text heights long."""
    image = source.render()
    return rulings_from_image(image, min_length=max(25.0, 3.0 * unit))
