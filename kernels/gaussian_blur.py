"""Gaussian blur equal to ``cv2.GaussianBlur(..., borderType=cv2.BORDER_REFLECT_101)``.

Math: a separable filter with OpenCV's taps (:mod:`kernels.gaussian_weights`), ``kx`` of size
``kw`` and sigma ``sigma_x``, ``ky`` of size ``kh`` and sigma ``sigma_y``, borders reflect-101.
OpenCV's special cases are reproduced:

- ``sigma <= 0`` derives sigma from the kernel size (``0.15 * k + 0.35``), and for k in
  {1, 3, 5, 7, 9} uses OpenCV's fixed tables instead of a sampled Gaussian;
- ``sigma_y <= 0`` takes ``sigma_x``;
- an image of height 1 (width 1) is filtered with ``kh = 1`` (``kw = 1``); 1x1 is a copy;
- uint8 images go through OpenCV's bit-exact fixed-point path: integer taps with 8 fractional
  bits, ``(sum_j ky_j * sum_i kx_i * x + 2^15) >> 16``: the Triton and torch paths are
  *bit-identical* to OpenCV for uint8, not merely within 1 LSB;
- float images: float32 taps, fp32 accumulation (OpenCV accumulates in fp32 too): within
  ~1e-6 of OpenCV for data in [0, 1]. float16 is computed in fp32 and rounded once.

Bytes moved per pixel and channel (Triton path): 1 read + 1 write of the element (uint8: 2 B,
fp16: 4 B, fp32: 8 B), the halo re-reads hitting cache.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import cv2
import torch

from kernels.dispatch import Impl, resolve_impl
from kernels.errors import InputError
from kernels.gaussian_weights import gaussian_weights, gaussian_weights_fixed_point
from kernels.opencv_bridge import apply_per_image
from kernels.separable_filter import FLOAT, GAUSS_U8, separable_filter, separable_filter_ref
from kernels.validation import check_image, check_odd_ksize

__all__ = ["gaussian_blur", "gaussian_blur_ref"]

DTYPES = (torch.uint8, torch.float16, torch.float32)


def _check_sigma(sigma: object) -> tuple[float, float]:
    """``sigma`` -> (sigma_y, sigma_x) with OpenCV's ``sigma_y <= 0 -> sigma_x`` rule."""
    expected = "a finite float or a pair (sigma_y, sigma_x) of finite floats"
    pair = sigma if isinstance(sigma, Sequence) and not isinstance(sigma, str) else (sigma, sigma)
    if len(pair) != 2 or not all(
        isinstance(s, (int, float)) and not isinstance(s, bool) and math.isfinite(s) for s in pair
    ):
        raise InputError("sigma", expected, sigma)
    sigma_y, sigma_x = float(pair[0]), float(pair[1])
    return (sigma_y if sigma_y > 0 else sigma_x), sigma_x


def _taps(
    x: torch.Tensor, kh: int, kw: int, sigma_y: float, sigma_x: float
) -> tuple[torch.Tensor, torch.Tensor, int]:
    """(kx, ky, mode) on x's device, after OpenCV's size-1 rule."""
    _, _, h, w = x.shape
    kh, kw = (1 if h == 1 else kh), (1 if w == 1 else kw)
    if x.dtype == torch.uint8:
        kx = torch.tensor(gaussian_weights_fixed_point(kw, sigma_x), dtype=torch.int32)
        ky = torch.tensor(gaussian_weights_fixed_point(kh, sigma_y), dtype=torch.int32)
        mode = GAUSS_U8
    else:
        kx = torch.tensor(gaussian_weights(kw, sigma_x), dtype=torch.float32)
        ky = torch.tensor(gaussian_weights(kh, sigma_y), dtype=torch.float32)
        mode = FLOAT
    return kx.to(x.device), ky.to(x.device), mode


def gaussian_blur(
    x: torch.Tensor,
    ksize: int | tuple[int, int],
    sigma: float | tuple[float, float] = 0.0,
    *,
    impl: Impl = "auto",
) -> torch.Tensor:
    """Gaussian blur of every channel, equal to OpenCV's ``GaussianBlur`` with reflect-101.

    Args:
        x: (N, C, H, W) uint8, float16 or float32, any strides (read in place).
        ksize: odd kernel size, or (kh, kw), each odd and >= 1.
        sigma: standard deviation in pixels, or (sigma_y, sigma_x); ``<= 0`` derives it from the
            kernel size as OpenCV does (``sigma_y <= 0`` takes ``sigma_x``).
        impl: ``"auto"`` (Triton on CUDA, OpenCV on CPU), ``"triton"``, ``"torch"``, ``"opencv"``.

    Returns:
        (N, C, H, W) tensor of x's dtype: x's memory format for triton/torch, channels-last for
        opencv (the values are the same).
    """
    check_image("x", x, dtypes=DTYPES)
    kh, kw = check_odd_ksize("ksize", ksize)
    sigma_y, sigma_x = _check_sigma(sigma)
    path = resolve_impl(impl, x.device, has_opencv=True)
    if path == "opencv":
        return apply_per_image(
            x,
            lambda src, dst: cv2.GaussianBlur(
                src, (kw, kh), sigmaX=sigma_x, sigmaY=sigma_y, dst=dst,
                borderType=cv2.BORDER_REFLECT_101,
            ),
        )  # fmt: skip
    kx, ky, mode = _taps(x, kh, kw, sigma_y, sigma_x)
    if kx.numel() == 1 and ky.numel() == 1:
        return x.clone()
    if path == "torch":
        return separable_filter_ref(x, kx, ky, mode)
    return separable_filter(x, kx, ky, mode)


def gaussian_blur_ref(
    x: torch.Tensor, ksize: int | tuple[int, int], sigma: float | tuple[float, float] = 0.0
) -> torch.Tensor:
    """Plain-PyTorch reference of :func:`gaussian_blur` (same taps, gather-based filter)."""
    kh, kw = check_odd_ksize("ksize", ksize)
    sigma_y, sigma_x = _check_sigma(sigma)
    kx, ky, mode = _taps(x, kh, kw, sigma_y, sigma_x)
    return separable_filter_ref(x, kx, ky, mode)


@torch.library.custom_op("tryon::gaussian_blur", mutates_args=())
def _gaussian_blur_op(
    x: torch.Tensor, kh: int, kw: int, sigma_y: float, sigma_x: float, impl: str
) -> torch.Tensor:
    return gaussian_blur(x, (kh, kw), (sigma_y, sigma_x), impl=impl).contiguous(
        memory_format=torch.contiguous_format
    )


@_gaussian_blur_op.register_fake
def _(x: torch.Tensor, kh: int, kw: int, sigma_y: float, sigma_x: float, impl: str):
    return torch.empty(x.shape, dtype=x.dtype, device=x.device)
