"""bench/gpu_bench.py --tiny: the GPU benchmark's whole code path on tiny configs on the CPU."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_gpu_bench_tiny_runs(tmp_path):
    pytest.importorskip("transformers")
    out = tmp_path / "tiny.json"
    r = subprocess.run([sys.executable, str(ROOT / "bench" / "gpu_bench.py"), "--tiny", "--out", str(out)],
                       capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    data = json.loads(out.read_text())
    assert {row["model"] for row in data["rows"]} == {"Qwen2-VL-2B-tiny", "Qwen2.5-VL-3B-tiny", "Qwen2.5-VL-7B-tiny"}
    for row in data["rows"]:
        assert set(row["policies"]) == {"docvlm", "default"}, row
        for entry in row["policies"].values():
            assert entry["prefill_s_per_page"] > 0 and entry["visual_tokens_per_page"] > 0
            for batch in ("1", "2"):
                dec = entry["decode"][batch]
                assert dec["tokens_per_s"] > 0 and dec["projected_pages_per_s"] > 0
    # docvlm's planned encodings cost fewer visual tokens than the default on the samples
    row = data["rows"][0]["policies"]
    assert row["docvlm"]["visual_tokens_per_page"] < row["default"]["visual_tokens_per_page"]


def test_gpu_bench_pages_match_the_planner():
    """The committed encodings are what docvlm plans today for the samples (rerun --write-pages if not)."""
    from docvlm.options import make_options
    from docvlm.plan import plan_document

    pages = json.loads((ROOT / "bench" / "gpu_bench_pages.json").read_text())["pages"]
    first = pages[0]
    path = ROOT / "samples" / first["name"].split("#")[0]
    if not path.is_file():
        pytest.skip("samples/ not generated")
    plan = plan_document(str(path), make_options(max_visual_tokens=16384), "qwen2.5")[0].plan
    assert plan is not None and [list(t.encoded_size) for t in plan.tiles] == first["docvlm"]["tiles"]
