"""Settings in one typed tree: every option of a run, from flags, Python keywords or DOCVLM_* env vars.

Unknown keys are rejected (a mistyped option is an error, not a silent default), and so are unknown DOCVLM_*
environment variables.
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Annotated, ClassVar, Literal

from pydantic import Field, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from docvlm.datamodel import Family
from docvlm.engines.registry import DEFAULT_ENGINE, ENGINE_NAMES
from docvlm.errors import UsageError

ENV_PREFIX = "DOCVLM_"

EngineName = Literal[ENGINE_NAMES]  # type: ignore[valid-type]  # the registry's names, nowhere else


class ConvertOptions(BaseSettings):
    """Options of a conversion run. The fields named in `OUTPUT_FIELDS` shape the output (resume digest)."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="forbid", frozen=True)

    # sources
    dpi: int = Field(default=200, ge=36, le=1200, description="Render resolution of PDF pages.")
    pages: str | None = Field(default=None, description="Page selection, 1-based: '1-3,7'.")
    password: str | None = Field(default=None, description="Password for encrypted PDFs.")
    max_page_pixels: int = Field(
        default=80_000_000, ge=10_000, description="Refuse to rasterize a page larger than this (--max-page-pixels)."
    )
    max_pages: int | None = Field(default=None, ge=1, description="Read at most this many pages per document.")
    # engine
    engine: EngineName = Field(default=DEFAULT_ENGINE, description="Engine (docvlm.engines.registry.ENGINES).")
    model: str | None = Field(default=None, description="Hub id or local folder (hf), served model name (openai).")
    family: Family | None = Field(default=None, description="Force the model family.")
    device: str = Field(default="auto", description="auto, cpu, cuda, cuda:N")
    dtype: Literal["auto", "bf16", "fp16", "fp32"] = "auto"
    quant: Literal["auto", "none", "4bit", "8bit"] = "auto"
    max_new_tokens: int = Field(default=1024, ge=1)
    batch_size: int = Field(default=4, ge=1, description="Tiles per generate call (VLM engines).")
    text_layer: Literal["auto", "ignore"] = Field(
        default="auto", description="auto: use a PDF's text layer when usable; ignore: always OCR/model."
    )
    ocr_backend: Literal["auto", "openvino", "onnxruntime"] = Field(
        default="auto", description="ocr engine runtime: auto = OpenVINO where it runs, else onnxruntime."
    )
    line_orientation: bool = Field(
        default=False, description="ocr engine: per-line angle classifier instead of one orientation per page."
    )
    # planning
    min_text_px: float = Field(
        default=16.0, gt=0, le=200,
        description="Readability floor: small-text line height in encoded pixels (--min-text-px).",
    )
    max_visual_tokens: int | None = Field(default=None, ge=4, description="Per-request visual-token budget.")
    prep_workers: Annotated[int, Field(ge=0)] | Literal["auto"] = Field(
        default="auto", description="VLM engines: processes preparing pages (estimate, plan, render, cut, encode) "
        "beside the feed; auto = one per core less one, at least 2, none on 1 core (docvlm.engines.prep).",
    )
    # openai engine
    tile_format: Literal["png", "webp"] = Field(
        default="png", description="openai engine: tiles sent as lossless PNG (every server) or lossless WebP "
        "(smaller; the server must decode WebP). Pixels are the same: not part of the output.",
    )
    base_url: str | None = None
    api_key_env: str | None = None
    concurrency: int = Field(default=4, ge=1)
    timeout: float = Field(default=120.0, gt=0)
    retries: int = Field(default=3, ge=0)
    # output
    formats: tuple[str, ...] = ("json",)
    redo_text: bool = Field(
        default=False, description="PDF output: also lay OCR text on pages that had a usable text layer."
    )
    doc_timeout: float | None = Field(default=None, gt=0, description="Seconds per document before it is stopped.")
    # where a batch runs (docvlm.executors): not part of the output
    ray: str | None = Field(
        default=None, description="Run the batch on Ray: local, auto, HOST:PORT or ray://HOST:10001 (--ray)."
    )
    ray_workers: int | None = Field(default=None, ge=1, description="Ray actors (default: from the cluster's CPUs/GPUs).")
    ray_gpus_per_worker: float = Field(default=0.0, ge=0, description="GPUs each Ray actor asks for.")
    ray_inputs: Literal["auto", "ship", "shared"] = Field(
        default="auto", description="ship: inputs travel as bytes through Ray's object store; shared: workers read "
        "the driver's paths (a shared file system); auto: shared only when the cluster is this one machine.",
    )
    # layout
    layout: bool = Field(
        default=True, description="Run the layout stage (reading order, tables, furniture, headings, text repair)."
    )
    keep_furniture: bool = Field(
        default=False, description="Markdown: keep running headers, footers and page numbers (always in the JSON)."
    )
    table_models: Literal["auto", "on", "off"] = Field(
        default="auto", description="Trained layout / table-structure models in the table step (the 'models' "
        "extra): auto = where the table bench measured them better (scans), on = every page kind, off = rules only.",
    )

    OUTPUT_FIELDS: ClassVar[tuple[str, ...]] = (
        "dpi", "pages", "max_pages", "engine", "model", "family", "quant", "dtype", "max_new_tokens",
        "text_layer", "min_text_px", "max_visual_tokens", "redo_text",
        "layout", "keep_furniture", "line_orientation", "table_models",
    )

    @model_validator(mode="before")
    @classmethod
    def _reject_unknown_env(cls, data: object) -> object:
        known = {ENV_PREFIX + name.upper() for name in cls.model_fields}
        unknown = sorted(k for k in os.environ if k.startswith(ENV_PREFIX) and k not in known)
        unknown = [k for k in unknown if k not in IGNORED_ENV]
        if unknown:
            raise ValueError(f"unknown environment setting(s): {', '.join(unknown)}")
        return data

    def digest(self) -> str:
        """Digest of the options that shape the output: a result with another digest is recomputed on resume."""
        shaped = {k: getattr(self, k) for k in self.OUTPUT_FIELDS}
        blob = json.dumps(shaped, sort_keys=True, default=str).encode()
        return hashlib.sha256(blob).hexdigest()[:16]


IGNORED_ENV = {"DOCVLM_UPDATE_GOLDEN", "DOCVLM_TEST_DATA", "DOCVLM_SLOW"}
"""Env vars read by the test suite and benches, not by the options tree."""


def make_options(**kwargs: object) -> ConvertOptions:
    """Build options, turning validation errors into a `UsageError` that names the bad option."""
    try:
        return ConvertOptions(**kwargs)  # type: ignore[arg-type]
    except ValidationError as exc:
        parts = []
        for err in exc.errors():
            loc = ".".join(str(x) for x in err["loc"]) or "options"
            parts.append(f"{loc}: {err['msg']}")
        raise UsageError("invalid options: " + "; ".join(parts)) from None
