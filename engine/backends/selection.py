"""Which inference backend ``backend="auto"`` picks, and why.

Preference order, fastest first: TensorRT (CUDA) > onnxruntime with the CUDA execution provider >
eager PyTorch on CUDA > onnxruntime on CPU > eager PyTorch on CPU. A backend is a candidate only
when its package imports and, for the CUDA ones, a CUDA device is visible to torch.

The choice is a pure function of a :class:`Capabilities` snapshot, so it can be tested without the
hardware; :func:`probe_capabilities` takes the snapshot of this machine.
"""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass, field
from typing import Literal

from engine.errors import BackendUnavailableError, InputError

__all__ = ["BACKENDS", "BackendChoice", "Capabilities", "choose_backend", "probe_capabilities"]

BACKENDS = ("auto", "tensorrt", "onnxruntime", "torch")
"""Names accepted by ``backend=`` everywhere in the engine."""

Device = Literal["cuda", "cpu"]


@dataclass(frozen=True)
class Capabilities:
    """What this machine offers the backends.

    Attributes:
        cuda_device: name of CUDA device 0 as torch sees it, or ``None`` without one.
        tensorrt_version: installed TensorRT version, or ``None``.
        tensorrt_error: why ``import tensorrt`` failed when the package is present but broken.
        onnxruntime_version: installed onnxruntime version, or ``None``.
        onnxruntime_providers: onnxruntime's available execution providers, in its order.
    """

    cuda_device: str | None = None
    tensorrt_version: str | None = None
    tensorrt_error: str | None = None
    onnxruntime_version: str | None = None
    onnxruntime_providers: tuple[str, ...] = field(default_factory=tuple)

    @property
    def onnxruntime_cuda(self) -> bool:
        """onnxruntime can run on the GPU: CUDA provider built in and a device present."""
        return (
            self.cuda_device is not None and "CUDAExecutionProvider" in self.onnxruntime_providers
        )


@dataclass(frozen=True)
class BackendChoice:
    """A resolved backend: its name, the device it runs on, and a one-line reason."""

    backend: Literal["tensorrt", "onnxruntime", "torch"]
    device: Device
    reason: str


def probe_capabilities() -> Capabilities:
    """Snapshot this machine: imports torch, onnxruntime and tensorrt (if present); no work."""
    import torch

    cuda_device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None

    tensorrt_version = tensorrt_error = None
    if importlib.util.find_spec("tensorrt") is not None:
        try:
            tensorrt_version = importlib.import_module("tensorrt").__version__
        except Exception as exc:  # a broken install must be reported, not crash the probe
            tensorrt_error = f"{type(exc).__name__}: {exc}"

    ort_version, ort_providers = None, ()
    if importlib.util.find_spec("onnxruntime") is not None:
        ort = importlib.import_module("onnxruntime")
        ort_version = ort.__version__
        ort_providers = tuple(ort.get_available_providers())

    return Capabilities(cuda_device, tensorrt_version, tensorrt_error, ort_version, ort_providers)


def _tensorrt_missing(caps: Capabilities) -> str | None:
    if caps.tensorrt_error is not None:
        return f"tensorrt is installed but does not import ({caps.tensorrt_error})"
    if caps.tensorrt_version is None:
        return "tensorrt is not installed (pip install 'tryon-engine[tensorrt]' on an NVIDIA GPU)"
    if caps.cuda_device is None:
        return "tensorrt needs a CUDA device and torch sees none"
    return None


def choose_backend(requested: str = "auto", caps: Capabilities | None = None) -> BackendChoice:
    """Resolve ``requested`` (one of :data:`BACKENDS`) to a backend and device.

    Args:
        requested: ``"auto"`` or an explicit backend name.
        caps: the machine to decide for; probed with :func:`probe_capabilities` when ``None``.

    Raises:
        InputError: ``requested`` is not a known backend name.
        BackendUnavailableError: an explicitly requested backend cannot run on this machine.
    """
    if requested not in BACKENDS:
        raise InputError("backend", f"one of {', '.join(map(repr, BACKENDS))}", requested)
    if caps is None:
        caps = probe_capabilities()
    gpu = caps.cuda_device

    if requested == "tensorrt":
        missing = _tensorrt_missing(caps)
        if missing:
            raise BackendUnavailableError("tensorrt", missing)
        return BackendChoice(
            "tensorrt", "cuda", f"requested; TensorRT {caps.tensorrt_version} on {gpu}"
        )
    if requested == "onnxruntime":
        if caps.onnxruntime_version is None:
            raise BackendUnavailableError("onnxruntime", "onnxruntime is not installed")
        if caps.onnxruntime_cuda:
            return BackendChoice(
                "onnxruntime", "cuda", f"requested; CUDA execution provider on {gpu}"
            )
        return BackendChoice("onnxruntime", "cpu", "requested; no CUDA execution provider, CPU")
    if requested == "torch":
        if gpu is not None:
            return BackendChoice("torch", "cuda", f"requested; eager PyTorch on {gpu}")
        return BackendChoice("torch", "cpu", "requested; eager PyTorch on CPU (no CUDA device)")

    # auto: walk the preference order, remembering why each faster backend was passed over.
    skipped: list[str] = []
    missing = _tensorrt_missing(caps)
    if missing is None:
        return BackendChoice("tensorrt", "cuda", f"TensorRT {caps.tensorrt_version} on {gpu}")
    skipped.append(missing)
    if caps.onnxruntime_cuda:
        return BackendChoice(
            "onnxruntime", "cuda", f"CUDA execution provider on {gpu}; " + "; ".join(skipped)
        )
    if gpu is None:
        skipped.append("no CUDA device visible to torch")
    elif caps.onnxruntime_version is not None:
        skipped.append("onnxruntime has no CUDAExecutionProvider (install onnxruntime-gpu)")
    if gpu is not None:
        return BackendChoice("torch", "cuda", f"eager PyTorch on {gpu}; " + "; ".join(skipped))
    if caps.onnxruntime_version is not None:
        return BackendChoice("onnxruntime", "cpu", "CPU execution provider; " + "; ".join(skipped))
    skipped.append("onnxruntime is not installed")
    return BackendChoice("torch", "cpu", "eager PyTorch on CPU; " + "; ".join(skipped))
