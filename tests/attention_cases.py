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
