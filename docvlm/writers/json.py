"""`--format json`: the validated `DocumentResult` as indented JSON, and the export of its JSON Schema.

Run `python -m docvlm.writers --export-schema [PATH]` to regenerate schemas/docvlm-result.schema.json.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from docvlm.datamodel import DocumentResult
from docvlm.writers.files import atomic_write_text

SCHEMA_PATH = Path(__file__).resolve().parent.parent.parent / "schemas" / "docvlm-result.schema.json"
"""Where the exported JSON Schema of `DocumentResult` is checked in (repo layout)."""


@dataclass(frozen=True)
class JsonWriter:
    name: str = "json"
    suffix: str = ".json"

    def write(self, result: DocumentResult, source_path: str | Path | None, out_path: Path) -> None:
        atomic_write_text(out_path, result.model_dump_json(indent=2) + "\n")


def export_schema() -> str:
    """The JSON Schema of `DocumentResult`, as checked in at schemas/docvlm-result.schema.json."""
    schema = DocumentResult.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://github.com/docvlm/docvlm/schemas/docvlm-result.schema.json"
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m docvlm.writers", description="Export the result schema.")
    parser.add_argument("--export-schema", nargs="?", const=str(SCHEMA_PATH), metavar="PATH",
                        help=f"write the DocumentResult JSON Schema (default {SCHEMA_PATH})")
    args = parser.parse_args(argv)
    if not args.export_schema:
        parser.print_help()
        return 2
    atomic_write_text(args.export_schema, export_schema())
    print(f"wrote {args.export_schema}")
    return 0
