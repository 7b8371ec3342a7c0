"""Issue 17 item 6: outputs follow the umask like any file the user writes; a rewritten file keeps its mode."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pymupdf
import pytest

from docvlm.batch import run_batch
from docvlm.options import make_options
from docvlm.writers import atomic_write_bytes


@pytest.fixture
def umask() -> Iterator[None]:
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.skipif(not hasattr(os, "fchmod"), reason="POSIX file modes")
def test_new_outputs_follow_the_umask_and_rewrites_keep_the_mode(tmp_path: Path, umask: None) -> None:
    os.umask(0o022)
    atomic_write_bytes(tmp_path / "a.json", b"{}")
    assert mode(tmp_path / "a.json") == 0o644
    os.umask(0o002)
    atomic_write_bytes(tmp_path / "b.json", b"{}")
    assert mode(tmp_path / "b.json") == 0o664
    os.umask(0o077)
    atomic_write_bytes(tmp_path / "c.json", b"{}")
    assert mode(tmp_path / "c.json") == 0o600
    os.umask(0o022)
    (tmp_path / "a.json").chmod(0o640)
    atomic_write_bytes(tmp_path / "a.json", b"[]")  # rewriting keeps the file's mode, as `open(..., "w")` does
    assert mode(tmp_path / "a.json") == 0o640 and (tmp_path / "a.json").read_bytes() == b"[]"


@pytest.mark.skipif(not hasattr(os, "fchmod"), reason="POSIX file modes")
def test_every_batch_output_and_the_summary_follow_the_umask(tmp_path: Path, umask: None) -> None:
    src = tmp_path / "in" / "a.pdf"
    src.parent.mkdir()
    doc = pymupdf.open()
    doc.new_page(width=300, height=200).insert_text((20, 50), "hello")
    doc.save(src)
    os.umask(0o002)
    out = tmp_path / "out"
    run_batch([src.parent], out, make_options(engine="scripted", formats=("json", "md", "pdf")),
              overlay_dir=tmp_path / "ov")
    files = [p for p in [*out.rglob("*"), *(tmp_path / "ov").rglob("*")] if p.is_file()]
    assert {p.suffix for p in files} == {".json", ".md", ".pdf", ".png"}
    assert {p.name: oct(mode(p)) for p in files} == {p.name: oct(0o664) for p in files}
