"""Writers: a `DocumentResult` on disk as JSON, Markdown (and later PDF, hOCR), always written atomically.

Atomic means: write to a temp file in the destination folder, fsync, `os.replace`. A run killed at any moment
leaves either the old file or the new one, never half of one.

Other formats plug in through `register_writer`; the CLI validates `--format` against `WRITERS`.
Run `python -m docvlm.writers --export-schema [PATH]` to regenerate schemas/docvlm-result.schema.json.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import tempfile
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Protocol

from docvlm.datamodel import DocumentResult, Line, PageResult

if TYPE_CHECKING:
    from docvlm.options import ConvertOptions

SCHEMA_PATH = Path(__file__).resolve().parent.parent / "schemas" / "docvlm-result.schema.json"
"""Where the exported JSON Schema of `DocumentResult` is checked in (repo layout)."""


# --- atomic writes -----------------------------------------------------------------------------------------


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write `data` to `path` atomically: temp file in the same folder, fsync, rename over the target."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        # Ctrl-C or a full disk in the middle: the old file is untouched, the temp file goes away
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    _fsync_dir(path.parent)


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def _fsync_dir(folder: Path) -> None:
    """Persist the rename itself (POSIX); a no-op where directories cannot be opened."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# --- safe output names -------------------------------------------------------------------------------------

_UNSAFE = re.compile(r"[^\w.\- +=,@()\[\]]", re.UNICODE)
_WINDOWS_RESERVED = {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(10)), *(f"lpt{i}" for i in range(10))}


def safe_relpath(relpath: str) -> str:
    """A relative output path that mirrors `relpath` but cannot escape the output folder.

    Backslashes count as separators, '.', '..' and empty parts are dropped, control and shell-hostile
    characters become '_', leading dots are removed (no hidden files), each part is at most 200 bytes.
    """
    parts = []
    for raw in re.split(r"[\\/]+", relpath):
        part = unicodedata.normalize("NFC", raw).strip()
        if part in ("", ".", ".."):
            continue
        part = _UNSAFE.sub("_", part).lstrip(".").strip()
        if not part:
            part = "_"
        if part.split(".")[0].lower() in _WINDOWS_RESERVED:
            part = "_" + part
        while len(part.encode("utf-8")) > 200:
            part = part[:-1]
        parts.append(part)
    return "/".join(parts) or "_"


def output_path(out_dir: str | Path, relpath: str, suffix: str) -> Path:
    """`out/sub/dir/name.pdf` + suffix (e.g. '.json'), guaranteed inside `out_dir`."""
    root = Path(out_dir).resolve()
    target = (root / PurePosixPath(safe_relpath(relpath) + suffix)).resolve()
    if root != target and root not in target.parents:  # pragma: no cover - safe_relpath already prevents it
        raise ValueError(f"output path {target} escapes {root}")
    return target


# --- writer registry ---------------------------------------------------------------------------------------


class Writer(Protocol):
    """One output format. `write` must be atomic (use `atomic_write_bytes`)."""

    name: str
    suffix: str

    def write(self, result: DocumentResult, source_path: str | Path | None, out_path: Path) -> None:
        """Write `result` (converted from `source_path`, which may be gone) to `out_path`."""
        ...


@dataclass(frozen=True)
class JsonWriter:
    name: str = "json"
    suffix: str = ".json"

    def write(self, result: DocumentResult, source_path: str | Path | None, out_path: Path) -> None:
        atomic_write_text(out_path, result.model_dump_json(indent=2) + "\n")


@dataclass(frozen=True)
class MarkdownWriter:
    name: str = "md"
    suffix: str = ".md"

    def write(self, result: DocumentResult, source_path: str | Path | None, out_path: Path) -> None:
        atomic_write_text(out_path, render_markdown(result))


WRITERS: dict[str, Writer] = {}


def register_writer(writer: Writer) -> None:
    """Make a format available to `--format` (e.g. the pdf and hocr writers)."""
    WRITERS[writer.name] = writer


register_writer(JsonWriter())
register_writer(MarkdownWriter())


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


# --- Markdown in reading order -----------------------------------------------------------------------------


def render_markdown(result: DocumentResult) -> str:
    """The document as Markdown: '## Page N' per page, columns read one after the other, paragraphs by gaps."""
    out = [f"# {_escape_inline(result.source.path)}", ""]
    for err in result.errors:
        out += [f"> **error** ({err.code}): {_escape_inline(err.message)}", ""]
    for page in result.pages:
        out += [f"## Page {page.index + 1}", ""]
        for err in page.errors:
            out += [f"> **error** ({err.code}): {_escape_inline(err.message)}", ""]
        for para in reading_order_paragraphs(page):
            out += ["\n".join(_escape_block(text) for text in para), ""]
    return "\n".join(out).rstrip() + "\n"


def reading_order_paragraphs(page: PageResult) -> list[list[str]]:
    """Paragraphs (lists of row texts) in reading order.

    The page is first cut into horizontal bands at blank gaps of two line heights or more that run across the
    whole page (a grid of cards reads row by row). In each band, columns are found as (almost) empty vertical
    strips (gutters) in the x-projection of the narrower lines; a line that reaches into a gutter (a title, a
    centered page number) closes the columns above it, so a two-column page reads left column, right column,
    then what comes below. Within a column, lines that overlap vertically form a row (read left to right) and
    a vertical gap larger than ~0.8 line heights starts a new paragraph.
    """
    lines = [ln for ln in page.lines if ln.text.strip()]
    if not lines:
        return []
    line_h = max(1.0, statistics.median(ln.bbox_page_px[3] - ln.bbox_page_px[1] for ln in lines))
    paragraphs: list[list[str]] = []
    for band in _horizontal_bands(lines, 2.0 * line_h):
        paragraphs.extend(_read_band(band, page.width_px, line_h))
    return paragraphs


def _horizontal_bands(lines: list[Line], min_gap: float) -> list[list[Line]]:
    bands: list[list[Line]] = []
    bottom = None
    for ln in sorted(lines, key=lambda ln: (ln.bbox_page_px[1], ln.bbox_page_px[0])):
        if bottom is None or ln.bbox_page_px[1] - bottom >= min_gap:
            bands.append([])
            bottom = ln.bbox_page_px[3]
        bands[-1].append(ln)
        bottom = max(bottom, ln.bbox_page_px[3])
    return bands


def _read_band(lines: list[Line], width_px: int, line_h: float) -> list[list[str]]:
    gutters = _find_gutters(lines, width_px, line_h)

    def crosses(ln: Line) -> bool:
        return any(ln.bbox_page_px[0] < g1 - 1 and ln.bbox_page_px[2] > g0 + 1 for g0, g1 in gutters)

    def column_of(ln: Line) -> int:
        cx = (ln.bbox_page_px[0] + ln.bbox_page_px[2]) / 2
        return sum(1 for g0, g1 in gutters if cx > (g0 + g1) / 2)

    ordered = sorted(lines, key=lambda ln: (ln.bbox_page_px[1], ln.bbox_page_px[0]))
    paragraphs: list[list[str]] = []
    band: list[Line] = []

    def flush() -> None:
        for col in range(len(gutters) + 1):
            paragraphs.extend(_paragraphs([ln for ln in band if column_of(ln) == col], line_h))
        band.clear()

    for ln in ordered:
        if gutters and crosses(ln):
            flush()
            band.append(ln)
            flush()
        else:
            band.append(ln)
    flush()
    return paragraphs


def _find_gutters(lines: list[Line], width_px: int, line_h: float) -> list[tuple[float, float]]:
    """x-intervals of vertical gaps that separate columns (each side must hold at least 3 lines).

    A few short lines inside the gap (a centered page number) are tolerated; they cross the gutter, so they
    are read in page order between the column bands.
    """
    if width_px <= 0 or len(lines) < 6:
        return []
    content_x0 = min(ln.bbox_page_px[0] for ln in lines)
    content_x1 = max(ln.bbox_page_px[2] for ln in lines)
    content_w = content_x1 - content_x0
    narrow = [ln for ln in lines if ln.bbox_page_px[2] - ln.bbox_page_px[0] < 0.55 * content_w]
    if len(narrow) < 6:
        return []
    size = int(content_w) + 2
    delta = [0] * (size + 1)
    for ln in narrow:
        a = max(0, int(ln.bbox_page_px[0] - content_x0))
        b = min(size - 1, int(ln.bbox_page_px[2] - content_x0))
        delta[a] += 1
        delta[b + 1] -= 1
    tolerance = max(1, len(narrow) // 30)
    covered, run = [], 0
    for d in delta[:size]:
        run += d
        covered.append(run > tolerance)
    min_gap = max(line_h * 1.2, content_w * 0.015)
    gutters: list[tuple[float, float]] = []
    x = 0
    while x < size:
        if covered[x]:
            x += 1
            continue
        start = x
        while x < size and not covered[x]:
            x += 1
        if x - start >= min_gap and start > 0 and x < size:
            g0, g1 = content_x0 + start, content_x0 + x
            left = sum(1 for ln in narrow if ln.bbox_page_px[2] <= g0 + 1)
            right = sum(1 for ln in narrow if ln.bbox_page_px[0] >= g1 - 1)
            if left >= 3 and right >= 3:
                gutters.append((g0, g1))
    return gutters


def _paragraphs(lines: list[Line], line_h: float) -> list[list[str]]:
    rows: list[list[Line]] = []
    for ln in sorted(lines, key=lambda ln: (ln.bbox_page_px[1], ln.bbox_page_px[0])):
        if rows:
            last = rows[-1]
            top = min(x.bbox_page_px[1] for x in last)
            bottom = max(x.bbox_page_px[3] for x in last)
            overlap = min(bottom, ln.bbox_page_px[3]) - max(top, ln.bbox_page_px[1])
            if overlap > 0.5 * min(bottom - top, ln.bbox_page_px[3] - ln.bbox_page_px[1]):
                last.append(ln)
                continue
        rows.append([ln])
    paragraphs: list[list[str]] = []
    prev_bottom: float | None = None
    for row in rows:
        top = min(x.bbox_page_px[1] for x in row)
        text = " ".join(x.text.strip() for x in sorted(row, key=lambda x: x.bbox_page_px[0]))
        if prev_bottom is None or top - prev_bottom > 0.8 * line_h:
            paragraphs.append([text])
        else:
            paragraphs[-1].append(text)
        prev_bottom = max(x.bbox_page_px[3] for x in row)
    return paragraphs


def _escape_block(text: str) -> str:
    """Keep OCR text from turning into Markdown structure (headings, lists, quotes, tables)."""
    text = _escape_inline(text)
    if re.match(r"^(#{1,6}\s|[>*+\-|]|\d+[.)]\s)", text):
        text = "\\" + text
    return text


def _escape_inline(text: str) -> str:
    return text.replace("\\", "\\\\").replace("`", "\\`").replace("<", "&lt;").replace("\n", " ")


# --- JSON Schema export ------------------------------------------------------------------------------------


def export_schema() -> str:
    """The JSON Schema of `DocumentResult`, as checked in at schemas/docvlm-result.schema.json."""
    schema = DocumentResult.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://github.com/docvlm/docvlm/schemas/docvlm-result.schema.json"
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m docvlm.writers", description=__doc__.splitlines()[0])
    parser.add_argument("--export-schema", nargs="?", const=str(SCHEMA_PATH), metavar="PATH",
                        help=f"write the DocumentResult JSON Schema (default {SCHEMA_PATH})")
    args = parser.parse_args(argv)
    if not args.export_schema:
        parser.print_help()
        return 2
    atomic_write_text(args.export_schema, export_schema())
    print(f"wrote {args.export_schema}")
    return 0


def _register_document_writers() -> None:
    """The searchable-PDF and hOCR writers (their modules import PyMuPDF only when they write)."""
    from docvlm.hocr import HocrWriter
    from docvlm.writers_pdf import SearchablePdfWriter

    register_writer(SearchablePdfWriter())
    register_writer(HocrWriter())


_register_document_writers()


if __name__ == "__main__":
    raise SystemExit(main())
