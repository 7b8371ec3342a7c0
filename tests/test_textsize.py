"""The text-size estimate on pages made here: it tracks the text, is scale-invariant, and hard print is not tiny."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from docvlm.plan import plan_page
from docvlm.textsize import WORK_AREA_PX, detect_text_size, estimate_text_size, work_size

WORDS = ["TOTAL", "Cash", "Change", "Qty", "Item", "Rice", "Chicken", "Tea", "GST", "6%", "RM", "12.50", "3.00",
         "Invoice", "No:", "Date", "27/11/2026", "Thank", "you", "please", "come", "again", "Subtotal", "Rounding"]


def font(px: int, mono: bool = False) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    names = ("DejaVuSansMono.ttf",) if mono else ("DejaVuSans.ttf",)
    for folder in ("/usr/share/fonts/truetype/dejavu", "/usr/share/fonts/dejavu"):
        for name in names:
            if (Path(folder) / name).is_file():
                return ImageFont.truetype(str(Path(folder) / name), px)
    return ImageFont.load_default(px)


def receipt(font_px: int, *, width: int = 640, lines: int = 40, caps: bool = False, mono: bool = True,
            dashed: bool = False, ink: int = 0, paper: int = 255, seed: int = 0) -> Image.Image:
    """A receipt-like page: `lines` lines of words at `font_px`, optional dashed rules between groups."""
    rng = random.Random(seed)
    pitch = int(font_px * 1.6)
    img = Image.new("L", (width, 60 + lines * pitch + 60), paper)
    draw = ImageDraw.Draw(img)
    f = font(font_px, mono)
    y = 40
    for i in range(lines):
        if dashed and i % 5 == 4:
            # a rule of dashes: a typed '-----' line and a drawn dashed line
            if i % 10 == 4:
                draw.text((20, y), "-" * 60, fill=ink, font=f)
            else:
                for x in range(20, width - 20, 14):
                    draw.rectangle((x, y + pitch // 3, x + 7, y + pitch // 3 + 2), fill=ink)
        else:
            text = " ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 5)))
            draw.text((20, y), text.upper() if caps else text, fill=ink, font=f)
        y += pitch
    return img.convert("RGB")


def dot_matrix(img: Image.Image, pitch: int) -> Image.Image:
    """Keep the ink only on a grid of dots (a dot-matrix printer's output)."""
    a = np.asarray(img.convert("L")).copy()
    mask = np.zeros_like(a, dtype=bool)
    r = max(1, pitch // 3)
    for dy in range(-r, r + 1):
        for dx in range(-r, r + 1):
            if dx * dx + dy * dy <= r * r:
                mask[(pitch // 2 + dy)::pitch, (pitch // 2 + dx)::pitch] = True
    a[~mask] = 255
    return Image.fromarray(a).filter(ImageFilter.MaxFilter(1)).convert("RGB")


def photo_noise(img: Image.Image, seed: int = 0) -> Image.Image:
    """Uneven light, sensor noise and a little blur, as a phone photo of a receipt."""
    rng = np.random.default_rng(seed)
    a = np.asarray(img.convert("L"), dtype=np.float32)
    h, w = a.shape
    light = np.linspace(0.75, 1.0, w)[None, :] * np.linspace(1.0, 0.85, h)[:, None]
    a = a * light + rng.normal(0, 14, a.shape)
    out = Image.fromarray(np.clip(a, 0, 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(0.8))
    return out.convert("RGB")


def line_ink(font_px: int, caps: bool) -> float:
    """About how tall a line of this font is on the page (caps and digits: cap height; mixed: ascender to
    descender)."""
    return font_px * (0.74 if caps else 0.95)


@pytest.mark.parametrize("font_px", [14, 24, 40])
def test_estimate_tracks_the_text_size(font_px):
    size = detect_text_size(receipt(font_px, mono=False))
    assert size.line_px is not None and size.source == "detector"
    assert 0.7 * line_ink(font_px, False) <= size.line_px <= 1.25 * line_ink(font_px, False), size
    assert size.body_px >= size.line_px and size.tall_px >= size.body_px


@pytest.mark.parametrize("case", ["caps", "dot-matrix", "faded-thermal", "dashed-rules", "photo-noise"])
def test_hard_print_does_not_read_as_tiny_text(case):
    font_px = 24
    caps = case in ("caps", "dot-matrix")
    if case == "caps":
        img = receipt(font_px, caps=True)
    elif case == "dot-matrix":
        img = dot_matrix(receipt(font_px, caps=True), pitch=3)
    elif case == "faded-thermal":
        img = receipt(font_px, ink=185, paper=238)  # light grey print on grey paper
    elif case == "dashed-rules":
        img = receipt(font_px, dashed=True)
    else:
        img = photo_noise(receipt(font_px))
    size = detect_text_size(img)
    assert size.line_px is not None, size.reason
    # never read as tiny text: at least 70% of the line's real ink height (and not inflated either)
    assert 0.7 * line_ink(font_px, caps) <= size.line_px <= 1.3 * line_ink(font_px, False), (case, size)


def test_estimate_is_scale_invariant():
    """The page resampled x0.3 .. x5 gets the same encoded content size (within 25%) and tokens (1.33x)."""
    page = receipt(40, width=900, lines=30)
    content, tokens = {}, {}
    for k in (0.3, 1, 3, 5):
        w, h = round(page.width * k), round(page.height * k)
        img = page.resize((w, h), Image.Resampling.LANCZOS if k < 1 else Image.Resampling.BICUBIC)
        size = detect_text_size(img)
        assert size.line_px is not None
        plan = plan_page((w, h), "qwen2", text_line_px=size.line_px, max_visual_tokens=16384)
        content[k] = plan.scale * (w * h) ** 0.5
        tokens[k] = plan.visual_tokens
    for k in (0.3, 3, 5):
        assert abs(content[k] / content[1] - 1) <= 0.25, (k, content)
        assert 1 / 1.33 <= tokens[k] / tokens[1] <= 1.33, (k, tokens)


def test_every_page_is_measured_at_the_same_area():
    for w, h in ((463, 1013), (4961, 7016), (1000, 1000), (300, 6000)):
        dw, dh = work_size(w, h)
        assert 0.95 * WORK_AREA_PX <= dw * dh <= 1.05 * WORK_AREA_PX
        assert abs((dw / dh) / (w / h) - 1) < 0.05


def test_a_large_jpeg_is_measured_on_a_reduced_decode_and_once(tmp_path):
    """A receipt photo saved as a 4x JPEG: the estimate reads a draft decode (never the full rendering), agrees
    with the estimate on the full image, and is kept with the page (a second call does not measure again)."""
    from docvlm.options import make_options
    from docvlm.sources import open_document

    big = receipt(24, width=640).resize((2560, 4 * receipt(24, width=640).height), Image.Resampling.BICUBIC)
    path = tmp_path / "big.jpg"
    big.save(path, quality=90)
    full = detect_text_size(big)
    with open_document(path, make_options()) as doc:
        page = next(doc.pages())
        size = estimate_text_size(page)
        assert page._image is None  # measured on the preview: the full page was never decoded
        assert size.line_px is not None and abs(size.line_px / full.line_px - 1) < 0.1, (size, full)
        assert estimate_text_size(page) is size


def test_no_text_pages_give_no_estimate_and_a_reason():
    blank = detect_text_size(Image.new("RGB", (800, 1100), "white"))
    assert blank.line_px is None and "too few" in blank.reason
    rng = np.random.default_rng(3)
    noise = Image.fromarray(rng.integers(0, 256, (900, 700, 3), dtype=np.uint8))
    got = detect_text_size(noise)
    # pure noise: no text, or at least nothing that reads as small text
    assert got.line_px is None or got.line_px >= 8, got
    strip = detect_text_size(Image.new("RGB", (300, 20000), "white"))
    assert strip.line_px is None and "strip" in strip.reason
    for w, h in ((1, 20000), (5, 5)):
        thin = detect_text_size(Image.new("RGB", (w, h), "white"))
        assert thin.line_px is None and "too small" in thin.reason


def test_samples_receipt_dashed_rules(samples_dir):
    """The receipt sample: DejaVu Sans Mono 24 px with '-----' rules; the rules must not set the estimate."""
    size = detect_text_size(Image.open(samples_dir / "receipt_long.jpg"))
    assert size.line_px is not None and 15 <= size.line_px <= 30, size


def speckle_band(img: Image.Image, seed: int = 0, share: float = 0.3) -> Image.Image:
    """A scanner's edge shadow: a band of random dark speckle, dense at the left edge, fading to the right."""
    rng = np.random.default_rng(seed)
    a = np.asarray(img.convert("L")).copy()
    band = int(a.shape[1] * share)
    mask = rng.random((a.shape[0], band)) < np.linspace(0.35, 0.0, band)[None, :]
    a[:, :band][mask] = rng.integers(0, 120, int(mask.sum()))
    return Image.fromarray(a).convert("RGB")


def test_speckle_beside_the_text_does_not_set_the_small_text():
    """Speckle closed horizontally makes wide components of about line height; a text line must hold glyphs
    nearly its height (textsize.MIN_LINE_GLYPHS), so the speckle neither sets the small text nor moves it far."""
    page = receipt(24, width=900)
    clean = detect_text_size(page)
    noisy = detect_text_size(speckle_band(page))
    assert noisy.line_px is not None and clean.line_px is not None
    assert noisy.line_px >= 0.85 * clean.line_px, (noisy, clean)
    assert noisy.line_px >= 0.7 * line_ink(24, False), noisy


def test_lines_without_solid_glyphs_are_kept(monkeypatch):
    """Where no line holds glyphs nearly its height (print of separate dots at the work size), the glyph test
    is not applied: the page keeps the lines it would have without it rather than reading as blank."""
    import docvlm.textsize as textsize

    img = dot_matrix(receipt(24, caps=True), pitch=3)
    monkeypatch.setattr(textsize, "MIN_LINE_GLYPHS", 0)
    unfiltered = detect_text_size(img)
    monkeypatch.setattr(textsize, "MIN_LINE_GLYPHS", 2)
    monkeypatch.setattr(textsize, "LINE_GLYPH_SHARE", 2.0)  # no glyph is twice its line: nothing supported
    fallback = detect_text_size(img)
    assert unfiltered.line_px is not None
    assert fallback.line_px == unfiltered.line_px and fallback.lines == unfiltered.lines
