"""Capture-to-output latency of a live stream: the bundled 640x480 clip played as a camera would
deliver it (frames paced at FPS in real time, looped), latest frame wins (``live=True``), latency
mode, onnxruntime. For every frame that comes out, latency = the time its result reached the
consumer minus the time the frame was "captured" (handed to the session); frames the session
dropped to stay current are counted. Prints one JSON line.

Run from the root of a checkout: ``python bench/live_latency.py [SECONDS] [FPS] [THREADS ...]``
(defaults 10 s at 30 FPS, 2 threads; ``10 30 4 2`` measures 4 then 2 threads in one run). The
target of the runtime issue: p50 <= 100 ms, p95 <= 150 ms.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator

import numpy as np

sys.path.insert(0, ".")  # the checkout this is run from, not the installed package

from engine import TryOnSession  # noqa: E402
from engine.sample_media import read_sample_clip, sample_garment_path  # noqa: E402


def paced_frames(
    clip: list[np.ndarray], count: int, fps: float, captured: dict[int, float]
) -> Iterator[np.ndarray]:
    """``count`` frames of ``clip`` (looped), each yielded at its slot of a real-time clock at
    ``fps``; ``captured[i]`` is the ``perf_counter()`` at which frame ``i`` was handed over. A
    frame whose slot has passed (the consumer held the iterator) goes out at once."""
    start = time.perf_counter()
    for index in range(count):
        delay = start + index / fps - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        captured[index] = time.perf_counter()
        yield clip[index % len(clip)]


def measure(
    seconds: float = 10.0,
    fps: float = 30.0,
    *,
    model: str = "demo",
    backend: str = "onnxruntime",
    live_threads: int = 2,
) -> dict:
    """Stream ``seconds`` of paced frames through a session (``live_threads``: see
    :attr:`engine.TryOnSession.live_threads`); latency figures as a dict (ms)."""
    clip = read_sample_clip(max_frames=48)
    count = max(1, int(round(seconds * fps)))
    with TryOnSession(model, backend=backend, mode="latency") as session:
        session.set_garment(sample_garment_path())
        session.live_threads = live_threads
        for i, frame in enumerate(clip[:8]):  # warm-up: graphs, first-call allocations
            session.process(frame, timestamp_s=i / fps)
        session.reset_stats()
        captured: dict[int, float] = {}
        latencies, found = [], 0
        t0 = time.perf_counter()
        source = paced_frames(clip, count, fps, captured)
        for result in session.stream(source, fps=fps, live=True):
            latencies.append((time.perf_counter() - captured[result.index]) * 1e3)
            found += result.person_found
        wall = time.perf_counter() - t0
        stats = session.stats()
    lat = np.asarray(latencies) if latencies else np.zeros(1)
    return {
        "live_threads": live_threads,
        "seconds": round(wall, 2),
        "fps_in": fps,
        "frames_in": count,
        "frames_out": len(latencies),
        "fps_out": round(len(latencies) / wall, 2),
        "dropped_frames": int(stats["dropped_frames"]),
        "person_frames": found,
        "latency_p50_ms": round(float(np.percentile(lat, 50)), 1),
        "latency_p95_ms": round(float(np.percentile(lat, 95)), 1),
        "latency_max_ms": round(float(lat.max()), 1),
        "stages_p50_ms": {n: round(s["p50_ms"], 1) for n, s in stats["stages"].items()},
    }


def main() -> None:
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 10.0
    fps = float(sys.argv[2]) if len(sys.argv) > 2 else 30.0
    threads = [int(a) for a in sys.argv[3:]] or [2]  # e.g. ``10 30 4 2``: both, one after the other
    for n in threads:
        print(json.dumps(measure(seconds, fps, live_threads=n)))


if __name__ == "__main__":
    main()
