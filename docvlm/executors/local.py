"""Executors on this machine: in this process (`--workers 1`) or a pool of spawn processes (`--workers N`)."""

from __future__ import annotations

import collections
import multiprocessing as mp
import os
import signal
from collections.abc import Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, wait
from concurrent.futures import ProcessPoolExecutor as _Pool
from concurrent.futures.process import BrokenProcessPool
from typing import TYPE_CHECKING, Any

from docvlm.executors import MAX_CRASHES, PageEvent, WorkDone, WorkerSpec, WorkItem, crash_message
from docvlm.executors.lifeline import die_with_parent, process_identity, sigint_ignored
from docvlm.executors.worker import DocumentWorker
from docvlm.threads import available_cores, choose_inference_threads

if TYPE_CHECKING:
    from docvlm.datamodel import PageResult


IN_FLIGHT_PER_WORKER = 4
"""Documents submitted per pool worker at a time (the pool keeps each worker fed; the rest wait here)."""


class InProcessExecutor:
    """Runs every document in this process: one after the other, or, with a planning engine, through the
    feed (the next documents' pages are prepared while the model works on earlier ones)."""

    def run(self, items: Sequence[WorkItem], spec: WorkerSpec, on_page: PageEvent) -> Iterator[WorkDone]:
        worker = DocumentWorker(spec)  # no thread setting: one process uses every core

        def page_done(key: str, page: PageResult) -> None:
            on_page(key, page.index, page.status)

        yield from worker.run_stream(items, page_done)


class ProcessPoolExecutor:
    """Runs documents in `workers` spawn processes; a crashed worker (segfault, OOM kill) costs a retry.

    A worker dying breaks the whole pool: every unfinished document is rerun in a new pool, and only the one
    the dead worker was running is charged an attempt (all of them when that cannot be told). At most
    `IN_FLIGHT_PER_WORKER` documents per worker are submitted at a time.
    """

    def __init__(self, workers: int) -> None:
        self.workers = workers

    def run(self, items: Sequence[WorkItem], spec: WorkerSpec, on_page: PageEvent) -> Iterator[WorkDone]:
        ctx = mp.get_context("spawn")
        attempts: dict[str, int] = {}
        remaining = list(items)
        while remaining:
            events = ctx.Queue()
            starts = ctx.SimpleQueue()
            n_workers = min(self.workers, len(remaining))
            pool = _Pool(max_workers=n_workers, mp_context=ctx, initializer=_init_worker,
                         initargs=(spec, events, starts, choose_inference_threads(available_cores(), n_workers),
                                   os.getpid(), process_identity(os.getpid())))
            broken: list[WorkItem] = []
            running: dict[int, str] = {}  # worker pid -> key of the document it started last
            queue = collections.deque(remaining)
            pending: dict[Future[WorkDone], WorkItem] = {}
            try:
                _submit(pool, queue, pending, window=IN_FLIGHT_PER_WORKER * n_workers)
                procs = dict(getattr(pool, "_processes", None) or {})
                while pending:
                    _submit(pool, queue, pending, window=IN_FLIGHT_PER_WORKER * n_workers)
                    done, _ = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
                    _drain(events, on_page)
                    _drain_starts(starts, running)
                    for fut in done:
                        item = pending.pop(fut)
                        try:
                            yield fut.result()
                        except BrokenProcessPool:
                            broken.append(item)
                        except Exception as exc:  # noqa: BLE001 - e.g. an unpicklable result: that file failed
                            yield WorkDone(item.key, crash=f"{item.path}: {type(exc).__name__}: {exc}")
                _drain(events, on_page)
            except BaseException:  # Ctrl-C, or the runner closed this generator (a fatal engine error)
                _stop_pool(pool)
                raise
            pool.shutdown(wait=True)
            _drain_starts(starts, running)
            starts.close()
            procs.update(getattr(pool, "_processes", None) or {})
            remaining = list(queue)  # never submitted to the broken pool: rerun, not charged
            keys = {item.key for item in broken}
            suspects = _crashed_jobs(procs, running) & keys or keys
            for item in broken:
                if item.key not in suspects:  # broken by another document's crash: rerun, not charged
                    remaining.append(item)
                    continue
                attempts[item.key] = attempts.get(item.key, 0) + 1
                if attempts[item.key] >= MAX_CRASHES:
                    yield WorkDone(item.key, crash=crash_message(item.path))
                else:
                    remaining.append(item)


def _submit(pool: _Pool, queue: collections.deque[WorkItem], pending: dict[Future[WorkDone], WorkItem], *,
            window: int) -> None:
    """Submit from `queue` until `window` documents are pending: the driver's memory does not grow with the
    number of documents (a broken pool refuses new work: the rest waits in `queue` for the next pool)."""
    with sigint_ignored():  # workers are spawned inside submit(); they inherit SIG_IGN from birth
        while queue and len(pending) < window:
            item = queue.popleft()
            try:
                pending[pool.submit(_worker_run, item)] = item
            except BrokenProcessPool:
                queue.appendleft(item)
                return


_WORKER: dict[str, Any] = {}


def _init_worker(spec: WorkerSpec, events: Any, starts: Any, threads: int, driver_pid: int,
                 driver_identity: str | None) -> None:
    die_with_parent(driver_pid, driver_identity)  # a driver killed with SIGKILL leaves no worker behind
    # the main process owns Ctrl-C: it cancels, stops the workers and writes the summary
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _WORKER["worker"] = DocumentWorker(spec, threads=threads)
    _WORKER["events"] = events
    _WORKER["starts"] = starts


def _worker_run(item: WorkItem) -> WorkDone:
    events = _WORKER["events"]
    # unbuffered (a SimpleQueue writes before put() returns): still there when this process dies mid-document,
    # so a crash is charged to the document that caused it, not to the ones running next to it
    _WORKER["starts"].put((os.getpid(), item.key))

    def page_done(key: str, page: PageResult) -> None:
        events.put((key, page.index, page.status))

    return _WORKER["worker"].run_one(item, page_done)


def _drain(events: Any, on_page: PageEvent) -> None:
    import queue

    while True:
        try:
            key, index, status = events.get_nowait()
        except (queue.Empty, OSError, EOFError, ValueError):
            return
        on_page(key, index, status)


def _drain_starts(starts: Any, running: dict[int, str]) -> None:
    try:
        while not starts.empty():
            pid, key = starts.get()
            running[pid] = key
    except (OSError, EOFError, ValueError):
        return


def _crashed_jobs(procs: dict[int, Any], running: dict[int, str]) -> set[str]:
    """Keys of the documents run by the workers that died on their own (not stopped by the pool's SIGTERM)."""
    crashed = set()
    for pid, proc in procs.items():
        code = getattr(proc, "exitcode", None)
        if code not in (None, 0, -signal.SIGTERM) and pid in running:
            crashed.add(running[pid])
    return crashed


def _stop_pool(pool: _Pool) -> None:
    """Cancel what has not started and stop the workers now (nothing is written by them: nothing half-done)."""
    procs = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for proc in procs:
        try:
            proc.terminate()
        except Exception:  # noqa: BLE001, S110 - already gone
            pass
    for proc in procs:
        proc.join(timeout=5)


__all__ = ["InProcessExecutor", "ProcessPoolExecutor"]
