"""The try-on composite with TensorRT's AOT plugin argument order: the kernel of the
``tryon::composite`` plugin (:mod:`export.tensorrt_plugins`).

Math, per pixel and channel ``c``, in fp32 (as :func:`kernels.composite.composite` without
feathering)::

    m   = cloth_mask * cloth[c] + (1 - cloth_mask) * rendered[c]
    out = (1 - background_mask) * m + background_mask * background[c]

Why another kernel: :func:`kernels.composite.composite`'s kernel interleaves each pointer with its
strides and takes a taps tensor, while an ahead-of-time TensorRT plugin is launched with its input
pointers first, then int32 scalars, then its output pointers. This kernel has that order:
``cloth, rendered, cloth_mask, background, background_mask`` pointers, every stride and ``H, W``
(int32), then ``out``. Grid ``(cdiv(H * W, BLOCK), N)``; inputs read in place through their
strides (N, C, H, W), any float16/float32 mix; the output has rendered's dtype.

Bytes per pixel: read ``3 * (s_cloth + s_rendered + s_background) + s_cloth_mask +
s_background_mask``, write ``3 * s_out`` (all fp16: 22 B read, 6 B written).
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from kernels.aot import register_aot
from kernels.composite import blend_channels, check_composite_args, composite_ref
from kernels.dispatch import Impl, resolve_impl

__all__ = ["PLUGIN_KERNEL", "composite_plugin", "composite_plugin_ref", "plugin_block"]

_INPUTS = ("cloth", "rendered", "cloth_mask", "background", "background_mask")  # kernel order


@triton.jit
def _composite_plugin_kernel(
    cloth_ptr, rendered_ptr, cloth_mask_ptr, background_ptr, background_mask_ptr,
    stride_cln, stride_clc, stride_clh, stride_clw,
    stride_rn, stride_rc, stride_rh, stride_rw,
    stride_cmn, stride_cmh, stride_cmw,
    stride_bgn, stride_bgc, stride_bgh, stride_bgw,
    stride_bmn, stride_bmh, stride_bmw,
    stride_on, stride_oc, stride_oh, stride_ow,
    H, W,
    out_ptr,
    BLOCK: tl.constexpr,
):  # fmt: skip
    n = tl.program_id(1).to(tl.int64)
    p = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)  # flat pixel h * W + w
    valid = p < H * W
    h = p // W
    w = p % W
    cm = tl.load(cloth_mask_ptr + n * stride_cmn + h * stride_cmh + w * stride_cmw, mask=valid,
                 other=0).to(tl.float32)  # fmt: skip
    bm = tl.load(background_mask_ptr + n * stride_bmn + h * stride_bmh + w * stride_bmw,
                 mask=valid, other=0).to(tl.float32)  # fmt: skip
    cl_base = cloth_ptr + n * stride_cln + h * stride_clh + w * stride_clw
    rd_base = rendered_ptr + n * stride_rn + h * stride_rh + w * stride_rw
    bg_base = background_ptr + n * stride_bgn + h * stride_bgh + w * stride_bgw
    out_base = out_ptr + n * stride_on + h * stride_oh + w * stride_ow
    blend_channels(cl_base, stride_clc, rd_base, stride_rc, bg_base, stride_bgc, out_base,
                   stride_oc, cm, bm, valid, False)  # fmt: skip


def aot_signature(dtype: str) -> dict[str, str]:
    """Triton signature of :func:`_composite_plugin_kernel` with every tensor of ``dtype``
    ("fp32" or "fp16"), in argument order: inputs, int32 scalars, output, constexprs."""
    sig = {f"{name}_ptr": f"*{dtype}" for name in _INPUTS}
    for prefix, dims in (("cl", "nchw"), ("r", "nchw"), ("cm", "nhw"), ("bg", "nchw"),
                         ("bm", "nhw"), ("o", "nchw")):  # fmt: skip
        sig.update({f"stride_{prefix}{d}": "i32" for d in dims})
    sig.update(H="i32", W="i32", out_ptr=f"*{dtype}", BLOCK="constexpr")
    return sig


def plugin_block(hw: int) -> tuple[int, int]:
    """(BLOCK, num_warps) for ``hw`` pixels per frame."""
    block = max(16, min(1024, triton.next_power_of_2(hw)))
    return block, (4 if block >= 256 else 2)


register_aot(_composite_plugin_kernel, aot_signature("fp16"), {"BLOCK": 1024}, variant="fp16")


def composite_plugin(
    cloth: torch.Tensor,
    rendered: torch.Tensor,
    cloth_mask: torch.Tensor,
    background: torch.Tensor,
    background_mask: torch.Tensor,
    *,
    impl: Impl = "auto",
) -> torch.Tensor:
    """Composite cloth over the rendered person, then the background over both (one pass).

    Args:
        cloth, rendered, background: (N, 3, H, W) float16/float32 in [0, 1], any strides.
        cloth_mask, background_mask: (N, 1, H, W) float16/float32 in [0, 1] or bool.
        impl: ``"auto"`` (Triton on CUDA, torch on CPU), ``"triton"`` or ``"torch"``.

    Returns:
        A fresh contiguous (N, 3, H, W) tensor of rendered's dtype.

    Raises:
        InputError: as :func:`kernels.composite.composite`, before any work.
    """
    images = {"cloth": cloth, "rendered": rendered, "background": background}
    masks = {"cloth_mask": cloth_mask, "background_mask": background_mask}
    check_composite_args(images, masks, 0.0, None, "nchw")
    path = resolve_impl(impl, cloth.device, has_opencv=False)
    if path == "torch":
        return composite_plugin_ref(cloth, rendered, cloth_mask, background, background_mask)
    # bool masks are read as their 0/1 bytes (a view: same storage and strides)
    cm, bm = (m.view(torch.uint8) if m.dtype == torch.bool else m
              for m in (cloth_mask, background_mask))  # fmt: skip
    n, _, h, w = cloth.shape
    out = torch.empty((n, 3, h, w), dtype=rendered.dtype, device=cloth.device)  # (N, 3, H, W)
    block, num_warps = plugin_block(h * w)
    _composite_plugin_kernel[(triton.cdiv(h * w, block), n)](
        cloth, rendered, cm, background, bm,
        *cloth.stride(), *rendered.stride(), cm.stride(0), cm.stride(2), cm.stride(3),
        *background.stride(), bm.stride(0), bm.stride(2), bm.stride(3), *out.stride(),
        h, w, out, BLOCK=block, num_warps=num_warps,
    )  # fmt: skip
    return out


def composite_plugin_ref(
    cloth: torch.Tensor,
    rendered: torch.Tensor,
    cloth_mask: torch.Tensor,
    background: torch.Tensor,
    background_mask: torch.Tensor,
) -> torch.Tensor:
    """Plain-PyTorch reference: :func:`kernels.composite.composite_ref` without feathering, in
    rendered's dtype, (N, 3, H, W)."""
    return composite_ref(cloth, rendered, cloth_mask, background, background_mask)


@torch.library.custom_op("tryon::composite_plugin", mutates_args=())
def _composite_plugin_op(
    cloth: torch.Tensor,
    rendered: torch.Tensor,
    cloth_mask: torch.Tensor,
    background: torch.Tensor,
    background_mask: torch.Tensor,
    impl: str = "auto",
) -> torch.Tensor:
    return composite_plugin(cloth, rendered, cloth_mask, background, background_mask, impl=impl)


@_composite_plugin_op.register_fake
def _(cloth, rendered, cloth_mask, background, background_mask, impl="auto"):
    n, _, h, w = cloth.shape
    return cloth.new_empty((n, 3, h, w), dtype=rendered.dtype)


PLUGIN_KERNEL = _composite_plugin_kernel
"""The ``@triton.jit`` kernel the TensorRT plugin launches (compiled to PTX by
:mod:`export.tensorrt_plugins`)."""
