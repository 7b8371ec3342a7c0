"""Issue 16, bad input: a huge 1-bit PNG under a raised --max-page-pixels is prepared for a VLM without a full
RGB copy (docvlm.sources.ImagePage._reduced_decode): decoded once in its own mode, reduced strip by strip for
the estimate and the tiles. bench/big_page_memory.py measures the 20000x20000 case (3.1 GB -> 0.5 GB peak);
here, behaviour on a page just over `LARGE_IMAGE_PIXELS`: no full rendering is made, opening the document
decodes nothing, the tiles match those cut from the full rendering, EXIF orientation still applies, and a
page whose data is cut short still fails alone with its file and page named."""

from __future__ import annotations

import math

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from docvlm.engines.base import Task
from docvlm.engines.prep import prepare_page
from docvlm.options import make_options
from docvlm.plan import render_tile
from docvlm.sources import LARGE_IMAGE_PIXELS, ImagePage, open_document
from tests.test_feed import SleepyGpu

SIDE = math.isqrt(LARGE_IMAGE_PIXELS) + 100


def bilevel_page(path, side: int = SIDE, exif_orientation: int | None = None):  # noqa: ANN001, ANN201
    img = Image.new("1", (side, side // 2 if exif_orientation else side), 1)
    d = ImageDraw.Draw(img)
    font = ImageFont.load_default(size=90)
    for k, y in enumerate(range(100, img.height - 200, 260)):
        d.text((100, y), f"LINE {k:03d} TOTAL 12.50 RM", fill=0, font=font)
    extra = {}
    if exif_orientation:
        exif = Image.Exif()
        exif[0x0112] = exif_orientation
        extra["exif"] = exif.tobytes()
    img.save(path, **extra)
    return path


def options():  # noqa: ANN201
    return make_options(engine="hf", family="qwen2.5", max_visual_tokens=4096, max_page_pixels=SIDE * SIDE + 1)


def test_a_large_1bit_png_is_prepared_without_a_full_rgb_rendering(tmp_path, monkeypatch):
    path = bilevel_page(tmp_path / "big.png")
    opts = options()
    spec = SleepyGpu(opts, 0.0).prep_spec(Task(), encode=False)
    with open_document(path, opts) as doc:
        page = doc.page(0)
        assert doc.image.tile, "opening the document and reading its geometry decoded the whole image"
        reference = page.render()  # the full RGB rendering, for comparison only
    with open_document(path, opts) as doc:
        page = doc.page(0)

        def no_full_rendering(self):  # noqa: ANN001, ANN202
            raise AssertionError("a full RGB rendering of the large bilevel page was made")

        monkeypatch.setattr(ImagePage, "_render", no_full_rendering)
        ready = prepare_page(page, spec)
    assert ready.failure is None, ready.failure
    assert ready.text_size is not None and ready.text_size.line_px  # the estimate read the text
    assert ready.plan is not None and len(ready.tiles) == len(ready.plan.tiles)
    for tile, image in zip(ready.plan.tiles, ready.tiles, strict=True):
        assert image.size == tuple(tile.encoded_size) and image.mode == "RGB"
        assert tile.encoded_size[0] < SIDE / 2  # reduced: the test is about a page the plan shrinks
        full = np.asarray(render_tile(reference, tile).convert("L"), dtype=float)
        strip = np.asarray(image.convert("L"), dtype=float)
        assert np.abs(full - strip).mean() < 6.0  # the same page content (box reduce then bicubic vs bicubic)


def test_exif_orientation_of_a_large_png_still_applies(tmp_path):
    path = bilevel_page(tmp_path / "turned.png", exif_orientation=6)
    with open_document(path, options()) as doc:
        page = doc.page(0)
        assert (page.width_px, page.height_px) == (SIDE // 2, SIDE) and page.rotation == 90
        preview = page.preview(200_000)
    assert preview.height > preview.width  # turned like the page


@pytest.mark.parametrize("keep", [0.3, 0.7])
def test_a_large_png_cut_short_fails_alone_naming_file_and_page(tmp_path, keep):
    path = bilevel_page(tmp_path / "cut.png")
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    opts = options()
    spec = SleepyGpu(opts, 0.0).prep_spec(Task(), encode=False)
    with open_document(path, opts) as doc:
        ready = prepare_page(doc.page(0), spec)
    assert ready.failure is not None and ready.failure.page == 0
    assert "cut.png (page 1)" in ready.failure.message and "truncated or damaged" in ready.failure.message
