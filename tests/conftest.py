"""Shared fixtures. Tests need no GPU and no network; data-dependent tests skip when ../shared/data is absent."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples"
SHARED_DATA = Path(os.environ.get("DOCVLM_TEST_DATA", ROOT.parent / "shared" / "data"))

# Pages are prepared in the feed's thread unless a test asks for preparers (tests/test_prep_workers.py does):
# `--prep-workers auto` would start one process per core for every engine a test makes on a many-core machine.
os.environ.setdefault("DOCVLM_PREP_WORKERS", "0")


@pytest.fixture(scope="session")
def samples_dir() -> Path:
    return SAMPLES


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"{SHARED_DATA} is absent")
    return SHARED_DATA
