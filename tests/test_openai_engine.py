"""The `openai` engine against a scripted OpenAI-compatible server on 127.0.0.1 (tests/fake_openai_server.py).

Engine level: request shape, retries (bounded, counted at the server), Retry-After, 4xx not retried, timeouts,
connection closed mid-answer, garbage bodies, concurrency bound. End to end: `convert_document` with the engine
on real rendered pages: boxes land on the right page pixels, image sizes sent equal the plan's encoded sizes,
a failing server gives page errors and the document still finishes. Property: random model outputs through
the shared VLM `process_pages` never produce a box outside the page.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pymupdf as fitz
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from PIL import Image, ImageDraw

from docvlm.engines.openai import OpenAIEngine, encode_png_data_url, guess_family
from docvlm.engines.vlm import TileRequest, TileResponse
from docvlm.errors import UsageError
from docvlm.options import make_options

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fake_openai_server import FakeOpenAIServer, Script  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
MODEL = "Qwen/Qwen2.5-VL-7B-Instruct"


def engine_for(server: FakeOpenAIServer, **kw: object) -> OpenAIEngine:
    opts = {"engine": "openai", "base_url": server.url, "model": MODEL, "timeout": 2.0, "retries": 2,
            "concurrency": 4}
    opts.update(kw)
    return OpenAIEngine(make_options(**opts), backoff_base_s=0.01, backoff_cap_s=0.05)


def marked_image(size: tuple[int, int] = (560, 784), box: tuple[int, int, int, int] = (100, 200, 299, 249)):
    img = Image.new("RGB", size, "white")
    ImageDraw.Draw(img).rectangle(box, fill="black")
    return img


# --- options and family ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "family"),
    [
        ("Qwen/Qwen2-VL-7B-Instruct", "qwen2"),
        ("qwen2-vl-2b", "qwen2"),
        ("Qwen/Qwen2.5-VL-72B-Instruct-AWQ", "qwen2.5"),
        ("qwen2.5vl:7b", "qwen2.5"),
        ("Qwen/Qwen3-VL-8B-Instruct", "qwen3"),
        ("qwen3-vl:8b", "qwen3"),
        ("my-served-model", None),
        ("Qwen/Qwen2.5-7B-Instruct", None),
    ],
)
def test_guess_family(name: str, family: str | None) -> None:
    assert guess_family(name) == family


def test_usage_errors_say_how_to_fix() -> None:
    with pytest.raises(UsageError, match="--family"):
        OpenAIEngine(make_options(engine="openai", base_url="http://127.0.0.1:9/v1", model="served"))
    with pytest.raises(UsageError, match="--base-url"):
        OpenAIEngine(make_options(engine="openai", model=MODEL))
    with pytest.raises(UsageError, match="--model"):
        OpenAIEngine(make_options(engine="openai", base_url="http://127.0.0.1:9/v1"))
    with pytest.raises(UsageError, match="FAKE_OPENAI_NO_SUCH_KEY"):
        OpenAIEngine(make_options(engine="openai", base_url="http://127.0.0.1:9/v1", model=MODEL,
                                  api_key_env="FAKE_OPENAI_NO_SUCH_KEY"))
    eng = OpenAIEngine(make_options(engine="openai", base_url="http://127.0.0.1:9/v1", model="served",
                                    family="qwen3"))
    assert eng.family == "qwen3"
    info = eng.info()
    assert info.family == "qwen3" and info.model == "served" and "127.0.0.1:9" in (info.detail or "")
    secret = OpenAIEngine(make_options(engine="openai", base_url="http://user:s3cret@127.0.0.1:9/v1", model=MODEL))
    assert "s3cret" not in secret.info().model_dump_json()  # a URL's password never reaches a result file


def test_png_data_url_keeps_pixels() -> None:
    img = marked_image((588, 812))
    url = encode_png_data_url(img)
    assert url.startswith("data:image/png;base64,")
    import base64

    back = Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))
    assert back.size == (588, 812)
    assert back.convert("RGB").tobytes() == img.tobytes()


# --- request shape, usage, stop reason ---------------------------------------------------------------------


def test_request_shape_usage_and_length(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_OPENAI_TEST_KEY", "sk-test-123")
    with FakeOpenAIServer(Script(actions=["ok", "length"])) as server:
        eng = OpenAIEngine(make_options(engine="openai", base_url=server.url, model=MODEL,
                                        api_key_env="FAKE_OPENAI_TEST_KEY", concurrency=1))
        first = eng.generate_batch([TileRequest(image=marked_image(), prompt="read it", system="be exact",
                                                max_new_tokens=77)])[0]
        second = eng.generate_batch([TileRequest(image=marked_image(), prompt="again", repetition_penalty=1.05)])[0]
    assert first.error is None and first.stop_reason == "eos"
    assert '"bbox_2d": [100, 200, 300, 250]' in first.text  # encoded pixels of the mark, Qwen2.5 convention
    assert first.prompt_tokens and first.generated_tokens
    assert second.stop_reason == "length"
    r0, r1 = server.records
    assert r0.image_sizes == [(560, 784)] and r0.image_mime == ["data:image/png;base64"]
    assert r0.model == MODEL and r0.temperature == 0 and r0.max_tokens == 77
    assert r0.system == "be exact" and r0.prompt == "read it"
    assert r0.repetition_penalty is None and r1.repetition_penalty == 1.05
    assert r0.authorization == "Bearer sk-test-123"


# --- failures: bounded retries, errors per tile ------------------------------------------------------------


def test_500_then_ok_recovers() -> None:
    with FakeOpenAIServer(Script(actions=["500", "500"])) as server:
        eng = engine_for(server, retries=2)
        (resp,) = eng.generate_batch([TileRequest(image=marked_image(), prompt="p")])
    assert resp.error is None and "bbox_2d" in resp.text
    assert [r.action for r in server.records] == ["500", "500", "ok"]


def test_persistent_500_is_a_tile_error_after_bounded_retries() -> None:
    with FakeOpenAIServer(Script(default="500")) as server:
        eng = engine_for(server, retries=3, concurrency=2)
        resps = eng.generate_batch([TileRequest(image=marked_image(), prompt="p")] * 2)
    assert all(r.error and "HTTP 500" in r.error and "4 attempt" in r.error for r in resps)
    assert all(r.stop_reason == "error" and r.text == "" for r in resps)
    assert server.count == 2 * 4  # 1 + 3 retries per tile, no more


def test_4xx_is_not_retried() -> None:
    with FakeOpenAIServer(Script(default="400")) as server:
        (resp,) = engine_for(server, retries=5).generate_batch([TileRequest(image=marked_image(), prompt="p")])
    assert resp.error and "HTTP 400" in resp.error and "not retried" in resp.error
    assert server.count == 1


def test_429_respects_retry_after() -> None:
    slept: list[float] = []
    with FakeOpenAIServer(Script(actions=["429"], retry_after=7)) as server:
        eng = OpenAIEngine(make_options(engine="openai", base_url=server.url, model=MODEL, retries=2),
                           backoff_base_s=0.01, sleep=slept.append)
        (resp,) = eng.generate_batch([TileRequest(image=marked_image(), prompt="p")])
    assert resp.error is None
    assert slept == [7.0]  # the server's Retry-After, not the tiny jittered backoff
    assert server.count == 2


def test_backoff_is_exponential_with_full_jitter() -> None:
    eng = OpenAIEngine(make_options(engine="openai", base_url="http://127.0.0.1:9/v1", model=MODEL),
                       backoff_base_s=1.0, backoff_cap_s=8.0)
    for attempt, cap in [(0, 1.0), (1, 2.0), (2, 4.0), (3, 8.0), (6, 8.0)]:
        delays = [eng._backoff(attempt, None) for _ in range(200)]
        assert all(0.0 <= d <= cap for d in delays)
        assert max(delays) > cap * 0.5 and min(delays) < cap * 0.5  # spread over the range: jitter


@pytest.mark.parametrize("action", ["hang", "close"])
def test_timeouts_and_closed_connections_are_retried_then_recover(action: str) -> None:
    with FakeOpenAIServer(Script(actions=[action, action], hang_seconds=5)) as server:
        eng = engine_for(server, timeout=0.5, retries=2)
        (resp,) = eng.generate_batch([TileRequest(image=marked_image(), prompt="p")])
    assert resp.error is None, resp.error
    assert [r.action for r in server.records] == [action, action, "ok"]


@pytest.mark.parametrize(("action", "words"), [("hang", "no answer within"), ("close", "connection error")])
def test_persistent_timeouts_and_closes_are_bounded(action: str, words: str) -> None:
    with FakeOpenAIServer(Script(default=action, hang_seconds=5)) as server:
        eng = engine_for(server, timeout=0.3, retries=1)
        resps = eng.generate_batch([TileRequest(image=marked_image(), prompt="p")] * 3)
    assert all(r.error and words in r.error for r in resps), [r.error for r in resps]
    assert server.count == 3 * 2


def test_garbage_body_is_an_error_not_a_crash() -> None:
    with FakeOpenAIServer(Script(default="garbage")) as server:
        (resp,) = engine_for(server).generate_batch([TileRequest(image=marked_image(), prompt="p")])
    assert resp.error and "not a chat completion" in resp.error
    assert server.count == 1


def test_unreachable_server_is_a_tile_error() -> None:
    import socket

    with socket.socket() as s:  # a port with nobody listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    eng = OpenAIEngine(make_options(engine="openai", base_url=f"http://127.0.0.1:{port}/v1", model=MODEL,
                                    retries=1), backoff_base_s=0.01)
    (resp,) = eng.generate_batch([TileRequest(image=marked_image(), prompt="p")])
    assert resp.error and "connection error" in resp.error and "2 attempt" in resp.error


@pytest.mark.parametrize("concurrency", [1, 3])
def test_concurrency_bound(concurrency: int) -> None:
    with FakeOpenAIServer(Script(latency=0.15)) as server:
        eng = engine_for(server, concurrency=concurrency)
        resps = eng.generate_batch([TileRequest(image=marked_image(), prompt=f"p{i}") for i in range(9)])
    assert all(r.error is None for r in resps)
    assert [r.prompt for r in sorted(server.records, key=lambda r: r.prompt)] == sorted(f"p{i}" for i in range(9))
    assert server.max_in_flight <= concurrency
    if concurrency > 1:
        assert server.max_in_flight >= 2  # requests really overlap


# --- end to end: convert_document with the openai engine on real rendered pages ----------------------------

MARK_PT = (100.0, 300.0, 260.0, 340.0)
"""A black rectangle drawn at these PDF points (visible page, origin top-left)."""


def mark_pdf(path: Path, pages: int = 2, *, landscape_last: bool = False) -> Path:
    doc = fitz.open()
    for i in range(pages):
        w, h = (842, 595) if landscape_last and i == pages - 1 else (595, 842)
        page = doc.new_page(width=w, height=h)
        page.insert_text((72, 80), f"Page {i + 1} heading text", fontsize=20, color=(0.7, 0.7, 0.7))  # lighter than the mark
        page.draw_rect(fitz.Rect(*MARK_PT), color=(0, 0, 0), fill=(0, 0, 0))
    doc.save(path)
    doc.close()
    return path


def convert(path: Path, server: FakeOpenAIServer, **kw: object):
    from docvlm.pipeline import convert_document

    opts = {"engine": "openai", "base_url": server.url, "model": MODEL, "timeout": 2.0, "retries": 1,
            "concurrency": 4, "dpi": 100}
    opts.update(kw)
    options = make_options(**opts)
    engine = OpenAIEngine(options, backoff_base_s=0.01, backoff_cap_s=0.05)
    return convert_document(path, options, engine=engine)


def sent_sizes(server: FakeOpenAIServer) -> list[tuple[int, int]]:
    return sorted(tuple(s) for r in server.records for s in r.image_sizes)


def plan_sizes(result) -> list[tuple[int, int]]:
    return sorted(tuple(t.encoded_size) for p in result.pages if p.plan for t in p.plan.tiles)


@pytest.mark.parametrize(
    ("family", "model"),
    [("qwen2", "Qwen/Qwen2-VL-7B-Instruct"), ("qwen2.5", MODEL), ("qwen3", "Qwen/Qwen3-VL-8B-Instruct")],
)
def test_boxes_land_on_the_right_page_pixels(tmp_path: Path, family: str, model: str) -> None:
    pdf = mark_pdf(tmp_path / "marks.pdf")
    with FakeOpenAIServer(Script(family=family)) as server:
        result = convert(pdf, server, model=model)
    assert result.status == "success", [e.message for p in result.pages for e in p.errors]
    assert result.engine.name == "openai" and result.engine.family == family
    assert sent_sizes(server) == plan_sizes(result)  # every tile sent at exactly its planned encoded size
    for page in result.pages:
        marks = [ln for ln in page.lines if ln.text == "MARK"]
        assert len(marks) == 1
        expected_px = tuple(v * page.dpi / 72 for v in MARK_PT)
        tile = page.plan.tiles[0]
        sx = (tile.crop_page_px[2] - tile.crop_page_px[0]) / tile.encoded_size[0]
        grid = max(tile.encoded_size) / 1000 if family != "qwen2.5" else 1.0
        tol = (grid + 1.5) * sx + 1.0  # one model unit plus resampling blur, in page pixels
        for got, want in zip(marks[0].bbox_page_px, expected_px, strict=True):
            assert abs(got - want) <= tol, (family, marks[0].bbox_page_px, expected_px, tol)
        for got, want in zip(marks[0].bbox_pdf_pt, MARK_PT, strict=True):
            assert abs(got - want) <= tol * 72 / page.dpi
        assert page.outputs and all(o.prompt_tokens and o.generated_tokens for o in page.outputs)


def test_tiled_page_boxes_stay_inside_the_mark(tmp_path: Path) -> None:
    """A page cut into tiles: each tile is sent at its own encoded size and every box maps back onto the mark."""
    pdf = mark_pdf(tmp_path / "marks.pdf", pages=1)
    with FakeOpenAIServer(Script(family="qwen2.5")) as server:
        result = convert(pdf, server, dpi=150, max_visual_tokens=400)
    (page,) = result.pages
    assert page.plan.mode == "tiled" and len(page.plan.tiles) > 1
    assert sent_sizes(server) == plan_sizes(result)
    want = tuple(v * page.dpi / 72 for v in MARK_PT)
    marks = [ln.bbox_page_px for ln in page.lines if ln.text == "MARK"]
    assert marks
    tol = 4.0
    for box in marks:
        assert box[0] >= want[0] - tol and box[1] >= want[1] - tol
        assert box[2] <= want[2] + tol and box[3] <= want[3] + tol
    union = (min(b[0] for b in marks), min(b[1] for b in marks), max(b[2] for b in marks), max(b[3] for b in marks))
    assert all(abs(u - w) <= tol for u, w in zip(union, want, strict=True)), (union, want)


def test_persistent_500_on_one_page_fails_that_page_only(tmp_path: Path) -> None:
    pdf = mark_pdf(tmp_path / "mixed.pdf", pages=3, landscape_last=True)
    fail_landscape = lambda rec, n: "500" if rec.image_sizes and rec.image_sizes[0][0] > rec.image_sizes[0][1] else None  # noqa: E731
    with FakeOpenAIServer(Script(rule=fail_landscape)) as server:
        result = convert(pdf, server, retries=2)
    assert [p.status for p in result.pages] == ["success", "success", "failure"]
    assert result.status == "partial"
    (err,) = result.pages[2].errors
    assert err.code == "engine" and "HTTP 500" in err.message and "mixed.pdf (page 3)" in err.message
    landscape = [r for r in server.records if r.image_sizes[0][0] > r.image_sizes[0][1]]
    assert len(landscape) == len(result.pages[2].plan.tiles) * 3  # 1 + 2 retries per tile, bounded


@pytest.mark.parametrize(("action", "code"), [("badtext", "parse"), ("garbage", "engine"), ("hang", "engine"),
                                              ("close", "engine")])
def test_bad_server_answers_are_recorded_per_page(tmp_path: Path, action: str, code: str) -> None:
    pdf = mark_pdf(tmp_path / "doc.pdf", pages=2)
    with FakeOpenAIServer(Script(default=action, hang_seconds=3)) as server:
        result = convert(pdf, server, timeout=0.4, retries=1)
    assert result.status in ("partial", "failure")
    for page in result.pages:
        assert page.status != "success"
        assert any(e.code == code for e in page.errors), [e.model_dump() for e in page.errors]
        assert not [ln for ln in page.lines if ln.text == "MARK"]
    tiles = len(plan_sizes(result))
    retried = action in ("hang", "close")
    assert server.count == tiles * (2 if retried else 1)  # bounded: 1 + retries when retryable, else 1


def test_concurrency_bound_end_to_end(tmp_path: Path) -> None:
    pdf = mark_pdf(tmp_path / "many.pdf", pages=8)
    with FakeOpenAIServer(Script(latency=0.1)) as server:
        result = convert(pdf, server, concurrency=3, batch_size=8)
    assert result.status == "success"
    assert 2 <= server.max_in_flight <= 3


def test_cli_batch_finishes_when_the_server_fails(tmp_path: Path) -> None:
    """Real `docvlm convert` process, server returning 500 for one document's pages: exit 1, batch complete."""
    inp, out = tmp_path / "in", tmp_path / "out"
    inp.mkdir()
    mark_pdf(inp / "a.pdf", pages=1)
    mark_pdf(inp / "b.pdf", pages=2, landscape_last=True)
    mark_pdf(inp / "c.pdf", pages=1)
    fail_landscape = lambda rec, n: "500" if rec.image_sizes and rec.image_sizes[0][0] > rec.image_sizes[0][1] else None  # noqa: E731
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCVLM_")}
    with FakeOpenAIServer(Script(rule=fail_landscape)) as server:
        proc = subprocess.run(
            [sys.executable, "-m", "docvlm", "convert", str(inp), "-o", str(out), "--engine", "openai",
             "--base-url", server.url, "--model", MODEL, "--retries", "1", "--timeout", "5", "--dpi", "72"],
            capture_output=True, text=True, timeout=120, env=env, cwd=ROOT,
        )
    assert "Traceback" not in proc.stdout + proc.stderr, proc.stderr[-3000:]
    import json

    summary = json.loads((out / "_docvlm_summary.json").read_text())
    status = {d["key"]: d["status"] for d in summary["documents"]}
    assert status == {"a.pdf": "success", "b.pdf": "partial", "c.pdf": "success"}, status
    (b,) = [d for d in summary["documents"] if d["key"] == "b.pdf"]
    assert any("HTTP 500" in e and "page 2" in e for e in b["errors"])
    assert proc.returncode in (0, 1)


def test_long_document_streams_pages_and_frees_images(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """40 rendered pages through the openai engine: at most one page image and one batch of tiles alive at a time,
    none after the document (CPython frees them by refcount: this counts real objects, not a timing)."""
    import gc
    import weakref

    import docvlm.plan as plan_mod
    import docvlm.sources as sources_mod

    live = {"pages": 0, "tiles": 0}
    peak = {"pages": 0, "tiles": 0, "rendered": 0}
    render_at, render_sized, render_tiles = (sources_mod.PdfPage.render_at, sources_mod.PdfPage.render_sized,
                                             plan_mod.render_tiles)

    def _dec(kind: str) -> None:
        live[kind] -= 1

    def track(image, kind: str):
        live[kind] += 1
        peak[kind] = max(peak[kind], live[kind])
        weakref.finalize(image, _dec, kind)
        return image

    def tracked_render(self, scale):
        peak["rendered"] += 1
        image, k = render_at(self, scale)
        return track(image, "pages"), k

    def tracked_tiles(page, tiles):
        return [track(t, "tiles") for t in render_tiles(page, tiles)]

    def tracked_sized(self, size):  # a native plan: the page rendered at its tile's size *is* the tile
        peak["rendered"] += 1
        return render_sized(self, size)

    monkeypatch.setattr(sources_mod.PdfPage, "render_at", tracked_render)
    monkeypatch.setattr(sources_mod.PdfPage, "render_sized", tracked_sized)
    monkeypatch.setattr(plan_mod, "render_tiles", tracked_tiles)
    pdf = mark_pdf(tmp_path / "long.pdf", pages=40)
    with FakeOpenAIServer(Script(detect_marks=False)) as server:
        result = convert(pdf, server, concurrency=4, batch_size=4, dpi=72)
    assert result.status == "success", [e.message for p in result.pages for e in p.errors][:3]
    assert len(result.pages) == 40 and peak["rendered"] == 40
    tiles_per_page = max(len(p.plan.tiles) for p in result.pages)
    # constant, whatever the page count: the page being cut, plus at most the previous one until the loop
    # variable `image` holding it is rebound (vlm.process_pages releases the page's own copy once its tiles are cut)
    assert peak["pages"] <= 2
    # the feed keeps at most in_flight_target() = 2 x concurrency tiles waiting for the server, plus the page
    # being prepared and the one being finished: a bound that does not grow with the page count
    assert peak["tiles"] <= 2 * 4 + 2 * tiles_per_page
    gc.collect()
    assert live == {"pages": 0, "tiles": 0}
    assert server.count == sum(len(p.plan.tiles) for p in result.pages)


# --- property: random model outputs never give a box outside the page --------------------------------------


class _ScriptedVlm:
    """A VlmEngine whose generate_batch returns the next scripted text for every tile."""

    def __new__(cls, options, family, texts):
        from docvlm.datamodel import EngineInfo
        from docvlm.engines.vlm import VlmEngine

        class Engine(VlmEngine):
            name = "scripted-vlm"

            def generate_batch(self, requests: Sequence[TileRequest]) -> list[TileResponse]:
                return [TileResponse(text=self.texts[i % len(self.texts)]) for i in range(len(requests))]

            def info(self) -> EngineInfo:
                return EngineInfo(name=self.name, family=self.family)

        eng = Engine(options, family)
        eng.texts = texts
        return eng


_NUM = st.one_of(
    st.integers(-3000, 5000).map(str),
    st.floats(-1e4, 1e4, allow_nan=False).map(lambda v: f"{v:.2f}"),
    st.sampled_from(["nan", "inf", "-inf", "1e309", "", "0", "1000", "-0"]),
)
_BOX_TOKEN = st.builds(
    lambda t, a, b, c, d: f"<|object_ref_start|>{t}<|object_ref_end|><|box_start|>({a},{b}),({c},{d})<|box_end|>",
    st.text(max_size=12), _NUM, _NUM, _NUM, _NUM,
)
_JSON_OBJ = st.builds(
    lambda t, a, b, c, d: '{"bbox_2d": [' + f"{a}, {b}, {c}, {d}" + '], "text_content": ' + f"{t!r}".replace("'", '"') + "}",
    st.text(alphabet="abc xyz0123", max_size=12), _NUM, _NUM, _NUM, _NUM,
)
_HTML = st.builds(lambda a, b, c, d: f'<p data-bbox="{a} {b} {c} {d}">text</p>', _NUM, _NUM, _NUM, _NUM)
_FRAGMENT = st.one_of(_BOX_TOKEN, _JSON_OBJ, _HTML, st.text(max_size=30),
                      st.sampled_from(["```json\n[", "]\n```", ",", "[", "]", "{", "}", "<|box_start|>", "\n"]))
_OUTPUT = st.lists(_FRAGMENT, max_size=12).map("".join)

_PAGES: dict[str, object] = {}


def _property_page(family: str):
    """One real image page (opened through docvlm.sources), made once."""
    if "page" not in _PAGES:
        import tempfile

        from docvlm.sources import open_document

        folder = Path(tempfile.mkdtemp(prefix="docvlm_prop_"))
        img = Image.new("RGB", (360, 1100), "white")  # a long receipt: tiled into strips
        ImageDraw.Draw(img).text((30, 30), "TOTAL 12.00", fill="black")
        img.save(folder / "receipt.png")
        opts = make_options(engine="openai", base_url="http://127.0.0.1:9/v1", model=MODEL, max_visual_tokens=120)
        doc = open_document(folder / "receipt.png", opts)
        _PAGES["page"] = next(iter(doc.pages()))
        _PAGES["options"] = opts
        _PAGES["doc"] = doc
    return _PAGES["page"], _PAGES["options"]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@example(texts=['[{"bbox_2d": [-50, -50, 5000, 5000], "text_content": "x"}]'], family="qwen2.5")
@example(texts=["<|box_start|>(990,990),(2000,1e9)<|box_end|><|box_start|>(5,5),(1,1)<|box_end|>"], family="qwen2")
@given(texts=st.lists(_OUTPUT, min_size=1, max_size=4), family=st.sampled_from(["qwen2", "qwen2.5", "qwen3"]))
def test_random_model_outputs_never_give_a_box_outside_the_page(texts: list[str], family: str) -> None:
    from docvlm.engines.base import Task

    page, options = _property_page(family)
    engine = _ScriptedVlm(options, family, texts)
    (result,) = engine.process_pages([page], Task())
    assert result.plan is not None and len(result.plan.tiles) > 1  # tiled: offsets are exercised
    for line in result.lines:
        x0, y0, x1, y1 = line.bbox_page_px
        assert 0 <= x0 < x1 <= page.width_px and 0 <= y0 < y1 <= page.height_px, (line, texts)
        for w in line.words:
            wx0, wy0, wx1, wy1 = w.bbox_page_px
            assert 0 <= wx0 <= wx1 <= page.width_px and 0 <= wy0 <= wy1 <= page.height_px, (w, texts)
    for err in result.errors:
        assert err.code in ("parse", "invalid_box", "runaway"), err
