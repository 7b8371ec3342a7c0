"""Executors: where the documents of a batch run. The batch runner (`docvlm.batch`) decides which documents
and where their outputs go; an executor only turns `WorkItem`s into `WorkDone`s, in any order, and hands them
back to the runner, which alone writes them.

Every executor runs the same callable (`docvlm.executors.worker.DocumentWorker`, Ray Data's callable-class
pattern: `__init__` loads the engine once, `__call__` maps a batch of documents), so no engine knows where it
runs. Implementations: `local.InProcessExecutor` (`--workers 1`), `local.ProcessPoolExecutor` (`--workers N`),
`ray.RayExecutor` (`--ray ADDRESS`, imported only then). A third one is one more module with a `run` method.

Shared guarantees: a worker process that dies while running a document costs that document one attempt; a
document charged `MAX_CRASHES` times becomes a failure (`WorkDone.crash`), never retried forever; documents
running next to it are rerun uncharged. Ctrl-C (KeyboardInterrupt in the driver) stops the workers when the
runner closes the `run` generator.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from docvlm.options import ConvertOptions

MAX_CRASHES = 2
"""A document whose worker process died this many times while running it is recorded as failed."""

PageEvent = Callable[[str, int, str], None]
"""(document key, page index, page status): progress of a page, called in the driver."""


@dataclass(frozen=True)
class WorkItem:
    """One document to run: `key` names it in the batch, `path` is the input as given (recorded as
    `source.path`), `abspath` where the driver reads it; `data` holds its bytes when the worker may not see
    the driver's file system (then the worker reads those instead)."""

    key: str
    path: str
    abspath: str
    data: bytes | None = None


@dataclass(frozen=True)
class WorkDone:
    """What came back for one `WorkItem`: the kind's result, or why there is none.

    Exactly one of `result`, `crash`, `fatal` is set. `crash`: the worker died on this document `MAX_CRASHES`
    times (the runner records a failure). `fatal`: the engine (or the kind) cannot start at all, so every
    document would fail the same way; `fatal_usage` says it is the user's option problem (exit 2)."""

    key: str
    result: Any = None
    seconds: float = 0.0
    crash: str | None = None
    fatal: str | None = None
    fatal_usage: bool = False


@dataclass(frozen=True)
class WorkerSpec:
    """What every worker is built from (picklable: options and a kind carry specs, not loaded objects)."""

    options: ConvertOptions
    kind: Any  # docvlm.batch.DocumentKind (not imported here: batch imports executors)


class Executor(Protocol):
    """Runs documents somewhere and yields each one's `WorkDone` as it completes."""

    def run(self, items: Sequence[WorkItem], spec: WorkerSpec, on_page: PageEvent) -> Iterator[WorkDone]:
        """Yield one `WorkDone` per item (any order). Closing the generator early stops the work."""
        ...


def crash_message(path: str) -> str:
    return (f"{path}: the worker process died {MAX_CRASHES} times while converting this file (crash or out of "
            "memory); it was not retried again. Try --workers 1 to see the error")


def choose_executor(options: ConvertOptions, workers: int) -> Executor:
    """The executor for a run: Ray when `options.ray` names a cluster, else the local pool (or this process)."""
    if options.ray:
        from docvlm.executors.ray import RayExecutor

        return RayExecutor.from_options(options)
    from docvlm.executors.local import InProcessExecutor, ProcessPoolExecutor

    return ProcessPoolExecutor(workers) if workers > 1 else InProcessExecutor()


__all__ = ["MAX_CRASHES", "Executor", "WorkDone", "WorkItem", "WorkerSpec", "choose_executor"]
