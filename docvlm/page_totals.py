"""How many pages a run will read from a file, cheaply (no hashing, no rendering): for progress totals.

`selected_page_count(path, options)` opens a PDF for its page count (with `options.password` when it is
encrypted) or an image for its frame count, and applies `options.pages` and `options.max_pages` as the
conversion does. It never raises: a file that cannot be opened counts as None (its conversion will fail
and say why).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from docvlm.options import ConvertOptions

_PDF_MAGIC = b"%PDF"


def selected_page_count(path: str | Path, options: ConvertOptions) -> int | None:
    """Pages of `path` that a conversion with `options` reads; None when the file cannot be opened."""
    try:
        total = _page_count(Path(path), options)
    except Exception:  # noqa: BLE001 - a progress figure: the conversion itself reports what is wrong
        return None
    if total is None:
        return None
    from docvlm.errors import UsageError
    from docvlm.sources import parse_page_selection

    try:
        chosen = len(parse_page_selection(options.pages, total))
    except UsageError:  # a range past the document's end: only the pages that exist can be read
        chosen = min(total, _spec_pages_within(options.pages, total))
    if options.max_pages is not None:
        chosen = min(chosen, options.max_pages)
    return chosen


def _page_count(path: Path, options: ConvertOptions) -> int | None:
    with path.open("rb") as fh:
        head = fh.read(1024)
    if _PDF_MAGIC in head:
        import pymupdf

        with pymupdf.open(path) as doc:
            if doc.needs_pass and not (options.password and doc.authenticate(options.password)):
                return None
            return doc.page_count
    from PIL import Image

    with Image.open(path) as img:
        return int(getattr(img, "n_frames", 1) or 1)


def _spec_pages_within(spec: str | None, total: int) -> int:
    """Pages 1..total named by a selection whose ranges may run past the end ('1-5' over 3 pages: 3)."""
    import re

    chosen: set[int] = set()
    for part in (spec or "").split(","):
        m = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d*))?\s*", part)
        if not m:
            continue
        first = int(m.group(1))
        last = first if m.group(2) is None else int(m.group(2) or total)
        chosen.update(i for i in range(first, last + 1) if 1 <= i <= total)
    return len(chosen)
