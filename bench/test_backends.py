"""Per-frame latency of the bundled demo generator per backend, measured in one run.

The demo (lite preset, T = 4 window) runs through every backend available here on the same seeded
inputs: eager PyTorch and onnxruntime on the exported standard graph (CPU; CUDA providers and
TensorRT when present). ``extra_info`` has ms per call and per frame, and each backend's ratio to
eager PyTorch measured in the same session (``speedup_vs_torch``). fp16 is not measured: the fp16
graph is not exported yet.
"""

from __future__ import annotations

import time

import pytest
import torch

from bench.conftest import DEVICE
from engine.backends.runners import OnnxRuntimeRunner, TorchRunner
from engine.weights import load_generator
from export.onnx_export import example_inputs, export_onnx

_MEDIANS: dict[str, float] = {}


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    model = load_generator("demo")
    frames = model.config.frames
    path, _ = export_onnx(model, tmp_path_factory.mktemp("bench_onnx") / "demo.onnx", frames=frames)
    return model, path, frames


@pytest.mark.parametrize("backend", ["torch", "onnxruntime"])
def test_generator_backend_latency_fp32(benchmark, demo, backend):
    model, path, frames = demo
    if backend == "torch":
        runner = TorchRunner(model, frames, device=DEVICE)
    else:
        runner = OnnxRuntimeRunner(path, device="cuda" if DEVICE.type == "cuda" else "cpu")
    inputs = example_inputs(model, frames)

    def run():
        runner.run(inputs)
        if DEVICE.type == "cuda":
            torch.cuda.synchronize()

    for _ in range(3):
        run()  # warm-up
    samples = []
    for _ in range(15):
        t0 = time.perf_counter()
        run()
        samples.append(time.perf_counter() - t0)
    samples.sort()
    median = samples[len(samples) // 2]
    _MEDIANS[backend] = median
    benchmark.pedantic(run, rounds=3, warmup_rounds=0)
    benchmark.extra_info.update(
        backend=backend,
        frames=frames,
        median_ms_per_call=round(median * 1e3, 2),
        median_ms_per_frame=round(median * 1e3 / frames, 2),
        p95_ms_per_call=round(samples[min(len(samples) - 1, int(0.95 * len(samples)))] * 1e3, 2),
    )
    if "torch" in _MEDIANS:
        benchmark.extra_info["speedup_vs_torch"] = round(_MEDIANS["torch"] / median, 3)
