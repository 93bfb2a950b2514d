import math

import pytest
import torch

from engine.training.evaluate import paste_baseline
from engine.training.metrics import flicker, psnr, psnr_region, ssim


def _clip(seed=0, t=3):
    return torch.rand((t, 3, 16, 12), generator=torch.Generator().manual_seed(seed))


def test_psnr_values():
    a = torch.zeros((2, 3, 4, 4))
    assert psnr(a, a) == math.inf
    assert psnr(a, a + 0.1) == pytest.approx(20.0)  # MSE 0.01
    region = torch.zeros((2, 1, 4, 4))
    region[:, :, :2] = 1
    b = a.clone()
    b[:, :, 2:] = 0.5  # errors only outside the region
    assert psnr_region(b, a, region) == math.inf
    assert math.isnan(psnr_region(b, a, torch.zeros_like(region)))


def test_ssim_identity_and_noise():
    x = _clip()
    assert ssim(x, x) == pytest.approx(1.0)
    noisy = (x + 0.2 * torch.randn_like(x)).clamp(0, 1)
    assert ssim(noisy, x) < 0.9


def test_flicker_counts_only_change_the_truth_does_not_have():
    gt = _clip(t=4)
    region = torch.ones((4, 1, 16, 12))
    assert flicker(gt, gt, region) == 0.0
    shifted = gt + 0.1  # a constant offset is not flicker
    assert flicker(shifted, gt, region) == pytest.approx(0.0, abs=1e-6)  # fp32 rounding
    jitter = gt.clone()
    jitter[1::2] += 0.1  # alternating frames: popping
    assert flicker(jitter, gt, region) == pytest.approx(0.1)
    assert flicker(gt[:1], gt[:1], region[:1]) == 0.0


def test_paste_baseline_keeps_background_and_pastes_cloth():
    t, h, w = 2, 8, 6
    background = torch.full((t, 3, h, w), 0.5)
    keep = torch.ones((t, 1, h, w))
    keep[:, :, 2:6, 1:5] = 0
    cloth = torch.zeros((t, 4, h, w))
    cloth[:, :3] = 0.9
    cloth[:, 3:, 3:5, 2:4] = 1
    out = paste_baseline({"cloth": cloth, "background": background, "background_mask": keep})
    assert torch.equal(out[:, :, 0], background[:, :, 0])  # outside: background
    assert torch.allclose(out[:, :, 3, 2], torch.tensor(0.9))  # region with cloth
    assert torch.allclose(out[:, :, 2, 1], torch.tensor(0.5))  # region without cloth: fill
