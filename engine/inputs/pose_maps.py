"""Pose maps: the generator's pose input ``P`` rendered from OpenPose-18 keypoints.

For keypoints ``(..., 18, 3)`` (see :mod:`engine.keypoints`) in pixels of a ``height x width``
image, :func:`render_pose_maps` returns ``(..., POSE_CHANNELS, height, width)`` float32 in [0, 1]:

* channels ``0..17``: one Gaussian heatmap per keypoint, ``exp(-|p - k|^2 / (2 sigma^2))``, peak 1
  at the keypoint, not normalized;
* channels ``18..18+len(LIMBS)-1``: one map per limb of :data:`engine.keypoints.LIMBS`,
  ``exp(-dist(p, segment)^2 / (2 sigma^2))`` where ``dist`` is the distance from the pixel centre
  to the segment between the limb's two keypoints (a soft line, 1 on the segment).

A keypoint is *present* when its confidence is ``>= engine.keypoints.CONFIDENCE_MIN`` and its x, y
are finite; an
absent keypoint gives an all-zero heatmap and every limb touching it an all-zero limb map.

Pixel convention (the one of :mod:`engine.keypoints`): origin at the top-left pixel's corner, x to
the right, y down, so pixel ``(row i, col j)`` covers ``[j, j+1) x [i, i+1)`` and its centre is
``(x, y) = (j + 0.5, i + 0.5)``; the maps are evaluated at pixel centres.

``sigma`` (pixels) defaults to ``max(1.0, height / 64)``: 2 px at 128x96, 4 px at 256x192.

Cost: heatmaps are separable (an outer product of a row and a column Gaussian); each limb map is
evaluated only inside its segment's bounding box grown by ``CUTOFF_SIGMAS * sigma`` (5 sigma: the
map is below 4e-6 there and stored as exactly 0). 35 x H x W float32 written per pose.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from engine.errors import InputError
from engine.inputs.keypoint_mirror import host_keypoints
from engine.keypoints import LIMBS, NUM_KEYPOINTS, check_keypoints, check_size, present_keypoints

__all__ = ["POSE_CHANNELS", "default_sigma", "render_pose_maps"]

POSE_CHANNELS = NUM_KEYPOINTS + len(LIMBS)
CUTOFF_SIGMAS = 5.0

_LIMB_A = tuple(a for a, _ in LIMBS)
_LIMB_B = tuple(b for _, b in LIMBS)


def default_sigma(height: int) -> float:
    """The default Gaussian width in pixels: ``max(1.0, height / 64)``."""
    return max(1.0, height / 64.0)


def render_pose_maps(
    keypoints: torch.Tensor, height: int, width: int, *, sigma: float | None = None
) -> torch.Tensor:
    """Render keypoint heatmaps and limb maps (see the module docstring).

    Args:
        keypoints: ``(..., 18, 3)`` floating tensor ``(x px, y px, confidence)``.
        height, width: size of the image the keypoints are in (positive ints).
        sigma: Gaussian width in pixels (> 0); default ``max(1.0, height / 64)``.

    Returns:
        ``(..., POSE_CHANNELS, height, width)`` float32 in [0, 1], on ``keypoints.device``.
    """
    check_keypoints(keypoints)
    height = check_size(height, "height")
    width = check_size(width, "width")
    if sigma is None:
        sigma = default_sigma(height)
    elif (
        isinstance(sigma, bool)
        or not isinstance(sigma, (int, float))
        or not math.isfinite(sigma)
        or sigma <= 0
    ):
        raise InputError("sigma", "a finite float > 0 or None", sigma)

    batch_shape = keypoints.shape[:-2]
    kp = keypoints.reshape(-1, NUM_KEYPOINTS, 3).to(torch.float32)  # (B, 18, 3)
    present = present_keypoints(kp)  # (B, 18)
    xy = torch.where(present[..., None], kp[..., :2], torch.zeros_like(kp[..., :2]))
    device = kp.device
    inv = -0.5 / (float(sigma) ** 2)
    xs = torch.arange(width, device=device, dtype=torch.float32) + 0.5  # (W,)
    ys = torch.arange(height, device=device, dtype=torch.float32) + 0.5  # (H,)

    # Heatmaps: separable Gaussian, exactly 0 for absent keypoints.
    gx = torch.exp(inv * (xs - xy[..., 0:1]) ** 2) * present[..., None]  # (B, 18, W)
    gy = torch.exp(inv * (ys - xy[..., 1:2]) ** 2)  # (B, 18, H)
    maps = torch.empty(kp.shape[0], POSE_CHANNELS, height, width, device=device)
    torch.mul(gy[..., :, None], gx[..., None, :], out=maps[:, :NUM_KEYPOINTS])  # (B, 18, H, W)

    # Limb maps: squared distance from each pixel centre to the segment a -> b, evaluated only in
    # the segment's bounding box grown by CUTOFF_SIGMAS * sigma (beyond it the map is < 4e-6 and
    # is stored as 0). One small vectorized block per present limb.
    limbs = maps[:, NUM_KEYPOINTS:]  # (B, L, H, W)
    limbs.zero_()
    # The boxes from the keypoints' host values (no wait for the device); on the CPU those are
    # the keypoints themselves.
    on_host = device.type == "cpu"
    if on_host:
        host_present, host_xy = present, xy
    else:
        host = host_keypoints(kp).reshape(-1, NUM_KEYPOINTS, 3)
        host_present = present_keypoints(host)
        host_xy = host[..., :2]
        host_xy = torch.where(host_present[..., None], host_xy, torch.zeros_like(host_xy))
    ok = host_present[:, _LIMB_A] & host_present[:, _LIMB_B]  # (B, L)
    margin = CUTOFF_SIGMAS * float(sigma)
    ha, hb = host_xy[:, _LIMB_A], host_xy[:, _LIMB_B]  # (B, L, 2)
    lo = (torch.minimum(ha, hb) - margin).clamp(-1.0, 1e7).floor().to(torch.int64)
    hi = (torch.maximum(ha, hb) + margin).clamp(-1.0, 1e7).ceil().to(torch.int64)
    lo_x, lo_y = lo[..., 0].clamp(0, width), lo[..., 1].clamp(0, height)
    hi_x, hi_y = hi[..., 0].clamp(0, width), hi[..., 1].clamp(0, height)
    boxes = torch.stack([lo_x, hi_x, lo_y, hi_y], dim=-1)[ok].tolist()
    if on_host:  # the ends as float32 host scalars: the same float32 arithmetic, no 0-d ops
        a, b = ha.numpy(), hb.numpy()
    else:
        a, b = xy[:, _LIMB_A], xy[:, _LIMB_B]  # (B, L, 2) on the device
    for (bi, li), (x0, x1, y0, y1) in zip(ok.nonzero().tolist(), boxes, strict=True):
        if x1 <= x0 or y1 <= y0:
            continue
        ax, ay = a[bi, li, 0], a[bi, li, 1]
        abx, aby = b[bi, li, 0] - ax, b[bi, li, 1] - ay
        len2 = abx * abx + aby * aby
        if on_host:
            len2 = max(len2, np.float32(1e-12))
            ax, ay, abx, aby, sx, sy = map(float, (ax, ay, abx, aby, abx / len2, aby / len2))
        else:
            len2 = len2.clamp_min(1e-12)
            sx, sy = abx / len2, aby / len2
        apx = (xs[x0:x1] - ax)[None, :]  # (1, w)
        apy = (ys[y0:y1] - ay)[:, None]  # (h, 1)
        t = ((apx * sx) + (apy * sy)).clamp_(0.0, 1.0)  # (h, w)
        dx = apx - t * abx
        dy = apy - t * aby
        limbs[bi, li, y0:y1, x0:x1] = torch.exp_((dx * dx).add_(dy * dy).mul_(inv))

    return maps.reshape(*batch_shape, POSE_CHANNELS, height, width)
