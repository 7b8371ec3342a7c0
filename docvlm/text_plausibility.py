"""Is a PDF text layer real text, or mojibake? A language- and dictionary-free judgement of extracted words.

A font whose ToUnicode map sends glyphs to the wrong characters gives a text layer that extracts fine and reads
as nonsense: often ASCII punctuation and symbols in the order the subset assigned its glyphs (`!"##$ %$&#'`),
or letters of several scripts thrown together. Real text in any script is mostly *word-like tokens*: after
trimming the punctuation around a token, what is left is made of pieces that are each letters of one script
(CJK ideographs, kana and hangul count as one script), digits, or letters-and-digits codes, joined by the few
characters that join pieces inside real tokens (`- / . , : ' _ @ & +`), with a plausible letter case (lower,
Title, UPPER, or at most `MAX_CASE_SWITCHES` lower-to-upper switches: "iPhone", "McDonald").

Three measures over a page's non-space characters, each with its own bound: the share in word-like tokens
(`MIN_WORDLIKE_SHARE`), the share of punctuation and symbols (`MAX_SYMBOL_SHARE`; dot leaders count once),
and how often consecutive letters change script (`MAX_SCRIPT_SWITCH_RATE`; MuPDF splits words where the
writing direction changes, so letters of mixed scripts can arrive as one-letter "words"). Tables of numbers,
formulas with a few symbols, URLs, codes and bilingual pages stay inside all three; mojibake falls outside at
least one. Pages with fewer than `MIN_JUDGED_CHARS` characters are not judged (too little to tell).

Measured by `bench/text_plausibility_bench.py` on the docling and olmOCR sample PDFs: no page of them is
judged implausible (see the bench for the figures).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache

MIN_WORDLIKE_SHARE = 0.5
"""A text layer with a smaller share of its characters in word-like tokens is implausible."""
MAX_SCRIPT_SWITCH_RATE = 0.3
"""A text layer whose consecutive letters change script (Latin, Cyrillic, Greek, Arabic, ...) more often than
this is implausible: bilingual text changes script only between words or phrases (a few %), glyphs mapped onto
letters of mixed scripts change at most letters."""
LEADER_RUN = re.compile(r"([^\w\s])\1{2,}")
"""A run of one repeated punctuation character (dot leaders of a table of contents, rules drawn with '-' or
'_'): counted as one character, it is layout, not text."""
MAX_SYMBOL_SHARE = 0.35
"""A text layer with a larger share of punctuation and symbol characters (Unicode P* and S*) is implausible:
prose has about 3-8 %, dense tables of figures rarely reach 25 %, glyphs mapped in subset order onto ASCII
give over 50 %."""
MIN_JUDGED_CHARS = 40
"""Pages with fewer non-space characters are not judged (plausible by default)."""
MAX_CASE_SWITCHES = 2
"""Lower-to-upper switches allowed inside one alphabetic piece ("McDonald" has 1, "KcJjMx" has 3)."""
JOINERS = frozenset("-/.,:'’_@&+·")
"""Characters that join the pieces of one real token (codes, dates, URLs, e-mail, contractions)."""
EDGE_PUNCT = frozenset("\"'“”‘’«»()[]{}<>.,;:!?¡¿%$€£¥#*†‡§¶•–—-…/\\|~^`=+°®©™")
"""Punctuation trimmed from both ends of a token before judging its core."""
ONE_SCRIPT = {"HIRAGANA": "CJK", "KATAKANA": "CJK", "HANGUL": "CJK", "CJK": "CJK", "HALFWIDTH": "CJK",
              "IDEOGRAPHIC": "CJK", "FULLWIDTH": "FULLWIDTH", "MATHEMATICAL": "LATIN", "MODIFIER": "LATIN",
              "SCRIPT": "LATIN", "DOUBLE-STRUCK": "LATIN", "BLACK-LETTER": "LATIN", "PLANCK": "LATIN"}
"""Unicode name prefixes that count as one script (Japanese and Korean words mix them; math letters are Latin)."""


@dataclass(frozen=True)
class TextPlausibility:
    """The verdict on one page's text layer."""

    chars: int = field(metadata={"doc": "Non-space characters judged."})
    wordlike_share: float = field(metadata={"doc": "Share of those characters inside word-like tokens."})
    symbol_share: float = field(metadata={"doc": "Share of those characters that are punctuation or symbols."})
    script_switch_rate: float = field(metadata={"doc": "Share of consecutive letter pairs that change script."})
    plausible: bool
    reason: str = field(metadata={"doc": "Why, with the figures (for warnings and the page's note)."})


@lru_cache(maxsize=4096)
def _script(ch: str) -> str:
    """The script of a letter: the first word of its Unicode name (LATIN, CYRILLIC, GREEK, ...)."""
    try:
        first = unicodedata.name(ch).split(" ", 1)[0]
    except ValueError:
        return "UNKNOWN"
    return ONE_SCRIPT.get(first, first)


def _piece_ok(piece: str) -> bool:
    """A piece between joiners: letters of one script (with their marks), digits, or a letters+digits code."""
    scripts = set()
    switches = 0
    prev_lower = False
    for ch in piece:
        cat = unicodedata.category(ch)
        if cat.startswith("L"):
            scripts.add(_script(ch))
            if ch.isupper() and prev_lower:
                switches += 1
            prev_lower = ch.islower()
        elif cat.startswith("N"):
            prev_lower = False
        elif cat.startswith("M"):  # a combining mark belongs to the letter before it
            continue
        else:
            return False
    return len(scripts) <= 1 and switches <= MAX_CASE_SWITCHES


def is_wordlike(token: str) -> bool:
    """True when `token` (no spaces) looks like a word, a number or a code in some script."""
    core = token
    while core and core[0] in EDGE_PUNCT:
        core = core[1:]
    while core and core[-1] in EDGE_PUNCT:
        core = core[:-1]
    if not core:
        return False
    piece: list[str] = []
    for ch in core:
        if ch in JOINERS:
            if piece and not _piece_ok("".join(piece)):
                return False
            piece = []
        else:
            piece.append(ch)
    return not piece or _piece_ok("".join(piece))


def judge_words(words: Iterable[str]) -> TextPlausibility:
    """Judge the words of one page's text layer (see the module docstring)."""
    total = wordlike = symbols = pairs = switches = 0
    previous_token = ""
    previous_script = None
    for word in words:
        for raw in word.split():
            token = LEADER_RUN.sub(r"\1", raw)
            if token == previous_token and not any(ch.isalnum() for ch in token):
                continue  # leaders split into one token per dot
            previous_token = token
            n = len(token)
            total += n
            if is_wordlike(token):
                wordlike += n
            for ch in token:
                cat = unicodedata.category(ch)
                if cat[0] in "PS":
                    symbols += 1
                elif cat[0] == "L":
                    script = _script(ch)
                    if previous_script is not None:
                        pairs += 1
                        switches += script != previous_script
                    previous_script = script
    if total < MIN_JUDGED_CHARS:
        return TextPlausibility(total, 1.0, 0.0, 0.0, True, f"{total} character(s): too few to judge")
    share, sym, mixed = wordlike / total, symbols / total, switches / max(1, pairs)
    figures = (f"{share:.0%} of its {total} characters form words, numbers or codes, {sym:.0%} are symbols, "
               f"{mixed:.0%} of letter pairs change script")
    if share < MIN_WORDLIKE_SHARE or sym > MAX_SYMBOL_SHARE or mixed > MAX_SCRIPT_SWITCH_RATE:
        return TextPlausibility(total, share, sym, mixed, False,
                                f"{figures} (real text: over {MIN_WORDLIKE_SHARE:.0%} words, under "
                                f"{MAX_SYMBOL_SHARE:.0%} symbols, under {MAX_SCRIPT_SWITCH_RATE:.0%} script "
                                "changes): the PDF's fonts map glyphs to the wrong characters (mojibake)")
    return TextPlausibility(total, share, sym, mixed, True, figures)


__all__ = ["MAX_SCRIPT_SWITCH_RATE", "MAX_SYMBOL_SHARE", "MIN_JUDGED_CHARS", "MIN_WORDLIKE_SHARE",
           "TextPlausibility", "is_wordlike", "judge_words"]
