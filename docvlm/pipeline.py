"""One document through the stages: source -> pages -> engine -> assembled, validated `DocumentResult`.

Pages are streamed in small batches so a long document never holds more than a batch of page images.
A page that fails is a failed page; a document that cannot be opened is a failed document: neither raises.
"""

from __future__ import annotations

import collections
import hashlib
import os
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from docvlm import __version__
from docvlm.datamodel import (
    DocumentResult,
    EngineInfo,
    ErrorItem,
    Line,
    PageResult,
    SourceInfo,
    Word,
    document_status,
    failed_page,
)
from docvlm.engines.base import Task
from docvlm.engines.registry import engine_spec
from docvlm.errors import DocvlmError, EngineError, InputError
from docvlm.geometry import clamp_box, is_valid_box, page_to_pdf
from docvlm.layout import DocumentContext, PageContext, apply_document_layout, apply_page_layout

if TYPE_CHECKING:
    from docvlm.engines.base import Engine
    from docvlm.options import ConvertOptions
    from docvlm.sources import SourceDocument, SourcePage

PageCallback = Callable[[PageResult], None]


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def convert_document(
    path: str | Path,
    options: ConvertOptions,
    *,
    task: Task | None = None,
    display_path: str | None = None,
    engine: Engine | None = None,
    on_page: PageCallback | None = None,
) -> DocumentResult:
    """Convert one document. Never raises for bad input or a failing page: errors go into the result.

    Args:
        path: the input file.
        options: the run's options.
        task: what to ask the engine (default: read all text).
        display_path: the path to record in the result (relative to the batch root); default `path`.
        engine: an engine instance; default `get_engine(options)` (loaded once per process).
        on_page: called after each page, for progress.

    Returns:
        The validated result. `EngineError` from a model that cannot load is the only exception that escapes,
        because every later document would fail the same way.
    """
    from docvlm.sources import open_document

    task = task or Task()
    shown = display_path or str(path)
    started = time.perf_counter()
    if engine is None:
        from docvlm.engines import get_engine

        engine = get_engine(options)
    if engine_spec(options.engine).plans and hasattr(engine, "start_pages"):
        # a planning engine: the next page is prepared while this one is generated
        hook = None if on_page is None else (lambda _tag, result: on_page(result))
        for _, result in stream_documents([(None, path, shown)], options, engine=engine, task=task, on_page=hook):
            return result
    try:
        doc = open_document(path, options, display_path=shown)
    except DocvlmError as exc:
        return failed_document(shown, path, options, engine_info_or_name(engine), exc)
    except Exception as exc:  # an unexpected library error on a bad file is still that file's error
        wrapped = InputError(f"cannot open: {type(exc).__name__}: {exc}", path=shown)
        return failed_document(shown, path, options, engine_info_or_name(engine), wrapped)

    pages: list[PageResult] = []
    doc_errors: list[ErrorItem] = []
    with doc:
        info = doc.info(display_path=shown)
        batch: list[SourcePage] = []
        batch_size = max(1, engine_spec(options.engine).pages_per_call(options))
        try:
            for page in doc.pages():
                batch.append(page)
                if len(batch) >= batch_size:
                    pages.extend(_run_batch(engine, batch, task, shown, on_page, options))
                    batch = []
                if options.doc_timeout and time.perf_counter() - started > options.doc_timeout:
                    doc_errors.append(
                        ErrorItem(
                            code="timeout",
                            message=f"{shown}: stopped after {options.doc_timeout:g} s (--doc-timeout); "
                            f"{len(pages) + len(batch)} page(s) done",
                        )
                    )
                    break
            if batch:
                pages.extend(_run_batch(engine, batch, task, shown, on_page, options))
        except DocvlmError as exc:
            if isinstance(exc, EngineError) and exc.code == "model_load":
                raise
            doc_errors.append(ErrorItem(code=exc.code, message=str(exc), page=exc.page))
        if not pages and not doc_errors:
            doc_errors.append(ErrorItem(code="empty", message=f"{shown}: no pages selected"))
    if task.kind == "read":
        pages = apply_document_layout(pages, DocumentContext(options=options, shown=shown,
                                                             page_count=info.page_count))
    return DocumentResult(
        docvlm_version=__version__,
        status=document_status(pages, doc_errors),
        source=info,
        engine=engine.info(),
        options_digest=options.digest(),
        pages=pages,
        errors=doc_errors,
        seconds=round(time.perf_counter() - started, 4),
    )


def _run_batch(
    engine: Engine,
    batch: Sequence[SourcePage],
    task: Task,
    shown: str,
    on_page: PageCallback | None,
    options: ConvertOptions,
) -> list[PageResult]:
    started = time.perf_counter()
    try:
        results = engine.process_pages(batch, task)
    except EngineError as exc:
        if exc.code == "model_load":
            raise
        results = None
    except Exception:  # noqa: BLE001 - one page's error must not fail its batch neighbours: page by page below
        results = None
    if results is None:  # the batch raised: each page again on its own, so a bad page fails alone
        results = [r for p in batch for r in _guarded([p], shown, lambda p=p: engine.process_pages([p], task))]
    return _finish_results(batch, results, (time.perf_counter() - started) / max(1, len(batch)), task, shown,
                           on_page, options)


def _guarded(batch: Sequence[SourcePage], shown: str, call: Callable[[], list[PageResult]]) -> list[PageResult]:
    """The engine's results for a batch, or a failed page per page when the engine raised (never swallowed:
    the error is recorded on the pages with its type). A model that cannot load is re-raised."""
    try:
        return call()
    except EngineError as exc:
        if exc.code == "model_load":
            raise
        return [failed_page(p, shown, exc) for p in batch]
    except DocvlmError as exc:
        return [failed_page(p, shown, exc) for p in batch]
    except Exception as exc:  # noqa: BLE001 - recorded on the page with its type, never swallowed
        return [failed_page(p, shown, EngineError(f"{type(exc).__name__}: {exc}")) for p in batch]


def _finish_results(
    batch: Sequence[SourcePage],
    results: list[PageResult],
    per_page: float,
    task: Task,
    shown: str,
    on_page: PageCallback | None,
    options: ConvertOptions,
) -> list[PageResult]:
    out = []
    for page, result in zip(batch, results, strict=True):
        result = assemble_page(page, result, seconds=per_page)
        if task.kind == "read":  # layout: reading order, tables, furniture, headings (every engine)
            result = apply_page_layout(
                result, PageContext(source=page, options=options, shown=shown, engine=options.engine)
            )
        release = getattr(page, "release", None)
        if release is not None:  # the page's rendering was kept for the planner and the layout stage
            release()
        if on_page is not None:
            on_page(result)
        out.append(result)
    return out


# --- the feed: documents streamed through a planning engine -------------------------------------------------


@dataclass
class _Flight:
    """One document on its way through a planning engine: pages started (tiles submitted) but not finished."""

    tag: object
    path: str | Path
    shown: str
    started: float
    doc: SourceDocument | None = None
    info: SourceInfo | None = None
    page_iter: Iterator[SourcePage] | None = None
    pending: collections.deque = field(default_factory=collections.deque)  # (page, PendingPages, started_at)
    pages: list[PageResult] = field(default_factory=list)
    errors: list[ErrorItem] = field(default_factory=list)
    exhausted: bool = False
    result: DocumentResult | None = None  # a document that could not be opened is done at once


def stream_documents(
    items: Iterable[tuple[object, str | Path, str]],
    options: ConvertOptions,
    *,
    engine: Engine,
    task: Task | None = None,
    on_page: Callable[[object, PageResult], None] | None = None,
) -> Iterator[tuple[object, DocumentResult]]:
    """Convert documents through a planning engine (VlmEngine) so the model never waits for this process.

    Pages are prepared (open, estimate, plan, cut, encode) across documents, and their tiles submitted at once,
    while the engine generates: a page is finished (parsed, laid out) as soon as its tiles are back. Preparation
    runs in the engine's pool of preparing processes (`engine.prep_pool()`, sized from the cores:
    docvlm.engines.prep), or one page at a time in this thread (`engine.start_pages`) where it has none. At most
    `engine.in_flight_target()` tiles wait for the model (a page with a preparer counts as one), and at most two
    pages per preparer are submitted, so memory stays bounded however many documents there are. Results come
    back in input order.

    Args:
        items: (tag, path, display path) per document; the tag is handed back with its result.
        on_page: called with (tag, page result) as each page is finished.

    Yields:
        (tag, DocumentResult), one per item, in order. `EngineError` from a model that cannot load escapes.
    """
    task = task or Task()
    flights: collections.deque[_Flight] = collections.deque()
    try:
        yield from _feed(items, options, engine, task, on_page, flights)
    finally:  # stopped early (Ctrl-C, a model that cannot load): close what is still open
        for f in flights:
            if f.doc is not None and f.result is None:
                f.doc.close()


def _feed(items: Iterable[tuple[object, str | Path, str]], options: ConvertOptions, engine: Engine, task: Task,
          on_page: Callable[[object, PageResult], None] | None,
          flights: collections.deque[_Flight]) -> Iterator[tuple[object, DocumentResult]]:
    target = max(1, engine.in_flight_target())  # type: ignore[attr-defined]
    prep = _Prep(engine, task)
    source = iter(items)
    more = True
    try:
        while True:
            prep.pump(flights)  # pages a preparer has finished: their tiles go to the engine now
            # finish what is back, oldest document first (results leave in input order)
            while flights:
                f = flights[0]
                while f.pending and f.pending[0][1].done():
                    _finish_page(engine, f, task, options, on_page)
                if f.result is not None or (f.exhausted and not f.pending):
                    if f.result is None:
                        f.result = _close_flight(f, engine, task, options)
                    flights.popleft()
                    yield f.tag, f.result
                    continue
                break
            waiting = sum(1 for f in flights for _, p, _ in f.pending for fut in p.futures if not fut.done())
            waiting += prep.outstanding()  # a page with a preparer counts as one tile until its tiles are known
            if waiting < target and prep.has_room():
                f = flights[-1] if flights and flights[-1].result is None and not flights[-1].exhausted else None
                if f is None and more:
                    try:
                        tag, path, shown = next(source)
                    except StopIteration:
                        more = False
                        continue
                    flights.append(_open_flight(tag, path, shown, options, engine))
                    continue
                if f is not None:
                    _start_page(engine, f, task, options, prep)
                    continue
            if not flights:
                return
            oldest = flights[0]
            if oldest.pending or prep.outstanding():
                prep.wait(oldest, timeout=0.5)
            elif flights[-1].result is None and not flights[-1].exhausted:
                _start_page(engine, flights[-1], task, options, prep)  # never idle while a page is left
    finally:
        prep.cancel()


class _Prep:
    """Where the feed's pages are prepared: the engine's pool of preparing processes (docvlm.engines.prep), or
    this thread (`engine.start_pages`) when it has none (one core, --prep-workers 0, a non-VLM engine)."""

    def __init__(self, engine: Engine, task: Task) -> None:
        self.engine = engine
        self.task = task
        self.pool = engine.prep_pool() if hasattr(engine, "prep_pool") else None
        self._spec = None

    def spec(self):  # -> docvlm.engines.prep.PrepSpec
        if self._spec is None:
            self._spec = self.engine.prep_spec(self.task)  # type: ignore[attr-defined]
        return self._spec

    def outstanding(self) -> int:
        return 0 if self.pool is None else self.pool.outstanding()

    def has_room(self) -> bool:
        return self.pool is None or self.pool.outstanding() < self.pool.window

    def pump(self, flights: collections.deque[_Flight]) -> None:
        if self.pool is None or not self.pool.outstanding():
            return
        for f in flights:
            for page, pending, _ in f.pending:
                if isinstance(pending, _Preparing) and pending.inner is None:
                    ready = self.pool.poll(pending.ticket)
                    if ready is not None:
                        pending.inner = _started(self.engine, f, page,
                                                 lambda p=page, r=ready: self.engine.start_prepared(  # type: ignore[attr-defined]
                                                     [p], [r], self.task))

    def wait(self, oldest: _Flight, timeout: float) -> None:
        """Until a preparer finishes a page or the oldest page's next tile is back (at most `timeout`)."""
        from concurrent.futures import FIRST_COMPLETED, wait

        futures = [] if self.pool is None else self.pool.futures()
        if oldest.pending:
            futures += [fut for fut in oldest.pending[0][1].futures if not fut.done()]
        if futures:
            wait(futures, timeout=timeout, return_when=FIRST_COMPLETED)
        elif oldest.pending:
            oldest.pending[0][1].wait(timeout=timeout)

    def cancel(self) -> None:
        if self.pool is not None:
            self.pool.cancel_all()


@dataclass
class _Preparing:
    """A page with a preparer: its tiles are submitted once the prepared page is back (`_Prep.pump`)."""

    ticket: object  # docvlm.engines.prep.PrepTicket
    inner: object | None = None  # PendingPages or _Failed once started

    @property
    def futures(self) -> tuple:
        return tuple(self.inner.futures) if self.inner is not None else ()  # type: ignore[attr-defined]

    def done(self) -> bool:
        return self.inner is not None and self.inner.done()  # type: ignore[attr-defined]

    def wait(self, timeout: float | None = None) -> None:
        if self.inner is not None:
            self.inner.wait(timeout)  # type: ignore[attr-defined]


def _started(engine: Engine, f: _Flight, page: SourcePage, start: Callable[[], object]) -> object:
    """`start()` (the page's tiles submitted), or the page's failure when it raised."""
    try:
        return start()
    except EngineError as exc:
        if exc.code == "model_load":
            raise
        return _Failed([failed_page(page, f.shown, exc)])
    except Exception as exc:  # noqa: BLE001 - recorded on the page with its type
        return _Failed([failed_page(page, f.shown, EngineError(f"{type(exc).__name__}: {exc}"))])


def _open_flight(tag: object, path: str | Path, shown: str, options: ConvertOptions, engine: Engine) -> _Flight:
    from docvlm.sources import open_document

    f = _Flight(tag=tag, path=path, shown=shown, started=time.perf_counter())
    try:
        f.doc = open_document(path, options, display_path=shown)
        f.info = f.doc.info(display_path=shown)
        f.page_iter = iter(f.doc.pages())
    except DocvlmError as exc:
        f.result = failed_document(shown, path, options, engine_info_or_name(engine), exc)
    except Exception as exc:  # noqa: BLE001 - an unexpected library error on a bad file is still that file's error
        wrapped = InputError(f"cannot open: {type(exc).__name__}: {exc}", path=shown)
        f.result = failed_document(shown, path, options, engine_info_or_name(engine), wrapped)
    return f


def _start_page(engine: Engine, f: _Flight, task: Task, options: ConvertOptions, prep: _Prep) -> None:
    """Prepare the flight's next page and submit its tiles, or hand it to a preparer (`prep.pool`); mark the
    flight exhausted after its last page."""
    assert f.page_iter is not None
    if options.doc_timeout and time.perf_counter() - f.started > options.doc_timeout:
        f.errors.append(ErrorItem(code="timeout", message=f"{f.shown}: stopped after {options.doc_timeout:g} s "
                                  f"(--doc-timeout); {len(f.pages) + len(f.pending)} page(s) done"))
        f.exhausted = True
        return
    try:
        page = next(f.page_iter)
    except StopIteration:
        f.exhausted = True
        return
    except DocvlmError as exc:
        f.errors.append(ErrorItem(code=exc.code, message=str(exc), page=exc.page))
        f.exhausted = True
        return
    started = time.perf_counter()
    if prep.pool is not None and prep.pool.ready():  # until its preparers have started, this thread prepares
        from docvlm.engines.prep import PrepJob

        spec = _started(engine, f, page, prep.spec)
        if isinstance(spec, _Failed):
            f.pending.append((page, spec, started))
            return
        job = PrepJob(path=os.path.abspath(f.path), shown=f.shown, index=page.index, spec=spec)  # type: ignore[arg-type]
        f.pending.append((page, _Preparing(prep.pool.submit(job)), started))
        return
    pending = _started(engine, f, page, lambda: engine.start_pages([page], task))  # type: ignore[attr-defined]
    f.pending.append((page, pending, started))


@dataclass
class _Failed:
    """A page whose preparation raised: already finished, with its failure."""

    results: list[PageResult]
    futures: tuple = ()

    def done(self) -> bool:
        return True

    def wait(self, timeout: float | None = None) -> None:
        return None


def _finish_page(engine: Engine, f: _Flight, task: Task, options: ConvertOptions,
                 on_page: Callable[[object, PageResult], None] | None) -> None:
    page, pending, started = f.pending.popleft()
    if isinstance(pending, _Preparing):
        pending = pending.inner
    if isinstance(pending, _Failed):
        results = pending.results
    else:
        results = _guarded([page], f.shown, lambda: engine.finish_pages(pending))  # type: ignore[attr-defined]
    hook = None if on_page is None else (lambda result: on_page(f.tag, result))
    f.pages.extend(_finish_results([page], results, time.perf_counter() - started, task, f.shown, hook, options))


def _close_flight(f: _Flight, engine: Engine, task: Task, options: ConvertOptions) -> DocumentResult:
    assert f.doc is not None and f.info is not None
    with f.doc:
        pages, errors = f.pages, f.errors
        if not pages and not errors:
            errors.append(ErrorItem(code="empty", message=f"{f.shown}: no pages selected"))
        if task.kind == "read":
            pages = apply_document_layout(pages, DocumentContext(options=options, shown=f.shown,
                                                                 page_count=f.info.page_count))
    return DocumentResult(
        docvlm_version=__version__,
        status=document_status(pages, errors),
        source=f.info,
        engine=engine.info(),
        options_digest=options.digest(),
        pages=pages,
        errors=errors,
        seconds=round(time.perf_counter() - f.started, 4),
    )


def assemble_page(page: SourcePage, result: PageResult, *, seconds: float | None = None) -> PageResult:
    """Clamp every box inside the page, drop nothing silently, and add PDF-point boxes for PDF pages."""
    errors = list(result.errors)
    lines: list[Line] = []
    for i, line in enumerate(result.lines):
        box = clamp_box(line.bbox_page_px, page.width_px, page.height_px)
        if not is_valid_box(box):
            errors.append(
                ErrorItem(
                    code="invalid_box",
                    message=f"line {i} {line.text[:40]!r}: box {line.bbox_page_px} is empty inside the page",
                    page=page.index,
                    tile=line.tile,
                )
            )
            continue
        words = []
        for w in line.words:
            wb = clamp_box(w.bbox_page_px, page.width_px, page.height_px)
            if not is_valid_box(wb):
                continue  # the line keeps the text; a word box squeezed to nothing by the page edge adds nothing
            words.append(
                w.model_copy(update={"bbox_page_px": wb, "bbox_pdf_pt": _pdf(wb, page.dpi)})
            )
        lines.append(line.model_copy(update={"bbox_page_px": box, "bbox_pdf_pt": _pdf(box, page.dpi), "words": words}))
    status = result.status
    if status == "success" and errors:
        status = "partial"
    return result.model_copy(
        update={
            "lines": lines,
            "errors": errors,
            "status": status,
            "width_px": page.width_px,
            "height_px": page.height_px,
            "dpi": page.dpi,
            "width_pt": page.width_pt,
            "height_pt": page.height_pt,
            "rotation": page.rotation,
            "seconds": round(seconds, 4) if seconds is not None and result.seconds is None else result.seconds,
        }
    )


def _pdf(box, dpi):
    return page_to_pdf(box, dpi) if dpi else None


def engine_info_or_name(engine: Engine) -> EngineInfo:
    try:
        return engine.info()
    except Exception:  # noqa: BLE001 - info of an engine that failed to load
        return EngineInfo(name=getattr(engine, "name", "unknown"))


def failed_document(
    shown: str, path: str | Path, options: ConvertOptions, engine: EngineInfo, exc: DocvlmError
) -> DocumentResult:
    """The result for a document that could not be opened at all."""
    try:
        digest = sha256_file(path)
        size = Path(path).stat().st_size
    except OSError:
        digest, size = "", None
    msg = str(exc)
    if not msg.startswith(shown):
        msg = f"{shown}: {exc.message}"
    return DocumentResult(
        docvlm_version=__version__,
        status="failure",
        source=SourceInfo(path=shown, sha256=digest, kind=_guess_kind(path), size_bytes=size),
        engine=engine,
        options_digest=options.digest(),
        errors=[ErrorItem(code=exc.code, message=msg, page=exc.page)],
    )


def _guess_kind(path: str | Path) -> str:
    suffix = Path(path).suffix.lower()
    if suffix == ".pdf":
        return "pdf"
    if suffix in {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".webp", ".bmp"}:
        return "image"
    return "unknown"


def make_word(text: str, box, confidence: float | None = None) -> Word:
    return Word(text=text, bbox_page_px=tuple(float(v) for v in box), confidence=confidence)
