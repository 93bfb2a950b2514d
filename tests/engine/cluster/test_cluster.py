"""Streams on a real local Ray cluster (loopback, 2 CPUs): isolation, order, busy, worker loss.

Every ``ray.get`` is bounded (the router's ``timeout_s``); workers take half a CPU each so the
tests' four workers fit on two cores.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import cv2
import numpy as np
import pytest

ray = pytest.importorskip("ray", reason="ray not installed: pip install 'tryon-engine[cluster]'")

from engine.cluster.errors import ClusterBusyError, StreamLostError  # noqa: E402
from engine.cluster.router import StreamRouter  # noqa: E402
from engine.errors import InputError, TryOnError  # noqa: E402
from engine.runtime.session import TryOnSession  # noqa: E402
from engine.sample_media import ASSETS_DIR, GARMENT_NAME  # noqa: E402
from tests.runtime_fixtures import ScriptedTracker, tiny_model_file  # noqa: E402

ROOT = Path(__file__).resolve().parents[3]
TIMEOUT_S = 30.0


@pytest.fixture(scope="module")
def cluster():
    path = os.environ.get("PYTHONPATH", "")
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), path) if p)  # workers
    ray.init(num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1",
             log_to_driver=False, configure_logging=False)  # fmt: skip
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return tiny_model_file(tmp_path_factory.mktemp("tiny"))


def _router(tiny, capacity):
    return StreamRouter.start(2, capacity=capacity, model=tiny, window=2, num_cpus=0.5,
                              tracker_factory=ScriptedTracker, timeout_s=TIMEOUT_S)  # fmt: skip


def _garments():
    bgra = cv2.imread(str(ASSETS_DIR / GARMENT_NAME), cv2.IMREAD_UNCHANGED)
    rgba = cv2.cvtColor(bgra, cv2.COLOR_BGRA2RGBA)
    recoloured = rgba.copy()
    recoloured[..., :3] = 255 - rgba[..., [2, 0, 1]]  # another colour, the same shape and alpha
    return rgba, recoloured


def _frames(seed, n):
    rng = np.random.default_rng(seed)
    return [rng.integers(30, 220, (48, 64, 3), dtype=np.uint8) for _ in range(n)]


def _local(tiny, garment, frames):
    with TryOnSession(str(tiny), backend="torch", window=2, tracker=ScriptedTracker()) as s:
        s.set_garment(garment)
        return [s.process(f, timestamp_s=i / 30).image for i, f in enumerate(frames)]


def test_four_streams_two_workers_each_get_their_own_tryon_in_order(cluster, tiny):
    garments = _garments()
    router = _router(tiny, capacity=2)
    try:
        n = 6
        plan = [(garments[s % 2], _frames(10 + s, n)) for s in range(4)]
        handles = [router.open_stream(g) for g, _ in plan]
        assert sorted(h.worker for h in handles) == ["worker-0"] * 2 + ["worker-1"] * 2
        got: dict[int, list] = {}

        def run(s):  # one thread per stream: the workers batch what arrives together
            handle, frames = handles[s], plan[s][1]
            for i, f in enumerate(frames):
                handle.submit(f, i / 30)
            got[s] = [handle.collect() for _ in frames]

        threads = [threading.Thread(target=run, args=(s,)) for s in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(TIMEOUT_S * 2)
        assert not any(t.is_alive() for t in threads) and sorted(got) == [0, 1, 2, 3]
        for s, (garment, frames) in enumerate(plan):
            assert [r.index for r in got[s]] == list(range(n))  # in order per stream
            assert all(r.person_found for r in got[s])
            mine = _local(tiny, garment, frames)
            other = _local(tiny, garments[1 - s % 2], frames)
            for r, want, wrong in zip(got[s], mine, other, strict=True):
                assert np.abs(r.image.astype(int) - want.astype(int)).max() <= 1
                assert np.abs(r.image.astype(int) - wrong.astype(int)).max() > 20  # no mixing
        health = router.health()
        assert health["alive"] == 2 and health["free"] == 0
        assert {w: len(s) for w, s in health["streams"].items()} == {"worker-0": 2, "worker-1": 2}
        with pytest.raises(ClusterBusyError, match="capacity"):
            router.open_stream(garments[0])
        handles[0].close()
        assert router.open_stream(garments[0]).worker == handles[0].worker  # the freed slot
    finally:
        router.shutdown()


def test_a_killed_worker_ends_its_streams_and_the_others_go_on(cluster, tiny):
    garment = _garments()[0]
    router = _router(tiny, capacity=2)
    try:
        handles = [router.open_stream(garment) for _ in range(4)]
        frames = _frames(1, 6)
        for h in handles:
            assert h.send(frames[0], 0.0).person_found
        victim = next(h for h in handles if h.worker == "worker-0")
        victim.submit(frames[1], 1 / 30)
        ray.kill(router._workers["worker-0"].actor)  # mid-stream, a frame in flight
        with pytest.raises(StreamLostError, match="worker-0") as lost:
            victim.collect()
        assert isinstance(lost.value, TryOnError) and lost.value.worker == "worker-0"
        for k, f in enumerate(frames[2:], start=2):
            for h in handles:
                if h.worker == "worker-0":
                    with pytest.raises(StreamLostError, match="worker-0"):
                        h.send(f, k / 30)
                else:
                    assert h.send(f, k / 30).index == k - 1  # the survivors go on, in order
        health = router.health()
        assert health["workers"] == 2 and health["alive"] == 1
        assert "worker-0" in health["dead"] and list(health["streams"]) == ["worker-1"]
        with pytest.raises(ClusterBusyError):  # worker-1 is full; worker-0 is never used
            router.open_stream(garment)
        next(h for h in handles if h.worker == "worker-1").close()
        assert router.open_stream(garment).worker == "worker-1"
    finally:
        router.shutdown()


def test_reopen_moves_a_lost_stream_to_a_live_worker_and_it_goes_on(cluster, tiny):
    garment, recoloured = _garments()
    router = _router(tiny, capacity=2)
    try:
        handles = [router.open_stream(garment, reopen=True) for _ in range(3)]
        assert [h.worker for h in handles] == ["worker-0", "worker-1", "worker-0"]
        moved, survivor, stranded = handles
        frames = _frames(2, 5)
        for h in handles:
            assert h.send(frames[0], 0.0).index == 0
        moved.submit(frames[1], 1 / 30)  # in flight when its worker dies
        ray.kill(router._workers["worker-0"].actor)
        got = [moved.collect()] + [moved.send(f, k / 30) for k, f in enumerate(frames[2:], 2)]
        assert moved.worker == "worker-1" and [r.index for r in got] == [1, 2, 3, 4]
        assert [(m["lost"], m["to"], m["next_index"]) for m in moved.moves] == [
            ("worker-0", "worker-1", 1)
        ]
        fresh = _local(tiny, garment, frames[1:])  # its window starts over at frame 1
        for r, want in zip(got, fresh, strict=True):
            assert r.person_found and np.abs(r.image.astype(int) - want.astype(int)).max() <= 1
        assert survivor.send(frames[1], 1 / 30).index == 1  # the other worker's stream goes on
        survivor.set_garment(recoloured)
        swapped = survivor.send(frames[2], 2 / 30).image
        want = _local(tiny, recoloured, frames[2:3])[0]
        assert np.abs(swapped.astype(int) - want.astype(int)).max() <= 1
        with pytest.raises(StreamLostError, match="no live worker had a free slot"):
            stranded.send(frames[1], 1 / 30)  # worker-1 is full now: this one ends
        with pytest.raises(StreamLostError, match="worker-0"):
            stranded.send(frames[2], 2 / 30)
        health = router.health()
        assert health["alive"] == 1 and "worker-0" in health["dead"]
        assert health["streams"] == {"worker-1": sorted([moved.stream_id, survivor.stream_id])}
        assert health["reopened"] == 1 and health["free"] == 0
        with pytest.raises(InputError, match="reopen"):
            router.open_stream(garment, reopen="yes")
    finally:
        router.shutdown()
