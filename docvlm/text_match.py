"""Fuzzy text matching, one implementation for every offline search of printed text: the ocr engine's
`ground` task (`docvlm.engines.ocr.ground_lines`) and `docvlm ground` (`docvlm.extract.ground`).

Text is compared whitespace-collapsed and lower-cased, by difflib's similarity ratio (1.0 equal, 0.8 about
one slip in five characters).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from difflib import SequenceMatcher

MIN_SIMILARITY = 0.8
"""A run of words this similar to the query counts as a fuzzy match (OCR slips, spacing)."""


def norm(text: str) -> str:
    """Whitespace collapsed to single spaces, lower case."""
    return " ".join(text.split()).lower()


def similarity(a: str, b: str) -> float:
    """Similarity ratio of two texts after `norm`."""
    return SequenceMatcher(None, norm(a), norm(b)).ratio()


def fuzzy_contains(text: str, query: str) -> float:
    """Best similarity of `query` to a window of `text` of the query's length (1.0 for a substring)."""
    t, q = norm(text), norm(query)
    if not q or not t:
        return 0.0
    if q in t:
        return 1.0
    n = len(q)
    if len(t) <= n:
        return SequenceMatcher(None, t, q).ratio()
    return max(SequenceMatcher(None, t[i : i + n], q).ratio() for i in range(len(t) - n + 1))


def best_word_runs(words: Sequence[str], query: str, *, threshold: float = MIN_SIMILARITY,
                   sizes: Iterable[int] | None = None) -> list[tuple[float, int, int]]:
    """Runs `words[i:j]` reading like the query (similarity >= threshold), best first, none overlapping.

    `sizes` limits the run lengths tried (in words); None tries every length.
    """
    want = norm(query)
    if not want or not words:
        return []
    lengths = sorted({s for s in sizes if s >= 1}) if sizes is not None else range(1, len(words) + 1)
    scored = []
    for size in lengths:
        for i in range(0, len(words) - size + 1):
            ratio = SequenceMatcher(None, want, norm(" ".join(words[i : i + size]))).ratio()
            if ratio >= threshold:
                scored.append((ratio, i, i + size))
    chosen: list[tuple[float, int, int]] = []
    for ratio, i, j in sorted(scored, key=lambda r: (-r[0], r[1], r[2] - r[1])):
        if all(j <= a or i >= b for _, a, b in chosen):
            chosen.append((ratio, i, j))
    return chosen
