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

A `--ray local` run starts a whole Ray inside the driver (GCS, raylet, its agents, the actors): some of Ray's
own processes outlive a driver killed with SIGKILL. `start_reaper` starts a small watcher process
(`python -m docvlm.executors.lifeline DRIVER_PID IDENTITY`) that keeps the list of the driver's descendants
and, when the driver dies, ends them (SIGTERM, then SIGKILL after `REAP_GRACE_S`). The driver stops it when
the run ends normally.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

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


REAP_GRACE_S = 3.0
"""Seconds between the SIGTERM and the SIGKILL the reaper sends to what the dead driver left."""


def descendants(pid: int) -> dict[int, str]:
    """pid -> `process_identity` of every live descendant of `pid` (Linux /proc; psutil elsewhere, when
    installed; empty when neither can tell)."""
    parent_of: dict[int, int] = {}
    if os.path.isdir("/proc"):
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/stat", "rb") as fh:
                    fields = fh.read().decode("ascii", "replace").rsplit(")", 1)[-1].split()
                parent_of[int(entry)] = int(fields[1])
            except (OSError, IndexError, ValueError):
                continue
    else:
        try:
            import psutil
        except ImportError:
            return {}
        parent_of = {p.pid: p.info["ppid"] for p in psutil.process_iter(["ppid"])}
    children: dict[int, list[int]] = {}
    for child, parent in parent_of.items():
        children.setdefault(parent, []).append(child)
    found: dict[int, str] = {}
    stack = list(children.get(pid, ()))
    while stack:
        child = stack.pop()
        if (ident := process_identity(child)) is not None:
            found[child] = ident
        stack.extend(children.get(child, ()))
    return found


def start_reaper(driver_pid: int | None = None) -> subprocess.Popen[bytes] | None:
    """Start the watcher that ends the driver's descendants once the driver dies (see the module docstring);
    None when it cannot start (the run goes on without it). Stop it with `stop_reaper` at the run's end."""
    driver_pid = driver_pid or os.getpid()
    identity = process_identity(driver_pid)
    if identity is None:
        return None
    try:
        return subprocess.Popen(
            [sys.executable, "-m", "docvlm.executors.lifeline", str(driver_pid), identity],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True,  # a Ctrl-C in the terminal is the driver's to handle, not the reaper's
        )
    except OSError:
        return None


def stop_reaper(reaper: subprocess.Popen[bytes] | None) -> None:
    if reaper is None or reaper.poll() is not None:
        return
    reaper.terminate()
    with contextlib.suppress(subprocess.TimeoutExpired):
        reaper.wait(timeout=5)


def reap(driver_pid: int, identity: str) -> None:
    """The reaper's loop: remember the driver's descendants while it lives; end them once it is gone."""
    me = os.getpid()
    known: dict[int, str] = {}
    while process_identity(driver_pid) == identity:
        known = {pid: ident for pid, ident in known.items() if process_identity(pid) == ident}
        known.update(descendants(driver_pid))
        known.pop(me, None)
        time.sleep(WATCH_SECONDS)
    for sig, wait_s in ((signal.SIGTERM, REAP_GRACE_S), (signal.SIGKILL, 0.0)):
        left = {pid: ident for pid, ident in known.items() if process_identity(pid) == ident}
        for pid in left:
            with contextlib.suppress(OSError):
                os.kill(pid, sig)
        deadline = time.monotonic() + wait_s
        while wait_s and time.monotonic() < deadline and any(process_identity(p) == i for p, i in left.items()):
            time.sleep(0.1)


@contextlib.contextmanager
def sigint_ignored() -> Iterator[None]:
    """Ignore SIGINT while worker processes start, so a Ctrl-C never hits one before its initializer runs
    (which would print a traceback); the main process handles Ctrl-C once the workers are up."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


__all__ = ["ORPHAN_EXIT_CODE", "WATCH_SECONDS", "descendants", "die_with_parent", "process_identity", "reap",
           "sigint_ignored", "start_reaper", "stop_reaper"]


if __name__ == "__main__":  # the reaper process: python -m docvlm.executors.lifeline DRIVER_PID IDENTITY
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    reap(int(sys.argv[1]), sys.argv[2])
