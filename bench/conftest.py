"""Benchmark harness shared by every suite in bench/ (run with ``pytest bench/``).

Rules (STYLE.md rule 15): warm up first, synchronize the device before every clock read, report
median and p95 plus derived units (GB/s, TFLOP/s, FPS, fraction of the machine's peak) in
``extra_info``, so that ``tryon bench --report`` (:mod:`engine.cli.bench_report`) can build a report
from pytest-benchmark's JSON alone.

Peaks (:func:`machine_peaks`, once per session, recorded in the JSON under ``"tryon"``):

- GPU: NVIDIA's datasheet figures in :data:`GPU_SPECS` (dense tensor-core FLOP/s, i.e. the
  "with sparsity" figures halved), matched on ``torch.cuda.get_device_name()``; a GPU not in the
  table has no peak and its fractions read "not measured". The probes below are still measured
  and recorded beside the datasheet.
- CPU: measured in this very run, since datasheet numbers for a shared VM mean little: a large
  fp32 matmul (TFLOP/s) and a large copy (GB/s, read + write), best of a few repetitions.

Fixtures: ``measure`` (time one callable, fill ``extra_info``), ``peaks`` (the session's
:class:`MachinePeaks`), ``bench_quick`` (``--bench-quick``: fewer rounds, for smoke runs).
Helpers for benchmark modules: :data:`DEVICE`, :func:`synchronize`, :func:`frame`,
:func:`nbytes`, :func:`dtype_name`, :func:`impl_params`, :func:`call_impl`,
:func:`interleaved_samples`, :func:`assert_auto_within_opencv`, :func:`percentile95`.

Triton is never benchmarked in its interpreter (a semantics checker, not a backend):
``impl="triton"`` cases run only on CUDA and skip with the reason elsewhere.
"""

from __future__ import annotations

import re
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
import torch

from engine.cli.bench_report import ResultsRecorder, percentile95
from kernels.triton_mode import interpreter_requested

DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")
FULL_HD = (1080, 1920)  # (H, W) of the frames every image op is measured on


@dataclass(frozen=True)
class GpuSpec:
    """Datasheet peaks of one GPU model (dense, no sparsity).

    Attributes:
        name: the product as NVIDIA names it.
        pattern: regex matched (case-insensitive) on ``torch.cuda.get_device_name()``.
        memory_GB_per_s: DRAM bandwidth, 1e9 bytes/s.
        fp16_TFLOP_per_s: dense fp16 tensor-core rate (fp32 accumulate).
        bf16_TFLOP_per_s: dense bf16 tensor-core rate; None where the GPU has no bf16.
        fp32_TFLOP_per_s: fp32 on the CUDA cores (not TF32).
        source: the datasheet it comes from.
    """

    name: str
    pattern: str
    memory_GB_per_s: float
    fp16_TFLOP_per_s: float
    bf16_TFLOP_per_s: float | None
    fp32_TFLOP_per_s: float
    source: str


# First match wins; the patterns keep other variants (H200 NVL, H100 NVL, A100 80GB PCIe, L40,
# L40S) out, since their figures differ: those GPUs have no entry and report no peak.
GPU_SPECS = (
    GpuSpec("H200 SXM", r"\bH200\b(?!.*NVL)", 4800.0, 989.5, 989.5, 67.0,
            "NVIDIA H200 Tensor Core GPU datasheet, https://www.nvidia.com/en-us/data-center/h200/"
            " (4.8 TB/s; FP16/BF16 Tensor Core 1,979 TFLOPS with sparsity; FP32 67 TFLOPS)"),
    GpuSpec("H100 PCIe", r"\bH100 PCIe\b", 2000.0, 756.5, 756.5, 51.0,
            "NVIDIA H100 Tensor Core GPU datasheet, https://www.nvidia.com/en-us/data-center/h100/"
            " (H100 PCIe: 2 TB/s; FP16/BF16 Tensor Core 1,513 TFLOPS with sparsity; FP32 51)"),
    GpuSpec("H100 SXM", r"\bH100\b(?!.*(PCIe|NVL))", 3350.0, 989.5, 989.5, 67.0,
            "NVIDIA H100 Tensor Core GPU datasheet, https://www.nvidia.com/en-us/data-center/h100/"
            " (H100 SXM: 3.35 TB/s; FP16/BF16 Tensor Core 1,979 TFLOPS with sparsity; FP32 67)"),
    GpuSpec("A100 SXM 80GB", r"\bA100-SXM4?-80GB\b", 2039.0, 312.0, 312.0, 19.5,
            "NVIDIA A100 Tensor Core GPU datasheet, https://www.nvidia.com/content/dam/en-zz/"
            "Solutions/Data-Center/a100/pdf/nvidia-a100-datasheet-us-nvidia-1758950-r4-web.pdf"
            " (80GB SXM: 2,039 GB/s; FP16/BF16 Tensor Core 312 TFLOPS; FP32 19.5 TFLOPS)"),
    GpuSpec("A100 40GB", r"\bA100\b.*\b40GB\b", 1555.0, 312.0, 312.0, 19.5,
            "NVIDIA A100 Tensor Core GPU datasheet (as above; 40GB PCIe and SXM: 1,555 GB/s)"),
    GpuSpec("L4", r"\bL4\b", 300.0, 121.0, 121.0, 30.3,
            "NVIDIA L4 Tensor Core GPU datasheet, https://www.nvidia.com/en-us/data-center/l4/"
            " (300 GB/s; FP16/BF16 Tensor Core 242 TFLOPS with sparsity; FP32 30.3 TFLOPS)"),
    GpuSpec("T4", r"\bT4\b", 320.0, 65.0, None, 8.1,
            "NVIDIA T4 Tensor Core GPU datasheet, https://www.nvidia.com/content/dam/en-zz/"
            "Solutions/Data-Center/tesla-t4/t4-tensor-core-datasheet-951643.pdf"
            " (320 GB/s; mixed-precision FP16/FP32 65 TFLOPS; FP32 8.1 TFLOPS; no BF16)"),
)  # fmt: skip


def gpu_spec(device_name: str) -> GpuSpec | None:
    """The datasheet entry for a CUDA device name, or None when the table has none."""
    for spec in GPU_SPECS:
        if re.search(spec.pattern, device_name, flags=re.IGNORECASE):
            return spec
    return None


def dtype_name(dtype: torch.dtype) -> str:
    """``torch.float16`` -> ``"float16"``."""
    return str(dtype).removeprefix("torch.")


def synchronize() -> None:
    """Wait for queued device work (no-op on CPU); call before every clock read."""
    if DEVICE.type == "cuda":
        torch.cuda.synchronize()


@dataclass(frozen=True)
class Peak:
    """One peak rate: ``value`` in ``unit`` (None: not known here) and where it comes from."""

    value: float | None
    unit: str
    source: str


@dataclass(frozen=True)
class MachinePeaks:
    """The peaks the fractions in ``extra_info`` are relative to, plus the measured probes."""

    device: str
    bandwidth: Peak  # GB/s
    flops: dict[str, Peak]  # dtype name ("float32", "float16", "bfloat16") -> TFLOP/s
    probes: dict[str, Peak] = field(default_factory=dict)

    def flops_for(self, dtype: torch.dtype) -> Peak:
        """Peak FLOP rate for math in ``dtype``."""
        name = dtype_name(dtype)
        return self.flops.get(name, Peak(None, "TFLOP/s", f"no {name} peak for {self.device}"))

    def as_dict(self) -> dict[str, Any]:
        """JSON form: ``device`` and a ``table`` of named peaks and probes."""
        table = [{"name": "memory bandwidth", **vars(self.bandwidth)}]
        table += [{"name": f"{k} FLOP rate", **vars(p)} for k, p in self.flops.items()]
        table += [{"name": f"probe: {k}", **vars(p)} for k, p in self.probes.items()]
        return {"device": self.device, "table": table}


def _best_seconds(fn: Callable[[], object], repeats: int) -> float:
    """Fastest of ``repeats`` synchronized calls, after one warm-up call."""
    fn()
    best = float("inf")
    for _ in range(repeats):
        synchronize()
        t0 = time.perf_counter()
        fn()
        synchronize()
        best = min(best, time.perf_counter() - t0)
    return best


def _copy_probe(repeats: int) -> Peak:
    """GB/s of a large fp32 copy (read + write): 1 GiB on CUDA, 256 MiB on CPU, past every cache."""
    n = (256 if DEVICE.type == "cuda" else 64) * 2**20
    src = torch.ones(n, dtype=torch.float32, device=DEVICE)
    dst = torch.empty_like(src)
    sec = _best_seconds(lambda: dst.copy_(src), repeats)
    source = f"measured: {n * 4 >> 20} MiB fp32 copy, read + write, best of {repeats}"
    return Peak(2 * n * 4 / sec / 1e9, "GB/s", source)


def _matmul_probe(dtype: torch.dtype, n: int, repeats: int) -> Peak:
    """TFLOP/s of an n x n by n x n matmul in ``dtype`` (2 n^3 FLOPs)."""
    a = torch.randn(n, n, device=DEVICE).to(dtype)
    b = torch.randn(n, n, device=DEVICE).to(dtype)
    sec = _best_seconds(lambda: a @ b, repeats)
    name = dtype_name(dtype)
    threads = f", {torch.get_num_threads()} threads" if DEVICE.type == "cpu" else ""
    source = f"measured: {n}x{n} @ {n}x{n} {name} matmul, best of {repeats}{threads}"
    return Peak(2 * n**3 / sec / 1e12, "TFLOP/s", source)


def probe_peaks(quick: bool = False) -> dict[str, Peak]:
    """Measure this device: a large copy (GB/s) and large matmuls (TFLOP/s; fp16 and bf16 too
    on CUDA)."""
    cuda = DEVICE.type == "cuda"
    probes = {"copy": _copy_probe(3 if quick else 5)}
    dtypes = (torch.float32, torch.float16, torch.bfloat16) if cuda else (torch.float32,)
    for dtype in dtypes:
        probe = _matmul_probe(dtype, 8192 if cuda else 2048, 2 if quick else 4)
        probes[f"{dtype_name(dtype)} matmul"] = probe
    return probes


def machine_peaks(quick: bool = False) -> MachinePeaks:
    """Peaks of this run's device: datasheet on known GPUs, the measured probes on CPU."""
    probes = probe_peaks(quick)
    if DEVICE.type == "cuda":
        name = torch.cuda.get_device_name(0)
        spec = gpu_spec(name)
        if spec is None:
            missing = f"no datasheet entry for {name} in bench/conftest.py GPU_SPECS"
            return MachinePeaks(name, Peak(None, "GB/s", missing), {}, probes)
        flops = {
            "float32": Peak(spec.fp32_TFLOP_per_s, "TFLOP/s", spec.source),
            "float16": Peak(spec.fp16_TFLOP_per_s, "TFLOP/s", spec.source),
        }
        if spec.bf16_TFLOP_per_s is not None:
            flops["bfloat16"] = Peak(spec.bf16_TFLOP_per_s, "TFLOP/s", spec.source)
        return MachinePeaks(name, Peak(spec.memory_GB_per_s, "GB/s", spec.source), flops, probes)
    return MachinePeaks("cpu", probes["copy"], {"float32": probes["float32 matmul"]})


class _PeaksCache:
    """Measures the peaks at most once per session; shared by the fixture and the JSON hook."""

    def __init__(self, quick: bool) -> None:
        self.quick = quick
        self._peaks: MachinePeaks | None = None

    def get(self) -> MachinePeaks:
        if self._peaks is None:
            self._peaks = machine_peaks(self.quick)
        return self._peaks


_PEAKS_KEY = pytest.StashKey[_PeaksCache]()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--bench-quick",
        action="store_true",
        help="fewer rounds per benchmark (smoke runs; figures are noisier)",
    )


def pytest_configure(config: pytest.Config) -> None:
    cache = _PeaksCache(bool(config.getoption("--bench-quick", default=False)))
    config.stash[_PEAKS_KEY] = cache
    config.pluginmanager.register(ResultsRecorder(lambda: cache.get().as_dict()), "tryon-results")


@pytest.fixture(scope="session")
def bench_quick(pytestconfig: pytest.Config) -> bool:
    """True under ``--bench-quick`` (``tryon bench --quick``)."""
    return pytestconfig.stash[_PEAKS_KEY].quick


@pytest.fixture(scope="session")
def peaks(pytestconfig: pytest.Config) -> MachinePeaks:
    """This device's peaks, measured (CPU) or looked up (GPU) once per session."""
    return pytestconfig.stash[_PEAKS_KEY].get()


def _sig(value: float, digits: int = 4) -> float:
    """``value`` rounded to ``digits`` significant digits (for ``extra_info``)."""
    return float(f"{value:.{digits}g}")


def _fraction(rate: float | None, peak: Peak) -> float | None:
    if rate is None or peak.value is None or peak.value <= 0:
        return None
    return _sig(rate / peak.value)


@pytest.fixture
def measure(benchmark, peaks: MachinePeaks, bench_quick: bool) -> Callable[..., float]:
    """``measure(fn, *, bytes_moved=None, flops=None, dtype=None, frames=None, bound=None,
    budget_s=1.0, min_rounds=3, max_rounds=50, group=None, **info) -> median seconds``.

    Times ``fn`` with pytest-benchmark's pedantic mode: one warm-up call (compilation, caches);
    unless that call alone says ``min_rounds`` exceed ``budget_s``, one more timed call sizes
    the rounds to ``budget_s`` (between ``min_rounds`` and ``max_rounds``); then the rounds, the
    device synchronized before every clock read. Records in
    ``extra_info``: ``median_ms``, ``p95_ms``, ``rounds``, ``device``; with ``bytes_moved``:
    ``GB_per_s`` and ``fraction_of_peak_bandwidth``; with ``flops``: ``TFLOP_per_s`` and
    ``fraction_of_peak_flops`` (against the peak of ``dtype``'s math); with ``frames``: ``fps``;
    ``bound`` (default ``"memory"`` given bytes, else ``"compute"`` given FLOPs) chooses which
    fraction is the headline ``fraction_of_peak``; ``info`` (shape, dtype, impl, ...) is stored
    as given, tensors' dtypes and shapes as strings and lists.
    """

    def run(
        fn: Callable[[], object],
        *,
        bytes_moved: int | None = None,
        flops: int | None = None,
        dtype: torch.dtype | None = None,
        frames: int | None = None,
        bound: str | None = None,
        budget_s: float = 1.0,
        min_rounds: int = 3,
        max_rounds: int = 50,
        group: str | None = None,
        **info: Any,
    ) -> float:
        if bench_quick:
            budget_s, min_rounds, max_rounds = budget_s / 4, 2, min(max_rounds, 10)
        if bound is None:
            bound = "memory" if bytes_moved is not None else "compute" if flops else None
        synchronize()
        t0 = time.perf_counter()
        fn()  # warm-up: compilation, allocator, caches
        synchronize()
        one = time.perf_counter() - t0
        if one * min_rounds < budget_s:  # cheap enough: size the rounds on a warm call
            t0 = time.perf_counter()
            fn()
            synchronize()
            one = time.perf_counter() - t0
        rounds = max(min_rounds, min(max_rounds, int(budget_s / max(one, 1e-9))))

        def timed() -> None:
            fn()
            synchronize()  # the end clock is read after this; the start one after the previous

        if group is not None:
            benchmark.group = group
        benchmark.pedantic(timed, rounds=rounds, warmup_rounds=0, iterations=1)
        data = benchmark.stats.stats.data
        median, p95 = statistics.median(data), percentile95(data)
        extra: dict[str, Any] = {
            "device": peaks.device,
            "median_ms": _sig(median * 1e3),
            "p95_ms": _sig(p95 * 1e3),
            "rounds": rounds,
            "bound": bound,
        }
        for key, value in info.items():
            if isinstance(value, torch.dtype):
                value = dtype_name(value)
            elif isinstance(value, (torch.Size, tuple)):
                value = list(value)
            extra[key] = value
        if dtype is not None:
            extra.setdefault("dtype", dtype_name(dtype))
        if bytes_moved is not None:
            gbs = bytes_moved / median / 1e9
            extra.update(
                bytes_moved=bytes_moved,
                GB_per_s=_sig(gbs),
                fraction_of_peak_bandwidth=_fraction(gbs, peaks.bandwidth),
                peak_GB_per_s=peaks.bandwidth.value,
            )
        if flops is not None:
            tflops = flops / median / 1e12
            peak = peaks.flops_for(dtype or torch.float32)
            extra.update(
                flops=flops,
                TFLOP_per_s=_sig(tflops),
                fraction_of_peak_flops=_fraction(tflops, peak),
                peak_TFLOP_per_s=peak.value,
            )
        if frames is not None:
            extra["fps"] = _sig(frames / median)
        headline = {"compute": "fraction_of_peak_flops", "memory": "fraction_of_peak_bandwidth"}
        extra["fraction_of_peak"] = extra.get(headline.get(bound or "", ""))
        benchmark.extra_info.update(extra)
        return median

    return run


# ----------------------------------------------------------------------------- helpers for modules


def frame(
    dtype: torch.dtype, channels: int = 3, seed: int = 0, size: tuple[int, int] = FULL_HD
) -> torch.Tensor:
    """(1, C, H, W) channels-last frame on the bench device (a decoded (H, W, C) video frame
    viewed as NCHW): uint8 0..255, or float in [0, 1]."""
    rng = np.random.default_rng(seed)
    hwc = rng.integers(0, 256, (*size, channels), dtype=np.uint8)  # (H, W, C)
    x = torch.from_numpy(hwc).permute(2, 0, 1)[None].to(DEVICE)  # (1, C, H, W)
    return x if dtype == torch.uint8 else (x.to(torch.float32) / 255).to(dtype)


def nbytes(*tensors: torch.Tensor | None) -> int:
    """Bytes of the given tensors' elements (each read or written once)."""
    return sum(t.numel() * t.element_size() for t in tensors if t is not None)


def impl_params(*, opencv: bool) -> list[Any]:
    """Parameters ``ref`` (the op's ``_ref``), ``auto``, ``triton`` and (``opencv=True``)
    ``opencv``, each skipping with its reason where it cannot run or would repeat another."""
    cuda = DEVICE.type == "cuda"
    no_triton = (
        "no CUDA device: Triton kernels are benchmarked compiled only (the interpreter is a "
        "semantics checker, not a backend)"
        if not cuda
        else "TRITON_INTERPRET=1 is set: Triton would run in its interpreter"
    )
    params = [
        pytest.param("ref", id="ref"),
        pytest.param(
            "auto",
            id="auto",
            marks=pytest.mark.skipif(
                cuda, reason="on CUDA impl='auto' is the Triton kernel, measured as impl=triton"
            ),
        ),
        pytest.param(
            "triton",
            id="triton",
            marks=pytest.mark.skipif(not cuda or interpreter_requested(), reason=no_triton),
        ),
    ]
    if opencv:
        no_opencv = "OpenCV runs on host memory only; this run's tensors are on CUDA"
        params.append(
            pytest.param("opencv", id="opencv", marks=pytest.mark.skipif(cuda, reason=no_opencv))
        )
    return params


def call_impl(
    op: Callable[..., Any], ref: Callable[..., Any], impl: str, *args: Any, **kwargs: Any
) -> Callable[[], Any]:
    """A no-argument callable running ``ref(*args, **kwargs)`` for ``impl="ref"``, else
    ``op(*args, impl=impl, **kwargs)``."""
    if impl == "ref":
        return lambda: ref(*args, **kwargs)
    return lambda: op(*args, impl=impl, **kwargs)


def interleaved_samples(
    fns: dict[str, Callable[[], object]], rounds: int
) -> dict[str, list[float]]:
    """Seconds per call of each callable, timed in turn after three warm-up calls each; the
    order alternates every round (A B, B A, ...) so that load changes and cache effects hit every
    callable alike. Sample ``i`` of each callable comes from the same round."""
    for _ in range(3):
        for fn in fns.values():
            fn()
    samples: dict[str, list[float]] = {name: [] for name in fns}
    names = list(fns)
    for i in range(rounds):
        for name in names if i % 2 == 0 else names[::-1]:
            synchronize()
            t0 = time.perf_counter()
            fns[name]()
            synchronize()
            samples[name].append(time.perf_counter() - t0)
    return samples


def assert_auto_within_opencv(
    benchmark: Any,
    auto: Callable[[], object],
    direct: Callable[[], object],
    *,
    limit: float,
    rounds: int,
    attempts: int = 3,
    **info: Any,
) -> None:
    """Assert that ``auto`` costs at most ``limit`` times OpenCV called ``direct``-ly.

    The ratio is the median over ``rounds`` interleaved pairs of the per-pair ratio (robust to
    load drift on a shared machine). A load spike can still push one estimate past the limit,
    so up to ``attempts`` estimates are taken until one passes; a real regression fails them
    all. Every attempt's ratio is recorded (``auto_over_opencv_attempts``), with both medians of
    the last attempt and a ``note`` for the report.
    """
    ratios: list[float] = []
    for _ in range(attempts):
        samples = interleaved_samples({"auto": auto, "opencv": direct}, rounds)
        pairs = zip(samples["auto"], samples["opencv"], strict=True)
        ratios.append(statistics.median(a / o for a, o in pairs))
        if ratios[-1] <= limit:
            break
    med = {name: statistics.median(v) for name, v in samples.items()}
    benchmark.group = "auto vs OpenCV called directly (interleaved, same run)"
    benchmark.pedantic(auto, rounds=3, warmup_rounds=0)
    shown = ", ".join(f"{r:.3f}" for r in ratios)
    benchmark.extra_info.update(
        info,
        impl="auto",
        median_ms=round(med["auto"] * 1e3, 4),
        p95_ms=round(percentile95(samples["auto"]) * 1e3, 4),
        opencv_median_ms=round(med["opencv"] * 1e3, 4),
        auto_over_opencv=round(ratios[-1], 3),
        auto_over_opencv_attempts=[round(r, 3) for r in ratios],
        note=f"auto / OpenCV direct = {shown} (median of {rounds} interleaved pairs per "
        f"attempt; limit {limit})",
    )
    assert ratios[-1] <= limit, f"impl='auto' is {shown}x OpenCV called directly"
