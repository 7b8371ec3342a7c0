"""The Ray executor (`--ray ADDRESS`): documents stream to a pool of Ray actors, each loading the engine once.

Ray Core actors, not Ray Data: the pool, the window of documents in flight and the retries are ours, so that
(1) a worker killed mid-document is charged to exactly the document it was running (an actor runs its calls
in order: the oldest unfinished call of a dead actor was the running one), and a document that killed two
workers is recorded as failed while the batch goes on (Ray Data fails the whole dataset, or skips blocks
without saying which document); (2) the driver writes each result as it arrives, in the same OUT layout, with
no dataset planning before the first document starts. The properties Ray Data would give are kept: each actor
is the shared callable class (`DocumentWorker`: `__init__` loads the engine, a call maps a batch), the pool
is sized from the cluster's resources (or `--ray-workers`), GPU actors ask for `--ray-gpus-per-worker`, and at
most `in_flight` calls per actor are submitted, so the driver's memory stays flat however many documents the
batch has. A conversion by a planning engine sends `STREAM_DOCS_PER_CALL` documents per call, which the actor
streams through its feed (docvlm.pipeline.stream_documents) so its model batches pages of several documents.

Inputs travel as bytes through the object store unless the workers can read the driver's paths: `ray_inputs`
"shared" says they can (a shared file system), "ship" says they cannot, and "auto" ships unless the cluster
is a single node at the driver's own address (`--ray local`, or a head on this machine) and the driver is
not a Ray Client.

This module is imported only when `--ray` is given; `ray` itself only inside `RayExecutor.run`.
"""

from __future__ import annotations

import collections
import math
import os
import signal
import socket
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from docvlm.errors import InputError, UsageError
from docvlm.executors import MAX_CRASHES, PageEvent, WorkDone, WorkerSpec, WorkItem, crash_message
from docvlm.executors.worker import DocumentWorker

if TYPE_CHECKING:
    from docvlm.options import ConvertOptions

STREAM_DOCS_PER_CALL = 8
"""Documents in one actor call when the kind streams (a conversion by a planning engine: DocumentWorker.streams):
the actor's feed prepares the next documents' pages while the model works on earlier ones and fills its batches
with tiles of several documents (one call per one-page receipt would leave a GPU batch one page wide). A call
whose actor dies is run again one document per call, so the document that killed it is still the one charged."""
CLIENT_SERVER_FAILED = "Starting Ray client server failed"
"""What a Ray Client head answers when the server process it starts for this client exited at birth."""
CLIENT_START_RETRIES = 2
CLIENT_RETRY_PAUSE_S = 2.0
RAY_MISSING = "--ray needs Ray, which is not installed: pip install -e '.[ray]' (or pip install 'docvlm[ray]')"
CONNECT_TIMEOUT_S = 5.0
"""A head that does not answer a TCP connect in this time is reported unreachable (before Ray's own, much
longer, retries)."""
LOCAL_OBJECT_STORE_BYTES = 512 * 1024**2
"""`--ray local` object store: results and a few documents in flight, not Ray's default of 30% of the RAM."""
HEALTH_CHECK_S = 2.0
"""How often the driver checks that the cluster still has live nodes (and, `--ray local`, that its own Ray's
raylet and GCS still run)."""
HEALTH_RPC_TIMEOUT_S = 10.0
"""A cluster-state query (ray.nodes) that does not answer in this time counts as "no live node"."""
NODE_LOSS_GRACE_S = 20.0
"""With no live node (or no answer) for this long the run stops with an error (results so far are kept)."""
LOCAL_CORE_PROCESSES = ("raylet", "gcs_server")
"""Processes of an in-run Ray (`--ray local`) without which nothing can run: one dead ends the run at once."""
RAY_AUTH_MODE_ENV = "RAY_AUTH_MODE"
"""Ray's authentication mode variable; `--ray local` sets it to `token` unless the user set it."""


def import_ray() -> Any:
    """`ray`, or a UsageError naming the install command."""
    try:
        import ray
    except ImportError:
        raise UsageError(RAY_MISSING) from None
    return ray


class _Actor:
    """A Ray actor around the shared worker callable (`ray.remote` is applied at run time)."""

    def __init__(self, spec: WorkerSpec, threads: int) -> None:
        self.worker = DocumentWorker(spec, threads=threads)

    def map(self, items: list[WorkItem]) -> list[WorkDone]:
        return self.worker(items)  # streamed through the feed when the kind streams

    def pid(self) -> int:
        return os.getpid()


@dataclass
class _Slot:
    """One place in the pool: its current actor and the calls submitted to it, oldest first."""

    actor: Any
    queue: collections.deque[tuple[Any, list[WorkItem]]] = field(default_factory=collections.deque)
    finished: int = 0  # calls its current actor returned (0: maybe never placed, e.g. its node is gone)


class ClusterLost(Exception):
    """The cluster cannot run anything any more (no live node, or the in-run Ray's raylet/GCS died)."""


class RayExecutor:
    """Runs documents on Ray actors; see the module docstring.

    Args:
        address: "local" (a single-node Ray started inside the run with this machine's cores, on loopback
            only), "auto" (RAY_ADDRESS or the cluster running on this machine), "HOST:PORT" (a head node;
            token auth from RAY_AUTH_TOKEN as Ray reads it) or "ray://HOST:10001" (Ray Client).
        workers: actors; default from the cluster's CPUs (or GPUs when `gpus_per_worker` > 0).
        gpus_per_worker: GPUs each actor asks for (`--engine hf` on GPU nodes).
        inputs: "auto", "ship" or "shared" (see the module docstring).
        cpus_per_worker: CPUs each actor asks for; also its inference threads.
        in_flight: calls submitted to each actor at a time (one running, the next one ready).
        docs_per_call: documents in one call; default `STREAM_DOCS_PER_CALL` when the kind streams, else 1.
        local_cpus: CPUs of a `local` Ray (default: this machine's cores).
        object_store_bytes: object store of a `local` Ray.
    """

    def __init__(self, address: str, *, workers: int | None = None, gpus_per_worker: float = 0.0,
                 inputs: str = "auto", cpus_per_worker: float = 1.0, in_flight: int = 2,
                 local_cpus: int | None = None, object_store_bytes: int | None = LOCAL_OBJECT_STORE_BYTES,
                 docs_per_call: int | None = None) -> None:
        self.address = address.strip()
        self.workers = workers
        self.gpus_per_worker = gpus_per_worker
        self.inputs = inputs
        self.cpus_per_worker = cpus_per_worker
        self.in_flight = max(1, in_flight)
        self.docs_per_call = docs_per_call
        self._solo: set[str] = set()  # documents of a call whose actor died: run again one per call
        self.local_cpus = local_cpus
        self._reachable = False  # set when from_options has probed the head
        self.object_store_bytes = object_store_bytes
        self.ships_inputs: bool | None = None
        self.pool_size: int | None = None
        self.connect_seconds: float | None = None
        self._reaper: Any = None  # `--ray local`: ends Ray's processes if this driver is killed (lifeline)
        self._lost: str | None = None  # why the cluster was given up (then Ray is not shut down politely)
        self._no_node_since: float | None = None

    @classmethod
    def from_options(cls, options: ConvertOptions) -> RayExecutor:
        """The executor of `--ray ...`; a head that cannot be reached is a UsageError now, before the input
        walk (which can take long on a big archive)."""
        assert options.ray is not None
        executor = cls(options.ray, workers=options.ray_workers, gpus_per_worker=options.ray_gpus_per_worker,
                       inputs=options.ray_inputs)
        address = executor._head_address()
        if address not in ("local", "auto"):
            _check_reachable(address, executor.address)
            executor._reachable = True
        return executor

    def _head_address(self) -> str:
        """The address to join: `auto` is the one in RAY_ADDRESS when set."""
        if self.address == "auto":
            return os.environ.get("RAY_ADDRESS", "").strip() or "auto"
        return self.address

    # --- connecting ------------------------------------------------------------------------------------------

    def _connect(self) -> tuple[Any, bool]:
        """Import Ray and connect; returns (ray, True when this run started or joined it and must leave it)."""
        if self.address == "local":
            # read by Ray when it is imported: without it Ray swaps 127.0.0.1 for the machine's network address
            os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
            # token authentication on, as Ray does by default for a cluster it starts, but said explicitly:
            # Ray then prints no "Token authentication is enabled ..." warning at the user
            os.environ.setdefault(RAY_AUTH_MODE_ENV, "token")
        ray = import_ray()
        if ray.is_initialized():  # the Python API caller connected already: use that connection, leave it open
            return ray, False
        kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, "logging_level": "warning"}
        if self.address == "local":
            from ray._private import ray_constants

            ray_constants.ENABLE_RAY_CLUSTER = False  # when Ray was imported before the variable was set
            kwargs.update(address="local", num_cpus=self.local_cpus or os.cpu_count() or 1,
                          _node_ip_address="127.0.0.1", object_store_memory=self.object_store_bytes)
        else:
            address = self._head_address()
            if address != "auto" and not self._reachable:  # from_options has probed it already
                _check_reachable(address, self.address)
            kwargs.pop("include_dashboard")
            kwargs["address"] = address
        saved = _signal_handlers()
        if self.address == "local":  # before Ray starts: it knows every process of the in-run Ray from birth
            from docvlm.executors.lifeline import start_reaper

            self._reaper = start_reaper()
        try:
            _init(ray, kwargs, client=self.address.startswith("ray://"))
        except Exception as exc:  # noqa: BLE001 - connection, auth (ray.exceptions.AuthenticationError), ...
            if self._reaper is not None:
                from docvlm.executors.lifeline import stop_reaper

                stop_reaper(self._reaper)
                self._reaper = None
            raise UsageError(_connect_error(self.address, exc)) from None
        finally:
            _restore_signal_handlers(saved)  # Ctrl-C and SIGTERM stay the batch's (summary, exit 130)
        return ray, True

    # --- running ---------------------------------------------------------------------------------------------

    def run(self, items: Sequence[WorkItem], spec: WorkerSpec, on_page: PageEvent) -> Iterator[WorkDone]:
        started = time.perf_counter()
        ray, leave = self._connect()
        self.connect_seconds = time.perf_counter() - started
        slots: list[_Slot] = []
        try:
            yield from self._stream(ray, items, spec, on_page, slots)
        finally:
            if self._lost is None:
                for slot in slots:
                    _kill(ray, slot.actor)
                if leave:
                    ray.shutdown()
            elif leave:  # a dead node: Ray's own shutdown can wait for it forever; bounded, in a thread
                _bounded(ray.shutdown, HEALTH_RPC_TIMEOUT_S)
            if self._reaper is not None and self._lost is None:
                from docvlm.executors.lifeline import stop_reaper

                stop_reaper(self._reaper)  # after a lost cluster it stays: it ends what is left when we exit
                self._reaper = None

    def _stream(self, ray: Any, items: Sequence[WorkItem], spec: WorkerSpec, on_page: PageEvent,
                slots: list[_Slot]) -> Iterator[WorkDone]:
        from ray.exceptions import GetTimeoutError, RayActorError, RayTaskError, WorkerCrashedError

        died = (RayActorError, WorkerCrashedError)
        self.ships_inputs = self._decide_shipping(ray)
        size = self._pool_size(ray, len(items))
        self.pool_size = size
        cpus = self.cpus_per_worker
        if self.gpus_per_worker > 0 and _plans(spec):
            # a GPU actor of a planning engine prepares its pages on the CPUs that come with its GPU share
            # (its preparers: docvlm.engines.prep, auto from these threads), not on one CPU
            cpus = cpus_per_gpu_actor(_bounded(ray.nodes, HEALTH_RPC_TIMEOUT_S), self.gpus_per_worker) or cpus
        threads = max(1, int(cpus))
        actor_class = ray.remote(num_cpus=cpus, num_gpus=self.gpus_per_worker or None,
                                 max_restarts=0, max_task_retries=0)(_Actor)
        slots.extend(_Slot(actor_class.remote(spec, threads)) for _ in range(size))
        todo = collections.deque(items)
        group = max(1, self.docs_per_call or (STREAM_DOCS_PER_CALL if _streams(spec) else 1))
        attempts: dict[str, int] = {}
        deaths_in_a_row = 0
        slot_of: dict[Any, _Slot] = {}
        next_check = time.monotonic() + HEALTH_CHECK_S

        while todo or slot_of:
            if time.monotonic() >= next_check:
                next_check = time.monotonic() + HEALTH_CHECK_S
                try:
                    self._check_cluster(ray, slots, slot_of, todo)
                except ClusterLost as exc:
                    self._lost = str(exc)
                    pending = next(iter(slot_of.values())).queue[0][1][0] if slot_of else (todo[0] if todo else None)
                    yield WorkDone(pending.key if pending else items[0].key, fatal=str(exc))
                    return
            # keep every actor busy, never more than `in_flight` calls each; near the end only idle actors
            # get one, so the last documents do not wait behind a busy actor while another one idles
            limit = self.in_flight if len(todo) >= len(slots) * self.in_flight * group else 1
            for slot in slots:
                while todo and len(slot.queue) < limit:
                    calls, sent = [], []
                    size = min(group, math.ceil(len(todo) / len(slots)))  # the last documents spread over the actors
                    while todo and len(calls) < size and not (calls and todo[0].key in self._solo):
                        item = todo.popleft()
                        shipped = self._with_data(item, spec)
                        if isinstance(shipped, WorkDone):
                            yield shipped
                            continue
                        calls.append(item)
                        sent.append(shipped)
                        if item.key in self._solo:
                            break
                    if not calls:
                        continue
                    ref = slot.actor.map.remote(sent)
                    slot.queue.append((ref, calls))
                    slot_of[ref] = slot
            if not slot_of:
                continue
            ready, _ = ray.wait(list(slot_of), num_returns=1, timeout=1.0)
            for ref in ready:
                slot = slot_of.get(ref)
                if slot is None:  # its actor died and the call was settled with the others
                    continue
                try:
                    dones = ray.get(ref)
                except died as exc:
                    deaths_in_a_row += 1
                    settled = yield from self._settle_dead_actor(ray, slot, slot_of, todo, attempts, on_page,
                                                                 died, GetTimeoutError)
                    if settled:
                        deaths_in_a_row = 0
                    if _died_at_start(exc) or deaths_in_a_row > 2 * len(slots) + 2 * MAX_CRASHES:
                        yield WorkDone(slot.queue[0][1][0].key if slot.queue else items[0].key,
                                       fatal=_actors_cannot_start(exc))
                        return
                    slot.actor = actor_class.remote(spec, threads)
                    slot.finished = 0
                    continue
                except RayTaskError as exc:  # a bug in the worker code itself: that document failed
                    called = _pop(slot, ref, slot_of)
                    if len(called) > 1:  # which of them: each runs again alone
                        self._solo.update(item.key for item in called)
                        todo.extendleft(reversed(called))
                        continue
                    yield WorkDone(called[0].key, crash=f"{called[0].path}: {type(exc.cause).__name__}: {exc.cause}")
                    continue
                _pop(slot, ref, slot_of)
                slot.finished += 1
                deaths_in_a_row = 0
                for done in dones:
                    yield from _finished(done, on_page)

    def _check_cluster(self, ray: Any, slots: list[_Slot], slot_of: dict[Any, _Slot],
                       todo: collections.deque) -> None:
        """Raise ClusterLost when nothing can run any more; shrink the pool to what the live nodes can hold.

        `--ray local`: the in-run Ray's raylet or GCS process has exited -> lost at once. Any cluster: no live
        node (or no answer from the GCS) for `NODE_LOSS_GRACE_S` -> lost. When live nodes remain but hold
        fewer actors than the pool (a node died), the slots whose actor never returned anything (waiting for
        a place that will not come) are dropped and their documents go back to the queue, uncharged; the
        batch goes on on the live nodes.
        """
        if self.address == "local":
            from ray._private import worker as ray_worker

            node = getattr(ray_worker, "_global_node", None)  # the in-run Ray's processes, as Ray started them
            dead = [kind for kind, _ in (node.dead_processes() if node is not None else [])
                    if kind in LOCAL_CORE_PROCESSES]
            if dead:
                raise ClusterLost(f"--ray local: the Ray node died (its {', '.join(sorted(set(dead)))} process "
                                  "exited); the documents finished so far are written: rerun the same command "
                                  "to resume")
        nodes = _bounded(ray.nodes, HEALTH_RPC_TIMEOUT_S)
        alive = [n for n in nodes or () if n.get("Alive")]
        now = time.monotonic()
        if not alive:
            self._no_node_since = self._no_node_since or now
            if now - self._no_node_since >= NODE_LOSS_GRACE_S:
                why = "does not answer" if nodes is None else "has no live node"
                raise ClusterLost(f"--ray {self.address}: the Ray cluster {why} for {NODE_LOSS_GRACE_S:g} s (node "
                                  "died); the documents finished so far are written: rerun the same command to "
                                  "resume")
            return
        self._no_node_since = None
        key, per_actor = ("GPU", self.gpus_per_worker) if self.gpus_per_worker > 0 else ("CPU", self.cpus_per_worker)
        capacity = int(sum(n.get("Resources", {}).get(key, 0.0) for n in alive) // per_actor)
        if capacity < 1 or len(slots) <= capacity:
            return
        for slot in [s for s in slots if s.finished == 0][: len(slots) - capacity]:
            calls = list(slot.queue)
            slot.queue.clear()
            for ref, _ in calls:
                slot_of.pop(ref, None)
            _kill(ray, slot.actor)
            slots.remove(slot)
            todo.extendleft(reversed([item for _, called in calls for item in called]))  # never ran: not charged

    def _settle_dead_actor(self, ray: Any, slot: _Slot, slot_of: dict[Any, _Slot], todo: collections.deque,
                           attempts: dict[str, int], on_page: PageEvent, died: tuple,
                           timeout_error: type) -> Iterator[WorkDone]:
        """The actor of `slot` died: yield what it finished before dying, charge the call it was running (its
        oldest failed one), put the others back in front of the queue uncharged. A call of several documents is
        not charged: its documents run again one per call, so the one that kills an actor is found. Returns
        True when a result was saved."""
        calls = list(slot.queue)
        slot.queue.clear()
        for ref, _ in calls:
            slot_of.pop(ref, None)
        _kill(ray, slot.actor)
        charged: WorkItem | None = None
        running_seen = False
        rerun: list[WorkItem] = []
        saved = False
        for ref, called in calls:
            try:
                dones = ray.get(ref, timeout=10)
            except died:
                if not running_seen and len(called) == 1:
                    charged = called[0]
                elif not running_seen:
                    self._solo.update(item.key for item in called)
                    rerun.extend(called)
                else:
                    rerun.extend(called)
                running_seen = True
                continue
            except timeout_error:
                rerun.extend(called)
                continue
            saved = True
            for done in dones:
                yield from _finished(done, on_page)
        if charged is not None:
            attempts[charged.key] = attempts.get(charged.key, 0) + 1
            if attempts[charged.key] >= MAX_CRASHES:
                yield WorkDone(charged.key, crash=crash_message(charged.path))
            else:
                rerun.insert(0, charged)  # retried next, on a new actor (another process, maybe another node)
        todo.extendleft(reversed(rerun))
        return saved

    def _with_data(self, item: WorkItem, spec: WorkerSpec) -> WorkItem | WorkDone:
        """The item as sent: with its bytes when the workers cannot read the driver's files."""
        if not self.ships_inputs:
            return item
        try:
            data = Path(item.abspath).read_bytes()
        except OSError as exc:
            error = InputError(f"cannot read: {type(exc).__name__}: {exc}", path=item.path)
            return WorkDone(item.key, result=spec.kind.failed(item.path, spec.options, error))
        return WorkItem(item.key, item.path, item.abspath, data)

    def _decide_shipping(self, ray: Any) -> bool:
        if self.inputs in ("ship", "shared"):
            return self.inputs == "ship"
        if self.address.startswith("ray://"):
            return True  # a Ray Client driver is not on the cluster
        alive = [n for n in ray.nodes() if n.get("Alive")]
        here = ray.util.get_node_ip_address()
        return not (len(alive) == 1 and alive[0].get("NodeManagerAddress") == here)

    def _pool_size(self, ray: Any, documents: int) -> int:
        resources = ray.cluster_resources()
        if self.gpus_per_worker > 0:
            gpus = resources.get("GPU", 0.0)
            if gpus < self.gpus_per_worker:
                raise UsageError(f"--ray-gpus-per-worker {self.gpus_per_worker:g}: the Ray cluster has "
                                 f"{gpus:g} GPU(s); add GPU nodes or drop the option")
            fits = int(gpus // self.gpus_per_worker)
        else:
            fits = int(resources.get("CPU", 0.0) // self.cpus_per_worker)
        return max(1, min(self.workers or fits or 1, documents))


def _plans(spec: WorkerSpec) -> bool:
    from docvlm.engines.registry import engine_spec

    return engine_spec(spec.options.engine).plans


def _streams(spec: WorkerSpec) -> bool:
    """Whether an actor's worker streams a call's documents through the feed (DocumentWorker.streams: a
    conversion by a planning engine); then a call carries several documents."""
    from docvlm.batch import ConvertKind

    return isinstance(spec.kind, ConvertKind) and _plans(spec)


def cpus_per_gpu_actor(nodes: Sequence[dict] | None, gpus_per_worker: float) -> float | None:
    """CPUs a GPU actor asks for: its GPUs' share of a node's CPUs, on the live GPU node with the fewest CPUs
    per GPU (so it can be placed on any of them), at least 1; None when no live node has a GPU."""
    shares = []
    for node in nodes or ():
        res = node.get("Resources", {}) if node.get("Alive") else {}
        if res.get("GPU", 0.0) > 0:
            shares.append(res.get("CPU", 0.0) / res["GPU"])
    if not shares:
        return None
    return float(max(1, math.floor(min(shares) * gpus_per_worker)))


def _bounded(call: Any, timeout: float) -> Any:
    """`call()` in a daemon thread; its result, or None when it raised or did not return within `timeout`
    (a Ray call to a dead node or GCS can block far longer)."""
    box: list[Any] = []

    def target() -> None:
        try:
            box.append(call())
        except Exception:  # noqa: BLE001, S110 - a failed query reads as no answer
            pass

    thread = threading.Thread(target=target, name="docvlm-ray-query", daemon=True)
    thread.start()
    thread.join(timeout)
    return box[0] if box else None


def _finished(done: WorkDone, on_page: PageEvent) -> Iterator[WorkDone]:
    """Page progress of a finished document (pages advance as documents complete), then the document."""
    if done.result is not None:
        for page in getattr(done.result, "pages", ()):
            on_page(done.key, getattr(page, "index", 0), getattr(page, "status", "success"))
    yield done


def _pop(slot: _Slot, ref: Any, slot_of: dict[Any, _Slot]) -> list[WorkItem]:
    slot_of.pop(ref, None)
    for i, (r, called) in enumerate(slot.queue):
        if r == ref:
            del slot.queue[i]
            return called
    raise KeyError(ref)  # pragma: no cover - every ref in slot_of is in its slot's queue


def _init(ray: Any, kwargs: dict[str, Any], *, client: bool) -> None:
    """`ray.init`; a Ray Client connection whose per-client server the head failed to start (the head's own
    transient: the proxier spawns one server process per client) is tried again `CLIENT_START_RETRIES` times."""
    for attempt in range(CLIENT_START_RETRIES + 1):
        try:
            ray.init(**kwargs)
            return
        except Exception as exc:
            if not client or attempt == CLIENT_START_RETRIES or CLIENT_SERVER_FAILED not in str(exc):
                raise
            if ray.is_initialized():
                ray.shutdown()
            time.sleep(CLIENT_RETRY_PAUSE_S)


def _kill(ray: Any, actor: Any) -> None:
    try:
        ray.kill(actor, no_restart=True)
    except Exception:  # noqa: BLE001, S110 - already dead, or the connection is gone
        pass


def _died_at_start(exc: BaseException) -> bool:
    return "creation task" in str(exc)


def _actors_cannot_start(exc: BaseException) -> str:
    first = str(exc).strip().splitlines()
    detail = " ".join(line.strip() for line in first[:6])
    return ("Ray actors keep dying before they finish a document; is docvlm (with its engine's extras) "
            f"installed on every node of the cluster? Ray said: {detail}")


def _check_reachable(address: str, given: str) -> None:
    """UsageError within CONNECT_TIMEOUT_S when nothing listens at the head's address."""
    hostport = address.removeprefix("ray://")
    host, _, port_s = hostport.rpartition(":")
    if not host or not port_s.isdigit():
        raise UsageError(f"--ray {given!r}: expected local, auto, HOST:PORT or ray://HOST:10001")
    try:
        with socket.create_connection((host.strip("[]"), int(port_s)), timeout=CONNECT_TIMEOUT_S):
            pass
    except OSError as exc:
        reason = "timed out" if isinstance(exc, socket.timeout) else (exc.strerror or type(exc).__name__)
        raise UsageError(f"--ray {given}: cannot reach a Ray head at {hostport} ({reason}); start one with "
                         "`ray start --head` there, or use --ray local") from None


def _connect_error(given: str, exc: BaseException) -> str:
    text = " ".join(str(exc).split())[:400]
    if given == "auto" and not os.environ.get("RAY_ADDRESS"):
        return (f"--ray auto: no Ray cluster found (RAY_ADDRESS is not set and none runs on this machine): "
                f"start one with `ray start --head`, or use --ray local ({text})")
    hint = " (token auth: set RAY_AUTH_MODE=token and the head's RAY_AUTH_TOKEN)" if "auth" in text.lower() else ""
    return f"--ray {given}: cannot connect: {type(exc).__name__}: {text}{hint}"


def _signal_handlers() -> dict[int, Any]:
    if threading.current_thread() is not threading.main_thread():
        return {}
    return {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}


def _restore_signal_handlers(saved: dict[int, Any]) -> None:
    for sig, handler in saved.items():
        if handler is not None:
            signal.signal(sig, handler)


__all__ = ["RAY_MISSING", "RayExecutor", "import_ray"]
