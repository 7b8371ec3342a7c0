"""The run summary of a batch (and shards): what happened to every input, merged over shards.

Shared by the batch runner (`docvlm.batch`), `docvlm summary` and `docvlm.overlay` (which finds a moved source
through a summary); it imports nothing of the runner, so none of them import each other in a circle.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pydantic import Field, ValidationError

from docvlm import __version__
from docvlm.datamodel import Frozen, Status
from docvlm.errors import UsageError

SUMMARY_PREFIX = "_docvlm_summary"


# --- the run summary ---------------------------------------------------------------------------------------


class DocRecord(Frozen):
    """What happened to one input in a batch run."""

    key: str = Field(description="Output name of the input relative to the output folder (unique in the batch).")
    path: str = Field(description="The input path as given (recorded as source.path in the result).")
    abspath: str | None = Field(default=None, description="Absolute input path (lets `docvlm show` find it).")
    status: Status
    resumed: bool = Field(default=False, description="True when a valid output from an earlier run was kept.")
    pages: int = 0
    errors: list[str] = Field(default_factory=list, description="Document and page error messages (capped).")
    warnings: list[str] = Field(default_factory=list, description="Problems that did not fail the document.")
    outputs: list[str] = Field(default_factory=list, description="Files written, relative to the output folder.")
    seconds: float = 0.0


class SkippedInput(Frozen):
    """A path inside an input folder that was not read, on purpose (see `docvlm.sources.walk_inputs`)."""

    path: str
    reason: str


class BatchTotals(Frozen):
    documents: int = 0
    converted: int = 0
    resumed: int = 0
    success: int = 0
    partial: int = 0
    failure: int = 0
    pages: int = 0
    seconds: float = 0.0


class BatchSummary(Frozen):
    """The machine-readable run summary written to `OUT/_docvlm_summary[.shard-I-of-N].json`."""

    docvlm_version: str = __version__
    kind: str = Field(default="convert", description="What was done per document: convert, extract.")
    out_dir: str | None
    shard: str | None = Field(default=None, description="'I/N' (1-based) when the run was one shard.")
    options_digest: str
    started_at: str
    finished_at: str
    interrupted: bool = Field(
        default=False, description="The run did not finish (Ctrl-C, kill, crash): rerun the command to resume."
    )
    all_inputs: list[str] = Field(description="Keys of every input of the batch, before sharding.")
    documents: list[DocRecord]
    totals: BatchTotals
    skipped: list[SkippedInput] = Field(
        default_factory=list,
        description="Paths inside the input folders not read: hidden entries, symbolic links to folders, "
                    "unreadable folders, docvlm's own output folder.",
    )
    unsupported_files: int = Field(default=0, description="Files inside the input folders with an extension "
                                                          "docvlm does not read (not listed).")

    @property
    def failed(self) -> list[DocRecord]:
        return [d for d in self.documents if d.status == "failure"]


class MergedSummary(Frozen):
    """All run summaries of an output folder merged (`docvlm summary OUT`)."""

    summary_files: list[str]
    all_inputs: list[str]
    documents: list[DocRecord] = Field(description="Latest record per input over all summaries.")
    missing: list[str] = Field(description="Inputs listed by some summary but done by none.")
    totals: BatchTotals
    skipped: list[SkippedInput] = Field(default_factory=list, description="Skipped paths of every summary.")

    @property
    def failed(self) -> list[DocRecord]:
        return [d for d in self.documents if d.status == "failure"]


def totals_of(records: Sequence[DocRecord]) -> BatchTotals:
    return BatchTotals(
        documents=len(records),
        converted=sum(1 for r in records if not r.resumed),
        resumed=sum(1 for r in records if r.resumed),
        success=sum(1 for r in records if r.status == "success"),
        partial=sum(1 for r in records if r.status == "partial"),
        failure=sum(1 for r in records if r.status == "failure"),
        pages=sum(r.pages for r in records),
        seconds=round(sum(r.seconds for r in records), 3),
    )


def summary_filename(shard: Shard | None) -> str:
    return f"{SUMMARY_PREFIX}.json" if shard is None else f"{SUMMARY_PREFIX}.shard-{shard.index}-of-{shard.count}.json"


SUMMARY_NAME = re.compile(rf"{re.escape(SUMMARY_PREFIX)}(\.shard-\d+-of-\d+)?\.json")
"""The names a run summary can have; an input's output (`_docvlm_summary_x.pdf.json`) never matches."""


def is_summary_name(name: str) -> bool:
    return SUMMARY_NAME.fullmatch(name) is not None


def summary_files(out_dir: str | Path) -> list[Path]:
    """The run summaries in `out_dir`, by name (shards included), sorted."""
    return sorted(p for p in Path(out_dir).glob(f"{SUMMARY_PREFIX}*.json") if is_summary_name(p.name))


def merge_summaries(out_dir: str | Path) -> MergedSummary:
    """Merge every `_docvlm_summary*.json` in `out_dir`: the latest record per input wins.

    Raises:
        UsageError: when `out_dir` holds no summary file.
    """
    files = summary_files(out_dir)
    summaries: list[BatchSummary] = []
    for f in files:
        try:
            summaries.append(BatchSummary.model_validate_json(f.read_bytes()))
        except (OSError, ValidationError) as exc:
            raise UsageError(f"{f}: not a docvlm run summary ({type(exc).__name__}); delete it or rerun") from None
    if not summaries:
        raise UsageError(f"{out_dir}: no {SUMMARY_PREFIX}*.json found; run `docvlm convert ... -o {out_dir}` first")
    all_inputs: dict[str, None] = {}
    latest: dict[str, DocRecord] = {}
    skipped: dict[str, SkippedInput] = {}
    for s in sorted(summaries, key=lambda s: s.finished_at):
        all_inputs.update(dict.fromkeys(s.all_inputs))
        for rec in s.documents:
            latest[rec.key] = rec
        skipped.update((skip.path, skip) for skip in s.skipped)
    docs = [latest[k] for k in sorted(latest)]
    return MergedSummary(
        summary_files=[f.name for f in files],
        all_inputs=sorted(all_inputs),
        documents=docs,
        missing=sorted(k for k in all_inputs if k not in latest),
        totals=totals_of(docs),
        skipped=[skipped[k] for k in sorted(skipped)],
    )


# --- sharding ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Shard:
    """Shard `index` of `count`, 1-based."""

    index: int
    count: int

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    def owns(self, relpath: str) -> bool:
        """Stable across machines and Python versions: sha1 of the POSIX relative path."""
        digest = hashlib.sha1(relpath.replace("\\", "/").encode("utf-8")).digest()
        return int.from_bytes(digest[:8], "big") % self.count == self.index - 1


def parse_shard(spec: str) -> Shard:
    """'2/4' -> Shard(2, 4). Shards are 1-based. Raises UsageError naming the flag."""
    try:
        i_s, n_s = spec.split("/")
        index, count = int(i_s), int(n_s)
    except ValueError:
        raise UsageError(f"--shard {spec!r}: expected I/N, e.g. --shard 1/4") from None
    if count < 1 or not 1 <= index <= count:
        hint = f" (shards are 1-based: use 1/{count} .. {count}/{count})" if count >= 1 else ""
        raise UsageError(f"--shard {spec!r}: need 1 <= I <= N{hint}")
    return Shard(index, count)


def load_summary(path: str | Path) -> BatchSummary:
    return BatchSummary.model_validate_json(Path(path).read_bytes())


__all__ = [
    "SUMMARY_PREFIX", "BatchSummary", "BatchTotals", "DocRecord", "MergedSummary", "Shard", "SkippedInput",
    "is_summary_name", "load_summary",
    "merge_summaries", "parse_shard", "summary_filename", "summary_files", "totals_of",
]
