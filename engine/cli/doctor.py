"""`tryon doctor`: what this install can run, and what is broken.

Each check yields one :class:`Check` line. Status levels:

- ``ok``: present and working;
- ``info``: optional and absent (TensorRT on a CPU machine), said with how to get it;
- ``fail``: a required part is missing or broken; the doctor then exits non-zero.

The checks import packages but run no model and allocate nothing on the GPU beyond what
``torch.cuda`` needs to name the device.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import math
import platform
import sys
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

from engine.backends.selection import choose_backend, probe_capabilities

__all__ = ["Check", "run_checks", "format_report", "as_dicts", "exit_code", "MEDIAPIPE_MODELS"]

Status = Literal["ok", "info", "fail"]

MEDIAPIPE_MODELS = (
    "modules/pose_detection/pose_detection.tflite",
    "modules/pose_landmark/pose_landmark_full.tflite",
    "modules/selfie_segmentation/selfie_segmentation.tflite",
)
"""Model files the runtime loads from inside the mediapipe wheel (paths relative to its package)."""

TENSORRT_HOWTO = (
    "pip install 'tryon-engine[tensorrt]' on Linux with an NVIDIA GPU and driver "
    "(TensorRT 10.x/11.x and cuda-python)"
)


@dataclass(frozen=True)
class Check:
    """One line of the report: component name, status and a human-readable detail."""

    name: str
    status: Status
    detail: str


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def check_python() -> Check:
    version = platform.python_version()
    return Check("python", "ok", f"{version} ({platform.machine()}, {platform.system()})")


def check_torch() -> Check:
    if importlib.util.find_spec("torch") is None:
        return Check("torch", "fail", "not installed: pip install torch==2.13.0")
    import torch

    if not torch.cuda.is_available():
        built = f"built with CUDA {torch.version.cuda}" if torch.version.cuda else "CPU build"
        return Check("torch", "ok", f"{torch.__version__} ({built}); CUDA: no device")
    name = torch.cuda.get_device_name(0)
    major, minor = torch.cuda.get_device_capability(0)
    count = torch.cuda.device_count()
    return Check(
        "torch",
        "ok",
        f"{torch.__version__}; CUDA {torch.version.cuda}: {name}, compute capability "
        f"{major}.{minor} ({count} device{'s' if count > 1 else ''})",
    )


def check_triton() -> Check:
    from kernels.triton_mode import triton_status

    status = triton_status()
    if status.version is None:
        needed = sys.platform.startswith("linux")
        return Check("triton", "fail" if needed else "info", status.reason)
    return Check("triton", "ok", f"{status.version}; kernels {status.mode}: {status.reason}")


def check_tensorrt() -> Check:
    if importlib.util.find_spec("tensorrt") is None:
        return Check("tensorrt", "info", f"not installed: {TENSORRT_HOWTO}")
    try:
        trt = importlib.import_module("tensorrt")
    except Exception as exc:
        return Check("tensorrt", "fail", f"installed but `import tensorrt` fails: {exc}")
    return Check("tensorrt", "ok", f"{trt.__version__}")


def check_cuda_python() -> Check:
    version = _version("cuda-python")
    if version is None:
        return Check("cuda-python", "info", f"not installed (used with TensorRT): {TENSORRT_HOWTO}")
    return Check("cuda-python", "ok", version)


def check_onnx() -> Check:
    onnx_version = _version("onnx")
    protobuf_version = _version("protobuf")
    onnxsim_version = _version("onnxsim")
    if onnx_version is None:
        return Check("onnx", "fail", "not installed: pip install 'onnx==1.17.*'")
    detail = f"{onnx_version}; protobuf {protobuf_version}; onnxsim {onnxsim_version or 'missing'}"
    if onnxsim_version is None:
        return Check("onnx", "fail", detail + " (pip install onnxsim)")
    return Check("onnx", "ok", detail)


def check_onnxruntime() -> Check:
    if importlib.util.find_spec("onnxruntime") is None:
        return Check("onnxruntime", "fail", "not installed: pip install onnxruntime")
    import onnxruntime

    providers = ", ".join(onnxruntime.get_available_providers())
    return Check("onnxruntime", "ok", f"{onnxruntime.__version__}; providers: {providers}")


def check_mediapipe() -> Check:
    spec = importlib.util.find_spec("mediapipe")
    if spec is None or spec.origin is None:
        return Check("mediapipe", "fail", "not installed: pip install mediapipe==0.10.21")
    package_dir = Path(spec.origin).parent
    missing = [m for m in MEDIAPIPE_MODELS if not (package_dir / m).is_file()]
    version = _version("mediapipe")
    if missing:
        return Check(
            "mediapipe",
            "fail",
            f"{version}: bundled models missing ({', '.join(missing)}); mediapipe 0.10.21 ships "
            "them inside the wheel, newer versions do not: pip install mediapipe==0.10.21",
        )
    try:
        importlib.import_module("mediapipe")
    except Exception as exc:  # protobuf >= 5 breaks mediapipe 0.10.21 at import
        return Check("mediapipe", "fail", f"{version}: `import mediapipe` fails: {exc}")
    return Check("mediapipe", "ok", f"{version}; bundled pose and segmentation models present")


def check_opencv() -> Check:
    if importlib.util.find_spec("cv2") is None:
        return Check("opencv", "fail", "not installed: pip install 'opencv-contrib-python<4.12'")
    try:
        import cv2
    except Exception as exc:
        return Check("opencv", "fail", f"`import cv2` fails: {exc}")
    gui = "none"
    for line in cv2.getBuildInformation().splitlines():
        if line.strip().startswith("GUI:"):
            gui = line.split(":", 1)[1].strip()
    return Check("opencv", "ok", f"{cv2.__version__}; GUI backend: {gui}")


def check_demo_model() -> Check:
    from safetensors import safe_open

    from engine.model.weights import bundled_path

    path = bundled_path("demo")
    if not path.is_file():
        return Check("demo model", "fail", f"bundled weights missing: {path} (reinstall)")
    try:
        with safe_open(str(path), framework="pt") as f:
            notes = (f.metadata() or {}).get("notes", "")
            params = sum(math.prod(f.get_slice(k).get_shape()) for k in f.keys())  # noqa: SIM118
    except Exception as exc:  # a truncated or foreign file must be a fail line, not a crash
        return Check("demo model", "fail", f"{path.name} is unreadable: {exc}")
    return Check("demo model", "ok", f"{path.name}, {params / 1e6:.2f} M parameters ({notes})")


def check_auto_backend() -> Check:
    try:
        choice = choose_backend("auto", probe_capabilities())
    except Exception as exc:
        return Check("backend=auto", "fail", f"cannot choose a backend: {exc}")
    return Check("backend=auto", "ok", f"{choice.backend} on {choice.device}: {choice.reason}")


CHECKS: tuple[Callable[[], Check], ...] = (
    check_python,
    check_torch,
    check_triton,
    check_tensorrt,
    check_cuda_python,
    check_onnx,
    check_onnxruntime,
    check_mediapipe,
    check_opencv,
    check_demo_model,
    check_auto_backend,
)


def run_checks(checks: Iterable[Callable[[], Check]] = CHECKS) -> list[Check]:
    """Run every check; a check that raises becomes a ``fail`` line instead of a crash."""
    results = []
    for check in checks:
        try:
            results.append(check())
        except Exception as exc:
            name = check.__name__.removeprefix("check_")
            results.append(Check(name, "fail", f"check crashed: {type(exc).__name__}: {exc}"))
    return results


def format_report(checks: list[Check]) -> str:
    """Aligned text report, one line per check, then a one-line verdict."""
    from engine import __version__

    width = max(len(c.name) for c in checks)
    lines = [f"tryon-engine {__version__}"]
    lines += [f"  [{c.status:>4}] {c.name:<{width}}  {c.detail}" for c in checks]
    failed = [c.name for c in checks if c.status == "fail"]
    if failed:
        lines.append(f"BROKEN: {', '.join(failed)} (see the lines marked fail)")
    else:
        lines.append("healthy: every required part is present")
    return "\n".join(lines)


def as_dicts(checks: list[Check]) -> list[dict[str, str]]:
    """The checks as plain dicts (for ``tryon doctor --json``)."""
    return [asdict(c) for c in checks]


def exit_code(checks: list[Check]) -> int:
    """0 when no check failed, 1 otherwise."""
    return 1 if any(c.status == "fail" for c in checks) else 0
