"""One head of the MPDT patch attention in ONE launch: the kernel of TensorRT's
``tryon::patch_attention`` plugin (:mod:`export.tensorrt_plugins`).

Same math as :mod:`kernels.patch_attention`, for head ``h`` with channels ``[c0, c0 + Cn)`` and
patch ``(PH, PW)``: tokens are patches of all T frames (``N = T * (H/PH) * (W/PW)`` of them,
``D = Cn * PH * PW`` values each)::

    S = (Q K^T) / sqrt(D)             fp32 accumulation
    S[:, j] = -inf                    where key patch j has no pixel > 0 in the mask
    P = softmax(S, rows)              fp32 statistics; a row with no key left is all zeros
    O = P V                           written to the output's channels [0, Cn)

Why another kernel: TensorRT's ahead-of-time plugins launch exactly one kernel per plugin node,
and :mod:`kernels.patch_attention` takes three per head (split-D scores, softmax, P V), which is
the better plan when D is huge and N tiny (it spreads D over the GPU). Here one program owns
``BLOCK_M`` queries of one sequence and *all* N keys: it accumulates their scores over D (the
whole score row stays in registers, ``BLOCK_N = next_pow2(N) <= MAX_TOKENS``), reads the mask
patches of its keys, does the softmax, then streams V over D for ``P V``. Grid:
``(cdiv(N, BLOCK_M), B)``. Fine for the small N of the MPDT heads (the lite demo: N = 4 ... 256),
at the cost of parallelism when N is small and D large (the whole-map head).

Argument order is TensorRT's AOT plugin order: input pointers (q, k, v, mask), then int32
scalars (strides, sizes, channel offset), then the output pointer; the softmax scale is a
``constexpr`` (AOT plugins take no float scalars).

Bytes per program: its ``BLOCK_M`` query rows (``BLOCK_M * D``), all keys and values of its
sequence (``2 * N * D``) and the mask (``T * H * W``) read once; ``BLOCK_M * D`` written. FLOPs
per head: ``4 * B * N^2 * D`` (as the three-launch kernel).
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
from kernels.patch_attention import (
    check_attention_inputs,
    element_offsets,
    patch_attention_ref,
    token_offsets,
)

__all__ = [
    "PLUGIN_KERNEL",
    "MAX_TOKENS",
    "patch_attention_plugin",
    "patch_attention_plugin_ref",
    "plugin_blocks",
]

MAX_TOKENS = 1024
"""Most tokens per head (T * patches per frame): the score row of a query lives in registers."""

_TILE_ELEMENTS = 8192  # K / V / mask tile budget per step (elements), keeps registers in check


@triton.jit
def _patch_attention_plugin_kernel(
    q_ptr, k_ptr, v_ptr, mask_ptr,
    stride_qb, stride_qt, stride_qc, stride_qh, stride_qw,
    stride_kb, stride_kt, stride_kc, stride_kh, stride_kw,
    stride_vb, stride_vt, stride_vc, stride_vh, stride_vw,
    stride_mb, stride_mt, stride_mh, stride_mw,
    stride_ob, stride_ot, stride_oc, stride_oh, stride_ow,
    T, H, W, c0,
    o_ptr,
    PH: tl.constexpr, PW: tl.constexpr, CN: tl.constexpr, SCALE: tl.constexpr,
    HAS_MASK: tl.constexpr, IEEE: tl.constexpr,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr, BLOCK_P: tl.constexpr,
):  # fmt: skip
    D = CN * PH * PW
    b = tl.program_id(1).to(tl.int64)
    npw = W // PW
    n_per_frame = (H // PH) * npw
    n_tok = T * n_per_frame
    m = tl.program_id(0).to(tl.int64) * BLOCK_M + tl.arange(0, BLOCK_M)  # query tokens
    n = tl.arange(0, BLOCK_N).to(tl.int64)  # every key token of the sequence
    m_ok = m < n_tok
    keep = n < n_tok

    # 1. scores of BLOCK_M queries against all keys, accumulated over D
    q_tok = b * stride_qb + token_offsets(m, npw, n_per_frame, PH, PW, stride_qt, stride_qh,
                                           stride_qw)  # fmt: skip
    k_tok = b * stride_kb + token_offsets(n, npw, n_per_frame, PH, PW, stride_kt, stride_kh,
                                           stride_kw)  # fmt: skip
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    for d0 in range(0, D, BLOCK_D):
        e = d0 + tl.arange(0, BLOCK_D)
        e_ok = e < D
        q_el = element_offsets(e, c0, PH, PW, stride_qc, stride_qh, stride_qw)
        k_el = element_offsets(e, c0, PH, PW, stride_kc, stride_kh, stride_kw)
        qt = tl.load(q_ptr + q_tok[:, None] + q_el[None, :], mask=m_ok[:, None] & e_ok[None, :],
                     other=0.0)  # fmt: skip
        kt = tl.load(k_ptr + k_tok[:, None] + k_el[None, :], mask=keep[:, None] & e_ok[None, :],
                     other=0.0)  # fmt: skip
        if IEEE:
            acc += tl.dot(qt, tl.trans(kt), input_precision="ieee")
        else:
            acc += tl.dot(qt, tl.trans(kt))

    # 2. key validity (any pixel of the key's patch > 0), softmax in fp32
    if HAS_MASK:
        frame = n // n_per_frame
        patch = n % n_per_frame
        corner = (b * stride_mb + frame * stride_mt + (patch // npw) * PH * stride_mh
                  + (patch % npw) * PW * stride_mw)  # fmt: skip
        hit = tl.zeros((BLOCK_N,), dtype=tl.float32)
        for p0 in range(0, PH * PW, BLOCK_P):
            p = p0 + tl.arange(0, BLOCK_P)
            pix = (p // PW) * stride_mh + (p % PW) * stride_mw
            mv = tl.load(mask_ptr + corner[:, None] + pix[None, :],
                         mask=keep[:, None] & (p < PH * PW)[None, :], other=0)  # fmt: skip
            hit = tl.maximum(hit, tl.max(mv.to(tl.float32), axis=1))
        keep = keep & (hit > 0)
    s = tl.where(keep[None, :], acc * SCALE, float("-inf"))
    row_max = tl.max(s, axis=1)
    row_max = tl.where(row_max == float("-inf"), 0.0, row_max)  # no key left: avoid inf - inf
    num = tl.where(keep[None, :], tl.exp(s - row_max[:, None]), 0.0)
    den = tl.sum(num, axis=1)
    probs = tl.where(den[:, None] > 0, num / tl.maximum(den, 1e-30)[:, None], 0.0)

    # 3. P V over D, straight into the output's patch positions
    v_tok = b * stride_vb + token_offsets(n, npw, n_per_frame, PH, PW, stride_vt, stride_vh,
                                           stride_vw)  # fmt: skip
    o_tok = b * stride_ob + token_offsets(m, npw, n_per_frame, PH, PW, stride_ot, stride_oh,
                                           stride_ow)  # fmt: skip
    for d0 in range(0, D, BLOCK_D):
        e = d0 + tl.arange(0, BLOCK_D)
        e_ok = e < D
        v_el = element_offsets(e, c0, PH, PW, stride_vc, stride_vh, stride_vw)
        vt = tl.load(v_ptr + v_tok[:, None] + v_el[None, :], mask=keep[:, None] & e_ok[None, :],
                     other=0.0)  # fmt: skip
        if IEEE:
            out = tl.dot(probs, vt, input_precision="ieee")
        else:
            out = tl.dot(probs.to(vt.dtype), vt)
        o_el = element_offsets(e, 0, PH, PW, stride_oc, stride_oh, stride_ow)
        tl.store(o_ptr + o_tok[:, None] + o_el[None, :], out.to(o_ptr.dtype.element_ty),
                 mask=m_ok[:, None] & e_ok[None, :])  # fmt: skip


def aot_signature(dtype: str) -> dict[str, str]:
    """Triton signature of :func:`_patch_attention_plugin_kernel` for ``dtype`` ("fp32" or
    "fp16") tensors, in argument order: inputs, int32 scalars, output, then the constexprs."""
    sig = {name: f"*{dtype}" for name in ("q_ptr", "k_ptr", "v_ptr", "mask_ptr")}
    for prefix, dims in (("q", "btchw"), ("k", "btchw"), ("v", "btchw"), ("m", "bthw"),
                         ("o", "btchw")):  # fmt: skip
        sig.update({f"stride_{prefix}{d}": "i32" for d in dims})
    sig.update(T="i32", H="i32", W="i32", c0="i32", o_ptr=f"*{dtype}")
    for name in ("PH", "PW", "CN", "SCALE", "HAS_MASK", "IEEE", "BLOCK_M", "BLOCK_N", "BLOCK_D",
                 "BLOCK_P"):  # fmt: skip
        sig[name] = "constexpr"
    return sig


def plugin_blocks(n_tokens: int, patch_pixels: int) -> dict[str, int]:
    """Tile sizes and warps for ``n_tokens`` keys and ``patch_pixels = PH * PW``: the whole key
    row (``BLOCK_N``), a D step and a mask step that keep each tile at 8192 elements."""
    block_n = max(16, triton.next_power_of_2(n_tokens))
    block_d = max(16, min(128, _TILE_ELEMENTS // block_n))
    block_p = min(triton.next_power_of_2(patch_pixels), max(16, _TILE_ELEMENTS // block_n))
    return {"BLOCK_M": 16, "BLOCK_N": block_n, "BLOCK_D": block_d, "BLOCK_P": block_p,
            "num_warps": 4 if block_n <= 256 else 8}  # fmt: skip


_blocks = plugin_blocks(64, 8 * 6)  # the lite demo's 8x6 head at T = 4 (fp32: see the plugin test)
register_aot(
    _patch_attention_plugin_kernel,
    aot_signature("fp16"),
    {"PH": 8, "PW": 6, "CN": 8, "SCALE": 1 / math.sqrt(8 * 8 * 6), "HAS_MASK": True,
     "IEEE": False, **{k: v for k, v in _blocks.items() if k != "num_warps"}},
    variant="fp16,8x6",
    num_warps=_blocks["num_warps"],
)  # fmt: skip


def patch_attention_plugin(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    patch_sizes: Sequence[tuple[int, int]],
    *,
    key_mask: torch.Tensor | None = None,
    impl: Impl = "auto",
) -> torch.Tensor:
    """Multi-scale patch attention, one single-launch kernel per head (see module docstring).

    Args:
        q, k, v: (B, T, C, H, W) float16/float32, same shape, dtype and device, any strides.
        patch_sizes: one (ph, pw) per head (``C % heads == 0``, ``H % ph == W % pw == 0``);
            each head has at most :data:`MAX_TOKENS` tokens ``T * (H/ph) * (W/pw)``.
        key_mask: optional (B, T, 1, H, W) bool; a key patch takes part iff one of its pixels
            is True; a query with no key left gets zeros.
        impl: ``"auto"`` (Triton on CUDA, the torch reference on CPU), ``"triton"``, ``"torch"``.

    Returns:
        (B, T, C, H, W) contiguous tensor of q's dtype.
    """
    sizes = check_attention_inputs(q, k, v, patch_sizes, key_mask)
    if q.dtype not in (torch.float16, torch.float32):
        raise InputError("q", "a float16 or float32 tensor", q)
    b, t, c, h, w = q.shape
    for ph, pw in sizes:
        if t * (h // ph) * (w // pw) > MAX_TOKENS:
            raise InputError(
                "patch_sizes", f"heads of at most {MAX_TOKENS} tokens T*(H/ph)*(W/pw)", (ph, pw)
            )
    path = resolve_impl(impl, q.device, has_opencv=False)
    if path == "torch":
        return patch_attention_plugin_ref(q, k, v, sizes, key_mask=key_mask)
    cn = c // len(sizes)
    out = torch.empty(q.shape, dtype=q.dtype, device=q.device)  # (B, T, C, H, W)
    # bool is read as its 0/1 bytes (a view, no copy); the plugin passes q's dtype instead
    mask = key_mask.view(torch.uint8) if key_mask is not None else q
    m_strides = (mask.stride(0), mask.stride(1), mask.stride(3), mask.stride(4))
    for head, (ph, pw) in enumerate(sizes):
        o = out[:, :, head * cn : (head + 1) * cn]  # (B, T, Cn, H, W) view: written in place
        blocks = plugin_blocks(t * (h // ph) * (w // pw), ph * pw)
        num_warps = blocks.pop("num_warps")
        grid = (triton.cdiv(t * (h // ph) * (w // pw), blocks["BLOCK_M"]), b)
        _patch_attention_plugin_kernel[grid](
            q, k, v, mask, *q.stride(), *k.stride(), *v.stride(), *m_strides, *o.stride(),
            t, h, w, head * cn, o,
            PH=ph, PW=pw, CN=cn, SCALE=1.0 / math.sqrt(cn * ph * pw),
            HAS_MASK=key_mask is not None, IEEE=q.dtype == torch.float32,
            num_warps=num_warps, **blocks,
        )  # fmt: skip
    return out


def patch_attention_plugin_ref(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    patch_sizes: Sequence[tuple[int, int]],
    *,
    key_mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Plain-PyTorch reference: :func:`kernels.patch_attention.patch_attention_ref` (the math
    is the same; only the launch plan differs)."""
    return patch_attention_ref(q, k, v, patch_sizes, key_mask=key_mask)


@torch.library.custom_op("tryon::patch_attention_plugin", mutates_args=())
def _patch_attention_plugin_op(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    patch_h: list[int],
    patch_w: list[int],
    key_mask: torch.Tensor | None,
    impl: str,
) -> torch.Tensor:
    return patch_attention_plugin(q, k, v, list(zip(patch_h, patch_w, strict=True)),
                                  key_mask=key_mask, impl=impl)  # fmt: skip


@_patch_attention_plugin_op.register_fake
def _(q, k, v, patch_h, patch_w, key_mask, impl):
    return torch.empty(q.shape, dtype=q.dtype, device=q.device)


PLUGIN_KERNEL = _patch_attention_plugin_kernel
"""The ``@triton.jit`` kernel the TensorRT plugin launches (compiled to PTX by
:mod:`export.tensorrt_plugins`)."""
