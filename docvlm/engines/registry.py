"""The one place engines are named: name -> class, the options it reads, pages per call, whether it plans.

The CLI's `--engine` choices, the options type (`ConvertOptions.engine`), `get_engine` and the pipeline's
batching all derive from `ENGINES`. A new engine is one module plus one `EngineSpec` line here.

This module imports nothing heavy (the class is named by its import path and loaded by `EngineSpec.load`), so
`docvlm.options` and `docvlm --help` can read it without importing torch.

How an engine runs (this registry) is a different question from what a model sees and prints (the model family:
prompts, resize policy, parser); families live in `docvlm.plan` / the family registry.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from docvlm.errors import UsageError

if TYPE_CHECKING:
    from docvlm.engines.base import Engine
    from docvlm.options import ConvertOptions

def _tiles_per_call(options: ConvertOptions) -> int:
    return max(1, options.batch_size)


def _requests_in_flight(options: ConvertOptions) -> int:
    # the server batches on its side: hand the engine enough pages to keep --concurrency requests in flight
    return max(1, options.batch_size, options.concurrency)


OCR_PAGES_PER_CALL = 4
"""ocr engine: it renders the next page while it reads this one, so it takes a few pages per call."""


def _ocr_pages(options: ConvertOptions) -> int:
    return OCR_PAGES_PER_CALL


@dataclass(frozen=True)
class EngineSpec:
    """One engine: how it is loaded and how the pipeline feeds it."""

    name: str
    target: str = field(metadata={"doc": "module:Class of the engine, imported only when it is chosen."})
    summary: str = field(metadata={"doc": "One line for --help."})
    plans: bool = field(metadata={"doc": "A VLM engine: pages are planned (docvlm.plan), cut into tiles and sent "
                                         "to the model, whose text is parsed (the streaming feed applies)."})
    answers_queries: bool = field(metadata={"doc": "extract/ground ask the engine itself (a model); False: the "
                                                   "engine reads the text and docvlm's rules answer."})
    pages_per_call: Callable[[ConvertOptions], int] = field(
        metadata={"doc": "How many pages the pipeline hands to one process_pages call for these options."}
    )
    options: tuple[str, ...] = field(default=(), metadata={"doc": "ConvertOptions fields this engine reads."})

    def load(self) -> type[Engine]:
        """Import the engine's module (its heavy dependencies come with it) and return the class."""
        module, _, cls = self.target.partition(":")
        return getattr(importlib.import_module(module), cls)


_VLM_OPTIONS = ("model", "family", "max_new_tokens", "batch_size", "min_text_px", "max_visual_tokens",
                "prep_workers")

ENGINES: dict[str, EngineSpec] = {
    spec.name: spec
    for spec in (
        EngineSpec("ocr", "docvlm.engines.ocr:OcrEngine", "offline default", plans=False, answers_queries=False,
                   pages_per_call=_ocr_pages, options=("text_layer", "ocr_backend", "line_orientation")),
        EngineSpec("hf", "docvlm.engines.hf:HfEngine", "local Qwen-VL", plans=True, answers_queries=True,
                   pages_per_call=_tiles_per_call, options=(*_VLM_OPTIONS, "device", "dtype", "quant")),
        EngineSpec("openai", "docvlm.engines.openai:OpenAIEngine", "vLLM/SGLang/Ollama server", plans=True,
                   answers_queries=True,
                   pages_per_call=_requests_in_flight,
                   options=(*_VLM_OPTIONS, "base_url", "api_key_env", "concurrency", "timeout", "retries",
                            "tile_format")),
        EngineSpec("scripted", "docvlm.engines.scripted:ScriptedEngine", "deterministic test engine", plans=False,
                   answers_queries=True,
                   pages_per_call=_tiles_per_call, options=_VLM_OPTIONS),
    )
}
"""Every engine docvlm knows, in the order --help lists them (the first is the default)."""

ENGINE_NAMES: tuple[str, ...] = tuple(ENGINES)
DEFAULT_ENGINE = ENGINE_NAMES[0]
TEXT_ENGINE = "ocr"
"""The engine that reads a page's text for checking a VLM's answers against it (docvlm.extract)."""


def engine_spec(name: str) -> EngineSpec:
    """The registry entry of `name`; UsageError naming the known engines otherwise."""
    try:
        return ENGINES[name]
    except KeyError:
        raise UsageError(f"unknown engine {name!r}: use one of {', '.join(ENGINE_NAMES)}") from None


def engine_help() -> str:
    """The --engine help line, from the registry."""
    return ", ".join(f"{s.name} ({s.summary})" for s in ENGINES.values()) + "."
