"""Page preparation for the VLM engines, in this thread or in a pool of processes on every core.

Preparing a page is open, estimate the text size, plan, render, cut the tiles and (openai) encode them: the
CPU work the model waits for. PyMuPDF is not thread-safe and most of this work holds the GIL, so one process
prepares one page at a time; `PrepPool` runs `prepare_job` in `--prep-workers` spawn processes, each of which
opens the document itself (the page goes to it as a path and an index, not as pixels) and sends back a
`PreparedPage`: the plan, the text-size estimate and the tiles, already encoded when the engine sends bytes.
The main process keeps what cannot move (the requests, parsing, layout, writing) and its own light
`SourcePage` of each page (geometry, and the rendering the layout stage asks for now and then).

How many workers: `choose_prep_workers` ("auto" by default): one per core this process may use, less one core
left to the main process, at least two (on 2 cores, 2 preparers beat the feed's own thread, which the GIL holds
to about one core: see `AUTO_MIN_CORES`), and none (preparation in the feed's own thread) on one core. A
process of `--workers N` or a Ray actor counts the cores it was given (`docvlm.threads.inference_threads`), so N
workers never start N x cores preparers.

Start: the preparers start with the pool (`PrepPool.warm`); until all have answered, the feed prepares pages in
its own thread as without a pool, so a short run pays nothing for their start (a few seconds of imports each).

Failure: a page that fails to prepare is that page's failure (same message in a worker as in the thread). A
worker that dies (killed, out of memory) breaks its pool: the pool is replaced, the pages the dead worker was
preparing are charged one attempt and the pages beside them are prepared again uncharged; a page charged
`MAX_PREP_CRASHES` times fails with a message naming the file and page. Never a hang: a dead worker is seen
by the pool's own manager thread, which fails its futures.
"""

from __future__ import annotations

import collections
import contextlib
import io
import itertools
import multiprocessing as mp
import multiprocessing.util as mp_util
import os
import signal
import time
from concurrent.futures import Future
from concurrent.futures import ProcessPoolExecutor as _Pool
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from docvlm.datamodel import ErrorItem
from docvlm.errors import DocvlmError, UsageError
from docvlm.executors.lifeline import sigint_ignored

if TYPE_CHECKING:
    from PIL import Image

    from docvlm.datamodel import EncodingPlan, Family, TaskKind
    from docvlm.families.base import ModelFamily
    from docvlm.options import ConvertOptions
    from docvlm.sources import SourceDocument, SourcePage
    from docvlm.textsize import TextSizeResult

TileFormat = Literal["png", "webp"]

AUTO_MIN_CORES = 2
"""`--prep-workers auto` starts a pool from this many cores on, with at least `AUTO_MIN_WORKERS` preparers. One
core: preparing in the feed's thread (a preparer would only take the core from the main process). Measured on 2
cores (bench/feed_bench.py, load 1.5-4.6, two runs): 2 preparers reached 1.04-1.35x the minimal client against
0.82-1.41x for the feed's thread (receipts 1.08/1.34 vs 0.82/1.00, text-layer PDF pages 1.04/1.35 vs 0.84/0.88),
and bench/hf_feed_bench.py 12.4 against 9.1 pages/s; the thread is held to about one core by the GIL. Under
heavy load (6-15 on 2 cores) the settings were within the noise of each other."""
AUTO_MIN_WORKERS = 2
"""A pool has at least this many preparers: one preparer uses one core, which the feed's thread already does."""
MAIN_PROCESS_CORES = 1
"""Cores `auto` leaves to the main process: HTTP requests (base64, JSON), parsing, layout and writing (10-23 ms
of CPU per page with preparers on the feed benches, against 120-250 ms per page of preparation)."""
MAX_AUTO_PREP_WORKERS = 32
"""`auto` never starts more preparers than this (each holds a document open and a page's tiles)."""
PREP_WINDOW_PER_WORKER = 2
"""Pages submitted per preparer at a time: one being prepared, one queued, so no preparer waits for the feed."""
FINALIZE_PRIORITY = 10
"""multiprocessing exit priority of a pool's stop: above the queues' semaphore clean-up (0), so it runs first."""
MAX_PREP_CRASHES = 2
"""A page whose preparing process died this many times fails (it is not tried again)."""
OPEN_DOCUMENTS_PER_WORKER = 4
"""Documents a preparer keeps open (pages of one document mostly go to the same few preparers in a row)."""
PNG_COMPRESS_LEVEL = 1
"""Document pages are mostly white: level 1 is 2.4x faster than the default 6 for 1-9% more bytes
(bench/tile_format_bench.py). PNG level 1 is the default tile format: the cheapest lossless encoding, the
feed's scarce resource is CPU, and every server decodes PNG."""
WEBP_METHOD = 4
"""`--tile-format webp`: lossless WebP, method 4 (bench/tile_format_bench.py, SROIE dev tiles and PDF pages:
0.55x and 0.45x the bytes of PNG level 1 for 5.5-5.8x its encode CPU; method 0 saved only 0.66x / 0.94x for
2.4-3x). Worth it where the link to the server, not the CPU, is the limit; the server must decode WebP."""


def choose_prep_workers(setting: int | str, cores: int | None = None) -> int:
    """Preparing processes for `--prep-workers`: a number as given, or for "auto" one per core of `cores`
    (default: the cores this process may use, `docvlm.threads.inference_threads`) less `MAIN_PROCESS_CORES`,
    at least `AUTO_MIN_WORKERS`, and 0 (prepare in the feed's thread) below `AUTO_MIN_CORES` (one core).

    Raises:
        UsageError: a setting that is neither "auto" nor a number >= 0.
    """
    if setting != "auto":
        try:
            n = int(setting)
        except (TypeError, ValueError):
            raise UsageError(f"--prep-workers {setting!r}: use auto or a number >= 0") from None
        if n < 0:
            raise UsageError(f"--prep-workers {n}: use auto or a number >= 0 (0 prepares in the feed's thread)")
        return n
    if cores is None:
        from docvlm.threads import inference_threads

        cores = inference_threads()
    if cores < AUTO_MIN_CORES:
        return 0
    return min(MAX_AUTO_PREP_WORKERS, max(AUTO_MIN_WORKERS, cores - MAIN_PROCESS_CORES))


# --- what travels ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EncodedImage:
    """A tile already encoded (losslessly) for a request: the bytes, their format and the pixel size."""

    data: bytes
    format: TileFormat
    size: tuple[int, int]

    @property
    def width(self) -> int:
        return self.size[0]

    @property
    def height(self) -> int:
        return self.size[1]

    @property
    def mime(self) -> str:
        return f"image/{self.format}"

    def to_pil(self) -> Image.Image:
        """The decoded tile (the same pixels that were encoded)."""
        from PIL import Image

        img = Image.open(io.BytesIO(self.data))
        img.load()
        return img


def encode_tile(image: Image.Image, fmt: TileFormat) -> EncodedImage:
    """The tile encoded losslessly, pixels untouched (never resized): PNG level 1 or lossless WebP method 4."""
    if image.mode not in ("RGB", "L"):
        image = image.convert("RGB")
    buf = io.BytesIO()
    if fmt == "webp":
        image.save(buf, format="WEBP", lossless=True, method=WEBP_METHOD, exact=True)
    else:
        image.save(buf, format="PNG", compress_level=PNG_COMPRESS_LEVEL)
    return EncodedImage(data=buf.getvalue(), format=fmt, size=image.size)


@dataclass(frozen=True)
class PrepSpec:
    """How a page is prepared (everything but the page; picklable: a family entry, options, names)."""

    options: ConvertOptions
    family: Family
    task_kind: TaskKind
    device_memory_bytes: int | None
    policy: ModelFamily | None
    encode: TileFormat | None = None
    """Encode the tiles in the preparer (the engine sends bytes), or None to hand over the images."""


@dataclass(frozen=True)
class PrepJob:
    """One page to prepare in a worker: which file and page, and how."""

    path: str  # where the worker opens it
    shown: str  # the path named in results and messages
    index: int
    spec: PrepSpec
    job_id: int = 0


@dataclass
class PreparedPage:
    """A page ready for the model: its plan, text-size estimate and tiles (in plan order), or its failure."""

    index: int
    plan: EncodingPlan | None = None
    text_size: TextSizeResult | None = None
    tiles: list[Any] = field(default_factory=list)  # PIL images, or EncodedImage when the spec encodes
    failure: ErrorItem | None = None
    seconds: dict[str, float] = field(default_factory=dict)  # process CPU s per stage: open, plan, cut, encode
    pid: int = 0


def page_where(path: str, index: int) -> str:
    return f"{path} (page {index + 1})"


def _prefixed(where: str, message: str) -> str:
    return message if message.startswith(where.split(" (page")[0]) else f"{where}: {message}"


def prepare_page(page: SourcePage, spec: PrepSpec) -> PreparedPage:
    """Estimate, plan, render and cut one open page (and encode its tiles when `spec.encode`); never raises for
    the page's own trouble: a page that cannot be planned or rendered is a `PreparedPage` with its failure."""
    from docvlm.plan import plan_for_page, render_tiles

    where = page_where(page.path, page.index)
    out = PreparedPage(index=page.index, pid=os.getpid())
    t = time.process_time()
    try:
        out.plan = plan_for_page(page, spec.options, spec.family, spec.task_kind,
                                 device_memory_bytes=spec.device_memory_bytes, policy=spec.policy)
        out.text_size = page.text_size
        t, out.seconds["plan"] = time.process_time(), time.process_time() - t
        tiles = render_tiles(page, out.plan.tiles)
        t, out.seconds["cut"] = time.process_time(), time.process_time() - t
        if spec.encode is not None:
            tiles = [encode_tile(image, spec.encode) for image in tiles]
            out.seconds["encode"] = time.process_time() - t
        out.tiles = tiles
    except DocvlmError as exc:
        out.failure = ErrorItem(code=exc.code, message=_prefixed(where, str(exc)), page=page.index)
    except Exception as exc:  # noqa: BLE001 - a page that cannot be planned or rendered is that page's failure
        out.failure = ErrorItem(code="engine", message=f"{where}: cannot plan/render: {type(exc).__name__}: {exc}",
                                page=page.index)
    return out


# --- in a worker process ------------------------------------------------------------------------------------

_STATE: dict[str, Any] = {}


def _init_worker(parent_pid: int, parent_identity: str | None, starts: Any) -> None:
    from docvlm.executors.lifeline import die_with_parent
    from docvlm.threads import set_worker_threads

    die_with_parent(parent_pid, parent_identity)  # a parent killed with SIGKILL leaves no preparer behind
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the main process owns Ctrl-C
    set_worker_threads(1)  # one page at a time per process: no inner thread pools beside the other preparers
    with contextlib.suppress(Exception):
        import cv2

        cv2.setNumThreads(1)
    _STATE["starts"] = starts
    _STATE["docs"] = collections.OrderedDict()


def _open(job: PrepJob) -> SourceDocument:
    """The job's document, from this worker's few open ones (least recently used closed first)."""
    from docvlm.sources import open_document

    docs: collections.OrderedDict[tuple[str, str], SourceDocument] = _STATE.setdefault("docs",
                                                                                       collections.OrderedDict())
    key = (job.path, job.spec.options.digest() + str(job.spec.options.password))
    doc = docs.pop(key, None)
    if doc is None:
        doc = open_document(job.path, job.spec.options, display_path=job.shown)
    docs[key] = doc
    while len(docs) > OPEN_DOCUMENTS_PER_WORKER:
        _, old = docs.popitem(last=False)
        with contextlib.suppress(Exception):
            old.close()
    return doc


def prepare_job(job: PrepJob) -> PreparedPage:
    """Run in a preparer: open the job's document (kept open for its next pages), prepare the page."""
    t = time.process_time()
    try:
        doc = _open(job)
        page = doc.page(job.index)
    except DocvlmError as exc:
        where = page_where(job.shown, job.index)
        return PreparedPage(index=job.index, pid=os.getpid(),
                            failure=ErrorItem(code=exc.code, message=_prefixed(where, str(exc)), page=job.index))
    except Exception as exc:  # noqa: BLE001 - an unexpected library error on a bad file is that page's error
        where = page_where(job.shown, job.index)
        return PreparedPage(index=job.index, pid=os.getpid(), failure=ErrorItem(
            code="input", message=f"{where}: cannot open: {type(exc).__name__}: {exc}", page=job.index))
    opened = time.process_time() - t
    try:
        out = prepare_page(page, job.spec)
    finally:
        page.release()
    out.seconds["open"] = opened
    return out


def _noop() -> None:
    """A preparer's first job (`PrepPool.warm`): nothing, once its initializer has run."""


def _run_job(target: Any, job: PrepJob) -> PreparedPage:
    """What a preparer runs: note which page it starts, then `target(job)` (`prepare_job`)."""
    starts = _STATE.get("starts")
    if starts is not None:  # unbuffered: there even when this process dies mid-page (the crash is charged here)
        starts.put((os.getpid(), job.job_id))
    return target(job)


# --- the pool, in the main process --------------------------------------------------------------------------


@dataclass
class PrepTicket:
    """A page submitted to the pool: poll it with `PrepPool.poll`."""

    job: PrepJob
    future: Future[PreparedPage]
    generation: int
    attempts: int = 0
    result: PreparedPage | None = None


def crash_failure(job: PrepJob) -> PreparedPage:
    where = page_where(job.shown, job.index)
    return PreparedPage(index=job.index, failure=ErrorItem(
        code="crash", page=job.index,
        message=(f"{where}: the process preparing this page died {MAX_PREP_CRASHES} times (killed, or out of "
                 "memory: a huge page? see --max-page-pixels); the page was not tried again. Try "
                 "--prep-workers 0 to see the error"),
    ))


class PrepPool:
    """`workers` spawn processes preparing pages (`target`, default `prepare_job`); a dead one is replaced.

    Submit with `submit`, and read a ticket's result with `poll` (None while it runs): a page whose pool broke
    is resubmitted to a new pool (charged an attempt only when its own preparer died) or, at the last attempt,
    a failed `PreparedPage`. `futures()` are the running ones, for `concurrent.futures.wait`.
    """

    def __init__(self, workers: int, target: Any = None) -> None:
        self.workers = max(1, workers)
        self.target = target or prepare_job
        self._ids = itertools.count()
        self._generation = 0
        self._pool: _Pool | None = None
        self._starts: Any = None
        self._running: dict[int, int] = {}  # pid -> job id it started last
        self._procs: dict[int, Any] = {}  # pid -> the pool's Process, for its exit code
        self._suspects: dict[int, set[int] | None] = {}  # broken generation -> job ids its dead preparers ran
        self._tickets: dict[int, PrepTicket] = {}  # running
        self._warming: list[Future[None]] = []
        self._finalizer: Any = None
        self.prepared = 0  # pages whose preparation came back (prepared or failed)
        self.pid = os.getpid()

    def warm(self) -> None:
        """Start the preparers now (a no-op job each): they import their libraries while the feed prepares its
        first pages itself (`ready`), so the pool's start costs the run no time."""
        with sigint_ignored():
            pool = self._ensure()
            self._warming = [pool.submit(_noop) for _ in range(self.workers)]
            self._procs.update(getattr(pool, "_processes", None) or {})

    def ready(self) -> bool:
        """True once every preparer started by `warm` has answered (at once for a pool never warmed)."""
        if self._warming and all(f.done() for f in self._warming):
            self._warming = []
        return not self._warming

    def wait_ready(self, timeout: float | None = None) -> bool:
        """Wait until `ready` (benches and tests: the pool's start is not what they measure)."""
        from concurrent.futures import wait

        wait(self._warming, timeout=timeout)
        return self.ready()

    @property
    def window(self) -> int:
        """Pages to keep submitted: `PREP_WINDOW_PER_WORKER` per preparer."""
        return PREP_WINDOW_PER_WORKER * self.workers

    def outstanding(self) -> int:
        return len(self._tickets)

    def futures(self) -> list[Future[PreparedPage]]:
        return [t.future for t in self._tickets.values()]

    def _ensure(self) -> _Pool:
        if self._pool is None:
            from docvlm.executors.lifeline import process_identity

            ctx = mp.get_context("spawn")
            self._starts = ctx.SimpleQueue()
            self._running = {}
            self._pool = _Pool(max_workers=self.workers, mp_context=ctx, initializer=_init_worker,
                               initargs=(os.getpid(), process_identity(os.getpid()), self._starts))
            # stopped before this process's multiprocessing exit handler unlinks the queues' semaphores and
            # joins its children: a `--workers N` pool worker exits through that handler, not through
            # concurrent.futures' own one, and would wait forever for preparers nobody told to stop
            self._finalizer = mp_util.Finalize(self, _stop_pool, args=(self._pool,), exitpriority=FINALIZE_PRIORITY)
        return self._pool

    def submit(self, job: PrepJob) -> PrepTicket:
        job = PrepJob(path=job.path, shown=job.shown, index=job.index, spec=job.spec, job_id=next(self._ids))
        ticket = PrepTicket(job=job, future=self._submit(job), generation=self._generation)
        self._tickets[job.job_id] = ticket
        return ticket

    def _submit(self, job: PrepJob) -> Future[PreparedPage]:
        with sigint_ignored():  # preparers start inside submit(); they inherit SIG_IGN from birth
            for _ in range(2):
                try:
                    pool = self._ensure()
                    future = pool.submit(_run_job, self.target, job)
                    # the pool forgets its processes once broken: keep them, to read who died and how
                    self._procs.update(getattr(pool, "_processes", None) or {})
                    return future
                except BrokenProcessPool:  # broke since the last look: replace it, submit to the new one
                    self._replace()
            raise BrokenProcessPool("page preparation pool cannot start")

    def poll(self, ticket: PrepTicket) -> PreparedPage | None:
        """The ticket's prepared page, or None while it is being prepared."""
        if ticket.result is not None:
            return ticket.result
        if not ticket.future.done():
            return None
        self._drain_starts()  # the preparers' start notes: read as they come, so their pipe never fills
        try:
            ticket.result = ticket.future.result()
        except BrokenProcessPool:
            if ticket.generation == self._generation:
                self._replace()
            suspects = self._suspects.get(ticket.generation)
            if suspects is None or ticket.job.job_id in suspects:
                ticket.attempts += 1
            if ticket.attempts >= MAX_PREP_CRASHES:
                ticket.result = crash_failure(ticket.job)
            else:
                ticket.future = self._submit(ticket.job)
                ticket.generation = self._generation
                return None
        except Exception as exc:  # noqa: BLE001 - e.g. a result that does not unpickle: that page's failure
            where = page_where(ticket.job.shown, ticket.job.index)
            ticket.result = PreparedPage(index=ticket.job.index, failure=ErrorItem(
                code="engine", page=ticket.job.index,
                message=f"{where}: page preparation failed: {type(exc).__name__}: {exc}"))
        self._tickets.pop(ticket.job.job_id, None)
        self.prepared += 1
        return ticket.result

    def _replace(self) -> None:
        """The pool broke: note whose preparer died (by exit code), stop it, start a new one on next submit."""
        pool = self._pool
        if pool is None:
            return
        procs = {**self._procs, **(getattr(pool, "_processes", None) or {})}
        self._procs = {}
        pool.shutdown(wait=False, cancel_futures=True)
        for proc in procs.values():
            with contextlib.suppress(Exception):
                proc.join(timeout=5)
        self._drain_starts()
        dead = {pid for pid, proc in procs.items()
                if getattr(proc, "exitcode", None) not in (None, 0, -signal.SIGTERM)}
        suspects = {self._running[pid] for pid in dead if pid in self._running}
        self._suspects[self._generation] = suspects or None  # None: cannot tell, every page is charged
        with contextlib.suppress(Exception):
            self._starts.close()
        self._dispose_finalizer()
        self._pool = None
        self._generation += 1

    def _drain_starts(self) -> None:
        if self._starts is None:
            return
        try:
            while not self._starts.empty():
                pid, job_id = self._starts.get()
                self._running[pid] = job_id
        except (OSError, EOFError, ValueError):
            return

    def cpu_seconds(self) -> tuple[float, int]:
        """CPU seconds used so far by the live preparers (psutil, the test extra), and how many there are: the
        benches' figure of what preparing costs beside the main process."""
        import psutil

        total, live = 0.0, 0
        for pid in list(self._procs):
            try:
                t = psutil.Process(pid).cpu_times()
            except psutil.Error:
                continue
            total += t.user + t.system
            live += 1
        return total, live

    def cancel_all(self) -> None:
        """Forget the pages submitted and not taken (a feed stopped early): what runs ends unread."""
        for ticket in self._tickets.values():
            ticket.future.cancel()
        self._tickets.clear()

    def close(self) -> None:
        """Stop the preparers now (nothing they hold is the user's: prepared pages not taken are dropped)."""
        pool, self._pool = self._pool, None
        self._tickets.clear()
        self._warming = []
        self._dispose_finalizer()
        if pool is not None:
            _stop_pool(pool)

    def _dispose_finalizer(self) -> None:
        finalizer, self._finalizer = self._finalizer, None
        if finalizer is not None:
            finalizer.cancel()


def _stop_pool(pool: _Pool) -> None:
    """Cancel what has not started, end the preparers (SIGTERM) and wait for them (at most 5 s each)."""
    procs = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for proc in procs:
        with contextlib.suppress(Exception):
            proc.terminate()
    for proc in procs:
        with contextlib.suppress(Exception):
            proc.join(timeout=5)
