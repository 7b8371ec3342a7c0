"""Table structure on real PDFs: docvlm's layout stage against PyMuPDF find_tables and pymupdf4llm.

Data:
- `camelot-tables/`: expected cells in `data.py`; which PDF, pages and table each expectation belongs to is read
  from the camelot test files as data (their `ast`, never run). Tests that pass hints (table areas, regions,
  columns) are skipped: docvlm finds tables unaided. The PDF files are split up front by sorted file-name
  parity: even positions are the dev half (tuned on), odd positions the check half.
- `docling-pdf/`: pages with tables in a peer's output (`groundtruth/*.json`); agreement only, not truth.

Measures, micro-averaged over expected tables (each matched to the found table on its pages that shares the
most relations with it):
- ICDAR 2013 adjacency relations: each non-empty cell with its nearest non-empty neighbour to the right and
  below, text compared without whitespace; precision, recall, F1.
- cells: non-empty cell texts (without whitespace) as a multiset; precision and recall.
- boxes: share of docvlm's non-empty cells whose box has IoU >= 0.5 with the union of the page's text-layer
  word boxes that spell the cell (each token's nearest same-text word inside the table).
- time: per page, the table step against the text-layer conversion of the same page.

    python bench/table_bench.py [--data ../shared/data] [--limit N] [--tag T]
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import re
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

HINT_KWARGS = {"table_areas", "table_regions", "columns", "header_text", "footer_text"}


@dataclass
class Expected:
    pdf: str  # relative to camelot-tables/pdfs
    pages: list[int]  # 0-based
    rows: list[list[str]]
    name: str
    split: str = ""


@dataclass
class Score:
    rel_ok: int = 0
    rel_pred: int = 0
    rel_gt: int = 0
    cell_ok: int = 0
    cell_pred: int = 0
    cell_gt: int = 0
    box_ok: int = 0
    box_n: int = 0
    tables: int = 0
    found: int = 0
    per_table: list[dict] = field(default_factory=list)

    def add(self, other: dict) -> None:
        for k in ("rel_ok", "rel_pred", "rel_gt", "cell_ok", "cell_pred", "cell_gt"):
            setattr(self, k, getattr(self, k) + other[k])
        self.tables += 1
        self.found += 1 if other["rel_pred"] else 0
        self.per_table.append(other)

    def summary(self) -> dict:
        p = self.rel_ok / self.rel_pred if self.rel_pred else 0.0
        r = self.rel_ok / self.rel_gt if self.rel_gt else 0.0
        f = 2 * p * r / (p + r) if p + r else 0.0
        cp = self.cell_ok / self.cell_pred if self.cell_pred else 0.0
        cr = self.cell_ok / self.cell_gt if self.cell_gt else 0.0
        return {
            "tables": self.tables, "found": self.found,
            "adjacency_p": round(p, 4), "adjacency_r": round(r, 4), "adjacency_f1": round(f, 4),
            "cell_p": round(cp, 4), "cell_r": round(cr, 4),
            "box_iou50": round(self.box_ok / self.box_n, 4) if self.box_n else None, "box_n": self.box_n,
        }


# --- expectations from camelot's tests (as data) ----------------------------------------------------------


def _load_data(path: Path) -> dict[str, list[list[str]]]:
    """Evaluate data.py's assignments one by one (literals, slices and list() of earlier names only)."""
    tree = ast.parse(path.read_text())
    env: dict[str, object] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            code = compile(ast.Expression(node.value), str(path), "eval")
            env[node.targets[0].id] = eval(code, {"__builtins__": {"list": list}}, env)  # noqa: S307
        elif isinstance(node, ast.Expr) and isinstance(node.value, ast.Call):
            call = node.value  # data_x.extend(data_y)
            if isinstance(call.func, ast.Attribute) and call.func.attr == "extend":
                target = env[call.func.value.id]  # type: ignore[attr-defined]
                target.extend(eval(compile(ast.Expression(call.args[0]), "", "eval"), {}, env))  # type: ignore
    return {k: v for k, v in env.items() if k.startswith("data_")}  # type: ignore[misc]


def _pages(spec: str | None) -> list[int] | None:
    if spec is None:
        return [0]
    if spec in ("all", "1-end"):
        return None
    out: list[int] = []
    for part in spec.split(","):
        if "-" in part:
            a, b = part.split("-")
            out.extend(range(int(a) - 1, int(b)))
        else:
            out.append(int(part) - 1)
    return out


def read_expectations(root: Path) -> list[Expected]:
    data = _load_data(root / "data.py")
    found: dict[tuple, Expected] = {}
    for test in sorted(root.glob("test_*.py")):
        tree = ast.parse(test.read_text())
        for fn in tree.body:
            if not isinstance(fn, ast.FunctionDef):
                continue
            dfs: dict[str, str] = {}
            filename = None
            call_kw: dict[str, object] | None = None
            for node in ast.walk(fn):
                if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
                    v = node.value
                    name = node.targets[0].id
                    if isinstance(v, ast.Call) and getattr(v.func, "attr", "") == "DataFrame" and v.args \
                            and isinstance(v.args[0], ast.Name):
                        dfs[name] = v.args[0].id
            # walk statements in order to pair filename / read_pdf / comparisons
            for stmt in fn.body:
                for node in ast.walk(stmt):
                    if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
                        if node.targets[0].id == "filename" and isinstance(node.value, ast.Call):
                            consts = [a.value for a in node.value.args if isinstance(a, ast.Constant)]
                            filename = consts[-1] if consts else None
                        if isinstance(node.value, ast.Call) and getattr(node.value.func, "attr", "") == "read_pdf":
                            call_kw = {}
                            for kw in node.value.keywords:
                                try:
                                    call_kw[kw.arg] = ast.literal_eval(kw.value)
                                except ValueError:
                                    call_kw[kw.arg] = "?"
                    if isinstance(node, ast.Call) and filename and call_kw is not None:
                        names = [a.id for a in node.args if isinstance(a, ast.Name)]
                        if isinstance(node.func, ast.Attribute) and node.func.attr == "equals":
                            names.append(getattr(node.func.value, "id", ""))
                        subs = [a for a in ast.walk(node) if isinstance(a, ast.Subscript)
                                and getattr(a.value, "id", "") == "tables"]
                        df = next((dfs[n] for n in names if n in dfs), None)
                        if df is None or not subs or df not in data:
                            continue
                        if HINT_KWARGS & set(call_kw):
                            continue
                        pages = _pages(call_kw.get("pages"))  # type: ignore[arg-type]
                        rows = [[str(c) for c in r] for r in data[df]]
                        key = (filename, tuple(pages or []), json.dumps(rows))
                        if key not in found:
                            found[key] = Expected(filename, pages or [], rows, f"{fn.name}:{df}")
    exps = [e for e in found.values() if (root / "pdfs" / e.pdf).exists()]
    files = sorted({e.pdf for e in exps})
    for e in exps:
        e.split = "dev" if files.index(e.pdf) % 2 == 0 else "check"
    return exps


# --- measures ---------------------------------------------------------------------------------------------


def _norm(s: str) -> str:
    return re.sub(r"\s+", "", s)


def relations(grid: list[list[str]]) -> Counter:
    """ICDAR 2013 adjacency relations of a grid of cell texts (already at their top-left slots)."""
    rel: Counter = Counter()
    g = [[_norm(c) for c in row] for row in grid]
    n_cols = max((len(r) for r in g), default=0)
    g = [r + [""] * (n_cols - len(r)) for r in g]
    for r, row in enumerate(g):
        for c, t in enumerate(row):
            if not t:
                continue
            for cc in range(c + 1, n_cols):
                if row[cc]:
                    rel[(t, row[cc], "h")] += 1
                    break
            for rr in range(r + 1, len(g)):
                if g[rr][c]:
                    rel[(t, g[rr][c], "v")] += 1
                    break
    return rel


def score_pair(gt: list[list[str]], pred: list[list[str]] | None) -> dict:
    gr = relations(gt)
    pr = relations(pred) if pred else Counter()
    gc = Counter(_norm(c) for r in gt for c in r if _norm(c))
    pc = Counter(_norm(c) for r in (pred or []) for c in r if _norm(c))
    return {
        "rel_ok": sum((gr & pr).values()), "rel_pred": sum(pr.values()), "rel_gt": sum(gr.values()),
        "cell_ok": sum((gc & pc).values()), "cell_pred": sum(pc.values()), "cell_gt": sum(gc.values()),
    }


def best_match(gt: list[list[str]], preds: list[list[list[str]]]) -> tuple[dict, int | None]:
    best, best_i = score_pair(gt, None), None
    for i, p in enumerate(preds):
        s = score_pair(gt, p)
        if (s["rel_ok"], s["cell_ok"]) > (best["rel_ok"], best["cell_ok"]):
            best, best_i = s, i
    return best, best_i


def grid_of(table) -> list[list[str]]:
    """A docvlm Table as rows of texts at their top-left slots."""
    g = [[""] * table.n_cols for _ in range(table.n_rows)]
    for c in table.cells:
        g[c.row][c.col] = c.text
    return g


# --- systems ----------------------------------------------------------------------------------------------


TEXT_SYSTEM = "default"
"""The system the text-layer runs use (`--text-system`; names as in `scan_systems`)."""


def timed_page(sp, engine, opts, shown: str, times: dict):
    """One page through the engine without layout, then the table step alone; both times added to `times`."""
    from docvlm.engines.base import Task
    from docvlm.layout.base import PageContext
    from docvlm.layout.tables import FindTables
    from docvlm.pipeline import assemble_page

    t0 = time.perf_counter()
    page = assemble_page(sp, engine.process_pages([sp], Task())[0], seconds=None)
    t1 = time.perf_counter()
    table_models, kinds = scan_systems()[TEXT_SYSTEM]
    opts = opts.model_copy(update={"table_models": table_models})
    page = FindTables(kinds=kinds)(page, PageContext(source=sp, options=opts, shown=shown))
    t2 = time.perf_counter()
    times["convert_s"] += t1 - t0
    times["tables_s"] += t2 - t1
    times["pages"] += 1
    return page


def run_docvlm(path: Path, pages: list[int] | None, dpi: int = 72) -> tuple[dict[int, list], dict]:
    """docvlm on a PDF: text-layer conversion without layout, then the table step alone, both timed."""
    from docvlm.engines.ocr import OcrEngine
    from docvlm.options import ConvertOptions
    from docvlm.sources import open_document

    opts = ConvertOptions(dpi=dpi, layout=False)
    engine = OcrEngine(opts)
    out: dict[int, list] = {}
    times = {"convert_s": 0.0, "tables_s": 0.0, "pages": 0}
    with open_document(path, opts) as doc:
        idx = list(range(doc.page_count)) if not pages else pages
        for i in idx:
            if i >= doc.page_count:
                continue
            page = timed_page(doc.page(i), engine, opts, str(path), times)
            out[i] = [page, page.tables]
    return out, times


def run_find_tables(path: Path, pages: list[int] | None) -> dict[int, list[list[list[str]]]]:
    import pymupdf

    out: dict[int, list] = {}
    with pymupdf.open(path) as doc:
        for i in (pages or range(doc.page_count)):
            if i >= doc.page_count:
                continue
            try:
                tabs = doc[i].find_tables()
                out[i] = [[[c or "" for c in row] for row in t.extract()] for t in tabs.tables]
            except Exception:  # noqa: BLE001 - a peer failing on a page scores as nothing found
                out[i] = []
    return out


def run_pymupdf4llm(path: Path, pages: list[int] | None) -> dict[int, list[list[list[str]]]]:
    import pymupdf

    from docvlm.layout.tables.model_output import _markdown_tables

    try:
        import pymupdf4llm
    except ImportError:
        return {}

    out: dict[int, list] = {}
    with pymupdf.open(path) as doc:
        n = doc.page_count
    for i in (pages or range(n)):
        if i >= n:
            continue
        try:
            md = pymupdf4llm.to_markdown(str(path), pages=[i], show_progress=False)
        except Exception:  # noqa: BLE001
            md = ""
        tabs = _markdown_tables(md)
        out[i] = [[[c.text.replace("<br>", " ") for c in row] for row in t.rows] for t in tabs]
    return out


def box_check(page_words: list[tuple], table, dpi: float) -> tuple[int, int]:
    """Cells whose box has IoU >= 0.5 with the text-layer words spelling them: each token of the cell's text
    takes the nearest unused text-layer word with that text (vertical distance weighted 100x)."""
    from docvlm.geometry import iou, union_box

    k = dpi / 72.0
    tb = table.bbox_page_px
    inside = [(w[4], (w[0] * k, w[1] * k, w[2] * k, w[3] * k)) for w in page_words]
    inside = [w for w in inside if tb[0] - 2 <= (w[1][0] + w[1][2]) / 2 <= tb[2] + 2
              and tb[1] - 2 <= (w[1][1] + w[1][3]) / 2 <= tb[3] + 2]
    ok = n = 0
    for c in table.cells:
        if not c.text.strip() or c.bbox_page_px is None:
            continue
        n += 1
        cx = (c.bbox_page_px[0] + c.bbox_page_px[2]) / 2
        cy = (c.bbox_page_px[1] + c.bbox_page_px[3]) / 2
        boxes = []
        taken: set[int] = set()
        for tok in c.text.split():  # each token takes the nearest unused same-text word (rows weigh more)
            cands = [j for j, (t, b) in enumerate(inside) if t == tok and j not in taken]
            if cands:
                j = min(cands, key=lambda j: abs((inside[j][1][0] + inside[j][1][2]) / 2 - cx)
                        + 100 * abs((inside[j][1][1] + inside[j][1][3]) / 2 - cy))
                taken.add(j)
                boxes.append(inside[j][1])
        if boxes and iou(union_box(boxes), c.bbox_page_px) >= 0.5:
            ok += 1
    return ok, n


def _anchor(anchor_python: str | None, path: Path, pages: list[int] | None) -> dict:
    if not anchor_python:
        return run_pymupdf4llm(path, pages)
    if pages is None:
        import pymupdf

        with pymupdf.open(path) as doc:
            pages = list(range(doc.page_count))
    return run_pymupdf4llm_venv(anchor_python, path, pages)


def bench_camelot(root: Path, limit: int | None, split: str = "both", anchor_python: str | None = None,
                  dpi: int = 72) -> dict:
    import pymupdf

    exps = [e for e in read_expectations(root) if split in ("both", e.split)]
    if limit:
        exps = exps[:limit]
    scores = {(s, split): Score() for s in ("docvlm", "find_tables", "pymupdf4llm") for split in ("dev", "check")}
    timing = {"convert_s": 0.0, "tables_s": 0.0, "pages": 0}
    cache: dict[tuple, tuple] = {}
    details = []
    for e in exps:
        path = root / "pdfs" / e.pdf
        key = (e.pdf, tuple(e.pages))
        if key not in cache:
            dv, t = run_docvlm(path, e.pages or None, dpi)
            for k in timing:
                timing[k] += t[k]
            cache[key] = (dv, run_find_tables(path, e.pages or None), _anchor(anchor_python, path, e.pages or None))
        dv, ft, p4 = cache[key]
        preds = [grid_of(t) for i in sorted(dv) for t in dv[i][1]]
        s, bi = best_match(e.rows, preds)
        scores[("docvlm", e.split)].add(s)
        if bi is not None:
            flat = [(i, t) for i in sorted(dv) for t in dv[i][1]]
            pi, tab = flat[bi]
            with pymupdf.open(path) as doc:
                m = doc[pi].rotation_matrix  # words come unrotated; cells are on the visible page
                words = [(*(pymupdf.Rect(w[:4]) * m), w[4]) for w in doc[pi].get_text("words")]
            page = dv[pi][0]
            ok, n = box_check(words, tab, page.dpi)
            sc = scores[("docvlm", e.split)]
            sc.box_ok += ok
            sc.box_n += n
        s2, _ = best_match(e.rows, [g for i in sorted(ft) for g in ft[i]])
        scores[("find_tables", e.split)].add(s2)
        s3, _ = best_match(e.rows, [g for i in sorted(p4) for g in p4[i]])
        scores[("pymupdf4llm", e.split)].add(s3)
        details.append({"table": e.name, "pdf": e.pdf, "pages": e.pages, "split": e.split,
                        "docvlm": s, "find_tables": s2, "pymupdf4llm": s3})
    return {
        "expected_tables": len(exps),
        "files": {"dev": sorted({e.pdf for e in exps if e.split == "dev"}),
                  "check": sorted({e.pdf for e in exps if e.split == "check"})},
        "scores": {f"{s}/{split}": sc.summary() for (s, split), sc in scores.items()},
        "timing": timing,
        "details": details,
    }


SCAN_BLUR = 0.6
"""Gaussian blur radius (pixels at 200 dpi) of the made-up scans."""
SCAN_NOISE = 6.0
"""Standard deviation of the grey-level noise added to the made-up scans."""


def scan_copy(src: Path, pno: int, out: Path, dpi: int = 200, seed: int = 0) -> None:
    """Page `pno` of `src` rendered at `dpi`, lightly blurred and noised, re-wrapped as an image-only PDF page
    of the same size in points (so the expected cells, and the text-layer word boxes, still hold)."""
    import io

    import numpy as np
    import pymupdf
    from PIL import Image, ImageFilter

    with pymupdf.open(src) as doc:
        page = doc[pno]
        pix = page.get_pixmap(dpi=dpi)
        rect = page.rect
    img = Image.frombytes("RGB" if pix.n == 3 else "RGBA", (pix.w, pix.h), pix.samples).convert("L")
    img = img.filter(ImageFilter.GaussianBlur(SCAN_BLUR))
    arr = np.asarray(img, dtype=np.float32) + np.random.default_rng(seed).normal(0, SCAN_NOISE, (pix.h, pix.w))
    buf = io.BytesIO()
    Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8)).save(buf, format="PNG")
    with pymupdf.open() as doc:
        pg = doc.new_page(width=rect.width, height=rect.height)
        pg.insert_image(pg.rect, stream=buf.getvalue())
        doc.save(out)


def scan_systems() -> dict[str, tuple[str, dict | None]]:
    """The systems on scans: (table_models, registry) per name; the registry None is docvlm's default."""
    from dataclasses import replace

    from docvlm.layout.tables import PAGE_KINDS, AlignedTables, HeaderRows, RuledGrids
    from docvlm.layout.tables.model_tables import ModelTables

    def kinds(dets):
        return {k: replace(v, with_models=dets) for k, v in PAGE_KINDS.items()}

    return {
        "rules": ("off", None),
        "models": ("on", kinds((ModelTables("replace"), HeaderRows()))),
        "fill": ("on", kinds((RuledGrids(), AlignedTables(), ModelTables("fill"), HeaderRows()))),
        "agree": ("on", kinds((RuledGrids(), AlignedTables(), ModelTables("agree"), HeaderRows()))),
        "compete": ("on", kinds((RuledGrids(), AlignedTables(), ModelTables("compete"), HeaderRows()))),
        "default": ("auto", None),
    }


def bench_camelot_scans(root: Path, limit: int, dpi: int = 200, split: str = "both",
                        anchor_python: str | None = None, cache: Path | None = None,
                        ocr_only: bool = False) -> dict:
    """The scan path: camelot pages as image-only PDFs (rendered at `dpi`, blurred, noised), read by the OCR
    engine once per page, then each system's table step on the same OCR words (text compared without
    whitespace, as above; boxes against the original text layer). The first `limit` (pdf, page) pairs."""
    import tempfile

    import pymupdf

    from docvlm.datamodel import PageResult
    from docvlm.engines.base import Task
    from docvlm.engines.ocr import OcrEngine
    from docvlm.layout.base import PageContext
    from docvlm.layout.tables import FindTables
    from docvlm.options import ConvertOptions
    from docvlm.pipeline import assemble_page
    from docvlm.sources import open_document

    exps = [e for e in read_expectations(root) if len(e.pages) <= 1 and split in ("both", e.split)]
    keys = sorted({(e.pdf, e.pages[0] if e.pages else 0) for e in exps})[:limit]
    systems = {} if ocr_only else scan_systems()
    base_opts = ConvertOptions(layout=False, dpi=dpi)
    engine = OcrEngine(base_opts)
    names = [*systems, "pymupdf4llm"]
    scores = {(n, sp): Score() for n in names for sp in ("dev", "check")}
    timing = {"convert_s": 0.0, "pages": 0, **{f"{n}_s": 0.0 for n in systems}}
    with tempfile.TemporaryDirectory() as tmp:
        for pdf, pno in keys:
            scan = Path(tmp) / (pdf.replace("/", "_") + f"-{pno}.pdf")
            scan_copy(root / "pdfs" / pdf, pno, scan, dpi)
            with pymupdf.open(root / "pdfs" / pdf) as doc:
                m = doc[pno].rotation_matrix
                words = [(*(pymupdf.Rect(w[:4]) * m), w[4]) for w in doc[pno].get_text("words")]
            found: dict[str, list] = {}
            with open_document(scan, base_opts) as doc:
                sp = doc.page(0)
                hit = cache / f"{pdf.replace('/', '_')}-{pno}-{dpi}.json" if cache else None
                if hit is not None and hit.exists():  # the OCR words of this scan, read before
                    page = PageResult.model_validate_json(hit.read_text())
                    timing["convert_s"] += page.seconds or 0.0
                else:
                    t0 = time.perf_counter()
                    page = assemble_page(sp, engine.process_pages([sp], Task())[0], seconds=None)
                    page = page.model_copy(update={"seconds": time.perf_counter() - t0})
                    timing["convert_s"] += page.seconds
                    if hit is not None:
                        hit.parent.mkdir(parents=True, exist_ok=True)
                        hit.write_text(page.model_dump_json())
                timing["pages"] += 1
                for name, (tm, kinds) in systems.items():
                    opts = ConvertOptions(layout=False, dpi=dpi, table_models=tm)
                    t1 = time.perf_counter()
                    got = FindTables(kinds=kinds)(page, PageContext(source=sp, options=opts, shown=str(scan)))
                    timing[f"{name}_s"] += time.perf_counter() - t1
                    found[name] = got.tables
            if ocr_only:
                continue
            p4 = run_pymupdf4llm_venv(anchor_python, scan, [0]) if anchor_python else {}
            for e in exps:
                if e.pdf != pdf or (e.pages[0] if e.pages else 0) != pno:
                    continue
                for name, tables in found.items():
                    sc, bi = best_match(e.rows, [grid_of(t) for t in tables])
                    scores[(name, e.split)].add(sc)
                    if bi is not None:
                        ok, n = box_check(words, tables[bi], dpi)
                        scores[(name, e.split)].box_ok += ok
                        scores[(name, e.split)].box_n += n
                scores[("pymupdf4llm", e.split)].add(best_match(e.rows, p4.get(0, []))[0])
    return {"pages": [f"{p}#{n}" for p, n in keys],
            "scores": {f"{n}/{sp}": v.summary() for (n, sp), v in scores.items() if v.tables},
            "per_table": {f"{n}/{sp}": [(round(2 * t["rel_ok"] / max(1, t["rel_pred"] + t["rel_gt"]), 3))
                                        for t in v.per_table] for (n, sp), v in scores.items() if v.tables},
            "timing": timing}


ANCHOR_SCRIPT = """
import json, sys
import pymupdf4llm
path, pages = sys.argv[1], json.loads(sys.argv[2])
out = {}
for i in pages:
    try:
        out[i] = pymupdf4llm.to_markdown(path, pages=[i], show_progress=False)
    except Exception as exc:
        out[i] = ""
print(json.dumps(out))
"""


def run_pymupdf4llm_venv(python: str, path: Path, pages: list[int]) -> dict[int, list[list[list[str]]]]:
    """pymupdf4llm (2.0, with PyMuPDF 2) in its own virtualenv: one process per PDF, Markdown per page."""
    import subprocess

    from docvlm.layout.tables.model_output import _markdown_tables

    try:
        proc = subprocess.run([python, "-c", ANCHOR_SCRIPT, str(path), json.dumps(pages)], capture_output=True,
                              text=True, timeout=600, check=False)
        mds = json.loads(proc.stdout.strip().splitlines()[-1]) if proc.stdout.strip() else {}
    except (subprocess.TimeoutExpired, ValueError):
        mds = {}
    return {int(i): [[[_plain(c.text) for c in row] for row in t.rows] for t in _markdown_tables(md)]
            for i, md in mds.items()}


def _plain(cell: str) -> str:
    """A Markdown cell's text without its emphasis and inline HTML (pymupdf4llm 2.0 bolds header cells)."""
    cell = re.sub(r"<br\s*/?>", " ", cell)
    cell = re.sub(r"</?[a-zA-Z][^>]*>", "", cell)
    return cell.replace("**", "").replace("~~", "")


def bench_docling(root: Path, anchor_python: str | None = None, dpi: int = 72) -> dict:
    gt_dir = root / "groundtruth"
    scores = {s: Score() for s in ("docvlm", "find_tables", "pymupdf4llm")}
    timing = {"convert_s": 0.0, "tables_s": 0.0, "pages": 0}
    for gj in sorted(gt_dir.glob("*.json")):
        if gj.name.endswith(".meta.json"):
            continue
        d = json.loads(gj.read_text())
        tables = d.get("tables", [])
        pdf = root / "sources" / (gj.name[: -len(".json")] + ".pdf")
        if not tables or not pdf.exists():
            continue
        by_page: dict[int, list] = {}
        for t in tables:
            data = t["data"]
            g = [[""] * data["num_cols"] for _ in range(data["num_rows"])]
            for c in data["table_cells"]:
                g[c["start_row_offset_idx"]][c["start_col_offset_idx"]] = c["text"]
            by_page.setdefault(t["prov"][0]["page_no"] - 1, []).append(g)
        pages = sorted(by_page)
        dv, t = run_docvlm(pdf, pages, dpi)
        for k in timing:
            timing[k] += t[k]
        ft = run_find_tables(pdf, pages)
        p4 = _anchor(anchor_python, pdf, pages)
        import pymupdf

        with pymupdf.open(pdf) as doc:
            for p in pages:  # every docvlm cell box on these pages against the text layer's words
                m = doc[p].rotation_matrix
                words = [(*(pymupdf.Rect(w[:4]) * m), w[4]) for w in doc[p].get_text("words")]
                for x in dv.get(p, [None, []])[1]:
                    ok, n = box_check(words, x, dv[p][0].dpi)
                    scores["docvlm"].box_ok += ok
                    scores["docvlm"].box_n += n
        for p, gts in by_page.items():
            for g in gts:
                scores["docvlm"].add(best_match(g, [grid_of(x) for x in dv.get(p, [None, []])[1]])[0])
                scores["find_tables"].add(best_match(g, ft.get(p, []))[0])
                scores["pymupdf4llm"].add(best_match(g, p4.get(p, []))[0])
    return {"scores": {k: v.summary() for k, v in scores.items()}, "timing": timing}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data"), help="data root")
    ap.add_argument("--limit", type=int, default=None, help="first N camelot expectations only")
    ap.add_argument("--skip-docling", action="store_true")
    ap.add_argument("--tag", default="")
    ap.add_argument("--scans", type=int, default=0,
                    help="also read the first N camelot pages as 200 dpi images through the OCR engine")
    ap.add_argument("--pymupdf4llm-path", default=None,
                    help="folder holding a pymupdf4llm that works with pymupdf 1.x (the venv's 2.0 is an empty "
                    "shell without pymupdf 2), e.g. from `pip install --no-deps --target DIR pymupdf4llm==0.0.27`")
    ap.add_argument("--split", choices=("dev", "check", "both"), default="both",
                    help="camelot half to score (develop on dev, run check once)")
    ap.add_argument("--skip-camelot", action="store_true", help="no text-layer camelot run")
    ap.add_argument("--dpi", type=int, default=72, help="page pixels per inch of the text-layer runs (72: points); "
                    "DOCVLM_TABLE_MODELS=on in the environment runs the model detectors there too")
    ap.add_argument("--scan-cache", default=None, help="folder for the scans' OCR pages (JSON), reused by later runs")
    ap.add_argument("--scans-only", action="store_true", help="read the scans' OCR into --scan-cache and stop")
    ap.add_argument("--anchor-python", default=None,
                    help="python of a virtualenv holding pymupdf4llm 2.0 with PyMuPDF 2 (e.g. "
                    "/work/venv-pm4llm/bin/python): the anchor runs there, one process per PDF")
    ap.add_argument("--text-system", default="default", choices=("rules", "models", "fill", "agree", "compete", "default"),
                    help="the table detectors of the text-layer runs")
    args = ap.parse_args()
    global TEXT_SYSTEM
    TEXT_SYSTEM = args.text_system
    if args.pymupdf4llm_path:
        sys.path.append(args.pymupdf4llm_path)
    data = Path(args.data)
    started = time.time()
    result: dict = {"load_before": os.getloadavg()}
    if not args.skip_camelot:
        result["camelot"] = bench_camelot(data / "camelot-tables", args.limit, args.split, args.anchor_python,
                                          args.dpi)
    if not args.skip_docling:
        result["docling"] = bench_docling(data / "docling-pdf", args.anchor_python, args.dpi)
    if args.scans:
        result["scans"] = bench_camelot_scans(data / "camelot-tables", args.scans, split=args.split,
                                              anchor_python=args.anchor_python,
                                              cache=Path(args.scan_cache) if args.scan_cache else None,
                                              ocr_only=args.scans_only)
    result["load_after"] = os.getloadavg()
    result["seconds"] = round(time.time() - started, 1)
    try:
        import pymupdf4llm

        result["pymupdf4llm_version"] = pymupdf4llm.version
    except (ImportError, AttributeError):
        result["pymupdf4llm_version"] = None
    out_dir = ROOT / "bench" / "results"
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    out = out_dir / f"table_bench-{stamp}{'-' + args.tag if args.tag else ''}.json"
    out.write_text(json.dumps(result, indent=1))
    print(f"{'system/split':24} {'tables':>6} {'found':>5} {'adjP':>6} {'adjR':>6} {'adjF1':>6} "
          f"{'cellP':>6} {'cellR':>6} {'box50':>6}")
    for part in ("camelot", "docling", "scans"):
        if part not in result:
            continue
        for name, s in result[part]["scores"].items():
            print(f"{part[:3] + ':' + name:24} {s['tables']:6d} {s['found']:5d} {s['adjacency_p']:6.3f} "
                  f"{s['adjacency_r']:6.3f} {s['adjacency_f1']:6.3f} {s['cell_p']:6.3f} {s['cell_r']:6.3f} "
                  f"{s['box_iou50'] if s['box_iou50'] is not None else '-':>6}")
        t = result[part]["timing"]
        if t["pages"] and part == "scans":
            per = ", ".join(f"{k[:-2]} {1000 * v / t['pages']:.0f}" for k, v in t.items() if k.endswith("_s")
                            and k != "convert_s")
            print(f"  scans timing: {t['pages']} pages, OCR {1000 * t['convert_s'] / t['pages']:.0f} ms/page; "
                  f"table step ms/page: {per}")
        elif t["pages"]:
            print(f"  {part} timing: {t['pages']} pages, text-layer path {1000 * t['convert_s'] / t['pages']:.1f} "
                  f"ms/page, tables {1000 * t['tables_s'] / t['pages']:.1f} ms/page "
                  f"({100 * t['tables_s'] / max(t['convert_s'], 1e-9):.1f}%)")
    print(f"load {result['load_before']} -> {result['load_after']}; {result['seconds']} s; {out}")


if __name__ == "__main__":
    main()
