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

`run_batch` reads as plan (`plan_batch`: walk, shard, resume), execute (an executor from `docvlm.executors`:
this process, a local process pool or a Ray cluster; it only returns results) and write (`write_outputs`:
this process alone writes every output).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from pydantic import ValidationError

from docvlm.datamodel import DocumentResult, EngineInfo, Status
from docvlm.errors import DocvlmError, OutputError, UsageError
from docvlm.summary import (  # re-exported: the run summary is part of the batch API
    SUMMARY_PREFIX,
    BatchSummary,
    BatchTotals,
    DocRecord,
    MergedSummary,
    Shard,
    SkippedInput,
    is_summary_name,
    load_summary,
    merge_summaries,
    parse_shard,
    summary_filename,
    totals_of,
)
from docvlm.writers import WRITERS, atomic_write_text, output_path, safe_relpath, writer_for

if TYPE_CHECKING:
    from docvlm.datamodel import ErrorItem, PageResult, SourceInfo
    from docvlm.engines.base import Engine
    from docvlm.executors import Executor
    from docvlm.options import ConvertOptions

MAX_ERRORS_PER_RECORD = 50
CHECKPOINT_SECONDS = 60.0
"""During a long run the summary is rewritten this often, marked interrupted until the run finishes."""


# --- progress ----------------------------------------------------------------------------------------------


class BatchCallbacks:
    """Progress hooks; the CLI overrides them to drive a progress bar. All are called in the main process."""

    def start(self, total: int, resumed: int) -> None:
        """`total` documents in this run (shard), `resumed` of them already done."""

    def inputs(self, paths: list[str]) -> None:
        """The files this run will read (resumed documents left out), before the first of them starts."""

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


class SummaryWriteError(BatchAborted):
    """The run summary could not be written (disk full, a symbolic link or a folder in the way)."""

    code = "output"


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
    workers (spawn processes, Ray actors): carry specs, not loaded objects, and load lazily in `prepare`."""

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

        pages = render_overlays(result, source_path, overlay_dir, relpath=relpath, password=options.password,
                                max_page_pixels=options.max_page_pixels)
        return [f"overlay page {page.page_index + 1}: {page.note}" for page in pages if page.note]

    def warnings(self, result: Any) -> list[str]:
        return [f"{result.source.path} (page {page.index + 1}): {page.text_layer_rejected}; the page was read by OCR"
                for page in result.pages if getattr(page, "text_layer_rejected", None)]


CONVERT = ConvertKind()


# --- plan: which documents, where their outputs go ------------------------------------------------------


@dataclass(frozen=True)
class Job:
    input_path: str
    key: str
    outputs: tuple[tuple[str, str], ...]  # (format, absolute path); json last
    overlay_dir: str | None
    out_dir: str | None
    collect_result: bool
    note: str | None = None  # a warning about this job's outputs (renamed away from an input, ...)
    blocked: str | None = None  # why its outputs cannot be written at all (the document fails, not the batch)


@dataclass(frozen=True)
class BatchPlan:
    """What a run will do: every job of the batch (before sharding), this shard's jobs still to do, and the
    records and results of the jobs kept from an earlier run (resume)."""

    all_jobs: list[Job]
    jobs: list[Job]
    todo: list[Job]
    kept: list[tuple[DocRecord, BatchResult]]
    skipped: list[SkippedInput] = field(default_factory=list)
    unsupported_files: int = 0


def plan_jobs(
    inputs: Sequence[Any], out_dir: str | Path | None, formats: Sequence[str], overlay_dir: str | Path | None,
    collect_results: bool, kind: DocumentKind = CONVERT,
) -> list[Job]:
    """One job per input, with unique safe output names (a collision gets a short hash suffix).

    An output never replaces an input of the batch (`d/scan.png`'s searchable PDF would be `d/scan.png.pdf`,
    the user's other input) nor a run summary: such a job's outputs get the hash suffix too, and a note."""
    formats = [f for f in formats if f != "json"] + ["json"]
    input_files = {_resolved_str(str(inp.path)) for inp in inputs}
    seen: set[str] = set()
    jobs = []
    for inp in inputs:
        key = safe_relpath(inp.relpath)
        tag = hashlib.sha1(str(inp.path).encode()).hexdigest()[:8]
        if key.lower() in seen:  # same name after sanitizing, or on a case-insensitive file system
            key = f"{key}~{tag}"
        note = blocked = None
        outputs: tuple[tuple[str, str], ...] = ()
        if out_dir is not None:
            try:
                outputs = tuple((fmt, str(output_path(out_dir, key, kind.suffix(fmt)))) for fmt in formats)
                taken = [p for _, p in outputs if p in input_files or is_summary_name(Path(p).name)]
                if taken:
                    key = f"{key}~{tag}"
                    outputs = tuple((fmt, str(output_path(out_dir, key, kind.suffix(fmt)))) for fmt in formats)
                    note = (f"outputs named {key}.*: {taken[0]} is an input (or a run summary) and is never "
                            "written over")
            except OutputError as exc:  # a symbolic link in OUT leading outside it
                outputs, blocked = (), f"{inp.path}: {exc}"
        seen.add(key.lower())
        jobs.append(Job(str(inp.path), key, outputs, None if overlay_dir is None else str(overlay_dir),
                        None if out_dir is None else str(Path(out_dir).resolve()), collect_results, note, blocked))
    return jobs


def _resolved_str(path: str) -> str:
    try:
        return str(Path(path).resolve())
    except (OSError, RuntimeError):  # a symlink loop
        return str(Path(path).absolute())


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


def plan_batch(
    inputs: Sequence[str | Path], out_dir: str | Path | None, options: ConvertOptions, *, force: bool,
    shard: Shard | None, overlay_dir: str | Path | None, collect_results: bool, kind: DocumentKind,
) -> BatchPlan:
    """The input walk, output names, the shard's share and resume: the same whatever executor runs it.

    Raises:
        UsageError: no inputs; `out_dir` (or `overlay_dir`) is one of the input folders, or cannot be made.
    """
    from docvlm.sources import walk_inputs

    formats = kind.formats(options)
    outputs = [d for d in (out_dir, overlay_dir) if d is not None]
    check_output_folders(inputs, out_dir, overlay_dir)
    walk = walk_inputs(list(inputs), exclude=outputs)
    found = walk.files
    if not found:
        raise UsageError(f"no input files found in {', '.join(str(p) for p in inputs)}")
    all_jobs = plan_jobs(found, out_dir, formats, overlay_dir, collect_results, kind)
    rel_of = {job.key: inp.relpath for job, inp in zip(all_jobs, found, strict=True)}
    jobs = [j for j in all_jobs if shard is None or shard.owns(rel_of[j.key])]
    todo: list[Job] = []
    kept: list[tuple[DocRecord, BatchResult]] = []
    for job in jobs:
        prior = None if force or out_dir is None else existing_result(job, options, kind)
        if prior is None:
            todo.append(job)
            continue
        outs = [_rel(p, job.out_dir or "") for _, p in job.outputs]
        record = record_of(job, prior, resumed=True, outputs=outs, seconds=0.0)
        if warnings := kind.warnings(prior) + _job_notes(job, prior, options):
            record = record.model_copy(update={"warnings": warnings})
        kept.append((record, prior))
    skipped = [SkippedInput(path=s.path, reason=s.reason) for s in walk.skipped]
    return BatchPlan(all_jobs, jobs, todo, kept, skipped, walk.unsupported)


def check_output_folders(inputs: Sequence[str | Path], out_dir: str | Path | None,
                         overlay_dir: str | Path | None) -> None:
    """Refuse an output (or overlay) folder that is one of the input folders: outputs would lie among the
    inputs and be read as inputs by the next run. A folder *inside* the inputs is fine: the walk skips it.
    Makes `out_dir`, so that a bad one (a file, a broken symbolic link, no permission) stops the run up front.

    Raises:
        UsageError: naming the flag and the folder.
    """
    input_dirs = {_resolved_str(str(p)) for p in inputs if Path(p).is_dir()}
    for flag, folder in (("-o/--out", out_dir), ("--overlay", overlay_dir)):
        if folder is None:
            continue
        if _resolved_str(str(folder)) in input_dirs:
            raise UsageError(f"{flag} {folder} is an input folder: outputs would be mixed with the inputs and read "
                             f"as inputs by the next run; write them elsewhere, e.g. {flag} "
                             f"{Path(folder) / 'docvlm-out'} (a folder inside the inputs is skipped when reading)")
    if out_dir is not None:
        try:
            Path(out_dir).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            why = exc.strerror or str(exc)
            if Path(out_dir).is_symlink():
                why = f"a symbolic link to {os.readlink(out_dir)}, which is not a usable folder"
            raise UsageError(f"-o/--out {out_dir}: cannot make the output folder: {why}") from None


# --- write: the driver alone writes, atomically, JSON last --------------------------------------------------


def write_outputs(job: Job, result: BatchResult, seconds: float, options: ConvertOptions,
                  kind: DocumentKind) -> DocRecord:
    """Write every output of one result (JSON last: its presence means "done" for resume) and its overlays;
    a write that fails makes that document a failure, never the batch's."""
    started = time.perf_counter()
    written: list[str] = []
    warnings: list[str] = kind.warnings(result)
    write_error: str | None = None
    if job.out_dir is not None:
        try:
            for fmt, path in job.outputs:
                try:
                    kind.write(fmt, result, job.input_path, Path(path), options)
                except Exception as exc:
                    # a failed document: a format with nothing to show (a searchable PDF without a page read)
                    # must not hide its real error, nor stop its failure record (the JSON) being written
                    if result.status != "failure" or fmt == "json":
                        raise
                    warnings.append(f"{job.input_path}: no {fmt} output for a failed document: {exc}")
                    continue
                written.append(_rel(path, job.out_dir))
        except Exception as exc:  # noqa: BLE001 - e.g. disk full: this document failed, the batch goes on
            write_error = f"{job.input_path}: cannot write {path}: {type(exc).__name__}: {exc}"
    if job.overlay_dir is not None and write_error is None:
        try:
            warnings += kind.overlay(result, job.input_path, job.overlay_dir, job.key, options)
        except Exception as exc:  # noqa: BLE001 - a debugging aid must not fail the conversion
            warnings.append(f"{job.input_path}: overlay failed: {type(exc).__name__}: {exc}")
    warnings += _job_notes(job, result, options)
    seconds += time.perf_counter() - started
    record = record_of(job, result, resumed=False, outputs=written, seconds=seconds)
    if write_error is not None:
        record = record.model_copy(update={"status": "failure", "errors": [write_error, *record.errors]})
    if warnings:
        record = record.model_copy(update={"warnings": warnings})
    return record


def _job_notes(job: Job, result: BatchResult, options: ConvertOptions) -> list[str]:
    """Warnings the runner adds to a document's record: renamed outputs, pages selected beyond its end."""
    from docvlm.sources import page_selection_note

    notes = [job.note] if job.note else []
    if result.status != "failure" and (note := page_selection_note(options.pages, result.source.page_count)):
        notes.append(f"{job.input_path}: {note}")
    return notes


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


def _crash_record(job: Job, message: str) -> DocRecord:
    return DocRecord(key=job.key, path=job.input_path, abspath=_abspath(job.input_path), status="failure",
                     errors=[message])


def _abspath(path: str) -> str | None:
    try:
        return str(Path(path).resolve())
    except (OSError, RuntimeError):  # RuntimeError: a symlink loop (Python < 3.13)
        return None


def _rel(path: str | Path, out_dir: str | Path) -> str:
    try:
        return Path(path).resolve().relative_to(Path(out_dir).resolve()).as_posix()
    except ValueError:
        return str(path)


# --- the batch: plan, execute, write -----------------------------------------------------------------------


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
    executor: Executor | None = None,
) -> BatchSummary:
    """Do `kind` (default: convert) on every input, write its outputs into `out_dir` (one per format per
    document) and write the run summary.

    Args:
        inputs: files and folders (expanded by `docvlm.sources.expand_inputs`).
        out_dir: output folder; None writes nothing (results only reach `callbacks.document`; no resume).
        options: the run's options (`options.formats` picks the writers of `ConvertKind`; `options.ray`
            runs the documents on a Ray cluster).
        workers: local processes; 1 converts in this process (ignored with `options.ray`).
        force: redo documents whose outputs are up to date.
        shard: convert only this shard's share of the inputs.
        overlay_dir: also draw overlay PNGs there.
        callbacks: progress hooks.
        collect_results: pass each result to `callbacks.document` (for `--json`).
        kind: what is done per document (`ConvertKind`, `docvlm.extract.ExtractKind`); picklable.
        executor: where documents run; default `docvlm.executors.choose_executor(options, workers)`.

    Returns:
        The run summary (also written to `out_dir`).

    Raises:
        UsageError: no inputs, unknown format, an engine option problem found when the engine starts, a Ray
            cluster that cannot be reached or Ray not installed.
        BatchInterrupted: Ctrl-C / SIGTERM; the summary of what was done is attached and written.
        BatchAborted: the engine cannot load; the summary is attached and written.
    """
    from docvlm.executors import WorkerSpec, WorkItem, choose_executor
    from docvlm.sources import check_page_selection

    callbacks = callbacks or BatchCallbacks()
    started_at = _now()
    check_page_selection(options.pages)  # a bad --pages stops the run, it does not fail every document
    kind.prepare()
    digest = kind.digest(options)
    if executor is None and options.ray:  # a cluster that cannot be reached fails before the input walk
        executor = choose_executor(options, workers)
    plan = plan_batch(inputs, out_dir, options, force=force, shard=shard, overlay_dir=overlay_dir,
                      collect_results=collect_results, kind=kind)
    if executor is None:
        executor = choose_executor(options, workers if len(plan.todo) > 1 else 1)

    records: dict[str, DocRecord] = {}
    callbacks.start(len(plan.jobs), len(plan.kept))
    for rec, prior in plan.kept:
        records[rec.key] = rec
        callbacks.document(rec, prior if collect_results else None)
    callbacks.inputs([_abspath(job.input_path) or job.input_path for job in plan.todo])

    def finish(interrupted: bool) -> BatchSummary:
        docs = [records[j.key] for j in plan.jobs if j.key in records]
        summary = BatchSummary(
            kind=kind.name, out_dir=None if out_dir is None else str(out_dir),
            shard=None if shard is None else str(shard), options_digest=digest, started_at=started_at,
            finished_at=_now(), interrupted=interrupted,
            all_inputs=[j.key for j in plan.all_jobs], documents=docs, totals=totals_of(docs),
            skipped=plan.skipped, unsupported_files=plan.unsupported_files,
        )
        if out_dir is not None:
            target = Path(out_dir) / summary_filename(shard)
            try:
                atomic_write_text(target, summary.model_dump_json(indent=2) + "\n")
            except OSError as exc:  # a full disk, a symbolic link or a file in the way: say so, no traceback
                raise SummaryWriteError(
                    f"cannot write the run summary {target}: {exc.strerror or exc}. The outputs written so far "
                    "are kept; free space or fix the folder, then rerun the same command to resume", summary,
                ) from None
        return summary

    for job in plan.todo:
        if job.blocked is not None:  # nowhere to write it: a failure record, nothing converted
            records[job.key] = _crash_record(job, job.blocked)
            callbacks.document(records[job.key], None)
    todo = [job for job in plan.todo if job.blocked is None]
    job_of = {job.key: job for job in todo}
    items = [WorkItem(job.key, job.input_path, _abspath(job.input_path) or job.input_path) for job in todo]
    last_checkpoint = time.monotonic()
    try:
        if items:
            with contextlib.closing(executor.run(items, WorkerSpec(options, kind), callbacks.page)) as results:
                for done in results:
                    if done.fatal is not None:
                        summary = finish(True)
                        if done.fatal_usage:
                            raise UsageError(done.fatal)
                        raise BatchAborted(done.fatal, summary)
                    job = job_of[done.key]
                    if done.crash is not None:
                        record = _crash_record(job, done.crash)
                    else:
                        record = write_outputs(job, done.result, done.seconds, options, kind)
                    records[job.key] = record
                    callbacks.document(record, done.result if collect_results else None)
                    if time.monotonic() - last_checkpoint > CHECKPOINT_SECONDS:
                        with contextlib.suppress(SummaryWriteError):  # the final write reports it
                            finish(True)  # a run killed with SIGKILL still leaves a summary of what it did
                        last_checkpoint = time.monotonic()
    except KeyboardInterrupt:
        raise BatchInterrupted(finish(True)) from None
    return finish(False)


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds")


__all__ = [
    "CONVERT", "SUMMARY_PREFIX", "BatchAborted", "BatchCallbacks", "BatchInterrupted", "BatchPlan", "BatchResult",
    "BatchSummary", "BatchTotals", "ConvertKind", "SummaryWriteError", "DocRecord", "DocumentKind", "MergedSummary", "Shard",
    "load_summary", "merge_summaries", "parse_shard", "plan_batch", "run_batch", "summary_filename",
    "write_outputs",
]
