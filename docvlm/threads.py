"""How many inference threads one worker gets: the cores it may use, shared by the workers beside it.

The local process pool (`docvlm.executors.local`) gives each of its N workers
`choose_inference_threads(cores, N)` threads for OpenVINO, onnxruntime and torch; a Ray actor gets the CPUs it
asked for (`--ray`, one by default). Either way the number travels in `THREADS_ENV`, set by
`set_worker_threads` before the worker's engine loads and read by `inference_threads`, so N workers never start
N x cores threads on `cores` cores (oversubscription makes every worker slower than one worker alone;
bench/ocr_bench.py measures it).
"""

from __future__ import annotations

import os

THREADS_ENV = "OMP_NUM_THREADS"
"""The variable a worker's threads travel in: the OCR engine and torch both read it."""


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity, which containers and Ray narrow), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # macOS and Windows have no sched_getaffinity
        return max(1, os.cpu_count() or 1)


def choose_inference_threads(cores: int, workers: int) -> int:
    """Threads per worker when `workers` engines share `cores` cores: an even share, at least one.

    The same share suits onnxruntime and OpenVINO (bench/ocr_bench.py, --workers 1 and 2 on 2 cores): an
    inference call that spans all cores already keeps them busy, so one more thread per worker only adds
    contention. A remainder core is left to the parent process (progress, writing results) and to the
    page-prefetch thread of each worker.
    """
    return max(1, max(1, cores) // max(1, workers))


def inference_threads() -> int:
    """This process's inference threads: `OMP_NUM_THREADS` when a pool set it, else all available cores."""
    value = os.environ.get(THREADS_ENV, "").strip()
    if value.isdigit() and int(value) > 0:
        return int(value)
    return available_cores()


def set_worker_threads(threads: int) -> None:
    """Set once per worker process, before its engine loads, for `inference_threads` to read. A value the user
    exported wins."""
    os.environ.setdefault(THREADS_ENV, str(threads))
