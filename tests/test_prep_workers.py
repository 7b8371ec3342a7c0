"""Issue 16 item 4: page preparation on all cores (docvlm.engines.prep). Behaviour only, never times:

- the same results with the pages prepared in the feed's thread (--prep-workers 0) and by 2 processes, for the
  hf path (tiles handed over as images) and the openai path (tiles encoded by the preparer), in input order;
- a bad page fails alone, naming its file and page, in a preparer as in the thread;
- a preparer that dies gives that page a clear error, the pages beside it are prepared again, nothing hangs;
- `auto` chooses from the core count (injected), and a process of `--workers N` counts only its share;
- preparers die with the process that started them (SIGKILL of the parent, by pid).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
from pathlib import Path

import pymupdf
import pytest
from PIL import Image, ImageDraw

from docvlm.engines.openai import OpenAIEngine
from docvlm.engines.prep import (
    AUTO_MIN_CORES,
    MAX_PREP_CRASHES,
    EncodedImage,
    PrepJob,
    PrepPool,
    choose_prep_workers,
    encode_tile,
    prepare_job,
)
from docvlm.options import make_options
from docvlm.pipeline import stream_documents
from tests.fake_openai_server import FakeOpenAIServer, Script
from tests.test_feed import MODEL, SleepyGpu, receipts

HANG_LIMIT_S = 240
"""A feed that takes longer than this has hung (it takes seconds): the test fails instead of blocking."""


def mixed_inputs(folder: Path) -> list[Path]:
    """Receipts, a 3-page PDF whose middle page is a huge MediaBox with no text (over the pixel cap: that page
    fails alone), and a truncated JPEG (a bad one-page document)."""
    paths = receipts(folder, 3, sizes=((400, 900), (900, 1300)))
    pdf = pymupdf.open()
    for i, (w, h) in enumerate(((400, 500), (14400, 14400), (500, 400))):
        page = pdf.new_page(width=w, height=h)
        if i != 1:
            for k in range(8):
                page.insert_text((20, 40 + 30 * k), f"line {k} of page {i + 1}: TOTAL 12.50")
    doc = folder / "three.pdf"
    pdf.save(doc)
    big = Image.new("RGB", (1600, 2000), "white")
    ImageDraw.Draw(big).text((100, 100), "TOTAL 12.50", fill="black")
    cut = folder / "cut.jpg"
    big.save(cut, quality=90)
    cut.write_bytes(cut.read_bytes()[: cut.stat().st_size // 3])
    return [paths[0], doc, paths[1], cut, paths[2]]


def comparable(result) -> str:  # noqa: ANN001
    """A result without its timings (seconds), for comparing two runs."""
    data = result.model_dump(mode="json", exclude={"seconds"})
    for page in data["pages"]:
        page.pop("seconds", None)
    return json.dumps(data, sort_keys=True)


def run_feed(engine, options, paths):  # noqa: ANN001, ANN201
    """The feed's results; with a pool, its preparers started first, and every page prepared by them."""
    pool = engine.prep_pool()
    if pool is not None:
        assert pool.wait_ready(HANG_LIMIT_S)  # else the first pages are prepared in the feed's thread
    out: list = []
    worker = threading.Thread(target=lambda: out.extend(
        stream_documents([(p.name, p, p.name) for p in paths], options, engine=engine)), daemon=True)
    worker.start()
    worker.join(HANG_LIMIT_S)
    assert not worker.is_alive(), "the feed hung"
    if pool is not None:
        pages = sum(max(1, len(r.pages)) for _, r in out if r.pages)
        assert pool.prepared == pages, (pool.prepared, pages)
    engine.close_prep_pool()
    return out


def check_mixed(out, paths) -> None:  # noqa: ANN001
    assert [tag for tag, _ in out] == [p.name for p in paths]  # input order
    by = dict(out)
    for p in paths:
        if p.suffix == ".png":
            assert by[p.name].status == "success", [e.message for e in by[p.name].errors]
    pdf = by["three.pdf"]
    assert [pg.status for pg in pdf.pages] == ["success", "failure", "success"]
    (err,) = pdf.pages[1].errors
    assert "three.pdf (page 2)" in err.message and "--max-page-pixels" in err.message, err.message
    cut = by["cut.jpg"]
    messages = [e.message for e in cut.errors] + [e.message for p in cut.pages for e in p.errors]
    assert cut.status == "failure" and messages and all("cut.jpg" in m for m in messages), messages


def test_hf_path_same_results_with_and_without_preparers(tmp_path):
    paths = mixed_inputs(tmp_path)
    runs = {}
    for workers in (0, 2):
        options = make_options(engine="hf", family="qwen2.5", batch_size=2, max_visual_tokens=16384,
                               prep_workers=workers)
        engine = SleepyGpu(options, seconds=0.0)
        assert (engine.prep_pool() is None) == (workers == 0)
        out = run_feed(engine, options, paths)
        check_mixed(out, paths)
        runs[workers] = [comparable(r) for _, r in out]
    assert runs[0] == runs[2]


def test_openai_path_same_results_and_requests_with_encoding_in_the_preparers(tmp_path):
    paths = mixed_inputs(tmp_path)
    runs = {}
    with FakeOpenAIServer(Script(latency=0.2, detect_marks=False)) as server:
        for workers in (0, 2):
            options = make_options(engine="openai", base_url=server.url, model=MODEL, concurrency=4, retries=0,
                                   prep_workers=workers)
            engine = OpenAIEngine(options)
            before = server.count
            out = run_feed(engine, options, paths)
            check_mixed(out, paths)
            runs[workers] = ([comparable(r) for _, r in out], server.count - before)
    assert runs[0] == runs[2]


def die_on_page_two(job: PrepJob):  # noqa: ANN201
    """A preparer that is killed (SIGKILL, like the kernel's OOM killer) whenever it prepares page 2."""
    if job.index == 1:
        os.kill(os.getpid(), signal.SIGKILL)
    return prepare_job(job)


def test_a_killed_preparer_fails_its_page_with_a_clear_error_and_the_rest_go_on(tmp_path):
    paths = [*receipts(tmp_path, 2)]
    pdf = pymupdf.open()
    for i in range(4):
        pdf.new_page(width=300, height=400).insert_text((20, 50), f"page {i + 1} TOTAL 3.50")
    doc = tmp_path / "four.pdf"
    pdf.save(doc)
    paths.insert(1, doc)
    options = make_options(engine="hf", family="qwen2.5", batch_size=2, max_visual_tokens=16384, prep_workers=2)
    engine = SleepyGpu(options, seconds=0.0)
    engine._prep_pool = PrepPool(2, target=die_on_page_two)  # the engine's pool, with a killing preparer
    out = dict(run_feed(engine, options, paths))
    assert [out[p.name].status for p in paths] == ["success", "partial", "success"]
    pages = out["four.pdf"].pages
    assert [p.status for p in pages] == ["success", "failure", "success", "success"]
    (err,) = pages[1].errors
    assert err.code == "crash" and "four.pdf (page 2)" in err.message
    assert f"died {MAX_PREP_CRASHES} times" in err.message and "--prep-workers 0" in err.message


def test_the_feed_prepares_in_its_thread_until_the_preparers_have_started(tmp_path):
    """A pool still starting (its preparers import their libraries) costs no time: the first pages are prepared
    in the feed's thread, the same way, and the preparers take over once they have all answered."""
    paths = receipts(tmp_path, 6)
    options = make_options(engine="hf", family="qwen2.5", batch_size=2, max_visual_tokens=16384, prep_workers=2)
    engine = SleepyGpu(options, seconds=0.0)
    pool = engine.prep_pool()
    assert pool is not None and not pool.ready()  # just started: nothing has answered yet
    first = list(stream_documents([(p.name, p, p.name) for p in paths[:3]], options, engine=engine))
    assert all(r.status == "success" for _, r in first)
    assert pool.wait_ready(HANG_LIMIT_S)
    before = pool.prepared
    rest = list(stream_documents([(p.name, p, p.name) for p in paths[3:]], options, engine=engine))
    engine.close_prep_pool()
    assert all(r.status == "success" for _, r in rest) and pool.prepared - before == 3


def test_pool_charges_only_the_page_whose_preparer_died(tmp_path):
    """Pages being prepared beside the one that kills its preparer are prepared again, uncharged."""
    pdf = pymupdf.open()
    for i in range(6):
        pdf.new_page(width=300, height=400).insert_text((20, 50), f"page {i + 1}")
    doc = tmp_path / "six.pdf"
    pdf.save(doc)
    options = make_options(engine="hf", family="qwen2.5", max_visual_tokens=16384)
    engine = SleepyGpu(options, seconds=0.0)
    from docvlm.engines.base import Task

    spec = engine.prep_spec(Task())
    pool = PrepPool(2, target=die_on_page_two)
    try:
        tickets = [pool.submit(PrepJob(path=str(doc), shown="six.pdf", index=i, spec=spec)) for i in range(6)]
        import time

        deadline = time.monotonic() + HANG_LIMIT_S
        results: dict[int, object] = {}
        while len(results) < 6 and time.monotonic() < deadline:
            for i, t in enumerate(tickets):
                if i not in results and (r := pool.poll(t)) is not None:
                    results[i] = r
            time.sleep(0.05)
        assert len(results) == 6, "the pool hung"
    finally:
        pool.close()
    assert [results[i].failure is not None for i in range(6)] == [False, True, False, False, False, False]
    assert all(len(results[i].tiles) == len(results[i].plan.tiles) for i in (0, 2, 3, 4, 5))


@pytest.mark.parametrize(("cores", "expected"), [(1, 0), (AUTO_MIN_CORES, 2), (2, 2), (3, 2), (4, 3), (16, 15),
                                                 (64, 32)])
def test_auto_chooses_from_the_cores(cores, expected):
    assert choose_prep_workers("auto", cores=cores) == expected
    assert choose_prep_workers(3, cores=cores) == 3 and choose_prep_workers(0, cores=cores) == 0


def test_auto_counts_the_cores_of_this_worker_process(monkeypatch):
    """A `--workers N` pool worker or a Ray actor is given its share of the cores in OMP_NUM_THREADS
    (docvlm.threads): auto counts that share, so N workers never start N x cores preparers."""
    options = make_options(engine="hf", family="qwen2.5", prep_workers="auto")
    engine = SleepyGpu(options, seconds=0.0)
    monkeypatch.setenv("OMP_NUM_THREADS", "8")
    assert engine.prep_workers() == 7
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert engine.prep_workers() == 0 and engine.prep_pool() is None
    assert SleepyGpu(make_options(engine="hf", family="qwen2.5", prep_workers=3), 0.0).prep_workers() == 3


def test_prep_workers_option_from_the_cli_and_its_bad_values():
    from click.testing import CliRunner

    from docvlm.cli import main

    res = CliRunner().invoke(main, ["convert", "x.png", "--prep-workers", "many"])
    assert res.exit_code == 2 and "auto or a number" in res.output
    res = CliRunner().invoke(main, ["convert", "x.png", "--prep-workers", "-1"])
    assert res.exit_code == 2
    assert make_options(prep_workers="auto").prep_workers == "auto"


@pytest.mark.parametrize("fmt", ["png", "webp"])
def test_tile_encoding_is_lossless(fmt):
    img = Image.new("RGB", (280, 196), "white")
    d = ImageDraw.Draw(img)
    for k in range(6):
        d.text((5, 5 + 30 * k), f"TOTAL {k}.50 RM", fill=(k * 40, 0, 0))
    enc = encode_tile(img, fmt)
    assert isinstance(enc, EncodedImage) and enc.size == img.size and enc.mime == f"image/{fmt}"
    assert enc.to_pil().convert("RGB").tobytes() == img.tobytes()


def test_tile_format_webp_reaches_the_server_as_webp(tmp_path):
    (path,) = receipts(tmp_path, 1)
    with FakeOpenAIServer(Script(latency=0.0, detect_marks=False)) as server:
        options = make_options(engine="openai", base_url=server.url, model=MODEL, retries=0, tile_format="webp",
                               prep_workers=0)
        engine = OpenAIEngine(options)
        ((_, result),) = run_feed(engine, options, [path])
        assert result.status == "success"
        mimes = [m for record in server.records for m in record.image_mime]
    assert mimes and all(m == "data:image/webp;base64" for m in mimes), mimes


def record_and_wait(job: PrepJob):  # noqa: ANN201
    """A preparer that notes its pid in the job's folder and then never finishes (the parent will be killed)."""
    import time

    Path(job.path, str(os.getpid())).touch()
    time.sleep(600)


DRIVER = """
import sys, time
sys.path.insert(0, {root!r})
from docvlm.engines.prep import PrepJob, PrepPool
from tests.test_prep_workers import record_and_wait
pool = PrepPool(2, target=record_and_wait)
for i in range(4):
    pool.submit(PrepJob(path={pids!r}, shown="x", index=i, spec=None))
time.sleep(600)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_sigkill_of_the_parent_ends_its_preparers(tmp_path):
    from tests.test_orphans import ROOT, kill_driver_and_check_children, names

    pid_dir = tmp_path / "pids"
    pid_dir.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCVLM_")} | {"PYTHONWARNINGS": "ignore"}
    cmd = [sys.executable, "-c", DRIVER.format(root=str(ROOT), pids=str(pid_dir))]
    left = kill_driver_and_check_children(cmd, env, pid_dir, workers=2)
    assert not left, names(left)


def test_a_ray_gpu_actor_asks_for_its_gpus_share_of_the_cpus():
    """A GPU actor of a planning engine asks for the CPUs that come with its GPU (its preparers run on them),
    on the GPU node with the fewest CPUs per GPU, so it can be placed anywhere; dead and CPU-only nodes do not
    count."""
    from docvlm.executors.ray import cpus_per_gpu_actor

    nodes = [{"Alive": True, "Resources": {"CPU": 64.0, "GPU": 4.0}},
             {"Alive": True, "Resources": {"CPU": 24.0, "GPU": 2.0}},
             {"Alive": False, "Resources": {"CPU": 2.0, "GPU": 2.0}},
             {"Alive": True, "Resources": {"CPU": 8.0}}]
    assert cpus_per_gpu_actor(nodes, 1.0) == 12.0
    assert cpus_per_gpu_actor(nodes, 0.5) == 6.0
    assert cpus_per_gpu_actor(nodes[3:], 1.0) is None and cpus_per_gpu_actor(None, 1.0) is None
    assert cpus_per_gpu_actor([{"Alive": True, "Resources": {"CPU": 1.0, "GPU": 8.0}}], 1.0) == 1.0


def test_workers_with_their_own_preparers_finish_and_exit(tmp_path):
    """`--workers 2 --prep-workers 2`: each document process has a pool of preparers (nested spawn). A pool
    worker exits through multiprocessing's exit handler, which joins its children: the preparers are stopped
    first (a hang here before the fix, with 'SemLock ... FileNotFoundError' from a preparer still starting)."""
    import subprocess

    from tests.test_orphans import ROOT

    receipts(tmp_path / "in" if (tmp_path / "in").mkdir() is None else tmp_path, 4)
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCVLM_")} | {"PYTHONWARNINGS": "ignore"}
    with FakeOpenAIServer(Script(latency=0.1, detect_marks=False)) as server:
        proc = subprocess.run(
            [sys.executable, "-m", "docvlm", "convert", str(tmp_path / "in"), "-o", str(tmp_path / "out"),
             "--engine", "openai", "--base-url", server.url, "--model", MODEL, "--workers", "2",
             "--prep-workers", "2", "--concurrency", "4"],
            capture_output=True, text=True, cwd=ROOT, env=env, timeout=HANG_LIMIT_S,
        )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert len(list((tmp_path / "out").rglob("r*.json"))) == 4
