"""Shared click options and rendering helpers for the docvlm commands.

Option defaults are None so that an option not given on the command line falls back to its DOCVLM_* env var
and then to the `ConvertOptions` default; `build_options` drops the Nones and turns validation errors into
click usage errors (exit 2).

The batch commands (`convert`, `extract`) share `batch_options` (--workers, --shard), `ProgressCallbacks`
(the progress bars), `print_summary` (the end-of-run report) and `sigterm_as_interrupt`.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click

from docvlm.engines.registry import ENGINE_NAMES, engine_help
from docvlm.families import FAMILY_NAMES

if TYPE_CHECKING:
    from rich.console import Console

    from docvlm.batch import BatchSummary, DocRecord, MergedSummary, Shard
    from docvlm.options import ConvertOptions

F = TypeVar("F", bound=Callable[..., Any])

# CLI name -> ConvertOptions field, where they differ
_RENAMES: dict[str, str] = {}


def source_options(func: F) -> F:
    """--dpi --pages --password --max-page-pixels --max-pages --doc-timeout"""
    for opt in reversed([
        click.option("--dpi", type=int, help="Render resolution of PDF pages [default: 200]."),
        click.option("--pages", metavar="SPEC", help="1-based page selection, e.g. 1-3,7 or 5-."),
        click.option("--password", help="Password for encrypted PDFs (or DOCVLM_PASSWORD)."),
        click.option("--max-page-pixels", type=int, help="Refuse to rasterize larger pages [default: 80000000]."),
        click.option("--max-pages", type=int, help="Read at most N pages per document."),
        click.option("--doc-timeout", type=float, metavar="SECONDS", help="Stop a document after this long."),
    ]):
        func = opt(func)
    return func


class _PrepWorkers(click.ParamType):
    """--prep-workers: auto or a number >= 0."""

    name = "N|auto"

    def convert(self, value: Any, param: Any, ctx: Any) -> int | str:
        if isinstance(value, int) or value == "auto":
            return value
        try:
            n = int(value)
        except (TypeError, ValueError):
            self.fail(f"{value!r}: use auto or a number >= 0", param, ctx)
        if n < 0:
            self.fail(f"{n}: use auto or a number >= 0 (0: prepare pages in the feed's thread)", param, ctx)
        return n


PREP_WORKERS = _PrepWorkers()


def engine_options(func: F) -> F:
    """--engine and everything that configures an engine."""
    for opt in reversed([
        click.option("--engine", type=click.Choice(ENGINE_NAMES), help=engine_help()),
        click.option("--model", help="Hub id or local folder (hf), served model name (openai)."),
        click.option("--family", type=click.Choice(FAMILY_NAMES), help="Force the model family (what the model sees and prints)."),
        click.option("--device", help="auto, cpu, cuda, cuda:N [default: auto]."),
        click.option("--dtype", type=click.Choice(["auto", "bf16", "fp16", "fp32"])),
        click.option("--quant", type=click.Choice(["auto", "none", "4bit", "8bit"])),
        click.option("--max-new-tokens", type=int),
        click.option("--batch-size", type=int, help="Tiles per generate call (VLM engines)."),
        click.option("--max-visual-tokens", type=int, help="Per-request visual-token budget."),
        click.option("--min-text-px", type=float, metavar="PX",
                     help="Readability floor: small-text line height in encoded pixels [16]."),
        click.option("--base-url", help="OpenAI-compatible server URL (openai engine)."),
        click.option("--api-key-env", metavar="VAR", help="Env var holding the API key (openai engine)."),
        click.option("--concurrency", type=int, help="Requests in flight (openai engine)."),
        click.option("--prep-workers", type=PREP_WORKERS, metavar="N|auto",
                     help="VLM engines: processes preparing pages beside the requests [default: auto = one per "
                          "core less one, at least 2; 0 on one core]."),
        click.option("--tile-format", type=click.Choice(["png", "webp"]),
                     help="openai engine: lossless PNG tiles (any server) or lossless WebP (smaller) [png]."),
        click.option("--timeout", type=float, metavar="SECONDS", help="Per-request timeout (openai engine)."),
        click.option("--retries", type=int, help="Retries on 429/5xx/connection errors (openai engine)."),
        click.option("--text-layer", type=click.Choice(["auto", "ignore"]),
                     help="auto: use a PDF's text layer when usable; ignore: always OCR/model."),
        click.option("--ocr-backend", type=click.Choice(["auto", "openvino", "onnxruntime"]),
                     help="Runtime of the ocr engine's models [default: auto = openvino where it runs]."),
        click.option("--line-orientation/--no-line-orientation", default=None,
                     help="ocr engine: turn each line with the angle classifier (mixed pages) instead of "
                          "deciding the orientation once per page."),
    ]):
        func = opt(func)
    return func


def batch_options(func: F) -> F:
    """--workers --shard --ray...: how a batch command spreads its inputs (processes, machines, a Ray cluster)."""
    for opt in reversed([
        click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True,
                     help="Worker processes on this machine (with --ray: see --ray-workers)."),
        click.option("--shard", metavar="I/N", help="Do only shard I of N (1-based), e.g. 1/4 .. 4/4; "
                                                     "`docvlm summary OUT` merges the shards' summaries."),
        click.option("--ray", metavar="ADDRESS", help="Run on Ray (pip install -e '.[ray]'): local (a Ray "
                     "inside this run, on this machine's cores), auto (RAY_ADDRESS or the cluster running here), "
                     "HOST:PORT (a head node) or ray://HOST:10001 (Ray Client)."),
        click.option("--ray-workers", type=click.IntRange(min=1), help="Ray actors [default: from the "
                     "cluster's CPUs, or GPUs with --ray-gpus-per-worker]."),
        click.option("--ray-gpus-per-worker", type=click.FloatRange(min=0), help="GPUs each Ray actor asks "
                     "for, e.g. 1 with --engine hf."),
        click.option("--ray-inputs", type=click.Choice(["auto", "ship", "shared"]), help="ship: inputs travel "
                     "as bytes through Ray; shared: workers read the same paths (shared file system); auto: "
                     "shared only on a one-machine cluster [default: auto]."),
    ]):
        func = opt(func)
    return func


def parse_shard_option(spec: str | None) -> Shard | None:
    """The --shard value as a `Shard` (None when not given). Raises click.UsageError (exit 2)."""
    from docvlm.batch import parse_shard
    from docvlm.errors import UsageError

    if not spec:
        return None
    try:
        return parse_shard(spec)
    except UsageError as exc:
        raise click.UsageError(str(exc)) from None


def build_options(**cli: Any) -> ConvertOptions:
    """ConvertOptions from CLI values (None = not given). Raises click.UsageError (exit 2) on a bad value."""
    from docvlm.errors import UsageError
    from docvlm.options import make_options

    kwargs = {_RENAMES.get(k, k): v for k, v in cli.items() if v is not None}
    try:
        return make_options(**kwargs)
    except UsageError as exc:
        raise click.UsageError(str(exc)) from None


def esc(text: object) -> str:
    """Text from a document, a path or an error, escaped for rich: `docvlm[models]` is not a markup tag."""
    from rich.markup import escape

    return escape(str(text))


def stderr_console() -> Console:
    from rich.console import Console

    return Console(stderr=True)


def stdout_console() -> Console:
    from rich.console import Console

    return Console()


def confidence_style(confidence: float | None) -> str:
    """Rich style matching the overlay colors: red < 0.5 <= yellow < 0.8 <= green."""
    if confidence is None:
        return "blue"
    return "red" if confidence < 0.5 else "yellow" if confidence < 0.8 else "green"


def fmt_box(box: Any) -> str:
    return "[" + ", ".join(f"{v:.0f}" for v in box) + "]"


PAGE_COLUMN = "page (1-based)"
"""Header of the page column in terminal tables: pages count from 1 here, from 0 in the JSON (`index`)."""


def exit_failed_result(result_json: str, errors: Sequence[Any]) -> NoReturn:
    """`docvlm show` of a result whose document failed: say so, with its errors, and exit 1."""
    console = stderr_console()
    console.print(f"[red]failed[/] {result_json}: this result records a failed document, with nothing to show",
                  soft_wrap=True, highlight=False)
    for err in errors:
        code = getattr(err, "code", "error")
        console.print(f"  {code}: {esc(getattr(err, 'message', err))}", soft_wrap=True, highlight=False)
    sys.exit(1)


def status_style(status: str) -> str:
    return {"success": "green", "partial": "yellow", "failure": "red"}.get(status, "white")


def sigterm_as_interrupt(signum: int, frame: object) -> None:
    """SIGTERM handler of the batch commands: stop like Ctrl-C (summary written, exit 130)."""
    raise KeyboardInterrupt


class ProgressCallbacks:
    """`docvlm.batch.BatchCallbacks` drawing rich progress on stderr: documents (with ETA), pages (with rate).

    The bars are drawn from `start` on (the inputs are planned by then), so a usage error found earlier (a
    path that does not exist, a bad option) is printed alone; use the object as a context manager around the
    run. The pages bar learns its total from `inputs`: the selected pages of the documents to do are counted
    in a background thread (PDF page counts, image frames) and set as the total once all are counted.

    With `json_out`, every collected result is printed on stdout as one JSON line as soon as it is done.
    """

    def __init__(self, console: Console, json_out: bool, options: ConvertOptions | None = None) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            SpinnerColumn,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.console = console
        self.json_out = json_out
        self.options = options
        self.progress = Progress(
            SpinnerColumn(), TextColumn("{task.description:<9}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"), TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(),
            console=console, transient=False,
        )
        self.docs = self.progress.add_task("documents", total=None, rate="")
        self.pages = self.progress.add_task("pages", total=None, rate="")
        self.resumed = 0
        self.pages_total: int | None = None
        self._stop_counting = threading.Event()
        self._counter: threading.Thread | None = None

    def __enter__(self) -> ProgressCallbacks:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *rest: object) -> None:
        self._stop_counting.set()
        if self.progress.live.is_started:
            self.progress.stop()

    def start(self, total: int, resumed: int) -> None:
        self.progress.update(self.docs, total=total)
        self.progress.start()
        self.resumed = resumed
        if resumed:
            self.console.print(f"resuming: {resumed} of {total} document(s) already done")

    def inputs(self, paths: list[str]) -> None:
        """The files this run will read: their selected pages are counted (in the background) for the bar."""
        if not paths or self.options is None:
            return
        self._counter = threading.Thread(target=self._count_pages, args=(list(paths), self.options),
                                         name="docvlm-page-count", daemon=True)
        self._counter.start()

    def _count_pages(self, paths: list[str], options: ConvertOptions) -> None:
        from docvlm.page_totals import selected_page_count

        total = 0
        for path in paths:
            if self._stop_counting.is_set():
                return
            total += selected_page_count(path, options) or 0
        self.pages_total = total
        done = self.progress.tasks[self.pages].completed
        self.progress.update(self.pages, total=max(total, int(done)))

    def page(self, key: str, page_index: int, status: str) -> None:
        self.progress.advance(self.pages)
        task = self.progress.tasks[self.pages]
        if task.total is not None and task.completed > task.total:  # a document had more pages than counted
            self.progress.update(self.pages, total=task.completed)
        self._rate(self.pages)

    def document(self, record: DocRecord, result: Any | None) -> None:
        self.progress.advance(self.docs)
        if not record.resumed:
            self._rate(self.docs)
        if record.status == "failure":
            message = without_path(record.errors[0], record.path) if record.errors else "?"
            self.console.print(f"[red]failed[/] {esc(record.path)}: {esc(message)}", soft_wrap=True, highlight=False)
        for warning in record.warnings:
            self.console.print(f"[yellow]warning[/] {esc(warning)}", soft_wrap=True)
        if self.json_out and result is not None:
            sys.stdout.write(result.model_dump_json() + "\n")
            sys.stdout.flush()

    def _rate(self, task_id: Any) -> None:
        # completed / elapsed: page events from workers arrive in bursts, which upsets a windowed speed
        task = self.progress.tasks[task_id]
        elapsed = task.elapsed or 0.0
        done = task.completed - (self.resumed if task_id == self.docs else 0)
        self.progress.update(task_id, rate=f"{done / elapsed:.2f}/s" if elapsed > 0.5 else "")


def without_path(message: str, path: str) -> str:
    """An error message without the leading `PATH: ` its error put there, for a line that names the path."""
    for shown in (path, Path(path).name):
        if message.startswith(shown + ": "):
            return message[len(shown) + 2:]
    return message


DONE_VERBS: dict[str, str] = {"convert": "converted", "extract": "extracted"}
"""How the summary line names the documents a run did, by the run's kind (`BatchSummary.kind`)."""


def print_summary(console: Console, summary: BatchSummary | MergedSummary) -> None:
    """Totals of a run (or of merged runs) and a table of the documents that were not a full success."""
    from rich.table import Table

    t = summary.totals
    verb = DONE_VERBS.get(getattr(summary, "kind", ""), "done")
    console.print(
        f"[bold]{t.documents}[/] document(s): [green]{t.success} success[/], [yellow]{t.partial} partial[/], "
        f"[red]{t.failure} failed[/] ({t.converted} {verb}, {t.resumed} resumed); "
        f"{t.pages} page(s), {t.seconds:.1f} s of conversion",
        soft_wrap=True,
    )
    if summary.skipped:
        console.print(f"[yellow]{len(summary.skipped)} path(s) skipped[/] inside the input folders (hidden, "
                      "symbolic links to folders, unreadable, docvlm's own outputs): see `skipped` in the run "
                      "summary JSON", soft_wrap=True)
    problems = [d for d in summary.documents if d.status != "success"]
    if problems:
        table = Table(title="problems", show_header=True)
        table.add_column("input")
        table.add_column("status")
        table.add_column("first error", overflow="fold")
        for d in problems[:200]:
            table.add_row(esc(d.path), f"[{status_style(d.status)}]{d.status}[/]", esc(d.errors[0]) if d.errors else "")
        console.print(table)
        if len(problems) > 200:
            console.print(f"... and {len(problems) - 200} more (see the run summary JSON)")
