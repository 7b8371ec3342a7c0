"""Text repair: control characters dropped, Unicode NFC, detached combining marks joined to their letter, ligatures expanded.

PDF text layers often carry accents as separate spacing glyphs ("J´an Min´aˇc": U+00B4 and U+02C7 set next
to the letter) and ligature code points ("ﬁ"); OCR and models occasionally print decomposed forms. The page
keeps the source's text in `Line.raw_text` (and words their own `raw_text` is not kept: a word's repaired
text is what search wants; the line's raw text is enough to recover the original).

Missing spaces in text-layer words are restored earlier, in `docvlm.sources` (from the glyph boxes of
PyMuPDF's rawdict, which only the source can read); the line's `raw_text` then holds the text without them.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from docvlm.datamodel import Line, PageResult
from docvlm.layout.base import PageContext

LIGATURES = {
    "\ufb00": "ff",
    "\ufb01": "fi",
    "\ufb02": "fl",
    "\ufb03": "ffi",
    "\ufb04": "ffl",
    "\ufb05": "st",
    "\ufb06": "st",
    "\u0132": "IJ",
    "\u0133": "ij",
    "\u0152": "OE",
    "\u0153": "oe",
}
"""Typographic ligatures as their letters (Œ/œ are letters in French, but search and LLMs want 'oe')."""
_KEEP_AS_LETTERS = {"\u0152", "\u0153"}  # real letters in French: kept

SPACING_TO_COMBINING = {
    "\u00b4": "\u0301",  # acute
    "\u0060": "\u0300",  # grave
    "\u02c6": "\u0302",  # circumflex
    "\u005e": "\u0302",
    "\u02dc": "\u0303",  # tilde
    "\u00a8": "\u0308",  # diaeresis
    "\u02c7": "\u030c",  # caron
    "\u02d8": "\u0306",  # breve
    "\u02da": "\u030a",  # ring
    "\u00b8": "\u0327",  # cedilla
    "\u02db": "\u0328",  # ogonek
    "\u02dd": "\u030b",  # double acute
    "\u02d9": "\u0307",  # dot above
    "\u00af": "\u0304",  # macron
}
"""Spacing accents that TeX-made PDFs place before (or after) the letter they belong to."""

_ACCENTS = "".join(re.escape(c) for c in SPACING_TO_COMBINING if c not in "`^")
# A spacing accent followed by a letter it composes with (TeX order: accent, then the letter), optionally
# with a stray space. Backtick and caret only when glued to a letter inside a word (they are common on their
# own in code and formulas). A letter followed by an accent is left alone ("O´Neil" is an apostrophe).
_BEFORE = re.compile(rf"([{_ACCENTS}]) ?([A-Za-z\u0131])|(?<=[A-Za-z])([`^])([A-Za-z])")


def _compose(letter: str, accent: str) -> str | None:
    """The precomposed letter+accent, or None when Unicode has none (the pair is then left alone)."""
    if letter == "\u0131":  # dotless i from TeX's \'{\i}
        letter = "i"
    combined = unicodedata.normalize("NFC", letter + SPACING_TO_COMBINING[accent])
    return combined if len(combined) == 1 else None


def join_detached_accents(text: str) -> str:
    """'J´an Min´aˇc' -> 'Ján Mináč': spacing accents next to a letter become the accented letter."""
    if not any(c in SPACING_TO_COMBINING for c in text):
        return text

    def before(m: re.Match[str]) -> str:
        # a lone space after the accent belongs to the accent's own glyph box, not a word break
        accent, letter = (m.group(1), m.group(2)) if m.group(1) else (m.group(3), m.group(4))
        return _compose(letter, accent) or m.group(0)

    return _BEFORE.sub(before, text)


def expand_ligatures(text: str) -> str:
    return "".join(LIGATURES[c] if c in LIGATURES and c not in _KEEP_AS_LETTERS else c for c in text)


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
"""C0 and C1 control characters other than tab and newline: no printed form, never text on a page."""
_CONTROL_BULLET = re.compile(r"^([ \t]*)[\x00-\x08\x0b-\x1f\x7f-\x9f](?=[ \t]|$)")
"""A control character standing alone at the start of a line: a list bullet whose font gave it no Unicode
value (U+0099, U+0095 and the like where the page shows a dot)."""
BULLET = "\u2022"


def drop_controls(text: str) -> str:
    """Control characters out of the text; one standing alone at the start of a line becomes a bullet '•'."""
    if _CONTROL.search(text) is None:
        return text
    text = _CONTROL_BULLET.sub(lambda m: m.group(1) + BULLET, text)
    return _CONTROL.sub("", text.replace("\x95", BULLET))  # U+0095 is Windows-1252's bullet


_DOUBLED_QUOTES = {"\u2018\u2018": "\u201c", "\u2019\u2019": "\u201d"}
"""Two single curly quotes set as one double quote (TeX-made PDFs with some fonts): one double quote."""
_CHANGES = frozenset(SPACING_TO_COMBINING) | frozenset(LIGATURES) | {"\u2018", "\u2019"}


def _clean(text: str) -> bool:
    """Plain ASCII without a backtick, caret or control character: nothing any repair rule would change."""
    return text.isascii() and "`" not in text and "^" not in text and _CONTROL.search(text) is None


def repair_text(text: str) -> str:
    """Control characters dropped (a leading one as a bullet), NFC, detached spacing accents joined,
    ligatures expanded, doubled single quotes made double."""
    if _clean(text):
        return text  # the common case, kept cheap: nothing to normalise
    out = unicodedata.normalize("NFC", drop_controls(text))
    if any(c in _CHANGES for c in out):
        out = join_detached_accents(out)
        out = expand_ligatures(out)
        for doubled, single in _DOUBLED_QUOTES.items():
            out = out.replace(doubled, single)
        out = unicodedata.normalize("NFC", out)
    return out


def repair_line(line: Line) -> Line:
    """The line with repaired text and words; `raw_text` keeps what the source gave when anything changed."""
    if _clean(line.text) and all(_clean(w.text) for w in line.words):
        return line
    text = repair_text(line.text)
    words = [w if (t := repair_text(w.text)) == w.text else w.model_copy(update={"text": t}) for w in line.words]
    if text == line.text and all(a is b for a, b in zip(words, line.words, strict=True)):
        return line
    raw = line.raw_text if line.raw_text is not None else line.text
    return line.model_copy(update={"text": text, "words": words, "raw_text": raw})


STRAY_ACCENT_SHARE = 0.05
"""An OCR page whose accented Latin words are under this share of its Latin words (and at most
`STRAY_ACCENT_MAX_WORDS`) has no accents: the recognition model's character set holds accented letters,
and on plain English / Malay receipts it now and then prints one ("SETIA ÁLAM", "NOTÉ"). On SROIE dev
(000-149) such pages had 1-2 accented words, at most 2% of their Latin words; a French or German page has
far more (a French receipt: about a third of its words)."""
STRAY_ACCENT_MAX_WORDS = 3
_LATIN_WORD = re.compile(r"[^\W\d_]+")


def _strip_accents(text: str) -> str:
    """Latin letters without their diacritics ('ÁLAM' -> 'ALAM'); other scripts and ß, æ, ø left alone."""
    out = []
    for ch in text:
        if ch.isascii() or not ch.isalpha():
            out.append(ch)
            continue
        base = unicodedata.normalize("NFD", ch)
        out.append(base[0] if base[0].isascii() and base[0].isalpha() else ch)
    return "".join(out)


def _is_latin_letter(ch: str) -> bool:
    return ch.isascii() or unicodedata.name(ch, "").startswith("LATIN")


def has_stray_accents(texts: list[str]) -> bool:
    """True when the accented Latin words among `texts` are too few to be the page's language (see
    `STRAY_ACCENT_SHARE`)."""
    latin = accented = 0
    for text in texts:
        for word in _LATIN_WORD.findall(text):
            if not all(_is_latin_letter(c) for c in word):
                continue
            latin += 1
            accented += _strip_accents(word) != word
    return 0 < accented <= STRAY_ACCENT_MAX_WORDS and accented < STRAY_ACCENT_SHARE * latin


def strip_stray_accents(line: Line) -> Line:
    """The line (and its words) with Latin diacritics removed; `raw_text` keeps what the engine read."""
    text = _strip_accents(line.text)
    words = [w if (t := _strip_accents(w.text)) == w.text else w.model_copy(update={"text": t}) for w in line.words]
    if text == line.text and all(a is b for a, b in zip(words, line.words, strict=True)):
        return line
    raw = line.raw_text if line.raw_text is not None else line.text
    return line.model_copy(update={"text": text, "words": words, "raw_text": raw})


@dataclass(frozen=True)
class RepairText:
    """Page processor: `repair_line` on every line (all engines; OCR and model text get NFC too); on a page
    read by OCR, accents the recognition model made up (`has_stray_accents`) are removed."""

    name: str = "repair_text"

    def __call__(self, page: PageResult, ctx: PageContext) -> PageResult:
        lines = [repair_line(ln) for ln in page.lines]
        if page.text_source == "ocr" and has_stray_accents([ln.text for ln in lines]):
            lines = [strip_stray_accents(ln) for ln in lines]
        if all(a is b for a, b in zip(lines, page.lines, strict=True)):
            return page
        return page.model_copy(update={"lines": lines})
