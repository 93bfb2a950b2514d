"""``skin_mask`` (Cb-Cr ellipse, conversion fused) on 1080p uint8 frames, per implementation:
GB/s and fraction of peak bandwidth.

Implementations: the ``skin_mask_ref`` baseline, ``impl="auto"``, OpenCV's conversion through the
wrapper (CPU), the compiled Triton kernel (CUDA). Bytes: 3 bytes read and 1 (bool) written per
pixel.
"""

from __future__ import annotations

import pytest
import torch

import kernels
from bench.conftest import call_impl, frame, impl_params, nbytes


@pytest.mark.parametrize("impl", impl_params(opencv=True))
def test_skin_mask_u8_1080p(measure, impl):
    x = frame(torch.uint8)  # (1, 3, 1080, 1920) channels-last
    run = call_impl(kernels.skin_mask, kernels.skin_mask_ref, impl, x)
    out = run()  # (1, 1, 1080, 1920) bool
    measure(
        run,
        bytes_moved=nbytes(x, out),
        group="skin_mask uint8 1080p",
        op="skin_mask",
        impl=impl,
        shape=x.shape,
        dtype=x.dtype,
    )
