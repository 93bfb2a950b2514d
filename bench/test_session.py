"""End to end: the session on the bundled 640x480 clip, capture to output, after warm-up.

What `tryon run` does, measured: frames decoded from the bundled video file, mediapipe pose and
segmentation, crop, generator inputs, the demo generator, the composite back into the frame, in
the threaded stream (``stream``) or one frame after another (``process``). Every figure is taken
after a warm-up pass over the clip (graphs exported and cached, mediapipe and onnxruntime warm).
``extra_info``: FPS over the outputs, p50 / p95 per stage (ms), the backend and mode, and for the
generator alone the latency-mode step vs the throughput-mode block per frame, as a ratio.
Frames are host numpy arrays: every stage has finished when its clock is read (no async device
work is left pending; on CUDA the session's tensors come back to the host before the composite).
"""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch

from engine.backends.selection import choose_backend
from engine.backends.streaming_runner import make_streaming_runner
from engine.model.weights import load_generator
from engine.runtime.session import TryOnSession
from engine.sample_media import read_sample_clip, sample_clip_path, sample_garment_path

GOAL_FPS = (
    25.0  # issue 7: >= 25 FPS end to end at 640x480 on the 2-core CPU (reported, not asserted)
)


def _stage_info(stats: dict) -> dict:
    return {f"{name}_{q}_ms": round(s[f"{q}_ms"], 2) for name, s in stats["stages"].items()
            for q in ("p50", "p95")}  # fmt: skip


@pytest.fixture(scope="module", params=["onnxruntime", "torch"])
def backend(request):
    return request.param


@pytest.mark.parametrize("mode", ["latency", "throughput"])
def test_session_stream_fps_640x480(benchmark, backend, mode):
    """The threaded stream over the bundled video file (decode included), all 64 frames."""
    with TryOnSession("demo", backend=backend, mode=mode) as session:
        session.set_garment(sample_garment_path())
        for _ in session.stream(sample_clip_path(), max_frames=16):  # warm-up
            pass

        def run() -> int:
            session.reset_stats()
            return sum(1 for _ in session.stream(sample_clip_path()))

        frames = benchmark.pedantic(run, rounds=2, iterations=1)
        stats = session.stats()
    seconds = benchmark.stats.stats.median
    benchmark.extra_info.update(
        backend=backend, mode=mode, frames=frames, fps=round(frames / seconds, 2),
        fps_outputs=round(stats["fps"], 2) if stats["fps"] else None, goal_fps=GOAL_FPS,
        person_frames=frames - stats["no_person_frames"], dropped=stats["dropped_frames"],
        **_stage_info(stats),
    )  # fmt: skip
    assert frames == 64 and stats["dropped_frames"] == 0


def test_session_process_stages_640x480(benchmark, backend):
    """``process`` one frame after another (no overlap between stages): where the time goes."""
    clip = read_sample_clip()
    with TryOnSession("demo", backend=backend) as session:
        session.set_garment(sample_garment_path())
        for i, frame in enumerate(clip[:8]):  # warm-up
            session.process(frame, timestamp_s=i / 24)
        session.reset_stats()
        state = {"i": 0}

        def one() -> None:
            i = state["i"]
            session.process(clip[i % len(clip)], timestamp_s=i / 24)
            state["i"] += 1

        benchmark.pedantic(one, rounds=len(clip), iterations=1)
        stats = session.stats()
    benchmark.extra_info.update(backend=backend, fps=round(1.0 / benchmark.stats.stats.median, 2),
                                **_stage_info(stats))  # fmt: skip


def test_session_garment_swap_vs_frame(benchmark):
    """``set_garment`` (mask, landmarks, resize) against one frame's median total time."""
    clip = read_sample_clip(max_frames=12)
    with TryOnSession("demo", backend="onnxruntime") as session:
        session.set_garment(sample_garment_path())
        for i, frame in enumerate(clip):
            session.process(frame, timestamp_s=i / 24)
        frame_ms = session.stats()["stages"]["total"]["p50_ms"]
        benchmark.pedantic(session.set_garment, args=(sample_garment_path(),), rounds=5)
    swap_ms = benchmark.stats.stats.median * 1e3
    benchmark.extra_info.update(swap_ms=round(swap_ms, 2), frame_total_p50_ms=round(frame_ms, 2),
                                swap_over_frame=round(swap_ms / frame_ms, 3))  # fmt: skip
    assert swap_ms < frame_ms, "swapping the garment must cost less than one frame"


def test_session_generator_step_vs_block(benchmark, backend, tmp_path_factory):
    """The generator alone per output frame: latency-mode ``step`` (encoder of the new frame,
    blocks over the cached window, one decoder; the benchmarked call) vs throughput-mode
    ``block`` (all T frames at once), interleaved in one run, as a ratio."""
    model = load_generator("demo")
    cfg = model.config
    t = cfg.frames
    window = make_streaming_runner(model, frames=t, choice=choose_backend(backend),
                           cache_dir=tmp_path_factory.mktemp("graphs"))  # fmt: skip
    g = torch.Generator().manual_seed(0)
    block = {k: torch.rand((t, c, cfg.height, cfg.width), generator=g)
             for k, c in cfg.input_channels.items()}  # fmt: skip
    step = {k: v[:1].clone() for k, v in block.items()}
    for _ in range(3):
        window.step(step)
        window.block(block)
    step_s, block_s = [], []
    for _ in range(15):
        t0 = time.perf_counter()
        window.step(step)
        t1 = time.perf_counter()
        window.block(block)
        step_s.append(t1 - t0)
        block_s.append(time.perf_counter() - t1)
    benchmark.pedantic(window.step, args=(step,), rounds=15, iterations=1)
    step_ms = float(np.median(step_s)) * 1e3
    block_ms = float(np.median(block_s)) * 1e3 / t
    benchmark.extra_info.update(backend=backend, window=t, step_ms_per_frame=round(step_ms, 3),
                                block_ms_per_frame=round(block_ms, 3),
                                step_over_block=round(step_ms / block_ms, 3))  # fmt: skip
    assert step_ms > 0 and block_ms > 0
