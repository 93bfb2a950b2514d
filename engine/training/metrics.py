"""Quality metrics for try-on video: PSNR, PSNR in the try-on region, SSIM and flicker.

All take (T, 3, H, W) float tensors in [0, 1] (a clip) and return Python floats; ``region`` is
(T, 1, H, W) in [0, 1] (1 = inside the try-on region).

- ``psnr``: 10 log10(1 / MSE) over every pixel of every frame.
- ``psnr_region``: the same with the MSE taken over region pixels only.
- ``ssim``: mean SSIM (Wang et al. 2004: 11x11 Gaussian window, sigma 1.5, C1 = 0.01^2,
  C2 = 0.03^2, data range 1) over channels and frames.
- ``flicker``: temporal instability, lower is better: the mean absolute difference between the
  output's frame-to-frame change and the ground truth's, ``|(O_t - O_{t-1}) - (G_t - G_{t-1})|``,
  averaged over channels and over the pixels inside the region of either frame, for t >= 1.
  Motion that the ground truth has is not counted; change that it does not have (jitter,
  popping) is. 0 for a single frame.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

__all__ = ["psnr", "psnr_region", "ssim", "flicker"]


def _psnr_from_mse(mse: float) -> float:
    return float("inf") if mse <= 0 else 10.0 * math.log10(1.0 / mse)


def psnr(output: torch.Tensor, target: torch.Tensor) -> float:
    return _psnr_from_mse(F.mse_loss(output.double(), target.double()).item())


def psnr_region(output: torch.Tensor, target: torch.Tensor, region: torch.Tensor) -> float:
    weight = region.double().expand_as(output)
    total = weight.sum().item()
    if total == 0:
        return float("nan")
    mse = (((output.double() - target.double()) ** 2) * weight).sum().item() / total
    return _psnr_from_mse(mse)


def _gaussian_window(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    x = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    g = g / g.sum()
    return (g[:, None] * g[None, :])[None, None]  # (1, 1, size, size)


def ssim(output: torch.Tensor, target: torch.Tensor) -> float:
    t, c, h, w = output.shape
    x = output.double().reshape(t * c, 1, h, w)
    y = target.double().reshape(t * c, 1, h, w)
    win = _gaussian_window()
    mu_x, mu_y = F.conv2d(x, win), F.conv2d(y, win)
    var_x = F.conv2d(x * x, win) - mu_x**2
    var_y = F.conv2d(y * y, win) - mu_y**2
    cov = F.conv2d(x * y, win) - mu_x * mu_y
    c1, c2 = 0.01**2, 0.03**2
    s = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / (
        (mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2)
    )
    return s.mean().item()


def flicker(output: torch.Tensor, target: torch.Tensor, region: torch.Tensor) -> float:
    if output.shape[0] < 2:
        return 0.0
    d_out = output[1:].double() - output[:-1].double()
    d_gt = target[1:].double() - target[:-1].double()
    weight = torch.maximum(region[1:], region[:-1]).double().expand_as(d_out)
    total = weight.sum().item()
    if total == 0:
        return 0.0
    return ((d_out - d_gt).abs() * weight).sum().item() / total
