"""`docvlm convert`, `docvlm show`, `docvlm summary`: options in, docvlm.batch / docvlm.overlay called, rendered.

Exit codes: 0 every input converted (a "partial" document counts as converted unless --strict), 1 some input
failed (or is missing, for `summary`), 2 usage error, 130 interrupted (rerun the same command to resume).
"""

from __future__ import annotations

import signal
import sys
from pathlib import Path
from typing import Any

import click

from docvlm.cli._common import (
    PAGE_COLUMN,
    ProgressCallbacks,
    batch_options,
    build_options,
    confidence_style,
    engine_options,
    esc,
    exit_failed_result,
    fmt_box,
    parse_shard_option,
    print_summary,
    sigterm_as_interrupt,
    source_options,
    stderr_console,
    stdout_console,
)


@click.command(short_help="PDFs and images to grounded JSON (and md, pdf); resumable.")
@click.argument("inputs", nargs=-1, required=True, type=click.Path(path_type=str))
@click.option("-o", "--out", "out_dir", type=click.Path(file_okay=False), help="Output folder (mirrors inputs).")
@click.option("--format", "formats", default="json", show_default=True,
              help="Comma list of output formats (json is always written: resume reads it), e.g. json,md.")
@source_options
@engine_options
@batch_options
@click.option("--force", is_flag=True, help="Redo documents whose outputs are up to date.")
@click.option("--overlay", "overlay_dir", type=click.Path(file_okay=False), help="Also write overlay PNGs here.")
@click.option("--json", "json_out", is_flag=True, help="Print each result as one JSON line on stdout.")
@click.option("--strict", is_flag=True, help="Exit 1 also when a document is only partially converted.")
@click.option("--redo-text", is_flag=True, default=None,
              help="--format pdf: also lay the read text on pages that already had a text layer.")
@click.option("--keep-furniture", is_flag=True, default=None,
              help="--format md: keep running headers, footers and page numbers (always in the JSON).")
@click.option("--no-layout", "layout", flag_value=False, default=None,
              help="Skip the layout stage (reading order, tables, furniture, headings, text repair).")
@click.option("--table-models", type=click.Choice(["auto", "on", "off"]), default=None,
              help="Trained table/region models (the 'models' extra): auto = where measured better (scans).")
def convert(inputs: tuple[str, ...], out_dir: str | None, formats: str, workers: int, force: bool,
            shard: str | None, overlay_dir: str | None, json_out: bool, strict: bool, **opts: Any) -> None:
    """Convert PDFs and images (files or folders) into one grounded JSON per document.

    Resumable: an input whose JSON exists with the same sha256 and options is skipped (failed ones are
    retried); --force redoes. Exit 0 all converted, 1 some failed, 2 usage error, 130 interrupted.
    """
    from docvlm.batch import BatchAborted, BatchInterrupted, run_batch
    from docvlm.errors import DocvlmError, UsageError
    from docvlm.writers import parse_formats

    if out_dir is None and not json_out:
        raise click.UsageError("give an output folder with -o OUT (or --json to print results to stdout)")
    try:
        fmts = parse_formats(formats)
    except (ValueError, UsageError) as exc:
        raise click.UsageError(str(exc)) from None
    the_shard = parse_shard_option(shard)
    options = build_options(formats=fmts, **opts)
    err = stderr_console()
    report = err if json_out else stdout_console()
    callbacks = ProgressCallbacks(err, json_out, options)
    previous = signal.signal(signal.SIGTERM, sigterm_as_interrupt)
    try:
        with callbacks:
            summary = run_batch(inputs, out_dir, options, workers=workers, force=force, shard=the_shard,
                                overlay_dir=overlay_dir, callbacks=callbacks, collect_results=json_out)
    except BatchInterrupted as exc:
        done = exc.summary.totals.documents
        err.print(f"[yellow]Interrupted[/]: {done} document(s) done and kept. "
                  "Rerun the same command to resume; finished outputs are skipped.", soft_wrap=True)
        sys.exit(130)
    except BatchAborted as exc:
        err.print(f"[red]error[/]: {esc(exc)}", soft_wrap=True)
        sys.exit(1)
    except DocvlmError as exc:  # expand_inputs: a path given on the command line does not exist, ...
        raise click.UsageError(str(exc)) from None
    finally:
        signal.signal(signal.SIGTERM, previous)
    print_summary(report, summary)
    bad = summary.totals.failure + (summary.totals.partial if strict else 0)
    sys.exit(1 if bad else 0)


@click.command(short_help="Draw a result's boxes over its pages and list them.")
@click.argument("result_json", type=click.Path(exists=True, dir_okay=False))
@click.option("--out", "out_dir", type=click.Path(file_okay=False), help="Where to write PNGs [default: next to RESULT_JSON].")
@click.option("--words", is_flag=True, help="Also draw word boxes (labelled line.word).")
@click.option("--source", type=click.Path(dir_okay=False), help="The source file, if it moved since conversion.")
@click.option("--password", help="Password of an encrypted source PDF.")
@click.option("--max-page-pixels", type=int,
              help="Refuse to draw a page larger than this, as rendering does [default: 80000000].")
def show(result_json: str, out_dir: str | None, words: bool, source: str | None, password: str | None,
         max_page_pixels: int | None) -> None:
    """Draw the boxes of a result over its pages (PNGs, colored by confidence) and list them.

    An extraction result (written by `docvlm extract`) gets its field boxes drawn and a table of its fields.
    """
    import json

    from pydantic import ValidationError
    from rich.table import Table

    from docvlm.datamodel import DocumentResult
    from docvlm.errors import DocvlmError
    from docvlm.overlay import find_source, render_overlays

    path = Path(result_json)
    data = path.read_bytes()
    try:
        parsed = json.loads(data)
    except ValueError as exc:
        raise click.UsageError(f"{result_json}: not a docvlm result ({exc.__class__.__name__}); "
                               "give a JSON written by `docvlm convert` or `docvlm extract`") from None
    if isinstance(parsed, dict) and parsed.get("kind") == "extraction":
        from docvlm.cli.extract_cmds import show_extraction

        try:
            show_extraction(result_json, out_dir, source, password)
        except DocvlmError as exc:  # a page size over the cap, an output path that leaves --out
            raise click.UsageError(f"{result_json}: {exc}") from None
        return
    try:
        result = DocumentResult.model_validate_json(data)
    except (ValidationError, ValueError) as exc:
        raise click.UsageError(f"{result_json}: not a docvlm result ({exc.__class__.__name__}); "
                               "give a JSON written by `docvlm convert` or `docvlm extract`") from None
    if result.status == "failure":
        exit_failed_result(result_json, result.errors)
    src = Path(source) if source else find_source(result, path)
    stem = path.name[:-5] if path.name.endswith(".json") else path.name
    try:
        pages = render_overlays(result, src, out_dir or path.parent, relpath=stem, words=words, password=password,
                                max_page_pixels=max_page_pixels)
    except DocvlmError as exc:  # the page size in a result file is not trusted; an output path leaving --out
        raise click.UsageError(f"{result_json}: {exc}") from None
    console = stdout_console()
    table = Table(title=result.source.path, show_header=True)
    for col in (PAGE_COLUMN, "#", "text", "bbox_page_px", "confidence"):
        table.add_column(col, justify="right" if col in (PAGE_COLUMN, "#", "confidence") else "left")
    for page in result.pages:
        for i, line in enumerate(page.lines):
            conf = "" if line.confidence is None else f"{line.confidence:.2f}"
            style = confidence_style(line.confidence)
            table.add_row(str(page.index + 1), str(i), line.text, fmt_box(line.bbox_page_px), f"[{style}]{conf}[/]")
            if words:
                for j, w in enumerate(line.words):
                    wc = "" if w.confidence is None else f"{w.confidence:.2f}"
                    table.add_row("", f"{i}.{j}", f"  {w.text}", fmt_box(w.bbox_page_px),
                                  f"[{confidence_style(w.confidence)}]{wc}[/]")
    console.print(table)
    notes = {p.note for p in pages if p.note}
    for note in sorted(notes):
        stderr_console().print(f"[yellow]note[/]: {note}", soft_wrap=True)
    for p in pages:
        console.print(f"wrote {p.png_path}", soft_wrap=True)


@click.command("summary", short_help="Merge the run summaries of OUT_DIR: totals, failures.")
@click.argument("out_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--json", "json_out", is_flag=True, help="Print the merged summary as JSON.")
def summary_cmd(out_dir: str, json_out: bool) -> None:
    """Merge the run summaries of OUT_DIR (all shards): totals, failed and missing inputs. Exit 1 if any."""
    from docvlm.batch import merge_summaries
    from docvlm.errors import UsageError

    try:
        merged = merge_summaries(out_dir)
    except UsageError as exc:
        raise click.UsageError(str(exc)) from None
    if json_out:
        sys.stdout.write(merged.model_dump_json(indent=2) + "\n")
    else:
        console = stdout_console()
        console.print(f"summaries: {', '.join(merged.summary_files)}")
        print_summary(console, merged)
        if merged.missing:
            console.print(f"[red]missing[/] ({len(merged.missing)} input(s) done by no shard):")
            for key in merged.missing[:200]:
                console.print(f"  {key}")
    sys.exit(1 if merged.failed or merged.missing else 0)


COMMANDS: list[click.Command] = [convert, show, summary_cmd]
