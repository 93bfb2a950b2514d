"""RGB -> HSI colour conversion (Gonzalez & Woods), with the lip-sync seed's weighted hue.

Per pixel, with R, G, B in [0, 1] (uint8 input is divided by 255):

    I = (R + G + B) / 3
    S = 1 - 3 * min(R, G, B) / (R + G + B)          (S = 0 where R + G + B == 0)
    theta = arccos(clamp(num / den, -1, 1))          (degrees, in [0, 180])
        num = 0.5 * ((R - G) + (R - B))
        den = sqrt((R - G)^2 + w * (R - B) * (G - B))
    H = theta if B <= G else 360 - theta             (H = 0 where den == 0: grey pixels)

``w = red_weight``. With ``w = 1`` this is the textbook formula. The seed (a lip-sync patent,
"002") adds a term to the *denominator* of the hue angle to make R more sensitive relative to B
(red lips get a larger H); its exact formula was lost, so the weight of the ``(R - B) * (G - B)``
term in the denominator is the parameter ``w``, and that is the only place it enters. ``den^2``
is a positive definite quadratic form in ``(R - G, R - B)`` exactly when ``0 < w < 4``, so only
grey pixels (R == G == B) have ``den == 0``; ``red_weight`` must lie in that open interval. For
``w != 1``, ``|num| > den`` happens for some colours: the arccos argument is then clamped, giving
theta = 0 or 180.

How it is evaluated (kernel and reference alike): arccos near +-1 loses half the digits of its
argument in fp32, so theta is computed as ``atan2(y, num)`` with
``y = sqrt(max(den^2 - num^2, 0))``, which equals ``arccos(clamp(num / den, -1, 1))`` exactly,
and ``den^2 - num^2`` is taken in the factored, cancellation-free form

    den^2 - num^2 = (G - B) * ((4w - 1) * (R - B) - 3 * (R - G)) / 4

(for ``w = 1``: ``3/4 (G - B)^2``, the classic ``atan2(sqrt(3) (G - B), 2R - G - B)``). Triton's
interpreter has no ``acos``/``atan2`` (``libdevice.acos`` compiles for CUDA but returns nothing
under ``TRITON_INTERPRET=1``), so the kernel uses :func:`atan2_upper`, a Cephes ``atanf``
polynomial (a few fp32 ulp), in plain arithmetic that runs identically compiled and interpreted.
H is wrapped to [0, 360): a result that rounds to 360 becomes 0.

Memory per pixel: reads 3 channels (3 B uint8, 6 B fp16, 12 B fp32), writes 12 B (3 x fp32).
The input is read in place through its strides (NCHW, channels_last, views); the output is a
fresh contiguous (N, 3, H, W) float32 tensor.
"""

from __future__ import annotations

import math

import torch
import triton
import triton.language as tl

from kernels.aot import register_aot
from kernels.dispatch import Impl, resolve_impl
from kernels.errors import InputError
from kernels.validation import check_image

__all__ = ["rgb_to_hsi", "rgb_to_hsi_ref", "atan2_upper", "RED_WEIGHT_RANGE"]

RED_WEIGHT_RANGE = (0.0, 4.0)  # open interval where den^2 is positive definite
_DTYPES = (torch.uint8, torch.float16, torch.float32)
_BLOCK = 1024
_NUM_WARPS = 4
_RAD_TO_DEG = 180.0 / math.pi


@triton.jit
def atan2_upper(y, x):
    """Device helper: ``atan2(y, x)`` in radians for ``y >= 0`` (result in [0, pi]); 0 at (0, 0).

    Reduces to ``t = min(|x|, y) / max(|x|, y)`` in [0, 1], then Cephes ``atanf``: above
    tan(pi/8) use ``pi/4 + atan((t - 1) / (t + 1))``, and an odd degree-9 polynomial on
    [-tan(pi/8), tan(pi/8)]; then unfolds the octant.
    """
    ax = tl.abs(x)
    hi = tl.maximum(ax, y)
    lo = tl.minimum(ax, y)
    t = lo / tl.where(hi > 0, hi, 1.0)
    big = t > 0.41421356237309503
    u = tl.where(big, (t - 1.0) / (t + 1.0), t)
    z = u * u
    p = (((8.05374449538e-2 * z - 1.38776856032e-1) * z + 1.99777106478e-1) * z) - 3.33329491539e-1
    a = p * z * u + u
    a = tl.where(big, a + 0.7853981633974483, a)
    a = tl.where(y > ax, 1.5707963267948966 - a, a)
    return tl.where(x < 0, 3.141592653589793 - a, a)


@triton.jit
def _rgb_to_hsi_kernel(
    x_ptr,
    stride_xn,
    stride_xc,
    stride_xh,
    stride_xw,
    out_ptr,
    stride_on,
    stride_oc,
    stride_oh,
    stride_ow,
    N,
    H,
    W,
    red_weight,
    IS_U8: tl.constexpr,
    BLOCK: tl.constexpr,
):
    # one program = BLOCK consecutive pixels of the flattened (N, H, W) grid
    pid = tl.program_id(0).to(tl.int64)
    idx = pid * BLOCK + tl.arange(0, BLOCK)
    w = idx % W
    nh = idx // W
    h = nh % H
    n = nh // H
    mask = n < N

    x_pix = x_ptr + n * stride_xn + h * stride_xh + w * stride_xw
    r = tl.load(x_pix, mask=mask, other=0).to(tl.float32)
    g = tl.load(x_pix + stride_xc, mask=mask, other=0).to(tl.float32)
    b = tl.load(x_pix + 2 * stride_xc, mask=mask, other=0).to(tl.float32)
    if IS_U8:
        r = r / 255.0
        g = g / 255.0
        b = b / 255.0

    total = r + g + b
    intensity = total / 3.0
    mn = tl.minimum(tl.minimum(r, g), b)
    sat = tl.where(total > 0, 1.0 - 3.0 * mn / tl.where(total > 0, total, 1.0), 0.0)
    sat = tl.minimum(tl.maximum(sat, 0.0), 1.0)

    rg = r - g
    rb = r - b
    gb = g - b
    num = 0.5 * (rg + rb)
    y2 = 0.25 * gb * ((4.0 * red_weight - 1.0) * rb - 3.0 * rg)  # den^2 - num^2
    theta = atan2_upper(tl.sqrt(tl.maximum(y2, 0.0)), num) * 57.29577951308232
    hue = tl.where(b <= g, theta, 360.0 - theta)
    hue = tl.where(hue >= 360.0, hue - 360.0, hue)

    o_pix = out_ptr + n * stride_on + h * stride_oh + w * stride_ow
    tl.store(o_pix, hue, mask=mask)
    tl.store(o_pix + stride_oc, sat, mask=mask)
    tl.store(o_pix + 2 * stride_oc, intensity, mask=mask)


for _name, _ty in (("u8", "*u8"), ("fp16", "*fp16"), ("fp32", "*fp32")):
    register_aot(
        _rgb_to_hsi_kernel,
        {
            "x_ptr": _ty,
            "stride_xn": "i32",
            "stride_xc": "i32",
            "stride_xh": "i32",
            "stride_xw": "i32",
            "out_ptr": "*fp32",
            "stride_on": "i32",
            "stride_oc": "i32",
            "stride_oh": "i32",
            "stride_ow": "i32",
            "N": "i32",
            "H": "i32",
            "W": "i32",
            "red_weight": "fp32",
            "IS_U8": "constexpr",
            "BLOCK": "constexpr",
        },
        {"IS_U8": _ty == "*u8", "BLOCK": _BLOCK},
        variant=_name,
        num_warps=_NUM_WARPS,
    )


def _check_red_weight(red_weight: object) -> float:
    lo, hi = RED_WEIGHT_RANGE
    if (
        isinstance(red_weight, bool)
        or not isinstance(red_weight, (int, float))
        or not math.isfinite(red_weight)
        or not lo < red_weight < hi
    ):
        raise InputError(
            "red_weight",
            f"a finite number in the open interval ({lo:g}, {hi:g}) (1.0 = textbook HSI)",
            red_weight,
        )
    return float(red_weight)


def rgb_to_hsi(x: torch.Tensor, *, red_weight: float = 1.0, impl: Impl = "auto") -> torch.Tensor:
    """Convert RGB to HSI: H in degrees [0, 360), S and I in [0, 1].

    Args:
        x: (N, 3, H, W) RGB, uint8 (0..255) or float16/float32 in [0, 1], any strides.
        red_weight: weight ``w`` of ``(R - B)(G - B)`` in the hue denominator, in (0, 4);
            1.0 is the textbook formula (see the module docstring).
        impl: ``"auto"`` (Triton on CUDA, torch on CPU), ``"triton"`` or ``"torch"``; there is
            no OpenCV path (OpenCV has HSV, not HSI).

    Returns:
        A new (N, 3, H, W) float32 tensor (H, S, I channels) on ``x``'s device.

    Raises:
        InputError: bad ``x``, ``red_weight`` or ``impl`` (before any work).
    """
    check_image("x", x, dtypes=_DTYPES, channels=3)
    w = _check_red_weight(red_weight)
    path = resolve_impl(impl, x.device, has_opencv=False)
    if path == "torch":
        return rgb_to_hsi_ref(x, red_weight=w)
    n, _, h, wd = x.shape
    out = torch.empty((n, 3, h, wd), dtype=torch.float32, device=x.device)  # (N, 3, H, W)
    grid = (triton.cdiv(n * h * wd, _BLOCK),)
    _rgb_to_hsi_kernel[grid](
        x,
        *x.stride(),
        out,
        *out.stride(),
        n,
        h,
        wd,
        w,
        IS_U8=x.dtype == torch.uint8,
        BLOCK=_BLOCK,
        num_warps=_NUM_WARPS,
    )
    return out


def rgb_to_hsi_ref(x: torch.Tensor, *, red_weight: float = 1.0) -> torch.Tensor:
    """Plain-PyTorch reference of :func:`rgb_to_hsi` (fp32 math, same formulation)."""
    xf = x.float() / 255.0 if x.dtype == torch.uint8 else x.float()  # (N, 3, H, W)
    r, g, b = xf.unbind(1)  # (N, H, W) each
    total = r + g + b
    intensity = total / 3.0
    mn = torch.minimum(torch.minimum(r, g), b)
    safe_total = torch.where(total > 0, total, torch.ones_like(total))
    sat = torch.where(total > 0, 1.0 - 3.0 * mn / safe_total, torch.zeros_like(total))
    sat = sat.clamp(0.0, 1.0)
    rg, rb, gb = r - g, r - b, g - b
    num = 0.5 * (rg + rb)
    y2 = 0.25 * gb * ((4.0 * red_weight - 1.0) * rb - 3.0 * rg)  # den^2 - num^2
    theta = torch.atan2(y2.clamp_min(0.0).sqrt(), num) * _RAD_TO_DEG  # atan2(0, 0) == 0
    hue = torch.where(b <= g, theta, 360.0 - theta)
    hue = torch.where(hue >= 360.0, hue - 360.0, hue)
    return torch.stack((hue, sat, intensity), dim=1)  # (N, 3, H, W)


@torch.library.custom_op("tryon::rgb_to_hsi", mutates_args=())
def _rgb_to_hsi_op(x: torch.Tensor, red_weight: float = 1.0, impl: str = "auto") -> torch.Tensor:
    return rgb_to_hsi(x, red_weight=red_weight, impl=impl)


@_rgb_to_hsi_op.register_fake
def _(x: torch.Tensor, red_weight: float = 1.0, impl: str = "auto") -> torch.Tensor:
    n, _, h, w = x.shape
    return x.new_empty((n, 3, h, w), dtype=torch.float32)
