"""Gradient map of a grayscale image: two zero-sum kernels in a row, ``O = (I * A1) * A2``.

The lip-sync seed ("002") feeds this map as a 4th input channel: the grayscale of the
mouth-blurred frame correlated with a 3x3 zero-sum kernel ``A1``, then with a larger (5x5 or
7x7) zero-sum kernel ``A2`` that widens the receptive field. The seed's own kernels were lost
(it says any zero-sum pair with ``A1`` smaller than ``A2`` will do), so this module uses OpenCV's
Laplacians, all symmetric (correlation == convolution) and summing to zero:

- ``A1`` = :data:`LAPLACIAN_3` = ``[[0, 1, 0], [1, -4, 1], [0, 1, 0]]``
  (``cv2.Laplacian(ksize=1)``);
- ``A2`` = :data:`LAPLACIAN_5` or :data:`LAPLACIAN_7` = ``outer(ky, kx) + outer(kx, ky)`` with
  ``kx, ky = cv2.getDerivKernels(2, 0, ksize)`` (second derivative x binomial smoothing), i.e.
  exactly the kernels of ``cv2.Laplacian(ksize=5 | 7)``.

Each stage uses reflect-101 borders (``cv2.BORDER_REFLECT_101``) on *its own input*: the result
equals two successive ``cv2.filter2D(..., borderType=cv2.BORDER_REFLECT_101)`` calls on float32,
which is the ``impl="opencv"`` path. (The kernels being symmetric, stage 1's output keeps the
reflect-101 symmetry, so this also equals one 7x7 / 9x9 filter with ``A1 * A2``.) uint8 input
is divided by 255 (the kernel, being linear, scales its sum instead).

The fused Triton kernel does both stages in one launch: for each of the ``K x K`` taps of ``A2``
it evaluates stage 1 at the *reflected* stage-2 coordinate ``(refl(y + dy), refl(x + dx))``
(stage 2 reflects stage 1's output, not the input), from 5 loads (the non-zero taps of ``A1``,
each again reflected). That is ``5 K^2`` loads per pixel (125 for 5x5, 245 for 7x7), served from
L1/L2: DRAM traffic per pixel is one read of the input (1 B uint8, 2 B fp16, 4 B fp32) and one
4 B float32 write. The output is a fresh contiguous (N, 1, H, W) float32 tensor; the input is
read in place through its strides.
"""

from __future__ import annotations

import functools

import cv2
import numpy as np
import torch
import torch.nn.functional as F
import triton
import triton.language as tl

from kernels.aot import register_aot
from kernels.border import reflect101, reflect101_index_ref
from kernels.dispatch import Impl, resolve_impl
from kernels.errors import InputError
from kernels.validation import check_image

__all__ = [
    "gradient_map",
    "gradient_map_ref",
    "LAPLACIAN_3",
    "LAPLACIAN_5",
    "LAPLACIAN_7",
    "SMALL_KERNELS",
    "LARGE_KERNELS",
]

LAPLACIAN_3 = ((0, 1, 0), (1, -4, 1), (0, 1, 0))
LAPLACIAN_5 = (
    (2, 4, 4, 4, 2),
    (4, 0, -8, 0, 4),
    (4, -8, -24, -8, 4),
    (4, 0, -8, 0, 4),
    (2, 4, 4, 4, 2),
)
LAPLACIAN_7 = (
    (2, 8, 14, 16, 14, 8, 2),
    (8, 24, 24, 16, 24, 24, 8),
    (14, 24, -30, -80, -30, 24, 14),
    (16, 16, -80, -160, -80, 16, 16),
    (14, 24, -30, -80, -30, 24, 14),
    (8, 24, 24, 16, 24, 24, 8),
    (2, 8, 14, 16, 14, 8, 2),
)
SMALL_KERNELS = {3: LAPLACIAN_3}
LARGE_KERNELS = {5: LAPLACIAN_5, 7: LAPLACIAN_7}

_DTYPES = (torch.uint8, torch.float16, torch.float32)
_BLOCK_H = 16
_BLOCK_W = 64
_NUM_WARPS = 4


@triton.jit
def _laplacian3_at(g_base, yc, ym, yp, xc, xm, xp, mask):
    """Device helper: stage 1 (``LAPLACIAN_3``) from the row offsets ``yc, ym, yp`` (centre, up,
    down; already reflected and times the row stride) and the column offsets ``xc, xm, xp``."""
    c = tl.load(g_base + yc + xc, mask=mask, other=0).to(tl.float32)
    up = tl.load(g_base + ym + xc, mask=mask, other=0).to(tl.float32)
    down = tl.load(g_base + yp + xc, mask=mask, other=0).to(tl.float32)
    left = tl.load(g_base + yc + xm, mask=mask, other=0).to(tl.float32)
    right = tl.load(g_base + yc + xp, mask=mask, other=0).to(tl.float32)
    return (up + down) + (left + right) - 4.0 * c


@triton.jit
def _gradient_map_kernel(
    g_ptr,
    stride_gn,
    stride_gh,
    stride_gw,
    w2_ptr,
    out_ptr,
    stride_on,
    stride_oh,
    stride_ow,
    H,
    W,
    LARGE: tl.constexpr,
    IS_U8: tl.constexpr,
    BLOCK_H: tl.constexpr,
    BLOCK_W: tl.constexpr,
):
    # one program = one BLOCK_H x BLOCK_W tile of one image; tiles flattened as (n, th, tw)
    pid = tl.program_id(0).to(tl.int64)
    tiles_w = tl.cdiv(W, BLOCK_W)
    tiles_h = tl.cdiv(H, BLOCK_H)
    tw = pid % tiles_w
    th = (pid // tiles_w) % tiles_h
    n = pid // (tiles_w * tiles_h)
    rows = th * BLOCK_H + tl.arange(0, BLOCK_H)[:, None]  # (BLOCK_H, 1)
    cols = tw * BLOCK_W + tl.arange(0, BLOCK_W)[None, :]  # (1, BLOCK_W)
    mask = (rows < H) & (cols < W)
    g_base = g_ptr + n * stride_gn

    RADIUS: tl.constexpr = LARGE // 2
    acc = tl.zeros((BLOCK_H, BLOCK_W), dtype=tl.float32)
    for j in tl.static_range(LARGE):
        y = reflect101(rows + (j - RADIUS), H)  # stage-2 tap row, reflected into the image
        yc = y * stride_gh
        ym = reflect101(y - 1, H) * stride_gh  # stage-1 taps reflect again around y
        yp = reflect101(y + 1, H) * stride_gh
        for i in tl.static_range(LARGE):
            x = reflect101(cols + (i - RADIUS), W)
            xc = x * stride_gw
            xm = reflect101(x - 1, W) * stride_gw
            xp = reflect101(x + 1, W) * stride_gw
            weight = tl.load(w2_ptr + (j * LARGE + i))
            acc += weight * _laplacian3_at(g_base, yc, ym, yp, xc, xm, xp, mask)
    if IS_U8:
        acc = acc / 255.0
    o_ptrs = out_ptr + n * stride_on + rows * stride_oh + cols * stride_ow
    tl.store(o_ptrs, acc, mask=mask)


# The 7x7 variants take ~18 s each to compile, so the registry pairs each dtype with one
# large-kernel size (the dtype only changes the load's conversion; both sizes are covered).
for (_name, _ty), _large in zip(
    (("u8", "*u8"), ("fp16", "*fp16"), ("fp32", "*fp32")), (5, 5, 7), strict=True
):
    register_aot(
        _gradient_map_kernel,
        {
            "g_ptr": _ty,
            "stride_gn": "i32",
            "stride_gh": "i32",
            "stride_gw": "i32",
            "w2_ptr": "*fp32",
            "out_ptr": "*fp32",
            "stride_on": "i32",
            "stride_oh": "i32",
            "stride_ow": "i32",
            "H": "i32",
            "W": "i32",
            "LARGE": "constexpr",
            "IS_U8": "constexpr",
            "BLOCK_H": "constexpr",
            "BLOCK_W": "constexpr",
        },
        {"LARGE": _large, "IS_U8": _ty == "*u8", "BLOCK_H": _BLOCK_H, "BLOCK_W": _BLOCK_W},
        variant=f"{_name},{_large}x{_large}",
        num_warps=_NUM_WARPS,
    )


def _check_sizes(small: object, large: object) -> None:
    for name, value, allowed in (("small", small, SMALL_KERNELS), ("large", large, LARGE_KERNELS)):
        if isinstance(value, bool) or not isinstance(value, int) or value not in allowed:
            raise InputError(name, f"one of {sorted(allowed)} (kernel size)", value)


@functools.lru_cache(maxsize=8)
def _large_weights(large: int, device: torch.device) -> torch.Tensor:
    """``LARGE_KERNELS[large]`` as a flat float32 tensor on ``device`` (copied once)."""
    return torch.tensor(LARGE_KERNELS[large], dtype=torch.float32, device=device).reshape(-1)


def gradient_map(
    gray: torch.Tensor, small: int = 3, large: int = 5, *, impl: Impl = "auto"
) -> torch.Tensor:
    """Gradient map ``(gray * A1) * A2`` with reflect-101 borders at each stage.

    Args:
        gray: (N, 1, H, W) grayscale, uint8 (0..255) or float16/float32, any strides.
        small: size of ``A1``; only 3 (:data:`LAPLACIAN_3`).
        large: size of ``A2``; 5 (:data:`LAPLACIAN_5`) or 7 (:data:`LAPLACIAN_7`).
        impl: ``"auto"`` (Triton on CUDA, OpenCV on CPU), ``"triton"``, ``"torch"`` or
            ``"opencv"``.

    Returns:
        A new (N, 1, H, W) float32 tensor on ``gray``'s device.

    Raises:
        InputError: bad ``gray``, ``small``, ``large`` or ``impl`` (before any work).
    """
    check_image("gray", gray, dtypes=_DTYPES, channels=1)
    _check_sizes(small, large)
    path = resolve_impl(impl, gray.device, has_opencv=True)
    if path == "torch":
        return gradient_map_ref(gray, small, large)
    if path == "opencv":
        return _gradient_map_opencv(gray, small, large)
    n, _, h, w = gray.shape
    out = torch.empty((n, 1, h, w), dtype=torch.float32, device=gray.device)  # (N, 1, H, W)
    grid = (n * triton.cdiv(h, _BLOCK_H) * triton.cdiv(w, _BLOCK_W),)
    _gradient_map_kernel[grid](
        gray,
        gray.stride(0),
        gray.stride(2),
        gray.stride(3),
        _large_weights(large, gray.device),
        out,
        out.stride(0),
        out.stride(2),
        out.stride(3),
        h,
        w,
        LARGE=large,
        IS_U8=gray.dtype == torch.uint8,
        BLOCK_H=_BLOCK_H,
        BLOCK_W=_BLOCK_W,
        num_warps=_NUM_WARPS,
    )
    return out


def _gradient_map_opencv(gray: torch.Tensor, small: int, large: int) -> torch.Tensor:
    """Two ``cv2.filter2D`` calls on float32, one image at a time (CPU tensors)."""
    a1 = np.asarray(SMALL_KERNELS[small], dtype=np.float32)
    a2 = np.asarray(LARGE_KERNELS[large], dtype=np.float32)
    src = gray[:, 0].float()  # (N, H, W)
    if gray.dtype == torch.uint8:
        src = src / 255.0
    out = torch.empty(src.shape, dtype=torch.float32)
    for k, img in enumerate(src.numpy()):
        img = np.ascontiguousarray(img)
        stage1 = cv2.filter2D(img, cv2.CV_32F, a1, borderType=cv2.BORDER_REFLECT_101)
        out[k] = torch.from_numpy(
            cv2.filter2D(stage1, cv2.CV_32F, a2, borderType=cv2.BORDER_REFLECT_101)
        )
    return out.unsqueeze(1)  # (N, 1, H, W)


def _filter_reflect101_ref(x: torch.Tensor, kernel: tuple[tuple[int, ...], ...]) -> torch.Tensor:
    """Correlate (N, 1, H, W) float32 ``x`` with ``kernel``, reflect-101 border."""
    k = len(kernel)
    r = k // 2
    _, _, h, w = x.shape
    rows = reflect101_index_ref(torch.arange(-r, h + r, device=x.device), h)
    cols = reflect101_index_ref(torch.arange(-r, w + r, device=x.device), w)
    padded = x[:, :, rows][:, :, :, cols]  # (N, 1, H + 2r, W + 2r)
    weight = torch.tensor(kernel, dtype=torch.float32, device=x.device).reshape(1, 1, k, k)
    return F.conv2d(padded, weight)  # conv2d is a correlation, like cv2.filter2D


def gradient_map_ref(gray: torch.Tensor, small: int = 3, large: int = 5) -> torch.Tensor:
    """Plain-PyTorch reference of :func:`gradient_map` (fp32, reflect-101 gather + conv2d)."""
    x = gray.float() / 255.0 if gray.dtype == torch.uint8 else gray.float()  # (N, 1, H, W)
    stage1 = _filter_reflect101_ref(x, SMALL_KERNELS[small])
    return _filter_reflect101_ref(stage1, LARGE_KERNELS[large])


@torch.library.custom_op("tryon::gradient_map", mutates_args=())
def _gradient_map_op(
    gray: torch.Tensor, small: int = 3, large: int = 5, impl: str = "auto"
) -> torch.Tensor:
    return gradient_map(gray, small, large, impl=impl)


@_gradient_map_op.register_fake
def _(gray: torch.Tensor, small: int = 3, large: int = 5, impl: str = "auto") -> torch.Tensor:
    n, _, h, w = gray.shape
    return gray.new_empty((n, 1, h, w), dtype=torch.float32)
