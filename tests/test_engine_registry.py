"""The engine registry is the one place engines are named: CLI choices, options type, loading and batching
derive from it, and no module branches on an engine's name."""

from __future__ import annotations

import re
import typing
from pathlib import Path

import click

from docvlm.engines.registry import ENGINE_NAMES, ENGINES, engine_spec
from docvlm.options import ConvertOptions, make_options

ROOT = Path(__file__).resolve().parent.parent


def test_cli_choices_and_options_type_come_from_the_registry():
    from docvlm.cli import main

    convert = main.commands["convert"]
    engine_opt = next(p for p in convert.params if p.name == "engine")
    assert isinstance(engine_opt.type, click.Choice)
    assert tuple(engine_opt.type.choices) == ENGINE_NAMES
    literal = ConvertOptions.model_fields["engine"].annotation
    assert typing.get_args(literal) == ENGINE_NAMES
    assert ConvertOptions().engine == ENGINE_NAMES[0]


def test_every_entry_loads_a_class_of_that_name():
    for name, spec in ENGINES.items():
        cls = spec.load() if name != "hf" else None  # hf's module imports torch lazily too, but keep it cheap
        if cls is not None:
            assert cls.name == name
        opts = make_options(engine=name)
        assert spec.pages_per_call(opts) >= 1
        for field in spec.options:
            assert field in ConvertOptions.model_fields, f"{name} reads unknown option {field}"


def test_batching_derives_from_the_entry():
    assert engine_spec("openai").pages_per_call(make_options(engine="openai", concurrency=32, batch_size=2)) == 32
    assert engine_spec("hf").pages_per_call(make_options(engine="hf", batch_size=6)) == 6
    assert engine_spec("ocr").plans is False and engine_spec("hf").plans is True
    assert engine_spec("ocr").answers_queries is False and engine_spec("scripted").answers_queries is True


def test_unknown_engine_is_a_usage_error_naming_the_known_ones():
    import pytest

    from docvlm.errors import UsageError

    with pytest.raises(UsageError, match="use one of ocr, hf"):
        engine_spec("nope")


def test_no_module_branches_on_an_engine_name():
    """`options.engine == "ocr"` and friends are what the registry replaces (getattr(engine, ...) too)."""
    names = "|".join(ENGINE_NAMES)
    pattern = re.compile(rf"engine\s*(==|!=|in)\s*\(?[\"'](?:{names})[\"']|getattr\(engine, \"pages_per_call\"")
    offenders = []
    for path in (ROOT / "docvlm").rglob("*.py"):
        if path.name == "registry.py":
            continue
        for i, line in enumerate(path.read_text().splitlines(), 1):
            if pattern.search(line):
                offenders.append(f"{path.relative_to(ROOT)}:{i}: {line.strip()}")
    assert not offenders, offenders
