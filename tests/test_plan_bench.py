"""bench/plan_bench.py's bound helpers on made-up pages: the oracle's line, readability, and the smallest
uniform factor that keeps 95% of pages readable (what plan.ESTIMATE_PER_LINE_BOX is fitted with)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("plan_bench", ROOT / "bench" / "plan_bench.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def page(bench, size, line, n=40):
    """A page of `n` lines `line` px tall, one of them (2.5%) much smaller, with its default policy's tokens."""
    heights = [line] * (n - 1) + [line / 3]
    tokens, scale = bench.fixed_tokens(*size, None)
    return {"size": list(size), "heights": heights, "policies": {"default": {"tokens": tokens, "scale": scale}}}


def test_oracle_line_is_the_line_95_percent_reach(bench):
    assert bench.oracle_line([10.0] * 19 + [5.0]) == 10.0  # 1 line in 20 may stay under the floor
    assert bench.oracle_line([10.0] * 18 + [5.0, 5.0]) == 5.0


def test_a_plan_for_the_true_line_is_readable_and_for_a_larger_one_is_not(bench):
    row = page(bench, (1000, 1500), 11.0)  # small text: the floor needs an upscale
    line = bench.oracle_line(row["heights"])
    tokens, ok = bench._plan_tokens(row, line, 16.0)
    assert ok and tokens > row["policies"]["default"]["tokens"]
    fewer, too_small = bench._plan_tokens(row, 1.2 * line, 16.0)
    assert not too_small and fewer < tokens


def test_the_factor_is_the_smallest_that_keeps_95_percent_readable(bench):
    rows = [page(bench, (900, 1400 + 10 * i), 10.0 + 0.5 * i) for i in range(20)]
    truth = [bench.oracle_line(r["heights"]) for r in rows]
    exact = bench._with_factor(rows, truth, 16.0)
    assert exact["factor"] <= 1.0 and exact["pages_95pct_lines_ok"] >= 0.95
    # estimates 10% too high on every page: only a factor of about 1.1 makes them readable again
    high = bench._with_factor(rows, [1.1 * t for t in truth], 16.0)
    assert 1.05 <= high["factor"] <= 1.1 and high["pages_95pct_lines_ok"] >= 0.95
    assert high["mean_ratio_vs_default"] >= exact["mean_ratio_vs_default"] - 1e-9
