"""The generator's four inputs built from frames, keypoints and a garment: one code path shared
by training data, evaluation and the runtime.

For T frames (T, 3, H, W) in [0, 1], their poses (T, 18, 3) and a flat-lay garment (4, Hg, Wg)::

    pose            = render_pose_maps(keypoints)                     (T, POSE_CHANNELS, H, W)
    region          = tryon_region(keypoints, person_mask)            (T, 1, H, W), 1 = regenerate
    background, background_mask = make_background(frames, region)     (T, 3 | 1, H, W)
    outline         = body_outline(person_mask, keypoints)            (fit="outline" only)
    cloth           = warp_garment(garment -> each frame's body)      (T, 4, H, W): RGB + alpha
    paste_mask      = paste_mask(frame, keypoints, cloth alpha)       (T, 1, H, W)
    shading         = clothing_shading(frame, paste_mask)             (T, 1, H, W)

``region`` is returned too (the loss and the metrics weigh it); it is ``1 - background_mask``.
``paste_mask`` (where the new garment replaces the frame: its alpha on the body, forearms and
hands in front and everything above the collar line left out) and ``shading`` (the original
clothing's low-passed luminance ratio, for the paste to multiply the garment by) are for the
paste; they are not generator inputs (:data:`engine.model.mpdt_generator.INPUT_NAMES`).

The fit: ``"outline"`` puts the garment's seams on the silhouette measured on the person mask
(:mod:`engine.inputs.body_outline`, :func:`engine.inputs.garment.fit_points`); ``"keypoints"``
uses the skeleton anchors (:func:`engine.inputs.garment.body_anchor_points`). The default is the
outline whenever a person mask is given (the bundled demo generator is trained on it);
:func:`clip_inputs` too.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from engine.errors import InputError
from engine.inputs.body_outline import BodyOutline, body_outline
from engine.inputs.garment import check_sleeve_follow, garment_keypoints, warp_garment
from engine.inputs.pose_maps import render_pose_maps
from engine.inputs.tryon_region import clothing_shading, make_background, paste_mask, tryon_region

__all__ = ["frame_inputs", "clip_inputs", "FITS"]

FITS = ("outline", "keypoints")


def frame_inputs(
    frames: torch.Tensor,
    keypoints: torch.Tensor,
    garment: torch.Tensor,
    *,
    garment_points: torch.Tensor | None = None,
    person_mask: torch.Tensor | None = None,
    fit: str | None = None,
    shading_strength: float = 1.0,
    sleeve_follow: Sequence[tuple[float, float]] | None = None,
    outlines: Sequence[BodyOutline] | None = None,
) -> dict[str, torch.Tensor]:
    """Inputs for T frames; see the module docstring.

    Args:
        frames: (T, 3, H, W) float RGB in [0, 1].
        keypoints: (T, 18, 3) poses in pixels of the frames.
        garment: (4, Hg, Wg) RGBA flat-lay garment in [0, 1].
        garment_points: its landmarks (from :func:`engine.inputs.garment.garment_keypoints`); found
            here when ``None`` (pass them to avoid redoing per-garment work every call).
        person_mask: optional (T, 1, H, W) person silhouette in [0, 1].
        fit: ``"outline"``, ``"keypoints"`` or ``None`` (outline when ``person_mask`` is given).
        shading_strength: ``strength`` of :func:`engine.inputs.tryon_region.clothing_shading`.
        sleeve_follow: with the outline fit, T (right, left) sleeve follow weights in [0, 1]
            (:func:`engine.inputs.garment.fit_points`; a stream's
            :class:`engine.inputs.sleeve_follow.SleeveFollow` gives them); ``None``: each frame
            decides on its own elbow confidences.
        outlines: T body outlines to use instead of measuring them here (a stream's
            :class:`engine.inputs.outline_smoother.OutlineSmoother` gives them).

    Returns:
        dict of (T, C, H, W) float32 tensors: ``cloth``, ``pose``, ``background``,
        ``background_mask``, ``region``, ``paste_mask`` and ``shading`` (both C = 1); and
        ``garment_grid`` (T, H, W, 2): where each pixel samples the garment (normalized
        ``grid_sample`` coordinates), for a paste at the garment's own resolution.
    """
    t, _, h, w = frames.shape
    if fit is None:
        fit = "keypoints" if person_mask is None else "outline"
    if fit not in FITS:
        raise InputError("fit", f"one of {FITS} or None", fit)
    if sleeve_follow is not None:
        if not hasattr(sleeve_follow, "__len__") or isinstance(sleeve_follow, (str, bytes)) \
                or len(sleeve_follow) != t:  # fmt: skip
            raise InputError("sleeve_follow", f"None or {t} (right, left) pairs", sleeve_follow)
        sleeve_follow = [check_sleeve_follow(v, f"sleeve_follow[{i}]")
                         for i, v in enumerate(sleeve_follow)]  # fmt: skip
    if outlines is not None and (
        not hasattr(outlines, "__len__")
        or len(outlines) != t
        or not all(isinstance(o, BodyOutline) for o in outlines)
    ):
        raise InputError("outlines", f"None or {t} BodyOutlines", outlines)
    if garment_points is None:
        garment_points = garment_keypoints(garment)
    region = tryon_region(
        keypoints, h, w, person_mask=None if person_mask is None else person_mask[:, 0]
    )  # (T, H, W)
    background, background_mask = make_background(frames, region)
    cloth, pastes, shades, grids = [], [], [], []
    for i in range(t):
        pm = None if person_mask is None else person_mask[i, 0]
        outline = body_outline(pm, keypoints[i], h, w) if outlines is None else outlines[i]
        rgb, alpha, grid = warp_garment(
            garment, garment_points, keypoints[i], h, w,
            outline=outline if fit == "outline" else None, with_grid=True,
            sleeve_follow=None if sleeve_follow is None else sleeve_follow[i],
        )  # fmt: skip
        cloth.append(torch.cat([rgb, alpha]))  # (4, H, W)
        grids.append(grid)  # (H, W, 2)
        widths = tuple(float(v) for v in outline.arm_width)
        paste = paste_mask(frames[i], keypoints[i], alpha, person_mask=pm, arm_width=widths)
        pastes.append(paste.to(frames.device))
        shades.append(
            clothing_shading(frames[i], paste, strength=shading_strength).to(frames.device)
        )
    return {
        "cloth": torch.stack(cloth),
        "pose": render_pose_maps(keypoints, h, w),
        "background": background.to(torch.float32),
        "background_mask": background_mask,
        "region": 1.0 - background_mask,
        "paste_mask": torch.stack(pastes),
        "shading": torch.stack(shades),
        "garment_grid": torch.stack(grids),
    }


def clip_inputs(clip, *, fit: str = "outline") -> dict[str, torch.Tensor]:
    """:func:`frame_inputs` for an :class:`engine.training.synthetic.Clip` (its noisy keypoints and
    its person mask, as a detector and a segmenter would give them), with garment fit ``fit``
    (``"outline"`` by default, what the bundled demo is trained on, or ``"keypoints"``)."""
    return frame_inputs(
        clip.frames, clip.keypoints, clip.garment, person_mask=clip.person_mask, fit=fit
    )
