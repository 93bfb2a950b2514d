"""``composite`` (seed 000's two-stage mask compositing) on 1080p frames, per implementation:
GB/s and fraction of peak bandwidth.

Implementations: the ``composite_ref`` baseline, ``impl="auto"`` (the torch path on CPU), the
compiled Triton kernel (CUDA; goal >= 80 % of bandwidth). No OpenCV path exists.
Cases: fp16 in -> display-ready uint8 NHWC out (the runtime's), the same with the masks
feathered (Gaussian sigma 2 in the same pass), fp32 in and out.

Bytes: one read of the three images and two masks, one write of the output.
"""

from __future__ import annotations

import pytest
import torch

import kernels
from bench.conftest import call_impl, dtype_name, frame, impl_params, nbytes


@pytest.mark.parametrize("impl", impl_params(opencv=False))
@pytest.mark.parametrize(
    "dtype, out_dtype, layout, feather",
    [
        (torch.float16, torch.uint8, "nhwc", 0.0),
        (torch.float16, torch.uint8, "nhwc", 2.0),
        (torch.float32, torch.float32, "nchw", 0.0),
    ],
    ids=["f16-u8nhwc", "f16-u8nhwc-feather2", "f32-f32"],
)
def test_composite_1080p(measure, impl, dtype, out_dtype, layout, feather):
    cloth, rendered, background = (frame(dtype, seed=s) for s in (0, 1, 2))  # (1, 3, H, W)
    cloth_mask, background_mask = (frame(dtype, channels=1, seed=s) for s in (3, 4))  # (1, 1, H, W)
    args = (cloth, rendered, cloth_mask, background, background_mask)
    kwargs = dict(feather=feather, out_dtype=out_dtype, out_layout=layout)
    run = call_impl(kernels.composite, kernels.composite_ref, impl, *args, **kwargs)
    out = run()
    case = f"{dtype_name(dtype)} -> {dtype_name(out_dtype)} {layout}"
    case += f", feather {feather:g}" if feather else ""
    measure(
        run,
        bytes_moved=nbytes(*args, out),
        group=f"composite 1080p {case}",
        op="composite",
        impl=impl,
        shape=cloth.shape,
        dtype=dtype,
        out_dtype=out_dtype,
        out_layout=layout,
        feather=feather,
    )
