"""Segmenter-like person masks for the synthetic clips, and the generator inputs built on them.

A synthetic clip's ``person_mask`` is exact (drawn with the person); the live segmenter's mask is
soft at the edge and its edge wanders a pixel or two from frame to frame. The outline fit
(:mod:`engine.inputs.body_outline`) measures the garment's seams on that edge, so with exact masks
the fit's targets are steadier than they are live, and a generator trained and scored on them
learns nothing about averaging that wander over its window. :func:`segmenter_mask` moves the edge
of an exact mask the way a segmenter does, and :func:`clip_model_inputs` builds a clip's generator
inputs from it (training and evaluation both).

The edge moves along its normal by an offset field, then softens::

    sdf      = signed distance to the mask's edge, px (> 0 inside; pixel centres, so an exact
               pixel is +-0.5 from the edge at best)
    offset_t = edge_px * B(x, y) + jitter_px * J_t(x, y)       (> 0 grows the mask)
    mask_t   = sigmoid((sdf + offset_t) / softness_px)

``B`` (per clip: the segmenter's bias, eroding here and dilating there) and ``J_t`` (drawn anew
every frame: the temporal jitter) are smooth noise fields clipped to [-1, 1] (``B`` 3 cells,
``J_t`` 6 across the frame). So a pixel's value crosses 0.5 only within ``0.5 + edge_px +
jitter_px`` pixels of the exact edge, and with zero noise the mask thresholded at 0.5 is the exact
mask. Seeded and deterministic: the noise is drawn from ``np.random.default_rng((seed, SALT))``,
a stream of its own, so the clip itself is unchanged. The default amounts are fractions of the
shorter image side (at 128 x 96: 1 px bias, 1.5 px jitter, 0.6 px softness).
"""

from __future__ import annotations

import cv2
import numpy as np
import torch

from engine.errors import InputError
from engine.inputs.frame_inputs import clip_inputs
from engine.training.synthetic import Clip, _smooth_noise

__all__ = ["segmenter_mask", "clip_model_inputs", "mask_noise_px", "SALT"]

SALT = 0x5E6  # second word of the noise's seed: its own random stream, apart from the clip's
EDGE_FRACTION = 1.0 / 96  # bias of the edge, of min(H, W)
JITTER_FRACTION = 1.5 / 96  # per-frame wander of the edge, of min(H, W)
SOFTNESS_FRACTION = 0.6 / 96  # width of the soft edge, of min(H, W)


def mask_noise_px(height: int, width: int) -> dict[str, float]:
    """The default ``edge_px``, ``jitter_px`` and ``softness_px`` for frames of that size."""
    side = min(height, width)
    return {
        "edge_px": EDGE_FRACTION * side,
        "jitter_px": JITTER_FRACTION * side,
        "softness_px": SOFTNESS_FRACTION * side,
    }


def _check_px(name: str, value: object, positive: bool = False) -> float:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not ok or not np.isfinite(value) or value < 0 or (positive and value == 0):
        raise InputError(name, "a finite number " + ("> 0" if positive else ">= 0"), value)
    return float(value)


def _signed_distance(inside: np.ndarray) -> np.ndarray:
    """(H, W) uint8 {0, 1} -> (H, W) float32 px to the edge, > 0 inside, between pixel centres."""
    if not inside.any():
        return np.full(inside.shape, -1e4, np.float32)
    if inside.all():
        return np.full(inside.shape, 1e4, np.float32)
    d_in = cv2.distanceTransform(inside, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    d_out = cv2.distanceTransform(1 - inside, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    return np.where(inside > 0, d_in - 0.5, 0.5 - d_out).astype(np.float32)


def segmenter_mask(
    mask: torch.Tensor,
    seed: int,
    *,
    edge_px: float = 1.0,
    jitter_px: float = 1.5,
    softness_px: float = 0.6,
) -> torch.Tensor:
    """A segmenter-like version of exact person masks (see the module docstring).

    Args:
        mask: (T, 1, H, W) float person masks in [0, 1] (thresholded at 0.5).
        seed: int >= 0; the same seed and arguments give the same tensor, bit for bit.
        edge_px: amplitude of the per-clip edge bias, pixels (>= 0).
        jitter_px: amplitude of the per-frame edge jitter, pixels (>= 0).
        softness_px: width of the soft edge, pixels (> 0).

    Returns:
        (T, 1, H, W) float32 in [0, 1] on ``mask``'s device.

    Raises:
        InputError: naming ``mask``, ``seed``, ``edge_px``, ``jitter_px`` or ``softness_px``.
    """
    if not isinstance(mask, torch.Tensor) or mask.ndim != 4 or mask.shape[1] != 1:
        raise InputError("mask", "a (T, 1, H, W) tensor", mask)
    if mask.shape[0] < 1 or mask.shape[2] < 2 or mask.shape[3] < 2:
        raise InputError("mask", "at least 1 frame of 2 x 2 pixels", tuple(mask.shape))
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise InputError("seed", "an int >= 0", seed)
    edge = _check_px("edge_px", edge_px)
    jitter = _check_px("jitter_px", jitter_px)
    soft = _check_px("softness_px", softness_px, positive=True)
    t, _, h, w = mask.shape
    rng = np.random.default_rng((int(seed), SALT))
    inside = (mask[:, 0].detach().to("cpu", torch.float32).numpy() > 0.5).astype(np.uint8)
    bias = np.clip(_smooth_noise(rng, h, w, 3), -1.0, 1.0) * edge
    out = np.empty((t, h, w), np.float32)
    for i in range(t):
        offset = bias + jitter * np.clip(_smooth_noise(rng, h, w, 6), -1.0, 1.0)
        z = (_signed_distance(inside[i]) + offset) / soft
        out[i] = 0.5 * (1.0 + np.tanh(0.5 * z))  # sigmoid(z), no overflow
    return torch.from_numpy(out)[:, None].to(mask.device)  # (T, 1, H, W)


def clip_model_inputs(
    clip: Clip, seed: int, *, fit: str, mask_noise: bool = True
) -> dict[str, torch.Tensor]:
    """:func:`engine.inputs.frame_inputs.clip_inputs` for clip ``seed`` with garment fit ``fit``
    on its segmenter-like person mask (:func:`segmenter_mask` at :func:`mask_noise_px`), or on
    its exact mask when ``mask_noise`` is False."""
    if mask_noise:
        _, _, h, w = clip.person_mask.shape
        noisy = segmenter_mask(clip.person_mask, seed, **mask_noise_px(h, w))
        clip = Clip(
            frames=clip.frames,
            keypoints=clip.keypoints,
            clean_keypoints=clip.clean_keypoints,
            person_mask=noisy,
            garment_mask=clip.garment_mask,
            garment=clip.garment,
        )
    return clip_inputs(clip, fit=fit)
