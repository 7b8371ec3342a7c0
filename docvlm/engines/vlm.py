"""What every VLM engine (hf, openai) shares: plan -> prompt -> generate -> guard -> parse -> geometry.

An engine subclass only implements `generate_batch` (planned tile images in, raw text out) and `info`.
Everything after the engine returns text is one code path for every VLM engine.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from PIL import Image

    from docvlm.datamodel import EngineInfo, Family, StopReason


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


class VlmEngine(ABC):
    """Base of the VLM engines. Subclasses implement `generate_batch` and `info`."""

    name = "vlm"
    family: Family

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
