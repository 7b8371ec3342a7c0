"""The embedded `ocr` engine: a PDF's own text layer when it is usable, else RapidOCR on the CPU.

Per page:

1. Text layer (PDF pages, `options.text_layer == "auto"`): the page's words are taken with their exact boxes
   when the layer is usable (see `text_layer_is_usable`), grouped into lines by the PDF's (block, line).
   Such a page is never rendered and never sees the OCR model.
2. Otherwise the page is rendered and read by RapidOCR with the PP-OCR ONNX models shipped inside the
   `rapidocr` wheel. The model files are passed by path, so RapidOCR never takes its download branch: the
   engine works with no network at any time. The model is created lazily, once per process. Detected
   quads become axis-aligned boxes shrunk vertically to the text's ink (`tighten_to_ink`; the detector pads
   them); words come from RapidOCR's word boxes, or from splitting the line box by character positions.

`task.kind == "ground"` is supported minimally: the page is read as above and only the lines whose text
contains the query (case-insensitive, whitespace-collapsed, fuzzy: similarity >= `GROUND_MIN_SIMILARITY`
over a window of the query's length) are returned, with `label` = the query and the box narrowed to the
matching words. Extraction (`kind == "extract"`) returns the read lines; field rules run downstream.

Never imports torch.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Sequence
from difflib import SequenceMatcher
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING, Any

from docvlm.datamodel import EngineInfo, Line, PageResult, Word, failed_page
from docvlm.errors import DocvlmError, EngineError, ModelLoadError
from docvlm.geometry import clamp_box, is_valid_box, split_line_into_words, union_box

if TYPE_CHECKING:
    from PIL import Image

    from docvlm.datamodel import Box
    from docvlm.engines.base import Task
    from docvlm.options import ConvertOptions
    from docvlm.sources import SourcePage, TextLayer

# --- text-layer usability rule ---------------------------------------------------------------------------
MIN_TEXT_LAYER_CHARS = 20
"""Fewer characters than this (e.g. only a page number or a stamp on a scan) and the page is OCRed."""
MAX_GARBAGE_RATIO = 0.10
"""More than 10% replacement characters / unmapped glyphs / controls: the layer is garbage, OCR instead."""
MAX_IMAGE_COVERAGE = 0.85
"""A page mostly covered by images *and* carrying text is treated as a scan with an invisible OCR layer
made by some unknown tool: we re-OCR it rather than trust that layer. A born-digital page with a full-page
background image is OCRed as well; that costs time, not correctness."""

# --- RapidOCR settings -----------------------------------------------------------------------------------
MAX_SIDE_LEN_PX = 2400
"""RapidOCR shrinks an image whose longer side exceeds this before detection (its default is 2000). 2400
keeps a 200-dpi A4 page (1654 x 2339 px) at full resolution, so 6-pt text (x-height ~8 px) stays
detectable; larger scans are shrunk, which keeps memory and time bounded (bench/ocr_bench.py)."""
DET_LIMIT_SIDE_LEN_PX = 736
"""Detection input: the shorter side is brought up to at least this (RapidOCR `limit_type: min`), which
helps narrow receipts (450 px wide) without shrinking anything."""
TIGHTEN_BOXES = True
"""Shrink detected boxes vertically to the text's ink (see `ink_rows`); measured by bench/ocr_bench.py."""
MODEL_FILES = {
    "Det": "PP-OCRv6_det_small.onnx",
    "Rec": "PP-OCRv6_rec_small.onnx",
    "Cls": "ch_ppocr_mobile_v2.0_cls_mobile.onnx",
}
"""The models bundled in the rapidocr 3.x wheel (rapidocr/models/)."""

INK_DARKER_BY = 40
"""A pixel is ink when it is this much darker (0-255 grey) than the line crop's background (90th percentile)."""
INK_ROW_SHARE = 0.01
"""A row of a line crop belongs to the text when at least this share of its pixels is ink."""
INK_MARGIN = 0.1
"""Margin kept above and below the ink, as a share of the ink height (annotated boxes are not pixel-tight)."""

GROUND_MIN_SIMILARITY = 0.8
ROW_OVERLAP = 0.5
"""Two OCR lines are on the same row when their vertical overlap is at least half the smaller height."""

_MODEL_LOCK = threading.Lock()
_MODELS: dict[tuple, Any] = {}


def _package_version(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:
        return "not installed"


def rapidocr_model_dir() -> Path:
    """Folder of the ONNX models shipped inside the installed rapidocr wheel (without importing rapidocr)."""
    import importlib.util

    spec = importlib.util.find_spec("rapidocr")
    if spec is None or spec.origin is None:
        raise ModelLoadError("rapidocr is not installed: pip install 'rapidocr>=3,<4' onnxruntime")
    return Path(spec.origin).parent / "models"


def rapidocr_params(*, max_side_len: int = MAX_SIDE_LEN_PX, threads: int | None = None) -> dict[str, Any]:
    """RapidOCR parameters: packaged models by explicit path (no download branch), CPU onnxruntime, quiet."""
    model_dir = rapidocr_model_dir()
    params: dict[str, Any] = {
        "Global.log_level": "error",
        "Global.max_side_len": max_side_len,
        "Det.limit_side_len": DET_LIMIT_SIDE_LEN_PX,
        "Det.limit_type": "min",
    }
    for stage, filename in MODEL_FILES.items():
        path = model_dir / filename
        if not path.is_file():
            raise ModelLoadError(
                f"RapidOCR model {path} is missing: reinstall the wheel (pip install --force-reinstall rapidocr)"
            )
        params[f"{stage}.model_path"] = str(path)
    if threads:
        params["EngineConfig.onnxruntime.intra_op_num_threads"] = threads
    return params


def ocr_threads() -> int | None:
    """onnxruntime threads per process: OMP_NUM_THREADS when set (batch workers set it), else all cores."""
    value = os.environ.get("OMP_NUM_THREADS", "")
    return int(value) if value.isdigit() and int(value) > 0 else None


def load_rapidocr(*, max_side_len: int = MAX_SIDE_LEN_PX) -> Any:
    """The process-wide RapidOCR instance for these settings, created on first use."""
    threads = ocr_threads()
    key = (max_side_len, threads)
    with _MODEL_LOCK:
        model = _MODELS.get(key)
        if model is None:
            params = rapidocr_params(max_side_len=max_side_len, threads=threads)
            try:
                from rapidocr import RapidOCR

                model = RapidOCR(params=params)
            except ImportError as exc:
                raise ModelLoadError(f"cannot import rapidocr ({exc}): pip install 'rapidocr>=3,<4' onnxruntime") from exc
            except Exception as exc:  # noqa: BLE001 - any failure to build the model makes the engine unusable
                raise ModelLoadError(f"cannot load the RapidOCR models: {type(exc).__name__}: {exc}") from exc
            _MODELS[key] = model
    return model


def text_layer_is_usable(layer: TextLayer | None) -> bool:
    """True when a page's text layer can replace OCR (see the MIN_/MAX_ constants above for the rule)."""
    if layer is None or not layer.words:
        return False
    return (
        layer.char_count >= MIN_TEXT_LAYER_CHARS
        and layer.garbage_ratio <= MAX_GARBAGE_RATIO
        and layer.image_coverage < MAX_IMAGE_COVERAGE
    )


def lines_from_text_layer(layer: TextLayer) -> list[Line]:
    """Group text-layer words by their PDF (block, line), in the PDF's order; exact word boxes, confidence 1."""
    groups: dict[tuple[int, int], list] = {}
    for word in layer.words:
        if word.text.strip():
            groups.setdefault((word.block, word.line), []).append(word)
    lines = []
    for words in groups.values():
        out_words = [Word(text=w.text, bbox_page_px=tuple(w.bbox_page_px), confidence=1.0) for w in words]
        text = " ".join(w.text for w in words)
        # the PDF's own text, where spaces were restored from glyph gaps (see docvlm.sources)
        raw = "".join(("" if w.glued else " ") + w.text for w in words).lstrip() if any(
            getattr(w, "glued", False) for w in words) else None
        sizes = sorted(w.font_size_pt for w in words)
        lines.append(
            Line(
                text=text,
                bbox_page_px=union_box([w.bbox_page_px for w in words]),
                confidence=1.0,
                words=out_words,
                raw_text=raw,
                font_size_pt=sizes[len(sizes) // 2] if sizes and sizes[0] > 0 else None,
                bold=sum(len(w.text) for w in words if getattr(w, "bold", False)) * 2 > len(text.replace(" ", "")),
            )
        )
    return lines


def quad_to_box(quad: Sequence[Sequence[float]]) -> Box:
    """A detector quadrilateral (4 corner points) -> its axis-aligned bounding box."""
    xs = [float(p[0]) for p in quad]
    ys = [float(p[1]) for p in quad]
    return (min(xs), min(ys), max(xs), max(ys))


def ink_rows(gray: Any, box: Box) -> tuple[float, float] | None:
    """Top and bottom of the ink inside `box` of a greyscale page (numpy array), or None when unclear.

    The detector pads its boxes (unclip ratio) well above and below the text; grounding wants the text.
    Dark text on a light background only: on inverted or busy crops every row looks like ink (or none
    does) and the box is left as detected.
    """
    import numpy as np

    x0, y0, x1, y1 = (int(round(v)) for v in box)
    crop = gray[y0:y1, x0:x1]
    if crop.size == 0 or crop.shape[0] < 4:
        return None
    background = float(np.percentile(crop, 90))
    ink = crop < background - INK_DARKER_BY
    rows = np.flatnonzero(ink.mean(axis=1) >= INK_ROW_SHARE)
    if rows.size == 0 or rows.size == crop.shape[0]:
        return None
    return float(y0 + rows[0]), float(y0 + rows[-1] + 1)


def tighten_to_ink(line: Line, gray: Any) -> Line:
    """Shrink a line and its words vertically to the ink rows of the line box (never grows a box)."""
    rows = ink_rows(gray, line.bbox_page_px)
    if rows is None:
        return line
    top, bottom = rows
    margin = max(1.0, INK_MARGIN * (bottom - top))
    top, bottom = top - margin, bottom + margin
    x0, y0, x1, y1 = line.bbox_page_px
    top, bottom = max(y0, top), min(y1, bottom)
    if bottom - top < 2:
        return line
    words = [
        w.model_copy(update={"bbox_page_px": (w.bbox_page_px[0], max(w.bbox_page_px[1], top),
                                              w.bbox_page_px[2], min(w.bbox_page_px[3], bottom))})
        for w in line.words
    ]
    words = [w for w in words if is_valid_box(w.bbox_page_px)]
    return line.model_copy(update={"bbox_page_px": (x0, top, x1, bottom), "words": words})


def lines_from_rapidocr(output: Any, width: int, height: int) -> list[Line]:
    """RapidOCR output -> lines in page pixels (the image given to RapidOCR is the page), reading order."""
    boxes = getattr(output, "boxes", None)
    txts = getattr(output, "txts", None)
    if boxes is None or txts is None:
        return []
    scores = output.scores or [None] * len(txts)
    word_results = output.word_results or ()
    # RapidOCR drops lines without word boxes from word_results; use them only when they line up one-to-one.
    aligned = len(word_results) == len(txts)
    lines = []
    for i, (quad, text, score) in enumerate(zip(boxes, txts, scores, strict=True)):
        text = " ".join(str(text).split())
        box = clamp_box(quad_to_box(quad), width, height)
        if not text or not is_valid_box(box):
            continue
        confidence = None if score is None else round(min(1.0, max(0.0, float(score))), 4)
        words = _words_from_rapidocr(word_results[i], width, height) if aligned else []
        if not words or " ".join(w.text for w in words).replace(" ", "") != text.replace(" ", ""):
            words = [
                Word(text=t, bbox_page_px=b, confidence=confidence) for t, b in split_line_into_words(text, box)
            ]
        lines.append(Line(text=text, bbox_page_px=box, confidence=confidence, words=words))
    return sort_reading_order(lines)


def _words_from_rapidocr(items: Sequence, width: int, height: int) -> list[Word]:
    words = []
    for item in items:
        text, score, quad = item[0], item[1], item[2]
        box = clamp_box(quad_to_box(quad), width, height)
        if str(text).strip() and is_valid_box(box):
            conf = None if score is None else round(min(1.0, max(0.0, float(score))), 4)
            words.append(Word(text=str(text).strip(), bbox_page_px=box, confidence=conf))
    words.sort(key=lambda w: w.bbox_page_px[0])
    return words


def sort_reading_order(lines: Sequence[Line]) -> list[Line]:
    """Top-to-bottom rows, left-to-right within a row; a row takes lines overlapping it vertically."""
    rows: list[list[Line]] = []
    for line in sorted(lines, key=lambda ln: (ln.bbox_page_px[1], ln.bbox_page_px[0])):
        y0, y1 = line.bbox_page_px[1], line.bbox_page_px[3]
        if rows:
            row = rows[-1]
            ry0 = min(ln.bbox_page_px[1] for ln in row)
            ry1 = max(ln.bbox_page_px[3] for ln in row)
            overlap = min(y1, ry1) - max(y0, ry0)
            if overlap >= ROW_OVERLAP * min(y1 - y0, ry1 - ry0):
                row.append(line)
                continue
        rows.append([line])
    return [ln for row in rows for ln in sorted(row, key=lambda ln: ln.bbox_page_px[0])]


def _norm(text: str) -> str:
    return " ".join(text.split()).lower()


def fuzzy_contains(text: str, query: str) -> float:
    """Best similarity of `query` to a window of `text` of the query's length (1.0 for a substring)."""
    t, q = _norm(text), _norm(query)
    if not q or not t:
        return 0.0
    if q in t:
        return 1.0
    n = len(q)
    if len(t) <= n:
        return SequenceMatcher(None, t, q).ratio()
    return max(SequenceMatcher(None, t[i : i + n], q).ratio() for i in range(len(t) - n + 1))


def ground_lines(lines: Sequence[Line], query: str) -> list[Line]:
    """Lines matching `query`, labelled with it, each box narrowed to the run of words that matches best."""
    found = []
    for line in lines:
        if fuzzy_contains(line.text, query) < GROUND_MIN_SIMILARITY:
            continue
        words = list(line.words)
        best: tuple[float, int, int] = (0.0, 0, len(words))
        for i in range(len(words)):
            for j in range(i + 1, len(words) + 1):
                score = SequenceMatcher(None, _norm(" ".join(w.text for w in words[i:j])), _norm(query)).ratio()
                if score > best[0]:
                    best = (score, i, j)
        if words and best[0] >= GROUND_MIN_SIMILARITY:
            run = words[best[1] : best[2]]
            line = line.model_copy(
                update={
                    "text": " ".join(w.text for w in run),
                    "bbox_page_px": union_box([w.bbox_page_px for w in run]),
                    "words": run,
                }
            )
        found.append(line.model_copy(update={"label": query}))
    return found


class OcrEngine:
    """Text layer when usable, RapidOCR (bundled ONNX models, CPU, offline) otherwise. See the module doc."""

    name = "ocr"

    def __init__(
        self, options: ConvertOptions, *, max_side_len: int | None = None, tighten_boxes: bool | None = None
    ) -> None:
        self.options = options
        self.max_side_len = max_side_len or MAX_SIDE_LEN_PX
        self.tighten_boxes = TIGHTEN_BOXES if tighten_boxes is None else tighten_boxes

    def info(self) -> EngineInfo:
        """The OCR model set and versions; does not load the model."""
        return EngineInfo(
            name=self.name,
            model="RapidOCR " + " + ".join(Path(f).stem for f in MODEL_FILES.values()),
            device="cpu",
            dtype="fp32",
            detail=(
                f"rapidocr {_package_version('rapidocr')}, onnxruntime {_package_version('onnxruntime')}; "
                f"models bundled in the rapidocr wheel, no download; max_side_len={self.max_side_len}, "
                f"det limit_side_len={DET_LIMIT_SIDE_LEN_PX} (min); text layer: {self.options.text_layer}"
            ),
        )

    def process_pages(self, pages: Sequence[SourcePage], task: Task) -> list[PageResult]:
        """Read each page (text layer or OCR); a page that fails is a failure result, never an exception.

        Raises:
            docvlm.errors.ModelLoadError: when RapidOCR or its bundled models cannot be loaded.
        """
        return [self.process_page(page, task) for page in pages]

    def process_page(self, page: SourcePage, task: Task) -> PageResult:
        started = time.perf_counter()
        try:
            lines, source = self._read_page(page)
        except ModelLoadError:
            raise
        except DocvlmError as exc:
            return failed_page(page, str(page.path), exc, seconds=time.perf_counter() - started)
        except Exception as exc:  # noqa: BLE001 - recorded on the page with its type, never swallowed
            wrapped = EngineError(f"{type(exc).__name__}: {exc}")
            return failed_page(page, str(page.path), wrapped, seconds=time.perf_counter() - started)
        if task.kind == "ground" and task.query:
            lines = ground_lines(lines, task.query)
        return PageResult(
            index=page.index,
            width_px=page.width_px,
            height_px=page.height_px,
            dpi=page.dpi,
            status="success",
            text_source=source,
            lines=lines,
            seconds=round(time.perf_counter() - started, 4),
        )

    def _read_page(self, page: SourcePage) -> tuple[list[Line], str]:
        if self.options.text_layer == "auto":
            layer = page.text_layer()
            if text_layer_is_usable(layer):
                return lines_from_text_layer(layer), "text_layer"
        image = page.render()
        return self.ocr_image(image), "ocr"

    def ocr_image(self, image: Image.Image) -> list[Line]:
        """Run RapidOCR on an RGB image; lines in the image's pixels, reading order."""
        import numpy as np

        model = load_rapidocr(max_side_len=self.max_side_len)
        output = model(image, return_word_box=True)
        lines = lines_from_rapidocr(output, image.width, image.height)
        if self.tighten_boxes and lines:
            gray = np.asarray(image.convert("L"))
            lines = [tighten_to_ink(line, gray) for line in lines]
        return lines
