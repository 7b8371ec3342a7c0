"""Peak memory of preparing one huge bilevel page for the VLM path (issue 16, bad input): a 20000x20000 1-bit
PNG of text under a raised --max-page-pixels, prepared as the openai engine prepares it (estimate, plan,
render, cut, encode) in a fresh subprocess; its peak RSS (ru_maxrss) is printed. Run it against two checkouts
to compare (PYTHONPATH decides which docvlm is measured).

    python bench/big_page_memory.py --make /tmp/big1.png      # once: writes the test image
    PYTHONPATH=/work/main python bench/big_page_memory.py /tmp/big1.png
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

SIZE = 20_000
LINE_PX = 200
"""Text lines of about this many pixels: big enough for the estimate to see them on its 0.5-MP copy, so the
plan reduces the page (a page of 16-px text would need the whole page at full size in its tiles, whatever the
decoder does)."""


def make(path: Path) -> None:
    from PIL import Image, ImageDraw, ImageFont

    img = Image.new("1", (SIZE, SIZE), 1)
    d = ImageDraw.Draw(img)
    font = ImageFont.load_default(size=LINE_PX)
    for k, y in enumerate(range(200, SIZE - 200, 3 * LINE_PX)):
        d.text((200, y), f"LINE {k:04d} TOTAL 12.50 RM  " * 3, fill=0, font=font)
    img.save(path, optimize=False)


def measure(path: Path) -> dict:
    from docvlm.engines.base import Task
    from docvlm.engines.openai import OpenAIEngine
    from docvlm.options import make_options
    from docvlm.sources import open_document

    options = make_options(engine="openai", base_url="http://127.0.0.1:9/v1", model="Qwen/Qwen2.5-VL-7B-Instruct",
                           max_page_pixels=SIZE * SIZE + 1, prep_workers=0)
    engine = OpenAIEngine(options)
    started = time.perf_counter()
    with open_document(path, options) as doc:
        page = next(iter(doc.pages()))
        try:
            from docvlm.engines.prep import prepare_page

            ready = prepare_page(page, engine.prep_spec(Task()))
            tiles, failure, plan = ready.tiles, ready.failure, ready.plan
        except ImportError:  # code before docvlm.engines.prep
            from docvlm.plan import plan_for_page, render_tiles

            plan = plan_for_page(page, options, engine.resolve_family(), device_memory_bytes=engine.device_memory_bytes())
            tiles, failure = render_tiles(page, plan.tiles), None
    return {"peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "seconds": time.perf_counter() - started, "tiles": len(tiles),
            "failure": failure.message if failure else None,
            "plan": plan.reason if plan else None}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("path", type=Path)
    ap.add_argument("--make", action="store_true", help="Write the test image to PATH and stop.")
    args = ap.parse_args()
    if args.make:
        make(args.path)
        return
    json.dump(measure(args.path), sys.stdout)
    print()


if __name__ == "__main__":
    main()
