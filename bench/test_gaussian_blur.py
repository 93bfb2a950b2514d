"""``gaussian_blur`` on 1080p frames, per implementation: GB/s and fraction of peak bandwidth.

Implementations: the ``gaussian_blur_ref`` baseline, ``impl="auto"``, OpenCV through the wrapper
(CPU), the compiled Triton kernel (CUDA; goal >= 60 % of bandwidth for 5x5 uint8). On CPU,
``auto`` must cost no more than ``cv2.GaussianBlur`` called directly (asserted in
``test_gaussian_blur_auto_vs_opencv_1080p``, interleaved in one run).

Bytes: one read and one write of each element (the halo re-reads hit cache).
"""

from __future__ import annotations

import cv2
import pytest
import torch

import kernels
from bench.conftest import (
    DEVICE,
    assert_auto_within_opencv,
    call_impl,
    dtype_name,
    frame,
    impl_params,
    nbytes,
)

RATIO_LIMIT = 1.15  # auto / OpenCV direct, median of interleaved samples; the rest is timer noise


@pytest.mark.parametrize("impl", impl_params(opencv=True))
@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32], ids=["u8", "f32"])
def test_gaussian_blur_5x5_1080p(measure, impl, dtype):
    x = frame(dtype)  # (1, 3, 1080, 1920) channels-last
    run = call_impl(kernels.gaussian_blur, kernels.gaussian_blur_ref, impl, x, 5)
    out = run()
    measure(
        run,
        bytes_moved=nbytes(x, out),
        group=f"gaussian_blur 5x5 {dtype_name(dtype)} 1080p",
        op="gaussian_blur",
        impl=impl,
        shape=x.shape,
        dtype=x.dtype,
        ksize=5,
    )


@pytest.mark.skipif(DEVICE.type != "cpu", reason="the OpenCV comparison is the CPU path")
def test_gaussian_blur_auto_vs_opencv_1080p(benchmark, bench_quick):
    """``impl="auto"`` on CPU costs no more than ``cv2.GaussianBlur`` called directly on the same
    HWC array: medians of interleaved samples in one run, as a ratio."""
    x = frame(torch.uint8)  # (1, 3, 1080, 1920) channels-last
    hwc = x[0].permute(1, 2, 0).numpy()  # the frame's own memory, no copy
    assert_auto_within_opencv(
        benchmark,
        lambda: kernels.gaussian_blur(x, 5),
        lambda: cv2.GaussianBlur(hwc, (5, 5), 0, borderType=cv2.BORDER_REFLECT_101),
        limit=RATIO_LIMIT,
        rounds=20 if bench_quick else 40,
        op="gaussian_blur",
        shape=list(x.shape),
        dtype="uint8",
        ksize=5,
    )
