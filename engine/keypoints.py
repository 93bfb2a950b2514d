"""The canonical body-pose format: the 18 OpenPose body keypoints (OpenPose-18).

A pose is a float32 array/tensor of shape (18, 3): ``(x, y, confidence)`` per keypoint, x and y in
pixels of the image it was detected on (x to the right, y down, origin at the top-left pixel's
corner), confidence in [0, 1]; a keypoint that was not found has confidence 0 (its x, y are then
meaningless). A clip of T frames is (T, 18, 3). "Right" and "left" are the person's own sides.

Everything that produces poses (the synthetic data, the mediapipe detector in the runtime) maps
to this format, and everything that consumes them (pose maps, try-on region, garment warp) reads
only this format.
"""

from __future__ import annotations

import operator

import torch

from engine.errors import InputError

__all__ = [
    "CONFIDENCE_MIN",
    "KEYPOINT_NAMES",
    "KEYPOINT_INDEX",
    "NUM_KEYPOINTS",
    "LIMBS",
    "check_keypoints",
    "check_size",
    "present_keypoints",
]

KEYPOINT_NAMES = (
    "nose",
    "neck",
    "right_shoulder",
    "right_elbow",
    "right_wrist",
    "left_shoulder",
    "left_elbow",
    "left_wrist",
    "right_hip",
    "right_knee",
    "right_ankle",
    "left_hip",
    "left_knee",
    "left_ankle",
    "right_eye",
    "left_eye",
    "right_ear",
    "left_ear",
)
NUM_KEYPOINTS = len(KEYPOINT_NAMES)
KEYPOINT_INDEX = {name: i for i, name in enumerate(KEYPOINT_NAMES)}

# The 17 limbs OpenPose draws for OpenPose-18 (pairs of keypoint indices), in its order.
LIMBS = (
    (1, 2), (1, 5), (2, 3), (3, 4), (5, 6), (6, 7), (1, 8), (8, 9), (9, 10),
    (1, 11), (11, 12), (12, 13), (1, 0), (0, 14), (14, 16), (0, 15), (15, 17),
)  # fmt: skip

CONFIDENCE_MIN = 0.1
"""Keypoints with a confidence below this are treated as missing (by every module)."""


def check_size(value: object, name: str) -> int:
    """``value`` as a positive int, or raise :class:`InputError` naming ``name``."""
    if isinstance(value, bool):
        raise InputError(name, "a positive int", value)
    try:
        size = operator.index(value)
    except TypeError:
        raise InputError(name, "a positive int", value) from None
    if size <= 0:
        raise InputError(name, "a positive int", value)
    return size


def check_keypoints(keypoints: object, name: str = "keypoints", max_ndim: int | None = None):
    """Validate a ``(..., 18, 3)`` floating keypoint tensor (at most ``max_ndim`` dims)."""
    shape_text = "(18, 3)" if max_ndim == 2 else "(18, 3) or (T, 18, 3)" if max_ndim else None
    expected = f"a floating tensor of shape {shape_text or '(..., 18, 3)'}"
    if not isinstance(keypoints, torch.Tensor):
        raise InputError(name, expected, keypoints)
    if (
        not keypoints.is_floating_point()
        or keypoints.ndim < 2
        or tuple(keypoints.shape[-2:]) != (NUM_KEYPOINTS, 3)
        or (max_ndim is not None and keypoints.ndim > max_ndim)
    ):
        raise InputError(name, expected, keypoints)
    return keypoints


def present_keypoints(keypoints: torch.Tensor) -> torch.Tensor:
    """Boolean ``(..., 18)``: confidence ``>= CONFIDENCE_MIN`` and finite coordinates."""
    xy = keypoints[..., :2]
    return (keypoints[..., 2] >= CONFIDENCE_MIN) & torch.isfinite(xy).all(dim=-1)
