"""`docvlm extract` and `docvlm schema`: options in, docvlm.extract called, rendered.

Exit codes: 0 every input extracted (a "partial" document counts unless --strict), 1 some input failed,
2 usage error (bad option, unknown schema), 130 interrupted (rerun the same command to resume).
"""

from __future__ import annotations

import json
import signal
import sys
from typing import Any

import click

from docvlm.cli._common import (
    PAGE_COLUMN,
    ProgressCallbacks,
    batch_options,
    build_options,
    engine_options,
    esc,
    exit_failed_result,
    parse_shard_option,
    print_summary,
    sigterm_as_interrupt,
    source_options,
    stderr_console,
    stdout_console,
)


@click.command(short_help="Typed, validated, grounded fields (invoice, receipt, yours).")
@click.argument("inputs", nargs=-1, required=True, type=click.Path(path_type=str))
@click.option("--schema", "schema_spec", default="auto", show_default=True,
              metavar="auto|NAME|FILE.py:Model|FILE.json",
              help="auto (receipt or invoice per document, from its cues; the choice and reason are in the "
              "result), a built-in schema (invoice, receipt), a pydantic model in a Python file, or a JSON "
              "Schema file.")
@click.option("-o", "--out", "out_dir", type=click.Path(file_okay=False), help="Output folder (one JSON per input).")
@click.option("--json", "json_out", is_flag=True, help="Print the result JSON on stdout (one line per document "
              "when there are several).")
@click.option("--force", is_flag=True, help="Redo documents whose outputs are up to date.")
@click.option("--strict", is_flag=True, help="Exit 1 also when a document is only partially extracted.")
@batch_options
@source_options
@engine_options
def extract(inputs: tuple[str, ...], schema_spec: str, out_dir: str | None, json_out: bool, force: bool,
            strict: bool, workers: int, shard: str | None, **opts: Any) -> None:
    """Extract typed, validated, grounded fields (invoice, receipt or your schema) from PDFs and images.

    Every field has its value, the raw text as printed, its page and box, its source and a status (verified,
    found, inferred, unverified, missing, invalid; the note says why); cross-check failures are listed as warnings. Resumable, parallel
    (--workers) and shardable (--shard) like convert.
    """
    from docvlm.batch import BatchAborted, BatchInterrupted
    from docvlm.errors import DocvlmError, UsageError
    from docvlm.extract import load_schema, run_extract_batch

    if out_dir is None and not json_out:
        raise click.UsageError("give an output folder with -o OUT (or --json to print the result to stdout)")
    try:
        schema = load_schema(schema_spec)
    except UsageError as exc:
        raise click.UsageError(str(exc)) from None
    the_shard = parse_shard_option(shard)
    options = build_options(**opts)
    err = stderr_console()
    report = err if json_out else stdout_console()
    callbacks = ProgressCallbacks(err, False, options)
    results = []

    def on_result(result: Any) -> None:
        results.append(result)

    previous = signal.signal(signal.SIGTERM, sigterm_as_interrupt)
    try:
        with callbacks:
            summary = run_extract_batch(inputs, out_dir, options, schema=schema, force=force, workers=workers,
                                        shard=the_shard, callbacks=callbacks,
                                        on_result=on_result if json_out else None)
    except BatchInterrupted as exc:
        err.print(f"[yellow]Interrupted[/]: {exc.summary.totals.documents} document(s) done and kept. "
                  "Rerun the same command to resume.", soft_wrap=True)
        sys.exit(130)
    except BatchAborted as exc:  # the engine cannot load (a model that is not there, ...)
        err.print(f"[red]error[/]: {esc(exc)}", soft_wrap=True)
        sys.exit(1)
    except DocvlmError as exc:  # an input given on the command line does not exist, a bad engine option...
        raise click.UsageError(str(exc)) from None
    finally:
        signal.signal(signal.SIGTERM, previous)
    if json_out:
        if len(results) == 1:
            sys.stdout.write(results[0].model_dump_json(indent=2) + "\n")
        else:
            for result in results:
                sys.stdout.write(result.model_dump_json() + "\n")
        sys.stdout.flush()
    print_summary(report, summary)
    bad = summary.totals.failure + (summary.totals.partial if strict else 0)
    sys.exit(1 if bad else 0)


@click.command("schema", short_help="Print the JSON Schema of an extraction schema.")
@click.argument("name", metavar="NAME|FILE.py:Model|FILE.json")
def schema_cmd(name: str) -> None:
    """Print the JSON Schema of an extraction schema (invoice, receipt, or your own)."""
    from docvlm.errors import UsageError
    from docvlm.extract import load_schema

    try:
        loaded = load_schema(name)
    except UsageError as exc:
        raise click.UsageError(str(exc)) from None
    stdout_console()  # keep the import light; plain print keeps the JSON unwrapped
    sys.stdout.write(json.dumps(loaded.json_schema(), indent=2) + "\n")


def show_extraction(result_json: str, out_dir: str | None, source: str | None, password: str | None) -> None:
    """`docvlm show` for an extraction result (`"kind": "extraction"`): field boxes drawn on the pages, and a
    table of fields (value, raw text, page, box, status) and warnings. Called by `docvlm show`."""
    from pathlib import Path

    from pydantic import ValidationError
    from rich.table import Table

    from docvlm.extract.models import ExtractionResult
    from docvlm.extract.overlay import field_rows, render_extraction_overlays
    from docvlm.overlay import find_source

    path = Path(result_json)
    try:
        result = ExtractionResult.model_validate_json(path.read_bytes())
    except (ValidationError, ValueError) as exc:
        raise click.UsageError(f"{result_json}: not a docvlm extraction result ({exc.__class__.__name__})") from None
    if result.status == "failure":
        exit_failed_result(result_json, result.errors)
    src = Path(source) if source else find_source(result, path)  # duck-typed: .source.path
    stem = path.name[:-5] if path.name.endswith(".json") else path.name
    pages = render_extraction_overlays(result, src, out_dir or path.parent, relpath=stem, password=password)
    console = stdout_console()
    table = Table(title=f"{result.source.path} ({result.schema_name})", show_header=True)
    for col in ("field", "value", "raw", PAGE_COLUMN, "bbox_page_px", "status", "how it was found"):
        table.add_column(col, overflow="fold")
    colors = {"verified": "green", "found": "cyan", "inferred": "yellow", "unverified": "yellow", "invalid": "red",
              "missing": "dim"}
    for name, value, raw, page, box, status, note in field_rows(result):
        table.add_row(name, value, raw, page, box, f"[{colors.get(status, 'white')}]{status}[/]", note)
    console.print(table)
    if result.schema_choice:
        console.print(f"schema {result.schema_choice}", soft_wrap=True, highlight=False)
    for w in result.warnings:
        console.print(f"[yellow]warning[/] {w.code}: {esc(w.message)}", soft_wrap=True)
    for note in sorted({p.note for p in pages if p.note}):
        stderr_console().print(f"[yellow]note[/]: {note}")
    for p in pages:
        console.print(f"wrote {p.png_path}")


COMMANDS: list[click.Command] = [extract, schema_cmd]
