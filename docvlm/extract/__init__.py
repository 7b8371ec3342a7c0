"""Field extraction: documents -> typed, validated, grounded fields (`ExtractionResult`), on every engine.

Per document:

1. The page text is read (text layer or OCR lines, `ocr` engine).
2. `ocr` engine: the layout rules of `docvlm.extract.rules` read the fields from those lines.
   VLM engines: the extraction prompt is answered per tile (`Task(kind="extract")`), parsed and validated
   (`docvlm.extract.vlm`), asked again once with the errors listed, mapped to page pixels, and every value is
   checked against the page text (`docvlm.extract.verify`).
3. Cross-checks (`docvlm.extract.checks`) add warnings; nothing is corrected silently.

Public API: `extract_document`, `load_schema`, `ExtractionResult`, `run_extract_batch`, `ExtractKind` (the
`docvlm.batch.DocumentKind` that `run_extract_batch` runs through the batch runner).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import date
from datetime import time as dtime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from docvlm import __version__
from docvlm.datamodel import DocumentResult, ErrorItem, PageResult, document_status
from docvlm.engines.registry import TEXT_ENGINE, engine_spec
from docvlm.extract.candidates import ReadAgain
from docvlm.extract.checks import cross_check
from docvlm.extract.models import (
    VALUE_CLASSES,
    CheckWarning,
    ExtractionResult,
    FieldBase,
    ModelAttempt,
    PageRef,
)
from docvlm.extract.normalize import currency_code, parse_amount, parse_date, parse_time
from docvlm.extract.rules import FIELD_ALIASES, Found, build_page, extract_rules
from docvlm.extract.schema_loading import AUTO_SCHEMA, FieldSpec, LoadedSchema, load_schema

if TYPE_CHECKING:
    from docvlm.batch import BatchCallbacks, BatchSummary, DocRecord, Shard
    from docvlm.engines.base import Engine
    from docvlm.options import ConvertOptions

__all__ = [
    "ExtractKind", "ExtractionResult", "extract_document", "load_schema", "run_extract_batch",
    "schema_digest",
]

RULE_KEY_OF = {name: key for key, names in FIELD_ALIASES.items() for name in names}
"""Schema field name -> the rule that answers it."""
ITEM_ALIASES = {
    "description": ("description", "name", "item", "product"),
    "quantity": ("quantity", "qty", "count"),
    "unit_price": ("unit_price", "price", "price_unit", "unit_cost"),
    "amount": ("amount", "total", "line_total", "price_subtotal"),
}


def schema_digest(schema: LoadedSchema) -> str:
    """Digest of the schema's JSON Schema (part of the resume key of an extraction output)."""
    import json

    blob = json.dumps(schema.json_schema(), sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:12]


def extract_document(
    path: str | Path,
    options: ConvertOptions,
    *,
    schema: str | LoadedSchema = "auto",
    engine: Engine | None = None,
    text_engine: Engine | None = None,
    display_path: str | None = None,
    on_page: Callable[[PageResult], None] | None = None,
) -> ExtractionResult:
    """Extract a schema's fields from one document. Bad input is a failed result, never an exception.

    Args:
        path: a PDF or image.
        options: the run's options; `options.engine` picks rules (`ocr`) or a VLM.
        schema: a built-in name (`auto` picks receipt or invoice per document from its cues and says why in
            `schema_choice`), `file.py:Model`, a JSON Schema file, or a loaded schema.
        engine: the engine to use (default: `get_engine(options)`).
        text_engine: the engine reading the page text that VLM answers are verified against (default: `ocr`).
        display_path: the path recorded in the result.
        on_page: progress callback per page.

    Returns:
        The validated `ExtractionResult`.

    Raises:
        docvlm.errors.UsageError: the schema cannot be loaded.
        docvlm.errors.EngineError: a model that cannot load (every document would fail the same way).
    """
    from docvlm.engines.base import Task
    from docvlm.pipeline import convert_document

    started = time.perf_counter()
    loaded = schema if isinstance(schema, LoadedSchema) else load_schema(schema)
    digest = f"{options.digest()}-{schema_digest(loaded)}"  # of the schema asked for (`auto` resumes as auto)
    shown = display_path or str(path)
    notes: list[CheckWarning] = []
    attempts: list[ModelAttempt] = []
    choice: str | None = None
    if not engine_spec(options.engine).answers_queries:  # an engine that reads text itself: the rules read the fields
        read = convert_document(path, options, task=Task(kind="read"), display_path=shown, engine=engine,
                                on_page=on_page)
        loaded, choice = _resolve_auto(loaded, read)
        fields, rule_notes = fields_from_rules(read, loaded, read_again=_read_again(path, options, read))
        notes += rule_notes
        doc = read
        errors = _doc_errors(read)
    else:
        from docvlm.extract.vlm import answer_schema_json

        text_options = options.model_copy(update={"engine": TEXT_ENGINE})
        read = convert_document(path, text_options, task=Task(kind="read"), display_path=shown, engine=text_engine)
        loaded, choice = _resolve_auto(loaded, read)
        task = Task(kind="extract", schema_name=loaded.name, fields_schema=answer_schema_json(loaded.fields))
        doc = convert_document(path, options, task=task, display_path=shown, engine=engine, on_page=on_page)
        if engine is None:
            from docvlm.engines import get_engine

            engine = get_engine(options)
        fields, attempts, model_errors = fields_from_model(doc, read, loaded, engine, path, options)
        errors = _doc_errors(doc) + [e for e in _doc_errors(read) if e not in _doc_errors(doc)] + model_errors
    warnings = notes + [w for w in cross_check(fields) if w.code not in {n.code for n in notes}]
    status = doc.status if doc.pages else "failure"
    if status == "success" and any(e.code == "parse" for e in errors):
        status = "partial"
    return ExtractionResult(
        docvlm_version=__version__,
        schema_name=loaded.name,
        schema_choice=choice,
        status=status,
        source=doc.source,
        engine=doc.engine,
        options_digest=digest,
        pages=[PageRef(index=p.index, width_px=p.width_px, height_px=p.height_px, dpi=p.dpi,
                       text_source=_page_source(read, p.index)) for p in doc.pages],
        fields=fields,
        warnings=warnings,
        errors=errors,
        attempts=attempts,
        seconds=round(time.perf_counter() - started, 4),
    )


def _resolve_auto(loaded: LoadedSchema, read: DocumentResult) -> tuple[LoadedSchema, str | None]:
    """`auto` -> the built-in schema the document's cues point to, and the reason; any other schema as is."""
    if loaded.name != AUTO_SCHEMA:
        return loaded, None
    from docvlm.extract.choose import choose_schema

    name, reason = choose_schema(read)
    return load_schema(name), f"auto -> {reason}"


def _doc_errors(doc: DocumentResult) -> list[ErrorItem]:
    return list(doc.errors) + [e for p in doc.pages for e in p.errors]


def _page_source(read: DocumentResult, index: int) -> str | None:
    for p in read.pages:
        if p.index == index:
            return p.text_source
    return None


# --- ocr engine: rules ---------------------------------------------------------------------------------------


def _read_again(path: str | Path, options: ConvertOptions, read: DocumentResult):
    """A second recognition of crops of the pages OCR read (extract/reread.py), for the judge: rendered and
    recognized only when a value needs it."""
    from docvlm.extract.reread import CropReader, document_pages, rapidocr_recognizer

    return CropReader(document_pages(path, options, read), rapidocr_recognizer(options))


def fields_from_rules(read: DocumentResult, schema: LoadedSchema, *, read_again: ReadAgain | None = None
                      ) -> tuple[dict[str, Any], list[CheckWarning]]:
    """The rules' findings as the schema's value objects, with the status and evidence the rules' judge gave them
    (extract/evidence.py). `read_again` re-reads a crop of an OCR'd page (extract/reread.py): without it an
    OCR'd company name is never verified."""
    pages = [replace(build_page(p.lines, p.index, p.width_px, p.height_px), text_layer=p.text_source == "text_layer")
             for p in read.pages if p.status != "failure"]
    found = extract_rules(pages, read_again=read_again)
    sources = {p.index: p.text_source for p in read.pages}
    currency = found.values.get("currency")
    fields: dict[str, Any] = {}
    for spec in schema.fields:
        if spec.kind == "list":
            if RULE_KEY_OF.get(spec.name) != "line_items":
                fields[spec.name] = []
                continue
            items = []
            for item in found.line_items:
                row = {}
                for sub in spec.items:
                    attr = next((k for k, names in ITEM_ALIASES.items() if sub.name in names), None)
                    f = getattr(item, attr) if attr else None
                    row[sub.name] = to_value(sub.kind, f, sources, currency)
                items.append(row)
            fields[spec.name] = items
            continue
        key = RULE_KEY_OF.get(spec.name)
        fields[spec.name] = to_value(spec.kind, found.values.get(key) if key else None, sources, currency)
    warnings = [CheckWarning(code=code, message=msg, fields=[]) for code, msg in found.notes]
    return fields, warnings


def to_value(kind: str, found: Found | None, sources: dict[int, str | None], currency: Found | None) -> FieldBase:
    """A rule's finding -> the value object of `kind` (invalid, with a note, when it does not read as one)."""
    cls = VALUE_CLASSES[kind]
    if found is None:
        return cls()
    common = dict(raw=found.raw, page=found.page, bbox_page_px=found.bbox_page_px,
                  source=sources.get(found.page) or "ocr", note=found.note)
    value: Any = found.value
    extra: dict[str, Any] = {}
    if kind == "text":
        value = found.raw if not isinstance(found.value, str) else found.value
    elif kind == "date" and not isinstance(value, date):
        value = parse_date(found.raw)
    elif kind == "time" and not isinstance(value, dtime):
        got = parse_time(found.raw)
        value = got[0] if got else None
    elif kind in ("money", "number") and not isinstance(value, Decimal):
        got = parse_amount(found.raw)
        value = got[0] if got else None
    elif kind == "currency":
        value = currency_code(str(found.value))
    if kind == "money":
        extra["currency"] = found.currency or (currency.value if currency else None)
    if value is None:
        return cls(status="invalid", **{**common, "note": f"{found.raw!r} does not read as a {kind}"})
    return cls(value=value, status=found.status or "found", **common, **extra)


# --- VLM engines: answers -> validated, verified fields --------------------------------------------------


def fields_from_model(
    doc: DocumentResult, read: DocumentResult, schema: LoadedSchema, engine: Engine, path: str | Path,
    options: ConvertOptions,
) -> tuple[dict[str, Any], list[ModelAttempt], list[ErrorItem]]:
    """Parse and validate every tile's answer, ask again once for the answers that failed, map, verify, merge."""
    from docvlm.extract.verify import verify_value
    from docvlm.extract.vlm import box_to_page, parse_answer, validate_answer

    family = doc.engine.family or options.family or getattr(engine, "family", None) or "qwen2.5"
    attempts: list[ModelAttempt] = []
    errors: list[ErrorItem] = []
    answers: dict[tuple[int, int], Any] = {}
    for page in doc.pages:
        for out in page.outputs:
            if out.stop_reason == "error":
                continue
            validated = validate_answer(parse_answer(out.raw_text, family), schema.fields)
            attempts.append(ModelAttempt(page=page.index, tile=out.tile, attempt=1, raw_text=out.raw_text,
                                         errors=validated.errors))
            answers[(page.index, out.tile)] = validated
    failing = [k for k, v in answers.items() if v.errors]
    if failing:
        for key, raw, validated in _retry(failing, answers, doc, schema, engine, path, options, family):
            attempts.append(ModelAttempt(page=key[0], tile=key[1], attempt=2, raw_text=raw, errors=validated.errors))
            answers[key] = validated
    for (page_index, tile), v in answers.items():
        for e in v.errors:
            errors.append(ErrorItem(code="validation", message=f"{doc.source.path} (page {page_index + 1}): "
                                    f"tile {tile}: {e}", page=page_index, tile=tile))

    plans = {p.index: p.plan for p in doc.pages}
    lines = {p.index: p.lines for p in read.pages}
    sizes = {p.index: (p.width_px, p.height_px) for p in doc.pages}

    def place(obj: FieldBase, box_model, page_index: int, tile: int) -> FieldBase:
        plan = plans.get(page_index)
        tile_plan = next((t for t in plan.tiles if t.index == tile), None) if plan else None
        box, why = box_to_page(box_model, tile_plan, family)
        obj = obj.model_copy(update={"page": page_index, "bbox_page_px": box, "note": why})
        w, h = sizes[page_index]
        return verify_value(obj, lines.get(page_index, []), page_width=w, page_height=h)

    fields: dict[str, Any] = {}
    for spec in schema.fields:
        if spec.kind == "list":
            items: list[dict[str, FieldBase]] = []
            seen: set[tuple] = set()
            for (page_index, tile), v in sorted(answers.items()):
                for _, row in sorted(v.items.get(spec.name, {}).items()):
                    key = (page_index, tuple((k, str(getattr(o, "value", None))) for k, (o, _) in sorted(row.items())))
                    if key in seen:
                        continue  # the same row read again from an overlapping tile
                    seen.add(key)
                    placed = {k: place(o, b, page_index, tile) for k, (o, b) in row.items()}
                    items.append({s.name: placed.get(s.name) or VALUE_CLASSES[s.kind]() for s in spec.items})
            fields[spec.name] = items
            continue
        chosen: FieldBase | None = None
        invalid: tuple[int, str, str] | None = None
        for (page_index, tile), v in sorted(answers.items()):
            if spec.name in v.scalars and getattr(v.scalars[spec.name][0], "value", None) is not None:
                obj, box_model = v.scalars[spec.name]
                chosen = place(obj, box_model, page_index, tile)
                break
            if spec.name in v.invalid and invalid is None:
                invalid = (page_index, *v.invalid[spec.name])
        if chosen is None and invalid is not None:
            chosen = VALUE_CLASSES[spec.kind](raw=invalid[1], page=invalid[0], source="model", status="invalid",
                                              note=invalid[2])
        fields[spec.name] = chosen or VALUE_CLASSES[spec.kind]()
    return fields, attempts, errors


def _retry(failing, answers, doc, schema, engine, path, options, family):
    """Ask the failing tiles once more, listing the problems of their first answer."""
    from docvlm.engines.vlm import TileRequest, VlmEngine
    from docvlm.extract.vlm import answer_schema_json, parse_answer, retry_prompt, validate_answer
    from docvlm.plan import render_tile
    from docvlm.prompts import render_prompt
    from docvlm.sources import open_document

    if not isinstance(engine, VlmEngine):
        return []
    prompt = render_prompt("extract", family, schema_json=answer_schema_json(schema.fields))
    plans = {p.index: p.plan for p in doc.pages}
    requests, keys = [], []
    wanted = {k[0] for k in failing}
    with open_document(path, options) as src:
        for page in src.pages():
            if page.index not in wanted or plans.get(page.index) is None:
                continue
            image = page.render()
            for key in failing:
                if key[0] != page.index:
                    continue
                tile = next(t for t in plans[page.index].tiles if t.index == key[1])
                requests.append(TileRequest(image=render_tile(image, tile), prompt=retry_prompt(prompt.user,
                                answers[key].errors), system=prompt.system, max_new_tokens=options.max_new_tokens))
                keys.append(key)
    if not requests:
        return []
    responses = engine.generate_batch(requests)
    out = []
    for key, response in zip(keys, responses, strict=False):
        if response.error is not None:
            continue
        out.append((key, response.text, validate_answer(parse_answer(response.text, family), schema.fields)))
    return out


# --- batch -------------------------------------------------------------------------------------------------

_LOADED: dict[str, LoadedSchema] = {}
"""Schemas loaded in this process, by spec (an `ExtractKind` carries the spec to spawn workers)."""
_CHECKED: set[tuple[str, str]] = set()
"""(spec, digest) pairs whose loaded schema was checked against the digest in this process."""


@dataclass(frozen=True)
class ExtractKind:
    """The `docvlm.batch.DocumentKind` of `docvlm extract`: an `ExtractionResult` per document, JSON only.

    Picklable for spawn workers: it carries the schema spec (a built-in name, `file.py:Model`, a JSON Schema
    file) and the schema digest; each process loads the schema once (`prepare`). Build it with
    `ExtractKind.of`.
    """

    schema_spec: str
    schema_digest: str

    name: ClassVar[str] = "extract"

    @classmethod
    def of(cls, schema: str | LoadedSchema) -> ExtractKind:
        """The kind for a schema spec or an already loaded schema (raises UsageError when it cannot load).

        A loaded schema is re-loaded in worker processes from its spec (`LoadedSchema.name`)."""
        loaded = schema if isinstance(schema, LoadedSchema) else load_schema(schema)
        _LOADED[loaded.name] = loaded
        digest = schema_digest(loaded)
        _CHECKED.difference_update({c for c in _CHECKED if c[0] == loaded.name})
        _CHECKED.add((loaded.name, digest))
        return cls(loaded.name, digest)

    def schema(self) -> LoadedSchema:
        loaded = _LOADED.get(self.schema_spec)
        if loaded is None:
            loaded = _LOADED[self.schema_spec] = load_schema(self.schema_spec)
            _CHECKED.discard((self.schema_spec, self.schema_digest))
        return loaded

    def formats(self, options: ConvertOptions) -> tuple[str, ...]:
        return ("json",)

    def suffix(self, fmt: str) -> str:
        return ".json"

    def digest(self, options: ConvertOptions) -> str:
        return f"{options.digest()}-{self.schema_digest}"

    def prepare(self) -> None:
        from docvlm.errors import UsageError

        loaded = self.schema()
        if (self.schema_spec, self.schema_digest) in _CHECKED:
            return
        if schema_digest(loaded) != self.schema_digest:
            raise UsageError(f"schema {self.schema_spec!r} changed while the batch ran (its JSON Schema "
                             "differs); rerun the command")
        _CHECKED.add((self.schema_spec, self.schema_digest))

    def run(self, path: str, options: ConvertOptions, *, display_path: str, engine: Engine,
            on_page: Callable[[PageResult], None] | None) -> ExtractionResult:
        return extract_document(path, options, schema=self.schema(), engine=engine, display_path=display_path,
                                on_page=on_page)

    def failed(self, path: str, options: ConvertOptions, exc: Exception) -> ExtractionResult:
        return _failed(path, options, self.schema(), self.digest(options), exc)

    def load(self, data: bytes) -> ExtractionResult | None:
        from pydantic import ValidationError

        try:
            return ExtractionResult.model_validate_json(data)
        except (ValidationError, ValueError):
            return None

    def write(self, fmt: str, result: Any, source_path: str, out_path: Path, options: ConvertOptions) -> None:
        from docvlm.writers import atomic_write_text

        atomic_write_text(out_path, result.model_dump_json(indent=2) + "\n")

    def overlay(self, result: Any, source_path: str, overlay_dir: str, relpath: str,
                options: ConvertOptions) -> list[str]:
        from docvlm.extract.overlay import render_extraction_overlays

        pages = render_extraction_overlays(result, source_path, overlay_dir, relpath=relpath,
                                           password=options.password)
        return [f"overlay page {page.page_index + 1}: {page.note}" for page in pages if page.note]

    def warnings(self, result: Any) -> list[str]:
        return [w.message for w in result.warnings]


def run_extract_batch(
    inputs: Sequence[str | Path],
    out_dir: str | Path | None,
    options: ConvertOptions,
    *,
    schema: str | LoadedSchema,
    force: bool = False,
    workers: int = 1,
    shard: Shard | None = None,
    overlay_dir: str | Path | None = None,
    callbacks: BatchCallbacks | None = None,
    on_result: Callable[[ExtractionResult], None] | None = None,
) -> BatchSummary:
    """Extract every input into `out_dir/<relpath>.json` with `docvlm.batch.run_batch` and `ExtractKind`:
    resumable (options digest + schema digest), shardable, parallel, atomic, one bad file never stops the run.

    Args:
        on_result: called in the main process with every result (resumed ones too), e.g. for `--json`.

    Raises:
        UsageError: no inputs or a bad schema.
        docvlm.batch.BatchInterrupted: Ctrl-C / SIGTERM (the summary is attached and written).
        docvlm.batch.BatchAborted: the engine cannot load.
    """
    from docvlm.batch import run_batch

    kind = ExtractKind.of(schema)
    if on_result is not None:
        callbacks = _ResultHook(callbacks, on_result)
    return run_batch(inputs, out_dir, options, workers=workers, force=force, shard=shard,
                     overlay_dir=overlay_dir, callbacks=callbacks, collect_results=on_result is not None,
                     kind=kind)


class _ResultHook:
    """`BatchCallbacks` passing each collected result to `on_result` before the wrapped callbacks."""

    def __init__(self, inner: BatchCallbacks | None, on_result: Callable[[ExtractionResult], None]) -> None:
        from docvlm.batch import BatchCallbacks

        self.inner = inner or BatchCallbacks()
        self.on_result = on_result

    def start(self, total: int, resumed: int) -> None:
        self.inner.start(total, resumed)

    def inputs(self, paths: list[str]) -> None:
        self.inner.inputs(paths)

    def page(self, key: str, page_index: int, status: str) -> None:
        self.inner.page(key, page_index, status)

    def document(self, record: DocRecord, result: Any | None) -> None:
        if result is not None:
            self.on_result(result)
        self.inner.document(record, result)


def _failed(
    path: str, options: ConvertOptions, schema: LoadedSchema, digest: str, exc: Exception
) -> ExtractionResult:
    from docvlm.pipeline import failed_document

    doc = failed_document(path, path, options, _engine_info(options), exc)
    return ExtractionResult(docvlm_version=__version__, schema_name=schema.name, status="failure",
                            source=doc.source, engine=doc.engine, options_digest=digest, errors=doc.errors,
                            fields={s.name: ([] if s.kind == "list" else VALUE_CLASSES[s.kind]()) for s in schema.fields})


def _engine_info(options: ConvertOptions):
    from docvlm.datamodel import EngineInfo

    return EngineInfo(name=options.engine)


_ = (FieldSpec, document_status)
