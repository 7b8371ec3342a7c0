"""OCR backend choice (OpenVINO / onnxruntime), threads per worker, and page prefetch within a worker."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image, ImageDraw, ImageFont

from docvlm.cli import main
from docvlm.engines import ocr as ocr_mod
from docvlm.engines import ocr_backend
from docvlm.engines.base import Task
from docvlm.engines.ocr import OcrEngine, load_rapidocr, rapidocr_params
from docvlm.engines.ocr_backend import choose_ocr_backend
from docvlm.errors import CorruptInputError, ModelLoadError
from docvlm.options import ConvertOptions
from docvlm.threads import available_cores, choose_inference_threads


def _line_image(text: str = "Invoice 2024 total 12.50") -> Image.Image:
    img = Image.new("RGB", (700, 120), "white")
    ImageDraw.Draw(img).text((30, 40), text, fill="black", font=ImageFont.load_default(size=32))
    return img


def test_auto_prefers_openvino_when_it_runs_and_says_why():
    choice = choose_ocr_backend("auto")
    assert choice.name == "openvino"  # the openvino wheel is installed here (pyproject: x86-64/arm64 markers)
    assert choice.reason.startswith("auto:")


def test_auto_falls_back_to_onnxruntime_with_the_reason(monkeypatch):
    monkeypatch.setattr(ocr_backend, "openvino_problem", lambda: "openvino is not installed (pip install openvino)")
    choice = choose_ocr_backend("auto")
    assert choice.name == "onnxruntime" and "not installed" in choice.reason
    with pytest.raises(ModelLoadError, match="--ocr-backend onnxruntime"):
        choose_ocr_backend("openvino")
    assert choose_ocr_backend("onnxruntime").reason == "--ocr-backend onnxruntime"


def test_backend_params_use_the_engine_enum_and_the_thread_count():
    from rapidocr import EngineType

    ov = rapidocr_params(backend="openvino", threads=1)
    assert {ov[f"{s}.engine_type"] for s in ("Det", "Cls", "Rec")} == {EngineType.OPENVINO}
    assert ov["EngineConfig.openvino.inference_num_threads"] == 1
    ort = rapidocr_params(backend="onnxruntime", threads=3)
    assert ort["Det.engine_type"] is EngineType.ONNXRUNTIME
    assert ort["EngineConfig.onnxruntime.intra_op_num_threads"] == 3
    assert ort["Global.use_cls"] is False  # orientation per page by default
    assert rapidocr_params(line_orientation=True)["Global.use_cls"] is True


def test_auto_falls_back_when_openvino_cannot_load_the_models(monkeypatch):
    real = ocr_mod._build_rapidocr

    def build(params, line_orientation):
        if str(params["Det.engine_type"].value) == "openvino":
            raise RuntimeError("Exception from src/inference: unsupported CPU")
        return real(params, line_orientation)

    monkeypatch.setattr(ocr_mod, "_build_rapidocr", build)
    _model, choice = load_rapidocr(max_side_len=2399)  # a settings key of its own: not from the cache
    assert choice.name == "onnxruntime" and "openvino failed" in choice.reason and "unsupported CPU" in choice.reason
    with pytest.raises(ModelLoadError, match="openvino"):
        load_rapidocr(max_side_len=2398, backend="openvino")


@pytest.mark.parametrize("backend", ["openvino", "onnxruntime"])
def test_each_backend_reads_and_names_itself_in_the_engine_info(backend: str):
    engine = OcrEngine(ConvertOptions(ocr_backend=backend))
    lines = engine.ocr_image(_line_image())
    assert lines and "invoice" in lines[0].text.lower()
    detail = engine.info().detail or ""
    assert f"backend {backend} " in detail and f"--ocr-backend {backend}" in detail
    assert "orientation: per page" in detail
    assert engine.info().dtype == ("fp32" if backend == "onnxruntime" else ocr_backend.inference_precision("openvino"))
    assert engine.info().dtype in ("fp32", "bf16", "fp16")


def test_line_orientation_flag_turns_the_classifier_on_through_the_cli(tmp_path: Path):
    _line_image().save(tmp_path / "line.png")
    out = tmp_path / "out"
    res = CliRunner().invoke(main, ["convert", str(tmp_path / "line.png"), "-o", str(out),
                                    "--ocr-backend", "onnxruntime", "--line-orientation"])
    assert res.exit_code == 0, res.output
    doc = json.loads((out / "line.png.json").read_text())
    assert "backend onnxruntime" in doc["engine"]["detail"]
    assert "per line (angle classifier)" in doc["engine"]["detail"]
    assert "invoice" in doc["pages"][0]["lines"][0]["text"].lower()


def test_threads_per_worker_share_the_cores():
    assert choose_inference_threads(2, 1) == 2
    assert choose_inference_threads(2, 2) == 1  # --workers 2 on 2 cores: one thread each, not two
    assert choose_inference_threads(2, 4) == 1
    assert choose_inference_threads(16, 3) == 5
    assert choose_inference_threads(0, 0) == 1


def test_pool_workers_get_their_share_of_threads(tmp_path: Path, monkeypatch):
    """`--workers 2`: the pool asks for the thread share of 2 workers on this machine's cores and hands it to
    each worker (OMP_NUM_THREADS), where the OCR engine's runtime reads it."""
    import docvlm.executors.local as pool_worker

    asked: list[tuple[int, int]] = []
    real = pool_worker.choose_inference_threads

    def record(cores: int, workers: int) -> int:
        asked.append((cores, workers))
        return real(cores, workers)

    monkeypatch.setattr(pool_worker, "choose_inference_threads", record)
    inbox = tmp_path / "in"
    inbox.mkdir()
    for i in range(2):
        _line_image(f"Receipt {i}").save(inbox / f"r{i}.png")
    res = CliRunner().invoke(main, ["convert", str(inbox), "-o", str(tmp_path / "out"), "--workers", "2",
                                    "--engine", "scripted"])
    assert res.exit_code == 0, res.output
    assert asked == [(available_cores(), 2)]
    monkeypatch.setenv("OMP_NUM_THREADS", str(real(2, 2)))  # what a worker of that pool sees on 2 cores
    for backend, key in (("openvino", "EngineConfig.openvino.inference_num_threads"),
                         ("onnxruntime", "EngineConfig.onnxruntime.intra_op_num_threads")):
        assert rapidocr_params(backend=backend)[key] == 1


@dataclass
class TimedPage:
    """A stand-in page that records when it was rendered; page 2 may be broken."""

    image: Image.Image
    index: int
    log: list = field(default_factory=list)
    broken: bool = False
    path: str = "doc.pdf"
    dpi: float | None = None
    rotation: int = 0
    kind: str = "image"

    @property
    def width_px(self) -> int:
        return self.image.width

    @property
    def height_px(self) -> int:
        return self.image.height

    def text_layer(self):
        return None

    def render(self) -> Image.Image:
        self.log.append(("render-start", self.index, time.perf_counter(), threading.current_thread().name))
        time.sleep(0.2)
        if self.broken:
            raise CorruptInputError("image data is damaged", path=self.path, page=self.index)
        self.log.append(("render-end", self.index, time.perf_counter(), threading.current_thread().name))
        return self.image


def test_next_page_renders_while_this_one_is_read(monkeypatch):
    log: list = []
    engine = OcrEngine(ConvertOptions())

    def fake_ocr(image):
        log.append(("ocr-start", image.info["index"], time.perf_counter(), ""))
        time.sleep(0.3)
        log.append(("ocr-end", image.info["index"], time.perf_counter(), ""))
        return []

    monkeypatch.setattr(engine, "ocr_image", fake_ocr)
    pages = []
    for i in range(3):
        img = Image.new("RGB", (50, 50), "white")
        img.info["index"] = i
        pages.append(TimedPage(img, i, log, broken=(i == 1)))
    results = engine.process_pages(pages, Task())
    assert [r.status for r in results] == ["success", "failure", "success"]
    assert "damaged" in results[1].errors[0].message
    at = {(kind, idx): t for kind, idx, t, _ in log}
    # page 1 was rendered in the background while page 0 was being read
    assert at[("ocr-start", 0)] < at[("render-start", 1)] < at[("ocr-end", 0)]
    assert all(name.startswith("docvlm-prefetch") for kind, _, _, name in log if kind.startswith("render"))


def test_orientation_check_costs_nothing_on_confident_upright_pages_and_tries_mirrors_only_in_doubt():
    from docvlm.orientation import decide_orientation

    page = Image.new("RGB", (400, 300), "white")
    wide = [(10.0, 10.0, 300.0, 40.0), (10.0, 60.0, 250.0, 90.0)]
    calls: list[int] = []

    def recognize(crops):
        calls.append(len(crops))
        return [0.65] * len(crops)

    sure = decide_orientation(page, wide, [0.97, 0.95], recognize)
    assert sure.orientation == "none" and calls == []
    doubtful = decide_orientation(page, wide, [0.6, 0.5], recognize)
    # 0 and 180 read alike (0.65): the mirrored pair is tried too, nothing wins, the page stays as given
    assert doubtful.orientation == "none" and set(doubtful.confidences) == {"none", "rotate_180", "flip_lr", "flip_tb"}
    tall = [(10.0, 10.0, 40.0, 280.0), (60.0, 10.0, 90.0, 200.0)]
    sideways = decide_orientation(page, tall, [0.5, 0.5], lambda crops: [0.9 if crops[0].width > crops[0].height
                                                                        else 0.1] * len(crops))
    assert sideways.orientation in ("rotate_90", "rotate_270") and "vertical" in sideways.reason
