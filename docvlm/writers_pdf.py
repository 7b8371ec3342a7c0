"""Moved to `docvlm.writers.pdf`; this name stays for old imports."""

from docvlm.writers.pdf import *  # noqa: F403
