"""Benchmark harness shared by every suite in bench/ (run with ``pytest bench/``).

Rules (STYLE.md rule 15): warm up first, synchronize the device before every clock read, report
median and p95 plus derived units (GB/s, fraction of the machine's peak) in ``extra_info``.

Peaks: GPUs from the table below (NVIDIA datasheets); the CPU's from a copy probe measured once
per session in this very run (a large ``torch`` tensor copy), since datasheet numbers for a
shared 2-core VM mean little.

Triton is never benchmarked in its interpreter (it is a semantics checker, not a backend):
``impl="triton"`` cases run only on CUDA.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import pytest
import torch

# Peak DRAM bandwidth in GB/s (1e9 bytes/s), from NVIDIA's product datasheets: H200 SXM 4.8 TB/s;
# H100 SXM 3.35 TB/s, H100 PCIe 2.0 TB/s; A100 80GB SXM 2,039 GB/s, A100 40GB 1,555 GB/s;
# L4 300 GB/s; T4 320 GB/s. Matched by substring of torch.cuda.get_device_name(); first match wins.
GPU_PEAK_GBS = (
    ("H200", 4800.0),
    ("H100 PCIe", 2000.0),
    ("H100", 3350.0),
    ("A100-SXM4-80GB", 2039.0),
    ("A100 80GB", 2039.0),
    ("A100", 1555.0),
    ("L4", 300.0),
    ("T4", 320.0),
)

DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")


def synchronize() -> None:
    """Wait for queued device work (no-op on CPU)."""
    if DEVICE.type == "cuda":
        torch.cuda.synchronize()


@pytest.fixture(scope="session")
def peak_gbs() -> tuple[float, str]:
    """(peak bandwidth in GB/s, where it comes from) for this run's device."""
    if DEVICE.type == "cuda":
        name = torch.cuda.get_device_name(0)
        for key, gbs in GPU_PEAK_GBS:
            if key in name:
                return gbs, f"datasheet ({name})"
        return float("nan"), f"no datasheet entry for {name}"
    src = torch.empty(64 * 2**20, dtype=torch.float32)  # 256 MiB, far beyond any CPU cache
    src.fill_(1.0)
    dst = torch.empty_like(src)
    times = []
    for _ in range(5):
        t0 = time.perf_counter()
        dst.copy_(src)
        times.append(time.perf_counter() - t0)
    return 2 * src.numel() * 4 / min(times) / 1e9, "measured: 256 MiB torch copy (read+write)"


@pytest.fixture
def measure(benchmark, peak_gbs) -> Callable[..., float]:
    """``measure(fn, bytes_moved=..., flops=None, rounds=...) -> median seconds``: times ``fn``
    with pytest-benchmark (one warm-up round, device synchronized around each call) and records
    median/p95 ms, GB/s, the fraction of peak bandwidth and (given ``flops``) TFLOP/s in
    ``extra_info``."""

    def run(
        fn: Callable[[], object], *, bytes_moved: int, flops: int | None = None, rounds: int = 10
    ) -> float:
        def timed() -> None:
            fn()
            synchronize()

        synchronize()
        benchmark.pedantic(timed, rounds=rounds, warmup_rounds=1, iterations=1)
        data = sorted(benchmark.stats.stats.data)
        median = statistics.median(data)
        p95 = data[min(len(data) - 1, round(0.95 * (len(data) - 1)))]
        gbs = bytes_moved / median / 1e9
        peak, source = peak_gbs
        benchmark.extra_info.update(
            device=torch.cuda.get_device_name(0) if DEVICE.type == "cuda" else "cpu",
            median_ms=round(median * 1e3, 3),
            p95_ms=round(p95 * 1e3, 3),
            bytes_moved=bytes_moved,
            GB_per_s=round(gbs, 2),
            fraction_of_peak_bandwidth=round(gbs / peak, 4),
            peak_GB_per_s=round(peak, 1),
            peak_source=source,
        )
        if flops is not None:
            benchmark.extra_info.update(flops=flops, TFLOP_per_s=round(flops / median / 1e12, 4))
        return median

    return run
