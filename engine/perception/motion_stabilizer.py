"""Image-based stabilization of the body keypoints and the person mask: follow the picture, not
the pose model's drift.

mediapipe's landmarks on a still person wander by a sizeable fraction of the shoulder width, from
frame to frame and slowly over seconds (a drift no causal low-pass filter removes), and every pixel
of that wander moves the garment warped onto them. The picture is far steadier: the person's clothes
move with the camera and the body. :class:`MotionStabilizer` moves each keypoint with the pixels
around it and lets the pose model overrule that only where the two disagree by more than the pose
model's noise; :class:`MaskSmoother` does the same for the person mask.

**Motion**, per frame, on the grey frame downscaled by the smallest integer factor that brings it
to at most ``track_max_height`` rows (the *tracking image*):

* *Corners*: the previous frame's corners, where Lucas-Kanade put them, are tracked on; those that
  left the *person region* (the box around the present keypoints widened by
  :data:`REGION_MARGIN` shoulder widths, intersected with the person mask when there is one) are
  dropped, and new ones (:func:`find_corners`, ``cv2.goodFeaturesToTrack``) top them up to
  ``max_points`` in the region and to :data:`LOCAL_POINTS` within :data:`LOCAL_RADIUS` shoulder
  widths of every head and limb keypoint, away from the corners already there.
* *Tracking* (:func:`track_corners`): pyramidal Lucas-Kanade (``cv2.calcOpticalFlowPyrLK``);
  a wrong track is an outlier for the RANSAC fit and the medians below.
* *Torso motion* ``A`` (:func:`fit_similarity`): the similarity (rotation, uniform scale, shift)
  fitted with RANSAC (``cv2.estimateAffinePartial2D``, :data:`RANSAC_PX`) to the tracked corners
  of the *torso region* (the box spanned by the shoulders and the hips, or the shoulders and 1.3
  shoulder widths below them when the hips are not seen; all corners when it has too few). None
  (taken as no motion) with fewer than :data:`MIN_INLIERS` inliers (or a quarter of the corners),
  a scale outside ``[0.8, 1.25]`` or a rotation beyond 20 degrees.
* *Local motion* ``d'`` per head and limb keypoint (a part moving against the torso: an arm being
  raised, the head turning): the median of what ``A`` leaves of the motion of the corners within
  :data:`LOCAL_RADIUS` shoulder widths of the keypoint (at least :data:`LOCAL_MIN_POINTS` of them),
  past a dead zone of :data:`LOCAL_DEADZONE_PX` tracking pixels (``d' = d * max(0, 1 - deadzone /
  |d|)``), so that a few corners' tracking noise does not add up to a drift on a still body. The
  neck, shoulders and hips move with ``A`` only (the corners around a shoulder include the arm's,
  which would drag it along).

**Keypoints.** Each present keypoint (confidence ``>= CONFIDENCE_MIN``) has a stabilized position
``s``, *predicted* every frame as ``p = A s + d'`` (it moves with its pixels) and compared with the
pose model's measurement ``m`` in units of the keypoint's *band* ``b = n * noise_scale * sw``
(``sw`` the shoulder width, ``n`` from :data:`NOISE` per keypoint group: torso, head, limbs):
``e = |m - p| / b``. Then, in this order:

* *new track* (the keypoint was not tracked): ``s = m``, held from there on;
* *moving* (``e > 1`` on this frame and the previous one, or already moving and
  ``e > MOVING_EXIT``: a movement the image did not show, too fast, blurred or untextured; one
  frame beyond the band is an outlier): ``s = m``, no lag;
* *settling* (the :data:`SETTLE_FRAMES` frames after a movement): ``s`` = the median, per
  coordinate, of the measurements since the movement ended, moved along with the keypoint;
* *steady*: ``s = p + K (m - p)`` with ``K = max(u / (u + R), g0)``: ``g0 = 1 - exp(-dt /
  drift_time_s)`` absorbs, over ``drift_time_s``, what the image and the pose model disagree on
  within the band (the drift of either), ``u`` (in ``b**2``) is the uncertainty the local motion
  added (``u += (LOCAL_TRUST |d'| / b)**2`` per frame, ``u = (1 - K) u`` after the update, 0 when
  the keypoint starts or settles) and ``R =`` :data:`MEASUREMENT_VAR`: where the prediction
  leaned on a part's own motion, the measurements pull it back within a few frames.

So on a still body (moved by the camera or not) a keypoint stays where the image says, and a real
movement is followed with the image (no lag where the image shows it, at most one frame where it
does not).

**Confidences** are smoothed along each track (first-order, :data:`CONFIDENCE_TIME_S`), so values
flickering around a consumer's threshold (a sleeve follows the elbow from confidence 0.5) switch
it far less often. A keypoint the pose model just lost is still reported, at its prediction, while
its smoothed confidence stays ``>= CONFIDENCE_MIN``, for at most :data:`HOLD_FRAMES` frames and
only when both the prediction and the measurement are inside the frame; otherwise a missing
keypoint is returned as measured (still missing).

**Resets.** Every track restarts on :meth:`MotionStabilizer.reset` (a new stream), on a frame
without a person, on a new frame size, on a timestamp going backwards, and when the measured
shoulder width differs from the predicted one by more than :data:`MAX_SIZE_RATIO` (another person,
or a cut); a keypoint missing for more than :data:`HOLD_FRAMES` frames restarts when it comes back.

**Without a measurement** (pose keyframes, :class:`engine.perception.person_detector.
PersonDetector`): :meth:`MotionStabilizer.track` measures a frame's motion first and returns
how sure it is (:class:`Tracking`: inliers, the keypoints' displacement, each part's corners,
local motion and their spread; :meth:`MotionStabilizer.unsure` says what rules a prediction out);
then either :meth:`~MotionStabilizer.update` with the pose model's keypoints (what ``__call__``
does) or :meth:`~MotionStabilizer.predict`: every tracked keypoint moves to ``p = A s + d'``, its
uncertainty ``u`` grows by the local motion's as above (so the next measurement pulls the harder
where the prediction leaned on it), its confidence, moving and settling states are kept, a held
keypoint counts the frame, and one predicted outside the frame is returned missing. The next
measurement's drift and confidence gains span the time since the last measurement.

**Mask** (:class:`MaskSmoother`, used at crop size by
:meth:`engine.inputs.person_crop.PersonCrop.crop_mask`): the previous smoothed mask moved by ``A``
and blended with the new one, weight :data:`MASK_WEIGHT` for the new mask where the two agree (the
segmenter's edge flicker), rising to 1 where they disagree over a region (a part that moved
against the torso).

Coordinates: frame pixels, origin at the top-left pixel's corner (as :mod:`engine.keypoints`).
What it costs per frame and what it does to the garment's stability: README (``python
bench/garment_stability.py``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from engine.errors import InputError
from engine.keypoints import CONFIDENCE_MIN, KEYPOINT_INDEX, NUM_KEYPOINTS

__all__ = [
    "CONFIDENCE_TIME_S",
    "check_mask",
    "check_motion",
    "compose_motions",
    "motion_scale",
    "DEFAULT_DRIFT_TIME_S",
    "DEFAULT_MAX_POINTS",
    "DEFAULT_TRACK_MAX_HEIGHT",
    "HOLD_FRAMES",
    "KEYPOINT_GROUPS",
    "LOCAL_DEADZONE_PX",
    "LOCAL_MIN_POINTS",
    "LOCAL_POINTS",
    "LOCAL_RADIUS",
    "LOCAL_TRUST",
    "MASK_GATE_LOW",
    "MASK_GATE_SIZE",
    "MASK_GATE_SPAN",
    "MASK_WEIGHT",
    "MAX_SIZE_RATIO",
    "MEASUREMENT_VAR",
    "MIN_INLIERS",
    "MOVING_EXIT",
    "MaskSmoother",
    "MotionStabilizer",
    "NOISE",
    "PREDICT_MAX_LOCAL",
    "PREDICT_MAX_SHIFT",
    "PREDICT_MAX_SPREAD",
    "PREDICT_MIN_INLIERS",
    "RANSAC_PX",
    "REGION_MARGIN",
    "SETTLE_FRAMES",
    "Tracking",
    "find_corners",
    "fit_similarity",
    "person_regions",
    "track_corners",
]

DEFAULT_TRACK_MAX_HEIGHT = 240
"""Frames taller than this are downscaled (integer factor) before the motion is tracked."""
DEFAULT_MAX_POINTS = 24
"""Corners tracked over the person region (plus LOCAL_POINTS around each keypoint)."""
DEFAULT_DRIFT_TIME_S = 10.0
"""Time constant over which a disagreement within the band is absorbed, seconds."""
RANSAC_PX = 1.0
"""RANSAC inlier threshold of the similarity fit, tracking pixels."""
MIN_INLIERS = 8
"""Fewer inliers than this: no motion for the frame."""
REGION_MARGIN = 0.25
"""The person region: the keypoints' box widened by this many shoulder widths on every side."""
LOCAL_RADIUS = 0.2
"""Corners within this many shoulder widths of a keypoint give its local motion."""
LOCAL_MIN_POINTS = 3
"""Fewer corners near a keypoint than this: it moves with the torso."""
LOCAL_POINTS = 4
"""Corners kept near every keypoint (topped up each frame)."""
LOCAL_DEADZONE_PX = 0.3
"""Local motion below this (tracking pixels per frame) is taken as tracking noise."""
LOCAL_TRUST = 0.5
"""The local motion is taken as accurate to this fraction of itself (its uncertainty)."""
MEASUREMENT_VAR = 1.0 / 16.0
"""The pose model's variance in band units (its standard deviation is a quarter band)."""
MOVING_EXIT = 0.15
"""A movement ends when the residual falls under this many bands."""
SETTLE_FRAMES = 3
"""Frames after a movement whose measurements' median gives the position."""
CONFIDENCE_TIME_S = 0.5
"""Time constant of the confidence smoothing, seconds."""
HOLD_FRAMES = 5
"""Frames a keypoint the pose model lost is still tracked."""
MAX_SIZE_RATIO = 1.5
"""A measured shoulder width this many times larger or smaller than predicted restarts all."""
MASK_WEIGHT = 0.25
"""The new mask's weight in :class:`MaskSmoother` where it agrees with the moved previous one."""
MASK_GATE_SIZE = 1.0 / 8.0
"""Side of the box filter of the regional mask disagreement, in mask heights."""
MASK_GATE_LOW = 0.25
"""Regional mask disagreement (mean ``|new - moved|``) below which the weight is MASK_WEIGHT."""
MASK_GATE_SPAN = 0.35
"""... and above ``MASK_GATE_LOW + MASK_GATE_SPAN`` of which it is 1 (the new mask)."""
PREDICT_MIN_INLIERS = 0.75
"""A torso motion fitting fewer than this fraction of its corners (RANSAC inliers) is unsure."""
PREDICT_MAX_SHIFT = 0.08
"""... as is one moving a keypoint by more than this many shoulder widths in a frame."""
PREDICT_MAX_LOCAL = 0.04
"""A head or limb keypoint moving against the torso by more than this many shoulder widths in a
frame (its local motion ``d'``) is unsure."""
PREDICT_MAX_SPREAD = 0.02
"""... as is one whose corners disagree on its local motion by more than this many shoulder
widths (their median distance from ``d'``)."""

KEYPOINT_GROUPS = {
    "torso": ("neck", "right_shoulder", "left_shoulder", "right_hip", "left_hip"),
    "head": ("nose", "right_eye", "left_eye", "right_ear", "left_ear"),
    "limbs": ("right_elbow", "right_wrist", "left_elbow", "left_wrist", "right_knee",
              "right_ankle", "left_knee", "left_ankle"),
}  # fmt: skip
"""The keypoint groups of :data:`NOISE` (and of the keyframes' quality figures)."""
NOISE = {"torso": 0.4, "head": 0.2, "limbs": 0.3}
"""Band ``n`` per keypoint group, in shoulder widths: about the largest wander of mediapipe's
keypoints on a still person (bundled clip), which must not count as a movement."""

_RS, _LS = KEYPOINT_INDEX["right_shoulder"], KEYPOINT_INDEX["left_shoulder"]
_TORSO = np.isin(np.arange(NUM_KEYPOINTS), [KEYPOINT_INDEX[n] for n in KEYPOINT_GROUPS["torso"]])
_RH, _LH = KEYPOINT_INDEX["right_hip"], KEYPOINT_INDEX["left_hip"]
_MIN_SCALE, _MAX_SCALE, _MAX_ROTATION_DEG = 0.8, 1.25, 20.0
_LK = dict(
    winSize=(11, 11),
    maxLevel=3,
    criteria=(cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 30, 0.01),
)
_NO_POINTS = np.zeros((0, 2), np.float32)


@dataclass(frozen=True)
class Tracking:
    """How well one frame's image motion was measured (:meth:`MotionStabilizer.track`): what a
    caller needs to decide whether the prediction alone may stand in for the pose model.

    Attributes:
        motion: ``(2, 3)`` float64 torso motion previous -> this frame, frame pixels, or
            ``None`` (no previous frame or track, no corners, or the fit was rejected: fewer
            than :data:`MIN_INLIERS` inliers, scale or rotation out of range).
        corners: corners Lucas-Kanade followed from the previous frame.
        fitted: the corners the accepted similarity was fitted to (the torso region's, or all
            of them when those gave none; 0 without one).
        inliers: its RANSAC inliers among them (0 without one).
        shift: the largest displacement of a tracked keypoint by ``motion``, in shoulder widths
            (0 without a motion, NaN without a shoulder width).
        local: ``(18, 2)`` float64 local motion ``d'`` per keypoint, frame pixels (0 where
            none was measured: torso keypoints, fewer than :data:`LOCAL_MIN_POINTS` corners).
        local_points: ``(18,)`` int, corners within :data:`LOCAL_RADIUS` shoulder widths of each
            tracked head and limb keypoint (0 for the torso's and untracked ones).
        local_spread: ``(18,)`` float64, the median distance of those corners' own residual
            motion from ``d'`` before its dead zone, frame pixels (0 where ``d'`` was not
            measured): how much they disagree.
        tracked: ``(18,)`` bool, the keypoints with a live track before this frame.
    """

    motion: np.ndarray | None
    corners: int
    fitted: int
    inliers: int
    shift: float
    local: np.ndarray
    local_points: np.ndarray
    local_spread: np.ndarray
    tracked: np.ndarray


def _band_per_keypoint() -> np.ndarray:
    out = np.zeros(NUM_KEYPOINTS)
    for group, names in KEYPOINT_GROUPS.items():
        for name in names:
            out[KEYPOINT_INDEX[name]] = NOISE[group]
    return out


def _check_grey(name: str, image: object, shape: tuple[int, ...] | None = None) -> np.ndarray:
    if (
        not isinstance(image, np.ndarray)
        or image.dtype != np.uint8
        or image.ndim != 2
        or min(image.shape) < 8
        or (shape is not None and image.shape != shape)
    ):
        size = "(H, W), H and W >= 8" if shape is None else str(shape)
        raise InputError(name, f"a uint8 grey numpy array of shape {size}", image)
    return image


def _check_points(name: str, points: object, n: int | None = None) -> np.ndarray:
    if (
        not isinstance(points, np.ndarray)
        or points.ndim != 2
        or points.shape[1] != 2
        or points.dtype.kind != "f"
        or (n is not None and points.shape[0] != n)
        or not np.isfinite(points).all()
    ):
        count = "N" if n is None else str(n)
        raise InputError(name, f"a finite float ({count}, 2) numpy array", points)
    return points


def _check_int(name: str, value: object, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise InputError(name, f"an int >= {low}", value)
    return int(value)


def _check_positive(name: str, value: object, high: float | None = None) -> float:
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    if ok:
        value = float(value)
        ok = math.isfinite(value) and value > 0 and (high is None or value <= high)
    if not ok:
        bound = "> 0" if high is None else f"in (0, {high}]"
        raise InputError(name, f"a finite number {bound}", value)
    return value


def find_corners(
    image: np.ndarray, region: np.ndarray | None = None, *, max_points: int = DEFAULT_MAX_POINTS
) -> np.ndarray:
    """Up to ``max_points`` corners of a grey image to track (``cv2.goodFeaturesToTrack`` on the
    region's bounding box: quality 0.01 of the best, 5 x 5 blocks, at least
    ``sqrt(area / max_points) / 2`` pixels apart).

    Args:
        image: ``(H, W)`` uint8 grey (H, W >= 8).
        region: ``(H, W)`` bool or uint8 (nonzero: corners may lie there), or ``None`` (anywhere).
        max_points: >= 1.

    Returns:
        ``(N, 2)`` float32 ``(x, y)`` pixel positions, ``N <= max_points`` (0 with a region of
        fewer than 64 pixels or no texture).

    Raises:
        InputError: a malformed image, region or ``max_points``.
    """
    image = _check_grey("image", image)
    if region is not None and (
        not isinstance(region, np.ndarray)
        or region.shape != image.shape
        or region.dtype not in (np.bool_, np.uint8)
    ):
        raise InputError("region", f"None or a bool/uint8 array of shape {image.shape}", region)
    max_points = _check_int("max_points", max_points, 1)
    if region is None:
        region = np.ones(image.shape, dtype=bool)
    return _find(image, region != 0, max_points, math.sqrt(max(int(region.sum()), 1) / max_points))


def _find(image: np.ndarray, region: np.ndarray, count: int, spacing: float) -> np.ndarray:
    """:func:`find_corners` with a bool region and the corner spacing given (pixels)."""
    if count < 1 or int(np.count_nonzero(region)) < 64:
        return _NO_POINTS.copy()
    rows, cols = np.nonzero(region.any(axis=1))[0], np.nonzero(region.any(axis=0))[0]
    r0, r1, c0, c1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    return _find_in(image, region[r0:r1, c0:c1], r0, c0, count, spacing)


def _find_in(image, mask, r0: int, c0: int, count: int, spacing: float) -> np.ndarray:
    """Corners of ``image[r0:, c0:]`` where the bool ``mask`` (its top-left part) is set."""
    h, w = mask.shape
    found = cv2.goodFeaturesToTrack(np.ascontiguousarray(image[r0 : r0 + h, c0 : c0 + w]), count,
                                    0.01, max(3.0, spacing / 2.0), mask=mask.astype(np.uint8),
                                    blockSize=5)  # fmt: skip
    if found is None:
        return _NO_POINTS.copy()
    return (found[:, 0] + (c0, r0)).astype(np.float32)


def _track(
    previous: np.ndarray, current: np.ndarray, points: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`track_corners` without the checks."""
    if len(points) == 0:
        return _NO_POINTS.copy(), _NO_POINTS.copy()
    p0 = points.astype(np.float32).reshape(-1, 1, 2)
    p1, found, _ = cv2.calcOpticalFlowPyrLK(previous, current, p0, None, **_LK)
    h, w = current.shape
    keep = (found[:, 0] == 1) & ((p1[:, 0] >= 0) & (p1[:, 0] < (w, h))).all(axis=1)
    return p0[keep, 0].copy(), p1[keep, 0].astype(np.float32)


def track_corners(
    previous: np.ndarray, current: np.ndarray, points: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Where ``points`` of ``previous`` are in ``current``: pyramidal Lucas-Kanade (11 x 11
    window, 4 levels); the points it loses or moves out of the image are left out (a wrong track
    that stays in is an outlier for :func:`fit_similarity`'s RANSAC and the local medians).

    Args:
        previous, current: ``(H, W)`` uint8 grey frames (H, W >= 8), the same size.
        points: ``(N, 2)`` float ``(x, y)`` pixel positions in ``previous``.

    Returns:
        ``(before, after)``: ``(M, 2)`` float32 positions in ``previous`` and ``current`` of
        the ``M <= N`` points kept.

    Raises:
        InputError: malformed images or points.
    """
    previous = _check_grey("previous", previous)
    current = _check_grey("current", current, previous.shape)
    points = _check_points("points", points)
    return _track(previous, current, points)


def fit_similarity(before: np.ndarray, after: np.ndarray) -> np.ndarray | None:
    """The similarity ``before -> after`` of matched points (RANSAC; the rejection rules of the
    module docstring).

    Args:
        before, after: ``(N, 2)`` float point positions, the same N.

    Returns:
        ``(2, 3)`` float64 ``A`` (a point ``q`` goes to ``A[:, :2] @ q + A[:, 2]``), or ``None``.

    Raises:
        InputError: malformed point arrays.
    """
    before = _check_points("before", before)
    after = _check_points("after", after, len(before))
    return _fit(before, after)[0]


def _fit(before: np.ndarray, after: np.ndarray) -> tuple[np.ndarray | None, int]:
    """:func:`fit_similarity` without the checks, and the RANSAC inliers of the accepted fit
    (0 when it is rejected)."""
    if len(before) < MIN_INLIERS:
        return None, 0
    a, inliers = cv2.estimateAffinePartial2D(
        before.astype(np.float32), after.astype(np.float32), method=cv2.RANSAC,
        ransacReprojThreshold=RANSAC_PX, maxIters=500, confidence=0.995, refineIters=10,
    )  # fmt: skip
    if a is None or inliers is None:
        return None, 0
    count = int(inliers.sum())
    if count < max(MIN_INLIERS, len(before) // 4):
        return None, 0
    scale = motion_scale(a)
    angle = math.degrees(math.atan2(float(a[1, 0]), float(a[0, 0])))
    if not (_MIN_SCALE <= scale <= _MAX_SCALE) or abs(angle) > _MAX_ROTATION_DEG:
        return None, 0
    return a.astype(np.float64), count


def person_regions(
    keypoints: np.ndarray, height: int, width: int, person_mask: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray] | None:
    """``(person, torso)``: ``(height, width)`` bool regions of the module docstring, in pixels of
    the keypoints' image (which may be a downscaled frame); ``None`` without both shoulders.
    ``person_mask`` (``(height, width)`` in [0, 1]) limits both to the person (> 0.5)."""
    present = keypoints[:, 2] >= CONFIDENCE_MIN
    if not (present[_RS] and present[_LS]):
        return None
    xy = keypoints[:, :2].astype(np.float64)
    sw = float(np.linalg.norm(xy[_LS] - xy[_RS]))
    if not math.isfinite(sw) or sw < 2.0:
        return None

    def box(x0: float, y0: float, x1: float, y1: float) -> np.ndarray:
        c0, c1 = (int(np.clip(v, 0, width)) for v in (math.floor(x0), math.ceil(x1)))
        r0, r1 = (int(np.clip(v, 0, height)) for v in (math.floor(y0), math.ceil(y1)))
        out = np.zeros((height, width), dtype=bool)
        out[r0:r1, c0:c1] = True
        return out

    ys = [xy[_RS, 1], xy[_LS, 1]]
    if present[_RH] and present[_LH]:
        ys += [xy[_RH, 1], xy[_LH, 1]]
    else:
        ys.append(max(ys) + 1.3 * sw)
    xs = [xy[_RS, 0], xy[_LS, 0]]
    torso = box(min(xs), min(ys) - 0.1 * sw, max(xs), max(ys))
    seen = xy[present]
    lo, hi = seen.min(axis=0) - REGION_MARGIN * sw, seen.max(axis=0) + REGION_MARGIN * sw
    person = box(lo[0], lo[1], hi[0], hi[1]) | torso
    if person_mask is not None:
        inside = person_mask > 0.5
        person &= inside
        torso &= inside
    return person, torso


def check_mask(mask: object, name: str, *, min_side: int, optional: bool = False) -> None:
    """InputError naming ``name`` unless ``mask`` is a real (float or unsigned) 2-d numpy array
    with both sides >= ``min_side`` (``optional``: the message says None is accepted too)."""
    if (
        not isinstance(mask, np.ndarray)
        or mask.ndim != 2
        or min(mask.shape) < min_side
        or mask.dtype.kind not in "fu"
    ):
        expected = f"a real (h, w) numpy array, h and w >= {min_side}"
        raise InputError(name, ("None or " if optional else "") + expected, mask)


def check_motion(motion: object) -> None:
    """Raise :class:`~engine.errors.InputError` naming ``motion`` unless it is ``None`` or a
    finite ``(2, 3)`` numpy array."""
    if motion is not None and (
        not isinstance(motion, np.ndarray)
        or motion.shape != (2, 3)
        or not np.isfinite(motion).all()
    ):
        raise InputError("motion", "None or a finite (2, 3) numpy array", motion)


def motion_scale(motion: np.ndarray) -> float:
    """The uniform scale of a ``(2, 3)`` similarity: ``sqrt(|det|)`` of its linear part."""
    return math.sqrt(abs(float(np.linalg.det(motion[:, :2]))))


def compose_motions(first: np.ndarray | None, then: np.ndarray | None) -> np.ndarray | None:
    """The ``(2, 3)`` motion of ``first`` followed by ``then`` (each ``(2, 3)``, frame pixels, a
    point ``q`` going to ``A[:, :2] @ q + A[:, 2]``); ``None`` when either is unknown."""
    if first is None or then is None:
        return None
    linear = np.einsum("ij,jk->ik", then[:, :2], first[:, :2])
    shift = np.einsum("ij,j->i", then[:, :2], first[:, 2]) + then[:, 2]
    return np.concatenate([linear, shift[:, None]], axis=1)


def _moved(points: np.ndarray, a: np.ndarray) -> np.ndarray:
    """``(N, 2)`` points through the ``(2, 3)`` affine ``a``, by einsum's own loops: a BLAS call
    on such tiny matrices can wake OpenBLAS's thread pool, whose spinning threads then take the
    cores from the other stages of a stream."""
    return np.einsum("nj,ij->ni", points, a[:, :2]) + a[:, 2]


def _masked_median(values: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Per point and coordinate, the median of ``values`` ``(K, N, 2)`` over the ``valid``
    ``(K, N)`` samples (mean of the middle two for an even count); undefined with none."""
    ordered = np.sort(np.where(valid[..., None], values, np.inf), axis=0)  # invalid ones last
    n = valid.sum(axis=0)  # (N,)
    shape = (1, *ordered.shape[1:])
    lo = np.broadcast_to(np.maximum((n - 1) // 2, 0)[None, :, None], shape)
    hi = np.broadcast_to(np.maximum(n // 2, 0)[None, :, None], shape)
    return 0.5 * (np.take_along_axis(ordered, lo, 0)[0] + np.take_along_axis(ordered, hi, 0)[0])


def _to_frame(a: np.ndarray, fx: float, fy: float) -> np.ndarray:
    """A motion in tracking pixels -> in frame pixels (``S A S^-1``, ``S = diag(fx, fy)``)."""
    out = a.copy()
    out[0, 1] *= fx / fy
    out[1, 0] *= fy / fx
    out[0, 2] *= fx
    out[1, 2] *= fy
    return out


class MotionStabilizer:
    """Keypoints that move with the person's pixels (every rule in the module docstring).

    Call it on every frame of a stream, in order, with the pose model's keypoints; it returns the
    stabilized keypoints. :meth:`reset` before an unrelated stream. Not thread-safe.

    Args:
        drift_time_s: time constant of the slowest correction, seconds (> 0).
        noise_scale: multiplies every group's band :data:`NOISE` (> 0; larger: steadier, but a
            movement the image does not show must be larger before it is followed).
        max_points: the most corners tracked per frame (>= 8).
        track_max_height: frames taller than this many pixels are tracked downscaled (>= 16).

    Attributes:
        motion: ``(2, 3)`` float64, the last frame's torso motion previous -> current frame, in
            frame pixels; ``None`` when none was found (or no person).

    Raises:
        InputError: an argument is invalid.
    """

    def __init__(
        self,
        *,
        drift_time_s: float = DEFAULT_DRIFT_TIME_S,
        noise_scale: float = 1.0,
        max_points: int = DEFAULT_MAX_POINTS,
        track_max_height: int = DEFAULT_TRACK_MAX_HEIGHT,
    ) -> None:
        self.drift_time_s = _check_positive("drift_time_s", drift_time_s)
        self.noise_scale = _check_positive("noise_scale", noise_scale)
        self.max_points = _check_int("max_points", max_points, MIN_INLIERS)
        self.track_max_height = _check_int("track_max_height", track_max_height, 16)
        self._band = _band_per_keypoint() * self.noise_scale  # (18,) shoulder widths
        self.reset()

    def reset(self) -> None:
        """Forget every track, the previous frame and the timestamps."""
        n = NUM_KEYPOINTS
        self._state = np.zeros((n, 2))  # stabilized positions, frame px
        self._age = np.full(n, -1)  # frames since last measured; -1: no track
        self._moving = np.zeros(n, dtype=bool)  # following a movement
        self._big = np.zeros(n, dtype=bool)  # the last residual was beyond the band
        self._settled = np.full(n, SETTLE_FRAMES)  # measurements since the last movement
        self._buf = np.zeros((SETTLE_FRAMES, n, 2))  # those measurements, moved along
        self._buf_ok = np.zeros((SETTLE_FRAMES, n), dtype=bool)
        self._unc = np.zeros(n)  # u of the module docstring, band^2
        self._conf = np.zeros(n)  # smoothed confidences
        self._grey: np.ndarray | None = None  # previous tracking image
        self._corners = _NO_POINTS.copy()  # corners in the previous tracking image
        self._regions: tuple[np.ndarray, np.ndarray] | None = None  # previous (person, torso)
        self._size: tuple[int, int] | None = None  # (H, W) of the frames
        self._t: float | None = None
        self._dt = 1.0 / 30.0
        self._sw: float | None = None
        self._since = 0.0  # seconds predicted since the last measurement, before this frame
        self._shown = np.zeros(n, dtype=bool)  # keypoints returned present last time
        self._out: np.ndarray | None = None  # the keypoints returned last time
        self._pending: tuple | None = None  # a tracked frame awaiting update() or predict()
        self.motion: np.ndarray | None = None

    def _restart(self) -> None:
        """Every track starts over (the previous tracking image is kept)."""
        self._age[:] = -1
        self._moving[:] = False
        self._big[:] = False
        self._buf_ok[:] = False
        self._sw = None
        self._since = 0.0
        self._shown[:] = False
        self._out = None
        self._regions = None
        self._corners = _NO_POINTS.copy()

    def _tracking_image(self, frame: np.ndarray) -> tuple[np.ndarray, float, float]:
        """The grey tracking image and its (x, y) scale factors, frame / tracking pixels."""
        height, width = frame.shape[:2]
        grey = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)  # (H, W) uint8
        if height <= self.track_max_height:
            return grey, 1.0, 1.0
        k = -(-height // self.track_max_height)
        size = (max(1, round(width / k)), max(1, round(height / k)))  # (w, h)
        exact = height % k == 0 and width % k == 0
        grey = cv2.resize(grey, size, interpolation=cv2.INTER_AREA if exact else cv2.INTER_LINEAR)
        return grey, width / size[0], height / size[1]

    def _check(self, frame, keypoints, timestamp_s, person_mask) -> None:
        if (
            not isinstance(frame, np.ndarray)
            or frame.dtype != np.uint8
            or frame.ndim != 3
            or frame.shape[2] != 3
            or min(frame.shape[:2]) < 1
        ):
            raise InputError("frame", "a non-empty (H, W, 3) uint8 RGB numpy array", frame)
        self._check_measurement(keypoints, None)
        ok = isinstance(timestamp_s, (int, float, np.integer, np.floating))
        if not ok or isinstance(timestamp_s, bool) or not math.isfinite(float(timestamp_s)):
            raise InputError("timestamp_s", "a finite number of seconds", timestamp_s)
        self._check_measurement(None, person_mask)

    @staticmethod
    def _check_measurement(keypoints, person_mask) -> None:
        if keypoints is not None:
            if (
                not isinstance(keypoints, np.ndarray)
                or keypoints.shape != (NUM_KEYPOINTS, 3)
                or keypoints.dtype.kind != "f"
            ):
                raise InputError("keypoints", "None or a float (18, 3) numpy array", keypoints)
            present = keypoints[:, 2] >= CONFIDENCE_MIN
            if not np.isfinite(keypoints[present, :2]).all():
                raise InputError("keypoints", "finite coordinates for present keypoints",
                                 keypoints)  # fmt: skip
        if person_mask is not None:
            check_mask(person_mask, "person_mask", min_side=2, optional=True)

    def _motion(self, grey: np.ndarray, fx: float, fy: float) -> tuple:
        """``(A, d', after, tracking)``: torso motion (frame pixels, or None), per-keypoint local
        shifts (18, 2) frame pixels, the tracked corners in ``grey``, and the
        :class:`Tracking` record of how well they were measured."""
        n = NUM_KEYPOINTS
        local, points, spread = np.zeros((n, 2)), np.zeros(n, dtype=int), np.zeros(n)
        live = self._age >= 0

        def record(a, corners: int, fitted: int, inliers: int) -> Tracking:
            shift = 0.0
            if a is not None and live.any():
                shift = float(np.linalg.norm(_moved(self._state[live], a) - self._state[live],
                                             axis=1).max())  # fmt: skip
                shift = shift / self._sw if self._sw else math.nan
            return Tracking(a, corners, fitted, inliers, shift, local, points, spread,
                            live.copy())  # fmt: skip

        if (
            self._grey is None
            or self._regions is None
            or len(self._corners) == 0
            or min(grey.shape) < 8
        ):
            return None, local, _NO_POINTS.copy(), record(None, 0, 0, 0)
        before, after = _track(self._grey, grey, self._corners)
        person, torso = self._regions
        h, w = grey.shape
        ix = np.clip(before[:, 0].astype(int), 0, w - 1)
        iy = np.clip(before[:, 1].astype(int), 0, h - 1)
        on_torso = torso[iy, ix]
        fitted = int(on_torso.sum())
        a, inliers = _fit(before[on_torso], after[on_torso])
        if a is None:
            fitted = len(before)
            a, inliers = _fit(before, after)
        if a is None:
            return None, local, after, record(None, len(before), 0, 0)
        left = after - _moved(before, a)  # (n, 2): what A does not explain
        if self._sw is not None:
            prev = self._state / (fx, fy)  # (18, 2) tracking px
            near = np.hypot(prev[:, None, 0] - before[None, :, 0],
                            prev[:, None, 1] - before[None, :, 1]) < (
                LOCAL_RADIUS * self._sw / fx
            )  # (18, n)  # fmt: skip
            count = near.sum(axis=1)  # (18,)
            points = np.where(live & ~_TORSO, count, 0)
            use = (count >= LOCAL_MIN_POINTS) & live & ~_TORSO  # (18,)
            if use.any():
                d = _masked_median(np.broadcast_to(left[:, None], (len(left), *prev.shape)),
                                   near.T)  # (18, 2)  # fmt: skip
                apart = np.linalg.norm(left[:, None] - d[None], axis=-1)  # (n, 18) tracking px
                spread_t = _masked_median(np.repeat(apart[..., None], 2, axis=-1), near.T)[:, 0]
                spread = np.where(use, spread_t * math.sqrt(fx * fy), 0.0)
                size = np.linalg.norm(d, axis=1)
                shrink = np.clip(1.0 - LOCAL_DEADZONE_PX / np.maximum(size, 1e-9), 0.0, None)
                local = np.where(use[:, None], d * shrink[:, None] * (fx, fy), 0.0)
        a = _to_frame(a, fx, fy)
        return a, local, after, record(a, len(before), fitted, inliers)

    @property
    def shown(self) -> np.ndarray:
        """``(18,)`` bool: the keypoints the last frame returned present (measured or held)."""
        return self._shown.copy()

    @property
    def shoulder_width(self) -> float | None:
        """The tracked shoulder width, frame pixels (``None`` without both shoulders)."""
        return self._sw

    @property
    def tracked(self) -> np.ndarray:
        """``(18,)`` bool: the keypoints with a live track (a prediction can move them)."""
        return self._age >= 0

    @property
    def steady(self) -> bool:
        """Whether some keypoint is tracked and every tracked one is *steady* (module
        docstring) or held: within its band at the last measurement, neither moving nor
        settling. What a caller needs before it lets a prediction stand in for a measurement
        (:meth:`predict`)."""
        live = self._age >= 0
        return bool(
            live.any()
            and not (self._moving | self._big)[live].any()
            and (self._settled[live] >= SETTLE_FRAMES).all()
        )

    def unsure(self, tracking: Tracking) -> str | None:
        """Why :meth:`predict` could not stand in for a measurement on the frame ``tracking``
        describes (the one last given to :meth:`track`); ``None`` when it can. In this order:
        ``"no track"`` (nothing tracked), ``"unsteady keypoint"`` (not :attr:`steady`: the pose
        model saw a movement the image did not show, or one is settling), ``"few inliers"`` (no
        torso motion, or RANSAC inliers under :data:`PREDICT_MIN_INLIERS` of the corners it was
        fitted to), ``"large motion"`` (a keypoint moved by more than :data:`PREDICT_MAX_SHIFT`
        shoulder widths, or no shoulder width), and for every head and limb keypoint shown and
        tracked: ``"part untracked"`` (fewer than :data:`LOCAL_MIN_POINTS` corners near it: it
        could only move with the torso), ``"part moving"`` (local motion beyond
        :data:`PREDICT_MAX_LOCAL` shoulder widths) and ``"part unsure"`` (its corners disagree
        by more than :data:`PREDICT_MAX_SPREAD` shoulder widths)."""
        if not self.tracked.any() or self._out is None:
            return "no track"
        if not self.steady:
            return "unsteady keypoint"
        if tracking.motion is None or tracking.inliers < PREDICT_MIN_INLIERS * tracking.fitted:
            return "few inliers"
        sw = self._sw
        if sw is None or not tracking.shift <= PREDICT_MAX_SHIFT:  # NaN: no shoulder width
            return "large motion"
        parts = self._shown & tracking.tracked & ~_TORSO  # head and limbs
        if (tracking.local_points[parts] < LOCAL_MIN_POINTS).any():
            return "part untracked"
        if (np.linalg.norm(tracking.local[parts], axis=1) > PREDICT_MAX_LOCAL * sw).any():
            return "part moving"
        if (tracking.local_spread[parts] > PREDICT_MAX_SPREAD * sw).any():
            return "part unsure"
        return None

    def track(self, frame: np.ndarray, timestamp_s: float) -> Tracking:
        """Measure the image motion previous -> this frame, before the pose model is asked.

        The first half of :meth:`__call__`; follow it with :meth:`update` (a measurement) or
        :meth:`predict` (none) for the same frame. The timestamp and frame-size rules of the
        module docstring (resets) apply here.

        Args:
            frame: ``(H, W, 3)`` uint8 RGB.
            timestamp_s: the frame's time in seconds.

        Returns:
            The frame's :class:`Tracking`.

        Raises:
            InputError: a malformed argument (checked before any state changes).
        """
        self._check(frame, None, timestamp_s, None)
        return self._track_frame(frame, float(timestamp_s))

    def _track_frame(self, frame: np.ndarray, t: float) -> Tracking:
        height, width = frame.shape[:2]
        if self._size != (height, width):
            self.reset()
            self._size = (height, width)
        if self._t is not None and t < self._t:
            self._restart()
        elif self._t is not None and t > self._t:
            self._dt = t - self._t
        self._t = t
        grey, fx, fy = self._tracking_image(frame)
        motion, local, corners, tracking = self._motion(grey, fx, fy)
        self._pending = (grey, fx, fy, motion, local, corners)
        return tracking

    def _take_pending(self) -> tuple:
        if self._pending is None:
            raise InputError("frame", "given to track() before each update() or predict()",
                             None)  # fmt: skip
        pending, self._pending = self._pending, None
        return pending

    def update(
        self, keypoints: np.ndarray | None, person_mask: np.ndarray | None = None
    ) -> np.ndarray | None:
        """Stabilize the pose model's keypoints of the frame last given to :meth:`track` (the
        second half of :meth:`__call__`; arguments and result as there).

        Raises:
            InputError: a malformed argument, or no frame tracked since the last update
                (checked before any state changes).
        """
        self._check_measurement(keypoints, person_mask)
        return self._update(self._take_pending(), keypoints, person_mask)

    def predict(self, person_mask: np.ndarray | None = None) -> np.ndarray | None:
        """The keypoints of the frame last given to :meth:`track` without a measurement: every
        tracked keypoint moved by its prediction ``p = A s + d'`` (module docstring), with the
        uncertainty ``u`` that the local motion adds, so the next measurement weighs in
        accordingly; confidences, the moving and settling states and the lost-keypoint count of
        a keypoint measured last time are kept (a held one counts the frame); a prediction
        outside the frame is returned missing (confidence 0), as a measurement there would be.
        The next measurement's drift and confidence gains span the time since the last one.

        Args:
            person_mask: as in :meth:`__call__` (where the next frame's corners may lie), e.g.
                the last measured mask moved by :attr:`motion`.

        Returns:
            ``(18, 3)`` float32 keypoints: the last ones returned, moved (a keypoint without a
            track by the torso motion only, its confidence kept); ``None`` when nothing is
            tracked (no person, or a restart).

        Raises:
            InputError: a malformed mask, or no frame tracked since the last update.
        """
        self._check_measurement(None, person_mask)
        grey, fx, fy, motion, local, corners = self._take_pending()
        self.motion, self._grey = motion, grey
        live = self._age >= 0
        if not live.any() or self._out is None:
            self._restart()
            self.motion = None
            return None
        height, width = self._size
        a = np.eye(2, 3) if motion is None else motion
        pred = _moved(self._state, a) + local  # (18, 2)
        band = self._band * (self._sw * motion_scale(a) if self._sw else 0.25 * min(self._size))
        self._unc = np.where(live, self._unc + (LOCAL_TRUST * np.linalg.norm(local, axis=1)
                                                / band) ** 2, self._unc)  # fmt: skip
        self._buf = self._buf + np.where(live[:, None], pred - self._state, 0.0)[None]
        self._state = np.where(live[:, None], pred, self._state)
        self._since += self._dt
        held = live & (self._age > 0)
        self._age = np.where(held, self._age + 1, self._age)
        self._age[self._age > HOLD_FRAMES] = -1
        out = self._out.copy()
        out[:, :2] = _moved(out[:, :2].astype(np.float64), a)
        tracked = self._shown & (self._age >= 0)
        out[tracked, :2] = self._state[tracked]
        with np.errstate(invalid="ignore"):
            inside = ((out[:, :2] >= 0) & (out[:, :2] < (width, height))).all(axis=1)
        out[~inside, 2] = 0.0  # outside the frame: missing, as a measurement there would be
        shown = tracked & inside
        out[self._shown & ~shown, 2] = 0.0
        both = self._age[_RS] >= 0 and self._age[_LS] >= 0
        scaled = self._sw * motion_scale(a) if self._sw else None
        self._sw = float(np.linalg.norm(self._state[_LS] - self._state[_RS])) if both else scaled
        self._shown, self._out = shown, out.copy()
        self._next_corners(out, shown, grey, fx, fy, person_mask, corners)
        return out

    def __call__(
        self,
        frame: np.ndarray,
        keypoints: np.ndarray | None,
        timestamp_s: float,
        person_mask: np.ndarray | None = None,
    ) -> np.ndarray | None:
        """Stabilize one frame's keypoints (:meth:`track`, then :meth:`update`).

        Args:
            frame: ``(H, W, 3)`` uint8 RGB, the frame the keypoints were found on (no motion is
                tracked on a tracking image under 8 pixels).
            keypoints: ``(18, 3)`` float ``(x px, y px, confidence)``, or ``None`` (no person:
                every track restarts).
            timestamp_s: the frame's time in seconds (a step back restarts every track).
            person_mask: ``(h, w)`` real array in [0, 1] (1 = person) at the frame's size or any
                other (it is resized to the tracking image), or ``None``: where corners may lie.

        Returns:
            ``(18, 3)`` float32 stabilized keypoints, or ``None`` when ``keypoints`` is ``None``.

        Raises:
            InputError: a malformed argument (checked before any state changes).
        """
        self._check(frame, keypoints, timestamp_s, person_mask)
        self._track_frame(frame, float(timestamp_s))
        return self._update(self._take_pending(), keypoints, person_mask)

    def _update(self, pending: tuple, keypoints, person_mask) -> np.ndarray | None:
        grey, fx, fy, motion, local, corners = pending
        height, width = self._size
        if keypoints is None:
            self._restart()
            self._grey, self.motion = grey, None
            return None
        self.motion = motion
        self._grey = grey
        dt = self._dt + self._since  # since the last measurement
        self._since = 0.0

        meas = keypoints[:, :2].astype(np.float64)  # (18, 2)
        present = keypoints[:, 2] >= CONFIDENCE_MIN  # (18,)
        a = np.eye(2, 3) if motion is None else motion
        pred = _moved(self._state, a) + local  # (18, 2)
        scale = motion_scale(a)
        sw_pred = None if self._sw is None else self._sw * scale
        sw_meas = None
        if present[_RS] and present[_LS]:
            sw_meas = float(np.linalg.norm(meas[_LS] - meas[_RS]))
        ratio = None if sw_pred is None or sw_meas is None else sw_meas / max(sw_pred, 1e-6)
        if ratio is not None and not (1.0 / MAX_SIZE_RATIO <= ratio <= MAX_SIZE_RATIO):
            self._restart()  # another person, or a cut
            sw_pred = None
        sw = sw_pred if sw_pred is not None else sw_meas
        if sw is None or sw < 1.0:
            sw = 0.25 * min(height, width)
        live = self._age >= 0

        # Gate: the residual in bands; beyond the band two frames in a row is a movement.
        band = self._band * sw  # (18,) px
        e = np.linalg.norm(meas - pred, axis=1) / band  # (18,)
        cont, start = present & live, present & ~live
        big = e > 1.0
        moving = cont & ((big & (self._big | self._moving)) | (self._moving & (e > MOVING_EXIT)))
        # The measurements since the last movement, moved along (newest first).
        buf = np.concatenate([meas[None], self._buf[:-1] + (pred - self._state)[None]])
        ok = np.concatenate([present[None], self._buf_ok[:-1] & live[None]])  # (SETTLE, 18)
        ok[1:, start | moving] = False
        settled = np.where(moving, 0, np.minimum(self._settled + cont, SETTLE_FRAMES))
        settled[start] = SETTLE_FRAMES  # a new track holds its first measurement
        settling = cont & ~moving & (settled < SETTLE_FRAMES)
        steady = cont & ~moving & ~settling
        # Steady: the drift gain, or more where the prediction leaned on a part's own motion.
        g0 = 1.0 - math.exp(-dt / self.drift_time_s)
        unc = self._unc + (LOCAL_TRUST * np.linalg.norm(local, axis=1) / band) ** 2
        gain = np.maximum(unc / (unc + MEASUREMENT_VAR), g0)  # (18,)
        state = pred.copy()
        state[start | moving] = meas[start | moving]
        state[settling] = _masked_median(buf, ok)[settling]
        state[steady] += gain[steady, None] * (meas[steady] - pred[steady])
        self._unc = np.where(steady, (1.0 - gain) * unc, np.where(present, 0.0, unc))

        # Confidences, smoothed along the track; a lost keypoint held for a few frames.
        c = keypoints[:, 2].astype(np.float64)
        keep = 1.0 - math.exp(-dt / CONFIDENCE_TIME_S)
        conf = np.where(live, self._conf + keep * (c - self._conf), c)  # (18,)
        with np.errstate(invalid="ignore"):
            inside = ((pred >= 0) & (pred < (width, height))).all(axis=1)
            inside &= ((meas >= 0) & (meas < (width, height))).all(axis=1)
        held = live & ~present & (self._age < HOLD_FRAMES) & (conf >= CONFIDENCE_MIN) & inside
        shown = present | held
        out = keypoints.astype(np.float32, copy=True)
        out[shown, :2] = state[shown]
        out[shown, 2] = np.maximum(conf[shown], CONFIDENCE_MIN)

        self._state, self._conf = state, conf
        self._buf, self._buf_ok, self._settled = buf, ok, settled
        self._moving, self._big = moving, big & cont
        self._age = np.where(present, 0, np.where(live, self._age + 1, -1))
        self._age[self._age > HOLD_FRAMES] = -1
        both = self._age[_RS] >= 0 and self._age[_LS] >= 0
        self._sw = float(np.linalg.norm(state[_LS] - state[_RS])) if both else sw_pred
        self._shown, self._out = shown, out.copy()
        self._next_corners(out, shown, grey, fx, fy, person_mask, corners)
        return out

    def _next_corners(self, out, shown, grey, fx, fy, person_mask, corners) -> None:
        """The regions and corners the next frame tracks from (``out``: this frame's keypoints,
        frame px; ``corners``: where this frame's tracking put the previous ones)."""
        small = out.copy()
        small[:, :2] /= (fx, fy)
        mask = None
        if person_mask is not None:
            mask = np.asarray(person_mask, dtype=np.float32)
            if mask.shape != grey.shape:
                mask = cv2.resize(mask, grey.shape[::-1], interpolation=cv2.INTER_LINEAR)
        self._regions = person_regions(small, grey.shape[0], grey.shape[1], mask)
        if self._regions is None:
            self._corners = _NO_POINTS.copy()
            return
        person = self._regions[0]
        ix = np.clip(corners[:, 0].astype(int), 0, grey.shape[1] - 1)
        iy = np.clip(corners[:, 1].astype(int), 0, grey.shape[0] - 1)
        corners = corners[person[iy, ix]]
        taken = np.zeros(grey.shape, np.uint8)  # 1 near a corner already: no new one there
        for x, y in corners.astype(int):
            cv2.circle(taken, (int(x), int(y)), 2, 1, -1)
        missing = self.max_points - len(corners)
        if missing > 0:  # top up the whole region
            spacing = math.sqrt(max(int(np.count_nonzero(person)), 1) / self.max_points)
            found = _find(grey, person & (taken == 0), missing, spacing)
            corners = np.concatenate([corners, found])
            for x, y in found.astype(int):
                cv2.circle(taken, (int(x), int(y)), 2, 1, -1)
        # ... and around every keypoint, for its local motion.
        radius = LOCAL_RADIUS * self._sw / fx if self._sw else 0.0
        h, w = grey.shape
        for k in np.nonzero(shown & ~_TORSO)[0] if radius >= 2.0 else ():
            cx, cy = small[k, :2]
            need = LOCAL_POINTS - int((np.hypot(*(corners - (cx, cy)).T) < radius).sum())
            c0, r0 = max(int(cx - radius), 0), max(int(cy - radius), 0)
            c1, r1 = min(int(cx + radius) + 1, w), min(int(cy + radius) + 1, h)
            if need <= 0 or c1 - c0 < 4 or r1 - r0 < 4:
                continue
            ys, xs = np.ogrid[r0:r1, c0:c1]
            disc = (xs - cx) ** 2 + (ys - cy) ** 2 < radius * radius
            free = disc & person[r0:r1, c0:c1] & (taken[r0:r1, c0:c1] == 0)
            if int(np.count_nonzero(free)) < 16:
                continue
            found = _find_in(grey, free, r0, c0, need, radius)
            corners = np.concatenate([corners, found])
            for x, y in found.astype(int):
                cv2.circle(taken, (int(x), int(y)), 2, 1, -1)
        self._corners = corners


class MaskSmoother:
    """Temporal smoothing of the person mask along the image motion (module docstring).

    Per frame, the previous smoothed mask is moved by the torso motion (``cv2.warpAffine``,
    bilinear, border replicated) and blended with the new mask with a per-pixel weight for the new
    one: ``weight`` where the two agree (the segmenter's edge flicker), rising linearly to 1 where
    they disagree over a region: ``|new - moved|`` box-filtered over :data:`MASK_GATE_SIZE` of
    the mask height, from :data:`MASK_GATE_LOW` to ``MASK_GATE_LOW + MASK_GATE_SPAN`` (an edge
    flickering by a pixel or two stays under it; a part that moved against the torso is not
    smeared). Not thread-safe: one per stream.

    Args:
        weight: the new mask's weight where the two agree, in (0, 1] (1: no smoothing).

    Raises:
        InputError: ``weight`` out of range.
    """

    def __init__(self, weight: float = MASK_WEIGHT) -> None:
        self.weight = _check_positive("weight", weight, 1.0)
        self._mask: np.ndarray | None = None

    def reset(self) -> None:
        """Forget the previous mask (a new stream, or no person)."""
        self._mask = None

    def __call__(self, mask: np.ndarray, motion: np.ndarray | None) -> np.ndarray:
        """Smooth one frame's mask.

        Args:
            mask: ``(h, w)`` real array in [0, 1] (h, w >= 2); a new size starts over.
            motion: ``(2, 3)`` previous -> this frame in the mask's pixels, or ``None`` (taken as
                no motion).

        Returns:
            ``(h, w)`` float32, a new array.

        Raises:
            InputError: a malformed mask or motion.
        """
        check_mask(mask, "mask", min_side=2)
        check_motion(motion)
        new = np.asarray(mask, dtype=np.float32)
        prev = self._mask
        if prev is None or prev.shape != new.shape:
            self._mask = new.copy()
            return new.copy()
        h, w = new.shape
        if motion is not None:
            prev = cv2.warpAffine(prev, motion.astype(np.float64), (w, h), flags=cv2.INTER_LINEAR,
                                  borderMode=cv2.BORDER_REPLICATE)  # fmt: skip
        k = max(3, round(h * MASK_GATE_SIZE)) | 1
        apart = cv2.blur(np.abs(new - prev), (k, k))  # (h, w) regional disagreement
        gate = np.clip((apart - MASK_GATE_LOW) / MASK_GATE_SPAN, 0.0, 1.0)
        weight = self.weight + (1.0 - self.weight) * gate
        self._mask = (prev + weight * (new - prev)).astype(np.float32)
        return self._mask.copy()
