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


def get_engine(options: ConvertOptions) -> Engine:
    """Return the engine for these options, created once per process and reused across documents."""
    key = (
        options.engine, options.model, options.family, options.device, options.dtype, options.quant,
        options.base_url, options.max_new_tokens, options.batch_size, options.concurrency,
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
