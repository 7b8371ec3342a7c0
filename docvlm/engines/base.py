"""The engine protocol and the task an engine is asked to do."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal, Protocol

from pydantic import Field

from docvlm.datamodel import Frozen

if TYPE_CHECKING:
    from docvlm.datamodel import EngineInfo, PageResult
    from docvlm.sources import SourcePage


class Task(Frozen):
    """What the engine is asked to do with each page."""

    kind: Literal["read", "ground", "extract"] = Field(
        default="read", description="read: all text lines with boxes; ground: boxes for a query; extract: fields."
    )
    query: str | None = Field(default=None, description="The grounding query (kind='ground').")
    schema_name: str | None = Field(default=None, description="Extraction schema name (kind='extract').")
    fields_schema: str | None = Field(default=None, description="JSON Schema of the fields to extract (kind='extract').")


class Engine(Protocol):
    """An engine turns pages into page results. A single page is a batch of one."""

    name: str

    def info(self) -> EngineInfo:
        """Describe the engine: model, family, device, precision and why they were chosen."""
        ...

    def process_pages(self, pages: Sequence[SourcePage], task: Task) -> list[PageResult]:
        """Process a batch of pages.

        Args:
            pages: pages of one document, in order.
            task: what to do with each page.

        Returns:
            One `PageResult` per page, in order, with boxes in page pixels (`bbox_pdf_pt` may be left empty:
            the pipeline fills it from the page DPI). A page the engine could not read is a result with
            status "failure" and an error, not an exception.

        Raises:
            docvlm.errors.EngineError: only when the engine itself is unusable (model cannot load).
        """
        ...
