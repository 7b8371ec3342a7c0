"""What every VLM engine (hf, openai) shares: plan -> prompt -> generate -> guard -> parse -> geometry.

An engine subclass only implements `generate_batch` (planned tile images in, raw text out) and `info`.
Everything after the engine returns text is one code path for every VLM engine, and the same parser and
geometry (`grounding.page_lines_from_outputs`) that `docvlm reparse` runs on stored raw outputs.

Runaway guard: a tile whose output stopped at the token limit, or whose text ends in a loop (`detect_repetition`),
is recorded with that stop reason and generated once more with a repetition penalty; if the retry fails the
same way the page is "partial" with a `runaway` error (the complete part of the output is still parsed).
"""

from __future__ import annotations

import os
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from concurrent.futures import Future, wait
from dataclasses import dataclass
from typing import TYPE_CHECKING

from docvlm.datamodel import ErrorItem, PageResult, TileOutput
from docvlm.errors import DocvlmError

if TYPE_CHECKING:
    from PIL import Image

    from docvlm.datamodel import EncodingPlan, EngineInfo, Family, Line, StopReason
    from docvlm.engines.base import Task
    from docvlm.engines.prep import EncodedImage, PreparedPage, PrepPool, PrepSpec, TileFormat
    from docvlm.families.base import ModelFamily
    from docvlm.options import ConvertOptions
    from docvlm.sources import SourcePage

RETRY_REPETITION_PENALTY = 1.15
"""Penalty for the one retry of a runaway tile: enough to break a verbatim loop, mild enough for real text."""
REPEAT_MIN_SPAN_CHARS = 160
"""A tail loop must cover this many characters to count (a receipt's '=====' rule or dot leader does not)."""
REPEAT_MIN_COUNT = 3
"""...and repeat its unit at least this many times (three identical lines with identical boxes is a loop)."""
REPEAT_MAX_UNIT_CHARS = 400


@dataclass(frozen=True)
class TileRequest:
    """One generation request: a tile image already at its planned encoded size, and its prompt."""

    image: Image.Image | EncodedImage  # exactly TilePlan.encoded_size; engines must not resize it. Encoded
    # (docvlm.engines.prep.EncodedImage) when a preparer encoded it for an engine that sends bytes
    prompt: str  # the user text of the chat turn (the image comes first in the turn)
    system: str | None = None
    max_new_tokens: int = 1024
    repetition_penalty: float | None = None  # set on the retry after a repetition loop


@dataclass(frozen=True)
class TileResponse:
    text: str  # decoded with special tokens kept
    prompt_tokens: int | None = None
    generated_tokens: int | None = None
    stop_reason: StopReason = "eos"
    error: str | None = None  # set when this request failed (the page gets an error, the batch goes on)


@dataclass(frozen=True)
class Repetition:
    """A loop found at the end of an output: a unit of `unit_chars` characters covering `span_chars`."""

    unit: str
    unit_chars: int
    span_chars: int

    @property
    def count(self) -> float:
        return self.span_chars / self.unit_chars


def detect_repetition(
    text: str,
    *,
    min_span: int = REPEAT_MIN_SPAN_CHARS,
    min_count: int = REPEAT_MIN_COUNT,
    max_unit: int = REPEAT_MAX_UNIT_CHARS,
) -> Repetition | None:
    """Find a loop at the end of `text`: a unit (any n-gram of characters, hence of tokens or words) repeated
    back to back at least `min_count` times over at least `min_span` characters. The unit may be cut at the end
    (outputs stop mid-loop at the token limit). Returns the shortest such unit, or None.
    """
    n = len(text)
    if n < min_span:
        return None
    last = n - 1
    for period in range(1, min(max_unit, n // min_count) + 1):
        if text[last] != text[last - period]:
            continue
        # length of the suffix in which text[i] == text[i - period]
        i = last
        while i - period >= 0 and text[i] == text[i - period]:
            i -= 1
        span = last - i + period  # the matching suffix plus the first copy of the unit
        if span >= min_span and span >= min_count * period:
            start = n - span
            return Repetition(unit=text[start : start + period], unit_chars=period, span_chars=span)
    return None


def runaway_reason(response: TileResponse) -> StopReason | None:
    """'repetition' or 'length' when a response ran away; None for a clean stop or an error."""
    if response.error is not None:
        return None
    if response.stop_reason == "repetition" or detect_repetition(response.text) is not None:
        return "repetition"
    if response.stop_reason == "length":
        return "length"
    return None


@dataclass
class _Job:
    """One tile of one page on its way through generation."""

    page_slot: int
    tile_index: int
    request: TileRequest
    response: TileResponse | None = None
    first_reason: StopReason | None = None
    retried: bool = False


@dataclass
class PendingPages:
    """Pages whose tiles are submitted (`VlmEngine.start_pages`), waiting for `finish_pages`."""

    works: list[_PageWork]
    jobs: list[_Job]
    futures: list[Future[TileResponse]]
    task: Task

    def done(self) -> bool:
        return all(f.done() for f in self.futures)

    def wait(self, timeout: float | None = None) -> None:
        wait(self.futures, timeout=timeout)


@dataclass
class GenerateStats:
    """What the generate loop did: calls, time inside `generate_batch`, and the padding of its batches."""

    calls: int = 0
    tiles: int = 0
    busy_s: float = 0.0
    first_start: float | None = None
    last_end: float | None = None
    token_slots: int = 0  # batch size x the largest tile's tokens, summed over calls
    tokens: int = 0  # the tiles' own tokens (image pixels / factor^2), summed

    @property
    def padding_share(self) -> float:
        """Share of a batch's visual-token slots that are padding (tiles padded to the batch's largest)."""
        return 1.0 - self.tokens / self.token_slots if self.token_slots else 0.0

    @property
    def busy_share(self) -> float:
        """Time inside generate over the time from the first call's start to the last call's end."""
        if self.first_start is None or self.last_end is None or self.last_end <= self.first_start:
            return 0.0
        return self.busy_s / (self.last_end - self.first_start)


TOKEN_PX = 28 * 28
"""Pixels per visual token used to group a batch (the factor of Qwen2/2.5; Qwen3's 32 px only rescales all)."""


class GenerateLoop:
    """One thread that calls `generate_batch` on queued tiles, a batch at a time, so the caller's thread
    prepares the next pages meanwhile (torch and the tokenizer release the GIL while they compute).

    A batch is the oldest queued tile plus the queued tiles closest to it in visual tokens, up to `batch_size`:
    first come, first served, and tiles of like size share a batch (little padding).
    """

    def __init__(self, generate: Callable[[Sequence[TileRequest]], list[TileResponse]], batch_size: int) -> None:
        self._generate = generate
        self.batch_size = batch_size
        self.pid = os.getpid()
        self.stats = GenerateStats()
        self._queue: list[tuple[TileRequest, Future[TileResponse]]] = []
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None

    def put_many(self, requests: Sequence[TileRequest]) -> list[Future[TileResponse]]:
        """Queue tiles together (one page's tiles can share a batch) and return their futures."""
        futures: list[Future[TileResponse]] = [Future() for _ in requests]
        with self._cond:
            self._queue.extend(zip(requests, futures, strict=True))
            if self._thread is None:
                self._thread = threading.Thread(target=self._work, name="docvlm-generate", daemon=True)
                self._thread.start()
            self._cond.notify()
        return futures

    def _take(self) -> list[tuple[TileRequest, Future[TileResponse]]]:
        with self._cond:
            while not self._queue:
                self._cond.wait()
            first = self._queue[0]
            key = _tokens(first[0])
            rest = sorted(range(1, len(self._queue)), key=lambda i: (abs(_tokens(self._queue[i][0]) - key), i))
            chosen = sorted([0, *rest[: self.batch_size - 1]])
            batch = [self._queue[i] for i in chosen]
            for i in reversed(chosen):
                del self._queue[i]
            return batch

    def _work(self) -> None:
        while True:
            batch = self._take()
            requests = [r for r, _ in batch]
            started = time.perf_counter()
            try:
                responses = self._generate(requests)
                if len(responses) != len(requests):
                    responses = [TileResponse(text="", stop_reason="error", error=f"engine returned {len(responses)} "
                                              f"responses for {len(requests)} requests")] * len(requests)
            except BaseException as exc:  # noqa: BLE001 - handed to every waiting page, never lost in this thread
                for _, future in batch:
                    future.set_exception(exc)
                continue
            finally:
                ended = time.perf_counter()
                st = self.stats
                st.calls += 1
                st.tiles += len(requests)
                st.busy_s += ended - started
                st.first_start = started if st.first_start is None else st.first_start
                st.last_end = ended
                toks = [_tokens(r) for r in requests]
                st.tokens += sum(toks)
                st.token_slots += max(toks) * len(toks)
            for (_, future), response in zip(batch, responses, strict=True):
                future.set_result(response)
            del batch, requests, responses  # the tiles are the pages' now: nothing kept while this thread waits


def _tokens(request: TileRequest) -> int:
    w, h = request.image.size
    return max(1, (w * h) // TOKEN_PX)


@dataclass
class _PageWork:
    page: SourcePage
    where: str
    plan: EncodingPlan | None = None
    prompt_id: str | None = None
    failure: ErrorItem | None = None
    reference: list[Line] | None = None
    """The ocr engine's lines of the page, for a family that reads without boxes (docvlm.families.align)."""


class VlmEngine(ABC):
    """Base of the VLM engines. Subclasses implement `generate_batch` and `info`.

    Hooks a subclass may override: `resolve_family()` (e.g. read from the checkpoint's config) and
    `device_memory_bytes()` (sets the default visual-token budget of the plan).
    """

    name = "vlm"
    family: Family
    options: ConvertOptions

    def __init__(self, options: ConvertOptions, family: Family | None = None) -> None:
        self.options = options
        if family is not None:
            self.family = family

    # --- hooks ------------------------------------------------------------------------------------------

    @abstractmethod
    def generate_batch(self, requests: Sequence[TileRequest]) -> list[TileResponse]:
        """Generate for a batch of tiles.

        Args:
            requests: tiles with their prompts; images are at their planned size already.

        Returns:
            One response per request, in order. A failed request is a response with `error` set.

        Raises:
            docvlm.errors.ModelLoadError: when the model cannot be loaded at all.
        """

    @abstractmethod
    def info(self) -> EngineInfo: ...

    def resolve_family(self) -> Family:
        """The model family whose resize rule, prompts and box convention apply."""
        family = getattr(self, "family", None) or self.options.family
        if family is None:
            from docvlm.families import FAMILY_NAMES

            raise DocvlmError(f"engine {self.name}: the model family is unknown; pass --family "
                              f"({', '.join(FAMILY_NAMES)})")
        return family

    def device_memory_bytes(self) -> int | None:
        """Memory of the device the model runs on (None for CPU): sets the default visual-token budget."""
        return None

    def family_policy(self) -> ModelFamily:
        """The family entry planning this engine's pages (the hf engine's is set from the checkpoint's config)."""
        from docvlm.families import get_family

        entry = getattr(self, "family_entry", None)
        return entry if entry is not None else get_family(self.resolve_family())

    def reference_lines(self, image: Image.Image) -> list[Line]:
        """The ocr engine's lines of a page image (page pixels): where the words are, for a family that reads a
        page without printing boxes (LLaVA-NeXT). The ocr engine is created once per VLM engine."""
        ocr = getattr(self, "_ocr_engine", None)
        if ocr is None:
            from docvlm.engines.ocr import OcrEngine

            ocr = self._ocr_engine = OcrEngine(self.options)
        return ocr.ocr_image(image.convert("RGB"))

    # --- the shared pipeline ----------------------------------------------------------------------------

    def process_pages(self, pages: Sequence[SourcePage], task: Task) -> list[PageResult]:
        """Plan, render, generate (batched across the pages' tiles), guard, parse and map every page.

        Returns one PageResult per page, in order; a page that cannot be planned or rendered is a failed page.
        The same as `finish_pages(start_pages(pages, task))`.
        """
        return self.finish_pages(self.start_pages(pages, task))

    def start_pages(self, pages: Sequence[SourcePage], task: Task) -> PendingPages:
        """Prepare the pages (estimate, plan, cut) in this thread and submit their tiles; return at once.

        The tiles are generated while the caller prepares more pages (`submit`); `finish_pages` waits for them.
        """
        from docvlm.engines.prep import prepare_page

        spec = self.prep_spec(task, encode=False)
        return self.start_prepared(pages, [prepare_page(page, spec) for page in pages], task)

    def prep_spec(self, task: Task, *, encode: bool = True) -> PrepSpec:
        """How this engine's pages are prepared (picklable, for a preparing process): family, options, budget,
        and the tile encoding when the engine sends bytes and `encode` (a preparer encodes; this thread leaves
        it to the request threads)."""
        from docvlm.engines.prep import PrepSpec

        return PrepSpec(options=self.options, family=self.resolve_family(), task_kind=task.kind,
                        device_memory_bytes=self.device_memory_bytes(), policy=self.family_policy(),
                        encode=self.tile_encoding() if encode else None)

    def tile_encoding(self) -> TileFormat | None:
        """The format this engine sends tiles in, for a preparer to encode them (None: it takes the images)."""
        return None

    def prep_workers(self) -> int:
        """Preparing processes for this process (`--prep-workers`, auto: from the cores; see docvlm.engines.prep)."""
        from docvlm.engines.prep import choose_prep_workers

        return choose_prep_workers(getattr(self.options, "prep_workers", 0))

    def prep_pool(self) -> PrepPool | None:
        """This process's pool of preparers (made on first use), or None when pages are prepared in the thread."""
        pool = getattr(self, "_prep_pool", None)
        if pool is not None and pool.pid == os.getpid():
            return pool
        workers = self.prep_workers()
        if workers <= 0:
            return None
        from docvlm.engines.prep import PrepPool

        self._prep_pool = PrepPool(workers)
        self._prep_pool.warm()
        return self._prep_pool

    def close_prep_pool(self) -> None:
        pool = getattr(self, "_prep_pool", None)
        if pool is not None and pool.pid == os.getpid():
            pool.close()
        self._prep_pool = None

    def start_prepared(self, pages: Sequence[SourcePage], prepared: Sequence[PreparedPage],
                       task: Task) -> PendingPages:
        """Submit the tiles of pages prepared already (in this thread or by a preparer); return at once."""
        from docvlm.families import get_family
        from docvlm.prompts import render_prompt

        family = self.resolve_family()
        align = task.kind == "read" and not get_family(family).grounds_documents
        variables = {k: v for k, v in (("query", task.query), ("schema_json", task.fields_schema)) if v is not None}
        prompt = render_prompt(task.kind, family, **variables)
        max_new = self.options.max_new_tokens

        works: list[_PageWork] = []
        jobs: list[_Job] = []
        for slot, (page, ready) in enumerate(zip(pages, prepared, strict=True)):
            work = _PageWork(page=page, where=f"{page.path} (page {page.index + 1})", prompt_id=prompt.ref)
            works.append(work)
            if page.text_size is None and ready.text_size is not None:
                page.text_size = ready.text_size  # kept with the page: nobody estimates it again
            work.plan = ready.plan
            if ready.failure is not None:
                work.failure = ready.failure
                continue
            try:
                assert work.plan is not None
                if align:
                    work.reference = self.reference_lines(page.render())
                for tile, image in zip(work.plan.tiles, ready.tiles, strict=True):
                    request = TileRequest(image=image, prompt=prompt.user, system=prompt.system,
                                          max_new_tokens=max_new)
                    jobs.append(_Job(page_slot=slot, tile_index=tile.index, request=request))
                page.release()  # only the tiles stay alive until generation
            except DocvlmError as exc:
                work.failure = ErrorItem(code=exc.code, message=_prefixed(work.where, str(exc)), page=page.index)
            except Exception as exc:  # noqa: BLE001 - a page that cannot be planned or rendered is that page's failure
                work.failure = ErrorItem(
                    code="engine", message=f"{work.where}: cannot plan/render: {type(exc).__name__}: {exc}",
                    page=page.index,
                )
        ready_jobs = [j for j in jobs if works[j.page_slot].failure is None]
        futures = self.submit([j.request for j in ready_jobs]) if ready_jobs else []
        return PendingPages(works=works, jobs=ready_jobs, futures=futures, task=task)

    def finish_pages(self, pending: PendingPages) -> list[PageResult]:
        """Wait for the pages' tiles, retry runaways once, parse and map: one PageResult per page, in order."""
        jobs = pending.jobs
        for job, future in zip(jobs, pending.futures, strict=True):
            try:
                job.response = future.result()
            except Exception as exc:  # noqa: BLE001 - a failed generate is every one of its tiles' error
                if isinstance(exc, DocvlmError) and getattr(exc, "code", "") == "model_load":
                    raise
                job.response = TileResponse(text="", stop_reason="error", error=f"{type(exc).__name__}: {exc}")
        retry = []
        for job in jobs:
            assert job.response is not None
            reason = runaway_reason(job.response)
            if reason is not None:
                job.first_reason = reason
                retry.append(job)
        if retry:
            for job in retry:
                r = job.request
                job.request = TileRequest(
                    image=r.image, prompt=r.prompt, system=r.system, max_new_tokens=r.max_new_tokens,
                    repetition_penalty=RETRY_REPETITION_PENALTY,
                )
                job.retried = True
            self._run(retry)

        return [self._page_result(slot, work, [j for j in jobs if j.page_slot == slot], pending.task)
                for slot, work in enumerate(pending.works)]

    # --- the feed: generation runs while the caller prepares the next pages -------------------------------

    def submit(self, requests: Sequence[TileRequest]) -> list[Future[TileResponse]]:
        """Queue tiles for generation and return a future per tile at once.

        Default: one generate loop thread (`generate_batch` is called from it, one batch at a time) that
        takes up to `batch_size` queued tiles per call, grouped by visual tokens so a batch pads little
        (`GenerateStats`). Engines that serve requests one by one (openai) override this.
        """
        return self._generate_loop().put_many(requests)

    def in_flight_target(self) -> int:
        """Tiles the feed keeps submitted ahead of the generator: two batches (one running, one ready)."""
        return 2 * max(1, self.options.batch_size)

    @property
    def stats(self) -> GenerateStats:
        return self._generate_loop().stats

    def _generate_loop(self) -> GenerateLoop:
        loop = getattr(self, "_loop", None)
        if loop is None or loop.pid != os.getpid():
            loop = self._loop = GenerateLoop(self.generate_batch, max(1, self.options.batch_size))
        return loop

    def _run(self, jobs: list[_Job]) -> None:
        """Generate for the jobs in chunks of `options.batch_size`, across pages."""
        size = max(1, self.options.batch_size)
        for start in range(0, len(jobs), size):
            chunk = jobs[start : start + size]
            responses = self.generate_batch([j.request for j in chunk])
            if len(responses) != len(chunk):
                responses = [
                    TileResponse(text="", stop_reason="error",
                                 error=f"engine returned {len(responses)} responses for {len(chunk)} requests")
                ] * len(chunk)
            for job, response in zip(chunk, responses, strict=True):
                job.response = response

    def _page_result(self, slot: int, work: _PageWork, jobs: list[_Job], task: Task) -> PageResult:
        from docvlm.grounding import page_lines_from_outputs

        page = work.page
        common = dict(index=page.index, width_px=page.width_px, height_px=page.height_px, dpi=page.dpi,
                      text_source="model", prompt_id=work.prompt_id)
        if work.failure is not None or work.plan is None:
            failure = work.failure or ErrorItem(code="engine", message=f"{work.where}: no plan", page=page.index)
            return PageResult(status="failure", errors=[failure], plan=work.plan, **common)

        errors: list[ErrorItem] = []
        outputs: list[TileOutput] = []
        failed_tiles = 0
        for job in sorted(jobs, key=lambda j: j.tile_index):
            r = job.response
            assert r is not None
            if r.error is not None:
                failed_tiles += 1
                errors.append(ErrorItem(code="engine", message=f"{work.where}: tile {job.tile_index}: {r.error}",
                                        page=page.index, tile=job.tile_index))
                outputs.append(TileOutput(tile=job.tile_index, raw_text=r.text, prompt_tokens=r.prompt_tokens,
                                          generated_tokens=r.generated_tokens, stop_reason="error",
                                          retried=job.retried))
                continue
            stop: StopReason = r.stop_reason
            still = runaway_reason(r) if job.retried else None
            if still is not None:
                stop = still
                first = job.first_reason or still
                errors.append(
                    ErrorItem(
                        code="runaway",
                        message=(
                            f"{work.where}: tile {job.tile_index}: output stopped by {first} and again by {still} "
                            f"after a retry with repetition penalty {RETRY_REPETITION_PENALTY}; only the complete "
                            "part of the output was used (raise --max-new-tokens, or lower --max-visual-tokens "
                            "to cut the page into smaller tiles)"
                        ),
                        page=page.index,
                        tile=job.tile_index,
                    )
                )
            outputs.append(TileOutput(tile=job.tile_index, raw_text=r.text, prompt_tokens=r.prompt_tokens,
                                      generated_tokens=r.generated_tokens, stop_reason=stop, retried=job.retried))

        lines = []
        if task.kind in ("read", "ground"):
            ok = [o for o in outputs if o.stop_reason != "error"]
            label = task.query if task.kind == "ground" else None
            lines, parse_errors = page_lines_from_outputs(
                work.plan, ok, page_index=page.index, where=work.where, label=label, reference_lines=work.reference
            )
            errors.extend(parse_errors)
        # extract: the raw outputs and the plan are kept; docvlm.extract parses them against the schema
        failed = bool(jobs) and failed_tiles == len(jobs)
        status = "failure" if failed else ("partial" if errors else "success")
        return PageResult(status=status, lines=lines, errors=errors, plan=work.plan, outputs=outputs, **common)


def _prefixed(where: str, message: str) -> str:
    return message if message.startswith(where.split(" (page")[0]) else f"{where}: {message}"
