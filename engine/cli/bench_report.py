"""``tryon bench``: run the ``pytest bench/`` suite and turn its results into a report.

Three parts:

- :func:`environment` and :func:`machine_slug`: what the numbers were measured on (Python, torch,
  Triton, onnxruntime, OpenCV versions, CPU model and cores, GPU, date) and the file name of the
  results (``amd-epyc-2c``: CPU model + cores; ``nvidia-h200``: the GPU on CUDA machines).
- :class:`ResultsRecorder`: a pytest plugin (registered by ``bench/conftest.py``) that adds the
  environment, the machine's peaks and every skipped / failed benchmark with its reason to
  pytest-benchmark's JSON, under the key ``"tryon"``.
- :func:`write_report`: pytest-benchmark JSON -> ``bench/results/<machine>.json`` (condensed,
  no raw samples) and ``<machine>.md`` (one table per group: median, p95, throughput, fraction
  of peak; then what was skipped and why). :func:`run_bench` runs the suite in a subprocess.

Keys a benchmark may put in ``extra_info`` (see ``bench/conftest.py``'s ``measure``):
``median_ms``, ``p95_ms`` (else taken from pytest-benchmark's own samples), ``bound``
(``"memory"`` -> GB/s, ``"compute"`` -> TFLOP/s), ``GB_per_s``, ``TFLOP_per_s``, ``fps``,
``fraction_of_peak``. A figure that was not measured is reported as "not measured".
"""

from __future__ import annotations

import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

__all__ = [
    "ResultsRecorder",
    "environment",
    "find_bench_root",
    "machine_slug",
    "percentile95",
    "run_bench",
    "write_report",
]

NOT_MEASURED = "not measured"


def _version(*dists: str) -> str | None:
    """Installed version of the first of ``dists`` present, else None."""
    for dist in dists:
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return None


def _cpu_model() -> str:
    """CPU model name from /proc/cpuinfo (Linux), else what ``platform`` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown cpu"


def _cpu_count() -> int:
    """CPUs this process may run on (the affinity mask where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def environment() -> dict[str, Any]:
    """What a benchmark run measured on: versions, CPU, GPU and the date (UTC, ISO 8601)."""
    import torch

    try:
        import cv2

        opencv = cv2.__version__
    except ImportError:
        opencv = None
    cuda = torch.cuda.is_available()
    return {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "triton": _version("triton"),
        "onnxruntime": _version("onnxruntime", "onnxruntime-gpu"),
        "opencv": opencv,
        "os": platform.platform(),
        "cpu_model": _cpu_model(),
        "cpu_count": _cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "gpu": torch.cuda.get_device_name(0) if cuda else None,
        "cuda": torch.version.cuda if cuda else None,
    }


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def machine_slug(env: dict[str, Any]) -> str:
    """File name of a machine's results: the GPU's name on CUDA machines (``nvidia-h200``), else
    the CPU model without vendor marks and clock plus the core count (``amd-epyc-2c``)."""
    if env.get("gpu"):
        return _slug(str(env["gpu"]))
    model = str(env.get("cpu_model") or "").split("@")[0]
    model = re.sub(r"\((r|tm)\)|\b(cpu|processor)\b", " ", model, flags=re.IGNORECASE)
    return f"{_slug(model) or 'cpu'}-{int(env.get('cpu_count') or 1)}c"


class ResultsRecorder:
    """pytest plugin: records skipped and failed tests and adds them, the environment and the
    peaks to pytest-benchmark's JSON (``output_json["tryon"]``).

    Args:
        peaks: called once when the JSON is written, returns the machine's peaks as a dict
            (``bench/conftest.py`` passes its session probe), or None when there are none.
    """

    def __init__(self, peaks: Callable[[], dict[str, Any] | None] | None = None) -> None:
        self._peaks = peaks
        self.skipped: list[dict[str, str]] = []
        self.failed: list[dict[str, str]] = []

    def pytest_runtest_logreport(self, report: Any) -> None:
        """Keep the node id and reason of each skip, and the first line of each failure."""
        if report.skipped:
            longrepr = report.longrepr
            if hasattr(report, "wasxfail"):
                reason = f"xfail: {report.wasxfail}"
            else:
                reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
            self.skipped.append({"test": report.nodeid, "reason": reason.removeprefix("Skipped: ")})
        elif report.failed:
            lines = [ln for ln in str(report.longreprtext).splitlines() if ln.startswith("E ")]
            message = lines[0][1:].strip() if lines else f"failed in {report.when}"
            self.failed.append({"test": report.nodeid, "when": report.when, "message": message})

    def pytest_benchmark_update_json(self, config: Any, benchmarks: Any, output_json: dict) -> None:
        """Add the run's environment, peaks, skips and failures under ``"tryon"``."""
        output_json["tryon"] = {
            "environment": environment(),
            "peaks": self._peaks() if self._peaks is not None else None,
            "skipped": self.skipped,
            "failed": self.failed,
        }


# ----------------------------------------------------------------------------- report writing


def percentile95(data: Sequence[float]) -> float:
    """Nearest-rank 95th percentile (the largest sample below 20 samples)."""
    ordered = sorted(data)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def _row(bench: dict[str, Any]) -> dict[str, Any]:
    """One benchmark condensed: name, group, params, median / p95 ms, throughput, fraction."""
    stats, info = bench["stats"], bench.get("extra_info") or {}
    data = stats.get("data") or []
    median_ms = info.get("median_ms", stats["median"] * 1e3)
    p95_ms = info.get("p95_ms", percentile95(data) * 1e3 if data else None)
    bound = info.get("bound")
    if bound == "compute" and info.get("TFLOP_per_s") is not None:
        throughput = (info["TFLOP_per_s"], "TFLOP/s")
    elif bound == "memory" and info.get("GB_per_s") is not None:
        throughput = (info["GB_per_s"], "GB/s")
    elif info.get("fps") is not None:
        throughput = (info["fps"], "FPS")
    elif info.get("GB_per_s") is not None:
        throughput = (info["GB_per_s"], "GB/s")
    elif info.get("TFLOP_per_s") is not None:
        throughput = (info["TFLOP_per_s"], "TFLOP/s")
    else:
        throughput = (None, None)
    return {
        "name": bench["name"],
        "fullname": bench["fullname"],
        "group": bench.get("group") or bench["name"].split("[")[0],
        "params": bench.get("params"),
        "median_ms": median_ms,
        "p95_ms": p95_ms,
        "rounds": stats.get("rounds"),
        "throughput": throughput[0],
        "throughput_unit": throughput[1],
        "fraction_of_peak": info.get("fraction_of_peak"),
        "extra_info": info,
    }


def _fmt(value: float | None, digits: int = 3) -> str:
    """A measured figure: whole numbers from 100 up, else ``digits`` significant digits; or
    "not measured"."""
    if value is None:
        return NOT_MEASURED
    if abs(value) >= 100:
        return f"{value:.0f}"
    return f"{value:#.{digits}g}".rstrip(".") if abs(value) >= 1e-4 else f"{value:.1e}"


def _cells(row: dict[str, Any], notes: bool) -> str:
    """One markdown table row of a condensed benchmark."""
    tput = row["throughput"]
    frac = row["fraction_of_peak"]
    cells = [
        f"`{row['name']}`",
        _fmt(row["median_ms"]),
        _fmt(row["p95_ms"]),
        NOT_MEASURED if tput is None else f"{_fmt(tput)} {row['throughput_unit']}",
        NOT_MEASURED if frac is None else f"{100 * frac:.3g} %",
    ]
    if notes:
        cells.append(str(row["extra_info"].get("note", "")))
    return "| " + " | ".join(cells) + " |"


def _markdown(record: dict[str, Any]) -> str:
    """The human-readable report of a condensed record (see :func:`write_report`)."""
    env, peaks = record["environment"], record.get("peaks") or {}
    lines = [f"# Benchmarks: {record['machine']}", ""]
    lines.append(
        "Measured with `tryon bench --report` (`pytest bench/`): median and p95 over the rounds "
        "after warm-up, the device synchronized before every clock read. Fraction of peak: GB/s "
        "over the peak bandwidth for memory-bound ops, TFLOP/s over the peak FLOP rate of the "
        "dtype for compute-bound ones."
    )
    lines += ["", "| environment | |", "| --- | --- |"]
    keys = ("date", "cpu_model", "cpu_count", "torch_threads", "gpu", "cuda", "python", "torch",
            "triton", "onnxruntime", "opencv", "os")  # fmt: skip
    lines += [f"| {key} | {env.get(key) if env.get(key) is not None else 'none'} |" for key in keys]
    lines.append(f"| run | {record.get('run', 'full')} |")
    if record.get("wall_s") is not None:
        lines.append(f"| suite wall time | {record['wall_s']:.0f} s |")
    lines += ["", "## Peaks", ""]
    if not peaks:
        lines.append(f"Peaks: {NOT_MEASURED}.")
    else:
        lines += ["| peak | value | source |", "| --- | --- | --- |"]
        for entry in peaks.get("table", []):
            value = entry.get("value")
            shown = NOT_MEASURED if value is None else f"{_fmt(value, 4)} {entry['unit']}"
            lines.append(f"| {entry['name']} | {shown} | {entry['source']} |")
    groups: dict[str, list[dict[str, Any]]] = {}
    for row in record["benchmarks"]:
        groups.setdefault(row["group"], []).append(row)
    for group, rows in groups.items():
        notes = any("note" in row["extra_info"] for row in rows)
        header = "| benchmark | median ms | p95 ms | throughput | fraction of peak |"
        rule = "| --- | ---: | ---: | ---: | ---: |"
        lines += ["", f"## {group}", "", header + (" notes |" if notes else "")]
        lines.append(rule + (" --- |" if notes else ""))
        lines += [_cells(row, notes) for row in rows]
    lines += ["", "## Skipped", ""]
    if record["skipped"] is None:
        lines.append(f"Skips: {NOT_MEASURED} (the run did not record them).")
    elif not record["skipped"]:
        lines.append("Nothing was skipped.")
    else:
        by_reason: dict[str, list[str]] = {}
        for skip in record["skipped"]:
            by_reason.setdefault(skip["reason"], []).append(skip["test"])
        for reason, tests in by_reason.items():
            names = ", ".join(f"`{t.split('::')[-1]}`" for t in tests)
            lines.append(f"- {reason} ({len(tests)}): {names}")
    if record["failed"]:
        lines += ["", "## Failed", ""]
        lines += [f"- `{f['test']}` ({f['when']}): {f['message']}" for f in record["failed"]]
    return "\n".join(lines) + "\n"


def _run_label(quick: bool, keyword: str | None) -> str:
    parts = ["quick (--quick: fewer rounds)"] if quick else []
    return ", ".join(parts + ([f"only -k {keyword!r}"] if keyword else []))


def write_report(
    bench_json: dict[str, Any],
    out_dir: str | Path,
    *,
    wall_s: float | None = None,
    quick: bool = False,
    keyword: str | None = None,
) -> tuple[Path, Path]:
    """Write ``<machine>.json`` and ``<machine>.md`` from pytest-benchmark's JSON.

    Args:
        bench_json: the parsed ``--benchmark-json`` file; its ``"tryon"`` key (written by
            :class:`ResultsRecorder`) supplies environment, peaks and skips when present.
        out_dir: directory for the two files (created if missing).
        wall_s: wall time of the whole suite in seconds, if known.
        quick, keyword: how the suite was run (``--quick``, ``-k``): a partial or quick run is
            labelled as such in both files.

    Returns:
        The paths of the JSON and markdown files.
    """
    extra = bench_json.get("tryon") or {}
    env = extra.get("environment") or environment()
    commit = bench_json.get("commit_info") or {}
    record = {
        "machine": machine_slug(env),
        "environment": env,
        "peaks": extra.get("peaks"),
        "wall_s": wall_s,
        "run": "full" if not (quick or keyword) else _run_label(quick, keyword),
        "commit": {k: commit.get(k) for k in ("id", "branch", "dirty")},
        "pytest_benchmark": {
            "version": bench_json.get("version"),
            "datetime": bench_json.get("datetime"),
        },
        "benchmarks": [_row(b) for b in bench_json.get("benchmarks", [])],
        "skipped": extra.get("skipped"),
        "failed": extra.get("failed") or [],
    }
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    json_path, md_path = out / f"{record['machine']}.json", out / f"{record['machine']}.md"
    json_path.write_text(json.dumps(record, indent=2, default=str) + "\n")
    md_path.write_text(_markdown(record))
    return json_path, md_path


# ----------------------------------------------------------------------------- running the suite


def find_bench_root(candidates: Sequence[Path] | None = None) -> Path | None:
    """The source tree holding ``bench/conftest.py``: next to the imported ``engine`` package
    (an editable install or a clone), else the working directory; None when neither has it."""
    if candidates is None:
        candidates = (Path(__file__).resolve().parents[2], Path.cwd())
    for root in candidates:
        if (Path(root) / "bench" / "conftest.py").is_file():
            return Path(root)
    return None


def run_bench(
    *, report: bool, quick: bool, keyword: str | None = None, json_out: str | None = None
) -> int:
    """Run ``pytest bench/`` in a subprocess from the source tree; with ``report`` write
    ``bench/results/<machine>.{json,md}``. Returns pytest's exit code (2: no bench/ found)."""
    root = find_bench_root()
    if root is None:
        print(
            "tryon bench: bench/ not found: the benchmarks ship with the source tree, not with the "
            f"installed package ({Path(__file__).resolve().parent}). Clone the repository and run "
            "`pip install -e .` there, or run `tryon bench` from the clone's root."
        )
        return 2
    with tempfile.TemporaryDirectory(prefix="tryon-bench-") as tmp:
        raw = Path(json_out).resolve() if json_out else Path(tmp) / "benchmark.json"
        cmd = [
            sys.executable,
            "-m",
            "pytest",
            "bench/",
            f"--benchmark-json={raw}",
            "-p",
            "no:cacheprovider",
        ]
        if quick:
            cmd.append("--bench-quick")
        if keyword:
            cmd += ["-k", keyword]
        print(f"tryon bench: running {' '.join(cmd[2:])} in {root}", flush=True)
        t0 = time.perf_counter()
        rc = subprocess.call(cmd, cwd=root)
        wall = time.perf_counter() - t0
        print(f"tryon bench: pytest exit code {rc}, wall time {wall:.0f} s")
        if not report:
            return rc
        if not raw.is_file():
            print("tryon bench: no benchmark JSON was written (no benchmark ran): no report")
            return rc or 1
        json_path, md_path = write_report(
            json.loads(raw.read_text()),
            root / "bench" / "results",
            wall_s=wall,
            quick=quick,
            keyword=keyword,
        )
        print(f"tryon bench: wrote {json_path} and {md_path}")
    return rc
