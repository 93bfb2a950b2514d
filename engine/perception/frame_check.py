"""What the engine accepts as a frame: an (H, W, 3) uint8 RGB numpy array."""

from __future__ import annotations

import math

import numpy as np

from engine.errors import InputError

__all__ = ["check_frame", "check_timestamp"]


def check_frame(frame: object) -> np.ndarray:
    """``frame`` itself when it is an (H, W, 3) uint8 RGB numpy array with H, W >= 1 (a copy
    when it is a view with negative strides), else :class:`InputError` naming ``frame``."""
    if (
        not isinstance(frame, np.ndarray)
        or frame.dtype != np.uint8
        or frame.ndim != 3
        or frame.shape[2] != 3
        or frame.shape[0] < 1
        or frame.shape[1] < 1
    ):
        raise InputError("frame", "a non-empty HxWx3 uint8 RGB numpy array", frame)
    if any(stride < 0 for stride in frame.strides):  # a flipped view (f[:, ::-1], f[..., ::-1])
        return np.ascontiguousarray(frame)  # one copy; torch cannot view negative strides
    return frame


def check_timestamp(timestamp_s: object) -> float:
    """``timestamp_s`` (seconds) as a float when it is a finite real number (not a bool), else
    :class:`InputError` naming ``timestamp_s``."""
    ok = isinstance(timestamp_s, (int, float, np.integer, np.floating))
    if not ok or isinstance(timestamp_s, bool) or not math.isfinite(float(timestamp_s)):
        raise InputError("timestamp_s", "None or a finite number of seconds", timestamp_s)
    return float(timestamp_s)
