"""A deterministic engine for tests (`--engine scripted`): no model, no OCR, lines computed from the page size.

Behaviour is steered by the input file name and by `--model`, so batch tests can provoke every path:

- a file name containing ``raise`` makes `process_pages` raise a RuntimeError (an engine bug on that file);
- a file name containing ``failpage`` returns page 1 as a failed page (a partial document);
- a file name containing ``worker_crash`` kills the worker process (only in a worker, never the main process:
  a process-pool worker or a Ray actor), like a segfault in a native library would;
- ``--model delay=0.2`` sleeps that many seconds per page (a slow engine, for Ctrl-C tests);
- ``--model pid_dir=DIR`` touches DIR/<pid> before each page (tests find worker processes to kill).
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from docvlm.datamodel import EngineInfo, ErrorItem, Line, PageResult, Word
from docvlm.geometry import split_line_into_words

if TYPE_CHECKING:
    from docvlm.engines.base import Task
    from docvlm.options import ConvertOptions
    from docvlm.sources import SourcePage


class ScriptedEngine:
    name = "scripted"

    def __init__(self, options: ConvertOptions) -> None:
        self.options = options
        self.delay = 0.0
        self.pid_dir: str | None = None
        for part in (options.model or "").split(","):
            key, _, value = part.partition("=")
            if key.strip() == "delay" and value:
                self.delay = float(value)
            if key.strip() == "pid_dir" and value:
                self.pid_dir = value

    def info(self) -> EngineInfo:
        return EngineInfo(name=self.name, model=self.options.model, detail="deterministic test engine")

    def process_pages(self, pages: Sequence[SourcePage], task: Task) -> list[PageResult]:
        out = []
        for page in pages:
            name = Path(str(page.path)).name.lower()
            if self.pid_dir:
                Path(self.pid_dir, str(os.getpid())).touch()
            if "worker_crash" in name and _in_worker_process():
                os._exit(70)
            if "raise" in name:
                raise RuntimeError(f"scripted engine told to fail on {name}")
            if self.delay:
                time.sleep(self.delay)
            if "failpage" in name and page.index == 0:
                out.append(
                    PageResult(
                        index=page.index, width_px=page.width_px, height_px=page.height_px, dpi=page.dpi,
                        status="failure",
                        errors=[ErrorItem(code="engine", message=f"{page.path} (page 1): scripted page failure",
                                          page=page.index)],
                    )
                )
                continue
            out.append(
                PageResult(
                    index=page.index, width_px=page.width_px, height_px=page.height_px, dpi=page.dpi,
                    status="success", text_source="model", lines=scripted_lines(page.width_px, page.height_px,
                                                                                 page.index),
                )
            )
        return out


def _in_worker_process() -> bool:
    """A process-pool worker or a Ray actor (never the process that started the batch)."""
    if multiprocessing.parent_process() is not None:
        return True
    ray = sys.modules.get("ray")
    if ray is None or not ray.is_initialized():
        return False
    return ray.get_runtime_context().worker.mode == ray._private.worker.WORKER_MODE


def scripted_lines(width_px: int, height_px: int, page_index: int) -> list[Line]:
    """Three lines at fixed fractions of the page; confidences 0.3, 0.6, 0.9 (red, yellow, green)."""
    lines = []
    for k, conf in enumerate((0.3, 0.6, 0.9)):
        text = f"page {page_index + 1} line {k + 1} {width_px}x{height_px}"
        y0 = height_px * (0.1 + 0.2 * k)
        box = (width_px * 0.1, y0, width_px * 0.8, y0 + max(2.0, height_px * 0.05))
        words = [Word(text=t, bbox_page_px=b, confidence=conf) for t, b in split_line_into_words(text, box)]
        lines.append(Line(text=text, bbox_page_px=box, confidence=conf, words=words))
    return lines
