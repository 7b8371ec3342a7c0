"""Issue 17 item 2: workers end when their driver dies, whatever killed it: a `--workers 2` run and a
`--ray local` run whose driver the test kills with SIGKILL (by its pid) leave no process behind.

Only processes this test started are touched: the driver (by pid) and, if anything is left over after the
bound, its recorded descendants (by pid)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from docvlm.executors.lifeline import process_identity
from tests.test_batch import make_pdf

psutil = pytest.importorskip("psutil")
pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")

ROOT = Path(__file__).resolve().parent.parent
GONE_WITHIN_S = 30.0
"""Generous: the watch thread notices within a second; a loaded CI machine is slow to reap."""


def descendants(pid: int) -> dict[int, str]:
    """pid -> identity of every live descendant of `pid`."""
    try:
        kids = psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return {}
    return {k.pid: ident for k in kids if (ident := process_identity(k.pid)) is not None}


def still_alive(procs: dict[int, str]) -> dict[int, str]:
    return {pid: ident for pid, ident in procs.items() if process_identity(pid) == ident}


def kill_driver_and_check_children(cmd: list[str], env: dict[str, str], pid_dir: Path,
                                   workers: int) -> dict[int, str]:
    """Run `cmd`, wait until `workers` worker processes have started pages, SIGKILL the driver, return what
    is still alive after `GONE_WITHIN_S` (and kill that, by pid, so nothing outlives the test)."""
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT, env=env)
    family: dict[int, str] = {}
    try:
        deadline = time.monotonic() + 180
        while len(list(pid_dir.iterdir())) < workers and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert proc.poll() is None, "the run ended before its driver could be killed: make the engine slower"
        family = descendants(proc.pid)
        worker_pids = {int(p.name) for p in pid_dir.iterdir()}
        assert worker_pids <= set(family), (worker_pids, family)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        deadline = time.monotonic() + GONE_WITHIN_S
        while still_alive(family) and time.monotonic() < deadline:
            time.sleep(0.2)
        return still_alive(family)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
        for pid in still_alive(family):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def names(pids: dict[int, str]) -> list[str]:
    out = []
    for pid in pids:
        try:
            out.append(f"{pid} {' '.join(psutil.Process(pid).cmdline())[:120]}")
        except psutil.NoSuchProcess:
            pass
    return out


def test_sigkill_of_the_driver_ends_its_pool_workers_and_resource_tracker(tmp_path: Path) -> None:
    for i in range(6):
        make_pdf(tmp_path / "in" / f"doc{i}.pdf", pages=4)
    pid_dir = tmp_path / "pids"
    pid_dir.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCVLM_")} | {"PYTHONWARNINGS": "ignore"}
    cmd = [sys.executable, "-m", "docvlm", "convert", str(tmp_path / "in"), "-o", str(tmp_path / "out"),
           "--engine", "scripted", "--model", f"delay=0.5,pid_dir={pid_dir}", "--workers", "2"]
    left = kill_driver_and_check_children(cmd, env, pid_dir, workers=2)
    assert not left, names(left)


def test_sigkill_of_a_ray_local_driver_ends_its_actors_and_ray(tmp_path: Path) -> None:
    pytest.importorskip("ray")
    from tests.test_ray import ENV

    for i in range(4):
        make_pdf(tmp_path / "in" / f"doc{i}.pdf", pages=6)
    pid_dir = tmp_path / "pids"
    pid_dir.mkdir()
    cmd = [sys.executable, "-m", "docvlm", "convert", str(tmp_path / "in"), "-o", str(tmp_path / "out"),
           "--engine", "scripted", "--model", f"delay=0.5,pid_dir={pid_dir}", "--ray", "local",
           "--ray-workers", "2"]
    left = kill_driver_and_check_children(cmd, ENV, pid_dir, workers=2)
    assert not left, names(left)
