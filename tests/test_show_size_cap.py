"""Issue 17 item 5: `docvlm show` does not trust the page size in a result file: capped as rendering is."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner
from PIL import Image

from docvlm.cli import main


def converted(tmp_path: Path) -> Path:
    src = tmp_path / "in" / "b.png"
    src.parent.mkdir()
    Image.new("RGB", (120, 80), "white").save(src)
    res = CliRunner().invoke(main, ["convert", str(src), "-o", str(tmp_path / "out"), "--engine", "scripted"])
    assert res.exit_code == 0, res.output
    return tmp_path / "out" / "b.png.json"


def claim_size(result_json: Path, width: int, height: int) -> None:
    data = json.loads(result_json.read_text())
    data["pages"][0]["width_px"], data["pages"][0]["height_px"] = width, height
    result_json.write_text(json.dumps(data))


def test_show_refuses_a_page_size_over_the_cap(tmp_path: Path) -> None:
    result_json = converted(tmp_path)
    png_dir = tmp_path / "png"
    claim_size(result_json, 10_000, 9_000)  # 90 Mpx: just over the default cap of 80 Mpx
    res = CliRunner().invoke(main, ["show", str(result_json), "--out", str(png_dir)])
    assert res.exit_code == 2, res.output
    assert "page 1 claims 10000x9000 px" in res.output and "over the cap of 80,000,000" in res.output
    assert str(result_json) in res.output
    assert not png_dir.exists()
    claim_size(result_json, 200_000, 200_000)  # what reached 23.6 GB
    res = CliRunner().invoke(main, ["show", str(result_json), "--out", str(png_dir)])
    assert res.exit_code == 2 and "200000x200000" in res.output and not png_dir.exists()


def test_show_max_page_pixels_option(tmp_path: Path) -> None:
    result_json = converted(tmp_path)
    res = CliRunner().invoke(main, ["show", str(result_json), "--max-page-pixels", "5000"])
    assert res.exit_code == 2 and "120x80 px (9,600 pixels), over the cap of 5,000" in res.output
    res = CliRunner().invoke(main, ["show", str(result_json)])
    assert res.exit_code == 0, res.output
