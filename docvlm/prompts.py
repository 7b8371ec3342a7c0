"""Prompt templates: one file per task and model family, versioned, shipped as package data.

Layout: `prompts/<task>/<family>.txt` (task: read, ground, extract; family: qwen2, qwen2.5, qwen3). A template
file starts with a header line `# id: read-qwen2.5 version: 1`; further `#` lines before the first section are
comments. Sections start with `--- system` and `--- user`. Variables are written `{{name}}` (double braces, so
JSON examples in a template need no escaping): `{{query}}` for ground, `{{schema_json}}` for extract.

The loader reads the repository's `prompts/` folder (editable install) or `docvlm/_data/prompts` (wheel:
pyproject force-includes prompts -> docvlm/_data/prompts). Changing a template's wording means bumping its
version: the result records `id@version` (`PageResult.prompt_id`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Literal

from docvlm.errors import UsageError

TaskKind = Literal["read", "ground", "extract"]
_HEADER = re.compile(r"^#\s*id:\s*(?P<id>[\w.\-]+)\s+version:\s*(?P<version>\d+)\s*$")
_VAR = re.compile(r"\{\{\s*(\w+)\s*\}\}")


@dataclass(frozen=True)
class PromptTemplate:
    id: str
    version: int
    system: str | None
    user: str
    path: Path


@dataclass(frozen=True)
class RenderedPrompt:
    """A prompt ready for the chat template: system text (or None) and the user text that follows the image."""

    id: str
    version: int
    system: str | None
    user: str

    @property
    def ref(self) -> str:
        """`id@version`, recorded in `PageResult.prompt_id`."""
        return f"{self.id}@{self.version}"


def prompts_dir() -> Path:
    """The folder holding the templates: the repo's prompts/ (editable) or the wheel's docvlm/_data/prompts."""
    here = Path(__file__).resolve().parent
    for candidate in (here.parent / "prompts", here / "_data" / "prompts"):
        if candidate.is_dir():
            return candidate
    raise UsageError(
        f"prompt templates not found (looked in {here.parent / 'prompts'} and {here / '_data' / 'prompts'}): "
        "reinstall docvlm (pip install --force-reinstall docvlm)"
    )


def parse_template(text: str, path: Path) -> PromptTemplate:
    """Parse a template file's text. Raises UsageError naming the file when it is malformed."""
    lines = text.splitlines()
    match = _HEADER.match(lines[0].strip()) if lines else None
    if not match:
        raise UsageError(f"{path}: first line must be '# id: NAME version: N'")
    sections: dict[str, list[str]] = {}
    current: str | None = None
    for line in lines[1:]:
        stripped = line.strip()
        if stripped.startswith("--- "):
            current = stripped[4:].strip()
            if current not in ("system", "user"):
                raise UsageError(f"{path}: unknown section {current!r} (use '--- system' or '--- user')")
            sections[current] = []
        elif current is None:
            if stripped and not stripped.startswith("#"):
                raise UsageError(f"{path}: text before the first '--- system' / '--- user' section")
        else:
            sections[current].append(line)
    if "user" not in sections:
        raise UsageError(f"{path}: missing '--- user' section")
    system = "\n".join(sections["system"]).strip() if "system" in sections else None
    return PromptTemplate(
        id=match["id"],
        version=int(match["version"]),
        system=system or None,
        user="\n".join(sections["user"]).strip(),
        path=path,
    )


@lru_cache(maxsize=64)
def load_template(task_kind: str, family: str) -> PromptTemplate:
    """Load `prompts/<task_kind>/<family>.txt`. Raises UsageError when there is no such template."""
    path = prompts_dir() / task_kind / f"{family}.txt"
    if not path.is_file():
        raise UsageError(f"no prompt template for task {task_kind!r} and family {family!r} ({path} is missing)")
    return parse_template(path.read_text(encoding="utf-8"), path)


def render_prompt(task_kind: TaskKind, family: str, **variables: str) -> RenderedPrompt:
    """Fill a template's `{{name}}` variables.

    Args:
        task_kind: read, ground or extract.
        family: qwen2, qwen2.5 or qwen3.
        **variables: query= for ground, schema_json= for extract.

    Returns:
        The rendered prompt with its id and version.

    Raises:
        UsageError: unknown template, or a variable the template needs is missing.
    """
    template = load_template(task_kind, family)

    def fill(text: str) -> str:
        def sub(m: re.Match[str]) -> str:
            name = m.group(1)
            if variables.get(name) is None:
                raise UsageError(f"prompt {template.id}: variable {name!r} is required ({template.path})")
            return str(variables[name])

        return _VAR.sub(sub, text)

    return RenderedPrompt(
        id=template.id,
        version=template.version,
        system=fill(template.system) if template.system else None,
        user=fill(template.user),
    )
