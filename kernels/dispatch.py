"""Choosing the implementation of an image op: ``impl="auto" | "triton" | "torch" | "opencv"``.

- ``"auto"``: the Triton kernel for CUDA tensors; on CPU the fastest correct path, OpenCV where
  the op has one (filters), plain torch otherwise.
- ``"triton"``: the Triton kernel. CUDA tensors run it compiled; CPU tensors only under Triton's
  interpreter (``TRITON_INTERPRET=1`` set before ``kernels`` was imported).
- ``"torch"``: the plain-PyTorch reference (``*_ref``), on any device.
- ``"opencv"``: OpenCV on host memory; CPU tensors only.
"""

from __future__ import annotations

from typing import Literal

import torch

from kernels.errors import BackendUnavailableError, InputError
from kernels.triton_mode import interpreter_requested

__all__ = ["Impl", "IMPLS", "resolve_impl"]

Impl = Literal["auto", "triton", "torch", "opencv"]
IMPLS = ("auto", "triton", "torch", "opencv")


def resolve_impl(impl: str, device: torch.device, *, has_opencv: bool) -> str:
    """Resolve ``impl`` for tensors on ``device``; raise before any work if it cannot run.

    Args:
        impl: what the caller asked for (one of :data:`IMPLS`).
        device: the device of the op's tensors.
        has_opencv: whether the op has an OpenCV path.

    Returns:
        ``"triton"``, ``"torch"`` or ``"opencv"``.
    """
    allowed = IMPLS if has_opencv else tuple(i for i in IMPLS if i != "opencv")
    if impl not in allowed:
        raise InputError("impl", f"one of {', '.join(map(repr, allowed))}", impl)
    cuda = device.type == "cuda"
    if impl == "auto":
        if cuda:
            return "triton"
        return "opencv" if has_opencv else "torch"
    if impl == "triton" and not cuda and not interpreter_requested():
        raise BackendUnavailableError(
            "triton",
            f"tensors are on {device} and Triton kernels run on CPU tensors only in the "
            "interpreter: set TRITON_INTERPRET=1 before importing kernels, or use CUDA tensors",
        )
    if impl == "opencv" and cuda:
        raise InputError("impl", "'opencv' only for CPU tensors (use 'auto' or 'triton' on CUDA)")
    return impl
