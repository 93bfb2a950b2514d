"""Running an OpenCV function over the images of an (N, C, H, W) CPU tensor.

OpenCV works on (H, W, C) arrays. A channels-last tensor already is one per image, so it is
handed over without a copy; other layouts are made contiguous once per image. The result is
written straight into a channels-last output tensor through ``dst=``, so OpenCV allocates
nothing. float16 goes through float32 (OpenCV's filters have no float16 path).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

__all__ = ["apply_per_image"]


def apply_per_image(
    x: torch.Tensor, fn: Callable[[np.ndarray, np.ndarray], object]
) -> torch.Tensor:
    """Call ``fn(src, dst)`` for each image: ``src`` (H, W, C) input, ``dst`` (H, W, C) output
    of the same dtype ((H, W) when C == 1, as OpenCV wants single-channel images).

    Returns:
        (N, C, H, W) tensor of x's dtype, channels-last in memory.
    """
    n, c, h, w = x.shape
    work = x.float() if x.dtype == torch.float16 else x
    out = torch.empty((n, h, w, c), dtype=work.dtype)  # (N, H, W, C)
    out_np = out.numpy()
    for i in range(n):
        src = np.ascontiguousarray(work[i].permute(1, 2, 0).numpy())  # (H, W, C)
        fn(src if c > 1 else src[:, :, 0], out_np[i] if c > 1 else out_np[i][:, :, 0])
    return out.permute(0, 3, 1, 2).to(x.dtype)
