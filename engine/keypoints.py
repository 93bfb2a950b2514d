"""The canonical body-pose format: the 18 OpenPose (COCO) body keypoints.

A pose is a float32 array/tensor of shape (18, 3): ``(x, y, confidence)`` per keypoint, x and y in
pixels of the image it was detected on (x to the right, y down, origin at the top-left pixel's
corner), confidence in [0, 1]; a keypoint that was not found has confidence 0 (its x, y are then
meaningless). A clip of T frames is (T, 18, 3). "Right" and "left" are the person's own sides.

Everything that produces poses (the synthetic data, the mediapipe detector in the runtime) maps
to this format, and everything that consumes them (pose maps, try-on region, garment warp) reads
only this format.
"""

from __future__ import annotations

__all__ = ["KEYPOINT_NAMES", "KEYPOINT_INDEX", "NUM_KEYPOINTS", "LIMBS"]

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

# The 17 limbs OpenPose draws for COCO-18 (pairs of keypoint indices), in its order.
LIMBS = (
    (1, 2), (1, 5), (2, 3), (3, 4), (5, 6), (6, 7), (1, 8), (8, 9), (9, 10),
    (1, 11), (11, 12), (12, 13), (1, 0), (0, 14), (14, 16), (0, 15), (15, 17),
)  # fmt: skip
