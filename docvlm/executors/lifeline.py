"""Workers end when the process that started them dies, whatever killed it (kill -9 included).

A pool worker (spawn process) or a `--ray local` actor left behind by a driver killed with SIGKILL would live
forever, holding its engine's memory. `die_with_parent` ties a worker to its driver twice:

- Linux: `prctl(PR_SET_PDEATHSIG, SIGKILL)`: the kernel kills the worker when its parent dies (for a pool
  worker the parent is the driver; note it fires when the parent *thread* that spawned it ends, and pool
  workers are spawned from the driver's thread that runs the batch);
- everywhere (the portable fallback, and the only one for a worker whose parent is not the driver, such as a
  Ray actor, whose parent is the raylet): a daemon thread that checks every `WATCH_SECONDS` that the driver's
  pid is still alive and still the process it was (its start time), and ends this process when it is not.

The multiprocessing resource tracker needs nothing: it exits when the last holder of its pipe (the driver and
the workers) is gone.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time

WATCH_SECONDS = 1.0
"""How often a worker checks that its driver lives (it ends within about this long after the driver died)."""
ORPHAN_EXIT_CODE = 75
"""Exit status of a worker that ended because its driver died."""
PR_SET_PDEATHSIG = 1
"""prctl option (linux/prctl.h)."""


def process_identity(pid: int) -> str | None:
    """A token that names process `pid` and not a later process reusing its number: its start time on Linux
    (/proc/PID/stat field 22), else the pid itself. None when no such process exists."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            stat = fh.read().decode("ascii", "replace")
    except OSError:
        if not os.path.isdir("/proc"):  # not Linux: fall back on the pid
            return str(pid) if _pid_alive(pid) else None
        return None
    fields = stat.rsplit(")", 1)[-1].split()
    if len(fields) > 19 and fields[0] == "Z":  # a zombie: dead, only not reaped yet
        return None
    return fields[19] if len(fields) > 19 else str(pid)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    return True


def die_with_parent(driver_pid: int, driver_identity: str | None = None, *, direct_parent: bool = True) -> None:
    """End this process when the driver `driver_pid` dies (see the module docstring).

    Args:
        driver_pid: the pid of the process that runs the batch.
        driver_identity: its `process_identity`, taken by the driver (default: read now).
        direct_parent: the driver is this process's parent (a pool worker): also ask the kernel (Linux).
    """
    if direct_parent and sys.platform.startswith("linux"):
        with contextlib.suppress(Exception):  # no libc / no prctl: the watch thread still works
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    identity = driver_identity or process_identity(driver_pid)
    if identity is None or (direct_parent and os.getppid() != driver_pid):
        os._exit(ORPHAN_EXIT_CODE)  # the driver died before this line: prctl came too late
    threading.Thread(target=_watch, args=(driver_pid, identity), name="docvlm-driver-watch", daemon=True).start()


def _watch(driver_pid: int, identity: str) -> None:
    while True:
        time.sleep(WATCH_SECONDS)
        if process_identity(driver_pid) != identity:
            os._exit(ORPHAN_EXIT_CODE)


__all__ = ["ORPHAN_EXIT_CODE", "WATCH_SECONDS", "die_with_parent", "process_identity"]
