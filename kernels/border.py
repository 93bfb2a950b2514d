"""Reflect-101 border handling (OpenCV's ``BORDER_REFLECT_101``, the default of its filters).

Index ``i`` outside ``[0, n)`` is mirrored about the edge pixels without repeating them:
``... 2 1 | 0 1 2 ... n-1 | n-2 n-3 ...``, bouncing as often as needed (kernels wider than the
image), which is the closed form ``m = |i| mod 2(n-1); m if m < n else 2(n-1) - m``; ``n == 1``
maps everything to 0. Same as ``cv::borderInterpolate(i, n, BORDER_REFLECT_101)``.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

__all__ = ["reflect101", "reflect101_index_ref"]


@triton.jit
def reflect101(i, n):
    """Device helper: reflect-101 of integer tensor ``i`` into ``[0, n)``."""
    period = tl.maximum(2 * (n - 1), 1)
    m = tl.abs(i) % period
    return tl.where(m < n, m, period - m)


def reflect101_index_ref(i: torch.Tensor, n: int) -> torch.Tensor:
    """Reference of :func:`reflect101` on an int64 tensor of indices."""
    period = max(2 * (n - 1), 1)
    m = i.abs() % period
    return torch.where(m < n, m, period - m)
