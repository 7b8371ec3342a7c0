"""`--ray`: a real Ray on loopback (no mocks). `--ray local` inside the run, and a head started by the test
(`ray start --head --block`, stopped by its process id, never `ray stop`); outputs equal a local run; a killed
actor, a poison document, Ctrl-C and resume, an unreachable head, no Ray import without --ray, no Ray installed.

Every Ray run is a `docvlm` child process, so the test process never holds a Ray connection.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.test_batch import make_pdf, make_png

ray = pytest.importorskip("ray", reason="the ray extra is not installed (pip install -e '.[ray]')")

ROOT = Path(__file__).resolve().parent.parent
ENV = {k: v for k, v in os.environ.items() if not k.startswith(("DOCVLM_", "RAY_"))} | {
    "PYTHONWARNINGS": "ignore",
    "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",  # bind loopback: no traffic leaves this machine
    "RAY_AUTH_MODE": "token",
    "RAY_AUTH_TOKEN": secrets.token_hex(16),
    "RAY_DEFAULT_OBJECT_STORE_MEMORY_PROPORTION": "0.01",  # several Ray runs share this machine
    "RAY_USAGE_STATS_ENABLED": "0",
}
TIMING_KEYS = {"seconds", "elapsed_s", "duration_s", "created_at"}


def docvlm(*args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "docvlm", *args], capture_output=True, text=True, cwd=ROOT,
                          env=ENV, timeout=timeout)


def stable(path: Path) -> object:
    def strip(value: object) -> object:
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if k not in TIMING_KEYS}
        if isinstance(value, list):
            return [strip(v) for v in value]
        return value

    return strip(json.loads(path.read_text()))


def outputs(out: Path) -> dict[str, object]:
    return {p.relative_to(out).as_posix(): stable(p) if p.suffix == ".json" else p.read_text()
            for p in sorted(out.rglob("*")) if p.is_file() and not p.name.startswith("_docvlm_summary")}


def records(out: Path) -> dict[str, dict]:
    summary = json.loads((out / "_docvlm_summary.json").read_text())
    return {d["key"]: d for d in summary["documents"]}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def ray_head(tmp_path_factory: pytest.TempPathFactory):
    """A Ray head on 127.0.0.1 with token auth, started as a child process and stopped by its pid."""
    ray_cli = shutil.which("ray", path=str(Path(sys.executable).parent)) or shutil.which("ray")
    if ray_cli is None:
        pytest.skip("the `ray` command is not installed")
    port, client_port = free_port(), free_port()
    log = (tmp_path_factory.mktemp("head") / "head.log").open("w")
    head = subprocess.Popen(
        [ray_cli, "start", "--head", "--block", "--port", str(port), "--node-ip-address", "127.0.0.1",
         "--ray-client-server-port", str(client_port), "--num-cpus", "2", "--object-store-memory", str(100 * 1024**2), "--include-dashboard", "false",
         "--disable-usage-stats"],
        stdout=log, stderr=subprocess.STDOUT, env=ENV, start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 90
        waiting = [port, client_port]  # the Ray Client server comes up after the head's own port
        while waiting and time.monotonic() < deadline:
            assert head.poll() is None, Path(log.name).read_text()
            try:
                socket.create_connection(("127.0.0.1", waiting[0]), timeout=1).close()
                waiting.pop(0)
            except OSError:
                time.sleep(0.5)
        yield f"127.0.0.1:{port}", f"ray://127.0.0.1:{client_port}"
    finally:
        head.send_signal(signal.SIGTERM)  # `ray start --block` stops the processes it started
        try:
            head.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(head.pid, signal.SIGKILL)
            head.wait(timeout=10)
        log.close()


@pytest.fixture
def inbox(tmp_path: Path) -> Path:
    root = tmp_path / "in"
    make_pdf(root / "a.pdf")
    make_png(root / "b.png")
    (root / "c_corrupt.pdf").write_bytes(b"%PDF-1.4\n1 0 obj garbage")
    make_pdf(root / "sub" / "d.pdf", pages=3)
    return root


def test_ray_local_on_the_samples_equals_a_local_run(samples_dir: Path, tmp_path: Path) -> None:
    """The default ocr engine on the born-digital samples (plus a corrupt file): same JSON and Markdown."""
    inp = tmp_path / "in"
    inp.mkdir()
    for name in ("invoice.pdf", "two_column.pdf", "rotated.pdf"):
        if not (samples_dir / name).is_file():
            pytest.skip(f"samples/{name} not generated")
        shutil.copy(samples_dir / name, inp / name)
    (inp / "broken.pdf").write_bytes(b"%PDF-1.7\n%%EOF")
    local = docvlm("convert", str(inp), "-o", str(tmp_path / "local"), "--format", "json,md")
    on_ray = docvlm("convert", str(inp), "-o", str(tmp_path / "ray"), "--format", "json,md", "--ray", "local")
    assert local.returncode == on_ray.returncode == 1, on_ray.stderr  # the broken file fails in both
    assert "Traceback" not in on_ray.stderr
    assert outputs(tmp_path / "ray") == outputs(tmp_path / "local")
    assert len(outputs(tmp_path / "ray")) == 8  # 4 documents x (json, md); a failure has its outputs too
    ray_recs, local_recs = records(tmp_path / "ray"), records(tmp_path / "local")
    assert {k: (r["status"], r["pages"], r["outputs"]) for k, r in ray_recs.items()} == \
           {k: (r["status"], r["pages"], r["outputs"]) for k, r in local_recs.items()}
    assert "broken.pdf" in ray_recs["broken.pdf"]["errors"][0]


def test_head_with_token_auth_ships_inputs_and_equals_a_local_run(ray_head: tuple[str, str], inbox: Path,
                                                                  tmp_path: Path) -> None:
    """`--ray HOST:PORT` against the test's head; inputs travel as bytes (`--ray-inputs ship`), the driver
    writes: the same outputs and records as a local run."""
    head = ray_head[0]
    args = ["--engine", "scripted", "--format", "json,md"]
    local = docvlm("convert", str(inbox), "-o", str(tmp_path / "local"), *args)
    on_ray = docvlm("convert", str(inbox), "-o", str(tmp_path / "ray"), *args, "--ray", head,
                    "--ray-inputs", "ship", "--ray-workers", "2")
    assert local.returncode == on_ray.returncode == 1, on_ray.stderr  # c_corrupt.pdf
    assert outputs(tmp_path / "ray") == outputs(tmp_path / "local")
    recs = records(tmp_path / "ray")
    assert recs["c_corrupt.pdf"]["status"] == "failure" and "c_corrupt.pdf" in recs["c_corrupt.pdf"]["errors"][0]
    assert recs["sub/d.pdf"]["pages"] == 3 and recs["sub/d.pdf"]["abspath"] == str((inbox / "sub/d.pdf").resolve())

    # a rerun resumes everything that succeeded (same hash and options digest), and retries the failure
    again = docvlm("convert", str(inbox), "-o", str(tmp_path / "ray"), *args, "--ray", head)
    summary = json.loads((tmp_path / "ray" / "_docvlm_summary.json").read_text())
    assert again.returncode == 1 and summary["totals"]["resumed"] == 3 and summary["totals"]["converted"] == 1


def test_extract_on_the_head_equals_a_local_extract(ray_head: tuple[str, str], samples_dir: Path, tmp_path: Path) -> None:
    pdf = samples_dir / "invoice.pdf"
    if not pdf.is_file():
        pytest.skip("samples/invoice.pdf not generated")
    local = docvlm("extract", str(pdf), "-o", str(tmp_path / "local"))
    on_ray = docvlm("extract", str(pdf), "-o", str(tmp_path / "ray"), "--ray", ray_head[0], "--ray-inputs", "ship")
    assert local.returncode == on_ray.returncode == 0, on_ray.stderr
    assert outputs(tmp_path / "ray") == outputs(tmp_path / "local")
    assert stable(tmp_path / "ray" / "invoice.pdf.json")["kind"] == "extraction"


def test_ray_client_address_ships_inputs(ray_head: tuple[str, str], inbox: Path, tmp_path: Path) -> None:
    """`--ray ray://HOST:PORT` (Ray Client): the driver is off the cluster, so inputs travel as bytes."""
    local = docvlm("convert", str(inbox / "sub"), "-o", str(tmp_path / "local"), "--engine", "scripted")
    on_ray = docvlm("convert", str(inbox / "sub"), "-o", str(tmp_path / "ray"), "--engine", "scripted",
                    "--ray", ray_head[1])
    assert local.returncode == on_ray.returncode == 0, on_ray.stderr
    assert outputs(tmp_path / "ray") == outputs(tmp_path / "local") and outputs(tmp_path / "ray")


def test_an_actor_killed_mid_run_is_replaced_and_the_batch_completes(ray_head: tuple[str, str], tmp_path: Path) -> None:
    for i in range(6):
        make_pdf(tmp_path / "in" / f"doc{i}.pdf", pages=3)
    pids = tmp_path / "pids"
    pids.mkdir()
    out = tmp_path / "out"
    proc = subprocess.Popen(
        [sys.executable, "-m", "docvlm", "convert", str(tmp_path / "in"), "-o", str(out), "--engine", "scripted",
         "--model", f"delay=0.3,pid_dir={pids}", "--ray", ray_head[0], "--ray-workers", "2"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT, env=ENV,
    )
    deadline = time.monotonic() + 120
    while not any(pids.iterdir()) and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    victim = int(next(pids.iterdir()).name)  # an actor process, inside a page of a document
    assert victim != proc.pid
    os.kill(victim, signal.SIGKILL)
    _, stderr = proc.communicate(timeout=180)
    assert proc.returncode == 0, stderr
    recs = records(out)
    assert len(recs) == 6 and all(r["status"] == "success" and r["pages"] == 3 for r in recs.values())
    assert len(list(pids.iterdir())) >= 3  # two actors, plus the one that replaced the killed one


def test_a_poison_document_fails_after_killing_two_workers(ray_head: tuple[str, str], tmp_path: Path) -> None:
    """worker_crash.pdf kills every process that converts it (a scripted test hook, like a segfault)."""
    make_pdf(tmp_path / "in" / "worker_crash.pdf")
    for i in range(3):
        make_pdf(tmp_path / "in" / f"good{i}.pdf")
    res = docvlm("convert", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--engine", "scripted",
                 "--ray", ray_head[0], "--ray-workers", "2")
    assert res.returncode == 1 and "Traceback" not in res.stderr, res.stderr
    recs = records(tmp_path / "out")
    assert all(recs[f"good{i}.pdf"]["status"] == "success" for i in range(3))
    assert recs["worker_crash.pdf"]["status"] == "failure"
    assert "died 2 times" in recs["worker_crash.pdf"]["errors"][0]
    assert "worker_crash.pdf" in recs["worker_crash.pdf"]["errors"][0]


def test_ctrl_c_on_ray_local_stops_and_a_rerun_resumes(tmp_path: Path) -> None:
    """`--ray local` listens on loopback only; SIGINT mid-run: exit 130, summary interrupted; a rerun resumes."""
    for i in range(6):
        make_pdf(tmp_path / "in" / f"doc{i}.pdf", pages=2)
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "docvlm", "convert", str(tmp_path / "in"), "-o", str(out), "--engine", "scripted",
           "--model", "delay=0.4", "--ray", "local", "--ray-workers", "1"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT, env=ENV)
    deadline = time.monotonic() + 120
    while not list(out.glob("doc*.pdf.json")) and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert proc.poll() is None, "the batch finished before it could be interrupted"
    listening = listening_addresses(proc.pid)
    assert listening and all(ip in ("127.0.0.1", "::ffff:127.0.0.1") for ip, _ in listening), listening
    started = time.monotonic()
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "Traceback" not in stderr, stderr
    assert time.monotonic() - started < 30
    done_before = sorted(p.name for p in out.glob("doc*.pdf.json"))
    assert 1 <= len(done_before) < 6
    assert json.loads((out / "_docvlm_summary.json").read_text())["interrupted"] is True

    rerun = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=ENV, timeout=180)
    assert rerun.returncode == 0, rerun.stderr
    summary = json.loads((out / "_docvlm_summary.json").read_text())
    assert summary["interrupted"] is False and summary["totals"]["success"] == 6
    assert sorted(d["key"] + ".json" for d in summary["documents"] if d["resumed"]) == done_before


def listening_addresses(pid: int) -> list[tuple[str, int]]:
    """(ip, port) of every listening TCP socket of a process and its descendants (the in-run Ray's)."""
    psutil = pytest.importorskip("psutil")
    root = psutil.Process(pid)
    found = []
    for p in [root, *root.children(recursive=True)]:
        try:
            conns = p.net_connections(kind="inet")
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        found += [(c.laddr.ip, c.laddr.port) for c in conns if c.status == psutil.CONN_LISTEN]
    return found


def test_an_unreachable_head_is_a_clear_error_within_seconds(tmp_path: Path) -> None:
    make_pdf(tmp_path / "a.pdf")
    started = time.monotonic()
    res = docvlm("convert", str(tmp_path / "a.pdf"), "-o", str(tmp_path / "out"), "--engine", "scripted",
                 "--ray", f"127.0.0.1:{free_port()}")
    assert res.returncode == 2 and "cannot reach a Ray head" in res.stderr and "ray start --head" in res.stderr
    assert "Traceback" not in res.stderr
    assert time.monotonic() - started < 30  # interpreter start included; the connect check gives up in 5 s


def test_gpu_actors_on_a_cluster_without_gpus_is_a_usage_error(ray_head: tuple[str, str], tmp_path: Path) -> None:
    make_pdf(tmp_path / "a.pdf")
    res = docvlm("convert", str(tmp_path / "a.pdf"), "-o", str(tmp_path / "out"), "--engine", "scripted",
                 "--ray", ray_head[0], "--ray-gpus-per-worker", "1")
    assert res.returncode == 2 and "--ray-gpus-per-worker 1: the Ray cluster has 0 GPU(s)" in res.stderr


_PROBE = """
import sys
{block}
from docvlm.cli import main
sys.argv = ["docvlm", *sys.argv[1:]]
try:
    main()
except SystemExit as exc:
    print("EXIT", exc.code, "RAY_IMPORTED", "ray" in sys.modules and sys.modules["ray"] is not None)
"""


def probe_cli(block: str, *args: str) -> subprocess.CompletedProcess:
    """`docvlm ARGS` inside `python -c`, after `block`; prints the exit code and whether ray was imported."""
    return subprocess.run([sys.executable, "-c", _PROBE.format(block=block), *args], capture_output=True,
                          text=True, cwd=ROOT, env=ENV, timeout=120)


def test_without_ray_flag_nothing_of_ray_is_imported(tmp_path: Path) -> None:
    make_pdf(tmp_path / "in" / "a.pdf")
    make_pdf(tmp_path / "in" / "b.pdf")
    res = probe_cli("", "convert", str(tmp_path / "in"), "-o", str(tmp_path / "o"), "--engine", "scripted",
                    "--workers", "2")
    assert "EXIT 0 RAY_IMPORTED False" in res.stdout, res.stderr


def test_without_the_extra_the_error_names_the_install_command(tmp_path: Path) -> None:
    make_pdf(tmp_path / "a.pdf")
    block = "sys.modules['ray'] = None  # import ray raises ImportError, as when not installed"
    res = probe_cli(block, "convert", str(tmp_path / "a.pdf"), "-o", str(tmp_path / "o"), "--engine", "scripted",
                    "--ray", "local")
    assert "EXIT 2" in res.stdout, res.stdout + res.stderr
    assert "pip install -e '.[ray]'" in res.stderr and "Traceback" not in res.stderr
