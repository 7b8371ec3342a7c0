"""Fuzzing through the real CLI: truncated, bit-flipped and random-byte PDFs and images in one batch.

No traceback ever reaches the user, every unreadable file gets an error record in the run summary, every good
file in the same batch is converted. Runs `docvlm convert` (and `docvlm extract` when it exists) as
subprocesses on real files written by the test.
"""

from __future__ import annotations

import io
import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pymupdf as fitz
import pytest
from PIL import Image, ImageDraw

from docvlm.datamodel import DocumentResult

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples"
SEED = 20261122
N_FUZZ = 40


def make_pdf(pages: int = 2, seed: int = 0) -> bytes:
    doc = fitz.open()
    for i in range(pages):
        page = doc.new_page(width=595, height=842)
        page.insert_text((72, 100), f"Invoice {seed}-{i + 1}", fontsize=18)
        page.insert_text((72, 140), "Total due: 123.45 EUR", fontsize=11)
        page.draw_rect(fitz.Rect(72, 200, 300, 260), color=(0, 0, 0), fill=(0, 0, 0))
    data = doc.tobytes(garbage=3)
    doc.close()
    return data


def make_image(fmt: str, seed: int = 0) -> bytes:
    img = Image.new("RGB", (420, 300), "white")
    d = ImageDraw.Draw(img)
    d.text((20, 20), f"RECEIPT {seed}", fill="black")
    d.rectangle([20, 60, 200, 90], fill="black")
    buf = io.BytesIO()
    img.save(buf, format=fmt)
    return buf.getvalue()


def good_sources() -> list[tuple[str, bytes]]:
    """Generated good files, plus the repo's samples when they exist."""
    out = [
        ("good_a.pdf", make_pdf(2, 1)),
        ("good_b.pdf", make_pdf(1, 2)),
        ("good_c.png", make_image("PNG", 3)),
        ("good_d.jpg", make_image("JPEG", 4)),
    ]
    if SAMPLES.is_dir():
        for p in sorted(SAMPLES.iterdir()):
            if p.suffix.lower() in {".pdf", ".png", ".jpg", ".jpeg"} and p.stat().st_size < 3_000_000:
                out.append((f"sample_{p.name}", p.read_bytes()))
    return out


def fuzz_files(rng: random.Random, bases: list[tuple[str, bytes]], n: int) -> list[tuple[str, bytes, bool]]:
    """(name, bytes, surely_bad): truncations, bit flips, random bytes. `surely_bad` files must fail."""
    files: list[tuple[str, bytes, bool]] = [
        ("empty.pdf", b"", True),
        ("empty.png", b"", True),
        ("header_only.pdf", b"%PDF-1.7\n", True),
        ("not_a_pdf.pdf", b"hello, I am a text file\n" * 20, True),
        ("png_header_only.png", b"\x89PNG\r\n\x1a\n", True),
    ]
    kinds = ["truncate", "flip", "random"]
    i = 0
    while len(files) < n:
        name, data = bases[i % len(bases)]
        kind = kinds[i % len(kinds)]
        stem, suffix = os.path.splitext(name)
        if kind == "truncate":
            cut = rng.randint(1, max(1, len(data) // 3))  # keep at most a third: the trailer/IEND are gone
            files.append((f"trunc_{i:02d}_{stem}{suffix}", data[:cut], False))
        elif kind == "flip":
            buf = bytearray(data)
            for _ in range(rng.randint(1, 64)):
                pos = rng.randrange(len(buf))
                buf[pos] ^= 1 << rng.randrange(8)
            files.append((f"flip_{i:02d}_{stem}{suffix}", bytes(buf), False))
        else:
            size = rng.choice([1, 7, 100, 4096, 65536])
            files.append((f"rand_{i:02d}{suffix}", rng.randbytes(size), True))
        i += 1
    return files


def run_cli(*args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCVLM_")}
    env["PYTHONWARNINGS"] = "ignore"
    return subprocess.run(
        [sys.executable, "-m", "docvlm", *args], capture_output=True, text=True, timeout=timeout, env=env,
        cwd=ROOT,
    )


def assert_no_traceback(proc: subprocess.CompletedProcess[str]) -> None:
    for stream in (proc.stdout, proc.stderr):
        assert "Traceback (most recent call last)" not in stream, stream[-4000:]


@pytest.fixture(scope="module")
def fuzz_folder(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, bool]]:
    rng = random.Random(SEED)
    folder = tmp_path_factory.mktemp("fuzz_in")
    goods = good_sources()
    expect: dict[str, bool] = {}  # name -> True good, False surely bad; absent: may go either way
    for name, data in goods:
        (folder / name).write_bytes(data)
        expect[name] = True
    for name, data, surely_bad in fuzz_files(rng, goods[:4], N_FUZZ):
        (folder / name).write_bytes(data)
        if surely_bad:
            expect[name] = False
    return folder, expect


def load_summary(out: Path) -> dict:
    return json.loads((out / "_docvlm_summary.json").read_text())


def check_batch(proc: subprocess.CompletedProcess[str], out: Path, names: set[str], expect: dict[str, bool],
                *, good_status: tuple[str, ...] = ("success",)) -> dict:
    """No traceback; exit 1; one record per input; failures name the file; goods converted; outputs valid."""
    assert_no_traceback(proc)
    assert proc.returncode == 1, (proc.returncode, proc.stderr[-2000:])  # some inputs failed, none crashed
    summary = load_summary(out)
    records = {Path(d["path"]).name: d for d in summary["documents"]}
    assert set(records) == names, names ^ set(records)  # every input has a record
    for name, rec in records.items():
        if rec["status"] == "failure":
            assert rec["errors"], f"{name}: failure without an error message"
            assert any(name in e for e in rec["errors"]), f"{name}: error does not name the file: {rec['errors']}"
        if expect.get(name) is True:
            assert rec["status"] in good_status, (name, rec["errors"])
        elif expect.get(name) is False:
            assert rec["status"] == "failure", (name, rec)
    return summary


def subset(folder: Path, with_samples: bool) -> set[str]:
    return {p.name for p in folder.iterdir() if with_samples or not p.name.startswith("sample_")}


@pytest.mark.parametrize("engine", ["scripted", pytest.param("ocr", marks=pytest.mark.slow)])
def test_convert_fuzzed_batch(fuzz_folder: tuple[Path, dict[str, bool]], tmp_path: Path, engine: str) -> None:
    folder, expect = fuzz_folder
    out = tmp_path / "out"
    if engine == "scripted":  # the whole folder, two worker processes
        names = subset(folder, True)
        args = ["convert", str(folder), "-o", str(out), "--engine", engine, "--dpi", "72", "--workers", "2"]
    else:  # the real CPU engine on the generated files (the samples are slow to OCR), files named one by one
        names = subset(folder, False)
        args = ["convert", *sorted(str(folder / n) for n in names), "-o", str(out), "--engine", engine,
                "--dpi", "72"]
    summary = check_batch(run_cli(*args), out, names, expect)
    for path in sorted(out.rglob("*.json")):  # every output that exists is a complete, valid result
        if path.name.startswith("_docvlm_summary"):
            continue
        result = DocumentResult.model_validate_json(path.read_bytes())
        for page in result.pages:
            for line in page.lines:
                x0, y0, x1, y1 = line.bbox_page_px
                assert 0 <= x0 < x1 <= page.width_px and 0 <= y0 < y1 <= page.height_px
    assert summary["totals"]["success"] >= sum(1 for n, v in expect.items() if v and n in names)


def test_extract_fuzzed_batch(fuzz_folder: tuple[Path, dict[str, bool]], tmp_path: Path) -> None:
    """`docvlm extract` on the same kind of batch: an error record per bad file, good files extracted."""
    if run_cli("extract", "--help").returncode != 0:
        pytest.skip("docvlm extract is not available yet")
    folder, expect = fuzz_folder
    # every surely-bad file, a sixth of the fuzzed ones, a good PDF and a good image (OCR is slow on 2 cores)
    names = {n for n in subset(folder, False) if expect.get(n) is False}
    names |= {n for n in subset(folder, False) if n.startswith(("trunc_", "flip_")) and int(n.split("_")[1]) % 6 == 0}
    names |= {"good_a.pdf", "good_c.png"}
    out = tmp_path / "out"
    proc = run_cli("extract", *sorted(str(folder / n) for n in names), "-o", str(out), "--schema", "invoice",
                   "--engine", "ocr", "--dpi", "72")
    check_batch(proc, out, names, expect, good_status=("success", "partial"))
