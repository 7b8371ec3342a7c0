"""`--ray` with a conversion by a planning engine: an actor gets several documents per call and streams them
through its feed (docvlm.executors.ray.STREAM_DOCS_PER_CALL), so a GPU batch holds tiles of several one-page
documents. A call whose actor dies is not charged: its documents run again one per call, so the document that
kills actors is still the one recorded as failed, and the others succeed.

The driver's loop runs against a stand-in for Ray's API (actors that run a call when it is submitted, in order,
and die on a poison document); the real Ray path is in tests/test_ray.py."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("ray", reason="the ray extra is not installed (pip install -e '.[ray]')")

from ray.exceptions import RayActorError  # noqa: E402

from docvlm.executors import MAX_CRASHES, WorkDone, WorkerSpec, WorkItem  # noqa: E402
from docvlm.executors import ray as ray_exec  # noqa: E402


class _Ref:
    _ids = itertools.count()

    def __init__(self, outcome: Any) -> None:
        self.id = next(self._ids)
        self.outcome = outcome  # list[WorkDone] or an exception

    def __hash__(self) -> int:
        return self.id


class _Actor:
    """Runs a call at once; after a poison document every later call of this actor dies too."""

    def __init__(self, ray: _FakeRay) -> None:
        self.ray, self.dead = ray, False
        outer = self

        class _Map:
            def remote(self, items: list[WorkItem]) -> _Ref:
                outer.ray.calls.append([i.key for i in items])
                if outer.dead or any("poison" in i.key for i in items):
                    outer.dead = True
                    return _Ref(RayActorError())
                return _Ref([WorkDone(i.key, result=f"converted {i.key}") for i in items])

        self.map = _Map()


class _FakeRay:
    def __init__(self) -> None:
        self.calls: list[list[str]] = []
        self.actors: list[_Actor] = []

    def remote(self, **_: Any):  # noqa: ANN201
        fake = self

        def wrap(_cls: type) -> Any:
            class _Class:
                @staticmethod
                def remote(*_args: Any) -> _Actor:
                    fake.actors.append(_Actor(fake))
                    return fake.actors[-1]

            return _Class

        return wrap

    def wait(self, refs: list[_Ref], num_returns: int = 1, timeout: float | None = None):  # noqa: ANN201
        return refs[:num_returns], refs[num_returns:]

    def get(self, ref: _Ref, timeout: float | None = None) -> list[WorkDone]:
        if isinstance(ref.outcome, BaseException):
            raise ref.outcome
        return ref.outcome

    def kill(self, actor: _Actor, no_restart: bool = True) -> None:
        actor.dead = True

    def cluster_resources(self) -> dict:
        return {"CPU": 2.0}

    def nodes(self) -> list[dict]:
        return [{"Alive": True, "Resources": {"CPU": 2.0}}]


def _run(items: list[WorkItem], docs_per_call: int | None, kind: Any = None) -> tuple[list[WorkDone], _FakeRay]:
    from docvlm.batch import ConvertKind
    from docvlm.options import ConvertOptions

    fake = _FakeRay()
    executor = ray_exec.RayExecutor("127.0.0.1:6379", workers=2, inputs="shared", docs_per_call=docs_per_call)
    spec = WorkerSpec(ConvertOptions(engine="openai"), kind or ConvertKind())
    done = list(executor._stream(fake, items, spec, lambda *a: None, []))
    return done, fake


def _items(n: int, poison: int | None = None) -> list[WorkItem]:
    names = [f"poison{i}.png" if i == poison else f"r{i:02d}.png" for i in range(n)]
    return [WorkItem(name, name, str(Path("/in") / name)) for name in names]


def test_a_planning_conversion_sends_several_documents_per_call_and_spreads_the_last_ones() -> None:
    items = _items(40)
    done, fake = _run(items, None)
    assert sorted(d.key for d in done) == sorted(i.key for i in items)
    assert all(d.result == f"converted {d.key}" for d in done)
    sizes = [len(c) for c in fake.calls]
    assert max(sizes) == ray_exec.STREAM_DOCS_PER_CALL and sum(sizes) == 40
    assert len(fake.actors) == 2

    # 10 documents on 2 actors: the first call takes half of them, not 8, so the other actor gets several too
    _, fake = _run(_items(10), None)
    assert [len(c) for c in fake.calls[:2]] == [5, 3]


def test_a_kind_that_does_not_stream_keeps_one_document_per_call() -> None:
    from docvlm.extract import ExtractKind

    done, fake = _run(_items(6), None, kind=ExtractKind("auto", "digest"))
    assert len(done) == 6 and all(len(c) == 1 for c in fake.calls)


def test_a_call_whose_actor_dies_runs_again_one_document_per_call_and_only_the_poison_is_charged() -> None:
    items = _items(16, poison=3)
    done, fake = _run(items, 8)
    by_key = {d.key: d for d in done}
    assert sorted(by_key) == sorted(i.key for i in items) and len(done) == 16
    poison = by_key["poison3.png"]
    assert poison.result is None and poison.crash is not None and "poison3.png" in poison.crash
    assert all(by_key[i.key].result == f"converted {i.key}" for i in items if "poison" not in i.key)
    # the group it killed ran again one per call; then the poison alone killed MAX_CRASHES actors
    first_group = next(c for c in fake.calls if "poison3.png" in c)
    assert len(first_group) > 1
    alone = [c for c in fake.calls if c == ["poison3.png"]]
    assert len(alone) == MAX_CRASHES
    for key in first_group:
        if key != "poison3.png":
            assert [key] in fake.calls  # its neighbours were rerun alone, uncharged, and succeeded


@pytest.mark.parametrize("inputs", ["auto", "ship"])
def test_one_actor_keeps_several_one_page_documents_in_flight_on_a_real_ray(tmp_path: Path, inputs: str) -> None:
    """`--ray local --ray-workers 1 --engine openai` on 12 one-page receipts: the actor streams its call's
    documents, so the server sees requests of several documents at once (one document per call: never more
    than one), and every receipt converts; the same with the inputs sent as bytes (`--ray-inputs ship`)."""
    import subprocess
    import sys

    from tests.fake_openai_server import FakeOpenAIServer, Script
    from tests.test_feed import MODEL, receipts
    from tests.test_ray import ENV, ROOT, records

    (tmp_path / "in").mkdir()
    receipts(tmp_path / "in", 12)
    with FakeOpenAIServer(Script(latency=2.0, detect_marks=False)) as server:
        res = subprocess.run(
            [sys.executable, "-m", "docvlm", "convert", str(tmp_path / "in"), "-o", str(tmp_path / "out"),
             "--engine", "openai", "--base-url", server.url, "--model", MODEL, "--concurrency", "8",
             "--ray", "local", "--ray-workers", "1", "--ray-inputs", inputs],
            capture_output=True, text=True, cwd=ROOT, env=ENV, timeout=300)
        assert res.returncode == 0, res.stderr[-3000:]
        assert server.count == 12
        assert server.max_in_flight >= 4, server.max_in_flight
    recs = records(tmp_path / "out")
    assert len(recs) == 12 and all(r["status"] == "success" for r in recs.values())
    assert all(r["abspath"] == str((tmp_path / "in" / key).resolve()) for key, r in recs.items())


def test_shipped_inputs_stream_too_and_keep_their_names(tmp_path: Path) -> None:
    """A call's documents sent as bytes (a cluster without a shared file system) go through the feed as well:
    each is written to a file of its own name in a temporary folder (two inputs named alike stay apart), the
    results name the input as given, and the temporary files are gone afterwards."""
    import tempfile

    from docvlm.batch import ConvertKind
    from docvlm.executors.worker import DocumentWorker
    from docvlm.options import ConvertOptions
    from tests.fake_openai_server import FakeOpenAIServer, Script
    from tests.test_feed import MODEL, receipts

    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    paths = receipts(tmp_path / "a", 3) + receipts(tmp_path / "b", 1)  # a/r00.png and b/r00.png
    items = [WorkItem(f"{p.parent.name}/{p.name}", f"{p.parent.name}/{p.name}", "/nowhere/" + p.name, p.read_bytes())
             for p in paths]
    before = set(Path(tempfile.gettempdir()).glob("docvlm-*"))
    with FakeOpenAIServer(Script(latency=1.0, detect_marks=False)) as server:
        options = ConvertOptions(engine="openai", base_url=server.url, model=MODEL, concurrency=8, retries=0,
                                 prep_workers=0)
        worker = DocumentWorker(WorkerSpec(options, ConvertKind()))
        assert worker.streams()
        done = list(worker.run_stream(items))
        assert server.max_in_flight >= 2  # streamed, not one document after the other
    assert [d.key for d in done] == [i.key for i in items]
    assert all(d.result.status == "success" for d in done), [d.result.errors for d in done]
    assert [d.result.source.path for d in done] == [i.path for i in items]
    assert set(Path(tempfile.gettempdir()).glob("docvlm-*")) == before
