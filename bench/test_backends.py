"""Per-frame latency of the bundled demo generator per backend and precision, in one run.

The demo (lite preset, T = 4 window) runs through every backend available here, fp32 and fp16,
on the same seeded float32 inputs, each runner made by :func:`engine.backends.factory.make_runner`
(graphs exported into a temporary cache): eager PyTorch (fp16: the export's mixed-precision
copy, on CUDA only), onnxruntime on the standard graphs (CPU here; the CUDA provider where
present) and TensorRT on the plugins graphs (where installed; skipped with the reason otherwise).

Each case is one row (``measure``: median and p95 per call, FPS, TFLOP/s against the machine's
peak). The ratios come from one interleaved measurement of all available runners (the
``interleaved_samples`` helper: each round times every runner in turn, alternating the order), so
that load drift on a shared machine hits them alike: ``speedup_vs_torch_fp32`` in each row's
``extra_info`` is the median per-call time of eager PyTorch fp32 divided by this runner's, both
from those interleaved rounds.
"""

from __future__ import annotations

import statistics

import pytest
import torch

from bench.conftest import DEVICE, interleaved_samples, synchronize
from bench.test_generator import generator_flops
from engine.backends.factory import make_runner
from engine.errors import BackendUnavailableError
from engine.model.mpdt_generator import example_inputs
from engine.model.weights import load_generator

CASES = [
    ("torch", "fp32"),
    ("onnxruntime", "fp32"),
    ("tensorrt", "fp32"),
    ("torch", "fp16"),
    ("onnxruntime", "fp16"),
    ("tensorrt", "fp16"),
]
INTERLEAVED_ROUNDS = 5


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """The demo model, its T, seeded inputs, and a runner (or the reason there is none) per
    case."""
    model = load_generator("demo")
    frames = model.config.frames
    inputs = {k: v.to(DEVICE) for k, v in example_inputs(model, frames).items()}
    cache = tmp_path_factory.mktemp("bench_cache")
    runners: dict[tuple[str, str], object] = {}
    for backend, precision in CASES:
        if (backend, precision) == ("torch", "fp16") and DEVICE.type != "cuda":
            runners[backend, precision] = (
                "eager PyTorch fp16 on CPU is not a deployment path (PyTorch has no fast fp16 CPU "
                "convolutions); fp16 on CPU is measured through onnxruntime"
            )
            continue
        try:
            runners[backend, precision] = make_runner(
                model, backend=backend, frames=frames, precision=precision, cache_dir=cache
            )
        except BackendUnavailableError as exc:
            runners[backend, precision] = str(exc)
    return model, frames, inputs, runners


def _call(runner, inputs):
    def run() -> None:
        runner.run(inputs)
        synchronize()

    return run


@pytest.fixture(scope="module")
def ratios(demo) -> dict[tuple[str, str], float]:
    """speedup vs eager PyTorch fp32 per available case, from interleaved rounds."""
    _, _, inputs, runners = demo
    available = {k: r for k, r in runners.items() if not isinstance(r, str)}
    samples = interleaved_samples(
        {k: _call(r, inputs) for k, r in available.items()}, INTERLEAVED_ROUNDS
    )
    medians = {k: statistics.median(v) for k, v in samples.items()}
    return {k: medians["torch", "fp32"] / m for k, m in medians.items()}


@pytest.mark.parametrize("backend, precision", CASES, ids=[f"{b}-{p}" for b, p in CASES])
def test_generator_backend_latency(benchmark, measure, demo, ratios, backend, precision):
    model, frames, inputs, runners = demo
    runner = runners[backend, precision]
    if isinstance(runner, str):
        pytest.skip(runner)
    median = measure(
        _call(runner, inputs),
        flops=generator_flops(model.config, frames),
        dtype=torch.float16 if precision == "fp16" else torch.float32,
        frames=frames,
        budget_s=2.0,
        group="generator per backend (demo, T = 4)",
        backend=backend,
        precision=precision,
        runner_device=str(getattr(runner, "device", "cuda")),
    )
    benchmark.extra_info.update(
        ms_per_frame=round(median * 1e3 / frames, 3),
        speedup_vs_torch_fp32=round(ratios[backend, precision], 3),
        interleaved_rounds=INTERLEAVED_ROUNDS,
    )
