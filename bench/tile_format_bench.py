"""Tile encoding: lossless PNG (level 1, what the openai engine sends by default) against lossless WebP, on the
tiles docvlm really sends: SROIE dev receipts (000-149, every k-th) and text-layer / scanned PDF pages, planned
for the openai engine (Qwen2.5-VL, 4096-token budget). Per format: encode CPU ms per tile (median, p90, total),
bytes (total, and against PNG 1), and decode CPU ms per tile (what the server pays: vLLM decodes images in its
API process). Every encoding is checked lossless (decoded pixels equal the tile's).

    python bench/tile_format_bench.py --receipts 24 --pdfs 6
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

FORMATS = {
    "png-1": ("PNG", {"compress_level": 1}),
    "png-6": ("PNG", {"compress_level": 6}),
    "webp-lossless-m0": ("WEBP", {"lossless": True, "method": 0, "exact": True}),
    "webp-lossless-m4": ("WEBP", {"lossless": True, "method": 4, "exact": True}),
}


def tiles(data: Path, receipts: int, pdfs: int) -> dict[str, list]:
    from docvlm.engines.base import Task
    from docvlm.engines.openai import OpenAIEngine
    from docvlm.engines.prep import prepare_page
    from docvlm.options import make_options
    from docvlm.sources import open_document

    options = make_options(engine="openai", base_url="http://127.0.0.1:9/v1", model="Qwen/Qwen2.5-VL-7B-Instruct",
                           prep_workers=0)
    spec = OpenAIEngine(options).prep_spec(Task(), encode=False)
    imgs = sorted(p for p in (data / "sroie-dev" / "img").glob("*.jpg") if p.stem[:3].isdigit()
                  and int(p.stem[:3]) < 150)
    sets: dict[str, list] = {"receipts": [], "pdf pages": []}
    chosen = imgs[:: max(1, len(imgs) // receipts)][:receipts]
    docs = (sorted((data / "docling-pdf").rglob("*.pdf")) + sorted((data / "olmocr-bench-sample").rglob("*.pdf")))
    for name, paths in (("receipts", chosen), ("pdf pages", docs[:: max(1, len(docs) // pdfs)][:pdfs])):
        for p in paths:
            try:
                with open_document(p, options) as doc:
                    ready = prepare_page(doc.page(doc.selected_indices()[0]), spec)
            except Exception:  # noqa: BLE001, S112 - a file the bench cannot open is left out
                continue
            sets[name].extend(ready.tiles)
    return sets


def measure(images: list) -> dict:
    from PIL import Image

    out = {}
    for name, (fmt, kw) in FORMATS.items():
        enc, dec, size = [], [], 0
        for img in images:
            rgb = img.convert("RGB")
            t = time.thread_time()
            buf = io.BytesIO()
            rgb.save(buf, format=fmt, **kw)
            enc.append(time.thread_time() - t)
            data = buf.getvalue()
            size += len(data)
            t = time.thread_time()
            back = Image.open(io.BytesIO(data))
            back.load()
            dec.append(time.thread_time() - t)
            assert back.convert("RGB").tobytes() == rgb.tobytes(), f"{name} is not lossless"
        q = statistics.quantiles(enc, n=10) if len(enc) > 1 else enc * 9
        out[name] = {"encode_ms_median": 1000 * statistics.median(enc), "encode_ms_p90": 1000 * q[-1],
                     "encode_ms_total": 1000 * sum(enc), "decode_ms_median": 1000 * statistics.median(dec),
                     "bytes_total": size}
    base = out["png-1"]
    for v in out.values():
        v["bytes_vs_png1"] = v["bytes_total"] / base["bytes_total"]
        v["encode_time_vs_png1"] = v["encode_ms_total"] / base["encode_ms_total"]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path("/work/shared/data"))
    ap.add_argument("--receipts", type=int, default=24)
    ap.add_argument("--pdfs", type=int, default=6)
    args = ap.parse_args()
    import os

    report = {"load_at_start": os.getloadavg(), "sets": {}}
    for name, images in tiles(args.data, args.receipts, args.pdfs).items():
        r = measure(images)
        report["sets"][name] = {"tiles": len(images), **r}
        print(f"\n{name}: {len(images)} tiles")
        for fmt, v in r.items():
            print(f"  {fmt:<17} encode {v['encode_ms_median']:6.1f} / {v['encode_ms_p90']:6.1f} ms (x{v['encode_time_vs_png1']:.2f}"
                  f" of png-1)  bytes x{v['bytes_vs_png1']:.2f} ({v['bytes_total'] / 1e6:.1f} MB)  decode "
                  f"{v['decode_ms_median']:5.1f} ms")
    report["load_at_end"] = os.getloadavg()
    dst = ROOT / "bench" / "results" / f"tile_format_bench-{time.strftime('%Y%m%d-%H%M%S')}.json"
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_text(json.dumps(report, indent=1))
    print(f"\nload {report['load_at_start'][0]:.1f} -> {report['load_at_end'][0]:.1f}; wrote {dst}")


if __name__ == "__main__":
    main()
