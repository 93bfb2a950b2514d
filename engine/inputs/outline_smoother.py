"""A stream's body outline smoothed over time, in the body's own frame.

:func:`engine.inputs.body_outline.body_outline` measures one frame. Its measurements wobble from
frame to frame with the mask's edge, and an edge that is sometimes measured and sometimes
estimated (a hem line crossing an arm hanging at the body's side, a waist at the frame's bottom
edge) jumps between the two: the garment's seams, put on those edges, would move with them while
the person stands still (on a synthetic still person under the bundled clip's camera path, the
right hem edge jumped by 0.09 shoulder widths std between frames).

:class:`OutlineSmoother` filters every measurement with a One Euro filter
(:class:`engine.perception.one_euro.OneEuroFilter`) in body coordinates: relative to the shoulder
midpoint, along ``across`` and ``down`` (:func:`engine.inputs.tryon_region.body_frame`), in
shoulder widths. The person moving, turning or leaning, or the camera moving, moves the body frame
itself, which comes from the (stabilized) keypoints of each frame and is not filtered here: only
the outline's *shape* relative to the skeleton is smoothed, and that changes slowly.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from engine.errors import InputError
from engine.inputs.body_outline import BodyOutline
from engine.inputs.keypoint_mirror import host_keypoints
from engine.inputs.tryon_region import host_body_frame
from engine.keypoints import check_keypoints, check_size
from engine.perception.one_euro import OneEuroFilter

__all__ = ["MIN_CUTOFF_HZ", "BETA", "OutlineSmoother"]

MIN_CUTOFF_HZ = 0.5
"""Cutoff at rest, Hz (standing still, the outline's shape relative to the skeleton is fixed)."""
BETA = 1.0
"""Speed coefficient, per (shoulder width / s): a shape change of 1 shoulder width per second
raises the cutoff by 1 Hz."""


class OutlineSmoother:
    """Per stream: each frame's :class:`~engine.inputs.body_outline.BodyOutline` smoothed over time.

    Args:
        min_cutoff: the One Euro filter's cutoff at rest, Hz (> 0).
        beta: its speed coefficient, per (shoulder width / s) (>= 0).
    """

    def __init__(self, *, min_cutoff: float = MIN_CUTOFF_HZ, beta: float = BETA) -> None:
        self._points = OneEuroFilter(min_cutoff=min_cutoff, beta=beta)
        self._arms = OneEuroFilter(min_cutoff=min_cutoff, beta=beta)

    def reset(self) -> None:
        """Forget the stream; the next outline passes unchanged."""
        self._points.reset()
        self._arms.reset()

    def __call__(
        self, outline: BodyOutline, keypoints: torch.Tensor, height: int, timestamp_s: float
    ) -> BodyOutline:
        """The smoothed outline of this frame.

        Args:
            outline: this frame's measurement (``body_outline(mask, keypoints, height, width)``).
            keypoints: ``(18, 3)`` the pose it was measured with, pixels.
            height: the image height.
            timestamp_s: the frame's time in seconds.

        Returns:
            A :class:`BodyOutline` like ``outline`` (``confidence`` and ``status`` its own) with
            ``edges``, ``shoulder_tops`` and ``arm_width`` smoothed. An invalid outline (no
            person) comes back as it is and restarts the smoothing.
        """
        if not isinstance(outline, BodyOutline):
            raise InputError("outline", "a BodyOutline", outline)
        check_keypoints(keypoints, max_ndim=2)
        height = check_size(height, "height")
        if isinstance(timestamp_s, bool) or not isinstance(timestamp_s, (int, float)):
            raise InputError("timestamp_s", "a finite number of seconds", timestamp_s)
        if not outline.valid:
            self.reset()
            return outline
        bf = host_body_frame(host_keypoints(keypoints)[None], height)
        sw = float(bf.shoulder_width[0])
        if sw <= 0:
            return outline
        m = (0.5 * (bf.r_shoulder[0] + bf.l_shoulder[0])).double().numpy()
        axes = torch.stack([bf.across[0], bf.down[0]]).double().numpy()  # (2, 2): rows u, d
        pts = np.concatenate(
            [outline.edges.reshape(8, 2).double().numpy(), outline.shoulder_tops.double().numpy()]
        )  # fmt: skip  (10, 2)
        body = (pts - m) @ axes.T / sw  # (10, 2): (x, t) in shoulder widths
        body = self._points(body, timestamp_s).astype(np.float64)
        back = m + (body * sw) @ axes  # (10, 2) pixels
        arms = self._arms(outline.arm_width.double().numpy()[:, None] / sw, timestamp_s)[:, 0]
        f32 = torch.float32
        return dataclasses.replace(
            outline,
            edges=torch.from_numpy(back[:8].reshape(4, 2, 2)).to(f32),
            shoulder_tops=torch.from_numpy(back[8:]).to(f32),
            arm_width=torch.from_numpy(arms * sw).to(f32),
        )
