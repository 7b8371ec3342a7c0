"""What every family entry provides, and the pieces the families share (parse results, convention sniffing).

Frames (see docvlm.geometry): a family's parser returns boxes in the *model* frame, exactly as printed (in the
printed order: PaliGemma's y_min, x_min, y_max, x_max stays in that order); `model_to_encoded` turns them into
pixels of the encoded image [x0, y0, x1, y1]; `encoded_to_model` is the inverse as a perfect model would print
it (the oracle of tests and benches). Nothing here clamps, swaps or repairs a box: an inverted box stays
inverted and geometry reports it as `invalid_box`.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar, Literal

if TYPE_CHECKING:
    from docvlm.datamodel import Box, EncodingPlan

PromptStyle = Literal["chat", "plain"]


@dataclass(frozen=True)
class GroundedItem:
    """One box the model printed, in the model's frame (as printed), with its text and/or label."""

    text: str
    box_model: tuple[float, float, float, float]
    label: str | None = None


@dataclass(frozen=True)
class ParseResult:
    """A tile's parsed output: boxes in the model frame, text lines without boxes (families that read but do
    not ground), and one error string per part that could not be used."""

    items: list[GroundedItem] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)


MAX_SNIPPET = 60
BF16_BYTES = 2
PROMPT_TEXT_TOKENS = 120
"""Instruction + template tokens around the image (as docvlm.memory assumes for Qwen)."""


def snip(text: str) -> str:
    text = " ".join(text.split())
    return repr(text[:MAX_SNIPPET] + ("..." if len(text) > MAX_SNIPPET else ""))


# Box syntaxes of every family, for naming the convention of an output printed in the wrong one.
CONVENTION_MARKERS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("Qwen2-VL box tokens", re.compile(r"<\|box_start\|>")),
    ("Qwen JSON bbox_2d", re.compile(r"\"?bbox_2d\"?\s*:")),
    ("Qwen HTML data-bbox", re.compile(r"data-bbox\s*=")),
    ("PaliGemma <locNNNN>", re.compile(r"<loc\d{4}>")),
    ("Florence-2 <loc_N>", re.compile(r"<loc_\d+>")),
    ("DeepSeek-OCR <|det|>", re.compile(r"<\|det\|>")),
)


def foreign_conventions(text: str, own: Sequence[str]) -> list[str]:
    """Names of box conventions found in `text` other than the family's own (`own`: names from CONVENTION_MARKERS)."""
    return [name for name, rx in CONVENTION_MARKERS if name not in own and rx.search(text)]


def wrong_convention_error(text: str, family_title: str, own: Sequence[str]) -> str | None:
    """An error message when `text` carries another family's boxes (e.g. Qwen JSON from a model declared
    PaliGemma): those boxes are in a frame docvlm cannot know, so none of them is used."""
    found = foreign_conventions(text, own)
    if not found:
        return None
    return (f"output uses {', '.join(found)}, not {family_title}'s convention: its boxes are not used "
            f"(check --family / the served model; `docvlm reparse --family` re-reads the kept raw output): "
            f"{snip(text)}")


def processor_size(image_processor: object) -> tuple[object, object]:
    """(width, height) an image processor resizes to: its `size` as a dict or as an object (None where unset)."""
    s = getattr(image_processor, "size", None)
    if isinstance(s, dict):
        return s.get("width"), s.get("height")
    return getattr(s, "width", None), getattr(s, "height", None)


@dataclass(frozen=True)
class MemoryFigures:
    """Shape numbers of a family's default released model, enough for `docvlm plan`'s memory estimate."""

    model: str
    params_b: float
    """Parameters of the whole checkpoint, billions (from the released config / model card)."""
    layers: int
    kv_heads: int
    head_dim: int


class ModelFamily(ABC):
    """One family's registry entry. Subclasses set the class attributes and implement the frame maps,
    the parser and the encoding policy."""

    name: ClassVar[str]
    title: ClassVar[str]
    convention: ClassVar[str]
    """How boxes are printed (one line, for README / `docvlm plan`)."""
    frame: ClassVar[str]
    """What the printed numbers are relative to."""
    model_types: ClassVar[tuple[str, ...]] = ()
    """config.json `model_type` values of checkpoints of this family."""
    served_patterns: ClassVar[tuple[str, ...]] = ()
    """Regexes (case-insensitive) on served model names (openai engine)."""
    hf_model_class: ClassVar[str | None] = None
    """transformers class that loads the checkpoint (None: the hf engine does not run this family)."""
    hf_processor_class: ClassVar[str | None] = None
    prompt_style: ClassVar[PromptStyle] = "chat"
    """chat: the processor's chat template; plain: the prompt text goes to the processor as is (PaliGemma,
    Florence-2 have no chat template)."""
    grounds_documents: ClassVar[bool] = True
    """False for a family that reads a page but prints no line boxes (LLaVA-NeXT): its read lines are grounded
    by aligning them with the ocr engine's lines (docvlm.families.align)."""
    own_conventions: ClassVar[tuple[str, ...]] = ()
    memory: ClassVar[MemoryFigures | None] = None

    # --- frames -----------------------------------------------------------------------------------------

    @abstractmethod
    def model_to_encoded(self, box_model: Sequence[float], encoded_size: tuple[int, int]) -> Box:
        """Model frame (as printed) -> encoded pixels [x0, y0, x1, y1]; never reorders or repairs."""

    @abstractmethod
    def encoded_to_model(self, box_encoded: Sequence[float], encoded_size: tuple[int, int]) -> Box:
        """Encoded pixels -> what a perfect model prints (rounded/quantized, in printed order)."""

    @abstractmethod
    def grid_unit_px(self, encoded_size: tuple[int, int]) -> tuple[float, float]:
        """One unit of the printed grid in encoded pixels, per axis (the round-trip tolerance)."""

    # --- output -----------------------------------------------------------------------------------------

    @abstractmethod
    def parse(self, raw_text: str) -> ParseResult:
        """Every box (and ungrounded text line) of one tile's raw output, in the model frame. Never raises."""

    @abstractmethod
    def render_output(self, items: Sequence[tuple[str, Box]], task: str = "read") -> str:
        """What a perfect model prints for `items` (text, box in the model frame): the oracle's printer."""

    # --- encoding policy --------------------------------------------------------------------------------

    @abstractmethod
    def plan(
        self,
        page_size_px: tuple[int, int],
        *,
        text_line_px: float | None,
        min_text_px: float,
        max_visual_tokens: int | None,
        task_kind: str,
        text_height_source: str | None,
        line_height_px: float | None,
        device_memory_bytes: int | None,
    ) -> EncodingPlan:
        """docvlm's plan of one page for this family (sizes only)."""

    @abstractmethod
    def default_policy(self, page_size_px: tuple[int, int]) -> tuple[int, float]:
        """What the family's own processor does with the whole page: (visual tokens, encoded px per page px
        along the page's height, the axis text lines are measured on)."""

    @abstractmethod
    def visual_tokens(self, encoded_size: tuple[int, int]) -> int:
        """Visual tokens the model spends on one encoded image."""

    def memory_note(self, max_tile_tokens: int, batch: int, max_new_tokens: int) -> str:
        """A rough memory figure from the family's default model card: bf16 weights + the KV cache of a batch."""
        m = self.memory
        if m is None:
            return f"no memory figures for {self.title}"
        weights = m.params_b * 1e9 * BF16_BYTES
        per_token = 2 * m.layers * m.kv_heads * m.head_dim * BF16_BYTES
        kv = per_token * (max_tile_tokens + PROMPT_TEXT_TOKENS + max_new_tokens) * batch
        return (f"{self.title} ({m.model}, {m.params_b:g}B): weights ~{weights / 2**30:.1f} GiB bf16 + KV cache "
                f"~{kv / 2**30:.2f} GiB for {batch} x ({max_tile_tokens} visual + {max_new_tokens} new tokens); "
                "vision activations not modelled")

    def for_config(self, config: object) -> ModelFamily:
        """The entry for one checkpoint (a family whose resolution the checkpoint fixes returns a variant)."""
        return self

    def processor_keeps(self, image_processor: object, size: tuple[int, int]) -> bool:
        """True when the checkpoint's image processor leaves an image of `size` (w, h) as it is (no resize, no
        padding), so the frame of the printed numbers is the planned tile."""
        return True

    def check_convention(self, text: str, items: Sequence[GroundedItem], errors: list[str], boxes: str) -> None:
        """Output in another family's convention is an error on the page; so is output that holds none of this
        family's `boxes` and no other error."""
        wrong = wrong_convention_error(text, self.title, self.own_conventions)
        if wrong is not None:
            errors.append(wrong)
        elif not items and not errors and text.strip():
            errors.append(f"no {boxes} boxes found in the output: {snip(text)}")

    def describe(self) -> str:
        return f"{self.title}: {self.convention}; frame: {self.frame}"
