"""Writers: a `DocumentResult` on disk, one module per format, chosen from a mapping of format names.

| format | module | what |
|---|---|---|
| json | `docvlm.writers.json` | the validated result (and `--export-schema`) |
| md | `docvlm.writers.markdown` | Markdown in reading order: headings, tables, no furniture by default |
| hocr | `docvlm.writers.hocr` | hOCR XHTML (`ocr_page`, `ocr_line`, `ocrx_word`) |
| pdf | `docvlm.writers.pdf` | searchable PDF (invisible text over each word) |

Every writer writes atomically through `docvlm.writers.files`, which sits below them and imports none of
them (no import circle). Other formats plug in through `register_writer`; the CLI validates `--format`
against `WRITERS`. `python -m docvlm.writers --export-schema [PATH]` regenerates the result schema.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from docvlm.datamodel import DocumentResult
from docvlm.writers.files import atomic_write_bytes, atomic_write_text, output_path, safe_relpath
from docvlm.writers.hocr import HocrWriter
from docvlm.writers.json import SCHEMA_PATH, JsonWriter, export_schema, main
from docvlm.writers.markdown import (
    MarkdownWriter,
    reading_order_paragraphs,
    render_markdown,
    render_page_markdown,
)
from docvlm.writers.pdf import SearchablePdfWriter

if TYPE_CHECKING:
    from docvlm.options import ConvertOptions


class Writer(Protocol):
    """One output format. `write` must be atomic (use `atomic_write_bytes`)."""

    name: str
    suffix: str

    def write(self, result: DocumentResult, source_path: str | Path | None, out_path: Path) -> None:
        """Write `result` (converted from `source_path`, which may be gone) to `out_path`."""
        ...


WRITERS: dict[str, Writer] = {
    "json": JsonWriter(),
    "md": MarkdownWriter(),
    "pdf": SearchablePdfWriter(),
    "hocr": HocrWriter(),
}
"""Format name -> writer; `--format` picks from these."""


def register_writer(writer: Writer) -> None:
    """Make a format available to `--format`."""
    WRITERS[writer.name] = writer


def writer_for(fmt: str, options: ConvertOptions | None = None) -> Writer:
    """The registered writer for `fmt`, configured by the run's options when it takes any (pdf: --redo-text)."""
    writer = WRITERS[fmt]
    configure = getattr(writer, "with_options", None)
    return configure(options) if configure is not None and options is not None else writer


def parse_formats(spec: str | Sequence[str]) -> tuple[str, ...]:
    """'json,md' -> ('json', 'md'); JSON is always written (resume reads it). Raises ValueError on unknown names."""
    names = spec.split(",") if isinstance(spec, str) else list(spec)
    out: list[str] = []
    for name in (n.strip().lower() for n in names):
        if not name:
            continue
        if name not in WRITERS:
            raise ValueError(f"unknown format {name!r}; choose from {', '.join(sorted(WRITERS))}")
        if name not in out:
            out.append(name)
    if "json" not in out:
        out.insert(0, "json")
    return tuple(out)


__all__ = [
    "SCHEMA_PATH",
    "WRITERS",
    "HocrWriter",
    "JsonWriter",
    "MarkdownWriter",
    "SearchablePdfWriter",
    "Writer",
    "atomic_write_bytes",
    "atomic_write_text",
    "export_schema",
    "main",
    "output_path",
    "parse_formats",
    "reading_order_paragraphs",
    "register_writer",
    "render_markdown",
    "render_page_markdown",
    "safe_relpath",
    "writer_for",
]
