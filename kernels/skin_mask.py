"""Skin mask: True where a pixel's (Cb, Cr) lies inside an elliptical skin-colour cluster.

Per pixel, with Cb, Cr on the 0..255 scale (:mod:`kernels.rgb_to_ycbcr`; uint8 input uses
OpenCV's exact 8-bit values, float input in [0, 1] uses the fp32 float Cb, Cr times 255)::

    [x]   [ cos t   sin t] [Cb - cb0]
    [y] = [-sin t   cos t] [Cr - cr0]
    skin = (x - ecx)^2 / a^2 + (y - ecy)^2 / b^2 <= 1

Defaults are the elliptical skin model of R.-L. Hsu, M. Abdel-Mottaleb and A. K. Jain, "Face
detection in color images", IEEE TPAMI 24(5):696-706, 2002: centre (cb0, cr0) = (109.38, 152.02),
t = 2.53 rad, offset (ecx, ecy) = (1.60, 2.41), axes (a, b) = (25.39, 14.03). The paper applies
the ellipse after a luma-dependent nonlinear transform of (Cb, Cr) (its eq. 5-7, which widens
the cluster toward dark and bright luma); that transform is omitted here, so the mask is the
plain Cb-Cr ellipse.

The YCbCr conversion is fused: the kernel reads R, G, B and writes only the mask. Memory traffic
per pixel: reads 3 elements of the input's dtype (3 bytes uint8, 6 float16, 12 float32), writes
1 byte (bool). The ellipse is evaluated in fp32 in the same operation order in the kernel and the
reference; a compiled GPU kernel may contract to FMA, which can flip pixels lying within fp32
rounding of the ellipse boundary.

``impl="auto"``: the Triton kernel on CUDA; on CPU torch, except OpenCV where
:func:`kernels.rgb_to_ycbcr.opencv_is_faster` says the conversion is faster there (uint8 and
interleaved float images), followed by the ellipse test in torch.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import triton
import triton.language as tl

from kernels.aot import register_aot
from kernels.dispatch import Impl, resolve_impl
from kernels.errors import InputError
from kernels.rgb_to_ycbcr import (
    DTYPES,
    check_grid,
    launch_config,
    opencv_is_faster,
    rgb_row,
    rgb_to_ycbcr_opencv,
    rgb_to_ycbcr_ref,
    ycbcr_pixels,
)
from kernels.validation import check_image

__all__ = ["skin_mask", "skin_mask_ref", "HSU_CENTER", "HSU_AXES", "HSU_ANGLE", "HSU_OFFSET"]

# Hsu, Abdel-Mottaleb & Jain (TPAMI 2002), on the 0..255 Cb / Cr scale.
HSU_CENTER = (109.38, 152.02)  # (cb0, cr0)
HSU_AXES = (25.39, 14.03)  # (a, b)
HSU_ANGLE = 2.53  # radians
HSU_OFFSET = (1.60, 2.41)  # (ecx, ecy)


@triton.jit
def _skin_mask_kernel(
    x_ptr,
    stride_xn,
    stride_xc,
    stride_xh,
    stride_xw,
    out_ptr,
    stride_on,
    stride_oh,
    stride_ow,
    H,
    W,
    cb0,
    cr0,
    cos_t,
    sin_t,
    ecx,
    ecy,
    inv_a2,
    inv_b2,
    IS_UINT8: tl.constexpr,
    BLOCK_W: tl.constexpr,
):
    r, g, b, n, h, cols, valid = rgb_row(
        x_ptr, stride_xn, stride_xc, stride_xh, stride_xw, H, W, BLOCK_W
    )

    _, cb, cr = ycbcr_pixels(r, g, b, IS_UINT8)
    if IS_UINT8:
        cbf = cb.to(tl.float32)
        crf = cr.to(tl.float32)
    else:
        cbf = cb * 255.0
        crf = cr * 255.0

    dcb = cbf - cb0
    dcr = crf - cr0
    ex = (cos_t * dcb + sin_t * dcr) - ecx
    ey = (cos_t * dcr - sin_t * dcb) - ecy
    inside = (ex * ex * inv_a2 + ey * ey * inv_b2) <= 1.0

    o_row = out_ptr + n * stride_on + h * stride_oh + cols * stride_ow
    tl.store(o_row, inside.to(tl.int8), mask=valid)


for _ty, _is_u8 in (("u8", True), ("fp16", False), ("fp32", False)):
    register_aot(
        _skin_mask_kernel,
        {
            "x_ptr": f"*{_ty}",
            **{f"stride_x{d}": "i32" for d in "nchw"},
            "out_ptr": "*i8",
            **{f"stride_o{d}": "i32" for d in "nhw"},
            "H": "i32",
            "W": "i32",
            **{
                p: "fp32"
                for p in ("cb0", "cr0", "cos_t", "sin_t", "ecx", "ecy", "inv_a2", "inv_b2")
            },
        },
        {"IS_UINT8": _is_u8, "BLOCK_W": 1024},
        variant=_ty,
        num_warps=4,
    )


def _real_pair(name: str, value: object, *, positive: bool = False) -> tuple[float, float]:
    expected = "a pair of finite " + ("positive " if positive else "") + "numbers"
    if (
        not isinstance(value, Sequence)
        or isinstance(value, str)
        or len(value) != 2
        or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
    ):
        raise InputError(name, expected, value)
    pair = (float(value[0]), float(value[1]))
    if not all(math.isfinite(v) and (v > 0 or not positive) for v in pair):
        raise InputError(name, expected, value)
    return pair


def _ellipse_params(
    center: object, axes: object, angle: object, offset: object
) -> tuple[float, ...]:
    """Validated (cb0, cr0, cos_t, sin_t, ecx, ecy, 1/a^2, 1/b^2)."""
    cb0, cr0 = _real_pair("center", center)
    a, b = _real_pair("axes", axes, positive=True)
    if isinstance(angle, bool) or not isinstance(angle, (int, float)) or not math.isfinite(angle):
        raise InputError("angle", "a finite number (radians)", angle)
    ecx, ecy = _real_pair("offset", offset)
    t = float(angle)
    return cb0, cr0, math.cos(t), math.sin(t), ecx, ecy, 1.0 / (a * a), 1.0 / (b * b)


def skin_mask(
    x: torch.Tensor,
    *,
    center: tuple[float, float] = HSU_CENTER,
    axes: tuple[float, float] = HSU_AXES,
    angle: float = HSU_ANGLE,
    offset: tuple[float, float] = HSU_OFFSET,
    impl: Impl = "auto",
) -> torch.Tensor:
    """Boolean skin mask from the (Cb, Cr) ellipse test (see the module docstring).

    Args:
        x: (N, 3, H, W) RGB, uint8 or float16/float32 with values in [0, 1]; any strides.
        center: ellipse centre (cb0, cr0) on the 0..255 scale.
        axes: semi-axes (a, b), both > 0.
        angle: rotation t of the ellipse in radians.
        offset: (ecx, ecy), the ellipse centre's offset in the rotated frame.
        impl: ``"auto"``, ``"triton"``, ``"torch"`` or ``"opencv"`` (see :mod:`kernels.dispatch`).

    Returns:
        A fresh (N, 1, H, W) bool tensor, True for skin.

    Raises:
        InputError: a bad ``x``, ellipse parameter or ``impl``.
    """
    check_image("x", x, dtypes=DTYPES, channels=3)
    params = _ellipse_params(center, axes, angle, offset)
    path = resolve_impl(impl, x.device, has_opencv=True)
    if impl == "auto" and path == "opencv" and not opencv_is_faster(x):
        path = "torch"
    if path == "torch":
        return _ellipse_ref(rgb_to_ycbcr_ref(_as_compute(x)), params)
    if path == "opencv":
        return _ellipse_ref(rgb_to_ycbcr_opencv(_as_compute(x)), params)
    block_w, num_warps = launch_config(x.shape[3])
    grid = check_grid("x", x, block_w)
    n, _, h, w = x.shape
    out = torch.empty((n, 1, h, w), dtype=torch.bool, device=x.device)  # (N, 1, H, W)
    out_i8 = out.view(torch.int8)
    _skin_mask_kernel[grid](
        x,
        *x.stride(),
        out_i8,
        out_i8.stride(0),
        out_i8.stride(2),
        out_i8.stride(3),
        h,
        w,
        *params,
        IS_UINT8=x.dtype == torch.uint8,
        BLOCK_W=block_w,
        num_warps=num_warps,
    )
    return out


def _as_compute(x: torch.Tensor) -> torch.Tensor:
    """float16 is converted in fp32 (as the kernel does); uint8 and float32 are used as is."""
    return x.float() if x.dtype == torch.float16 else x


def _ellipse_ref(ycbcr: torch.Tensor, params: tuple[float, ...]) -> torch.Tensor:
    """Ellipse test on a (N, 3, H, W) Y, Cb, Cr tensor, fp32, in the kernel's operation order."""
    cb0, cr0, cos_t, sin_t, ecx, ecy, inv_a2, inv_b2 = params
    if ycbcr.dtype == torch.uint8:
        cb, cr = ycbcr[:, 1:2].float(), ycbcr[:, 2:3].float()
    else:
        cb, cr = ycbcr[:, 1:2].float() * 255.0, ycbcr[:, 2:3].float() * 255.0
    dcb = cb - cb0
    dcr = cr - cr0
    ex = (dcb * cos_t + dcr * sin_t) - ecx
    ey = (dcr * cos_t - dcb * sin_t) - ecy
    return (ex * ex * inv_a2 + ey * ey * inv_b2) <= 1.0  # (N, 1, H, W)


def skin_mask_ref(
    x: torch.Tensor,
    *,
    center: tuple[float, float] = HSU_CENTER,
    axes: tuple[float, float] = HSU_AXES,
    angle: float = HSU_ANGLE,
    offset: tuple[float, float] = HSU_OFFSET,
) -> torch.Tensor:
    """Plain-PyTorch reference: :func:`rgb_to_ycbcr_ref` (fp32 for float16), then the ellipse."""
    params = _ellipse_params(center, axes, angle, offset)
    return _ellipse_ref(rgb_to_ycbcr_ref(_as_compute(x)), params)


@torch.library.custom_op("tryon::skin_mask", mutates_args=())
def _skin_mask_op(
    x: torch.Tensor,
    center: list[float],
    axes: list[float],
    angle: float,
    offset: list[float],
    impl: str = "auto",
) -> torch.Tensor:
    return skin_mask(
        x, center=tuple(center), axes=tuple(axes), angle=angle, offset=tuple(offset), impl=impl
    )


@_skin_mask_op.register_fake
def _(
    x: torch.Tensor,
    center: list[float],
    axes: list[float],
    angle: float,
    offset: list[float],
    impl: str = "auto",
) -> torch.Tensor:
    n, _, h, w = x.shape
    return x.new_empty((n, 1, h, w), dtype=torch.bool)
