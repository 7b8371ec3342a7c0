"""What every VLM engine (hf, openai) shares: plan -> prompt -> generate -> guard -> parse -> geometry.

An engine subclass only implements `generate_batch` (planned tile images in, raw text out) and `info`.
Everything after the engine returns text is one code path for every VLM engine, and the same parser and
geometry (`grounding.page_lines_from_outputs`) that `docvlm reparse` runs on stored raw outputs.

Runaway guard: a tile whose output stopped at the token limit, or whose text ends in a loop (`detect_repetition`),
is recorded with that stop reason and generated once more with a repetition penalty; if the retry fails the
same way the page is "partial" with a `runaway` error (the complete part of the output is still parsed).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from docvlm.datamodel import ErrorItem, PageResult, TileOutput
from docvlm.errors import DocvlmError

if TYPE_CHECKING:
    from PIL import Image

    from docvlm.datamodel import EncodingPlan, EngineInfo, Family, Line, StopReason
    from docvlm.engines.base import Task
    from docvlm.families.base import ModelFamily
    from docvlm.options import ConvertOptions
    from docvlm.sources import SourcePage

RETRY_REPETITION_PENALTY = 1.15
"""Penalty for the one retry of a runaway tile: enough to break a verbatim loop, mild enough for real text."""
REPEAT_MIN_SPAN_CHARS = 160
"""A tail loop must cover this many characters to count (a receipt's '=====' rule or dot leader does not)."""
REPEAT_MIN_COUNT = 3
"""...and repeat its unit at least this many times (three identical lines with identical boxes is a loop)."""
REPEAT_MAX_UNIT_CHARS = 400


@dataclass(frozen=True)
class TileRequest:
    """One generation request: a tile image already at its planned encoded size, and its prompt."""

    image: Image.Image  # exactly TilePlan.encoded_size; engines must not resize it
    prompt: str  # the user text of the chat turn (the image comes first in the turn)
    system: str | None = None
    max_new_tokens: int = 1024
    repetition_penalty: float | None = None  # set on the retry after a repetition loop


@dataclass(frozen=True)
class TileResponse:
    text: str  # decoded with special tokens kept
    prompt_tokens: int | None = None
    generated_tokens: int | None = None
    stop_reason: StopReason = "eos"
    error: str | None = None  # set when this request failed (the page gets an error, the batch goes on)


@dataclass(frozen=True)
class Repetition:
    """A loop found at the end of an output: a unit of `unit_chars` characters covering `span_chars`."""

    unit: str
    unit_chars: int
    span_chars: int

    @property
    def count(self) -> float:
        return self.span_chars / self.unit_chars


def detect_repetition(
    text: str,
    *,
    min_span: int = REPEAT_MIN_SPAN_CHARS,
    min_count: int = REPEAT_MIN_COUNT,
    max_unit: int = REPEAT_MAX_UNIT_CHARS,
) -> Repetition | None:
    """Find a loop at the end of `text`: a unit (any n-gram of characters, hence of tokens or words) repeated
    back to back at least `min_count` times over at least `min_span` characters. The unit may be cut at the end
    (outputs stop mid-loop at the token limit). Returns the shortest such unit, or None.
    """
    n = len(text)
    if n < min_span:
        return None
    last = n - 1
    for period in range(1, min(max_unit, n // min_count) + 1):
        if text[last] != text[last - period]:
            continue
        # length of the suffix in which text[i] == text[i - period]
        i = last
        while i - period >= 0 and text[i] == text[i - period]:
            i -= 1
        span = last - i + period  # the matching suffix plus the first copy of the unit
        if span >= min_span and span >= min_count * period:
            start = n - span
            return Repetition(unit=text[start : start + period], unit_chars=period, span_chars=span)
    return None


def runaway_reason(response: TileResponse) -> StopReason | None:
    """'repetition' or 'length' when a response ran away; None for a clean stop or an error."""
    if response.error is not None:
        return None
    if response.stop_reason == "repetition" or detect_repetition(response.text) is not None:
        return "repetition"
    if response.stop_reason == "length":
        return "length"
    return None


@dataclass
class _Job:
    """One tile of one page on its way through generation."""

    page_slot: int
    tile_index: int
    request: TileRequest
    response: TileResponse | None = None
    first_reason: StopReason | None = None
    retried: bool = False


@dataclass
class _PageWork:
    page: SourcePage
    where: str
    plan: EncodingPlan | None = None
    prompt_id: str | None = None
    failure: ErrorItem | None = None
    reference: list[Line] | None = None
    """The ocr engine's lines of the page, for a family that reads without boxes (docvlm.families.align)."""


class VlmEngine(ABC):
    """Base of the VLM engines. Subclasses implement `generate_batch` and `info`.

    Hooks a subclass may override: `resolve_family()` (e.g. read from the checkpoint's config) and
    `device_memory_bytes()` (sets the default visual-token budget of the plan).
    """

    name = "vlm"
    family: Family
    options: ConvertOptions

    def __init__(self, options: ConvertOptions, family: Family | None = None) -> None:
        self.options = options
        if family is not None:
            self.family = family

    # --- hooks ------------------------------------------------------------------------------------------

    @abstractmethod
    def generate_batch(self, requests: Sequence[TileRequest]) -> list[TileResponse]:
        """Generate for a batch of tiles.

        Args:
            requests: tiles with their prompts; images are at their planned size already.

        Returns:
            One response per request, in order. A failed request is a response with `error` set.

        Raises:
            docvlm.errors.ModelLoadError: when the model cannot be loaded at all.
        """

    @abstractmethod
    def info(self) -> EngineInfo: ...

    def resolve_family(self) -> Family:
        """The model family whose resize rule, prompts and box convention apply."""
        family = getattr(self, "family", None) or self.options.family
        if family is None:
            from docvlm.families import FAMILY_NAMES

            raise DocvlmError(f"engine {self.name}: the model family is unknown; pass --family "
                              f"({', '.join(FAMILY_NAMES)})")
        return family

    def device_memory_bytes(self) -> int | None:
        """Memory of the device the model runs on (None for CPU): sets the default visual-token budget."""
        return None

    def family_policy(self) -> ModelFamily:
        """The family entry planning this engine's pages (the hf engine's is set from the checkpoint's config)."""
        from docvlm.families import get_family

        entry = getattr(self, "family_entry", None)
        return entry if entry is not None else get_family(self.resolve_family())

    def reference_lines(self, image: Image.Image) -> list[Line]:
        """The ocr engine's lines of a page image (page pixels): where the words are, for a family that reads a
        page without printing boxes (LLaVA-NeXT). The ocr engine is created once per VLM engine."""
        ocr = getattr(self, "_ocr_engine", None)
        if ocr is None:
            from docvlm.engines.ocr import OcrEngine

            ocr = self._ocr_engine = OcrEngine(self.options)
        return ocr.ocr_image(image.convert("RGB"))

    # --- the shared pipeline ----------------------------------------------------------------------------

    def process_pages(self, pages: Sequence[SourcePage], task: Task) -> list[PageResult]:
        """Plan, render, generate (batched across the pages' tiles), guard, parse and map every page.

        Returns one PageResult per page, in order; a page that cannot be planned or rendered is a failed page.
        """
        from docvlm.families import get_family
        from docvlm.plan import plan_for_page, render_tile
        from docvlm.prompts import render_prompt

        family = self.resolve_family()
        align = task.kind == "read" and not get_family(family).grounds_documents
        variables = {k: v for k, v in (("query", task.query), ("schema_json", task.fields_schema)) if v is not None}
        prompt = render_prompt(task.kind, family, **variables)
        memory = self.device_memory_bytes()
        max_new = self.options.max_new_tokens

        works: list[_PageWork] = []
        jobs: list[_Job] = []
        for slot, page in enumerate(pages):
            work = _PageWork(page=page, where=f"{page.path} (page {page.index + 1})", prompt_id=prompt.ref)
            works.append(work)
            try:
                image = page.render()  # rendered once: the planner's text-height detector gets the same image
                work.plan = plan_for_page(page, self.options, family, task.kind, device_memory_bytes=memory,
                                          policy=self.family_policy())
                if align:
                    work.reference = self.reference_lines(image)
                for tile in work.plan.tiles:
                    request = TileRequest(
                        image=render_tile(image, tile), prompt=prompt.user, system=prompt.system,
                        max_new_tokens=max_new,
                    )
                    jobs.append(_Job(page_slot=slot, tile_index=tile.index, request=request))
                page.release()  # only the tiles stay alive until generation
            except DocvlmError as exc:
                work.failure = ErrorItem(code=exc.code, message=_prefixed(work.where, str(exc)), page=page.index)
            except Exception as exc:  # noqa: BLE001 - a page that cannot be planned or rendered is that page's failure
                work.failure = ErrorItem(
                    code="engine", message=f"{work.where}: cannot plan/render: {type(exc).__name__}: {exc}",
                    page=page.index,
                )

        self._run(jobs)
        retry = []
        for job in jobs:
            assert job.response is not None
            reason = runaway_reason(job.response)
            if reason is not None:
                job.first_reason = reason
                retry.append(job)
        if retry:
            for job in retry:
                r = job.request
                job.request = TileRequest(
                    image=r.image, prompt=r.prompt, system=r.system, max_new_tokens=r.max_new_tokens,
                    repetition_penalty=RETRY_REPETITION_PENALTY,
                )
                job.retried = True
            self._run(retry)

        return [self._page_result(slot, work, [j for j in jobs if j.page_slot == slot], task)
                for slot, work in enumerate(works)]

    def _run(self, jobs: list[_Job]) -> None:
        """Generate for the jobs in chunks of `options.batch_size`, across pages."""
        size = max(1, self.options.batch_size)
        for start in range(0, len(jobs), size):
            chunk = jobs[start : start + size]
            responses = self.generate_batch([j.request for j in chunk])
            if len(responses) != len(chunk):
                responses = [
                    TileResponse(text="", stop_reason="error",
                                 error=f"engine returned {len(responses)} responses for {len(chunk)} requests")
                ] * len(chunk)
            for job, response in zip(chunk, responses, strict=True):
                job.response = response

    def _page_result(self, slot: int, work: _PageWork, jobs: list[_Job], task: Task) -> PageResult:
        from docvlm.grounding import page_lines_from_outputs

        page = work.page
        common = dict(index=page.index, width_px=page.width_px, height_px=page.height_px, dpi=page.dpi,
                      text_source="model", prompt_id=work.prompt_id)
        if work.failure is not None or work.plan is None:
            failure = work.failure or ErrorItem(code="engine", message=f"{work.where}: no plan", page=page.index)
            return PageResult(status="failure", errors=[failure], plan=work.plan, **common)

        errors: list[ErrorItem] = []
        outputs: list[TileOutput] = []
        failed_tiles = 0
        for job in sorted(jobs, key=lambda j: j.tile_index):
            r = job.response
            assert r is not None
            if r.error is not None:
                failed_tiles += 1
                errors.append(ErrorItem(code="engine", message=f"{work.where}: tile {job.tile_index}: {r.error}",
                                        page=page.index, tile=job.tile_index))
                outputs.append(TileOutput(tile=job.tile_index, raw_text=r.text, prompt_tokens=r.prompt_tokens,
                                          generated_tokens=r.generated_tokens, stop_reason="error",
                                          retried=job.retried))
                continue
            stop: StopReason = r.stop_reason
            still = runaway_reason(r) if job.retried else None
            if still is not None:
                stop = still
                first = job.first_reason or still
                errors.append(
                    ErrorItem(
                        code="runaway",
                        message=(
                            f"{work.where}: tile {job.tile_index}: output stopped by {first} and again by {still} "
                            f"after a retry with repetition penalty {RETRY_REPETITION_PENALTY}; only the complete "
                            "part of the output was used (raise --max-new-tokens, or lower --max-visual-tokens "
                            "to cut the page into smaller tiles)"
                        ),
                        page=page.index,
                        tile=job.tile_index,
                    )
                )
            outputs.append(TileOutput(tile=job.tile_index, raw_text=r.text, prompt_tokens=r.prompt_tokens,
                                      generated_tokens=r.generated_tokens, stop_reason=stop, retried=job.retried))

        lines = []
        if task.kind in ("read", "ground"):
            ok = [o for o in outputs if o.stop_reason != "error"]
            label = task.query if task.kind == "ground" else None
            lines, parse_errors = page_lines_from_outputs(
                work.plan, ok, page_index=page.index, where=work.where, label=label, reference_lines=work.reference
            )
            errors.extend(parse_errors)
        # extract: the raw outputs and the plan are kept; docvlm.extract parses them against the schema
        failed = bool(jobs) and failed_tiles == len(jobs)
        status = "failure" if failed else ("partial" if errors else "success")
        return PageResult(status=status, lines=lines, errors=errors, plan=work.plan, outputs=outputs, **common)


def _prefixed(where: str, message: str) -> str:
    return message if message.startswith(where.split(" (page")[0]) else f"{where}: {message}"
