"""Final try-on composite: cloth over the rendered person, then the background over both.

Math, per pixel and channel ``c`` (every value converted to float32, all arithmetic in fp32)::

    m   = cloth_mask * cloth[c] + (1 - cloth_mask) * rendered[c]
    out = (1 - background_mask) * m + background_mask * background[c]

Images are (N, 3, H, W) float16/float32 with values in **[0, 1]**; masks are (N, 1, H, W)
float16/float32 in [0, 1] or bool. Every input may have any strides (NCHW, channels-last, sliced,
expanded) and its own dtype: each is read in place through its own strides, never copied.

Feathering (``feather > 0``): both masks are first softened by a Gaussian of sigma ``feather``
pixels, computed inside the same pass (each program reads the mask neighbourhood itself). The
kernel has ``ksize = 2 * ceil(FEATHER_RADIUS_SIGMAS * feather) + 1`` taps (radius 3 sigma), the
taps being OpenCV's (:func:`kernels.gaussian_weights.gaussian_weights`) rounded to float32, borders
reflect-101 (:mod:`kernels.border`, also for kernels wider than the image). The separable weights
are applied as one 2-D sum, in this order::

    blurred[h, w] = sum_j w[j] * (sum_i w[i] * mask[reflect(h + j - r), reflect(w + i - r)])

accumulated in fp32 from j = 0 (i = 0) upward, ``r = ksize // 2``. ``ksize`` is capped at
:data:`MAX_FEATHER_KSIZE` (``feather <= 10`` always fits).

Output (``out_dtype``): float16/float32 round the fp32 result once (to nearest even); uint8 gives
display-ready bytes ``clamp(floor(255 * out + 0.5), 0, 255)`` (round half up, not half to even;
non-finite image values give unspecified bytes). ``out_layout="nchw"`` returns a contiguous
(N, 3, H, W) tensor, ``"nhwc"`` a contiguous (N, H, W, 3) frame; always a fresh tensor.

Exactness: the torch reference :func:`composite_ref` performs the same fp32 operations in the same
order, so under Triton's interpreter the kernel equals it bit for bit (uint8 included). Compiled
for a GPU, the compiler may fuse multiply-adds: float results then differ in the last bits and
uint8 bytes by at most 1 at rounding ties.

Bytes per pixel (Triton path; the feather halo re-reads hit cache): read
``3 * (s_cloth + s_rendered + s_background) + s_cloth_mask + s_background_mask``, write
``3 * s_out``, ``s`` being the element size. All fp16 -> 22 B read, 6 B written; all fp32 ->
44 B read, 12 B written; fp16 in with uint8 out -> 22 B read, 3 B written.
"""

from __future__ import annotations

import math
import numbers

import cv2
import numpy as np
import torch
import triton
import triton.language as tl

from kernels.aot import register_aot
from kernels.border import reflect101, reflect101_index_ref
from kernels.dispatch import Impl, resolve_impl
from kernels.errors import InputError
from kernels.gaussian_weights import gaussian_weights
from kernels.validation import check_image, check_like, check_unit_range

__all__ = [
    "FEATHER_RADIUS_SIGMAS",
    "MAX_FEATHER_KSIZE",
    "composite",
    "composite_ref",
    "feather_ksize",
]

FEATHER_RADIUS_SIGMAS = 3
"""Feather kernel radius in sigmas: ``ksize = 2 * ceil(FEATHER_RADIUS_SIGMAS * feather) + 1``."""

MAX_FEATHER_KSIZE = 63
"""Largest feather kernel (each mask costs ksize^2 reads per pixel, mostly cache hits)."""

IMAGE_DTYPES = (torch.float16, torch.float32)
MASK_DTYPES = (torch.float16, torch.float32, torch.bool)
OUT_DTYPES = (torch.float16, torch.float32, torch.uint8)
OUT_LAYOUTS = ("nchw", "nhwc")


@triton.jit
def blend_channels(
    cl_base, stride_clc, rd_base, stride_rc, bg_base, stride_bgc, out_base, stride_oc,
    cm, bm, valid, OUT_UINT8: tl.constexpr,
):  # fmt: skip
    """The two-stage blend of one block of pixels, channel by channel, in fp32 (module
    docstring), stored in ``out_base``'s dtype (uint8: rounded half up and clamped). ``*_base``
    point at channel 0 of each pixel; ``cm``, ``bm`` are the (feathered) masks, fp32."""
    for c in tl.static_range(3):
        cl = tl.load(cl_base + c * stride_clc, mask=valid, other=0).to(tl.float32)
        rd = tl.load(rd_base + c * stride_rc, mask=valid, other=0).to(tl.float32)
        bg = tl.load(bg_base + c * stride_bgc, mask=valid, other=0).to(tl.float32)
        mixed = cm * cl + (1.0 - cm) * rd
        res = (1.0 - bm) * mixed + bm * bg
        if OUT_UINT8:
            res = tl.floor(res * 255.0 + 0.5)
            res = tl.minimum(tl.maximum(res, 0.0), 255.0)
        tl.store(out_base + c * stride_oc, res.to(out_base.dtype.element_ty), mask=valid)


@triton.jit
def _composite_kernel(
    cloth_ptr, stride_cln, stride_clc, stride_clh, stride_clw,
    rendered_ptr, stride_rn, stride_rc, stride_rh, stride_rw,
    cloth_mask_ptr, stride_cmn, stride_cmh, stride_cmw,
    background_ptr, stride_bgn, stride_bgc, stride_bgh, stride_bgw,
    background_mask_ptr, stride_bmn, stride_bmh, stride_bmw,
    taps_ptr,
    out_ptr, stride_on, stride_oc, stride_oh, stride_ow,
    H, W,
    FEATHER_K: tl.constexpr,
    OUT_UINT8: tl.constexpr,
    BLOCK: tl.constexpr,
):  # fmt: skip
    # program (tile of BLOCK pixels of one frame, frame n)
    pid = tl.program_id(0).to(tl.int64)
    n = tl.program_id(1).to(tl.int64)
    p = pid * BLOCK + tl.arange(0, BLOCK)  # flat pixel index h * W + w, int64
    valid = p < H * W
    h = p // W
    w = p % W

    cm_base = cloth_mask_ptr + n * stride_cmn
    bm_base = background_mask_ptr + n * stride_bmn
    if FEATHER_K == 1:
        cm = tl.load(cm_base + h * stride_cmh + w * stride_cmw, mask=valid, other=0).to(tl.float32)
        bm = tl.load(bm_base + h * stride_bmh + w * stride_bmw, mask=valid, other=0).to(tl.float32)
    else:
        radius = FEATHER_K // 2
        cm = tl.zeros([BLOCK], dtype=tl.float32)
        bm = tl.zeros([BLOCK], dtype=tl.float32)
        for j in range(FEATHER_K):
            wy = tl.load(taps_ptr + j)
            hh = reflect101(h + (j - radius), H)
            cm_row = cm_base + hh * stride_cmh
            bm_row = bm_base + hh * stride_bmh
            cm_acc = tl.zeros([BLOCK], dtype=tl.float32)
            bm_acc = tl.zeros([BLOCK], dtype=tl.float32)
            for i in range(FEATHER_K):
                wx = tl.load(taps_ptr + i)
                ww = reflect101(w + (i - radius), W)
                cmv = tl.load(cm_row + ww * stride_cmw, mask=valid, other=0).to(tl.float32)
                bmv = tl.load(bm_row + ww * stride_bmw, mask=valid, other=0).to(tl.float32)
                cm_acc = cm_acc + wx * cmv
                bm_acc = bm_acc + wx * bmv
            cm = cm + wy * cm_acc
            bm = bm + wy * bm_acc

    cl_base = cloth_ptr + n * stride_cln + h * stride_clh + w * stride_clw
    rd_base = rendered_ptr + n * stride_rn + h * stride_rh + w * stride_rw
    bg_base = background_ptr + n * stride_bgn + h * stride_bgh + w * stride_bgw
    out_base = out_ptr + n * stride_on + h * stride_oh + w * stride_ow
    blend_channels(cl_base, stride_clc, rd_base, stride_rc, bg_base, stride_bgc, out_base,
                   stride_oc, cm, bm, valid, OUT_UINT8)  # fmt: skip


def _aot_signature(image: str, mask: str, out: str) -> dict[str, str]:
    sig = {}
    for ptr, dtype, strides in (
        ("cloth_ptr", image, ("stride_cln", "stride_clc", "stride_clh", "stride_clw")),
        ("rendered_ptr", image, ("stride_rn", "stride_rc", "stride_rh", "stride_rw")),
        ("cloth_mask_ptr", mask, ("stride_cmn", "stride_cmh", "stride_cmw")),
        ("background_ptr", image, ("stride_bgn", "stride_bgc", "stride_bgh", "stride_bgw")),
        ("background_mask_ptr", mask, ("stride_bmn", "stride_bmh", "stride_bmw")),
        ("taps_ptr", "fp32", ()),
        ("out_ptr", out, ("stride_on", "stride_oc", "stride_oh", "stride_ow")),
    ):
        sig[ptr] = f"*{dtype}"
        sig.update(dict.fromkeys(strides, "i32"))
    sig.update(H="i32", W="i32", FEATHER_K="constexpr", OUT_UINT8="constexpr", BLOCK="constexpr")
    return sig


register_aot(
    _composite_kernel,
    _aot_signature("fp32", "fp32", "fp32"),
    {"FEATHER_K": 1, "OUT_UINT8": False, "BLOCK": 1024},
    variant="fp32-nofeather",
)
register_aot(
    _composite_kernel,
    _aot_signature("fp16", "fp16", "u8"),
    {"FEATHER_K": 7, "OUT_UINT8": True, "BLOCK": 256},
    variant="fp16-u8-feather7",
)


def feather_ksize(feather: float) -> int:
    """Feather kernel size: ``2 * ceil(FEATHER_RADIUS_SIGMAS * feather) + 1`` (1 for 0)."""
    return 2 * math.ceil(FEATHER_RADIUS_SIGMAS * feather) + 1


def _feather_taps(feather: float) -> tuple[float, ...]:
    """Float32-representable Gaussian taps for ``feather``, ``(1.0,)`` for no feathering."""
    if feather == 0:
        return (1.0,)
    taps = gaussian_weights(feather_ksize(feather), feather)
    return tuple(torch.tensor(taps, dtype=torch.float32).tolist())


def check_composite_args(
    images: dict[str, object],
    masks: dict[str, object],
    feather: object,
    out_dtype: object,
    out_layout: object,
) -> float:
    """Validate everything but ``impl``, cheapest checks first; returns ``feather`` as a float."""
    for name, x in images.items():
        check_image(name, x, dtypes=IMAGE_DTYPES, channels=3)
    for name, x in masks.items():
        check_image(name, x, dtypes=MASK_DTYPES, channels=1)
    ref = images["cloth"]
    if ref.shape[0] > 65535:  # CUDA's limit on grid axis 1, which carries the frames
        raise InputError("cloth", "at most 65535 frames (N) per call", ref)
    for name, x in images.items():
        check_like(name, x, "cloth", ref, channels=3)
    for name, x in masks.items():
        check_like(name, x, "cloth", ref, channels=1)
    if (
        not isinstance(feather, numbers.Real)
        or isinstance(feather, bool)
        or not math.isfinite(feather)
        or feather < 0
    ):
        raise InputError("feather", "a finite float >= 0 (Gaussian sigma in pixels)", feather)
    feather = float(feather)
    if feather > 0 and feather_ksize(feather) > MAX_FEATHER_KSIZE:
        raise InputError(
            "feather",
            f"a sigma whose kernel 2*ceil({FEATHER_RADIUS_SIGMAS}*feather)+1 is at most "
            f"{MAX_FEATHER_KSIZE} taps (feather <= 10 fits)",
            feather,
        )
    if out_dtype is not None and out_dtype not in OUT_DTYPES:
        raise InputError(
            "out_dtype", "None, torch.float16, torch.float32 or torch.uint8", out_dtype
        )
    if out_layout not in OUT_LAYOUTS:
        raise InputError("out_layout", "'nchw' or 'nhwc'", out_layout)
    for name, x in masks.items():
        check_unit_range(name, x)
    return feather


def _empty_out(
    like: torch.Tensor, dtype: torch.dtype, out_layout: str
) -> tuple[torch.Tensor, tuple[int, int, int, int]]:
    """Fresh contiguous output and its strides in (n, c, h, w) order."""
    n, _, h, w = like.shape
    if out_layout == "nchw":
        out = torch.empty((n, 3, h, w), dtype=dtype, device=like.device)  # (N, 3, H, W)
        return out, tuple(out.stride())
    out = torch.empty((n, h, w, 3), dtype=dtype, device=like.device)  # (N, H, W, 3)
    s_n, s_h, s_w, s_c = out.stride()
    return out, (s_n, s_c, s_h, s_w)


def _launch_config(hw: int, feather_k: int) -> tuple[int, int]:
    """(BLOCK, num_warps): big tiles for the streaming case, smaller when feathering."""
    cap = 1024 if feather_k == 1 else 256
    block = max(16, min(cap, triton.next_power_of_2(hw)))
    return block, (4 if block >= 256 else 2)


def composite(
    cloth: torch.Tensor,
    rendered: torch.Tensor,
    cloth_mask: torch.Tensor,
    background: torch.Tensor,
    background_mask: torch.Tensor,
    *,
    feather: float = 0.0,
    out_dtype: torch.dtype | None = None,
    out_layout: str = "nchw",
    impl: Impl = "auto",
) -> torch.Tensor:
    """Composite cloth over the rendered person, then the background over both (one pass).

    Args:
        cloth: (N, 3, H, W) float16/float32 in [0, 1], any strides.
        rendered: (N, 3, H, W) float16/float32 in [0, 1], any strides.
        cloth_mask: (N, 1, H, W) float16/float32 in [0, 1] or bool; 1 = cloth.
        background: (N, 3, H, W) float16/float32 in [0, 1], any strides.
        background_mask: (N, 1, H, W) float16/float32 in [0, 1] or bool; 1 = background.
        feather: Gaussian sigma in pixels softening both masks; 0 = no feathering.
        out_dtype: None (rendered's dtype), torch.float16, torch.float32, or torch.uint8
            (``clamp(floor(255 * out + 0.5), 0, 255)``).
        out_layout: ``"nchw"`` -> (N, 3, H, W), ``"nhwc"`` -> (N, H, W, 3); both contiguous.
        impl: ``"auto"`` (Triton on CUDA, OpenCV on CPU), ``"triton"``, ``"torch"`` or
            ``"opencv"`` (the masks feathered by ``cv2.sepFilter2D`` with the same taps, the
            blend as the reference: floats within a few ulps, uint8 within 1 of the reference).

    Returns:
        A fresh tensor of ``out_dtype`` in ``out_layout``.

    Raises:
        InputError: naming the argument, before any work: wrong rank, shape, channels, dtype,
            device, masks outside [0, 1], bad ``feather``, ``out_dtype``, ``out_layout`` or
            ``impl``.
    """
    images = {"cloth": cloth, "rendered": rendered, "background": background}
    masks = {"cloth_mask": cloth_mask, "background_mask": background_mask}
    feather = check_composite_args(images, masks, feather, out_dtype, out_layout)
    path = resolve_impl(impl, cloth.device, has_opencv=True)
    dtype = rendered.dtype if out_dtype is None else out_dtype
    if path == "opencv":
        taps = _feather_taps(feather)
        return composite_ref(
            cloth, rendered, _feather_opencv(cloth_mask, taps), background,
            _feather_opencv(background_mask, taps), out_dtype=dtype, out_layout=out_layout,
        )  # fmt: skip
    if path == "torch":
        return composite_ref(
            cloth, rendered, cloth_mask, background, background_mask,
            feather=feather, out_dtype=dtype, out_layout=out_layout,
        )  # fmt: skip

    taps = _feather_taps(feather)
    taps_t = torch.tensor(taps, dtype=torch.float32, device=cloth.device)
    # bool masks are read as their 0/1 bytes (a view: same storage and strides)
    cm = cloth_mask.view(torch.uint8) if cloth_mask.dtype == torch.bool else cloth_mask
    bm = (
        background_mask.view(torch.uint8)
        if background_mask.dtype == torch.bool
        else background_mask
    )
    out, out_strides = _empty_out(cloth, dtype, out_layout)
    n, _, h, w = cloth.shape
    block, num_warps = _launch_config(h * w, len(taps))
    grid = (triton.cdiv(h * w, block), n)
    _composite_kernel[grid](
        cloth, *cloth.stride(),
        rendered, *rendered.stride(),
        cm, cm.stride(0), cm.stride(2), cm.stride(3),
        background, *background.stride(),
        bm, bm.stride(0), bm.stride(2), bm.stride(3),
        taps_t,
        out, *out_strides,
        h, w,
        FEATHER_K=len(taps),
        OUT_UINT8=dtype == torch.uint8,
        BLOCK=block,
        num_warps=num_warps,
    )  # fmt: skip
    return out


def _feather_ref(mask: torch.Tensor, taps: tuple[float, ...]) -> torch.Tensor:
    """(N, 1, H, W) fp32 mask blurred like the kernel: same taps, same fp32 summation order."""
    k = len(taps)
    if k == 1:
        return mask
    _, _, h, w = mask.shape
    offsets = torch.arange(k, device=mask.device) - k // 2
    cols = reflect101_index_ref(torch.arange(w, device=mask.device) + offsets[:, None], w)  # (K, W)
    rows = reflect101_index_ref(torch.arange(h, device=mask.device) + offsets[:, None], h)  # (K, H)
    wt = torch.tensor(taps, dtype=torch.float32, device=mask.device)  # 0-d fp32 factors below
    across = torch.zeros_like(mask)
    for i in range(k):  # across[.., r, c] = sum_i w[i] * mask[.., r, reflect(c + i - k//2)]
        across = across + wt[i] * mask[..., cols[i]]
    out = torch.zeros_like(mask)
    for j in range(k):  # out[.., r, c] = sum_j w[j] * across[.., reflect(r + j - k//2), c]
        out = out + wt[j] * across[..., rows[j], :]
    return out


def _feather_opencv(mask: torch.Tensor, taps: tuple[float, ...]) -> torch.Tensor:
    """(N, 1, H, W) mask -> fp32, blurred by OpenCV's separable filter with the same float32
    taps and reflect-101 borders (its own summation order: within a few fp32 ulps of
    :func:`_feather_ref`). Kernels wider than the image use the reference's multi-bounce
    reflection."""
    mask = mask.to(torch.float32)
    k = len(taps)
    if k == 1:
        return mask
    if k // 2 >= min(mask.shape[2], mask.shape[3]):
        return _feather_ref(mask, taps)
    kernel = np.asarray(taps, dtype=np.float32)
    planes = mask[:, 0].contiguous().numpy()
    border = cv2.BORDER_REFLECT_101
    out = np.stack([cv2.sepFilter2D(p, cv2.CV_32F, kernel, kernel, borderType=border)
                    for p in planes])  # fmt: skip
    return torch.from_numpy(out)[:, None]


def composite_ref(
    cloth: torch.Tensor,
    rendered: torch.Tensor,
    cloth_mask: torch.Tensor,
    background: torch.Tensor,
    background_mask: torch.Tensor,
    *,
    feather: float = 0.0,
    out_dtype: torch.dtype | None = None,
    out_layout: str = "nchw",
) -> torch.Tensor:
    """Plain-PyTorch reference of :func:`composite`: the same fp32 operations in the same order.

    Arguments are as for :func:`composite` and are not validated here (:func:`composite` does).
    """
    dtype = rendered.dtype if out_dtype is None else out_dtype
    taps = _feather_taps(float(feather))
    cm = _feather_ref(cloth_mask.to(torch.float32), taps)  # (N, 1, H, W)
    bm = _feather_ref(background_mask.to(torch.float32), taps)  # (N, 1, H, W)
    cl, rd, bg = (x.to(torch.float32) for x in (cloth, rendered, background))  # (N, 3, H, W)
    mixed = cm * cl + (1.0 - cm) * rd
    res = (1.0 - bm) * mixed + bm * bg
    if dtype == torch.uint8:
        res = torch.floor(res * 255.0 + 0.5).clamp(0.0, 255.0)
    res = res.to(dtype)
    if out_layout == "nhwc":
        return res.permute(0, 2, 3, 1).contiguous()  # (N, H, W, 3)
    return res.contiguous()  # (N, 3, H, W)


@torch.library.custom_op("tryon::composite", mutates_args=())
def _composite_op(
    cloth: torch.Tensor,
    rendered: torch.Tensor,
    cloth_mask: torch.Tensor,
    background: torch.Tensor,
    background_mask: torch.Tensor,
    *,
    feather: float = 0.0,
    out_dtype: torch.dtype | None = None,
    out_layout: str = "nchw",
    impl: str = "auto",
) -> torch.Tensor:
    return composite(
        cloth, rendered, cloth_mask, background, background_mask,
        feather=feather, out_dtype=out_dtype, out_layout=out_layout, impl=impl,
    )  # fmt: skip


@_composite_op.register_fake
def _(
    cloth: torch.Tensor,
    rendered: torch.Tensor,
    cloth_mask: torch.Tensor,
    background: torch.Tensor,
    background_mask: torch.Tensor,
    *,
    feather: float = 0.0,
    out_dtype: torch.dtype | None = None,
    out_layout: str = "nchw",
    impl: str = "auto",
) -> torch.Tensor:
    n, _, h, w = cloth.shape
    dtype = rendered.dtype if out_dtype is None else out_dtype
    shape = (n, 3, h, w) if out_layout == "nchw" else (n, h, w, 3)
    return cloth.new_empty(shape, dtype=dtype)
