"""Engines: one batch call over pages, lazy model load, loaded once per process.

`get_engine(options)` imports an engine's heavy dependencies only when the registry entry it picks
(docvlm.engines.registry) is loaded.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

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
    from docvlm.engines.registry import engine_spec

    engine = engine_spec(options.engine).load()(options)
    _CACHE[key] = engine
    return engine
