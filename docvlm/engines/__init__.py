"""Engines: one batch call over pages, lazy model load, loaded once per process.

`get_engine(options)` imports an engine's heavy dependencies only inside the branch that picks it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from docvlm.errors import UsageError

if TYPE_CHECKING:
    from docvlm.engines.base import Engine
    from docvlm.options import ConvertOptions

_CACHE: dict[tuple, Engine] = {}

DOCUMENT_FIELDS = frozenset({"pages", "password", "max_pages", "max_page_pixels", "formats", "doc_timeout", "redo_text"})
"""Options that concern documents or outputs, not the engine: changing them reuses the loaded engine."""


def get_engine(options: ConvertOptions) -> Engine:
    """Return the engine for these options, created once per process and reused across documents."""
    key = tuple(
        (name, repr(getattr(options, name))) for name in type(options).model_fields if name not in DOCUMENT_FIELDS
    )
    engine = _CACHE.get(key)
    if engine is not None:
        return engine
    if options.engine == "ocr":
        from docvlm.engines.ocr import OcrEngine

        engine = OcrEngine(options)
    elif options.engine == "hf":
        from docvlm.engines.hf import HfEngine

        engine = HfEngine(options)
    elif options.engine == "openai":
        from docvlm.engines.openai import OpenAIEngine

        engine = OpenAIEngine(options)
    elif options.engine == "scripted":
        from docvlm.engines.scripted import ScriptedEngine

        engine = ScriptedEngine(options)
    else:  # pragma: no cover - options validation rejects other names
        raise UsageError(f"unknown engine {options.engine!r}")
    _CACHE[key] = engine
    return engine
