"""Multi-scale patch attention of the MPDT blocks, read in place from (B, T, C, H, W).

Head ``h`` of ``n`` owns channels ``[h*C/n, (h+1)*C/n)`` (``Cn = C/n`` of them) and a patch size
``(ph, pw)``. Each frame is cut into ``L = (H/ph) * (W/pw)`` patches; a *token* is one patch of
one frame flattened over (channel, row, column), so a head sees ``N = T * L`` tokens of
``D = Cn * ph * pw`` values, ordered frame-major then patch row, patch column. With ``Q, K, V``
the (N, D) token matrices of the query, key and value streams::

    S = (Q K^T) / sqrt(D)                               (N, N), accumulated in fp32
    S[:, j] = -inf        where key token j has no True pixel in key_mask
    P = softmax(S, rows)  (a row with no key left is all zeros, never NaN)
    O = P V               (N, D), written back in place of the query patches

Few tokens, huge reductions (MPDT at 64x48: N = T * {1, 4, 16, 64}, D up to ~200k), so this is
split-K GEMM, not flash attention. Three launches per head:

1. ``_patch_scores_kernel``: partial ``Q K^T`` over a slice of D per program (split-D; the grid
   is query blocks x key blocks x (B * SPLIT)), fp32 partials to a (SPLIT, B, N, N) buffer;
2. ``_patch_softmax_kernel``: sums the partials, scales, masks, row-softmax in fp32 -> P;
3. ``_patch_pv_kernel``: ``P V`` tiled over D (grid: query blocks x D blocks x B), written
   straight into the output's channel slice and patch positions.

Tokens are never materialized: every load computes (frame, channel, row, column) of a token
element from the caller's strides, so channel slices and any layout are read without a copy.
Accumulation is fp32 (tensor-core dots of fp16/bf16 inputs accumulate in fp32, so the
``D``-long sums cannot overflow fp16); fp32 inputs use IEEE fp32 dots, not TF32. ``P`` is cast
to the value dtype for the ``P V`` dot (as flash attention does).

Bytes per head (compulsory): read Q, K, V once ``3 * B * T * Cn * H * W * s``, write O once
``B * T * Cn * H * W * s``, plus ``(SPLIT + 1) * B * N^2 * 4`` for scores.
FLOPs per head: ``4 * B * N^2 * D``.
K is re-read once per query block and V once per query block: with ``N <= 64`` tokens per frame
and ``BLOCK_M = 16`` that is a few passes, served mostly from L2.
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
from kernels.triton_mode import interpreter_requested

__all__ = ["patch_attention", "patch_attention_ref", "patch_attention_flops"]


@triton.jit
def token_offsets(tok, NPW, L, PH: tl.constexpr, PW: tl.constexpr, stride_t, stride_h, stride_w):
    """Offset of the top-left element of token ``tok`` (frame-major, then patch row, column)."""
    frame = tok // L
    patch = tok % L
    return frame * stride_t + (patch // NPW) * PH * stride_h + (patch % NPW) * PW * stride_w


@triton.jit
def element_offsets(e, c0, PH: tl.constexpr, PW: tl.constexpr, stride_c, stride_h, stride_w):
    """Offset of element ``e`` of a token (channel-major, then row, column) from its corner."""
    c = e // (PH * PW)
    r = e % (PH * PW)
    return (c0 + c) * stride_c + (r // PW) * stride_h + (r % PW) * stride_w


@triton.jit
def _patch_scores_kernel(
    q_ptr, stride_qb, stride_qt, stride_qc, stride_qh, stride_qw,
    k_ptr, stride_kb, stride_kt, stride_kc, stride_kh, stride_kw,
    s_ptr, stride_ss, stride_sb, stride_sm,
    c0, N, NPW, L, D, D_PER_SPLIT, SPLIT,
    PH: tl.constexpr, PW: tl.constexpr, IEEE: tl.constexpr,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr,
):  # fmt: skip
    pid_bs = tl.program_id(2).to(tl.int64)
    b = pid_bs // SPLIT
    split = pid_bs % SPLIT
    m = tl.program_id(0).to(tl.int64) * BLOCK_M + tl.arange(0, BLOCK_M)  # query tokens
    n = tl.program_id(1).to(tl.int64) * BLOCK_N + tl.arange(0, BLOCK_N)  # key tokens
    q_tok = b * stride_qb + token_offsets(m, NPW, L, PH, PW, stride_qt, stride_qh, stride_qw)
    k_tok = b * stride_kb + token_offsets(n, NPW, L, PH, PW, stride_kt, stride_kh, stride_kw)
    d_lo = split * D_PER_SPLIT
    d_hi = tl.minimum(d_lo + D_PER_SPLIT, D)
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    for d0 in range(d_lo, d_hi, BLOCK_D):
        e = d0 + tl.arange(0, BLOCK_D)
        e_ok = e < d_hi
        q_el = element_offsets(e, c0, PH, PW, stride_qc, stride_qh, stride_qw)
        k_el = element_offsets(e, c0, PH, PW, stride_kc, stride_kh, stride_kw)
        qt = tl.load(
            q_ptr + q_tok[:, None] + q_el[None, :], mask=(m < N)[:, None] & e_ok[None, :], other=0.0
        )  # (BLOCK_M, BLOCK_D)
        kt = tl.load(
            k_ptr + k_tok[:, None] + k_el[None, :], mask=(n < N)[:, None] & e_ok[None, :], other=0.0
        )  # (BLOCK_N, BLOCK_D)
        if IEEE:
            acc += tl.dot(qt, tl.trans(kt), input_precision="ieee")
        else:
            acc += tl.dot(qt, tl.trans(kt))
    s_off = split * stride_ss + b * stride_sb + m[:, None] * stride_sm + n[None, :]
    tl.store(s_ptr + s_off, acc, mask=(m < N)[:, None] & (n < N)[None, :])


@triton.jit
def _patch_softmax_kernel(
    s_ptr, stride_ss, stride_sb, stride_sm,
    valid_ptr, stride_vb,
    p_ptr, stride_pb, stride_pm,
    N, SPLIT,
    SCALE: tl.constexpr, HAS_MASK: tl.constexpr, BLOCK_N: tl.constexpr,
):  # fmt: skip
    row = tl.program_id(0).to(tl.int64)
    b = tl.program_id(1).to(tl.int64)
    n = tl.arange(0, BLOCK_N)
    keep = n < N
    s = tl.zeros((BLOCK_N,), dtype=tl.float32)
    for split in range(SPLIT):
        s += tl.load(s_ptr + split * stride_ss + b * stride_sb + row * stride_sm + n,
                     mask=keep, other=0.0)  # fmt: skip
    s = s * SCALE
    if HAS_MASK:
        keep = keep & (tl.load(valid_ptr + b * stride_vb + n, mask=keep, other=0) != 0)
    s = tl.where(keep, s, float("-inf"))
    row_max = tl.max(s, axis=0)
    row_max = tl.where(row_max == float("-inf"), 0.0, row_max)  # no key left: avoid inf - inf
    num = tl.where(keep, tl.exp(s - row_max), 0.0)
    den = tl.sum(num, axis=0)
    p = tl.where(den > 0, num / tl.maximum(den, 1e-30), 0.0)
    tl.store(p_ptr + b * stride_pb + row * stride_pm + n, p, mask=n < N)


@triton.jit
def _patch_pv_kernel(
    p_ptr, stride_pb, stride_pm,
    v_ptr, stride_vb, stride_vt, stride_vc, stride_vh, stride_vw,
    o_ptr, stride_ob, stride_ot, stride_oc, stride_oh, stride_ow,
    c0, N, NPW, L, D,
    PH: tl.constexpr, PW: tl.constexpr, IEEE: tl.constexpr,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr,
):  # fmt: skip
    b = tl.program_id(2).to(tl.int64)
    m = tl.program_id(0).to(tl.int64) * BLOCK_M + tl.arange(0, BLOCK_M)  # query tokens
    e = tl.program_id(1).to(tl.int64) * BLOCK_D + tl.arange(0, BLOCK_D)  # token elements
    e_ok = e < D
    v_el = element_offsets(e, c0, PH, PW, stride_vc, stride_vh, stride_vw)
    acc = tl.zeros((BLOCK_M, BLOCK_D), dtype=tl.float32)
    for n0 in range(0, N, BLOCK_N):
        n = n0 + tl.arange(0, BLOCK_N).to(tl.int64)  # int64: token offsets can pass 2^31
        p = tl.load(
            p_ptr + b * stride_pb + m[:, None] * stride_pm + n[None, :],
            mask=(m < N)[:, None] & (n < N)[None, :],
            other=0.0,
        )  # (BLOCK_M, BLOCK_N)
        v_tok = b * stride_vb + token_offsets(n, NPW, L, PH, PW, stride_vt, stride_vh, stride_vw)
        vt = tl.load(
            v_ptr + v_tok[:, None] + v_el[None, :], mask=(n < N)[:, None] & e_ok[None, :], other=0.0
        )  # (BLOCK_N, BLOCK_D)
        if IEEE:
            acc += tl.dot(p, vt, input_precision="ieee")
        else:
            acc += tl.dot(p.to(vt.dtype), vt)
    o_tok = b * stride_ob + token_offsets(m, NPW, L, PH, PW, stride_ot, stride_oh, stride_ow)
    o_el = element_offsets(e, c0, PH, PW, stride_oc, stride_oh, stride_ow)
    tl.store(o_ptr + o_tok[:, None] + o_el[None, :], acc.to(o_ptr.dtype.element_ty),
             mask=(m < N)[:, None] & e_ok[None, :])  # fmt: skip


def _strides(prefix: str, dims: str) -> dict[str, str]:
    return {f"stride_{prefix}{d}": "i32" for d in dims}


for _ty, _ieee in (("*fp16", False), ("*fp32", True), ("*bf16", False)):
    _name = _ty.removeprefix("*")
    _meta = {"PH": 8, "PW": 6, "IEEE": _ieee, "BLOCK_M": 16, "BLOCK_N": 16, "BLOCK_D": 128}
    register_aot(
        _patch_scores_kernel,
        {"q_ptr": _ty, **_strides("q", "btchw"), "k_ptr": _ty, **_strides("k", "btchw"),
         "s_ptr": "*fp32", **_strides("s", "sbm"),
         **dict.fromkeys(("c0", "N", "NPW", "L", "D", "D_PER_SPLIT", "SPLIT"), "i32")},
        _meta, variant=f"{_name},8x6",
    )  # fmt: skip
    register_aot(
        _patch_pv_kernel,
        {"p_ptr": "*fp32", **_strides("p", "bm"), "v_ptr": _ty, **_strides("v", "btchw"),
         "o_ptr": _ty, **_strides("o", "btchw"),
         **dict.fromkeys(("c0", "N", "NPW", "L", "D"), "i32")},
        {**_meta, "BLOCK_N": 32}, variant=f"{_name},8x6",
    )  # fmt: skip
register_aot(
    _patch_softmax_kernel,
    {"s_ptr": "*fp32", **_strides("s", "sbm"), "valid_ptr": "*u8", "stride_vb": "i32",
     "p_ptr": "*fp32", **_strides("p", "bm"), "N": "i32", "SPLIT": "i32"},
    {"SCALE": 1 / math.sqrt(64 * 48), "HAS_MASK": True, "BLOCK_N": 512},
)  # fmt: skip


def check_attention_inputs(
    q: object, k: object, v: object, patch_sizes: object, key_mask: object
) -> list[tuple[int, int]]:
    """Validate everything (raising InputError naming the argument); returns the patch sizes."""
    expected = "a (B, T, C, H, W) float16/float32 tensor (bfloat16 on CUDA)"
    if not isinstance(q, torch.Tensor) or q.dim() != 5 or q.numel() == 0:
        raise InputError("q", expected, q)
    allowed = (torch.float16, torch.float32) + ((torch.bfloat16,) if q.is_cuda else ())
    if q.dtype not in allowed:
        raise InputError("q", expected, q)
    for name, t in (("k", k), ("v", v)):
        if not isinstance(t, torch.Tensor) or t.shape != q.shape:
            raise InputError(name, f"a tensor of q's shape {tuple(q.shape)}", t)
        if t.dtype != q.dtype or t.device != q.device:
            raise InputError(name, f"{q.dtype} on {q.device} like q", t)
    b, t_, c, h, w = q.shape
    if b > 65535:  # CUDA's limit on grid axes 1 and 2, which carry the batch
        raise InputError("q", "at most 65535 sequences (B) per call", q)
    sizes_expected = "a non-empty list of (ph, pw) pairs of positive ints, one per head"
    if not isinstance(patch_sizes, Sequence) or isinstance(patch_sizes, str) or not patch_sizes:
        raise InputError("patch_sizes", sizes_expected, patch_sizes)
    sizes = []
    for size in patch_sizes:
        if (
            not isinstance(size, Sequence)
            or len(size) != 2
            or not all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in size)
        ):
            raise InputError("patch_sizes", sizes_expected, patch_sizes)
        ph, pw = size
        if h % ph or w % pw:
            raise InputError(
                "patch_sizes", f"patches that tile the {h}x{w} map (H % ph == W % pw == 0)", size
            )
        sizes.append((int(ph), int(pw)))
    if c % len(sizes):
        raise InputError(
            "patch_sizes", f"a number of heads that divides C={c}", f"{len(sizes)} heads"
        )
    if key_mask is not None:
        if not isinstance(key_mask, torch.Tensor) or key_mask.dtype != torch.bool:
            raise InputError("key_mask", f"a bool tensor of shape {(b, t_, 1, h, w)}", key_mask)
        if tuple(key_mask.shape) != (b, t_, 1, h, w) or key_mask.device != q.device:
            raise InputError("key_mask", f"shape {(b, t_, 1, h, w)} on {q.device}", key_mask)
    return sizes


def _valid_keys(key_mask: torch.Tensor, ph: int, pw: int) -> torch.Tensor:
    """(B, N) bool: key token j takes part iff one of its pixels is True in ``key_mask``."""
    b, t, _, h, w = key_mask.shape
    patches = key_mask.reshape(b, t, h // ph, ph, w // pw, pw)
    return patches.any(dim=5).any(dim=3).reshape(b, t * (h // ph) * (w // pw))


def _blocks(n_tokens: int) -> tuple[int, int, int]:
    """(BLOCK_M, BLOCK_N, BLOCK_D); bigger in the interpreter, where programs cost Python time."""
    if interpreter_requested():
        return 16, max(16, min(64, triton.next_power_of_2(n_tokens))), 256
    return 16, 32, 128


def _splits(d: int, tiles: int, block_d: int, device: torch.device) -> int:
    """Split-D factor: enough programs to fill the GPU (2 per SM), each >= 4 BLOCK_D steps."""
    if device.type != "cuda":
        return 1
    sms = torch.cuda.get_device_properties(device).multi_processor_count
    return max(1, min(triton.cdiv(d, 4 * block_d), triton.cdiv(2 * sms, tiles)))


def patch_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    patch_sizes: Sequence[tuple[int, int]],
    *,
    key_mask: torch.Tensor | None = None,
    impl: Impl = "auto",
) -> torch.Tensor:
    """Multi-scale patch attention across all patches of all frames (see module docstring).

    Args:
        q, k, v: (B, T, C, H, W), float16 or float32 (bfloat16 on CUDA), same shape, dtype and
            device; any strides (channel slices of a bigger tensor are read in place).
        patch_sizes: one (ph, pw) per head; head h uses channels [h*C/n, (h+1)*C/n).
            ``C % n == 0``, ``H % ph == 0``, ``W % pw == 0``.
        key_mask: optional (B, T, 1, H, W) bool; a key patch takes part iff one of its pixels is
            True. A query with no key left gets zeros.
        impl: ``"auto"`` (Triton on CUDA, the torch reference on CPU), ``"triton"``, ``"torch"``.

    Returns:
        (B, T, C, H, W) contiguous tensor of q's dtype.
    """
    sizes = check_attention_inputs(q, k, v, patch_sizes, key_mask)
    path = resolve_impl(impl, q.device, has_opencv=False)
    if path == "torch":
        return patch_attention_ref(q, k, v, sizes, key_mask=key_mask)
    b, t, c, h, w = q.shape
    cn = c // len(sizes)
    out = torch.empty(q.shape, dtype=q.dtype, device=q.device)  # (B, T, C, H, W)
    ieee = q.dtype == torch.float32
    for head, (ph, pw) in enumerate(sizes):
        npw, n_per_frame = w // pw, (h // ph) * (w // pw)
        n_tok, d = t * n_per_frame, cn * ph * pw
        block_m, block_n, block_d = _blocks(n_tok)
        tiles = triton.cdiv(n_tok, block_m) * triton.cdiv(n_tok, block_n)
        split = _splits(d, tiles * b, block_d, q.device)
        d_per_split = triton.cdiv(triton.cdiv(d, split), block_d) * block_d
        split = triton.cdiv(d, d_per_split)
        scores = torch.empty((split, b, n_tok, n_tok), dtype=torch.float32, device=q.device)
        grid = (triton.cdiv(n_tok, block_m), triton.cdiv(n_tok, block_n), b * split)
        _patch_scores_kernel[grid](
            q, *q.stride(), k, *k.stride(), scores, *scores.stride()[:3],
            head * cn, n_tok, npw, n_per_frame, d, d_per_split, split,
            PH=ph, PW=pw, IEEE=ieee, BLOCK_M=block_m, BLOCK_N=block_n, BLOCK_D=block_d,
        )  # fmt: skip
        probs = torch.empty((b, n_tok, n_tok), dtype=torch.float32, device=q.device)
        valid = (
            _valid_keys(key_mask, ph, pw).to(torch.uint8)
            if key_mask is not None
            else probs.new_empty((1, 1), dtype=torch.uint8)
        )
        _patch_softmax_kernel[(n_tok, b)](
            scores, *scores.stride()[:3], valid, valid.stride(0),
            probs, *probs.stride()[:2], n_tok, split,
            SCALE=1.0 / math.sqrt(d), HAS_MASK=key_mask is not None,
            BLOCK_N=triton.next_power_of_2(n_tok),
        )  # fmt: skip
        grid = (triton.cdiv(n_tok, block_m), triton.cdiv(d, block_d), b)
        _patch_pv_kernel[grid](
            probs, *probs.stride()[:2], v, *v.stride(), out, *out.stride(),
            head * cn, n_tok, npw, n_per_frame, d,
            PH=ph, PW=pw, IEEE=ieee, BLOCK_M=block_m, BLOCK_N=block_n, BLOCK_D=block_d,
        )  # fmt: skip
    return out


def patch_attention_ref(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    patch_sizes: Sequence[tuple[int, int]],
    *,
    key_mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Plain reshape / permute / softmax reference (STTN-style), in q's dtype.

    Scores are computed from ``q`` pre-scaled by ``1/sqrt(D)`` (so float16 cannot overflow) and
    the softmax runs in float32; float64 inputs stay float64 throughout (test baseline). Only
    standard ops, no NaN even transiently: the reference is also what the ONNX export traces.
    """
    b, t, c, h, w = q.shape
    cn = c // len(patch_sizes)
    heads = []  # concatenated at the end (a Concat in ONNX, not a ScatterND per head)
    soft_dtype = torch.float64 if q.dtype == torch.float64 else torch.float32
    for head, (ph, pw) in enumerate(patch_sizes):
        channels = slice(head * cn, (head + 1) * cn)
        qt, kt, vt = (_tokens(x[:, :, channels], ph, pw) for x in (q, k, v))
        scores = (qt * (1.0 / math.sqrt(cn * ph * pw))) @ kt.transpose(1, 2)  # (B, N, N)
        scores = scores.to(soft_dtype)
        if key_mask is None:
            probs = torch.softmax(scores, dim=-1)
        else:
            # NaN-free (and ONNX/TensorRT-friendly): masked keys get the dtype's lowest value,
            # and a query whose keys are all masked has its (uniform) row zeroed.
            valid = _valid_keys(key_mask, ph, pw)[:, None, :]  # (B, 1, N)
            scores = scores.masked_fill(~valid, torch.finfo(scores.dtype).min)
            probs = torch.softmax(scores, dim=-1) * valid.any(dim=-1, keepdim=True)
        heads.append(_untokens(probs.to(vt.dtype) @ vt, (b, t, cn, h, w), ph, pw))
    return torch.cat(heads, dim=2).contiguous()  # (B, T, C, H, W)


def _tokens(x: torch.Tensor, ph: int, pw: int) -> torch.Tensor:
    """(B, T, Cn, H, W) -> (B, N, D) tokens: frame-major, then patch row, column; each token
    flattened over (channel, row, column)."""
    b, t, cn, h, w = x.shape
    x = x.reshape(b, t, cn, h // ph, ph, w // pw, pw).permute(0, 1, 3, 5, 2, 4, 6)
    return x.reshape(b, t * (h // ph) * (w // pw), cn * ph * pw)


def _untokens(tokens: torch.Tensor, shape: tuple[int, ...], ph: int, pw: int) -> torch.Tensor:
    """Inverse of :func:`_tokens`: (B, N, D) -> (B, T, Cn, H, W)."""
    b, t, cn, h, w = shape
    x = tokens.reshape(b, t, h // ph, w // pw, cn, ph, pw).permute(0, 1, 4, 2, 5, 3, 6)
    return x.reshape(b, t, cn, h, w)


def patch_attention_flops(shape: Sequence[int], patch_sizes: Sequence[tuple[int, int]]) -> int:
    """Multiply-add FLOPs (2 per MAC) of ``Q K^T`` and ``P V`` over all heads for q's shape."""
    b, t, c, h, w = shape
    cn = c // len(patch_sizes)
    total = 0
    for ph, pw in patch_sizes:
        n, d = t * (h // ph) * (w // pw), cn * ph * pw
        total += 4 * b * n * n * d
    return total


@torch.library.custom_op("tryon::patch_attention", mutates_args=())
def _patch_attention_op(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    patch_h: list[int],
    patch_w: list[int],
    key_mask: torch.Tensor | None,
    impl: str,
) -> torch.Tensor:
    return patch_attention(q, k, v, list(zip(patch_h, patch_w, strict=True)), key_mask=key_mask,
                           impl=impl)  # fmt: skip


@_patch_attention_op.register_fake
def _(q, k, v, patch_h, patch_w, key_mask, impl):
    return torch.empty(q.shape, dtype=q.dtype, device=q.device)
