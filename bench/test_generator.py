"""The MPDT generator's cost: FLOPs per frame (counted, not guessed) and latency per call.

FLOPs come from ``torch.utils.flop_counter.FlopCounterMode`` over one forward pass (convolutions,
matmuls of the attention, counted as 2 per multiply-add), divided by the frames in the window.
Latency: one call over a window of T frames (the lite preset's T = 4) after warm-up, on this
run's device (:func:`bench.conftest.measure`: median / p95, FPS, TFLOP/s and the fraction of the
machine's fp32 peak).
"""

from __future__ import annotations

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from bench.conftest import DEVICE
from engine.model.mpdt_generator import MPDTConfig, MPDTGenerator


def _inputs(cfg: MPDTConfig, frames: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    shape = (1, frames, 0, cfg.height, cfg.width)
    sizes = {"cloth": 4, "pose": cfg.pose_channels, "background": 3, "background_mask": 1}
    out = {k: torch.rand(shape[:2] + (c,) + shape[3:], generator=g) for k, c in sizes.items()}
    out["background_mask"] = (out["background_mask"] > 0.5).float()
    return {k: v.to(DEVICE) for k, v in out.items()}


def generator_flops(cfg: MPDTConfig, frames: int) -> int:
    """FLOPs of one forward pass over ``frames`` frames (FlopCounterMode, on CPU)."""
    model = MPDTGenerator(cfg).eval()
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(**{k: v.cpu() for k, v in _inputs(cfg, frames).items()})
    return counter.get_total_flops()


@pytest.mark.parametrize("preset", ["lite"])
@pytest.mark.parametrize("frames", [1, 4])
def test_generator_latency(measure, preset, frames):
    """One forward over ``frames`` frames (T = 1: per-frame try-on; T = 4: the lite window),
    eager PyTorch on this run's device; the fraction of the machine's fp32 FLOP peak (CPU: the
    matmul probe of this run) is the ratio to the roofline."""
    cfg = MPDTConfig.from_name(preset)
    model = MPDTGenerator(cfg).eval().to(DEVICE)
    inputs = _inputs(cfg, frames)
    flops = generator_flops(cfg, frames)

    def run():
        with torch.no_grad():
            model(**inputs)

    median = measure(run, flops=flops, dtype=torch.float32, frames=frames, bound="compute",
                     budget_s=2.0, preset=preset, window=frames,
                     gflops_per_frame=round(flops / frames / 1e9, 4))  # fmt: skip
    assert median > 0
