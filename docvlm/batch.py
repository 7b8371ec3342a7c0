"""Batch runs: many inputs -> one output per document, resumable, shardable, parallel, interruptible.

What is done per document is a `DocumentKind`: `ConvertKind` (`convert_document` -> `DocumentResult`, every
registered writer) is the default; `docvlm.extract.ExtractKind` extracts a schema's fields. The runner itself
(resume, shards, workers, atomic writes, the run summary, Ctrl-C) is the same for every kind.

Decisions (documented in the CLI help too):

- Resume: an input is skipped when its JSON output exists, loads as the kind's result (`DocumentKind.load`),
  its status is not "failure", its `source.sha256` matches the input and its `options_digest` matches
  `DocumentKind.digest(options)`, and every other requested format exists.
  Failed documents are retried on every rerun; `force=True` redoes everything.
- The JSON is written last (after Markdown, overlays...), atomically: it is the "done" marker.
- Shards are 1-based (`1/4` .. `4/4`); an input belongs to shard I when sha1(relpath) mod N == I - 1, so N
  shards cover every input exactly once whatever machine or order they run in.
- One bad file never stops the batch: everything raised while converting or writing one document becomes a
  failure record naming the file. Only an engine that cannot load (every document would fail the same way)
  stops the batch (`BatchAborted`).
- Ctrl-C / SIGTERM: pending documents are cancelled, worker processes are stopped (documents in flight are
  lost, never half-written), the run summary is written with `interrupted: true`, `BatchInterrupted` is raised.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import multiprocessing as mp
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from pydantic import Field, ValidationError

from docvlm import __version__
from docvlm.datamodel import DocumentResult, EngineInfo, Frozen, Status
from docvlm.errors import DocvlmError, EngineError, InputError, UsageError
from docvlm.threads import available_cores, choose_inference_threads
from docvlm.writers import WRITERS, atomic_write_text, output_path, safe_relpath, writer_for

if TYPE_CHECKING:
    from docvlm.datamodel import ErrorItem, PageResult, SourceInfo
    from docvlm.engines.base import Engine
    from docvlm.options import ConvertOptions

SUMMARY_PREFIX = "_docvlm_summary"
MAX_ERRORS_PER_RECORD = 50
CHECKPOINT_SECONDS = 60.0
"""During a long run the summary is rewritten this often, marked interrupted until the run finishes."""


# --- the run summary ---------------------------------------------------------------------------------------


class DocRecord(Frozen):
    """What happened to one input in a batch run."""

    key: str = Field(description="Output name of the input relative to the output folder (unique in the batch).")
    path: str = Field(description="The input path as given (recorded as source.path in the result).")
    abspath: str | None = Field(default=None, description="Absolute input path (lets `docvlm show` find it).")
    status: Status
    resumed: bool = Field(default=False, description="True when a valid output from an earlier run was kept.")
    pages: int = 0
    errors: list[str] = Field(default_factory=list, description="Document and page error messages (capped).")
    warnings: list[str] = Field(default_factory=list, description="Problems that did not fail the document.")
    outputs: list[str] = Field(default_factory=list, description="Files written, relative to the output folder.")
    seconds: float = 0.0


class BatchTotals(Frozen):
    documents: int = 0
    converted: int = 0
    resumed: int = 0
    success: int = 0
    partial: int = 0
    failure: int = 0
    pages: int = 0
    seconds: float = 0.0


class BatchSummary(Frozen):
    """The machine-readable run summary written to `OUT/_docvlm_summary[.shard-I-of-N].json`."""

    docvlm_version: str = __version__
    kind: str = Field(default="convert", description="What was done per document: convert, extract.")
    out_dir: str | None
    shard: str | None = Field(default=None, description="'I/N' (1-based) when the run was one shard.")
    options_digest: str
    started_at: str
    finished_at: str
    interrupted: bool = Field(
        default=False, description="The run did not finish (Ctrl-C, kill, crash): rerun the command to resume."
    )
    all_inputs: list[str] = Field(description="Keys of every input of the batch, before sharding.")
    documents: list[DocRecord]
    totals: BatchTotals

    @property
    def failed(self) -> list[DocRecord]:
        return [d for d in self.documents if d.status == "failure"]


class MergedSummary(Frozen):
    """All run summaries of an output folder merged (`docvlm summary OUT`)."""

    summary_files: list[str]
    all_inputs: list[str]
    documents: list[DocRecord] = Field(description="Latest record per input over all summaries.")
    missing: list[str] = Field(description="Inputs listed by some summary but done by none.")
    totals: BatchTotals

    @property
    def failed(self) -> list[DocRecord]:
        return [d for d in self.documents if d.status == "failure"]


def totals_of(records: Sequence[DocRecord]) -> BatchTotals:
    return BatchTotals(
        documents=len(records),
        converted=sum(1 for r in records if not r.resumed),
        resumed=sum(1 for r in records if r.resumed),
        success=sum(1 for r in records if r.status == "success"),
        partial=sum(1 for r in records if r.status == "partial"),
        failure=sum(1 for r in records if r.status == "failure"),
        pages=sum(r.pages for r in records),
        seconds=round(sum(r.seconds for r in records), 3),
    )


def summary_filename(shard: Shard | None) -> str:
    return f"{SUMMARY_PREFIX}.json" if shard is None else f"{SUMMARY_PREFIX}.shard-{shard.index}-of-{shard.count}.json"


def merge_summaries(out_dir: str | Path) -> MergedSummary:
    """Merge every `_docvlm_summary*.json` in `out_dir`: the latest record per input wins.

    Raises:
        UsageError: when `out_dir` holds no summary file.
    """
    files = sorted(Path(out_dir).glob(f"{SUMMARY_PREFIX}*.json"))
    summaries: list[BatchSummary] = []
    for f in files:
        try:
            summaries.append(BatchSummary.model_validate_json(f.read_bytes()))
        except (OSError, ValidationError) as exc:
            raise UsageError(f"{f}: not a docvlm run summary ({type(exc).__name__}); delete it or rerun") from None
    if not summaries:
        raise UsageError(f"{out_dir}: no {SUMMARY_PREFIX}*.json found; run `docvlm convert ... -o {out_dir}` first")
    all_inputs: dict[str, None] = {}
    latest: dict[str, DocRecord] = {}
    for s in sorted(summaries, key=lambda s: s.finished_at):
        all_inputs.update(dict.fromkeys(s.all_inputs))
        for rec in s.documents:
            latest[rec.key] = rec
    docs = [latest[k] for k in sorted(latest)]
    return MergedSummary(
        summary_files=[f.name for f in files],
        all_inputs=sorted(all_inputs),
        documents=docs,
        missing=sorted(k for k in all_inputs if k not in latest),
        totals=totals_of(docs),
    )


# --- sharding ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Shard:
    """Shard `index` of `count`, 1-based."""

    index: int
    count: int

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    def owns(self, relpath: str) -> bool:
        """Stable across machines and Python versions: sha1 of the POSIX relative path."""
        digest = hashlib.sha1(relpath.replace("\\", "/").encode("utf-8")).digest()
        return int.from_bytes(digest[:8], "big") % self.count == self.index - 1


def parse_shard(spec: str) -> Shard:
    """'2/4' -> Shard(2, 4). Shards are 1-based. Raises UsageError naming the flag."""
    try:
        i_s, n_s = spec.split("/")
        index, count = int(i_s), int(n_s)
    except ValueError:
        raise UsageError(f"--shard {spec!r}: expected I/N, e.g. --shard 1/4") from None
    if count < 1 or not 1 <= index <= count:
        hint = f" (shards are 1-based: use 1/{count} .. {count}/{count})" if count >= 1 else ""
        raise UsageError(f"--shard {spec!r}: need 1 <= I <= N{hint}")
    return Shard(index, count)


# --- progress ----------------------------------------------------------------------------------------------


class BatchCallbacks:
    """Progress hooks; the CLI overrides them to drive a progress bar. All are called in the main process."""

    def start(self, total: int, resumed: int) -> None:
        """`total` documents in this run (shard), `resumed` of them already done."""

    def page(self, key: str, page_index: int, status: str) -> None:
        """A page of document `key` finished."""

    def document(self, record: DocRecord, result: Any | None) -> None:
        """A document finished (or was resumed); `result` (the kind's result, a `DocumentResult` for convert)
        only when `collect_results=True`."""


class BatchInterrupted(DocvlmError):
    """Ctrl-C / SIGTERM stopped the batch; `summary` holds what was done."""

    code = "interrupted"

    def __init__(self, summary: BatchSummary) -> None:
        self.summary = summary
        super().__init__("interrupted")


class BatchAborted(DocvlmError):
    """The engine cannot work at all (e.g. the model cannot load); `summary` holds what was done."""

    code = "aborted"

    def __init__(self, message: str, summary: BatchSummary) -> None:
        self.summary = summary
        super().__init__(message)


# --- document kinds: what is done per document -----------------------------------------------------------


class BatchResult(Protocol):
    """What the runner reads from a kind's result (`DocumentResult`, `ExtractionResult`)."""

    @property
    def status(self) -> Status: ...
    @property
    def source(self) -> SourceInfo: ...
    @property
    def options_digest(self) -> str: ...
    @property
    def pages(self) -> Sequence[Any]: ...
    @property
    def errors(self) -> Sequence[ErrorItem]: ...
    def model_dump_json(self, *, indent: int | None = None) -> str: ...


class DocumentKind(Protocol):
    """What a batch does per document. Implementations are small frozen dataclasses: they are pickled to the
    spawn workers (carry specs, not loaded objects, and load lazily in `prepare`)."""

    name: ClassVar[str]
    """Recorded as `BatchSummary.kind`."""

    def formats(self, options: ConvertOptions) -> tuple[str, ...]:
        """The formats written per document ("json" among them: resume reads it). Raises UsageError."""
        ...

    def suffix(self, fmt: str) -> str:
        """Output file suffix of a format, e.g. ".json"."""
        ...

    def digest(self, options: ConvertOptions) -> str:
        """The `options_digest` its results carry; a kept output must match it (resume)."""
        ...

    def prepare(self) -> None:
        """Called once per process before its first document; a UsageError stops the batch (exit 2)."""
        ...

    def run(self, path: str, options: ConvertOptions, *, display_path: str, engine: Engine,
            on_page: Callable[[PageResult], None] | None) -> BatchResult:
        """The result of one document. Raises only `EngineError` (model_load) for an unusable engine; any
        other exception is turned into `failed(...)` by the runner."""
        ...

    def failed(self, path: str, options: ConvertOptions, exc: DocvlmError) -> BatchResult:
        """The failure result of a document that raised `exc`."""
        ...

    def load(self, data: bytes) -> BatchResult | None:
        """A stored JSON output as a result, None when it is not one (resume)."""
        ...

    def write(self, fmt: str, result: Any, source_path: str, out_path: Path, options: ConvertOptions) -> None:
        """Write `result` in `fmt` to `out_path` (atomically)."""
        ...

    def overlay(self, result: Any, source_path: str, overlay_dir: str, relpath: str,
                options: ConvertOptions) -> list[str]:
        """Draw overlay PNGs under `overlay_dir`; returns notes (recorded as warnings)."""
        ...

    def warnings(self, result: Any) -> list[str]:
        """Problems that did not fail the document, for the run summary."""
        ...


@dataclass(frozen=True)
class ConvertKind:
    """`convert_document`: a `DocumentResult` per document, written by the registered writers."""

    name: ClassVar[str] = "convert"

    def formats(self, options: ConvertOptions) -> tuple[str, ...]:
        unknown = [f for f in options.formats if f not in WRITERS]
        if unknown:
            choices = ", ".join(sorted(WRITERS))
            raise UsageError(f"unknown format(s) {', '.join(unknown)}; choose from {choices}")
        return tuple(options.formats)

    def suffix(self, fmt: str) -> str:
        return WRITERS[fmt].suffix

    def digest(self, options: ConvertOptions) -> str:
        return options.digest()

    def prepare(self) -> None:
        return None

    def run(self, path: str, options: ConvertOptions, *, display_path: str, engine: Engine,
            on_page: Callable[[PageResult], None] | None) -> DocumentResult:
        from docvlm.pipeline import convert_document

        return convert_document(path, options, display_path=display_path, engine=engine, on_page=on_page)

    def failed(self, path: str, options: ConvertOptions, exc: DocvlmError) -> DocumentResult:
        from docvlm.pipeline import failed_document

        return failed_document(path, path, options, EngineInfo(name=options.engine), exc)

    def load(self, data: bytes) -> DocumentResult | None:
        try:
            return DocumentResult.model_validate_json(data)
        except (ValidationError, ValueError):
            return None

    def write(self, fmt: str, result: Any, source_path: str, out_path: Path, options: ConvertOptions) -> None:
        writer_for(fmt, options).write(result, source_path, out_path)

    def overlay(self, result: Any, source_path: str, overlay_dir: str, relpath: str,
                options: ConvertOptions) -> list[str]:
        from docvlm.overlay import render_overlays

        pages = render_overlays(result, source_path, overlay_dir, relpath=relpath, password=options.password)
        return [f"overlay page {page.page_index + 1}: {page.note}" for page in pages if page.note]

    def warnings(self, result: Any) -> list[str]:
        return []


CONVERT = ConvertKind()


# --- jobs (picklable, run in-process or in spawn workers) --------------------------------------------------


@dataclass(frozen=True)
class Job:
    input_path: str
    key: str
    outputs: tuple[tuple[str, str], ...]  # (format, absolute path); json last
    overlay_dir: str | None
    out_dir: str | None
    collect_result: bool


@dataclass(frozen=True)
class Outcome:
    record: DocRecord | None
    result: BatchResult | None = None
    fatal: str | None = None
    fatal_usage: bool = False


def run_job(
    job: Job, options: ConvertOptions, on_page: Callable[[PageResult], None] | None = None,
    kind: DocumentKind = CONVERT,
) -> Outcome:
    """Do `kind` on one document and write its outputs. Never raises for a bad file; returns `fatal` for an
    unusable engine (or a kind that cannot start)."""
    from docvlm.engines import get_engine

    started = time.perf_counter()
    try:
        engine = get_engine(options)
        kind.prepare()
    except UsageError as exc:
        return Outcome(None, fatal=str(exc), fatal_usage=True)
    except DocvlmError as exc:
        return Outcome(None, fatal=f"engine {options.engine!r} cannot start: {exc}")
    try:
        result = kind.run(job.input_path, options, display_path=job.input_path, engine=engine,
                          on_page=on_page)
    except EngineError as exc:
        if exc.code == "model_load":
            return Outcome(None, fatal=str(exc))
        result = kind.failed(job.input_path, options, exc)
    except DocvlmError as exc:
        result = kind.failed(job.input_path, options, exc)
    except Exception as exc:  # noqa: BLE001 - one bad file never stops the batch; recorded with its type
        wrapped = InputError(f"unexpected {type(exc).__name__}: {exc}", path=job.input_path)
        result = kind.failed(job.input_path, options, wrapped)
    written: list[str] = []
    warnings: list[str] = kind.warnings(result)
    write_error: str | None = None
    if job.out_dir is not None:
        try:
            for fmt, path in job.outputs:  # JSON last: its presence means "done" for resume
                kind.write(fmt, result, job.input_path, Path(path), options)
                written.append(_rel(path, job.out_dir))
        except Exception as exc:  # noqa: BLE001 - e.g. disk full: this document failed, the batch goes on
            write_error = f"{job.input_path}: cannot write {path}: {type(exc).__name__}: {exc}"
    if job.overlay_dir is not None and write_error is None:
        try:
            warnings += kind.overlay(result, job.input_path, job.overlay_dir, job.key, options)
        except Exception as exc:  # noqa: BLE001 - a debugging aid must not fail the conversion
            warnings.append(f"{job.input_path}: overlay failed: {type(exc).__name__}: {exc}")
    record = record_of(job, result, resumed=False, outputs=written, seconds=time.perf_counter() - started)
    if write_error is not None:
        record = record.model_copy(update={"status": "failure", "errors": [write_error, *record.errors]})
    if warnings:
        record = record.model_copy(update={"warnings": warnings})
    return Outcome(record, result if job.collect_result else None)


def record_of(
    job: Job, result: BatchResult, *, resumed: bool, outputs: list[str], seconds: float
) -> DocRecord:
    errors = [e.message for e in result.errors]
    for page in result.pages:  # DocumentResult pages carry errors; an ExtractionResult's are document-level
        errors.extend(e.message for e in getattr(page, "errors", ()))
    if len(errors) > MAX_ERRORS_PER_RECORD:
        errors = errors[:MAX_ERRORS_PER_RECORD] + [f"... {len(errors) - MAX_ERRORS_PER_RECORD} more in the JSON"]
    return DocRecord(
        key=job.key, path=job.input_path, abspath=_abspath(job.input_path), status=result.status,
        resumed=resumed, pages=len(result.pages), errors=errors, outputs=outputs, seconds=round(seconds, 4),
    )


def _abspath(path: str) -> str | None:
    try:
        return str(Path(path).resolve())
    except OSError:
        return None


def _rel(path: str | Path, out_dir: str | Path) -> str:
    try:
        return Path(path).resolve().relative_to(Path(out_dir).resolve()).as_posix()
    except ValueError:
        return str(path)


_WORKER: dict[str, Any] = {}


def _init_worker(options: ConvertOptions, kind: DocumentKind, events: Any, starts: Any, threads: int) -> None:
    # the main process owns Ctrl-C: it cancels, stops the workers and writes the summary
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # N workers share the cores instead of each starting a thread per core (onnxruntime, torch)
    os.environ.setdefault("OMP_NUM_THREADS", str(threads))
    _WORKER["options"] = options
    _WORKER["kind"] = kind
    _WORKER["events"] = events
    _WORKER["starts"] = starts


def _worker_run(job: Job) -> Outcome:
    events = _WORKER["events"]
    # unbuffered (a SimpleQueue writes before put() returns): still there when this process dies mid-document,
    # so a crash is charged to the document that caused it, not to the ones running next to it
    _WORKER["starts"].put((os.getpid(), job.key))

    def on_page(page: PageResult) -> None:
        events.put((job.key, page.index, page.status))

    return run_job(job, _WORKER["options"], on_page, _WORKER["kind"])


# --- the batch ---------------------------------------------------------------------------------------------


def plan_jobs(
    inputs: Sequence[Any], out_dir: str | Path | None, formats: Sequence[str], overlay_dir: str | Path | None,
    collect_results: bool, kind: DocumentKind = CONVERT,
) -> list[Job]:
    """One job per input, with unique safe output names (a collision gets a short hash suffix)."""
    formats = [f for f in formats if f != "json"] + ["json"]
    seen: set[str] = set()
    jobs = []
    for inp in inputs:
        key = safe_relpath(inp.relpath)
        if key.lower() in seen:  # same name after sanitizing, or on a case-insensitive file system
            key = f"{key}~{hashlib.sha1(str(inp.path).encode()).hexdigest()[:8]}"
        seen.add(key.lower())
        outputs = ()
        if out_dir is not None:
            outputs = tuple((fmt, str(output_path(out_dir, key, kind.suffix(fmt)))) for fmt in formats)
        jobs.append(Job(str(inp.path), key, outputs, None if overlay_dir is None else str(overlay_dir),
                        None if out_dir is None else str(Path(out_dir).resolve()), collect_results))
    return jobs


def existing_result(job: Job, options: ConvertOptions, kind: DocumentKind = CONVERT) -> BatchResult | None:
    """The earlier result of `job` when it can be kept (see module docstring), else None."""
    from docvlm.pipeline import sha256_file

    paths = dict(job.outputs)
    json_path = Path(paths.get("json", ""))
    if not json_path.is_file() or not all(Path(p).is_file() for p in paths.values()):
        return None
    try:
        result = kind.load(json_path.read_bytes())
    except OSError:
        return None
    if result is None or result.status == "failure" or result.options_digest != kind.digest(options):
        return None
    try:
        if result.source.sha256 != sha256_file(job.input_path):
            return None
    except OSError:
        return None
    return result


def run_batch(
    inputs: Sequence[str | Path],
    out_dir: str | Path | None,
    options: ConvertOptions,
    *,
    workers: int = 1,
    force: bool = False,
    shard: Shard | None = None,
    overlay_dir: str | Path | None = None,
    callbacks: BatchCallbacks | None = None,
    collect_results: bool = False,
    kind: DocumentKind = CONVERT,
) -> BatchSummary:
    """Do `kind` (default: convert) on every input, write its outputs into `out_dir` (one per format per
    document) and write the run summary.

    Args:
        inputs: files and folders (expanded by `docvlm.sources.expand_inputs`).
        out_dir: output folder; None writes nothing (results only reach `callbacks.document`; no resume).
        options: the run's options (`options.formats` picks the writers of `ConvertKind`).
        workers: processes; 1 converts in this process.
        force: redo documents whose outputs are up to date.
        shard: convert only this shard's share of the inputs.
        overlay_dir: also draw overlay PNGs there.
        callbacks: progress hooks.
        collect_results: pass each result to `callbacks.document` (for `--json`).
        kind: what is done per document (`ConvertKind`, `docvlm.extract.ExtractKind`); picklable.

    Returns:
        The run summary (also written to `out_dir`).

    Raises:
        UsageError: no inputs, unknown format, or an engine option problem found when the engine starts.
        BatchInterrupted: Ctrl-C / SIGTERM; the summary of what was done is attached and written.
        BatchAborted: the engine cannot load; the summary is attached and written.
    """
    from docvlm.sources import expand_inputs

    callbacks = callbacks or BatchCallbacks()
    started_at = _now()
    formats = kind.formats(options)
    kind.prepare()
    digest = kind.digest(options)
    found = expand_inputs(list(inputs))
    if not found:
        raise UsageError(f"no input files found in {', '.join(str(p) for p in inputs)}")
    all_jobs = plan_jobs(found, out_dir, formats, overlay_dir, collect_results, kind)
    rel_of = {job.key: inp.relpath for job, inp in zip(all_jobs, found, strict=True)}
    jobs = [j for j in all_jobs if shard is None or shard.owns(rel_of[j.key])]

    records: dict[str, DocRecord] = {}
    todo: list[Job] = []
    kept: list[tuple[DocRecord, BatchResult]] = []
    for job in jobs:
        prior = None if force or out_dir is None else existing_result(job, options, kind)
        if prior is None:
            todo.append(job)
        else:
            outs = [_rel(p, job.out_dir or "") for _, p in job.outputs]
            record = record_of(job, prior, resumed=True, outputs=outs, seconds=0.0)
            if kind.warnings(prior):
                record = record.model_copy(update={"warnings": kind.warnings(prior)})
            kept.append((record, prior))
    callbacks.start(len(jobs), len(kept))
    for rec, prior in kept:
        records[rec.key] = rec
        callbacks.document(rec, prior if collect_results else None)

    def finish(interrupted: bool) -> BatchSummary:
        docs = [records[j.key] for j in jobs if j.key in records]
        summary = BatchSummary(
            kind=kind.name, out_dir=None if out_dir is None else str(out_dir),
            shard=None if shard is None else str(shard), options_digest=digest, started_at=started_at,
            finished_at=_now(), interrupted=interrupted,
            all_inputs=[j.key for j in all_jobs], documents=docs, totals=totals_of(docs),
        )
        if out_dir is not None:
            atomic_write_text(Path(out_dir) / summary_filename(shard), summary.model_dump_json(indent=2) + "\n")
        return summary

    last_checkpoint = time.monotonic()

    def accept(outcome: Outcome) -> None:
        nonlocal last_checkpoint
        if outcome.fatal is not None:
            raise _Fatal(outcome.fatal, outcome.fatal_usage)
        assert outcome.record is not None
        records[outcome.record.key] = outcome.record
        callbacks.document(outcome.record, outcome.result)
        if time.monotonic() - last_checkpoint > CHECKPOINT_SECONDS:
            finish(True)  # a run killed with SIGKILL still leaves a summary of what it did (interrupted: true)
            last_checkpoint = time.monotonic()

    try:
        if workers <= 1 or len(todo) <= 1:
            for job in todo:
                accept(run_job(job, options, lambda p, k=job.key: callbacks.page(k, p.index, p.status), kind))
        else:
            _run_pool(todo, options, kind, workers, callbacks, accept)
    except KeyboardInterrupt:
        raise BatchInterrupted(finish(True)) from None
    except _Fatal as exc:
        summary = finish(True)
        if exc.usage:
            raise UsageError(exc.message) from None
        raise BatchAborted(exc.message, summary) from None
    return finish(False)


class _Fatal(Exception):
    def __init__(self, message: str, usage: bool) -> None:
        super().__init__(message)
        self.message, self.usage = message, usage


def _run_pool(
    todo: list[Job],
    options: ConvertOptions,
    kind: DocumentKind,
    workers: int,
    callbacks: BatchCallbacks,
    accept: Callable[[Outcome], None],
) -> None:
    """Run jobs in spawn worker processes; a crashed worker (segfault, OOM kill) costs at most a retry.

    A worker dying breaks the whole pool: every unfinished job is rerun in a new pool, and only the job the
    dead worker was running is charged an attempt (all of them when that cannot be told); a second charge
    makes it a failure record.
    """
    ctx = mp.get_context("spawn")
    attempts: dict[str, int] = {}
    remaining = list(todo)
    while remaining:
        events = ctx.Queue()
        starts = ctx.SimpleQueue()
        n_workers = min(workers, len(remaining))
        pool = ProcessPoolExecutor(
            max_workers=n_workers, mp_context=ctx, initializer=_init_worker,
            initargs=(options, kind, events, starts, choose_inference_threads(available_cores(), n_workers)),
        )
        broken: list[Job] = []
        running: dict[int, str] = {}  # worker pid -> key of the job it started last
        try:
            with _sigint_ignored():  # workers are spawned inside submit(); they inherit SIG_IGN from birth
                pending: dict[Future[Outcome], Job] = {pool.submit(_worker_run, job): job for job in remaining}
            procs = dict(getattr(pool, "_processes", None) or {})
            while pending:
                done, _ = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
                _drain(events, callbacks)
                _drain_starts(starts, running)
                for fut in done:
                    job = pending.pop(fut)
                    try:
                        outcome = fut.result()
                    except BrokenProcessPool:
                        broken.append(job)
                        continue
                    except Exception as exc:  # noqa: BLE001 - e.g. an unpicklable result: that file failed
                        outcome = Outcome(_crash_record(job, f"{type(exc).__name__}: {exc}"))
                    accept(outcome)
            _drain(events, callbacks)
        except BaseException:
            _stop_pool(pool)
            raise
        pool.shutdown(wait=True)
        _drain_starts(starts, running)
        starts.close()
        procs.update(getattr(pool, "_processes", None) or {})
        remaining = []
        suspects = _crashed_jobs(procs, running) & {job.key for job in broken} or {job.key for job in broken}
        for job in broken:
            if job.key not in suspects:  # broken by another job's crash: rerun, not charged
                remaining.append(job)
                continue
            attempts[job.key] = attempts.get(job.key, 0) + 1
            if attempts[job.key] >= 2:
                accept(Outcome(_crash_record(job, "the worker process died twice while converting this file "
                                                  "(crash or out of memory); try --workers 1 to see the error")))
            else:
                remaining.append(job)


@contextlib.contextmanager
def _sigint_ignored() -> Iterator[None]:
    """Ignore SIGINT while worker processes start, so a Ctrl-C never hits one before its initializer runs
    (which would print a traceback); the main process handles Ctrl-C once the workers are up."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _crash_record(job: Job, message: str) -> DocRecord:
    return DocRecord(key=job.key, path=job.input_path, status="failure", errors=[f"{job.input_path}: {message}"])


def _drain(events: Any, callbacks: BatchCallbacks) -> None:
    import queue

    while True:
        try:
            key, index, status = events.get_nowait()
        except (queue.Empty, OSError, EOFError, ValueError):
            return
        callbacks.page(key, index, status)


def _drain_starts(starts: Any, running: dict[int, str]) -> None:
    try:
        while not starts.empty():
            pid, key = starts.get()
            running[pid] = key
    except (OSError, EOFError, ValueError):
        return


def _crashed_jobs(procs: dict[int, Any], running: dict[int, str]) -> set[str]:
    """Keys of the jobs run by the workers that died on their own (not stopped by the pool's SIGTERM)."""
    crashed = set()
    for pid, proc in procs.items():
        code = getattr(proc, "exitcode", None)
        if code not in (None, 0, -signal.SIGTERM) and pid in running:
            crashed.add(running[pid])
    return crashed


def _stop_pool(pool: ProcessPoolExecutor) -> None:
    """Cancel what has not started and stop the workers now (their outputs are atomic: nothing half-written)."""
    procs = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for proc in procs:
        try:
            proc.terminate()
        except Exception:  # noqa: BLE001, S110 - already gone
            pass
    for proc in procs:
        proc.join(timeout=5)


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds")


def load_summary(path: str | Path) -> BatchSummary:
    return BatchSummary.model_validate_json(Path(path).read_bytes())


__all__ = [
    "CONVERT", "BatchAborted", "BatchCallbacks", "BatchInterrupted", "BatchResult", "BatchSummary",
    "ConvertKind", "DocRecord", "DocumentKind", "MergedSummary", "Shard", "merge_summaries", "parse_shard",
    "run_batch", "summary_filename",
]
