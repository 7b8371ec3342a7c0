"""Moved to `docvlm.writers.hocr`; this name stays for old imports."""

from docvlm.writers.hocr import *  # noqa: F403
from docvlm.writers.hocr import HocrWriter, hocr_box, render_hocr, write_hocr  # noqa: F401
