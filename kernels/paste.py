"""Sharp full-resolution paste: the model-size try-on blended into the uint8 frame in one pass.

Inputs at model size (h, w): ``rendered`` (1, 3, h, w), the cloth mask ``M_c`` and the keep mask
``M_a`` (1, 1, h, w; 1 = keep the frame pixel; feathered by the caller), and the garment warp
``grid`` (1, h, w, 2) in ``grid_sample``'s normalized coordinates (align_corners=False). The
garment texture ``garment`` (4, Hg, Wg) is RGBA with premultiplied RGB at its own resolution, and
is sampled at full resolution through the upsampled grid (the texture stays sharp instead of being
warped at model size and then blurred by an upsampling). Only RGB is read: the cloth's coverage is
``M_c``.

Math, per frame pixel (X, Y) in the visible box ``[x0, x0 + bw) x [y0, y0 + bh)`` clipped to the
frame, every other pixel left untouched::

    u = (X - x0 + 0.5) * w / bw - 0.5        v = (Y - y0 + 0.5) * h / bh - 0.5
    S(u, v)     bilinear, clamp-to-edge, of rendered, M_c, M_a and grid (cv2.resize INTER_LINEAR,
                F.interpolate(align_corners=False))
    gx, gy      = S(grid);  px = ((gx + 1) * Wg - 1) / 2,  py = ((gy + 1) * Hg - 1) / 2
    cloth       bilinear of garment RGB at (px, py), taps outside the texture are 0
                (grid_sample padding_mode="zeros"), times S(shading) when a shading map is
                given (the folds and shadows of the clothing underneath; 1 otherwise)
    masked      = M_c * cloth + (1 - M_c) * rendered
    out         = (1 - M_a) * masked + M_a * frame / 255
    frame       = clamp(floor(255 * out + 0.5), 0, 255)   (uint8, in place)

Implementations: the Triton kernel (one 2-D launch over the visible box, fp32, every input read
through its own strides), ``"torch"`` (``F.grid_sample`` over the visible box only), ``"opencv"``
(``cv2.resize`` of the model-size maps, one plane per mask; the garment gathered by
nearest-neighbour ``cv2.remap`` of its bilinear taps, with the exact fp32 fractions, from the
zero-padded texture and its horizontal differences, both kept from call to call; the lerps
and the blend as multiply-adds of ``cv2.accumulateProduct``. It computes only the part of the
box whose keep-mask taps can be below 1, since elsewhere ``out = frame`` exactly, and works
through that part in strips of rows whose work arrays stay in cache from step to step). All
compute in fp32; :func:`paste_ref` in fp64. Results differ from the reference by at most 1 uint8
level (fp32 rounding moving a value across a rounding boundary).

Why not ``cv2.remap(INTER_LINEAR)`` for the garment: OpenCV rounds the sub-pixel position to 1/32
pixel (``INTER_BITS = 5``), up to 1/64 of a neighbour difference per axis, i.e. up to 8 levels
on a sharp 0-to-1 stripe edge. ``cv2.warpAffine`` has the same rounding, so the model-size maps
use ``cv2.resize`` (exact fp32 weights): of the whole box when it lies inside the frame, else
one axis at a time with the cut in between, whichever touches fewer pixels.

Bytes per visible pixel (Triton path, fp32 inputs): 3 B frame read + 3 B written; the model-size
maps (7 fp32 planes, 4 taps each) and the garment (3 fp32 planes, 4 taps each) are gathers that
mostly hit cache when the box is larger than the model (each model pixel serves
``(bw / w) * (bh / h)`` frame pixels).
"""

from __future__ import annotations

import math
import numbers
import threading
from collections.abc import Callable, Sequence

import cv2
import numpy as np
import torch
import torch.nn.functional as F
import triton
import triton.language as tl

from kernels.aot import register_aot
from kernels.dispatch import Impl, resolve_impl
from kernels.errors import InputError
from kernels.validation import check_unit_range

__all__ = ["MAX_COORD", "MAX_SHADING", "paste", "paste_ref"]

MAX_SHADING = 4.0
"""Largest accepted shading factor (the runtime's shading maps stay within [0.6, 1.4])."""
MAX_COORD = 2**30
"""Bound on ``|x0|``, ``|y0|``, ``bw``, ``bh`` and every size (int32 arithmetic in the kernel)."""


@triton.jit
def bilinear_clamped(base, stride_h, stride_w, ya, yb, xa, xb, fu, fv, valid):
    """Bilinear sample of one fp32 plane at clamped rows ``ya``/``yb`` (BLOCK_H, 1), columns
    ``xa``/``xb`` (1, BLOCK_W), fractions ``fv``/``fu``: a (BLOCK_H, BLOCK_W) fp32 tile."""
    a = tl.load(base + ya * stride_h + xa * stride_w, mask=valid, other=0.0)
    b = tl.load(base + ya * stride_h + xb * stride_w, mask=valid, other=0.0)
    c = tl.load(base + yb * stride_h + xa * stride_w, mask=valid, other=0.0)
    d = tl.load(base + yb * stride_h + xb * stride_w, mask=valid, other=0.0)
    top = a + fu * (b - a)
    bottom = c + fu * (d - c)
    return top + fv * (bottom - top)


@triton.jit
def _paste_kernel(
    frame_ptr, stride_fh, stride_fw, stride_fc,
    rendered_ptr, stride_rc, stride_rh, stride_rw,
    cloth_mask_ptr, stride_cmh, stride_cmw,
    keep_mask_ptr, stride_kmh, stride_kmw,
    grid_ptr, stride_gdh, stride_gdw, stride_gdk,
    garment_ptr, stride_gc, stride_gh, stride_gw,
    shade_ptr, stride_shh, stride_shw,
    x0, y0, fx0, fy0, fx1, fy1,
    scale_x, scale_y,
    h, w, Hg, Wg,
    BLOCK_H: tl.constexpr,
    BLOCK_W: tl.constexpr,
):  # fmt: skip
    # program: a BLOCK_H x BLOCK_W tile of the visible box, frame pixels (X, Y), int64
    pid_x = tl.program_id(0).to(tl.int64)
    pid_y = tl.program_id(1).to(tl.int64)
    xs = fx0 + pid_x * BLOCK_W + tl.arange(0, BLOCK_W)  # (BLOCK_W,)
    ys = fy0 + pid_y * BLOCK_H + tl.arange(0, BLOCK_H)  # (BLOCK_H,)
    valid = (ys[:, None] < fy1) & (xs[None, :] < fx1)  # (BLOCK_H, BLOCK_W)

    # model-size sampling position, separable: per column and per row
    u = ((xs - x0).to(tl.float32) + 0.5) * scale_x - 0.5
    v = ((ys - y0).to(tl.float32) + 0.5) * scale_y - 0.5
    u0 = tl.floor(u)
    v0 = tl.floor(v)
    fu = (u - u0)[None, :]
    fv = (v - v0)[:, None]
    iu = u0.to(tl.int32)
    iv = v0.to(tl.int32)
    xa = tl.minimum(tl.maximum(iu, 0), w - 1).to(tl.int64)[None, :]
    xb = tl.minimum(tl.maximum(iu + 1, 0), w - 1).to(tl.int64)[None, :]
    ya = tl.minimum(tl.maximum(iv, 0), h - 1).to(tl.int64)[:, None]
    yb = tl.minimum(tl.maximum(iv + 1, 0), h - 1).to(tl.int64)[:, None]

    cm = bilinear_clamped(cloth_mask_ptr, stride_cmh, stride_cmw, ya, yb, xa, xb, fu, fv, valid)
    km = bilinear_clamped(keep_mask_ptr, stride_kmh, stride_kmw, ya, yb, xa, xb, fu, fv, valid)
    gx = bilinear_clamped(grid_ptr, stride_gdh, stride_gdw, ya, yb, xa, xb, fu, fv, valid)
    gy = bilinear_clamped(grid_ptr + stride_gdk, stride_gdh, stride_gdw, ya, yb, xa, xb, fu, fv,
                          valid)  # fmt: skip
    # no shading map: a single 1.0 read with zero strides
    sh = bilinear_clamped(shade_ptr, stride_shh, stride_shw, ya, yb, xa, xb, fu, fv, valid)

    # garment position in texture pixels; clamped (taps stay outside) so int32 cannot overflow
    px = tl.minimum(tl.maximum(((gx + 1.0) * Wg - 1.0) * 0.5, -2.0), Wg * 1.0)
    py = tl.minimum(tl.maximum(((gy + 1.0) * Hg - 1.0) * 0.5, -2.0), Hg * 1.0)
    px0 = tl.floor(px)
    py0 = tl.floor(py)
    fx = px - px0
    fy = py - py0
    gxa = px0.to(tl.int32)
    gya = py0.to(tl.int32)
    in_xa = (gxa >= 0) & (gxa < Wg)
    in_xb = (gxa + 1 >= 0) & (gxa + 1 < Wg)
    in_ya = (gya >= 0) & (gya < Hg)
    in_yb = (gya + 1 >= 0) & (gya + 1 < Hg)
    m00 = valid & in_ya & in_xa
    m01 = valid & in_ya & in_xb
    m10 = valid & in_yb & in_xa
    m11 = valid & in_yb & in_xb
    g00 = garment_ptr + gya.to(tl.int64) * stride_gh + gxa.to(tl.int64) * stride_gw
    g01 = g00 + stride_gw
    g10 = g00 + stride_gh
    g11 = g10 + stride_gw

    f_base = frame_ptr + ys[:, None] * stride_fh + xs[None, :] * stride_fw
    for c in tl.static_range(3):
        rd = bilinear_clamped(rendered_ptr + c * stride_rc, stride_rh, stride_rw,
                              ya, yb, xa, xb, fu, fv, valid)  # fmt: skip
        c00 = tl.load(g00 + c * stride_gc, mask=m00, other=0.0)
        c01 = tl.load(g01 + c * stride_gc, mask=m01, other=0.0)
        c10 = tl.load(g10 + c * stride_gc, mask=m10, other=0.0)
        c11 = tl.load(g11 + c * stride_gc, mask=m11, other=0.0)
        top = c00 + fx * (c01 - c00)
        bottom = c10 + fx * (c11 - c10)
        cloth = (top + fy * (bottom - top)) * sh
        masked = cm * cloth + (1.0 - cm) * rd
        bg = tl.load(f_base + c * stride_fc, mask=valid, other=0).to(tl.float32) * (1.0 / 255.0)
        res = (1.0 - km) * masked + km * bg
        res = tl.minimum(tl.maximum(tl.floor(res * 255.0 + 0.5), 0.0), 255.0)
        tl.store(f_base + c * stride_fc, res.to(tl.uint8), mask=valid)


def _aot_signature() -> dict[str, str]:
    sig = {}
    for ptr, dtype, strides in (
        ("frame_ptr", "u8", ("stride_fh", "stride_fw", "stride_fc")),
        ("rendered_ptr", "fp32", ("stride_rc", "stride_rh", "stride_rw")),
        ("cloth_mask_ptr", "fp32", ("stride_cmh", "stride_cmw")),
        ("keep_mask_ptr", "fp32", ("stride_kmh", "stride_kmw")),
        ("grid_ptr", "fp32", ("stride_gdh", "stride_gdw", "stride_gdk")),
        ("garment_ptr", "fp32", ("stride_gc", "stride_gh", "stride_gw")),
        ("shade_ptr", "fp32", ("stride_shh", "stride_shw")),
    ):
        sig[ptr] = f"*{dtype}"
        sig.update(dict.fromkeys(strides, "i32"))
    sig.update(dict.fromkeys(("x0", "y0", "fx0", "fy0", "fx1", "fy1"), "i32"))
    sig.update(scale_x="fp32", scale_y="fp32")
    sig.update(dict.fromkeys(("h", "w", "Hg", "Wg"), "i32"))
    sig.update(BLOCK_H="constexpr", BLOCK_W="constexpr")
    return sig


register_aot(_paste_kernel, _aot_signature(), {"BLOCK_H": 8, "BLOCK_W": 64}, variant="fp32-8x64")


# ----------------------------------------------------------------------------- validation


def _check_float(name: str, x: object, shape: str, rank: int, fixed: dict[int, int]) -> None:
    expected = f"a {shape} float32 tensor"
    if not isinstance(x, torch.Tensor) or x.dim() != rank or x.dtype != torch.float32:
        raise InputError(name, expected, x)
    if x.numel() == 0 or any(x.shape[d] != n for d, n in fixed.items()):
        raise InputError(name, expected + " with no zero-sized dimension", x)


def _check_box(box: object) -> tuple[int, int, int, int]:
    expected = f"(x0, y0, bw, bh) ints with bw, bh >= 1 and every |value| < {MAX_COORD}"
    if (
        not isinstance(box, Sequence)
        or isinstance(box, str)
        or len(box) != 4
        or not all(isinstance(b, numbers.Integral) and not isinstance(b, bool) for b in box)
    ):
        raise InputError("box", expected, box)
    x0, y0, bw, bh = (int(b) for b in box)
    if bw < 1 or bh < 1 or max(abs(x0), abs(y0), bw, bh) >= MAX_COORD:
        raise InputError("box", expected, box)
    return x0, y0, bw, bh


def _check_paste_args(
    frame: object,
    box: object,
    rendered: object,
    cloth_mask: object,
    keep_mask: object,
    garment: object,
    grid: object,
    shading: object = None,
) -> tuple[int, int, int, int]:
    """Validate everything but ``impl``, cheapest checks first; returns the box as ints."""
    expected = "an (H, W, 3) uint8 tensor"
    if not isinstance(frame, torch.Tensor) or frame.dim() != 3 or frame.dtype != torch.uint8:
        raise InputError("frame", expected, frame)
    if frame.shape[2] != 3 or frame.numel() == 0 or max(frame.shape) >= MAX_COORD:
        raise InputError("frame", expected + " with H, W >= 1", frame)
    if any(s == 0 and n > 1 for s, n in zip(frame.stride(), frame.shape, strict=True)):
        raise InputError("frame", expected + " that owns its pixels (not expanded)", frame)
    x0, y0, bw, bh = _check_box(box)
    _check_float("rendered", rendered, "(1, 3, h, w)", 4, {0: 1, 1: 3})
    h, w = rendered.shape[2:]
    _check_float("cloth_mask", cloth_mask, f"(1, 1, {h}, {w})", 4, {0: 1, 1: 1, 2: h, 3: w})
    _check_float("keep_mask", keep_mask, f"(1, 1, {h}, {w})", 4, {0: 1, 1: 1, 2: h, 3: w})
    _check_float("grid", grid, f"(1, {h}, {w}, 2)", 4, {0: 1, 1: h, 2: w, 3: 2})
    _check_float("garment", garment, "(4, Hg, Wg) RGBA", 3, {0: 4})
    named = {"rendered": rendered, "cloth_mask": cloth_mask, "keep_mask": keep_mask,
             "grid": grid, "garment": garment}  # fmt: skip
    if shading is not None:
        _check_float("shading", shading, f"(1, 1, {h}, {w})", 4, {0: 1, 1: 1, 2: h, 3: w})
        named["shading"] = shading
    for name, x in named.items():
        if x.device != frame.device:
            raise InputError(name, f"a tensor on {frame.device} like frame", x)
        if max(x.shape) >= MAX_COORD:
            raise InputError(name, f"every size below {MAX_COORD}", x)
    _check_mask_range("cloth_mask", cloth_mask)
    _check_mask_range("keep_mask", keep_mask)
    if shading is not None:
        values = shading.detach().cpu().numpy()
        lo, hi = values.min(), values.max()
        if not (lo >= 0 and hi <= MAX_SHADING):  # also rejects NaN
            raise InputError("shading", f"values in [0, {MAX_SHADING:g}]",
                             f"values in [{lo:g}, {hi:g}]")  # fmt: skip
    return x0, y0, bw, bh


def _check_mask_range(name: str, mask: torch.Tensor) -> None:
    """Values in [0, 1]. On CPU by numpy: a torch reduction wakes its OpenMP workers, whose spin
    after the reduction takes the cores from the OpenCV path that follows (several times the
    paste's own time on a 2-core machine)."""
    if mask.device.type != "cpu":
        check_unit_range(name, mask)
        return
    values = mask.detach().numpy()
    lo, hi = values.min(), values.max()
    if not (lo >= 0 and hi <= 1):  # also rejects NaN
        raise InputError(name, "values in [0, 1]", f"values in [{lo:g}, {hi:g}]")


def _visible(box: tuple[int, int, int, int], height: int, width: int):
    """``(fx0, fy0, fx1, fy1)``, the box clipped to the frame, or None when they do not meet."""
    x0, y0, bw, bh = box
    fx0, fy0, fx1, fy1 = max(x0, 0), max(y0, 0), min(x0 + bw, width), min(y0 + bh, height)
    if fx1 <= fx0 or fy1 <= fy0:
        return None
    return fx0, fy0, fx1, fy1


def _tap_span(lo: int, hi: int, n: int, size: int, origin: int, f0: int, f1: int):
    """The frame pixels ``[a, b)`` of ``[f0, f1)`` (one axis) whose two bilinear taps can reach
    model pixels ``lo..hi`` (of ``n``, upsampled to ``size`` pixels from ``origin``), or None.

    A pixel at model coordinate ``s = (X - origin + 0.5) * n / size - 0.5`` (clamped to
    ``[0, n - 1]``) reads rows ``floor(s)`` and ``floor(s) + 1``: it can see ``lo..hi`` only if
    ``lo - 1 < s < hi + 1``; a margin of 0.01 model pixels covers how OpenCV rounds ``s``."""
    s = (np.arange(f0, f1, dtype=np.float64) - origin + 0.5) * (n / size) - 0.5
    s = np.clip(s, 0.0, n - 1.0)
    hit = np.flatnonzero((s > lo - 1.01) & (s < hi + 1.01))
    if hit.size == 0:
        return None
    return f0 + int(hit[0]), f0 + int(hit[-1]) + 1


def _changing(box: tuple[int, int, int, int], vis: tuple[int, int, int, int], keep_mask):
    """The part of the visible box ``vis`` where the paste can change the frame, or None.

    Where every bilinear tap of the keep mask is 1, ``out = frame`` exactly (the blend's weight
    on the frame is 1): those pixels are left alone rather than recomputed, which is also what
    the reference gives. The bounds come from the model-size mask (a CPU tensor here): the rows
    and columns holding a value below 1, widened to every frame pixel whose taps reach them."""
    below = keep_mask[0, 0].detach().numpy() < 1.0  # (h, w)
    rows, cols = np.flatnonzero(below.any(1)), np.flatnonzero(below.any(0))
    if rows.size == 0:
        return None
    x0, y0, bw, bh = box
    fx0, fy0, fx1, fy1 = vis
    h, w = below.shape
    ys = _tap_span(int(rows[0]), int(rows[-1]), h, bh, y0, fy0, fy1)
    xs = _tap_span(int(cols[0]), int(cols[-1]), w, bw, x0, fx0, fx1)
    if ys is None or xs is None:
        return None
    return xs[0], ys[0], xs[1], ys[1]


# ----------------------------------------------------------------------------- public op


def paste(
    frame: torch.Tensor,
    box: Sequence[int],
    rendered: torch.Tensor,
    cloth_mask: torch.Tensor,
    keep_mask: torch.Tensor,
    garment: torch.Tensor,
    grid: torch.Tensor,
    *,
    shading: torch.Tensor | None = None,
    impl: Impl = "auto",
) -> torch.Tensor:
    """Paste the try-on into ``frame`` inside ``box``, sampling the garment at full resolution.

    Args:
        frame: (H, W, 3) uint8, any strides (e.g. ``torch.from_numpy`` of a slice); modified in
            place inside ``box``; pixels outside it are never written.
        box: ``(x0, y0, bw, bh)`` ints, the crop box in frame pixels (may extend past the frame
            on any side; ``bw, bh >= 1``).
        rendered: (1, 3, h, w) float32 in [0, 1], the generator's output at model size.
        cloth_mask: (1, 1, h, w) float32 in [0, 1], M_c (1 = garment texture).
        keep_mask: (1, 1, h, w) float32 in [0, 1], M_a (1 = keep the frame pixel).
        garment: (4, Hg, Wg) float32 RGBA in [0, 1], RGB premultiplied, any resolution.
        grid: (1, h, w, 2) float32 garment sampling positions (``grid_sample``'s normalized x,
            y, align_corners=False), e.g. the TPS warp grid.
        shading: None, or (1, 1, h, w) float32 in [0, :data:`MAX_SHADING`]: a factor on the
            sampled garment (the clothing's folds and shadows), upsampled like the masks.
        impl: ``"auto"`` (Triton on CUDA, OpenCV on CPU), ``"triton"``, ``"torch"`` or
            ``"opencv"`` (CPU only).

    Returns:
        ``frame`` itself.

    Raises:
        InputError: naming the argument, before the frame changes: wrong type, rank, shape,
            dtype, device, masks outside [0, 1], a box with ``bw`` or ``bh`` < 1, bad ``impl``.
    """
    box = _check_paste_args(frame, box, rendered, cloth_mask, keep_mask, garment, grid, shading)
    path = resolve_impl(impl, frame.device, has_opencv=True)
    vis = _visible(box, frame.shape[0], frame.shape[1])
    if vis is not None and path == "opencv":
        vis = _changing(box, vis, keep_mask)
    if vis is None:
        return frame
    args = (frame, box, vis, rendered, cloth_mask, keep_mask, garment, grid, shading)
    if path == "opencv":
        _paste_opencv(*args)
    elif path == "torch":
        _paste_torch(*args)
    else:
        _paste_triton(*args)
    return frame


def _launch_config(vh: int, vw: int) -> tuple[int, int, int]:
    """(BLOCK_H, BLOCK_W, num_warps): 8 x 64 tiles, narrower for small boxes."""
    block_w = max(16, min(64, triton.next_power_of_2(vw)))
    block_h = max(1, min(8, triton.next_power_of_2(vh)))
    return block_h, block_w, (4 if block_h * block_w >= 256 else 2)


def _paste_triton(frame, box, vis, rendered, cloth_mask, keep_mask, garment, grid, shading):
    x0, y0, bw, bh = box
    fx0, fy0, fx1, fy1 = vis
    h, w = rendered.shape[2:]
    hg, wg = garment.shape[1:]
    block_h, block_w, num_warps = _launch_config(fy1 - fy0, fx1 - fx0)
    launch = (triton.cdiv(fx1 - fx0, block_w), triton.cdiv(fy1 - fy0, block_h))
    if shading is None:  # one 1.0 read through zero strides
        shade, shade_strides = torch.ones(1, device=frame.device), (0, 0)
    else:
        shade, shade_strides = shading, shading.stride()[2:]
    _paste_kernel[launch](
        frame, *frame.stride(),
        rendered, *rendered.stride()[1:],
        cloth_mask, *cloth_mask.stride()[2:],
        keep_mask, *keep_mask.stride()[2:],
        grid, *grid.stride()[1:],
        garment, *garment.stride(),
        shade, *shade_strides,
        x0, y0, fx0, fy0, fx1, fy1,
        w / bw, h / bh,
        h, w, hg, wg,
        BLOCK_H=block_h,
        BLOCK_W=block_w,
        num_warps=num_warps,
    )  # fmt: skip


def _paste_torch(frame, box, vis, rendered, cloth_mask, keep_mask, garment, grid, shading):
    """``F.grid_sample`` over the visible box only: border padding for the model-size maps
    (clamp-to-edge bilinear, the same as ``F.interpolate``), zeros for the garment."""
    x0, y0, bw, bh = box
    fx0, fy0, fx1, fy1 = vis
    dev = frame.device
    # normalized model coordinate of frame pixel X: (2u + 1) / w - 1 = (2 (X - x0) + 1) / bw - 1
    nx = (2.0 * (torch.arange(fx0, fx1, device=dev, dtype=torch.float32) - x0) + 1.0) / bw - 1.0
    ny = (2.0 * (torch.arange(fy0, fy1, device=dev, dtype=torch.float32) - y0) + 1.0) / bh - 1.0
    vh, vw = ny.numel(), nx.numel()
    base = torch.stack((nx.expand(vh, vw), ny[:, None].expand(vh, vw)), dim=-1)[None]
    planes = [rendered, cloth_mask, keep_mask, grid.permute(0, 3, 1, 2)]
    if shading is not None:
        planes.append(shading)
    maps = torch.cat(planes, dim=1)
    up = F.grid_sample(maps, base, mode="bilinear", padding_mode="border", align_corners=False)
    up = up[0]  # (7 or 8, vh, vw): r, g, b, M_c, M_a, gx, gy[, shading]
    cloth = F.grid_sample(
        garment[None, :3],
        up[5:7].permute(1, 2, 0)[None],
        mode="bilinear",
        padding_mode="zeros",
        align_corners=False,
    )[0]  # fmt: skip  (3, vh, vw)
    if shading is not None:
        cloth = cloth * up[7:8]
    cm, km = up[3:4], up[4:5]
    region = frame[fy0:fy1, fx0:fx1]  # (vh, vw, 3) view
    bg = region.permute(2, 0, 1).to(torch.float32) / 255.0  # (3, vh, vw)
    out = (1.0 - km) * (cm * cloth + (1.0 - cm) * up[:3]) + km * bg
    out = torch.floor(out * 255.0 + 0.5).clamp_(0.0, 255.0)
    region.copy_(out.permute(1, 2, 0))


class _Scratch(threading.local):
    """Per-thread float32 work arrays of the OpenCV path, reused from call to call.

    Fresh multi-megabyte arrays on every call cost more in page faults than the arithmetic
    (the allocator hands them back to the OS on free): each tagged array is a view of a flat
    buffer that only grows (by a quarter more than asked, as boxes change size every frame).
    Nothing handed to the caller is a view of these buffers.
    """

    def __init__(self) -> None:
        self.flat: dict[str, np.ndarray] = {}
        self.texture: tuple[np.ndarray, np.ndarray] | None = None
        self.texture_of: torch.Tensor | None = None
        self.texture_version = -1

    def padded_texture(self, garment: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        """``(pad, step)``: ``pad`` (Hg + 4, Wg + 4, 3) float32, 255 * the garment's RGB at
        ``[2 : Hg + 2, 2 : Wg + 2]`` and zeros around it; ``step`` (Hg + 4, Wg + 3, 3) float32,
        ``pad[:, 1:] - pad[:, :-1]`` (each texel's right neighbour minus itself: the difference
        of the horizontal lerp, computed once per garment instead of once per frame pixel).
        Rebuilt unless ``garment`` is the last call's tensor object, unchanged since (its
        in-place version counter). The tensor is held, so its memory cannot be reused by
        another garment while it is cached."""
        if self.texture_of is not garment or self.texture_version != garment._version:
            hg, wg = garment.shape[1:]
            pad = np.zeros((hg + 4, wg + 4, 3), dtype=np.float32)
            _interleave(garment[:3], "", 255.0, out=pad[2 : hg + 2, 2 : wg + 2])
            step = np.subtract(pad[:, 1:], pad[:, :-1])
            self.texture = (pad, step)
            self.texture_of, self.texture_version = garment, garment._version
        return self.texture

    def array(self, tag: str, shape: tuple[int, ...]) -> np.ndarray:
        n = math.prod(shape)
        flat = self.flat.get(tag)
        if flat is None or flat.size < n:
            flat = np.empty(n + n // 4, dtype=np.float32)
            self.flat[tag] = flat
        return flat[:n].reshape(shape)


_SCRATCH = _Scratch()

_STRIP_PIXELS = 1 << 15
"""Frame pixels per strip of the OpenCV path: its work arrays (384 KB for a 3-channel fp32 one
at this size) stay in cache between the steps that write and read them (on the bundled 640x480
clip the paste takes about 15 % less time than in one pass over the box); a strip costs about
35 OpenCV and numpy calls, so much smaller strips lose to the per-call overhead."""


def _upsample_visible(
    src: np.ndarray, bh: int, bw: int, rows: slice, cols: slice, tag: str
) -> Callable[[slice], np.ndarray]:
    """``cv2.resize(src, (bw, bh))[rows, cols]`` (INTER_LINEAR), handed out by rows of the cut.

    ``src`` is (h, w) or (h, w, C) float32 with C 1, 3 or 4 (OpenCV's 2-channel linear resize is
    slower than 3 channels and coarser: errors near 1e-3 of the values against 1e-5). Returns
    ``strip``: ``strip(r)`` for a slice ``r`` of the cut's ``vh`` rows is (n, vw) or (n, vw, C)
    float32, a view of scratch ``tag`` valid until the next ``strip`` call or resize of ``tag``.

    Fewer pixels are computed when the cut is large: one axis first, cut, then the other
    (bilinear is separable: the fp32 results differ in the last bits only), whichever of the
    three orders touches the fewest pixels. Rows first, the second, horizontal pass (the
    expensive one) runs when a strip is asked for, so the strip is still in cache when it is
    used; its vertical scale is 1, so strips are bit-identical to one pass over the cut.
    """
    h, w = src.shape[:2]
    chans = src.shape[2:]
    vh, vw = rows.stop - rows.start, cols.stop - cols.start
    costs = {"full": bh * bw, "rows": bh * w + vh * bw, "cols": h * bw + bh * vw}
    order = min(costs, key=costs.get)
    linear = cv2.INTER_LINEAR
    if order == "rows":
        tall = _SCRATCH.array(tag + ".pass1", (bh, w, *chans))
        tall = cv2.resize(src, (w, bh), dst=tall, interpolation=linear)[rows]

        def strip(r: slice) -> np.ndarray:
            n = r.stop - r.start
            out = _SCRATCH.array(tag, (n, bw, *chans))
            return cv2.resize(tall[r], (bw, n), dst=out, interpolation=linear)[:, cols]

        return strip
    if order == "full":
        out = _SCRATCH.array(tag, (bh, bw, *chans))
        cut = cv2.resize(src, (bw, bh), dst=out, interpolation=linear)[rows, cols]
    else:
        wide = _SCRATCH.array(tag + ".pass1", (h, bw, *chans))
        wide = cv2.resize(src, (bw, h), dst=wide, interpolation=linear)
        out = _SCRATCH.array(tag, (bh, vw, *chans))
        wide = np.ascontiguousarray(wide[:, cols])
        cut = cv2.resize(wide, (vw, bh), dst=out, interpolation=linear)[rows]
    return cut.__getitem__


def _interleave(
    planes: torch.Tensor, tag: str, scale: float = 1.0, *, out: np.ndarray | None = None
) -> np.ndarray:
    """(C, H, W) float32 tensor -> (H, W, C) scratch array ``tag`` (OpenCV's layout), or into
    ``out`` (an (H, W, C) float32 view) when given, times ``scale``."""
    c, h, w = planes.shape
    if out is None:
        out = _SCRATCH.array(tag, (h, w, c))
    if c == 1:
        np.copyto(out[..., 0], planes[0].numpy())
    else:
        out = cv2.merge([np.ascontiguousarray(p.numpy()) for p in planes], dst=out)
    if scale != 1.0:
        out *= scale
    return out


def _plane(x: torch.Tensor) -> np.ndarray:
    """(1, 1, h, w) float32 CPU tensor -> (h, w) C-contiguous numpy array (a view when it is)."""
    return np.ascontiguousarray(x[0, 0].numpy())


def _triple(plane: np.ndarray, tag: str) -> np.ndarray:
    """(n, vw) float32 -> (n, vw, 3) scratch array ``tag``, the plane in every channel: the
    factor of a 3-channel multiply-add (OpenCV does not broadcast, and numpy's broadcast over a
    last axis of 3 is ten times slower than this copy)."""
    return cv2.merge([plane, plane, plane], dst=_SCRATCH.array(tag, (*plane.shape, 3)))


def _paste_opencv(frame, box, vis, rendered, cloth_mask, keep_mask, garment, grid, shading):
    """The OpenCV path over ``vis`` (the part of the box that can change, ``(fx0, fy0, fx1,
    fy1)`` frame pixels): validated CPU tensors as :func:`paste` takes them; ``frame`` (H, W, 3)
    uint8 is written in place, strip of rows by strip (:data:`_STRIP_PIXELS`)."""
    x0, y0, bw, bh = box
    fx0, fy0, fx1, fy1 = vis
    h, w = rendered.shape[2:]
    hg, wg = garment.shape[1:]
    vh, vw = fy1 - fy0, fx1 - fx0
    rows, cols = slice(fy0 - y0, fy1 - y0), slice(fx0 - x0, fx1 - x0)

    def up(src: np.ndarray, tag: str) -> Callable[[slice], np.ndarray]:
        return _upsample_visible(src, bh, bw, rows, cols, tag)

    # model size (h, w): 255 * rendered (HWC); the masks and the grid as planes (one channel
    # each: cv2.resize of one costs half of three copies); the grid in pixels of the texture
    # padded by 2 (an affine map of the grid, which commutes with bilinear upsampling):
    # p = g * size / 2 + size / 2 - 0.5 + 2
    px, py = _SCRATCH.array("px", (h, w)), _SCRATCH.array("py", (h, w))
    gxy = grid[0].numpy()  # (h, w, 2) view
    for p, g, size in ((px, gxy[..., 0], wg), (py, gxy[..., 1], hg)):
        np.multiply(g, np.float32(0.5 * size), out=p)
        p += np.float32(0.5 * size + 1.5)
    maps = {
        "rd": up(_interleave(rendered[0], "rd", 255.0), "up.rd"),  # 255 * rendered
        "px": up(px, "up.px"),
        "py": up(py, "up.py"),
        "cm": up(_plane(cloth_mask), "up.cm"),
        "km": up(_plane(keep_mask), "up.km"),
        "sh": None if shading is None else up(_plane(shading), "up.sh"),
    }
    texture = _SCRATCH.padded_texture(garment)
    region = frame.numpy()[fy0:fy1, fx0:fx1]  # (vh, vw, 3) uint8 view, written in place
    n = max(1, _STRIP_PIXELS // vw)
    for r0 in range(0, vh, n):
        r = slice(r0, min(r0 + n, vh))
        strip = {k: None if m is None else m(r) for k, m in maps.items()}
        _blend_strip(region[r], texture, **strip)


def _blend_strip(region, texture, *, rd, px, py, cm, km, sh):
    """One strip of the visible box, in place: ``region`` (n, vw, 3) uint8 (any strides);
    ``texture`` the garment's ``(pad, step)`` (:meth:`_Scratch.padded_texture`); the upsampled
    maps at the strip's pixels, float32: ``rd`` (n, vw, 3) 255 * rendered (overwritten), the
    garment position ``px``, ``py`` in padded-texture pixels, ``cm``, ``km`` and ``sh`` (None:
    no shading), all (n, vw)."""
    pad, step = texture
    hg, wg = pad.shape[0] - 4, pad.shape[1] - 4
    n, vw = px.shape
    arr = _SCRATCH.array

    # garment: its four bilinear taps by nearest-neighbour remap at integer positions, blended
    # with the exact fp32 fractions. Positions are clamped to [0, size + 2] of the texture
    # padded with 2 zeros on each side (the taps of a clamped position are all outside the
    # garment, and every tap is inside the padded texture; a NaN becomes 0), so the tap at
    # (ix + dx, iy + dy) is the tap at (ix, iy) of the padded texture's view shifted by
    # (dx, dy): one int16 map serves every remap. The right neighbour comes as its difference
    # (``step``), the operand of the horizontal lerp.
    fx, fy = arr("fx", (n, vw)), arr("fy", (n, vw))
    ix, iy = arr("ix", (n, vw)), arr("iy", (n, vw))
    for p, f, i, size in ((px, fx, ix, wg), (py, fy, iy, hg)):
        cv2.threshold(p, 0.0, 0.0, cv2.THRESH_TOZERO, dst=f)  # max(p, 0)
        cv2.threshold(f, size + 2.0, 0.0, cv2.THRESH_TRUNC, dst=f)  # min(p, size + 2)
        np.floor(f, out=i)
        f -= i
    nearest, _ = cv2.convertMaps(ix, iy, cv2.CV_16SC2, nninterpolation=True)
    fx3, fy3 = _triple(fx, "w3.a"), _triple(fy, "w3.b")

    def tap(tex: np.ndarray, dy: int, tag: str) -> np.ndarray:  # (n, vw, 3) scratch
        return cv2.remap(tex[dy : dy + hg + 3, : wg + 3], nearest, None, cv2.INTER_NEAREST,
                         dst=arr(tag, (n, vw, 3)), borderMode=cv2.BORDER_CONSTANT,
                         borderValue=(0.0,) * 4)  # fmt: skip

    # lerps as ``a += (b - a) * f``, one cv2.accumulateProduct each; in x, b - a is step's tap
    top = tap(pad, 0, "top")
    cv2.accumulateProduct(tap(step, 0, "diff"), fx3, top)  # row iy
    bottom = tap(pad, 1, "bottom")
    cv2.accumulateProduct(tap(step, 1, "diff"), fx3, bottom)  # row iy + 1
    bottom -= top
    cv2.accumulateProduct(bottom, fy3, top)  # 255 * cloth
    if sh is not None:
        top *= _triple(sh, "w3.a")  # 255 * shaded cloth

    # 255 * masked = rd + M_c (255 cloth - rd); 255 * out = masked + M_a (frame - masked)
    top -= rd
    cv2.accumulateProduct(top, _triple(cm, "w3.a"), rd)  # rd (scratch) is now 255 * masked
    out = np.subtract(region, rd, out=top, dtype=np.float32)
    cv2.accumulateProduct(out, _triple(km, "w3.b"), rd)  # 255 * out
    out = rd
    out += 0.5
    cv2.threshold(out, 255.5, 0.0, cv2.THRESH_TRUNC, dst=out)  # min(out, 255.5)
    cv2.threshold(out, 0.0, 0.0, cv2.THRESH_TOZERO, dst=out)  # max(out, 0); NaN-free inputs
    np.copyto(region, out, casting="unsafe")  # truncation of values >= 0: the floor


# ----------------------------------------------------------------------------- reference


def paste_ref(
    frame: torch.Tensor,
    box: Sequence[int],
    rendered: torch.Tensor,
    cloth_mask: torch.Tensor,
    keep_mask: torch.Tensor,
    garment: torch.Tensor,
    grid: torch.Tensor,
    *,
    shading: torch.Tensor | None = None,
) -> torch.Tensor:
    """Plain float64 PyTorch reference of :func:`paste` (the module docstring's math with its
    own index arithmetic); returns a new frame and leaves ``frame`` alone. Not validated."""
    out = frame.clone()
    x0, y0, bw, bh = (int(b) for b in box)
    height, width = frame.shape[:2]
    c0, r0 = max(x0, 0), max(y0, 0)
    c1, r1 = min(x0 + bw, width), min(y0 + bh, height)
    if c1 <= c0 or r1 <= r0:
        return out
    f64 = torch.float64
    dev = frame.device
    h, w = rendered.shape[2:]
    cols = torch.arange(c0, c1, device=dev, dtype=f64)
    rows = torch.arange(r0, r1, device=dev, dtype=f64)
    u = (cols - x0 + 0.5) * w / bw - 0.5  # (vw,)
    v = (rows - y0 + 0.5) * h / bh - 0.5  # (vh,)
    ua, va = torch.floor(u), torch.floor(v)
    au, av = (u - ua)[None, :], (v - va)[:, None]
    ua, va = ua.long(), va.long()
    left, right = ua.clamp(0, w - 1), (ua + 1).clamp(0, w - 1)
    upper, lower = va.clamp(0, h - 1), (va + 1).clamp(0, h - 1)

    def resample(plane: torch.Tensor) -> torch.Tensor:  # (h, w) -> (vh, vw), clamp-to-edge
        p = plane.to(f64)
        t = p[upper][:, left] * (1 - au) + p[upper][:, right] * au
        b = p[lower][:, left] * (1 - au) + p[lower][:, right] * au
        return t * (1 - av) + b * av

    rgb = torch.stack([resample(rendered[0, c]) for c in range(3)])  # (3, vh, vw)
    mc = resample(cloth_mask[0, 0])
    ma = resample(keep_mask[0, 0])
    gx, gy = resample(grid[0, :, :, 0]), resample(grid[0, :, :, 1])

    hg, wg = garment.shape[1:]
    px = ((gx + 1) * wg - 1) / 2
    py = ((gy + 1) * hg - 1) / 2
    ix, iy = torch.floor(px), torch.floor(py)
    ax, ay = px - ix, py - iy
    ix, iy = ix.long(), iy.long()
    tex = garment[:3].to(f64)
    cloth = torch.zeros_like(rgb)
    for dy, wy in ((0, 1 - ay), (1, ay)):
        for dx, wx in ((0, 1 - ax), (1, ax)):
            tx, ty = ix + dx, iy + dy
            inside = (tx >= 0) & (tx < wg) & (ty >= 0) & (ty < hg)
            taps = tex[:, ty.clamp(0, hg - 1), tx.clamp(0, wg - 1)]  # (3, vh, vw)
            cloth += torch.where(inside, wx * wy, torch.zeros_like(wx)) * taps
    if shading is not None:
        cloth = cloth * resample(shading[0, 0])

    background = frame[r0:r1, c0:c1].permute(2, 0, 1).to(f64) / 255  # (3, vh, vw)
    masked = mc * cloth + (1 - mc) * rgb
    blended = (1 - ma) * masked + ma * background
    pixels = torch.floor(blended * 255 + 0.5).clamp(0, 255).to(torch.uint8)
    out[r0:r1, c0:c1] = pixels.permute(1, 2, 0)
    return out


@torch.library.custom_op("tryon::paste", mutates_args=("frame",))
def _paste_op(
    frame: torch.Tensor,
    box: Sequence[int],
    rendered: torch.Tensor,
    cloth_mask: torch.Tensor,
    keep_mask: torch.Tensor,
    garment: torch.Tensor,
    grid: torch.Tensor,
    shading: torch.Tensor | None = None,
    *,
    impl: str = "auto",
) -> None:
    # an op that mutates an input may not also return it: ``paste`` returns the frame
    paste(frame, box, rendered, cloth_mask, keep_mask, garment, grid, shading=shading, impl=impl)


@_paste_op.register_fake
def _(
    frame: torch.Tensor,
    box: Sequence[int],
    rendered: torch.Tensor,
    cloth_mask: torch.Tensor,
    keep_mask: torch.Tensor,
    garment: torch.Tensor,
    grid: torch.Tensor,
    shading: torch.Tensor | None = None,
    *,
    impl: str = "auto",
) -> None:
    return None
