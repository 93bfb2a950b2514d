"""``engine.cli.bench_report``: the report written from a real pytest-benchmark JSON, the
machine-name slug, and ``tryon bench`` outside a source tree.

The JSON comes from running pytest-benchmark on a tiny benchmark file in ``tmp_path`` (with the
same :class:`~engine.cli.bench_report.ResultsRecorder` plugin that ``bench/conftest.py`` registers),
so the test follows pytest-benchmark's real format rather than a hand-made imitation.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from engine.cli import bench_report
from engine.cli.bench_report import NOT_MEASURED, find_bench_root, machine_slug, write_report
from engine.cli.main import build_parser

REPO = Path(__file__).resolve().parents[3]

CONFTEST = """
import time

import numpy as np

from engine.cli.bench_report import ResultsRecorder


def _copy_gbs():
    src = np.ones(2**20, dtype=np.float32)
    dst = np.empty_like(src)
    t0 = time.perf_counter()
    np.copyto(dst, src)
    return 2 * src.nbytes / (time.perf_counter() - t0) / 1e9


def pytest_configure(config):
    peaks = lambda: {"device": "cpu", "table": [{"name": "memory bandwidth", "value": _copy_gbs(),
                     "unit": "GB/s", "source": "measured: 4 MiB numpy copy"}]}
    config.pluginmanager.register(ResultsRecorder(peaks), "tryon-results")
"""

BENCHMARKS = """
import numpy as np
import pytest

A = np.ones((64, 64), dtype=np.float32)


def test_copy_memory(benchmark):
    benchmark.group = "tiny ops"
    dst = np.empty_like(A)
    benchmark.pedantic(np.copyto, args=(dst, A), rounds=5)
    gbs = 2 * A.nbytes / benchmark.stats.stats.median / 1e9
    benchmark.extra_info.update(bound="memory", GB_per_s=gbs, fraction_of_peak=0.5)


def test_matmul_compute(benchmark):
    benchmark.group = "tiny ops"
    benchmark.pedantic(np.matmul, args=(A, A), rounds=5)
    tflops = 2 * 64**3 / benchmark.stats.stats.median / 1e12
    benchmark.extra_info.update(bound="compute", TFLOP_per_s=tflops)


def test_frames(benchmark):
    benchmark.pedantic(np.sum, args=(A,), rounds=5)
    benchmark.extra_info.update(fps=4 / benchmark.stats.stats.median, note="4 frames per call")


def test_plain(benchmark):
    benchmark.pedantic(np.sum, args=(A,), rounds=3)


def test_needs_gpu(benchmark):
    pytest.skip("no CUDA device: measured only on GPUs")
"""


@pytest.fixture(scope="module")
def bench_json(tmp_path_factory) -> dict:
    """pytest-benchmark's JSON of the tiny suite above, written by pytest-benchmark itself."""
    root = tmp_path_factory.mktemp("tiny_bench")
    (root / "conftest.py").write_text(CONFTEST)
    (root / "test_tiny.py").write_text(BENCHMARKS)
    out = root / "out.json"
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])
    )
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(root),
           f"--benchmark-json={out}", str(root / "test_tiny.py")]  # fmt: skip
    proc = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return json.loads(out.read_text())


def test_report_from_pytest_benchmark_json(bench_json, tmp_path):
    json_path, md_path = write_report(bench_json, tmp_path / "results", wall_s=12.3)
    record = json.loads(json_path.read_text())
    slug = machine_slug(bench_json["tryon"]["environment"])
    assert json_path.name == f"{slug}.json" and md_path.name == f"{slug}.md"
    rows = {row["name"]: row for row in record["benchmarks"]}
    assert set(rows) == {"test_copy_memory", "test_matmul_compute", "test_frames", "test_plain"}
    assert rows["test_copy_memory"]["throughput_unit"] == "GB/s"
    assert rows["test_matmul_compute"]["throughput_unit"] == "TFLOP/s"
    assert rows["test_frames"]["throughput_unit"] == "FPS"
    assert rows["test_plain"]["throughput"] is None
    for row in rows.values():  # median and p95 from pytest-benchmark's own samples
        stats = next(b["stats"] for b in bench_json["benchmarks"] if b["name"] == row["name"])
        assert row["median_ms"] == pytest.approx(stats["median"] * 1e3)
        assert row["median_ms"] <= row["p95_ms"] <= stats["max"] * 1e3 + 1e-9
        assert row["rounds"] == stats["rounds"]
    assert record["skipped"] == [
        {"test": "test_tiny.py::test_needs_gpu", "reason": "no CUDA device: measured only on GPUs"}
    ]
    assert record["failed"] == []
    assert record["peaks"]["table"][0]["value"] > 0
    for key in ("python", "torch", "triton", "onnxruntime", "opencv", "cpu_model", "cpu_count",
                "gpu", "date"):  # fmt: skip
        assert key in record["environment"]

    md = md_path.read_text()
    assert md.startswith(f"# Benchmarks: {slug}")
    assert "## tiny ops" in md and "## test_frames" in md and "## test_plain" in md
    assert "| benchmark | median ms | p95 ms | throughput | fraction of peak |" in md
    copy_line = next(ln for ln in md.splitlines() if ln.startswith("| `test_copy_memory`"))
    assert "GB/s" in copy_line and copy_line.endswith("| 50 % |")
    plain_line = next(ln for ln in md.splitlines() if ln.startswith("| `test_plain`"))
    assert plain_line.count(NOT_MEASURED) == 2  # throughput and fraction
    assert "4 frames per call" in md
    assert "- no CUDA device: measured only on GPUs (1): `test_needs_gpu`" in md
    assert "| suite wall time | 12 s |" in md
    assert "| run | full |" in md
    assert "measured: 4 MiB numpy copy" in md


def test_report_without_recorder_says_not_measured(bench_json, tmp_path):
    """A plain pytest-benchmark JSON (no ``"tryon"`` key) still gives a report; what the run did
    not record is "not measured", never invented."""
    plain = {k: v for k, v in bench_json.items() if k != "tryon"}
    _, md_path = write_report(plain, tmp_path)
    md = md_path.read_text()
    assert f"Peaks: {NOT_MEASURED}." in md
    assert f"Skips: {NOT_MEASURED}" in md
    assert "suite wall time" not in md
    _, md_path = write_report(plain, tmp_path, quick=True, keyword="composite")
    assert "| run | quick (--quick: fewer rounds), only -k 'composite' |" in md_path.read_text()


@pytest.mark.parametrize(
    "env, slug",
    [
        ({"gpu": "NVIDIA H200", "cpu_model": "Intel Xeon", "cpu_count": 16}, "nvidia-h200"),
        ({"gpu": "NVIDIA A100-SXM4-80GB", "cpu_count": 8}, "nvidia-a100-sxm4-80gb"),
        ({"gpu": None, "cpu_model": "AMD EPYC", "cpu_count": 2}, "amd-epyc-2c"),
        (
            {"gpu": None, "cpu_model": "Intel(R) Xeon(R) CPU @ 2.20GHz", "cpu_count": 4},
            "intel-xeon-4c",
        ),  # fmt: skip
        (
            {"gpu": None, "cpu_model": "AMD EPYC 7763 64-Core Processor", "cpu_count": 8},
            "amd-epyc-7763-64-core-8c",
        ),  # fmt: skip
        ({"gpu": None, "cpu_model": "", "cpu_count": 1}, "cpu-1c"),
    ],
)
def test_machine_slug(env, slug):
    assert machine_slug(env) == slug


@pytest.mark.parametrize(
    "device_name, entry",
    [
        ("NVIDIA H200", "H200 SXM"),
        ("NVIDIA H200 NVL", None),  # different clocks and power: no entry rather than a wrong one
        ("NVIDIA H100 80GB HBM3", "H100 SXM"),
        ("NVIDIA H100 PCIe", "H100 PCIe"),
        ("NVIDIA H100 NVL", None),
        ("NVIDIA A100-SXM4-80GB", "A100 SXM 80GB"),
        ("NVIDIA A100 80GB PCIe", None),
        ("NVIDIA A100-SXM4-40GB", "A100 40GB"),
        ("NVIDIA L4", "L4"),
        ("NVIDIA L40S", None),
        ("Tesla T4", "T4"),
    ],
)
def test_gpu_peak_table_matches_device_names(device_name, entry):
    from bench.conftest import gpu_spec

    spec = gpu_spec(device_name)
    assert (spec.name if spec else None) == entry
    if spec is not None:
        assert spec.source.startswith("NVIDIA") and spec.memory_GB_per_s > 0


def test_find_bench_root(tmp_path):
    assert find_bench_root([tmp_path]) is None
    (tmp_path / "bench").mkdir()
    (tmp_path / "bench" / "conftest.py").write_text("")
    assert find_bench_root([tmp_path / "elsewhere", tmp_path]) == tmp_path
    assert find_bench_root() == REPO  # this checkout


def test_bench_without_source_tree_says_so(monkeypatch, capsys):
    monkeypatch.setattr(bench_report, "find_bench_root", lambda: None)
    assert bench_report.run_bench(report=True, quick=False) == 2
    out = capsys.readouterr().out
    assert "bench/ not found" in out and "pip install -e ." in out


def test_cli_bench_arguments():
    args = build_parser().parse_args(["bench", "--report", "--quick", "-k", "composite"])
    assert (args.report, args.quick, args.k, args.json) == (True, True, "composite", None)
    assert args.run.__name__ == "_cmd_bench"
