"""``gradient_map`` (two zero-sum Laplacians, 3x3 then 5x5, in one pass) on a 1080p fp32
grayscale frame, per implementation: GB/s and fraction of peak bandwidth.

Implementations: the ``gradient_map_ref`` baseline, ``impl="auto"`` (OpenCV on CPU), two
``cv2.filter2D`` calls through the wrapper (CPU), the compiled Triton kernel (CUDA).
Bytes: one read of the input and one fp32 write per pixel (the intermediate stays on chip).
"""

from __future__ import annotations

import pytest
import torch

import kernels
from bench.conftest import call_impl, frame, impl_params, nbytes


@pytest.mark.parametrize("impl", impl_params(opencv=True))
def test_gradient_map_f32_1080p(measure, impl):
    gray = frame(torch.float32, channels=1)  # (1, 1, 1080, 1920)
    run = call_impl(kernels.gradient_map, kernels.gradient_map_ref, impl, gray, 3, 5)
    out = run()
    measure(
        run,
        bytes_moved=nbytes(gray, out),
        group="gradient_map 3+5 float32 1080p",
        op="gradient_map",
        impl=impl,
        shape=gray.shape,
        dtype=gray.dtype,
    )
