"""Whether a stream's sleeves follow the arms: a decision with hysteresis, and a blend in time.

On one frame, a sleeve follows the arm when the elbow's confidence is at least
:data:`engine.inputs.garment.SLEEVE_ELBOW_MIN` (0.5); otherwise the spline carries it with the
torso. In a stream that rule switches the sleeve between two places whenever a half-seen elbow's
confidence wanders across 0.5 (the bundled clip's right elbow climbs from 0.18 to 0.55 while the
person stands still), or whenever an elbow at the frame's edge blinks in and out of it: the sleeve
jumps. :class:`SleeveFollow` decides per side with hysteresis (start following once the elbow's
confidence has been at least :data:`FOLLOW_ON` for :data:`ON_FRAMES` frames in a row, let go
below :data:`FOLLOW_OFF`) and moves each side's
weight by ``1 / BLEND_FRAMES`` per frame towards its decision, so a switch is a glide of
:data:`BLEND_FRAMES` frames; :func:`engine.inputs.garment.fit_points` blends the sleeve's targets
between "at rest" and "along the arm" by the weight.

The first frame after :meth:`SleeveFollow.reset` takes the one-frame decision at once (weights
0 or 1, no glide from 0).
"""

from __future__ import annotations

import math

import torch

from engine.errors import InputError
from engine.inputs.garment import SLEEVE_ELBOW_MIN
from engine.inputs.keypoint_mirror import host_keypoints
from engine.inputs.tryon_region import host_body_frame
from engine.keypoints import check_keypoints, check_size

__all__ = ["BLEND_FRAMES", "FOLLOW_OFF", "FOLLOW_ON", "ON_FRAMES", "SleeveFollow"]

FOLLOW_ON = 0.6
"""Elbow confidence at which a sleeve that is not following starts to (mediapipe gives a clearly
seen elbow 0.9 and more; 0.5-0.6 is a guess at a joint at the frame's edge or behind the body)."""
FOLLOW_OFF = 0.4
"""Elbow confidence under which a following sleeve lets go."""
ON_FRAMES = 6
"""Frames in a row an elbow must be seen at :data:`FOLLOW_ON` before its sleeve starts following
(0.2 s at 30 FPS: an elbow blinking in and out at the frame's edge never starts it)."""
BLEND_FRAMES = 12
"""Frames a sleeve takes to move fully between at rest and along the arm (0.4 s at 30 FPS)."""


def _check_level(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InputError(name, "a float in [0, 1]", value)
    if not 0.0 <= value <= 1.0:
        raise InputError(name, "a float in [0, 1]", value)
    return float(value)


class SleeveFollow:
    """Per stream: the (right, left) sleeve follow weights of each frame, in [0, 1].

    Args:
        on: elbow confidence where a side starts following (>= ``off``).
        off: elbow confidence under which it stops.
        on_frames: frames in a row at ``on`` or more before it starts (>= 1).
        blend_frames: frames from 0 to 1 (>= 1; 1 switches at once).
    """

    def __init__(
        self,
        *,
        on: float = FOLLOW_ON,
        off: float = FOLLOW_OFF,
        on_frames: int = ON_FRAMES,
        blend_frames: int = BLEND_FRAMES,
    ) -> None:
        on, off = _check_level(on, "on"), _check_level(off, "off")
        if off > on:
            raise InputError("off", f"a confidence <= on ({on})", off)
        for name, value in (("on_frames", on_frames), ("blend_frames", blend_frames)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InputError(name, "an int >= 1", value)
        self.on, self.off = on, off
        self.on_frames, self.blend_frames = on_frames, blend_frames
        self.reset()

    def reset(self) -> None:
        """Forget the stream: the next frame decides on its own (the one-frame rule)."""
        self.following: list[bool] | None = None
        self.seen = [0, 0]  # frames in a row each elbow was at `on` or more
        self.weights = (0.0, 0.0)

    def __call__(self, keypoints: torch.Tensor, height: int) -> tuple[float, float]:
        """The weights for this frame's pose.

        Args:
            keypoints: ``(18, 3)`` pose in pixels (confidence in the last column).
            height: the image height (as for :func:`engine.inputs.tryon_region.body_frame`).

        Returns:
            ``(right, left)`` weights, each in [0, 1]: 1 = the sleeve follows the arm.
        """
        check_keypoints(keypoints, max_ndim=2)
        height = check_size(height, "height")
        conf = host_body_frame(host_keypoints(keypoints)[None], height).conf_elbow[0].tolist()
        if self.following is None:
            self.following = [c >= SLEEVE_ELBOW_MIN for c in conf]
            self.weights = tuple(1.0 if f else 0.0 for f in self.following)
            return self.weights
        step = 1.0 / self.blend_frames
        weights = []
        for side, c in enumerate(conf):
            self.seen[side] = self.seen[side] + 1 if c >= self.on else 0
            if self.following[side] and c < self.off:
                self.following[side] = False
            elif not self.following[side] and self.seen[side] >= self.on_frames:
                self.following[side] = True
            w = self.weights[side] + (step if self.following[side] else -step)
            weights.append(min(1.0, max(0.0, w)))
        self.weights = (weights[0], weights[1])
        return self.weights
