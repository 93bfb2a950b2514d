"""The generator's four inputs built from frames, keypoints and a garment: one code path shared
by training data, evaluation and the runtime.

For T frames (T, 3, H, W) in [0, 1], their poses (T, 18, 3) and a flat-lay garment (4, Hg, Wg)::

    pose            = render_pose_maps(keypoints)                     (T, POSE_CHANNELS, H, W)
    region          = tryon_region(keypoints, person_mask)            (T, 1, H, W), 1 = regenerate
    background, background_mask = make_background(frames, region)     (T, 3 | 1, H, W)
    cloth           = warp_garment(garment -> each frame's body)      (T, 4, H, W): RGB + alpha

``region`` is returned too (the loss and the metrics weigh it); it is ``1 - background_mask``.
"""

from __future__ import annotations

import torch

from engine.inputs.garment import garment_keypoints, warp_garment
from engine.inputs.pose_maps import render_pose_maps
from engine.inputs.tryon_region import make_background, tryon_region

__all__ = ["frame_inputs", "clip_inputs"]


def frame_inputs(
    frames: torch.Tensor,
    keypoints: torch.Tensor,
    garment: torch.Tensor,
    *,
    garment_points: torch.Tensor | None = None,
    person_mask: torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    """Inputs for T frames; see the module docstring.

    Args:
        frames: (T, 3, H, W) float RGB in [0, 1].
        keypoints: (T, 18, 3) poses in pixels of the frames.
        garment: (4, Hg, Wg) RGBA flat-lay garment in [0, 1].
        garment_points: its landmarks (from :func:`engine.inputs.garment.garment_keypoints`); found
            here when ``None`` (pass them to avoid redoing per-garment work every call).
        person_mask: optional (T, 1, H, W) person silhouette in [0, 1].

    Returns:
        dict of (T, C, H, W) float32 tensors: ``cloth``, ``pose``, ``background``,
        ``background_mask``, ``region``.
    """
    t, _, h, w = frames.shape
    if garment_points is None:
        garment_points = garment_keypoints(garment)
    region = tryon_region(
        keypoints, h, w, person_mask=None if person_mask is None else person_mask[:, 0]
    )  # (T, H, W)
    background, background_mask = make_background(frames, region)
    cloth = []
    for i in range(t):
        rgb, alpha = warp_garment(garment, garment_points, keypoints[i], h, w)
        cloth.append(torch.cat([rgb, alpha]))  # (4, H, W)
    return {
        "cloth": torch.stack(cloth),
        "pose": render_pose_maps(keypoints, h, w),
        "background": background.to(torch.float32),
        "background_mask": background_mask,
        "region": 1.0 - background_mask,
    }


def clip_inputs(clip) -> dict[str, torch.Tensor]:
    """:func:`frame_inputs` for an :class:`engine.training.synthetic.Clip` (its noisy keypoints and
    its person mask, as a detector and a segmenter would give them)."""
    return frame_inputs(clip.frames, clip.keypoints, clip.garment, person_mask=clip.person_mask)
