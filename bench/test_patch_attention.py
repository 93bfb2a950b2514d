"""Multi-scale patch attention at the MPDT generator's shapes (``MPDTConfig`` presets), per
implementation: TFLOP/s and fraction of the peak FLOP rate of the dtype.

- ``lite``: B=1, T=4, C=32, 32x24 feature map, heads 32x24 / 16x12 / 8x6 / 4x3 (divisors 1, 2,
  4, 8): the bundled demo's shape;
- ``base``: B=1, T=8, C=128, 64x48 feature map, heads 64x48 .. 8x6: the seed's example scale.

Each with and without a key mask (a torso-like region: the central part of each frame, the
cloth keys' case). FLOPs of ``Q K^T`` and ``P V`` from ``patch_attention_flops`` (2 per
multiply-add); compulsory bytes (q, k, v read once, the output written once) are recorded too.
Implementations: the ``patch_attention_ref`` baseline, ``impl="auto"`` (the reference on CPU),
the compiled Triton kernel (CUDA; goal >= 3x the reference). Dtypes: fp32 on CPU (fp16 matmul on
CPU is an emulation nobody runs); fp16, bf16 and fp32 on CUDA.
"""

from __future__ import annotations

import pytest
import torch

from bench.conftest import DEVICE, call_impl, dtype_name, impl_params, nbytes
from engine.model.mpdt_generator import MPDTConfig
from kernels.patch_attention import patch_attention, patch_attention_flops, patch_attention_ref

DTYPES = (
    (torch.float16, torch.bfloat16, torch.float32) if DEVICE.type == "cuda" else (torch.float32,)
)


@pytest.mark.parametrize("impl", impl_params(opencv=False))
@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_name)
@pytest.mark.parametrize("masked", [False, True], ids=["nomask", "mask"])
@pytest.mark.parametrize("preset", ["lite", "base"])
def test_patch_attention_mpdt(measure, preset, masked, dtype, impl):
    cfg = MPDTConfig.from_name(preset)
    fh, fw = cfg.feature_height, cfg.feature_width
    shape = (1, cfg.frames, cfg.channels, fh, fw)  # (B, T, C, H, W)
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(shape, generator=g).to(DEVICE, dtype) for _ in range(3))
    key_mask = None
    if masked:  # a torso-like region: the central part of each frame
        key_mask = torch.zeros((1, cfg.frames, 1, fh, fw), dtype=torch.bool, device=DEVICE)
        key_mask[..., fh // 4 : fh * 7 // 8, fw // 4 : fw * 3 // 4] = True
    sizes = [tuple(p) for p in cfg.patch_sizes]
    run = call_impl(patch_attention, patch_attention_ref, impl, q, k, v, sizes, key_mask=key_mask)
    out = run()
    measure(
        run,
        flops=patch_attention_flops(shape, sizes),
        bytes_moved=nbytes(q, k, v, out),
        dtype=dtype,
        bound="compute",
        group=f"patch_attention {preset} {dtype_name(dtype)}",
        op="patch_attention",
        impl=impl,
        preset=preset,
        shape=shape,
        patch_sizes=sizes,
        masked=masked,
    )
