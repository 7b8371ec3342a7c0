"""The one worker callable every executor runs: `__init__` loads the engine once, `__call__` maps a batch of
documents to their results (Ray Data's callable-class pattern). It writes nothing: results go back to the
driver, which writes them."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from docvlm.errors import DocvlmError, EngineError, InputError, UsageError
from docvlm.executors import WorkDone, WorkerSpec, WorkItem
from docvlm.threads import set_worker_threads

if TYPE_CHECKING:
    from docvlm.datamodel import PageResult


class DocumentWorker:
    """Runs the batch's `DocumentKind` on documents with an engine loaded once per process.

    An engine that cannot load does not raise here (that would kill a pool worker or a Ray actor before it
    could say why): every call then answers `WorkDone.fatal`, which stops the batch with that message.
    """

    def __init__(self, spec: WorkerSpec, *, threads: int | None = None) -> None:
        from docvlm.engines import get_engine

        if threads is not None:
            set_worker_threads(threads)
        self.spec = spec
        self.engine: Any = None
        self.fatal: str | None = None
        self.fatal_usage = False
        try:
            self.engine = get_engine(spec.options)
            spec.kind.prepare()
        except UsageError as exc:
            self.fatal, self.fatal_usage = str(exc), True
        except DocvlmError as exc:
            self.fatal = f"engine {spec.options.engine!r} cannot start: {exc}"

    def __call__(self, items: Sequence[WorkItem],
                 on_page: Callable[[str, PageResult], None] | None = None) -> list[WorkDone]:
        return list(self.run_stream(items, on_page))

    def streams(self) -> bool:
        """True when documents go through the feed (`docvlm.pipeline.stream_documents`): a conversion with a
        planning engine (the registry says so), read from paths this worker sees."""
        from docvlm.batch import ConvertKind
        from docvlm.engines.registry import engine_spec

        return (self.fatal is None and isinstance(self.spec.kind, ConvertKind)
                and engine_spec(self.spec.options.engine).plans and hasattr(self.engine, "start_pages"))

    def run_stream(self, items: Sequence[WorkItem],
                   on_page: Callable[[str, PageResult], None] | None = None) -> Iterator[WorkDone]:
        """The results of `items` in order; with a planning engine the next documents' pages are prepared
        while the model works on earlier ones (requests from several documents in flight at once)."""
        if not self.streams():
            for item in items:
                yield self.run_one(item, on_page)
            return
        from docvlm.pipeline import stream_documents

        hook = None if on_page is None else (lambda tag, page: on_page(tag.key, page))  # type: ignore[attr-defined]
        started = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix="docvlm-") as tmp:  # shipped inputs (a Ray cluster) live here
            local = _local_paths(items, tmp)
            try:
                for item, result in stream_documents(((i, local[i.key], i.path) for i in items), self.spec.options,
                                                     engine=self.engine, on_page=hook):
                    now = time.perf_counter()
                    yield WorkDone(item.key, result=result, seconds=now - started)  # type: ignore[attr-defined]
                    started = now
            except EngineError as exc:
                if exc.code != "model_load":
                    raise
                self.fatal = str(exc)
                yield WorkDone(items[0].key, fatal=self.fatal)

    def run_one(self, item: WorkItem, on_page: Callable[[str, PageResult], None] | None = None) -> WorkDone:
        """The result of one document; never raises for a bad file."""
        if self.fatal is not None:
            return WorkDone(item.key, fatal=self.fatal, fatal_usage=self.fatal_usage)
        started = time.perf_counter()
        if item.data is None:
            done = self._run(item, item.abspath, on_page)
        else:
            with tempfile.TemporaryDirectory(prefix="docvlm-") as tmp:
                done = self._run(item, _local_paths([item], tmp)[item.key], on_page)
        if done.result is not None:
            done = WorkDone(item.key, result=done.result, seconds=time.perf_counter() - started)
        return done

    def _run(self, item: WorkItem, local_path: str,
             on_page: Callable[[str, PageResult], None] | None) -> WorkDone:
        kind, options = self.spec.kind, self.spec.options
        page_hook = None if on_page is None else (lambda page: on_page(item.key, page))
        try:
            result = kind.run(local_path, options, display_path=item.path, engine=self.engine, on_page=page_hook)
        except EngineError as exc:
            if exc.code == "model_load":
                return WorkDone(item.key, fatal=str(exc))
            result = kind.failed(item.path, options, exc)
        except DocvlmError as exc:
            result = kind.failed(item.path, options, exc)
        except Exception as exc:  # noqa: BLE001 - one bad file never stops the batch; recorded with its type
            wrapped = InputError(f"unexpected {type(exc).__name__}: {exc}", path=item.path)
            result = kind.failed(item.path, options, wrapped)
        return WorkDone(item.key, result=result)


def _local_paths(items: Sequence[WorkItem], tmp: str) -> dict[str, str]:
    """Where a worker reads each item: the driver's path (absolute: a worker's working directory need not be the
    driver's), or its shipped bytes written to a file of the same name in a folder of its own under `tmp`."""
    paths = {}
    for number, item in enumerate(items):
        if item.data is None:
            paths[item.key] = item.abspath
            continue
        local = Path(tmp) / str(number) / (Path(item.path).name or "input")
        local.parent.mkdir()
        local.write_bytes(item.data)
        paths[item.key] = str(local)
    return paths


__all__ = ["DocumentWorker"]
