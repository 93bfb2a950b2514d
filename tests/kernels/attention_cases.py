"""Shared inputs and the float64 error measure for the patch attention tests (the three-launch
kernel and the single-launch TensorRT plugin kernel)."""

import torch

from kernels.patch_attention import patch_attention_ref


def make_qkv(shape, dtype=torch.float32, seed=0):
    """Seeded standard-normal q, k, v of ``shape`` (B, T, C, H, W) in ``dtype``."""
    g = torch.Generator().manual_seed(seed)
    return tuple(torch.randn(shape, generator=g).to(dtype) for _ in range(3))


def make_key_mask(shape, p=0.6, seed=1):
    """Seeded (B, T, 1, H, W) bool key mask, True with probability ``1 - p``."""
    b, t, _, h, w = shape
    return torch.rand((b, t, 1, h, w), generator=torch.Generator().manual_seed(seed)) > p


def err64(out, q, k, v, sizes, key_mask):
    """Largest absolute difference of ``out`` to the reference computed in float64."""
    ref = patch_attention_ref(q.double(), k.double(), v.double(), sizes, key_mask=key_mask)
    return (out.double() - ref).abs().max().item()


def naive_patch_attention(q, k, v, sizes, key_mask=None):
    """The seed's definition written out with Python loops over patches, in float64: an oracle
    that shares no code with ``kernels.patch_attention`` (no reshape/permute tokenizer).

    Head ``i`` takes channels ``[i*Cn, (i+1)*Cn)`` and cuts every frame into patches of its own
    size; a token is one patch (all its channels and pixels); query token ``a`` attends to every
    key token ``b`` of all frames with ``softmax_b(q_a . k_b / sqrt(Cn*ph*pw))``; keys whose patch
    has no True pixel in ``key_mask`` take no part (a query with no key at all gives zeros).
    """
    import math

    q, k, v = q.double(), k.double(), v.double()
    b_, t_, c_, h_, w_ = q.shape
    cn = c_ // len(sizes)
    out = torch.zeros_like(q)
    for b in range(b_):
        for head, (ph, pw) in enumerate(sizes):
            ch = slice(head * cn, (head + 1) * cn)
            corners = [(t, y, x) for t in range(t_) for y in range(0, h_, ph)
                       for x in range(0, w_, pw)]  # fmt: skip

            def patch(x, t, y, xx, b=b, ch=ch, ph=ph, pw=pw):
                return x[b, t, ch, y : y + ph, xx : xx + pw]

            def has_key(t, y, xx, b=b, ph=ph, pw=pw):
                return key_mask is None or bool(key_mask[b, t, 0, y : y + ph, xx : xx + pw].any())

            keys = [c for c in corners if has_key(*c)]
            if not keys:
                continue
            for corner in corners:
                qa = patch(q, *corner)
                scores = torch.tensor(
                    [float((qa * patch(k, *kb)).sum()) for kb in keys], dtype=torch.float64
                )
                weights = torch.softmax(scores / math.sqrt(cn * ph * pw), dim=0)
                acc = sum(wt * patch(v, *kb) for wt, kb in zip(weights, keys, strict=True))
                t, y, x = corner
                out[b, t, ch, y : y + ph, x : x + pw] = acc
    return out
