"""StageStats: percentiles per stage, bounded rings, counters, FPS over the output clock, and
concurrent writers and readers."""

import threading
from types import SimpleNamespace

import numpy as np
import pytest

from engine.runtime import stage_stats
from engine.runtime.stage_stats import WINDOW, StageStats


@pytest.fixture
def clock(monkeypatch):
    """A controllable perf_counter for the output clock (no sleeping)."""
    now = [100.0]
    monkeypatch.setattr(stage_stats, "time", SimpleNamespace(perf_counter=lambda: now[0]))
    return now


def test_empty_summary():
    summary = StageStats().summary()
    assert summary == {"stages": {}, "fps": None, "frames": 0, "dropped_frames": 0,
                       "bad_frames": 0, "no_person_frames": 0}  # fmt: skip


def test_percentiles_match_numpy():
    rng = np.random.default_rng(0)
    pose = rng.gamma(2.0, 3.0, 301)
    generator = np.arange(1, 21, dtype=np.float64)  # 1..20 ms
    stats = StageStats()
    for i in range(301):
        timings = {"pose": pose[i]}
        if i < 20:
            timings["generator"] = generator[i]
        stats.add(timings)
    stages = stats.summary()["stages"]
    assert set(stages) == {"pose", "generator"}
    for name, values in (("pose", pose), ("generator", generator)):
        s = stages[name]
        assert s["count"] == values.size
        assert s["p50_ms"] == pytest.approx(np.percentile(values, 50))
        assert s["p95_ms"] == pytest.approx(np.percentile(values, 95))
        assert s["mean_ms"] == pytest.approx(values.mean())
    assert stages["generator"]["p50_ms"] == pytest.approx(10.5)
    assert stages["generator"]["p95_ms"] == pytest.approx(19.05)


def test_rings_are_bounded_and_keep_the_newest():
    stats = StageStats()
    extra = 500
    for i in range(WINDOW + extra):
        stats.add({"total": float(i)})
    s = stats.summary()["stages"]["total"]
    assert s["count"] == WINDOW
    kept = np.arange(extra, WINDOW + extra, dtype=np.float64)  # the oldest ones are gone
    assert s["p50_ms"] == pytest.approx(np.percentile(kept, 50))
    assert s["mean_ms"] == pytest.approx(kept.mean())


def test_counters_accumulate_and_reset():
    stats = StageStats()
    for found in (True, False, True, False, False):
        stats.frame_out(found)
    stats.count(dropped=2)
    stats.count(bad=1)
    stats.count(dropped=1, bad=3)
    stats.add({"pose": 1.0})
    counters = ("frames", "no_person_frames", "dropped_frames", "bad_frames")
    s = stats.summary()
    assert [s[name] for name in counters] == [5, 3, 3, 4]
    stats.reset()
    s = stats.summary()
    assert [s[name] for name in counters] == [0, 0, 0, 0]
    assert s["stages"] == {} and s["fps"] is None


def test_fps_needs_two_outputs(clock):
    stats = StageStats()
    assert stats.summary()["fps"] is None
    stats.frame_out(True)
    assert stats.summary()["fps"] is None
    clock[0] += 0.25
    stats.frame_out(True)
    assert stats.summary()["fps"] == pytest.approx(4.0)
    for _ in range(8):
        clock[0] += 0.05
        stats.frame_out(True)
    assert stats.summary()["fps"] == pytest.approx(9 / (0.25 + 8 * 0.05))


def test_fps_is_none_when_the_clock_does_not_advance(clock):
    stats = StageStats()
    stats.frame_out(True)
    stats.frame_out(True)
    assert stats.summary()["fps"] is None


def test_fps_uses_the_last_window_outputs(clock):
    stats = StageStats()
    for _ in range(100):  # a slow start: 1 frame per second
        clock[0] += 1.0
        stats.frame_out(True)
    for _ in range(WINDOW):  # then 50 frames per second
        clock[0] += 0.02
        stats.frame_out(True)
    assert stats.summary()["fps"] == pytest.approx(50.0)
    assert stats.summary()["frames"] == WINDOW + 100


def test_concurrent_writers_and_a_reader():
    stats = StageStats()
    threads_n, per_thread = 4, 400
    errors = []
    done = threading.Event()

    def writer(seed):
        try:
            for i in range(per_thread):
                stats.add({"pose": float(seed), f"stage{seed}": float(i)})
                stats.frame_out(i % 2 == 0)
                stats.count(dropped=1, bad=int(i % 3 == 0))
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    def reader():
        try:
            while not done.is_set():
                stats.summary()  # iterates the rings while they are appended to
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    read = threading.Thread(target=reader)
    read.start()
    writers = [threading.Thread(target=writer, args=(k,)) for k in range(threads_n)]
    for t in writers:
        t.start()
    for t in writers:
        t.join()
    done.set()
    read.join()
    assert errors == []
    s = stats.summary()
    total = threads_n * per_thread
    assert s["frames"] == total and s["dropped_frames"] == total
    assert s["no_person_frames"] == total // 2
    assert s["bad_frames"] == threads_n * len(range(0, per_thread, 3))
    assert s["stages"]["pose"]["count"] == min(total, WINDOW)
    for k in range(threads_n):
        assert s["stages"][f"stage{k}"]["count"] == per_thread
        assert s["stages"][f"stage{k}"]["mean_ms"] == pytest.approx((per_thread - 1) / 2)
