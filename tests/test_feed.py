"""The feed: pages of many documents prepared while the model works (docvlm.pipeline.stream_documents).

Behaviour only (counts of requests in flight, batch composition, order), never absolute times.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

from PIL import Image, ImageDraw

from docvlm.datamodel import EngineInfo
from docvlm.engines.openai import OpenAIEngine
from docvlm.engines.vlm import TileRequest, TileResponse, VlmEngine
from docvlm.options import make_options
from docvlm.pipeline import stream_documents
from tests.fake_openai_server import FakeOpenAIServer, Script

MODEL = "Qwen/Qwen2.5-VL-7B-Instruct"


def receipts(folder: Path, n: int, sizes: Sequence[tuple[int, int]] = ((400, 900),)) -> list[Path]:
    paths = []
    for i in range(n):
        w, h = sizes[i % len(sizes)]
        img = Image.new("RGB", (w, h), "white")
        d = ImageDraw.Draw(img)
        for k in range(12):
            d.text((20, 30 + k * 40), f"ITEM {k} RICE 12.50 RM", fill="black")
        path = folder / f"r{i:02d}.png"
        img.save(path)
        paths.append(path)
    return paths


def test_one_page_documents_keep_concurrency_requests_in_flight(tmp_path):
    """A folder of one-page receipts: --concurrency requests are in flight at once (not one per document),
    results come back one per document, in input order, all successful."""
    paths = receipts(tmp_path, 16)
    # 3 s per request: far longer than preparing 8 small pages, so all 8 slots fill whatever the machine's load
    with FakeOpenAIServer(Script(latency=3.0, detect_marks=False)) as server:
        options = make_options(engine="openai", base_url=server.url, model=MODEL, concurrency=8, retries=0)
        engine = OpenAIEngine(options)
        items = [(p.name, p, p.name) for p in paths]
        out = list(stream_documents(items, options, engine=engine))
        assert [tag for tag, _ in out] == [p.name for p in paths]
        assert all(r.status == "success" for _, r in out), [e.message for _, r in out for e in r.errors]
        assert server.count == 16
        assert server.max_in_flight == 8  # every slot used, never more than --concurrency


def test_convert_cli_on_a_folder_feeds_the_server(tmp_path):
    """The batch command (in-process executor) goes through the feed too."""
    from click.testing import CliRunner

    from docvlm.cli import main

    receipts(tmp_path / "in" if (tmp_path / "in").mkdir() is None else tmp_path, 12)
    with FakeOpenAIServer(Script(latency=3.0, detect_marks=False)) as server:
        res = CliRunner().invoke(main, ["convert", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--engine",
                                        "openai", "--base-url", server.url, "--model", MODEL, "--concurrency", "6"])
        assert res.exit_code == 0, res.output
        assert server.count == 12 and server.max_in_flight >= 6
    assert len(list((tmp_path / "out").rglob("*.json"))) >= 12


class SleepyGpu(VlmEngine):
    """generate_batch sleeps like a GPU (per batch) and records each batch's tile sizes."""

    name = "sleepy"

    def __init__(self, options, seconds: float) -> None:
        super().__init__(options, family="qwen2.5")
        self.seconds = seconds
        self.batches: list[list[tuple[int, int]]] = []

    def generate_batch(self, requests: Sequence[TileRequest]) -> list[TileResponse]:
        self.batches.append([r.image.size for r in requests])
        time.sleep(self.seconds)
        return [TileResponse(text='[{"bbox_2d": [1, 1, 20, 10], "text_content": "x"}]') for _ in requests]

    def info(self) -> EngineInfo:
        return EngineInfo(name=self.name, family=self.family)


def test_generate_loop_groups_batches_by_visual_tokens_and_reports_padding(tmp_path):
    """Receipts of two very different sizes: a batch holds tiles of like size (little padding), every tile is
    generated once, and the loop reports its padding and busy shares."""
    paths = receipts(tmp_path, 16, sizes=((300, 700), (1100, 2400)))
    options = make_options(engine="hf", family="qwen2.5", batch_size=4, max_visual_tokens=16384)
    engine = SleepyGpu(options, seconds=0.05)
    out = list(stream_documents([(p.name, p, p.name) for p in paths], options, engine=engine))
    assert len(out) == 16 and all(r.status == "success" for _, r in out)
    assert sum(len(b) for b in engine.batches) == 16
    mixed = sum(1 for b in engine.batches if len(set(b)) > 1)
    assert mixed <= 2, engine.batches  # at most the batches formed before the queue held both sizes
    st = engine.stats
    assert st.tiles == 16 and 0.0 <= st.padding_share < 0.2 and 0 < st.busy_share <= 1.0


def test_hf_feed_prepares_the_next_batch_while_generate_runs(tmp_path):
    """A GPU-like generate (0.5 s per batch, far longer than preparing a small receipt): it is busy nearly all
    the time from its first call to its last, because the next tiles are queued when it returns."""
    paths = receipts(tmp_path, 12)
    options = make_options(engine="hf", family="qwen2.5", batch_size=2, max_visual_tokens=16384)
    engine = SleepyGpu(options, seconds=0.5)
    out = list(stream_documents([(p.name, p, p.name) for p in paths], options, engine=engine))
    assert len(out) == 12 and engine.stats.tiles == 12
    assert engine.stats.busy_share >= 0.8, engine.stats


def test_bad_images_fail_alone_in_the_feed(tmp_path):
    """A truncated JPEG (its header states more than it holds, decoded reduced for the estimate) and a PNG cut
    short fail with an error naming the file; the documents around them are converted."""
    good = receipts(tmp_path, 2)
    big = Image.new("RGB", (2400, 3200), "white")
    ImageDraw.Draw(big).text((100, 100), "TOTAL 12.50", fill="black")
    raw = tmp_path / "cut.jpg"
    big.save(raw, quality=90)
    raw.write_bytes(raw.read_bytes()[: raw.stat().st_size // 3])
    png = tmp_path / "cut.png"
    png.write_bytes(good[0].read_bytes()[:400])
    options = make_options(engine="hf", family="qwen2.5", batch_size=2, max_visual_tokens=16384)
    engine = SleepyGpu(options, seconds=0.0)
    items = [(p.name, p, p.name) for p in (good[0], raw, png, good[1])]
    out = dict(stream_documents(items, options, engine=engine))
    assert out[good[0].name].status == "success" and out[good[1].name].status == "success"
    for name in ("cut.jpg", "cut.png"):
        r = out[name]
        assert r.status == "failure"
        messages = [e.message for e in r.errors] + [e.message for p in r.pages for e in p.errors]
        assert messages and all(name in m for m in messages), messages
