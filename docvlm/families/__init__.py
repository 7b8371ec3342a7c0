"""Model families: what a model sees and what it prints (the engine registry says how a model runs).

One module per family, one registry entry each (`docvlm.families.registry.REGISTRY`). An entry holds the
prompt templates' family name, the planner's encoding policy, the output parser, the frame the model prints
in, the transformers classes and the token/memory figures `docvlm plan` shows.

This package's `__init__` stays import-free (datamodel takes `FAMILY_NAMES` from here); the registry loads on
the first `get_family()`.

| family        | prints                                                         | frame of the numbers                     |
|---------------|----------------------------------------------------------------|------------------------------------------|
| qwen2         | `<|box_start|>(x1,y1),(x2,y2)<|box_end|>`                       | 0-1000 grid over the encoded image       |
| qwen2.5       | JSON `bbox_2d` [x1, y1, x2, y2]                                 | absolute pixels of the encoded image     |
| qwen3         | JSON `bbox_2d` [x1, y1, x2, y2]                                 | 0-1000 grid over the encoded image       |
| paligemma     | `<locYMIN><locXMIN><locYMAX><locXMAX> label`                    | 1024 bins over the square encoded image  |
| florence2     | `text<loc_x1><loc_y1>...<loc_x4><loc_y4>` (quads) / 4 for boxes | 1000 bins, bin centre, 768x768 image     |
| deepseek-ocr  | `<|ref|>label<|/ref|><|det|>[[x1, y1, x2, y2]]<|/det|>`         | 0-999 (value/999) over the encoded image |
| llava-next    | plain text lines; `[x1, y1, x2, y2]` floats 0-1 for a query     | 0-1 over the encoded (square) image      |
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from docvlm.families.base import ModelFamily

FAMILY_NAMES: tuple[str, ...] = (
    "qwen2", "qwen2.5", "qwen3", "paligemma", "florence2", "deepseek-ocr", "llava-next",
)
"""Every family name, in the order `--family` lists them; the registry is checked against it at import."""


def get_family(name: str) -> ModelFamily:
    """The registry entry of `name`. Raises UsageError naming the choices for an unknown name."""
    from docvlm.families.registry import REGISTRY

    try:
        return REGISTRY[name]
    except KeyError:
        from docvlm.errors import UsageError

        raise UsageError(f"unknown model family {name!r}: use one of {', '.join(FAMILY_NAMES)}") from None


def family_for_model_type(model_type: str | None) -> str | None:
    """The family of a checkpoint's config `model_type` (qwen2_5_vl -> qwen2.5, paligemma -> paligemma), or None."""
    from docvlm.families.registry import REGISTRY

    for fam in REGISTRY.values():
        if model_type in fam.model_types:
            return fam.name
    return None


def family_for_served_name(model: str) -> str | None:
    """The family named in a served model name (`Qwen/Qwen2.5-VL-7B-Instruct`, `google/paligemma2-3b-mix-448`,
    `llava-hf/llava-v1.6-mistral-7b-hf`, Ollama's `qwen2.5vl:7b`), or None."""
    import re

    from docvlm.families.registry import REGISTRY

    for fam in REGISTRY.values():
        for pattern in fam.served_patterns:
            if re.search(pattern, model, flags=re.IGNORECASE):
                return fam.name
    return None
