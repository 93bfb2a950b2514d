"""Separable 2-D filter with reflect-101 borders: the one Triton kernel behind ``gaussian_blur``
and ``box_blur``.

For output pixel (y, x) of each (n, c) plane, with radii ``ry = KH // 2``, ``rx = KW // 2`` and
``refl`` the reflect-101 index (:mod:`kernels.border`)::

    row_j  = sum_i kx[i] * src[refl(y + j - ry), refl(x + i - rx)]     (horizontal taps)
    acc    = sum_j ky[j] * row_j                                        (vertical taps)

followed by one of four epilogues (``MODE``), each chosen to reproduce OpenCV bit for bit:

- ``FLOAT``: float taps, fp32 accumulation, stored in the output's float dtype;
- ``GAUSS_U8``: integer taps with 8 fractional bits summing to 256 (OpenCV's bit-exact uint8
  ``GaussianBlur``): ``out = (acc + 2^15) >> 16``;
- ``BOX_U8_SHIFT``: unit taps, kernel area ``d <= 256`` (OpenCV's ``ColumnSum<ushort, uchar>``):
  ``out = ((acc + delta) * scale) >> 23`` with OpenCV's integer ``delta`` and ``scale`` for ``d``;
- ``BOX_U8_ROUND``: unit taps, ``d > 256``: ``out = round(acc / d)``, in exact integer arithmetic
  ``(2 acc + d) // (2 d)`` (no ties: ``d`` is odd).

With ``HAS_MASK`` the result is blended with the centre pixel, ``mask * out + (1 - mask) * src``,
in fp32 (rounded half up and clamped for uint8), the mask being (N, 1, H, W).

Float epilogues run with ``enable_fp_fusion=False`` (no FMA contraction), so the compiled kernel
rounds exactly as the reference does. The vertical taps are a runtime loop (one compile per kernel
width, whatever the height); the horizontal taps are unrolled.

One launch; the horizontal pass is recomputed for each vertical tap (the "recomputed halo"), so a
pixel costs KH * KW loads that hit L1/L2, and DRAM traffic per pixel is one read of ``src`` (plus
the halo rows shared with neighbouring tiles), one write of ``out`` and, with a mask, one mask
read: 2 bytes/pixel/channel for uint8, 8 for fp32, (+ mask bytes / C).

The grid is (N * C * column tiles, row tiles); every tensor is indexed through its own strides, so
NCHW, channels-last and sliced inputs are read in place.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from kernels.aot import register_aot
from kernels.border import reflect101, reflect101_index_ref
from kernels.triton_mode import interpreter_requested

__all__ = [
    "FLOAT",
    "GAUSS_U8",
    "BOX_U8_SHIFT",
    "BOX_U8_ROUND",
    "BOX_SHIFT",
    "separable_filter",
    "separable_filter_ref",
    "box_divisor_constants",
    "masked_blend_ref",
]

FLOAT, GAUSS_U8, BOX_U8_SHIFT, BOX_U8_ROUND = 0, 1, 2, 3
BOX_SHIFT = 23  # OpenCV's ColumnSum<ushort, uchar>::SHIFT


@triton.jit
def _separable_filter_kernel(
    x_ptr, stride_xn, stride_xc, stride_xh, stride_xw,
    y_ptr, stride_yn, stride_yc, stride_yh, stride_yw,
    m_ptr, stride_mn, stride_mh, stride_mw,
    kx_ptr, ky_ptr,
    C, H, W, KH,
    div_delta, div_scale,
    KW: tl.constexpr, MODE: tl.constexpr, HAS_MASK: tl.constexpr,
    BLOCK_H: tl.constexpr, BLOCK_W: tl.constexpr,
):  # fmt: skip
    # Axis 0 folds (plane, column tile): CUDA caps grid axes 1 and 2 at 65535.
    col_tiles = tl.cdiv(W, BLOCK_W)
    pid_0 = tl.program_id(0).to(tl.int64)
    plane = pid_0 // col_tiles
    pid_w = pid_0 % col_tiles
    pid_h = tl.program_id(1).to(tl.int64)
    n = plane // C
    c = plane % C
    oy = pid_h * BLOCK_H + tl.arange(0, BLOCK_H)  # (BLOCK_H,)
    ox = pid_w * BLOCK_W + tl.arange(0, BLOCK_W)  # (BLOCK_W,)
    inside = (oy[:, None] < H) & (ox[None, :] < W)
    x_base = x_ptr + n * stride_xn + c * stride_xc

    if MODE == 0:
        acc = tl.zeros((BLOCK_H, BLOCK_W), dtype=tl.float32)
    else:
        acc = tl.zeros((BLOCK_H, BLOCK_W), dtype=tl.int32)
    for j in range(KH):  # runtime loop: one compile serves every kernel height
        row_off = reflect101(oy + (j - KH // 2), H) * stride_xh  # (BLOCK_H,)
        if MODE == 0:
            row = tl.zeros((BLOCK_H, BLOCK_W), dtype=tl.float32)
        else:
            row = tl.zeros((BLOCK_H, BLOCK_W), dtype=tl.int32)
        for i in tl.static_range(KW):
            col_off = reflect101(ox + (i - KW // 2), W) * stride_xw  # (BLOCK_W,)
            v = tl.load(x_base + row_off[:, None] + col_off[None, :], mask=inside, other=0)
            if MODE == 0:
                row += tl.load(kx_ptr + i) * v.to(tl.float32)
            else:
                row += tl.load(kx_ptr + i) * v.to(tl.int32)
        acc += tl.load(ky_ptr + j) * row

    if MODE == 0:
        res = acc
    elif MODE == 1:
        res = (acc + 32768) >> 16
    elif MODE == 2:
        res = (((acc + div_delta).to(tl.int64) * div_scale) >> 23).to(tl.int32)
    else:
        res = (2 * acc + div_scale) // (2 * div_scale)  # exact round(acc / d), acc >= 0

    if HAS_MASK:
        centre = tl.load(
            x_base + oy[:, None] * stride_xh + ox[None, :] * stride_xw, mask=inside, other=0
        ).to(tl.float32)
        m = tl.load(
            m_ptr + n * stride_mn + oy[:, None] * stride_mh + ox[None, :] * stride_mw,
            mask=inside,
            other=0,
        ).to(tl.float32)
        blended = m * res.to(tl.float32) + (1.0 - m) * centre
        if MODE == 0:
            res = blended
        else:
            res = tl.minimum(tl.maximum(tl.floor(blended + 0.5), 0.0), 255.0).to(tl.int32)

    y_off = n * stride_yn + c * stride_yc + oy[:, None] * stride_yh + ox[None, :] * stride_yw
    tl.store(y_ptr + y_off, res.to(y_ptr.dtype.element_ty), mask=inside)


def _aot_signature(x: str, k: str) -> dict[str, str]:
    """Triton signature of the kernel for image pointer type ``x`` and tap pointer type ``k``."""
    sig = {"x_ptr": x} | {f"stride_x{d}": "i32" for d in "nchw"}
    sig |= {"y_ptr": x} | {f"stride_y{d}": "i32" for d in "nchw"}
    sig |= {"m_ptr": "*fp32"} | {f"stride_m{d}": "i32" for d in "nhw"}
    sig |= {"kx_ptr": k, "ky_ptr": k}
    return sig | dict.fromkeys(("C", "H", "W", "KH", "div_delta", "div_scale"), "i32")


for _variant, (_x, _k, _mode, _mask) in {
    "fp32_5x5": ("*fp32", "*fp32", FLOAT, False),
    "fp16_5x5_mask": ("*fp16", "*fp32", FLOAT, True),
    "u8_gauss_5x5": ("*u8", "*i32", GAUSS_U8, False),
    "u8_box_5x5_mask": ("*u8", "*i32", BOX_U8_SHIFT, True),
    # The rounding epilogue serves windows of area > 256; the tap count does not change the
    # code path, and 3x3 keeps the compile short (a 17x17 unroll takes ~17 s).
    "u8_box_round_3x3": ("*u8", "*i32", BOX_U8_ROUND, False),
}.items():
    _kh = 3 if _variant.endswith("3x3") else 5
    register_aot(
        _separable_filter_kernel,
        _aot_signature(_x, _k),
        {"KW": _kh, "MODE": _mode, "HAS_MASK": _mask, "BLOCK_H": 8, "BLOCK_W": 128},
        variant=_variant,
        enable_fp_fusion=False,
    )


def box_divisor_constants(area: int) -> tuple[int, int]:
    """OpenCV's ``(divDelta, divScale)`` for a uint8 box filter of ``area`` pixels (<= 256)."""
    scalef = float(1 << BOX_SHIFT) / area
    div_scale = int(scalef // 1)
    div_delta = area // 2
    if scalef - div_scale < 0.5:
        div_delta += 1
    else:
        div_scale += 1
    return div_delta, div_scale


def _blocks(h: int, w: int) -> tuple[int, int, int]:
    """(BLOCK_H, BLOCK_W, num_warps): small tiles on GPUs, big ones in the interpreter (where
    each program costs Python overhead)."""
    if interpreter_requested():
        return min(triton.next_power_of_2(h), 64), min(triton.next_power_of_2(w), 256), 4
    return 8, 128, 4


def separable_filter(
    x: torch.Tensor,
    kx: torch.Tensor,
    ky: torch.Tensor,
    mode: int,
    *,
    mask: torch.Tensor | None = None,
    div_delta: int = 0,
    div_scale: int = 1,
) -> torch.Tensor:
    """Launch the kernel. Arguments are assumed validated by the public op.

    Args:
        x: (N, C, H, W) uint8 / float16 / float32, any strides.
        kx, ky: 1-D taps on x's device: float32 for ``FLOAT``, int32 otherwise.
        mode: one of ``FLOAT``, ``GAUSS_U8``, ``BOX_U8_SHIFT``, ``BOX_U8_ROUND``.
        mask: optional (N, 1, H, W) blend mask, float16/float32 in [0, 1].
        div_delta, div_scale: box constants (``BOX_U8_SHIFT``) or the area (``BOX_U8_ROUND``).

    Returns:
        (N, C, H, W) tensor of x's dtype, same memory format as x.
    """
    n, c, h, w = x.shape
    y = torch.empty_like(x)
    m = mask if mask is not None else kx  # any valid pointer; never read without HAS_MASK
    m_strides = (mask.stride(0), mask.stride(2), mask.stride(3)) if mask is not None else (0, 0, 0)
    block_h, block_w, warps = _blocks(h, w)
    grid = (triton.cdiv(w, block_w) * n * c, triton.cdiv(h, block_h))
    _separable_filter_kernel[grid](
        x, *x.stride(),
        y, *y.stride(),
        m, *m_strides,
        kx, ky,
        c, h, w, ky.numel(),
        div_delta, div_scale,
        KW=kx.numel(), MODE=mode, HAS_MASK=mask is not None,
        BLOCK_H=block_h, BLOCK_W=block_w, num_warps=warps,
        enable_fp_fusion=False,  # separate mul and add, as in the reference: bit-identical
    )  # fmt: skip
    return y


def separable_filter_ref(
    x: torch.Tensor,
    kx: torch.Tensor,
    ky: torch.Tensor,
    mode: int,
    *,
    mask: torch.Tensor | None = None,
    div_delta: int = 0,
    div_scale: int = 1,
) -> torch.Tensor:
    """Plain-PyTorch reference of :func:`separable_filter`.

    Two gather passes (horizontal over every row, then vertical over the row sums) with the
    same taps and the same sequential summation order as the kernel, so the result is
    bit-identical to it while costing KH + KW passes instead of KH * KW.
    """
    _, _, h, w = x.shape
    kh, kw = ky.numel(), kx.numel()
    rows = reflect101_index_ref(torch.arange(h)[:, None] + torch.arange(kh) - kh // 2, h)
    cols = reflect101_index_ref(torch.arange(w)[:, None] + torch.arange(kw) - kw // 2, w)
    rows, cols = rows.to(x.device), cols.to(x.device)
    acc_dtype = torch.float32 if mode == FLOAT else torch.int32
    src = x.to(acc_dtype)
    kx, ky = kx.to(acc_dtype), ky.to(acc_dtype)
    row_sums = torch.zeros(x.shape, dtype=acc_dtype, device=x.device)  # (N, C, H, W)
    for i in range(kw):
        row_sums += kx[i] * src.index_select(3, cols[:, i])
    acc = torch.zeros_like(row_sums)
    for j in range(kh):
        acc += ky[j] * row_sums.index_select(2, rows[:, j])
    if mode == FLOAT:
        res = acc
    elif mode == GAUSS_U8:
        res = (acc + 32768) >> 16
    elif mode == BOX_U8_SHIFT:
        res = ((acc.long() + div_delta) * div_scale) >> BOX_SHIFT
    else:
        res = (2 * acc.long() + div_scale) // (2 * div_scale)
    # Blend before the final cast, as the kernel does (one rounding for float16).
    return res.to(x.dtype) if mask is None else masked_blend_ref(x, res, mask)


def masked_blend_ref(x: torch.Tensor, filtered: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``mask * filtered + (1 - mask) * x`` in fp32, as the kernel's ``HAS_MASK`` epilogue does
    (uint8: rounded half up and clamped)."""
    m = mask.to(torch.float32)
    res = m * filtered.to(torch.float32) + (1.0 - m) * x.to(torch.float32)
    if x.dtype == torch.uint8:
        res = torch.floor(res + 0.5).clamp(0, 255)
    return res.to(x.dtype)
