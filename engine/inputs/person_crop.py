"""The crop around the person that the generator sees, and the way back into the full frame.

The generator was trained on frames framed like its synthetic data: the person's shoulders
``SHOULDER_WIDTH_FRACTION`` of the crop width apart, the neck at ``NECK_HEIGHT_FRACTION`` of the
crop height, horizontally centred. :class:`PersonCrop` reproduces that framing on a full camera
frame: an axis-aligned box with the model's aspect ratio (``height / width``), placed from the
keypoints and smoothed over time (exponential smoothing of centre and size, so that keypoint
jitter does not shake the whole crop; the smoothed box first moves with the image motion when
one is given, so the smoothing does not lag a moving camera), which may extend past the frame
(the missing part is filled by replicating the border, as the camera would have seen "more of
the same"). The person mask is cropped the same way and smoothed over the stream along the image
motion (:meth:`PersonCrop.crop_mask`).

Coordinates: pixels, x right, y down, origin at the top-left pixel's corner (as
:mod:`engine.keypoints`). A :class:`CropBox` maps frame -> crop by ``(p - origin) * scale``.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from engine.errors import InputError
from engine.keypoints import KEYPOINT_INDEX
from engine.perception.motion_stabilizer import (
    MASK_WEIGHT,
    MaskSmoother,
    check_motion,
    motion_scale,
)

__all__ = ["CropBox", "PersonCrop", "SHOULDER_WIDTH_FRACTION", "NECK_HEIGHT_FRACTION"]

SHOULDER_WIDTH_FRACTION = 0.48
"""Shoulder width / crop width of the training clips (median over training seeds: 0.484)."""
NECK_HEIGHT_FRACTION = 0.5
"""Neck height / crop height of the training clips (median: 0.507)."""
MIN_SHOULDER_PX = 4.0
"""Shoulders closer than this (pixels of the frame) are not a usable person."""


@dataclass(frozen=True)
class CropBox:
    """``width x height`` frame pixels at integer ``(x0, y0)`` (may extend past the frame),
    resized to the model's ``out_width x out_height``: frame point ``(x, y)`` -> crop point
    ``((x - x0) * out_width / width, (y - y0) * out_height / height)``."""

    x0: int
    y0: int
    width: int
    height: int
    out_width: int
    out_height: int

    @property
    def bounds(self) -> tuple[int, int, int, int]:
        """``(x0, y0, x1, y1)`` in frame pixels (x1, y1 exclusive)."""
        return self.x0, self.y0, self.x0 + self.width, self.y0 + self.height

    def keypoints_to_crop(self, keypoints: np.ndarray) -> np.ndarray:
        """(18, 3) frame keypoints -> (18, 3) crop keypoints (confidence unchanged)."""
        out = np.array(keypoints, dtype=np.float32, copy=True)
        out[:, 0] = (out[:, 0] - self.x0) * (self.out_width / self.width)
        out[:, 1] = (out[:, 1] - self.y0) * (self.out_height / self.height)
        return out


class PersonCrop:
    """Places and smooths the crop box over a stream; crops frames and masks; pastes back.

    Args:
        out_height, out_width: the model's input size in pixels.
        smoothing: weight of the new box in the exponential smoothing of its centre and size
            (1 = no smoothing); a box whose centre moves more than half its width is taken as is.
        mask_smoothing: the new mask's weight in :meth:`crop_mask`'s smoothing over the stream
            (:class:`engine.perception.motion_stabilizer.MaskSmoother`, in (0, 1]; 1 = none).
    """

    def __init__(
        self,
        out_height: int,
        out_width: int,
        *,
        smoothing: float = 0.35,
        mask_smoothing: float = MASK_WEIGHT,
    ) -> None:
        for name, value in (("out_height", out_height), ("out_width", out_width)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InputError(name, "an int >= 1", value)
        if (
            isinstance(smoothing, bool)
            or not isinstance(smoothing, (int, float))
            or not (0.0 < smoothing <= 1.0)
        ):
            raise InputError("smoothing", "a number in (0, 1]", smoothing)
        self.out_height, self.out_width = out_height, out_width
        self.smoothing = float(smoothing)
        self._state: np.ndarray | None = None  # (cx, cy, width)
        if (
            isinstance(mask_smoothing, bool)
            or not isinstance(mask_smoothing, (int, float))
            or not (0.0 < mask_smoothing <= 1.0)
        ):
            raise InputError("mask_smoothing", "a number in (0, 1]", mask_smoothing)
        self._masks = MaskSmoother(float(mask_smoothing))
        self._mask_box: CropBox | None = None  # the box of the previous smoothed mask

    def reset(self) -> None:
        """Forget the smoothed box and mask (a new stream, or the person was lost)."""
        self._state = None
        self._masks.reset()
        self._mask_box = None

    def place(self, keypoints: np.ndarray, motion: np.ndarray | None = None) -> CropBox | None:
        """The (smoothed) box for a frame's (18, 3) keypoints, or None when the shoulders are not
        both found (no usable person).

        Args:
            keypoints: ``(18, 3)`` frame keypoints.
            motion: ``(2, 3)`` the image motion from the previous frame to this one (frame
                pixels; :attr:`engine.perception.person_detector.PersonDetection.motion`), or
                ``None``. The smoothed box is first moved by it (centre mapped, width scaled by
                its scale), so a moving camera or person does not slide inside the crop while
                the smoothing catches up.

        Raises:
            InputError: ``motion`` is not None or a finite (2, 3) array.
        """
        check_motion(motion)
        if self._state is not None and motion is not None:
            centre = np.einsum("ij,j->i", motion[:, :2], self._state[:2]) + motion[:, 2]
            scale = motion_scale(motion)
            self._state = np.array([centre[0], centre[1], self._state[2] * scale])
        rs, ls = (
            keypoints[KEYPOINT_INDEX["right_shoulder"]],
            keypoints[KEYPOINT_INDEX["left_shoulder"]],
        )
        if rs[2] <= 0 or ls[2] <= 0:
            return None
        shoulder = float(np.hypot(*(rs[:2] - ls[:2])))
        if shoulder < MIN_SHOULDER_PX:
            return None
        neck = keypoints[KEYPOINT_INDEX["neck"]]
        cx, cy = neck[:2] if neck[2] > 0 else (rs[:2] + ls[:2]) / 2
        width = shoulder / SHOULDER_WIDTH_FRACTION
        new = np.array([cx, cy, width], dtype=np.float64)
        if self._state is None or np.hypot(*(new[:2] - self._state[:2])) > 0.5 * self._state[2]:
            self._state = new
        else:
            self._state = self._state + self.smoothing * (new - self._state)
        cx, cy, width = self._state
        height = width * self.out_height / self.out_width
        return CropBox(round(cx - width / 2), round(cy - NECK_HEIGHT_FRACTION * height),
                       max(1, round(width)), max(1, round(height)), self.out_width,
                       self.out_height)  # fmt: skip

    def crop(self, image: np.ndarray, box: CropBox, *, interpolation: int = cv2.INTER_AREA):
        """(H, W, C) or (H, W) image -> (out_height, out_width[, C]) crop of ``box``; the part of
        the box outside the image replicates its border. Same dtype."""
        h, w = image.shape[:2]
        x0, y0, x1, y1 = box.bounds
        inner = image[max(y0, 0) : min(y1, h), max(x0, 0) : min(x1, w)]
        if inner.size == 0:  # the box misses the frame: replicate the nearest border pixels
            ys = np.clip(np.arange(y0, y1), 0, h - 1)
            xs = np.clip(np.arange(x0, x1), 0, w - 1)
            inner = image[ys][:, xs]
        else:
            pad = (max(0, -y0), max(0, y1 - h), max(0, -x0), max(0, x1 - w))
            if any(pad):
                inner = cv2.copyMakeBorder(inner, *pad, cv2.BORDER_REPLICATE)
        out = cv2.resize(inner, (self.out_width, self.out_height), interpolation=interpolation)
        return out[..., None] if image.ndim == 3 and out.ndim == 2 else out  # OpenCV drops C=1

    def crop_mask(
        self,
        mask: np.ndarray,
        box: CropBox,
        motion: np.ndarray | None = None,
        *,
        interpolation: int = cv2.INTER_LINEAR,
    ) -> np.ndarray:
        """A frame's person mask cropped like :meth:`crop` and smoothed over the
        stream: the previous smoothed crop mask is moved into this box (the previous box ->
        frame, the image ``motion`` of :meth:`place`, this frame -> this box) and blended with
        this one (:class:`engine.perception.motion_stabilizer.MaskSmoother`: the segmenter's edge
        flicker averages out, a part that moved against the torso is taken as it is now).

        Args:
            mask: ``(H, W)`` float mask in [0, 1] at the frame's size.
            box: this frame's crop box.
            motion: ``(2, 3)`` previous -> this frame, frame pixels, or ``None``: no motion known
                (a detector that does not report it, a track's first frame, a lost motion
                estimate), so nothing to smooth along: the mask is returned as cropped and the
                smoothing starts over from it.
            interpolation: the OpenCV resize filter of the crop.

        Returns:
            ``(out_height, out_width)`` float32, a new array.
        """
        if (
            not isinstance(mask, np.ndarray)
            or mask.ndim != 2
            or min(mask.shape) < 1
            or mask.dtype.kind not in "fu"
        ):
            raise InputError("mask", "an (H, W) real numpy array", mask)
        check_motion(motion)
        crop = self.crop(mask.astype(np.float32, copy=False), box, interpolation=interpolation)
        between = None  # (3, 3): previous crop pixel -> this crop pixel
        if motion is None:  # no motion to follow: start over from this mask
            self._masks.reset()
        elif self._mask_box is not None:
            # 3 x 3 products by einsum's own loops: BLAS / LAPACK calls (``@``, ``inv``) on such
            # tiny matrices wake OpenBLAS's thread pool, whose spinning threads then take the
            # cores from every other stage of the stream for milliseconds per frame.
            between = np.einsum(
                "ij,jk,kl->il", _crop_pixels(box), _frame_motion(motion),
                _crop_pixels_inverse(self._mask_box),
            )  # fmt: skip
        self._mask_box = box
        return self._masks(crop, None if between is None else between[:2])

    @staticmethod
    def paste_region(box: CropBox, frame_height: int, frame_width: int):
        """The part of the box inside the frame: ``(frame_slices, crop_slices_in_box_pixels,
        (box_pixel_height, box_pixel_width))``, or None when the box misses the frame."""
        x0, y0, x1, y1 = box.bounds
        fx0, fy0, fx1, fy1 = max(x0, 0), max(y0, 0), min(x1, frame_width), min(y1, frame_height)
        if fx1 <= fx0 or fy1 <= fy0:
            return None
        frame_part = (slice(fy0, fy1), slice(fx0, fx1))
        box_part = (slice(fy0 - y0, fy1 - y0), slice(fx0 - x0, fx1 - x0))
        return frame_part, box_part, (y1 - y0, x1 - x0)


def _crop_pixels(box: CropBox) -> np.ndarray:
    """(3, 3): frame point (pixel-corner origin) -> crop pixel index (OpenCV's centre origin)."""
    sx, sy = box.out_width / box.width, box.out_height / box.height
    return np.array([[sx, 0.0, -box.x0 * sx - 0.5], [0.0, sy, -box.y0 * sy - 0.5], [0, 0, 1]])


def _crop_pixels_inverse(box: CropBox) -> np.ndarray:
    """(3, 3): the inverse of :func:`_crop_pixels` (crop pixel index -> frame point)."""
    sx, sy = box.out_width / box.width, box.out_height / box.height
    return np.array([[1 / sx, 0.0, box.x0 + 0.5 / sx], [0.0, 1 / sy, box.y0 + 0.5 / sy], [0, 0, 1]])


def _frame_motion(motion: np.ndarray | None) -> np.ndarray:
    """(3, 3) homogeneous form of a (2, 3) motion (the identity for None)."""
    out = np.eye(3)
    if motion is not None:
        out[:2] = motion
    return out
