"""The docvlm command line: options in, library called, results rendered. No logic lives here.

Each command group lives in its own module (convert/show/summary, plan/ground/reparse, extract/schema);
none of them imports torch or transformers at import time.
"""

from __future__ import annotations

import click

from docvlm import __version__
from docvlm.cli import batch_cmds, extract_cmds, vlm_cmds


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="docvlm")
def main() -> None:
    """Grounded, validated JSON from PDFs, scans and receipt photos."""


for _module in (batch_cmds, vlm_cmds, extract_cmds):
    for _command in _module.COMMANDS:
        main.add_command(_command)
