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

Two implementations of the crop, the same box: OpenCV on host arrays (:meth:`PersonCrop.crop`,
:meth:`PersonCrop.crop_mask`; the CPU session's path) and torch on tensors of any device
(:meth:`PersonCrop.crop_tensor`, :meth:`PersonCrop.smooth_mask`,
:meth:`PersonCrop.crop_mask_tensor`; a CUDA session's frame stays on the GPU). The torch resize
is OpenCV's own filter written as two small matrices (one per axis, the replicated border
folded into them): ``out = Wy @ frame[rows, cols] @ Wx^T`` per channel, where ``Wy[i, j]`` is
the overlap of output row ``i``'s footprint with frame row ``j`` over the footprint's height
(``"area"``: OpenCV's ``INTER_AREA``, down and up) or the two bilinear taps (``"linear"``:
``INTER_LINEAR``, half-pixel centres). It differs from OpenCV by OpenCV's rounding to uint8 and
its fixed-point coefficients (``tests/engine/inputs/test_person_crop.py`` bounds the difference).

Coordinates: pixels, x right, y down, origin at the top-left pixel's corner (as
:mod:`engine.keypoints`). A :class:`CropBox` maps frame -> crop by ``(p - origin) * scale``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from engine.errors import InputError
from engine.keypoints import KEYPOINT_INDEX
from engine.perception.motion_stabilizer import (
    MASK_GATE_LOW,
    MASK_GATE_SIZE,
    MASK_GATE_SPAN,
    MASK_WEIGHT,
    MaskSmoother,
    check_mask,
    check_motion,
    motion_scale,
)

__all__ = [
    "CROP_FILTERS",
    "CropBox",
    "PersonCrop",
    "SHOULDER_WIDTH_FRACTION",
    "NECK_HEIGHT_FRACTION",
]

CROP_FILTERS = ("area", "linear")
"""The torch crop's filters: OpenCV's ``INTER_AREA`` and ``INTER_LINEAR``."""

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
        self._tensor_masks = _TensorMaskSmoother(float(mask_smoothing))
        self._mask_box: CropBox | None = None  # the box of the previous smoothed mask

    def reset(self) -> None:
        """Forget the smoothed box and mask (a new stream, or the person was lost)."""
        self._state = None
        self._masks.reset()
        self._tensor_masks.reset()
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
        # Bounds clamped into the image: a box wholly above or left of it has negative ends,
        # which numpy would read from the other side.
        inner = image[min(max(y0, 0), h) : min(max(y1, 0), h),
                      min(max(x0, 0), w) : min(max(x1, 0), w)]  # fmt: skip
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
        check_motion(motion)
        crop = self.cut_mask(mask, box, interpolation=interpolation)
        return self._masks(crop, self._mask_motion(box, motion, self._masks))

    def cut_mask(
        self, mask: np.ndarray, box: CropBox, *, interpolation: int = cv2.INTER_LINEAR
    ) -> np.ndarray:
        """A frame's ``(H, W)`` real mask cropped like :meth:`crop` (OpenCV, on the host), not
        smoothed: ``(out_height, out_width)`` float32, a new array. A device session crops the
        detector's host mask with it before uploading the small crop (:meth:`smooth_mask`)."""
        check_mask(mask, "mask", min_side=1)
        return self.crop(mask.astype(np.float32, copy=False), box, interpolation=interpolation)

    def _mask_motion(self, box: CropBox, motion: np.ndarray | None, smoother) -> np.ndarray | None:
        """(2, 3) previous crop pixel -> this crop pixel for ``smoother``, or None (restarting
        it when no motion is known); ``box`` becomes the previous box."""
        between = None  # (3, 3): previous crop pixel -> this crop pixel
        if motion is None:  # no motion to follow: start over from this mask
            smoother.reset()
        elif self._mask_box is not None:
            # 3 x 3 products by einsum's own loops: BLAS / LAPACK calls (``@``, ``inv``) on such
            # tiny matrices wake OpenBLAS's thread pool, whose spinning threads then take the
            # cores from every other stage of the stream for milliseconds per frame.
            between = np.einsum(
                "ij,jk,kl->il", _crop_pixels(box), _frame_motion(motion),
                _crop_pixels_inverse(self._mask_box),
            )  # fmt: skip
        self._mask_box = box
        return None if between is None else between[:2]

    # ------------------------------------------------------------------ torch, any device
    def crop_tensor(
        self,
        image: torch.Tensor,
        box: CropBox,
        *,
        interpolation: Literal["area", "linear"] = "area",
    ) -> torch.Tensor:
        """:meth:`crop` in torch, on the image's device (no copy to or from the host).

        Args:
            image: ``(H, W, C)`` or ``(H, W)`` real tensor (uint8 or floating), any device and
                strides (e.g. the uploaded camera frame).
            box: the crop box (may extend past the image: the border is replicated).
            interpolation: ``"area"`` (OpenCV ``INTER_AREA``) or ``"linear"``
                (``INTER_LINEAR``); see the module docstring.

        Returns:
            ``(C, out_height, out_width)`` (or ``(out_height, out_width)``) float32 on
            ``image.device``, in the image's units (0..255 for uint8), not rounded.

        Raises:
            InputError: a bad ``image``, ``box`` or ``interpolation``.
        """
        if (
            not isinstance(image, torch.Tensor)
            or image.ndim not in (2, 3)
            or min(image.shape) < 1
            or image.dtype == torch.bool
            or image.is_complex()
        ):
            raise InputError("image", "an (H, W, C) or (H, W) real tensor", image)
        _check_box(box, self.out_height, self.out_width)
        if interpolation not in CROP_FILTERS:
            raise InputError("interpolation", f"one of {CROP_FILTERS}", interpolation)
        h, w = image.shape[:2]
        device = image.device
        wy, y0, ny = _axis_weights(box.y0, box.height, self.out_height, h, interpolation, device)
        wx, x0, nx = _axis_weights(box.x0, box.width, self.out_width, w, interpolation, device)
        part = image[y0 : y0 + ny, x0 : x0 + nx]  # a view: the frame pixels the box reads
        planes = (part if part.ndim == 3 else part[..., None]).permute(2, 0, 1)
        planes = planes.to(torch.float32)  # (C, ny, nx)
        if self.out_height * nx * (ny + self.out_width) <= nx * self.out_width * (
            ny + self.out_height
        ):  # the cheaper order of the two products
            out = torch.matmul(torch.matmul(wy, planes), wx.T)
        else:
            out = torch.matmul(wy, torch.matmul(planes, wx.T))
        return out if image.ndim == 3 else out[0]  # (C, out_h, out_w) or (out_h, out_w)

    def smooth_mask(
        self, crop: torch.Tensor, box: CropBox, motion: np.ndarray | None = None
    ) -> torch.Tensor:
        """:meth:`crop_mask`'s smoothing over the stream, in torch on the crop's device, for a
        mask already cropped to this box (the state, the previous smoothed mask, is a tensor
        there): warped along the motion (``grid_sample``, bilinear, border replicated) and
        blended as :class:`engine.perception.motion_stabilizer.MaskSmoother` does.

        Args:
            crop: ``(out_height, out_width)`` float tensor in [0, 1], any device.
            box: the box it was cropped with.
            motion: ``(2, 3)`` previous -> this frame, frame pixels, or ``None`` (start over).

        Returns:
            ``(out_height, out_width)`` float32 on ``crop.device``, a new tensor.
        """
        shape = (self.out_height, self.out_width)
        if (
            not isinstance(crop, torch.Tensor)
            or tuple(crop.shape) != shape
            or not crop.is_floating_point()
        ):
            raise InputError("crop", f"a floating tensor of shape {shape}", crop)
        _check_box(box, self.out_height, self.out_width)
        check_motion(motion)
        return self._tensor_masks(crop, self._mask_motion(box, motion, self._tensor_masks))

    def crop_mask_tensor(
        self, mask: torch.Tensor, box: CropBox, motion: np.ndarray | None = None
    ) -> torch.Tensor:
        """:meth:`crop_mask` in torch: a frame's ``(H, W)`` mask tensor (any device) cropped
        (``"linear"``, as :meth:`crop_mask`) and smoothed (:meth:`smooth_mask`);
        ``(out_height, out_width)`` float32 on ``mask.device``."""
        if not isinstance(mask, torch.Tensor) or mask.ndim != 2:
            raise InputError("mask", "an (H, W) real tensor", mask)
        check_motion(motion)
        crop = self.crop_tensor(mask, box, interpolation="linear")
        return self.smooth_mask(crop, box, motion)

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


def _check_box(box: object, out_height: int, out_width: int) -> None:
    if (
        not isinstance(box, CropBox)
        or box.width < 1
        or box.height < 1
        or (box.out_height, box.out_width) != (out_height, out_width)
    ):
        raise InputError("box", f"a CropBox resized to {out_width} x {out_height}", box)


def _axis_weights(
    start: int, size: int, out: int, limit: int, mode: str, device: torch.device
) -> tuple[torch.Tensor, int, int]:
    """One axis of the crop: box pixels ``start .. start + size - 1`` of an axis of ``limit``
    pixels (replicated past its ends) resized to ``out``. Returns ``(weights, first, n)``: the
    ``(out, n)`` float32 matrix on ``device`` applied to frame pixels ``first .. first + n - 1``
    (every output row sums to 1). Built on the device from integers: nothing is copied there."""
    first = min(max(start, 0), limit - 1)
    last = min(max(start + size - 1, 0), limit - 1)
    n = last - first + 1
    f64 = torch.float64
    i = torch.arange(out, device=device, dtype=f64)[:, None]  # (out, 1) output pixels
    scale = size / out  # box pixels per output pixel
    if mode == "area":  # overlap of [i s, (i + 1) s) with box pixel [j, j + 1), over s
        j = torch.arange(size, device=device, dtype=f64)[None]  # (1, size)
        lo, hi = i * scale, (i + 1) * scale
        box_w = (torch.minimum(hi, j + 1) - torch.maximum(lo, j)).clamp_min(0.0) / scale
    else:  # bilinear at half-pixel centres, taps clamped to the box
        src = ((i[:, 0] + 0.5) * scale - 0.5).clamp(0.0, size - 1)
        j0 = src.floor()
        frac = src - j0
        j0 = j0.to(torch.int64)
        j1 = (j0 + 1).clamp_max(size - 1)
        box_w = torch.zeros(out, size, device=device, dtype=f64)
        box_w.scatter_add_(1, j0[:, None], (1.0 - frac)[:, None])
        box_w.scatter_add_(1, j1[:, None], frac[:, None])
    # Box pixel j is frame pixel first + m(j), m(j) = clamp(start + j) - first (non-decreasing):
    # fold the replicated border in. Frame pixel r takes the box pixels [lo_r, hi_r) of
    # m(j) == r, a difference of running sums (deterministic, unlike an atomic index_add).
    m = (torch.arange(size, device=device) + start).clamp(0, limit - 1) - first  # (size,)
    r = torch.arange(n, device=device)
    lo = torch.searchsorted(m, r, right=False)
    hi = torch.searchsorted(m, r, right=True)
    sums = F.pad(box_w.cumsum(1), (1, 0))  # (out, size + 1)
    weights = sums.index_select(1, hi) - sums.index_select(1, lo)  # (out, n)
    return weights.to(torch.float32), first, n


class _TensorMaskSmoother:
    """:class:`engine.perception.motion_stabilizer.MaskSmoother` on tensors (any device): the
    previous mask moved along the motion (``grid_sample`` bilinear with border padding, where
    OpenCV's ``warpAffine`` rounds positions to 1/32 px), the disagreement box-filtered with
    OpenCV's default reflected border, the same gate and blend. Not thread-safe: one per stream.
    """

    def __init__(self, weight: float) -> None:
        self.weight = weight
        self._mask: torch.Tensor | None = None

    def reset(self) -> None:
        self._mask = None

    def __call__(self, mask: torch.Tensor, motion: np.ndarray | None) -> torch.Tensor:
        new = mask.detach().to(torch.float32)
        prev = self._mask
        if prev is None or prev.shape != new.shape or prev.device != new.device:
            self._mask = new.clone()
            return new.clone()
        h, w = new.shape
        if motion is not None:
            prev = _warp(prev, motion)
        k = max(3, round(h * MASK_GATE_SIZE)) | 1
        apart = _box_blur((new - prev).abs(), k)  # (h, w) regional disagreement
        gate = ((apart - MASK_GATE_LOW) / MASK_GATE_SPAN).clamp(0.0, 1.0)
        weight = self.weight + (1.0 - self.weight) * gate
        self._mask = prev + weight * (new - prev)
        return self._mask.clone()


def _warp(image: torch.Tensor, motion: np.ndarray) -> torch.Tensor:
    """``(h, w)`` image moved by the (2, 3) pixel-index map ``motion`` (old -> new), as
    ``cv2.warpAffine(..., INTER_LINEAR, BORDER_REPLICATE)``; the sampling grid is built on the
    image's device from the inverse map's six numbers."""
    h, w = image.shape
    inv = _affine_inverse(np.asarray(motion, dtype=np.float64))  # new pixel -> old pixel
    if not np.isfinite(inv).all():  # a degenerate motion (OpenCV gives up on it too): stay put
        return image
    xs = torch.arange(w, device=image.device, dtype=torch.float32)[None, :]
    ys = torch.arange(h, device=image.device, dtype=torch.float32)[:, None]
    sx = inv[0, 0] * xs + inv[0, 1] * ys + inv[0, 2]  # (h, w) old pixel index x
    sy = inv[1, 0] * xs + inv[1, 1] * ys + inv[1, 2]
    grid = torch.stack([(2.0 * sx + 1.0) / w - 1.0, (2.0 * sy + 1.0) / h - 1.0], dim=-1)
    out = F.grid_sample(image[None, None], grid[None], mode="bilinear", padding_mode="border",
                        align_corners=False)  # fmt: skip
    return out[0, 0]


def _affine_inverse(m: np.ndarray) -> np.ndarray:
    """The inverse of a (2, 3) affine map, in closed form (no LAPACK call: see
    :meth:`PersonCrop._mask_motion`)."""
    (a, b, c), (d, e, f) = m
    det = a * e - b * d
    if det == 0:
        return np.full((2, 3), np.nan)
    return np.array([[e, -b, b * f - c * e], [-d, a, c * d - a * f]]) / det


def _box_blur(image: torch.Tensor, k: int) -> torch.Tensor:
    """``cv2.blur(image, (k, k))``: the k x k mean with OpenCV's default border (reflect-101)."""
    h, w = image.shape
    p = k // 2
    rows = _reflect101(h, p, image.device)
    cols = _reflect101(w, p, image.device)
    padded = image.index_select(0, rows).index_select(1, cols)  # (h + 2p, w + 2p)
    sums = F.pad(padded.cumsum(0), (0, 0, 1, 0))  # running sums: O(1) per pixel, as OpenCV
    sums = F.pad((sums[k:] - sums[:-k]).cumsum(1), (1, 0))  # (h, w + 2p + 1)
    return (sums[:, k:] - sums[:, :-k]) * (1.0 / (k * k))


def _reflect101(n: int, pad: int, device: torch.device) -> torch.Tensor:
    """Indices ``-pad .. n + pad - 1`` folded into ``0 .. n - 1`` by OpenCV's reflect-101."""
    i = torch.arange(-pad, n + pad, device=device)
    if n == 1:
        return torch.zeros_like(i)
    period = 2 * n - 2
    i = torch.remainder(i, period)
    return torch.where(i >= n, period - i, i)


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
