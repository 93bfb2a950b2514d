"""``rgb_to_ycbcr`` on 1080p frames, per implementation: GB/s and fraction of peak bandwidth.

Implementations: the ``rgb_to_ycbcr_ref`` baseline, ``impl="auto"`` (on CPU: OpenCV for uint8
and channels-last float, as measured in the op's docstring), OpenCV through the wrapper (CPU), the
compiled Triton kernel (CUDA). Bytes: 3 elements read and 3 written per pixel.
"""

from __future__ import annotations

import pytest
import torch

import kernels
from bench.conftest import call_impl, dtype_name, frame, impl_params, nbytes


@pytest.mark.parametrize("impl", impl_params(opencv=True))
@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32], ids=["u8", "f32"])
def test_rgb_to_ycbcr_1080p(measure, impl, dtype):
    x = frame(dtype)  # (1, 3, 1080, 1920) channels-last
    run = call_impl(kernels.rgb_to_ycbcr, kernels.rgb_to_ycbcr_ref, impl, x)
    out = run()
    measure(
        run,
        bytes_moved=nbytes(x, out),
        group=f"rgb_to_ycbcr {dtype_name(dtype)} 1080p",
        op="rgb_to_ycbcr",
        impl=impl,
        shape=x.shape,
        dtype=x.dtype,
    )
