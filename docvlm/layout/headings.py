"""Placeholder while the processor is written (replaced in the next commit)."""

from __future__ import annotations

from dataclasses import dataclass

from docvlm.datamodel import PageResult
from docvlm.layout.base import PageContext


@dataclass(frozen=True)
class MarkHeadings:
    name: str = "headings"

    def __call__(self, page: PageResult, ctx: PageContext) -> PageResult:
        return page
