"""``box_blur`` on 1080p uint8 frames, per implementation, whole frame and masked (the blend
fused): GB/s and fraction of peak bandwidth.

Implementations: the ``box_blur_ref`` baseline, ``impl="auto"``, OpenCV through the wrapper
(CPU), the compiled Triton kernel (CUDA). On CPU, ``auto`` must cost no more than ``cv2.blur``
called directly (``test_box_blur_auto_vs_opencv_1080p``, interleaved in one run).

Bytes: one read and one write of each element, plus one read of the fp32 mask when masked.
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
    frame,
    impl_params,
    nbytes,
)

RATIO_LIMIT = 1.15  # auto / OpenCV direct, median of interleaved samples; the rest is timer noise


@pytest.mark.parametrize("impl", impl_params(opencv=True))
@pytest.mark.parametrize("masked", [False, True], ids=["full", "masked"])
def test_box_blur_5x5_u8_1080p(measure, impl, masked):
    x = frame(torch.uint8)  # (1, 3, 1080, 1920) channels-last
    mask = frame(torch.float32, channels=1, seed=1) if masked else None  # (1, 1, 1080, 1920)
    run = call_impl(kernels.box_blur, kernels.box_blur_ref, impl, x, 5, mask=mask)
    out = run()
    measure(
        run,
        bytes_moved=nbytes(x, out, mask),
        group=f"box_blur 5x5 uint8 1080p {'masked' if masked else 'full frame'}",
        op="box_blur",
        impl=impl,
        shape=x.shape,
        dtype=x.dtype,
        ksize=5,
        masked=masked,
    )


@pytest.mark.skipif(DEVICE.type != "cpu", reason="the OpenCV comparison is the CPU path")
def test_box_blur_auto_vs_opencv_1080p(benchmark, bench_quick):
    """``impl="auto"`` on CPU costs no more than ``cv2.blur`` called directly on the same HWC
    array: medians of interleaved samples in one run, as a ratio."""
    x = frame(torch.uint8)  # (1, 3, 1080, 1920) channels-last
    hwc = x[0].permute(1, 2, 0).numpy()  # the frame's own memory, no copy
    assert_auto_within_opencv(
        benchmark,
        lambda: kernels.box_blur(x, 5),
        lambda: cv2.blur(hwc, (5, 5), borderType=cv2.BORDER_REFLECT_101),
        limit=RATIO_LIMIT,
        rounds=20 if bench_quick else 40,
        op="box_blur",
        shape=list(x.shape),
        dtype="uint8",
        ksize=5,
    )
