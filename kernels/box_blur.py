"""Normalized box (mean) filter equal to ``cv2.blur(..., borderType=cv2.BORDER_REFLECT_101)``,
optionally applied to a region only (e.g. a mean filter over a mouth region).

Math: ``blur(x)[y, x] = (1 / (kh * kw)) * sum over the kh x kw window`` with reflect-101
borders. OpenCV's integer paths for uint8 are reproduced bit for bit:

- window area ``d <= 256``: ``((s + delta) * scale) >> 23`` with OpenCV's ``delta``/``scale``
  for ``d`` (:func:`kernels.separable_filter.box_divisor_constants`), ``s`` the integer sum;
- ``d > 256``: ``round(s / d)``;
- float16/float32: fp32 taps ``1/kw``, ``1/kh`` and fp32 accumulation (OpenCV sums in double:
  the difference is ~1e-7 for data in [0, 1]).

With ``mask`` (N, 1, H, W) in [0, 1]: ``out = mask * blur(x) + (1 - mask) * x``, fused into the
same pass (uint8: computed in fp32 from the uint8 blur, rounded half up, clamped).

Bytes moved per pixel and channel (Triton path): 1 read + 1 write of the element, plus the mask
(2/4 bytes per pixel, shared by the channels) when given.
"""

from __future__ import annotations

import cv2
import torch

from kernels.dispatch import Impl, resolve_impl
from kernels.opencv_bridge import apply_per_image
from kernels.separable_filter import (
    BOX_U8_ROUND,
    BOX_U8_SHIFT,
    FLOAT,
    box_divisor_constants,
    masked_blend_ref,
    separable_filter,
    separable_filter_ref,
)
from kernels.validation import check_image, check_like, check_odd_ksize, check_unit_range

__all__ = ["box_blur", "box_blur_ref"]

DTYPES = (torch.uint8, torch.float16, torch.float32)
MASK_DTYPES = (torch.bool, torch.float16, torch.float32)


def _plan(x: torch.Tensor, kh: int, kw: int) -> tuple[torch.Tensor, torch.Tensor, int, int, int]:
    """(kx, ky, mode, div_delta, div_scale) on x's device."""
    if x.dtype != torch.uint8:
        kx = torch.full((kw,), 1.0 / kw, dtype=torch.float32, device=x.device)
        ky = torch.full((kh,), 1.0 / kh, dtype=torch.float32, device=x.device)
        return kx, ky, FLOAT, 0, 1
    kx = torch.ones(kw, dtype=torch.int32, device=x.device)
    ky = torch.ones(kh, dtype=torch.int32, device=x.device)
    area = kh * kw
    if area <= 256:
        return kx, ky, BOX_U8_SHIFT, *box_divisor_constants(area)
    return kx, ky, BOX_U8_ROUND, 0, area


def _mask_as_float(mask: torch.Tensor | None) -> torch.Tensor | None:
    return mask.to(torch.float32) if mask is not None and mask.dtype == torch.bool else mask


def box_blur(
    x: torch.Tensor,
    ksize: int | tuple[int, int],
    *,
    mask: torch.Tensor | None = None,
    impl: Impl = "auto",
) -> torch.Tensor:
    """Mean filter of every channel, equal to OpenCV's ``blur`` with reflect-101.

    Args:
        x: (N, C, H, W) uint8, float16 or float32, any strides (read in place).
        ksize: odd window size, or (kh, kw), each odd and >= 1.
        mask: optional (N, 1, H, W) bool/float16/float32 in [0, 1]: where to apply the blur
            (``mask * blur(x) + (1 - mask) * x``).
        impl: ``"auto"`` (Triton on CUDA, OpenCV on CPU), ``"triton"``, ``"torch"``, ``"opencv"``.

    Returns:
        (N, C, H, W) tensor of x's dtype: x's memory format for triton/torch, channels-last for
        opencv.
    """
    check_image("x", x, dtypes=DTYPES)
    kh, kw = check_odd_ksize("ksize", ksize)
    if mask is not None:
        check_image("mask", mask, dtypes=MASK_DTYPES, channels=1)
        check_like("mask", mask, "x", x, channels=1)
        check_unit_range("mask", mask)
    path = resolve_impl(impl, x.device, has_opencv=True)
    mask = _mask_as_float(mask)
    if path == "opencv":
        blurred = apply_per_image(
            x, lambda src, dst: cv2.blur(src, (kw, kh), dst=dst, borderType=cv2.BORDER_REFLECT_101)
        )
        return blurred if mask is None else masked_blend_ref(x, blurred, mask)
    kx, ky, mode, delta, scale = _plan(x, kh, kw)
    run = separable_filter_ref if path == "torch" else separable_filter
    return run(x, kx, ky, mode, mask=mask, div_delta=delta, div_scale=scale)


def box_blur_ref(
    x: torch.Tensor, ksize: int | tuple[int, int], *, mask: torch.Tensor | None = None
) -> torch.Tensor:
    """Plain-PyTorch reference of :func:`box_blur`: gather-based filter, then the blend."""
    kh, kw = check_odd_ksize("ksize", ksize)
    kx, ky, mode, delta, scale = _plan(x, kh, kw)
    return separable_filter_ref(
        x, kx, ky, mode, mask=_mask_as_float(mask), div_delta=delta, div_scale=scale
    )


@torch.library.custom_op("tryon::box_blur", mutates_args=())
def _box_blur_op(
    x: torch.Tensor, kh: int, kw: int, mask: torch.Tensor | None, impl: str
) -> torch.Tensor:
    return box_blur(x, (kh, kw), mask=mask, impl=impl).contiguous()


@_box_blur_op.register_fake
def _(x: torch.Tensor, kh: int, kw: int, mask: torch.Tensor | None, impl: str):
    return torch.empty(x.shape, dtype=x.dtype, device=x.device)
