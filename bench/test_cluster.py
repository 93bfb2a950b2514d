"""Many streams on one worker: cross-stream batching, worker ticks, and per-stream latency.

Model: the bundled demo generator (window T = 4), torch on this run's device, one intra-op
thread (a worker's share of the machine). Perception is the scripted detector (mediapipe
excluded) on 640x480 frames; everything else is the real worker path. Three measurements, each
at B = 1, 2, 4, 8 streams, each a pytest-benchmark row in the report:

- ``generator``: the generator steps of B streams with a frame ready, as B per-stream calls vs
  ONE batched call (encode B frames, attend B windows, decode B). The row's median / p95 are the
  batched call (all B frames); ``extra_info`` has both paths per frame and the speed-up.
- ``worker tick``: a whole worker tick (perception, crop, inputs, the batched generator, paste)
  for B streams, no Ray; a stream holds 15 FPS while the tick takes <= 66.7 ms.
- ``stream latency``: B streams on ONE Ray stream worker of a local Ray cluster (loopback),
  each stream in its own thread sending its next frame as soon as its result is back
  (closed loop, so the worker batches the streams). Per frame: send (``submit``) to result
  (``collect``), Ray transport and serialization included. ``extra_info``: p50 and p95 per
  stream; the row's median is the median over every frame, its p95 the worst stream's p95.

Run with ``pytest bench/test_cluster.py -s`` (figures printed and put in ``extra_info``), or
``tryon bench --report -k cluster``.
"""

from __future__ import annotations

import os
import statistics
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from bench.conftest import DEVICE, percentile95
from engine.cluster.batched import BatchedGenerator
from engine.cluster.worker import StreamWorkerCore
from engine.inputs.garment_image import load_garment_image
from engine.model.weights import load_generator
from engine.sample_media import ASSETS_DIR, GARMENT_NAME
from tests.runtime_fixtures import ScriptedTracker

BATCHES = (1, 2, 4, 8)
WINDOW = 4
TICK_BUDGET_MS = 1e3 / 15
LATENCY_WARMUP = 2
LATENCY_FRAMES = 16
ROOT = Path(__file__).resolve().parents[1]


def _median_ms(fn, rounds: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        fn()
        if DEVICE.type == "cuda":
            torch.cuda.synchronize()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


@pytest.fixture(scope="module")
def one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def garment():
    return load_garment_image(str(ASSETS_DIR / GARMENT_NAME))


def _frame() -> np.ndarray:
    return np.random.default_rng(0).integers(30, 220, (480, 640, 3), dtype=np.uint8)


@pytest.mark.parametrize("streams", BATCHES)
def test_batched_vs_per_stream_generator(one_thread, streams, measure, benchmark, bench_quick):
    model = load_generator("demo")
    gen = BatchedGenerator(model, WINDOW, str(DEVICE))
    cfg = model.config
    g = torch.Generator().manual_seed(0)
    inputs = [{n: torch.rand((1, c, cfg.height, cfg.width), generator=g)
               for n, c in cfg.input_channels.items()} for _ in range(streams)]  # fmt: skip
    windows = [gen.new_window() for _ in range(streams)]

    def per_stream_calls():
        for window, x in zip(windows, inputs, strict=True):
            gen.step([window], [x])

    per_stream = _median_ms(per_stream_calls, 3 if bench_quick else 7) / streams
    median_s = measure(lambda: gen.step(windows, inputs), frames=streams, streams=streams,
                       group=f"cluster: generator for B streams (demo {cfg.height}x{cfg.width}, "
                       f"T = {WINDOW}, {DEVICE.type})")  # fmt: skip
    batched = median_s * 1e3 / streams
    note = (f"per frame: {per_stream:.1f} ms as B calls, {batched:.1f} ms batched "
            f"({per_stream / batched:.2f}x)")  # fmt: skip
    benchmark.extra_info.update(per_stream_ms_per_frame=round(per_stream, 2),
                                batched_ms_per_frame=round(batched, 2),
                                speedup=round(per_stream / batched, 3), note=note)  # fmt: skip
    print(f"\nB={streams}: {note}")
    assert batched > 0 and per_stream > 0


@pytest.mark.parametrize("streams", BATCHES)
def test_worker_tick(one_thread, garment, streams, measure, benchmark):
    worker = StreamWorkerCore("bench", "demo", window=WINDOW, capacity=streams,
                              device=str(DEVICE), tracker_factory=ScriptedTracker)  # fmt: skip
    for s in range(streams):
        worker.open(f"s{s}", garment)
    frame, k = _frame(), [0]

    def tick():
        k[0] += 1
        worker.step_streams({f"s{s}": (frame, k[0] / 30) for s in range(streams)})

    median_s = measure(tick, frames=streams, streams=streams,
                       group="cluster: one worker tick, B streams of 640x480 (scripted "
                       "detector)")  # fmt: skip
    per_stream_fps = 1.0 / median_s
    held = per_stream_fps >= 15
    benchmark.extra_info.update(per_stream_fps=round(per_stream_fps, 2), holds_15_fps=held,
                                note=f"{per_stream_fps:.1f} FPS per stream"
                                + (" (holds 15)" if held else ""))  # fmt: skip
    print(f"\n{streams} streams on one worker: tick {median_s * 1e3:.1f} ms, "
          f"{per_stream_fps:.1f} FPS per stream")  # fmt: skip
    assert median_s > 0 and worker.batches[-1] == streams


@pytest.fixture(scope="module")
def local_ray():
    ray = pytest.importorskip("ray", reason="ray not installed: pip install -e '.[cluster]'")
    path = os.environ.get("PYTHONPATH", "")
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), path) if p)  # workers
    ray.init(num_cpus=max(2, os.cpu_count() or 1), include_dashboard=False,
             _node_ip_address="127.0.0.1", log_to_driver=False,
             configure_logging=False)  # fmt: skip
    yield ray
    ray.shutdown()


def _stream_latencies(handle, frame: np.ndarray, out: list, errors: list) -> None:
    """Closed loop: each frame is sent when the previous result is back; ms per frame."""
    try:
        for i in range(LATENCY_WARMUP + LATENCY_FRAMES):
            t0 = time.perf_counter()
            handle.submit(frame, i / 30)
            result = handle.collect()
            ms = (time.perf_counter() - t0) * 1e3
            if i >= LATENCY_WARMUP:
                out.append(ms)
            assert result.person_found and result.index == i
    except BaseException as exc:  # reported by the test thread
        errors.append(exc)


@pytest.mark.parametrize("streams", BATCHES)
def test_stream_latency_on_a_local_ray_worker(local_ray, garment, streams, benchmark):
    from engine.cluster.router import StreamRouter

    num_gpus = 1 if DEVICE.type == "cuda" else 0
    router = StreamRouter.start(1, capacity=streams, model="demo", window=WINDOW, num_cpus=1,
                                num_gpus=num_gpus, tracker_factory=ScriptedTracker,
                                timeout_s=120)  # fmt: skip
    try:
        handles = [router.open_stream(garment) for _ in range(streams)]
        frame = _frame()

        def run() -> tuple[list[list[float]], float]:
            per_stream: list[list[float]] = [[] for _ in range(streams)]
            errors: list[BaseException] = []
            threads = [threading.Thread(target=_stream_latencies, args=(h, frame, out, errors))
                       for h, out in zip(handles, per_stream, strict=True)]  # fmt: skip
            t0 = time.perf_counter()
            for t in threads:
                t.start()
            for t in threads:
                t.join(600)
            wall = time.perf_counter() - t0
            if errors:
                raise errors[0]
            assert not any(t.is_alive() for t in threads)
            return per_stream, wall

        benchmark.group = "cluster: send-to-result latency per stream, B streams on one Ray worker"
        per_stream, wall = benchmark.pedantic(run, rounds=1, iterations=1)
    finally:
        router.shutdown()
    every = [ms for stream in per_stream for ms in stream]
    p50s = [round(statistics.median(s), 1) for s in per_stream]
    p95s = [round(percentile95(s), 1) for s in per_stream]
    frames = streams * (LATENCY_WARMUP + LATENCY_FRAMES)
    benchmark.extra_info.update(
        device=DEVICE.type, streams=streams, frames_per_stream=LATENCY_FRAMES,
        median_ms=round(statistics.median(every), 2), p95_ms=max(p95s),
        per_stream_p50_ms=p50s, per_stream_p95_ms=p95s, fps=round(frames / wall, 2),
        note="p50 / p95 per stream (ms): "
        + ", ".join(f"{a:.0f} / {b:.0f}" for a, b in zip(p50s, p95s, strict=True)),
    )  # fmt: skip
    print(f"\n{streams} streams on one Ray worker: {benchmark.extra_info['note']}; "
          f"{frames / wall:.1f} frames/s in all")  # fmt: skip
    assert len(every) == streams * LATENCY_FRAMES and min(every) > 0
