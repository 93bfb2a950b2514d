"""How the Triton kernels in this package will execute on this machine.

Triton chooses between compiling a kernel for the GPU and running it in its CPU interpreter when
``@triton.jit`` runs, i.e. when a kernel module is imported, from the environment variable
``TRITON_INTERPRET``. So the mode is fixed per process: set ``TRITON_INTERPRET=1`` before the first
``import kernels....`` to run the kernels on CPU tensors (slow, semantics only: how the tests run
on machines without a GPU).
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from typing import Literal

__all__ = ["TritonStatus", "triton_status", "interpreter_requested"]

Mode = Literal["compiled", "interpreted", "unavailable"]


@dataclass(frozen=True)
class TritonStatus:
    """Where Triton kernels run in this process.

    Attributes:
        version: the installed Triton version, or ``None`` when Triton is not importable.
        mode: ``"compiled"`` (CUDA device, kernels JIT-compiled to PTX/cubin), ``"interpreted"``
            (``TRITON_INTERPRET=1``: kernels run in Triton's CPU interpreter on CPU tensors) or
            ``"unavailable"`` (the kernels' ``impl="auto"`` falls back to torch / OpenCV paths).
        reason: one line saying why.
    """

    version: str | None
    mode: Mode
    reason: str


def interpreter_requested() -> bool:
    """True when ``TRITON_INTERPRET=1`` is set in this process's environment."""
    return os.environ.get("TRITON_INTERPRET", "0") == "1"


def triton_status() -> TritonStatus:
    """Probe Triton and the CUDA device; imports torch and triton lazily, compiles nothing."""
    if importlib.util.find_spec("triton") is None:
        return TritonStatus(
            None,
            "unavailable",
            "triton is not installed (Linux only: pip install triton); "
            "kernels fall back to their torch / OpenCV paths",
        )
    import torch
    import triton

    version = triton.__version__
    if interpreter_requested():
        return TritonStatus(
            version,
            "interpreted",
            "TRITON_INTERPRET=1: kernels run in Triton's CPU interpreter (semantics only, slow)",
        )
    if torch.cuda.is_available():
        name = torch.cuda.get_device_name(0)
        major, minor = torch.cuda.get_device_capability(0)
        return TritonStatus(
            version, "compiled", f"CUDA device {name} (sm_{major}{minor}): kernels JIT-compile"
        )
    return TritonStatus(
        version,
        "unavailable",
        "no CUDA device and TRITON_INTERPRET is not 1: impl='auto' uses the torch / OpenCV "
        "paths; set TRITON_INTERPRET=1 before importing kernels to run them interpreted",
    )
