"""Parsing helpers shared by the families that print location tokens or bracketed numbers."""

from __future__ import annotations

import re

NUM = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")


def numbers(text: str) -> list[float]:
    return [float(v) for v in NUM.findall(text)]


def out_of_range(values: list[float], lo: float, hi: float) -> list[float]:
    """The values outside [lo, hi] (a location the grid does not have: reported, never clamped)."""
    return [v for v in values if not lo <= v <= hi]
