"""The embedded `ocr` engine: a PDF's own text layer when it is usable, else RapidOCR on the CPU.

Per page:

1. Text layer (PDF pages, `options.text_layer == "auto"`): the page's words are taken with their exact boxes
   when the layer is usable (see `text_layer_is_usable`), grouped into lines by the PDF's (block, line).
   Such a page is never rendered and never sees the OCR model.
2. Otherwise the page is rendered and read by RapidOCR with the PP-OCR ONNX models shipped inside the
   `rapidocr` wheel. The model files are passed by path, so RapidOCR never takes its download branch: the
   engine works with no network at any time. The model is created lazily, once per process, on OpenVINO
   where it runs, else onnxruntime (`docvlm.engines.ocr_backend`; `--ocr-backend`), with the threads this
   worker may use (`docvlm.threads`). Detected quads become axis-aligned boxes shrunk vertically to the
   text's ink (`tighten_to_ink`; the detector pads them); words come from RapidOCR's word boxes, or from
   splitting the line box by character positions.
3. Orientation is decided once per page (`docvlm.orientation`): a turned or mirrored page is turned upright
   and read again, and its boxes are mapped back to the page as given. The per-line angle classifier is off
   unless `--line-orientation` (it costs time and flips upright lines).
4. A page much taller than wide (a receipt strip) is read in overlapping strips so it is not shrunk to an
   unreadable width; each line is kept from the one strip that holds its centre away from the cut.

Pages of one `process_pages` call are pipelined: the next page is rendered (or its text layer read) in a
background thread while this one is recognized.

`task.kind == "ground"` is supported minimally: the page is read as above and only the lines whose text
contains the query (case-insensitive, whitespace-collapsed, fuzzy: similarity >= `GROUND_MIN_SIMILARITY`
over a window of the query's length) are returned, with `label` = the query and the box narrowed to the
matching words. Extraction (`kind == "extract"`) returns the read lines; field rules run downstream.

Never imports torch.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING, Any

from docvlm.datamodel import EngineInfo, Line, PageResult, ReadOrientation, Word, failed_page
from docvlm.engines.ocr_backend import (
    OcrBackendChoice,
    backend_params,
    choose_ocr_backend,
    inference_precision,
    runtime_version,
)
from docvlm.errors import DocvlmError, EngineError, ModelLoadError
from docvlm.geometry import clamp_box, is_valid_box, split_line_into_words, union_box, upright_to_page
from docvlm.ocr_models import MODEL_FILES, rapidocr_model_path
from docvlm.orientation import OrientationResult, decide_orientation, transpose_image
from docvlm.rows import sort_reading_order
from docvlm.text_match import MIN_SIMILARITY, best_word_runs, fuzzy_contains
from docvlm.threads import inference_threads

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

INK_DARKER_BY = 40
"""A pixel is ink when it is this much darker (0-255 grey) than the line crop's background (90th percentile)."""
INK_ROW_SHARE = 0.01
"""A row of a line crop belongs to the text when at least this share of its pixels is ink."""
INK_MARGIN = 0.1
"""Margin kept above and below the ink, as a share of the ink height (annotated boxes are not pixel-tight)."""

STRIP_ASPECT = 4.0
"""A page taller than this many widths (and taller than max_side_len) is read in strips (long receipts)."""
STRIP_OVERLAP = 0.25
"""Overlap of neighbouring strips, as a share of the strip height (a line cut by one strip is whole in the next)."""

SIDEWAYS = ("rotate_90", "rotate_270", "transpose", "transverse")
SIDEWAYS_KEEP = 0.5
"""A page turned from sideways is read upright unless that reads under half the confidence-weighted text of
the sideways read (bench/ocr_bench.py --rotate: with 1.0, 2 of 8 receipts turned 90 degrees stayed sideways
and read worse, F1 0.870 against 0.904 upright)."""

VERTICAL_ASPECT = 1.5
"""A line box this many times taller than wide holds vertical text (RapidOCR turns such crops too)."""

GROUND_MIN_SIMILARITY = MIN_SIMILARITY

_MODEL_LOCK = threading.Lock()
_MODELS: dict[tuple, Any] = {}


def _package_version(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:
        return "not installed"




def rapidocr_params(
    *, max_side_len: int = MAX_SIDE_LEN_PX, threads: int | None = None, backend: str = "onnxruntime",
    line_orientation: bool = False,
) -> dict[str, Any]:
    """RapidOCR parameters: packaged models by explicit path (no download branch), CPU `backend`, quiet."""
    params: dict[str, Any] = {
        "Global.log_level": "error",
        "Global.max_side_len": max_side_len,
        "Global.use_cls": line_orientation,
        "Det.limit_side_len": DET_LIMIT_SIDE_LEN_PX,
        "Det.limit_type": "min",
    }
    for stage in MODEL_FILES:
        params[f"{stage}.model_path"] = str(rapidocr_model_path(stage))
    params.update(backend_params(backend, threads or inference_threads()))  # type: ignore[arg-type]
    return params


def _warm_up(model: Any, line_orientation: bool) -> None:
    """One call on a small drawn line, so every model is compiled now and a broken runtime fails here."""
    import numpy as np
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (320, 64), "white")
    ImageDraw.Draw(img).text((10, 20), "docvlm 2026", fill="black")
    img = img.resize((960, 192))
    model(np.asarray(img)[:, :, ::-1], use_det=True, use_cls=line_orientation, use_rec=True)
    model(np.asarray(img.crop((0, 40, 960, 150)))[:, :, ::-1], use_det=False, use_cls=False, use_rec=True)


def _build_rapidocr(params: dict[str, Any], line_orientation: bool) -> Any:
    try:
        from rapidocr import RapidOCR
    except ImportError as exc:
        raise ModelLoadError(f"cannot import rapidocr ({exc}): pip install 'rapidocr>=3,<4' onnxruntime") from exc
    model = RapidOCR(params=params)
    _warm_up(model, line_orientation)
    return model


def load_rapidocr(
    *, max_side_len: int = MAX_SIDE_LEN_PX, backend: str = "auto", line_orientation: bool = False
) -> tuple[Any, OcrBackendChoice]:
    """The process-wide RapidOCR instance for these settings and the backend it runs on, made on first use.

    `backend="auto"` takes OpenVINO when it imports, loads the models and reads a line; when it fails at
    any of these, onnxruntime, with the failure as the recorded reason.
    """
    threads = inference_threads()
    key = (max_side_len, threads, backend, line_orientation)
    with _MODEL_LOCK:
        cached = _MODELS.get(key)
        if cached is not None:
            return cached
        choice = choose_ocr_backend(backend)  # type: ignore[arg-type]
        try:
            params = rapidocr_params(
                max_side_len=max_side_len, threads=threads, backend=choice.name, line_orientation=line_orientation
            )
            model = _build_rapidocr(params, line_orientation)
        except ModelLoadError:
            raise
        except Exception as exc:  # noqa: BLE001 - any failure to build the model makes this backend unusable
            if backend != "auto" or choice.name == "onnxruntime":
                raise ModelLoadError(
                    f"cannot load the RapidOCR models on {choice.name}: {type(exc).__name__}: {exc}"
                ) from exc
            choice = OcrBackendChoice(
                "onnxruntime", f"auto: openvino failed to run the models ({type(exc).__name__}: {exc})"
            )
            try:
                params = rapidocr_params(
                    max_side_len=max_side_len, threads=threads, backend="onnxruntime",
                    line_orientation=line_orientation,
                )
                model = _build_rapidocr(params, line_orientation)
            except Exception as exc2:  # noqa: BLE001
                raise ModelLoadError(f"cannot load the RapidOCR models: {type(exc2).__name__}: {exc2}") from exc2
        _MODELS[key] = (model, choice)
    return model, choice


def text_layer_is_usable(layer: TextLayer | None) -> bool:
    """True when a page's text layer can replace OCR (see the MIN_/MAX_ constants above for the rule) and
    reads as text, not mojibake (`docvlm.text_plausibility`)."""
    if layer is None or not layer.words:
        return False
    return (
        layer.char_count >= MIN_TEXT_LAYER_CHARS
        and layer.garbage_ratio <= MAX_GARBAGE_RATIO
        and layer.image_coverage < MAX_IMAGE_COVERAGE
        and text_layer_rejection(layer) is None
    )


def text_layer_rejection(layer: TextLayer | None) -> str | None:
    """Why a text layer with text is not read although it has enough characters: implausible (mojibake),
    with the figures; None otherwise."""
    from docvlm.text_plausibility import judge_words

    if layer is None or not layer.words or layer.char_count < MIN_TEXT_LAYER_CHARS:
        return None
    verdict = judge_words(w.text for w in layer.words)
    return None if verdict.plausible else f"text layer implausible: {verdict.reason}"


@dataclass(frozen=True)
class _RejectedLayer:
    """A page rendered for OCR because its text layer was judged implausible (the reason goes on the page)."""

    image: Any
    reason: str


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




def ground_lines(lines: Sequence[Line], query: str) -> list[Line]:
    """Lines matching `query`, labelled with it, each box narrowed to the run of words that matches best."""
    found = []
    for line in lines:
        if fuzzy_contains(line.text, query) < GROUND_MIN_SIMILARITY:
            continue
        words = list(line.words)
        runs = best_word_runs([w.text for w in words], query, threshold=GROUND_MIN_SIMILARITY)
        if words and runs:
            run = words[runs[0][1] : runs[0][2]]
            line = line.model_copy(
                update={
                    "text": " ".join(w.text for w in run),
                    "bbox_page_px": union_box([w.bbox_page_px for w in run]),
                    "words": run,
                }
            )
        found.append(line.model_copy(update={"label": query}))
    return found


def map_line_to_page(line: Line, orientation: str, upright_size: tuple[int, int]) -> Line:
    """A line read on the upright image -> the same line with its boxes in page pixels of the page as given."""
    if orientation == "none":
        return line
    words = [
        w.model_copy(update={"bbox_page_px": upright_to_page(w.bbox_page_px, orientation, upright_size)})
        for w in line.words
    ]
    box = upright_to_page(line.bbox_page_px, orientation, upright_size)
    return line.model_copy(update={"bbox_page_px": box, "words": words})


def shift_line(line: Line, dy: float) -> Line:
    """A line read on a strip starting `dy` pixels down the page -> the same line in page pixels."""

    def down(b: Box) -> Box:
        return (b[0], b[1] + dy, b[2], b[3] + dy)

    words = [w.model_copy(update={"bbox_page_px": down(w.bbox_page_px)}) for w in line.words]
    return line.model_copy(update={"bbox_page_px": down(line.bbox_page_px), "words": words})


def strip_spans(width: int, height: int, max_side_len: int) -> list[tuple[int, int]]:
    """Vertical (top, bottom) spans to read a tall page in, overlapping; one span for an ordinary page."""
    if height <= max_side_len or height <= STRIP_ASPECT * width:
        return [(0, height)]
    strip = int(min(max_side_len, max(STRIP_ASPECT * width, 64)))
    step = max(1, int(strip * (1 - STRIP_OVERLAP)))
    spans = []
    top = 0
    while True:
        bottom = min(height, top + strip)
        spans.append((top, bottom))
        if bottom >= height:
            return spans
        top += step


def _owned(line: Line, span: tuple[int, int], spans: Sequence[tuple[int, int]], i: int) -> bool:
    """True when the line's centre lies in the part of strip i that no neighbour reads further from its cut."""
    centre = (line.bbox_page_px[1] + line.bbox_page_px[3]) / 2
    lo = span[0] if i == 0 else (span[0] + spans[i - 1][1]) / 2
    hi = span[1] if i == len(spans) - 1 else (span[1] + spans[i + 1][0]) / 2
    return lo <= centre < hi


class OcrEngine:
    """Text layer when usable, RapidOCR (bundled ONNX models, CPU, offline) otherwise. See the module doc."""

    name = "ocr"

    def __init__(
        self,
        options: ConvertOptions,
        *,
        max_side_len: int | None = None,
        tighten_boxes: bool | None = None,
        page_orientation: bool = True,
    ) -> None:
        self.options = options
        self.max_side_len = max_side_len or MAX_SIDE_LEN_PX
        self.tighten_boxes = TIGHTEN_BOXES if tighten_boxes is None else tighten_boxes
        self.page_orientation = page_orientation
        self.backend_request = getattr(options, "ocr_backend", "auto")
        self.line_orientation = bool(getattr(options, "line_orientation", False))
        self.last_orientation: OrientationResult | None = None
        """How the last OCRed page was turned (for tests and benches; results are in page pixels anyway)."""
        self._backend: OcrBackendChoice | None = None

    def info(self) -> EngineInfo:
        """The OCR model set, backend and versions; does not load the model (the backend is probed if unloaded)."""
        choice = self._backend
        if choice is None:
            try:
                choice = choose_ocr_backend(self.backend_request)  # type: ignore[arg-type]
            except ModelLoadError as exc:
                choice = OcrBackendChoice("onnxruntime", f"not loaded: {exc}")
        return EngineInfo(
            name=self.name,
            model="RapidOCR " + " + ".join(Path(f).stem for f in MODEL_FILES.values()),
            device="cpu",
            dtype=inference_precision(choice.name),
            detail=(
                f"backend {choice.name} {runtime_version(choice.name)} ({choice.reason}); "
                f"rapidocr {_package_version('rapidocr')}; "
                f"models bundled in the rapidocr wheel, no download; max_side_len={self.max_side_len}, "
                f"det limit_side_len={DET_LIMIT_SIDE_LEN_PX} (min); "
                f"orientation: {'per line (angle classifier)' if self.line_orientation else 'per page'}; "
                f"text layer: {self.options.text_layer}"
            ),
        )

    def _model(self) -> Any:
        model, self._backend = load_rapidocr(
            max_side_len=self.max_side_len, backend=self.backend_request, line_orientation=self.line_orientation
        )
        return model

    def process_pages(self, pages: Sequence[SourcePage], task: Task) -> list[PageResult]:
        """Read each page (text layer or OCR); a page that fails is a failure result, never an exception.

        The next page is prepared (rendered, or its text layer read) in one background thread while this
        page is recognized; only that thread touches the document during the call.

        Raises:
            docvlm.errors.ModelLoadError: when RapidOCR or its bundled models cannot be loaded.
        """
        if len(pages) <= 1:
            return [self.process_page(page, task) for page in pages]
        from concurrent.futures import ThreadPoolExecutor

        results = []
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="docvlm-prefetch") as prefetch:
            pending = prefetch.submit(self._prepare, pages[0])
            for i, page in enumerate(pages):
                started = time.perf_counter()
                prepared = _outcome(pending)
                if i + 1 < len(pages):
                    pending = prefetch.submit(self._prepare, pages[i + 1])
                results.append(self._finish_page(page, task, prepared, started))
        return results

    def process_page(self, page: SourcePage, task: Task) -> PageResult:
        started = time.perf_counter()
        try:
            prepared: Any = self._prepare(page)
        except Exception as exc:  # noqa: BLE001 - handed to _finish_page, which records it on the page
            prepared = exc
        return self._finish_page(page, task, prepared, started)

    def _prepare(self, page: SourcePage) -> tuple[list[Line], str] | Image.Image:
        """The page's text-layer lines when usable, else its rendered image (the part that can run ahead)."""
        if self.options.text_layer == "auto":
            layer = page.text_layer()
            if text_layer_is_usable(layer):
                return lines_from_text_layer(layer), "text_layer"
            if (rejected := text_layer_rejection(layer)) is not None:
                return _RejectedLayer(page.render(), rejected)  # type: ignore[return-value]
        return page.render()

    def _finish_page(self, page: SourcePage, task: Task, prepared: Any, started: float) -> PageResult:
        read_orientation: ReadOrientation | None = None
        rejected = None
        if isinstance(prepared, _RejectedLayer):
            prepared, rejected = prepared.image, prepared.reason
        try:
            if isinstance(prepared, BaseException):
                raise prepared
            if isinstance(prepared, tuple):
                lines, source = prepared
            else:
                lines, source = self.ocr_image(prepared), "ocr"
                decided = self.last_orientation
                if decided is not None:
                    read_orientation = ReadOrientation(orientation=decided.orientation, reason=decided.reason)
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
            text_layer_rejected=rejected,
            lines=lines,
            read_orientation=read_orientation,
            seconds=round(time.perf_counter() - started, 4),
        )

    def ocr_image(self, image: Image.Image) -> list[Line]:
        """Run RapidOCR on an RGB image; lines in the image's pixels, reading order.

        The page orientation is checked once (unless the per-line classifier is on): a turned page is read
        again upright, and the reading with more confident text is kept, its boxes in the image's pixels.
        """
        model = self._model()
        self.last_orientation = None
        lines = self._read_upright(model, image)
        if self.page_orientation and not self.line_orientation and lines:
            decision = decide_orientation(
                image,
                [ln.bbox_page_px for ln in lines],
                [ln.confidence for ln in lines],
                lambda crops: self._recognize(model, crops),
            )
            self.last_orientation = decision
            if decision.orientation != "none":
                upright = transpose_image(image, decision.orientation)
                turned = self._read_upright(model, upright)
                # a sideways first read ran the detector on vertical text and RapidOCR turned each crop one
                # fixed way, which is right for one of 90/270: its confidences flatter it, so the upright
                # reading is kept unless it reads much less
                keep_at = SIDEWAYS_KEEP if decision.orientation in SIDEWAYS else 1.0
                if _weight(turned) > keep_at * _weight(lines):
                    return [map_line_to_page(ln, decision.orientation, upright.size) for ln in turned]
                self.last_orientation = OrientationResult(
                    "none", decision.reason + "; kept as given: the turned page read less text", decision.confidences
                )
        return lines

    def _read_upright(self, model: Any, image: Image.Image) -> list[Line]:
        """Read an image as it stands (in strips when it is a long receipt); lines in its pixels."""
        import numpy as np

        rgb = np.asarray(image.convert("RGB"))
        gray = np.asarray(image.convert("L")) if self.tighten_boxes else None
        spans = strip_spans(image.width, image.height, self.max_side_len)
        lines: list[Line] = []
        for i, span in enumerate(spans):
            part = rgb[span[0] : span[1]]
            # RapidOCR works in OpenCV's BGR order: hand it BGR so colour inputs are read as their colours
            output = model(
                np.ascontiguousarray(part[:, :, ::-1]), return_word_box=True,
                use_det=True, use_cls=self.line_orientation, use_rec=True,
            )
            found = lines_from_rapidocr(output, image.width, span[1] - span[0])
            found = [shift_line(ln, span[0]) for ln in found] if span[0] else found
            if len(spans) > 1:
                found = [ln for ln in found if _owned(ln, span, spans, i)]
            lines.extend(found)
        if not self.line_orientation:
            lines = self._read_vertical_lines(model, image, lines)
        if gray is not None and lines:
            lines = [tighten_to_ink(line, gray) for line in lines]
        return sort_reading_order(lines) if len(spans) > 1 else lines

    def _recognize(self, model: Any, crops: list[Image.Image]) -> list[float]:
        """Recognition confidence of each crop, read as one text line (no detection)."""
        return [score for _, score in self._read_crops(model, crops)]

    def _read_crops(self, model: Any, crops: list[Image.Image]) -> list[tuple[str, float]]:
        """Text and confidence of each crop, read as one text line (no detection)."""
        import numpy as np

        read = []
        for crop in crops:
            arr = np.ascontiguousarray(np.asarray(crop.convert("RGB"))[:, :, ::-1])
            out = model(arr, use_det=False, use_cls=False, use_rec=True)
            txts = list(getattr(out, "txts", None) or [])
            scores = list(getattr(out, "scores", None) or [])
            read.append((" ".join(str(txts[0]).split()), float(scores[0])) if txts and scores else ("", 0.0))
        return read

    def _read_vertical_lines(self, model: Any, image: Image.Image, lines: list[Line]) -> list[Line]:
        """Re-read each vertical line (a table header set sideways) turned both ways; keep the surer reading.

        RapidOCR turns a tall crop one fixed way (right for top-to-bottom text); bottom-to-top text then reads
        upside down. Only tall lines are read again, so an ordinary page pays nothing.
        """
        out = []
        for line in lines:
            x0, y0, x1, y1 = line.bbox_page_px
            if y1 - y0 < VERTICAL_ASPECT * (x1 - x0):
                out.append(line)
                continue
            crop = image.crop((round(x0), round(y0), round(x1), round(y1)))
            best = (line.text, line.confidence or 0.0, "rotate_90")
            for turn in ("rotate_90", "rotate_270"):
                text, score = self._read_crops(model, [transpose_image(crop, turn)])[0]
                if text and score > best[1] + 1e-6:
                    best = (text, score, turn)
            text, score, turn = best
            if text == line.text:
                out.append(line)
                continue
            turned_size = (crop.height, crop.width)  # (width, height) of the crop turned upright
            words = [
                Word(text=t, bbox_page_px=_offset(upright_to_page(b, turn, turned_size), x0, y0),
                     confidence=round(score, 4))
                for t, b in split_line_into_words(text, (0.0, 0.0, float(crop.height), float(crop.width)))
            ]
            out.append(line.model_copy(update={"text": text, "confidence": round(score, 4), "words": words}))
        return out


def _offset(box: Box, dx: float, dy: float) -> Box:
    return (box[0] + dx, box[1] + dy, box[2] + dx, box[3] + dy)


def _weight(lines: Sequence[Line]) -> float:
    """Confidence-weighted characters read: a page read the right way round reads more, and more surely."""
    return sum(len(ln.text) * (ln.confidence if ln.confidence is not None else 0.5) for ln in lines)


def _outcome(future: Any) -> Any:
    try:
        return future.result()
    except Exception as exc:  # noqa: BLE001 - the page's own failure, recorded by _finish_page
        return exc
