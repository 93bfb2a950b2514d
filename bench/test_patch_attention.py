"""Multi-scale patch attention at MPDT shapes: B=1, T in {4, 8}, C in {128, 256}, a 64x48
feature map (256x192 input at 1/4 scale), the four heads 64x48 / 32x24 / 16x12 / 8x6.

Reports ms, effective TFLOP/s (FLOPs of Q K^T and P V, counted by ``patch_attention_flops``) and
compulsory bytes (read q, k, v once, write the output once). CUDA: Triton vs the reference, in
fp16 and fp32 (goal: >= 3x the reference). CPU: the reference's cost in fp32, which sets the CPU
budget of the generator (fp16 matmul on CPU is an emulation, not a path anyone runs).
"""

from __future__ import annotations

import pytest
import torch

from bench.conftest import DEVICE
from kernels.patch_attention import patch_attention, patch_attention_flops

HEADS = [(64, 48), (32, 24), (16, 12), (8, 6)]
IMPLS = ("torch", "triton") if DEVICE.type == "cuda" else ("torch",)
DTYPES = (torch.float16, torch.float32) if DEVICE.type == "cuda" else (torch.float32,)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: str(d).removeprefix("torch."))
@pytest.mark.parametrize("channels", [128, 256])
@pytest.mark.parametrize("frames", [4, 8])
@pytest.mark.parametrize("masked", [False, True], ids=["nomask", "mask"])
def test_patch_attention_mpdt(measure, impl, dtype, channels, frames, masked):
    shape = (1, frames, channels, 64, 48)
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(shape, generator=g).to(DEVICE, dtype) for _ in range(3))
    key_mask = None
    if masked:  # a torso-like region: the central third of each frame
        key_mask = torch.zeros((1, frames, 1, 64, 48), dtype=torch.bool, device=DEVICE)
        key_mask[..., 16:56, 12:36] = True
    run = lambda: patch_attention(q, k, v, HEADS, key_mask=key_mask, impl=impl)  # noqa: E731
    moved = 4 * q.numel() * q.element_size()
    measure(run, bytes_moved=moved, flops=patch_attention_flops(shape, HEADS),
            rounds=5 if DEVICE.type == "cpu" else 30)  # fmt: skip
