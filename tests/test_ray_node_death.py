"""Issue 17 item 3: the raylet of a `--ray local` run dies (killed by the test, by its process id): the run
ends within a minute with a clear error, the results already written stay, and a rerun resumes.

Loopback only (tests.test_ray.ENV); only processes this test started are touched."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.test_batch import make_pdf

pytest.importorskip("ray", reason="the ray extra is not installed (pip install -e '.[ray]')")
psutil = pytest.importorskip("psutil")

ROOT = Path(__file__).resolve().parent.parent
ENDS_WITHIN_S = 60.0


def ray_process(driver_pid: int, name: str) -> psutil.Process | None:
    """The descendant of the driver whose command line runs `name` (raylet, ray::DashboardAgent)."""
    for proc in psutil.Process(driver_pid).children(recursive=True):
        try:
            cmd = proc.cmdline()
        except psutil.NoSuchProcess:
            continue
        if cmd and (Path(cmd[0]).name == name or cmd[0].startswith(name)):
            return proc
    return None


@pytest.mark.parametrize("victim", ["raylet", pytest.param("ray::DashboardAgent", marks=pytest.mark.slow)])
def test_killing_the_raylet_of_ray_local_ends_the_run_and_a_rerun_resumes(tmp_path: Path, victim: str) -> None:
    from tests.test_ray import ENV

    n_docs = 12
    for i in range(n_docs):
        make_pdf(tmp_path / "in" / f"doc{i}.pdf", pages=2)
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "docvlm", "convert", str(tmp_path / "in"), "-o", str(out), "--engine", "scripted",
           "--model", "delay=0.5", "--ray", "local", "--ray-workers", "2"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT, env=ENV)
    family: list[psutil.Process] = []
    try:
        deadline = time.monotonic() + 180
        while not list(out.glob("doc*.pdf.json")) and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
        assert proc.poll() is None, "the batch finished before its raylet could be killed"
        family = psutil.Process(proc.pid).children(recursive=True)
        target = ray_process(proc.pid, victim)
        assert target is not None, [p.cmdline()[:1] for p in family]
        os.kill(target.pid, signal.SIGKILL)
        killed_at = time.monotonic()
        stdout, stderr = proc.communicate(timeout=ENDS_WITHIN_S + 30)
        took = time.monotonic() - killed_at
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
        for p in family:  # whatever of the dead run's Ray is left (the reaper should have ended it)
            try:
                p.kill()
            except psutil.NoSuchProcess:
                pass
    assert took < ENDS_WITHIN_S, took
    assert proc.returncode == 1, (proc.returncode, stderr[-2000:])
    assert "Traceback" not in stderr and "node died" in stdout + stderr, stderr[-2000:]
    done_before = sorted(p.name for p in out.glob("doc*.pdf.json"))
    assert 1 <= len(done_before) < n_docs
    summary = json.loads((out / "_docvlm_summary.json").read_text())
    assert summary["interrupted"] is True

    rerun = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=ENV, timeout=240)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    summary = json.loads((out / "_docvlm_summary.json").read_text())
    assert summary["interrupted"] is False and summary["totals"]["success"] == n_docs
    assert sorted(d["key"] + ".json" for d in summary["documents"] if d["resumed"]) == done_before


# --- a cluster that loses one node: the pool shrinks to the live nodes, the batch goes on ------------------


class _FakeRay:
    """Answers the two cluster queries `_check_cluster` makes (the real path is tested above)."""

    def __init__(self, nodes: list[dict]) -> None:
        self._nodes = nodes
        self.killed: list[object] = []

    def nodes(self) -> list[dict]:
        return self._nodes

    def kill(self, actor: object, no_restart: bool = True) -> None:
        self.killed.append(actor)


def test_losing_one_node_shrinks_the_pool_and_requeues_uncharged(monkeypatch: pytest.MonkeyPatch) -> None:
    import collections

    from docvlm.executors import WorkItem
    from docvlm.executors import ray as ray_exec

    executor = ray_exec.RayExecutor("10.0.0.1:6379", cpus_per_worker=1.0)
    items = [WorkItem(f"d{i}", f"d{i}.pdf", f"/x/d{i}.pdf") for i in range(4)]
    busy = ray_exec._Slot("actor-busy", collections.deque([("r0", [items[0]])]), finished=3)
    stuck = ray_exec._Slot("actor-stuck", collections.deque([("r1", [items[1]]), ("r2", [items[2]])]))
    slots = [busy, stuck]
    slot_of = {"r0": busy, "r1": stuck, "r2": stuck}
    todo = collections.deque([items[3]])
    fake = _FakeRay([{"Alive": True, "Resources": {"CPU": 1.0}}, {"Alive": False, "Resources": {"CPU": 1.0}}])
    executor._check_cluster(fake, slots, slot_of, todo)
    assert slots == [busy] and fake.killed == ["actor-stuck"]
    assert [i.key for i in todo] == ["d1", "d2", "d3"] and set(slot_of) == {"r0"}

    monkeypatch.setattr(ray_exec, "NODE_LOSS_GRACE_S", 0.0)
    with pytest.raises(ray_exec.ClusterLost, match="no live node"):
        executor._check_cluster(_FakeRay([{"Alive": False, "Resources": {"CPU": 4.0}}]), slots, slot_of, todo)


# --- a Ray Client head that fails to start this client's server: tried again, other errors at once -----------


class _FlakyInit:
    def __init__(self, failures: int, message: str) -> None:
        self.failures, self.message, self.calls = failures, message, 0

    def init(self, **_: object) -> None:
        self.calls += 1
        if self.calls <= self.failures:
            raise ConnectionAbortedError(self.message)

    def is_initialized(self) -> bool:
        return False


def test_a_client_server_that_failed_to_start_is_tried_again_and_other_errors_are_not(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from docvlm.executors import ray as ray_exec

    monkeypatch.setattr(ray_exec, "CLIENT_RETRY_PAUSE_S", 0.0)
    failed = f"Initialization failure from server: RuntimeError: {ray_exec.CLIENT_SERVER_FAILED}. See logs."
    flaky = _FlakyInit(1, failed)
    ray_exec._init(flaky, {}, client=True)
    assert flaky.calls == 2

    always = _FlakyInit(99, failed)
    with pytest.raises(ConnectionAbortedError):
        ray_exec._init(always, {}, client=True)
    assert always.calls == ray_exec.CLIENT_START_RETRIES + 1

    for flaky, client in ((_FlakyInit(1, "authentication failed"), True), (_FlakyInit(1, failed), False)):
        with pytest.raises(ConnectionAbortedError):
            ray_exec._init(flaky, {}, client=client)
        assert flaky.calls == 1  # a wrong token, or a head that is not a Ray Client: no second try
