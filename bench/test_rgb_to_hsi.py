"""``rgb_to_hsi`` on 1080p uint8 frames, per implementation: GB/s and fraction of peak bandwidth.

Implementations: the ``rgb_to_hsi_ref`` baseline, ``impl="auto"`` (torch on CPU), the compiled
Triton kernel (CUDA). No OpenCV path (OpenCV has HSV, not HSI). Bytes: 3 bytes read and 3 fp32
(12 bytes) written per pixel.
"""

from __future__ import annotations

import pytest
import torch

import kernels
from bench.conftest import call_impl, frame, impl_params, nbytes


@pytest.mark.parametrize("impl", impl_params(opencv=False))
def test_rgb_to_hsi_u8_1080p(measure, impl):
    x = frame(torch.uint8)  # (1, 3, 1080, 1920) channels-last
    run = call_impl(kernels.rgb_to_hsi, kernels.rgb_to_hsi_ref, impl, x)
    out = run()  # (1, 3, 1080, 1920) float32
    measure(
        run,
        bytes_moved=nbytes(x, out),
        group="rgb_to_hsi uint8 1080p",
        op="rgb_to_hsi",
        impl=impl,
        shape=x.shape,
        dtype=x.dtype,
    )
