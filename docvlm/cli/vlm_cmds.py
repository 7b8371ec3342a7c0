"""`docvlm plan`, `docvlm ground`, `docvlm reparse`: options in, docvlm.plan / pipeline / reparse called, rendered.

None of these imports torch: `plan` and `reparse` never load a model; `ground` loads one only through the
engine the options pick (and the default `ocr` engine needs none).
Exit codes: 0 all good, 1 some input failed, 2 usage error.
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

import click

from docvlm.cli._common import (
    PAGE_COLUMN,
    build_options,
    engine_options,
    esc,
    fmt_box,
    source_options,
    status_style,
    stderr_console,
    stdout_console,
)
from docvlm.engines.registry import engine_spec
from docvlm.families import FAMILY_NAMES


@click.command(short_help="Show how each page would be encoded for a vision-language model.")
@click.argument("inputs", nargs=-1, required=True, type=click.Path(path_type=str))
@click.option("--json", "json_out", is_flag=True, help="Print the plans as JSON on stdout.")
@click.option("--family", type=click.Choice(FAMILY_NAMES), default=None,
              help="Model family whose resize rule applies [default: the model's, DOCVLM_FAMILY or qwen2.5].")
@click.option("--task", "task_kind", type=click.Choice(["read", "ground", "extract"]), default="read",
              show_default=True, help="extract adds a whole-page thumbnail to tiled pages.")
@click.option("--max-visual-tokens", type=int,
              help="Per-request visual-token budget [default: 1280 on CPU, ~512 per GiB of a GPU].")
@click.option("--min-text-px", type=float, metavar="PX",
              help="Readability floor: small-text line height in encoded pixels [16].")
@click.option("--model", help="Hub id or local folder whose size sets the memory estimate "
                              "[default: the family's smallest released model].")
@click.option("--dtype", type=click.Choice(["auto", "bf16", "fp16", "fp32"]), help="Weights dtype [auto].")
@click.option("--quant", type=click.Choice(["auto", "none", "4bit", "8bit"]), help="Quantization [auto].")
@click.option("--batch-size", type=int, help="Tiles per generate call [4].")
@click.option("--max-new-tokens", type=int, help="Output tokens per tile [1024].")
@click.option("--gpu-memory", type=float, metavar="GIB",
              help="Plan for a GPU of this memory: token budget and memory check [default: nvidia-smi's first "
                   "GPU, else the CPU].")
@click.option("--tiles", "show_tiles", is_flag=True, help="List every tile (crop_page_px, encoded size).")
@source_options
def plan(inputs: tuple[str, ...], json_out: bool, family: str | None, task_kind: str, show_tiles: bool,
         gpu_memory: float | None, **opts: Any) -> None:
    """Show how each page would be encoded for a Qwen-VL model and the memory the run needs (no model loaded).

    Per page: small-text estimate, readability floor, scale decision, native or tiled, encoded sizes, visual
    tokens and the reason; then totals and the memory estimate (weights, vision activations, KV cache).
    """
    from docvlm.errors import InputError, UsageError
    from docvlm.plan import iter_plan_document
    from docvlm.sources import check_page_selection, expand_inputs

    options = build_options(**opts)
    fam = family or options.family or _model_family(options.model) or "qwen2.5"
    try:
        check_page_selection(options.pages)
        files = expand_inputs(inputs)
    except (InputError, UsageError) as exc:
        raise click.UsageError(str(exc)) from None
    device = _plan_device(options, gpu_memory)
    rows = []  # every row is printed as soon as its page is planned: a 5,000-page PDF streams
    if json_out:
        sys.stdout.write(f'{{\n  "family": {json.dumps(fam)},\n  "pages": [')
    else:
        stdout_console().print(f"[bold]encoding plan ({fam})[/]: file, page, small text, floor, scale, mode, "
                               "tiles, encoded sizes, visual tokens, reason", highlight=False)
    for f in files:
        for r in iter_plan_document(str(f.path), options, fam, task_kind,  # type: ignore[arg-type]
                                    display_path=f.relpath, device_memory_bytes=device[1] if device[2] else None):
            if json_out:
                row = {"path": r.path, "page": r.page, "error": r.error, "seconds": round(r.seconds, 4),
                       "plan": r.plan.model_dump(mode="json") if r.plan else None}
                sys.stdout.write(("\n    " if not rows else ",\n    ") + json.dumps(row))
                sys.stdout.flush()
            else:
                _print_plan_row(r, show_tiles)
            rows.append(r)
    failed = [r for r in rows if r.error]
    planned = [r for r in rows if r.plan is not None]
    total_tokens = sum(r.plan.visual_tokens for r in planned)
    total_tiles = sum(len(r.plan.tiles) for r in planned)
    memory, memory_note = _memory(options, fam, planned, device)
    if json_out:
        tail = {
            "totals": {"pages": len(planned), "failed": len(failed), "tiles": total_tiles,
                       "visual_tokens": total_tokens},
            "memory": asdict(memory) if memory else None,
            "memory_note": memory_note,
        }
        sys.stdout.write("\n  ],\n" + json.dumps(tail, indent=2)[2:] + "\n")
    else:
        n = len(planned)
        stdout_console().print(f"total: {n} page(s), {total_tiles} tile(s), {total_tokens} visual tokens"
                               + (f", {total_tokens / n:.0f} per page" if n else ""))
        _print_memory(memory, memory_note)
    if failed:
        sys.exit(1)


def _model_family(model: str | None) -> str | None:
    from docvlm.families import family_for_model_type, family_for_served_name
    from docvlm.memory import find_model_shape

    if not model:
        return None
    config = Path(model) / "config.json"
    if config.is_file():
        try:
            found = family_for_model_type(json.loads(config.read_text(encoding="utf-8")).get("model_type"))
        except (OSError, ValueError):
            found = None
        if found:
            return found
    shape, _ = find_model_shape(model, "qwen2.5")
    return shape.family if shape else family_for_served_name(model)


def _plan_device(options: Any, gpu_memory: float | None) -> tuple[str, int | None, bool]:
    """(name, memory bytes, is a GPU) the plan is made for: --gpu-memory, else nvidia-smi's first GPU (no
    torch), else this machine's CPU RAM. A GPU sets the per-request token budget as the hf engine would."""
    from docvlm.memory import GIB, gpu_memory_bytes, host_memory_bytes

    if gpu_memory is not None:
        return f"GPU ({gpu_memory:g} GiB, --gpu-memory)", int(gpu_memory * GIB), True
    if options.device != "cpu" and (found := gpu_memory_bytes()) is not None:
        return found[0], found[1], True
    return "CPU RAM (no GPU found; --gpu-memory GIB plans for a GPU)", host_memory_bytes(), False


def _memory(options: Any, fam: str, planned: list, device: tuple[str, int | None, bool]) -> tuple[Any, str]:
    """The run's memory estimate for the largest planned tile (None and why when the model is unknown)."""
    from docvlm.families import get_family
    from docvlm.memory import estimate_memory, find_model_shape
    from docvlm.plan import FAMILIES

    if fam not in FAMILIES:  # the memory model below is Qwen-VL's; other families give their card's figures
        if not planned:
            return None, "no page planned: memory not estimated"
        max_tile = max(t.visual_tokens for r in planned for t in r.plan.tiles)
        return None, get_family(fam).memory_note(max_tile, options.batch_size, options.max_new_tokens)
    shape, source = find_model_shape(options.model, fam)
    if shape is None:
        return None, source
    if not planned:
        return None, "no page planned: memory not estimated"
    max_tile = max(t.visual_tokens for r in planned for t in r.plan.tiles)
    name, total, on_gpu = device
    result = estimate_memory(shape, source, max_tile_tokens=max_tile, batch=options.batch_size,
                             max_new_tokens=options.max_new_tokens, dtype=options.dtype, quant=options.quant,
                             device_name=name, device_bytes=total, on_gpu=on_gpu)
    return result, source


def _print_plan_row(r: Any, show_tiles: bool) -> None:
    """One page's plan on one line (and its tiles with `show_tiles`), printed as soon as it is planned."""
    console = stdout_console()
    page = "-" if r.page < 0 else str(r.page + 1)
    if r.plan is None:
        console.print(f"[bold]{esc(r.path)}[/] p{page}: [red]error[/] {esc(r.error)}", highlight=False, soft_wrap=True)
        return
    p = r.plan
    sizes = sorted({f"{t.encoded_size[0]}x{t.encoded_size[1]}" for t in p.tiles})
    small = "none" if p.text_line_px is None else f"{p.text_line_px:.1f} px ({p.text_height_source})"
    floor = "" if p.min_text_px is None else f", floor {p.min_text_px:g} px"
    got = "" if p.text_line_px is None else f" -> {p.text_line_px * p.scale:.1f} px"
    console.print(f"[bold]{r.path}[/] p{page}: small text {small}{floor}, x{p.scale:.3f} {p.scale_rule or ''}{got}, "
                  f"{p.mode}, {len(p.tiles)} tile(s) {', '.join(sizes)}, {p.visual_tokens} tokens: {p.reason}",
                  highlight=False, soft_wrap=True)
    if show_tiles:
        for t in p.tiles:
            console.print(f"    {t.kind} {t.index}: {t.encoded_size[0]}x{t.encoded_size[1]} crop "
                          f"{list(t.crop_page_px)}, {t.visual_tokens} tokens", highlight=False)


def _print_memory(memory: Any, note: str) -> None:
    from docvlm.memory import GIB

    console = stdout_console()
    if memory is None:
        console.print(f"[yellow]memory[/]: {note}", highlight=False)
        return
    m = memory
    quant = "" if m.quant == "none" else f" {m.quant}"
    console.print(
        f"memory for {m.model} ({m.params / 1e9:.2f}B params, {m.dtype}{quant}; {m.source}), "
        f"batch {m.batch} x (largest tile {m.max_tile_tokens} visual tokens, prompt {m.prompt_tokens} + "
        f"{m.new_tokens} new tokens):", highlight=False)
    console.print(
        f"  weights {m.weights_bytes / GIB:.2f} GiB + vision activations {m.vision_bytes / GIB:.2f} GiB "
        f"(prefill {m.prefill_bytes / GIB:.2f}; the larger counts) + KV cache {m.kv_cache_bytes / GIB:.2f} GiB "
        f"+ context {m.context_bytes / GIB:.2f} GiB = [bold]{m.total_bytes / GIB:.2f} GiB[/]", highlight=False)
    style = "red" if m.fits is False else "green" if m.fits else "yellow"
    label = "warning" if m.fits is False else "ok" if m.fits else "note"
    console.print(f"  [{style}]{label}[/]: {m.reason}", highlight=False)


@click.command(short_help="Find QUERY on each page and print its boxes.")
@click.argument("input_path", metavar="IMAGE_OR_PDF", type=click.Path(path_type=str))
@click.argument("query")
@click.option("--json", "json_out", is_flag=True, help="Print the boxes as JSON on stdout.")
@click.option("--overlay", "overlay_dir", type=click.Path(file_okay=False), help="Write overlay PNGs here.")
@source_options
@engine_options
def ground(input_path: str, query: str, json_out: bool, overlay_dir: str | None, **opts: Any) -> None:
    """Find QUERY (e.g. "the total amount") on each page and print its boxes in page pixels.

    On the offline ocr engine a query is answered by the extraction rules when it names a field ("the total
    amount", "the date", "the merchant"), else by literal and fuzzy matches of the printed text; each box says
    how it was found. Exit 1 when nothing is found (the message says what would find it: a VLM engine).
    """
    from docvlm.engines.base import Task
    from docvlm.errors import EngineError
    from docvlm.grounding import ground_matches
    from docvlm.pipeline import convert_document

    if not query.strip():
        raise click.UsageError("QUERY is empty: say what to look for, e.g. \"the total amount\"")
    if not Path(input_path).exists():
        raise click.UsageError(f"{input_path}: no such file")
    options = build_options(**opts)
    if not engine_spec(options.engine).answers_queries:  # no model to ask: rules and text matching on its read
        _ground_offline(input_path, query, json_out, overlay_dir, options)
        return
    try:
        result = convert_document(input_path, options, task=Task(kind="ground", query=query))
    except EngineError as exc:
        stderr_console().print(f"[red]error[/]: {esc(exc)}")
        sys.exit(1)
    matches = ground_matches(result, query)
    if json_out:
        click.echo(json.dumps({
            "path": result.source.path, "query": query, "status": result.status,
            "boxes": [m.model_dump(mode="json") for m in matches],
            "errors": [e.model_dump(mode="json") for p in result.pages for e in p.errors]
            + [e.model_dump(mode="json") for e in result.errors],
        }, indent=2))
    else:
        from rich.table import Table

        table = Table(title=f"{result.source.path}: {query!r}")
        for col in (PAGE_COLUMN, "label", "text", "bbox_page_px"):
            table.add_column(col, justify="right" if col == PAGE_COLUMN else "left")
        for m in matches:
            table.add_row(str(m.page + 1), m.label or "", m.text, fmt_box(m.bbox_page_px))
        console = stdout_console()
        console.print(table)
        console.print(f"[{status_style(result.status)}]{result.status}[/]: {len(matches)} box(es)")
        for e in [e for p in result.pages for e in p.errors] + list(result.errors):
            stderr_console().print(f"[yellow]{e.code}[/]: {esc(e.message)}")
    if overlay_dir:
        from docvlm.overlay import render_overlays

        for p in render_overlays(result, input_path, overlay_dir, relpath=Path(input_path).name,
                                 password=options.password):
            stderr_console().print(f"wrote {p.png_path}")
    if result.status == "failure":
        sys.exit(1)


def _ground_offline(input_path: str, query: str, json_out: bool, overlay_dir: str | None, options: Any) -> None:
    """`ground` on the ocr engine: field rules, literal and fuzzy text (docvlm.extract.ground); exit 1 when
    nothing is found, with what would find it."""
    from docvlm.extract.ground import ground_document

    got, read = ground_document(input_path, options, query)
    if json_out:
        click.echo(json.dumps({
            "path": got.path, "query": query, "status": got.status, "field": got.field,
            "boxes": [h.model_dump(mode="json") for h in got.hits], "message": got.message,
            "errors": [e.model_dump(mode="json") for e in got.errors]}, indent=2))
    else:
        from rich.table import Table

        table = Table(title=f"{got.path}: {query!r}")
        for col in (PAGE_COLUMN, "found by", "text", "bbox_page_px", "how"):
            table.add_column(col, justify="right" if col == PAGE_COLUMN else "left", overflow="fold")
        for h in got.hits:
            table.add_row(str(h.page + 1), h.found_by, h.text, fmt_box(h.bbox_page_px), h.how)
        stdout_console().print(table)
        style = {"found": "green", "not_found": "yellow", "failure": "red"}[got.status]
        stdout_console().print(f"[{style}]{got.status}[/]: {len(got.hits)} box(es)", highlight=False)
        for e in got.errors:
            stderr_console().print(f"[yellow]{e.code}[/]: {esc(e.message)}", soft_wrap=True)
    if got.message:
        stderr_console().print(f"[yellow]{got.status}[/]: {esc(got.message)}", soft_wrap=True, highlight=False)
    if overlay_dir:
        from docvlm.overlay import OverlayBox, write_page_overlays

        def boxes_of(page: Any) -> list[OverlayBox]:
            return [OverlayBox(h.bbox_page_px, f"{h.found_by}: {h.text}"[:40], h.score)
                    for h in got.hits if h.page == page.index]

        for p in write_page_overlays(read, input_path, overlay_dir, boxes_of, suffix=".ground.page",
                                     relpath=Path(input_path).name, password=options.password,
                                     max_page_pixels=options.max_page_pixels):
            stderr_console().print(f"wrote {p.png_path}")
    if got.status != "found":
        sys.exit(1)


@click.command(short_help="Recompute a VLM result's boxes from its stored plan.")
@click.argument("result_json", type=click.Path(exists=True, dir_okay=False))
@click.option("-o", "--out", "out_path", type=click.Path(dir_okay=False),
              help="Write the reparsed result here [default: overwrite RESULT_JSON, atomically].")
@click.option("--family", type=click.Choice(FAMILY_NAMES), default=None,
              help="Read the raw outputs in this family's convention instead of the one the run declared "
                   "(e.g. a served model that was not the family the run assumed).")
def reparse(result_json: str, out_path: str | None, family: str | None) -> None:
    """Recompute every box of a VLM result from its stored plan and raw outputs (no model is loaded)."""
    from pydantic import ValidationError

    from docvlm.datamodel import DocumentResult
    from docvlm.reparse import reparse_result
    from docvlm.writers import atomic_write_text

    path = Path(result_json)
    try:
        before = DocumentResult.model_validate_json(path.read_bytes())
    except (ValidationError, ValueError) as exc:
        raise click.UsageError(f"{result_json}: not a docvlm result ({exc.__class__.__name__}); "
                               "give a JSON written by `docvlm convert`") from None
    after = reparse_result(before, family=family)
    dest = Path(out_path) if out_path else path
    atomic_write_text(dest, after.model_dump_json(indent=2) + "\n")
    console = stdout_console()
    n_plan = sum(1 for p in after.pages if p.plan is not None)
    lines_before = sum(len(p.lines) for p in before.pages)
    lines_after = sum(len(p.lines) for p in after.pages)
    errs = sum(len(p.errors) for p in after.pages)
    console.print(f"{after.source.path}: {n_plan}/{len(after.pages)} page(s) with a plan reparsed; "
                  f"lines {lines_before} -> {lines_after}; {errs} page error(s); "
                  f"status [{status_style(after.status)}]{after.status}[/]")
    if n_plan == 0:
        stderr_console().print("[yellow]note[/]: no page has a plan (not a VLM result): nothing to reparse")
    console.print(f"wrote {dest}")


COMMANDS: list[click.Command] = [plan, ground, reparse]
