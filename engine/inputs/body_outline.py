"""The body's outline from the person mask: torso edges on four lines and the upper arms' widths.

The garment fit (:func:`engine.inputs.garment.fit_points`) puts the garment's seams on the body's
silhouette instead of on the skeleton joints (which lie inside the body). Everything is measured
in the body frame of :func:`engine.inputs.tryon_region.body_frame`: origin at the shoulder joints'
midpoint ``m``, ``x`` along ``across`` (right shoulder -> left shoulder), ``t`` along the body
axis ``down``; lengths are relative to the shoulder width ``sw``.

**Lines.** The mask is sampled (bilinear, every half pixel) along lines *perpendicular to the body
axis* (parallel to the shoulder line), so a tilted or leaning body is measured across its own
torso, not along image rows (for an upright person the two are the same):

* ``shoulder``: ``t = 0``, through the shoulder joints (the silhouette there includes the top of
  the upper arms: its edges are the outer shoulder edges);
* ``chest``: ``t = CHEST_RATIO * sw`` (just below the armpits);
* ``hem``: the hips' line (their midpoint's ``t``), or 1.5 px above the frame bottom when the
  hips are out of frame (their extrapolation in ``body_frame`` reaches further);
* ``waist``: halfway between chest and hem.

**Edges.** On each line, the run of mask pixels (> 0.5) containing the body axis (or the nearest
mask sample within 0.15 sw of it) is followed outwards on each side until the mask ends. Arms
hanging against the torso would extend the run: each side's run is also cut at the arm's inner
edge, ``arm centre line - arm half width``, where the keypoint segments shoulder -> elbow and
elbow -> wrist of that side cross the line *outside* the torso core (``|x| > 0.3 sw``; a forearm
crossing the belly in front is part of the torso run and is not a cut). A side is *implausible*
(and replaced by the keypoint estimate) when its half width ``|x|`` leaves
:data:`HALF_WIDTH_RANGE` of its line, when the run reaches the sampling bound (an arm held out
sideways, or a side view) or the frame border (the body continues outside the picture).

**Keypoint estimates** (the rules of :func:`engine.inputs.garment.body_anchor_points`): shoulder
edge = joint pushed out by 0.05 sw; chest edge at ``|x| = 0.42 sw``; hem edge = hip pushed out by
0.12 sw; waist = mean of chest and hem.

**Shoulder tops** (where a garment's shoulder seam sits): from the shoulder edge moved inwards by
a quarter of the arm width, go up (``-down``) until the mask ends, at most 0.35 sw; keypoint
estimate ``0.06 sw`` above the shoulder line.

**Upper arms**: the run across the arm (perpendicular to shoulder -> elbow) through the segment's
points at 35, 50 and 65 % of its length, each side bounded by 0.3 sw; a side that hits the bound
(the arm lies against the torso) or the frame is replaced by the other side's half width; the
median of the three, plausible in ``[0.08, 0.45] sw``; estimate ``2 * ARM_RADIUS_RATIO * sw``.

**Confidence** per measurement: 1.0 measured edge, 0.75 edge cut at the arm line, 0.5 keypoint
estimate, 0 no person (or no elbow, for the arms). ``status`` sums it up: ``"measured"`` (every
torso edge from the mask), ``"partial"``, ``"keypoints"`` (no mask: all estimates),
``"side_view"`` (shoulders too close together for the body's size: all estimates) or ``"none"``
(no person).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from engine.errors import InputError
from engine.inputs.keypoint_mirror import host_keypoints, to_device
from engine.inputs.tryon_region import ARM_RADIUS_RATIO, host_body_frame
from engine.keypoints import KEYPOINT_INDEX, check_keypoints, check_size, present_keypoints

__all__ = [
    "CHEST_RATIO",
    "HALF_WIDTH_RANGE",
    "LINES",
    "BodyOutline",
    "body_outline",
    "sample_mask",
]

LINES = ("shoulder", "chest", "waist", "hem")
CHEST_RATIO = 0.5
HALF_WIDTH_RANGE = {
    "shoulder": (0.45, 0.85),
    "chest": (0.25, 0.8),
    "waist": (0.2, 0.8),
    "hem": (0.2, 0.9),
}
"""Plausible half widths ``|x| / sw`` of a measured edge, per line."""

SIDE_VIEW_TORSO_RATIO = 2.6
"""Shoulders-to-hips length over shoulder width above which the person is seen from the side."""

MEASURED, ARM_CUT, ESTIMATE = 1.0, 0.75, 0.5
_STEP = 0.5  # sampling step in pixels
_RW, _LW = KEYPOINT_INDEX["right_wrist"], KEYPOINT_INDEX["left_wrist"]


@dataclass(frozen=True)
class BodyOutline:
    """The outline of one person (see the module docstring); CPU float32 tensors, pixels.

    Attributes:
        edges: ``(4, 2, 2)``: per line of :data:`LINES`, the (right, left) edge points ``(x, y)``.
        confidence: ``(4, 2)``: per edge, 1.0 measured, 0.75 cut at the arm, 0.5 estimate, 0 none.
        shoulder_tops: ``(2, 2)``: (right, left) top of the shoulder outline (the seam points).
        shoulder_top_confidence: ``(2,)``.
        arm_width: ``(2,)`` (right, left) upper arm widths in pixels (estimate when unmeasured).
        arm_confidence: ``(2,)``: 1.0 measured, 0.5 estimate, 0 no elbow.
        line_t: ``(4,)`` each line's position along the body axis from the shoulder midpoint.
        status: ``"measured"``, ``"partial"``, ``"keypoints"``, ``"side_view"`` or ``"none"``.
    """

    edges: torch.Tensor
    confidence: torch.Tensor
    shoulder_tops: torch.Tensor
    shoulder_top_confidence: torch.Tensor
    arm_width: torch.Tensor
    arm_confidence: torch.Tensor
    line_t: torch.Tensor
    status: str

    @property
    def valid(self) -> bool:
        return self.status != "none"


_SUBPIXEL = 32
"""Sample positions are rounded to 1/32 pixel (OpenCV ``remap``'s fixed-point grid, which this
sampling replaced: the outline stays what it was on the CPU)."""


def sample_mask(mask: torch.Tensor, points: np.ndarray) -> torch.Tensor:
    """Bilinear values of ``mask`` at pixel coordinates, on the mask's device; -1 outside.

    Pixel coordinates have their origin at the top-left pixel's corner (pixel centres at
    ``+0.5``); positions are rounded to :data:`_SUBPIXEL` steps and the border is replicated
    (OpenCV ``remap(INTER_LINEAR, BORDER_REPLICATE)`` to float precision); a point outside the
    image (``x < 0``, ``x > W``, ``y < 0`` or ``y > H``) gives -1.

    Args:
        mask: ``(H, W)`` float32 tensor, any device.
        points: ``(N, 2)`` float ``(x, y)`` host array.

    Returns:
        ``(N,)`` float32 on ``mask.device`` (the points go there as one small copy).
    """
    h, w = mask.shape
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    outside = (pts[:, 0] < 0) | (pts[:, 0] > w) | (pts[:, 1] < 0) | (pts[:, 1] > h)
    src = (pts - 0.5).astype(np.float32)  # pixel-centre origin
    src[outside] = 0.0  # any position: the value is replaced by -1
    if mask.device.type == "cpu" and not mask.requires_grad:
        return torch.from_numpy(_sample_host(mask.contiguous().numpy(), src, outside))
    packed = torch.from_numpy(np.concatenate([src, outside[:, None].astype(np.float32)], 1))
    packed = to_device(packed, mask.device)  # (N, 3): x, y, outside
    q = torch.round(packed[:, :2] * _SUBPIXEL)  # half to even, like OpenCV's cvRound
    base = torch.floor(q / _SUBPIXEL)
    frac = (q - base * _SUBPIXEL) / _SUBPIXEL  # (N, 2) in [0, 1), exact
    x0, y0 = base[:, 0].to(torch.int64), base[:, 1].to(torch.int64)
    fx, fy = frac[:, 0], frac[:, 1]
    xa, xb = x0.clamp(0, w - 1), (x0 + 1).clamp(0, w - 1)
    ya, yb = y0.clamp(0, h - 1), (y0 + 1).clamp(0, h - 1)
    flat = mask.reshape(-1)
    v00, v01 = flat[ya * w + xa], flat[ya * w + xb]
    v10, v11 = flat[yb * w + xa], flat[yb * w + xb]
    gx, gy = 1.0 - fx, 1.0 - fy
    vals = v00 * (gy * gx) + v01 * (gy * fx) + v10 * (fy * gx) + v11 * (fy * fx)
    return torch.where(packed[:, 2] > 0.5, torch.full_like(vals, -1.0), vals)


def _sample_host(mask: np.ndarray, src: np.ndarray, outside: np.ndarray) -> np.ndarray:
    """:func:`sample_mask` on a host ``(H, W)`` float32 mask, in numpy: the same float32
    operations in the same order (the same values), without a torch op per step. ``src`` (N, 2)
    float32 positions with the pixel-centre origin, ``outside`` (N,) bool: (N,) float32."""
    h, w = mask.shape
    sub = np.float32(_SUBPIXEL)
    q = np.round(src * sub)  # half to even, like OpenCV's cvRound (and torch.round)
    base = np.floor(q / sub)
    frac = (q - base * sub) / sub  # (N, 2) in [0, 1), exact
    x0, y0 = base[:, 0].astype(np.int64), base[:, 1].astype(np.int64)
    fx, fy = frac[:, 0], frac[:, 1]
    xa, xb = np.clip(x0, 0, w - 1), np.clip(x0 + 1, 0, w - 1)
    ya, yb = np.clip(y0, 0, h - 1), np.clip(y0 + 1, 0, h - 1)
    flat = mask.reshape(-1)
    v00, v01 = flat[ya * w + xa], flat[ya * w + xb]
    v10, v11 = flat[yb * w + xa], flat[yb * w + xb]
    one = np.float32(1.0)
    gx, gy = one - fx, one - fy
    vals = v00 * (gy * gx) + v01 * (gy * fx) + v10 * (fy * gx) + v11 * (fy * fx)
    vals[outside] = -1.0
    return vals


class _Samples:
    """Point sets gathered for one :func:`sample_mask` call: one copy to the mask's device and
    one back per round of measurements, however many runs the round has."""

    def __init__(self, mask: torch.Tensor | None) -> None:
        self.mask = mask
        self.sets: list[np.ndarray] = []

    def add(self, points: np.ndarray) -> int:
        self.sets.append(points)
        return len(self.sets) - 1

    def values(self) -> list[np.ndarray]:
        """Per added set, its (n,) float32 host values (zeros without a mask)."""
        sizes = [len(p) for p in self.sets]
        if not sizes:
            return []
        if self.mask is None:
            return [np.zeros(n, np.float32) for n in sizes]
        vals = sample_mask(self.mask, np.concatenate(self.sets)).cpu().numpy()  # one copy back
        return np.split(vals, np.cumsum(sizes)[:-1])


def _walk(vals: np.ndarray, start: int, step: int) -> tuple[float, str]:
    """From sample ``start`` (inside) go by ``step`` (+-1) until the mask ends: (index of the 0.5
    crossing, reason "edge" | "frame" | "bound"). Samples < 0 are outside the frame."""
    ahead = vals[start + 1 :] if step > 0 else vals[:start][::-1]  # the samples in walking order
    stop = np.flatnonzero(ahead <= 0.5)  # the first one ends the walk (a sample < 0 too)
    if stop.size == 0:
        return float(start + step * len(ahead)), "bound"
    k = int(stop[0])
    i = start + step * k  # the last sample inside
    v = ahead[k]
    if v < 0:
        return float(i), "frame"
    a = vals[i]  # a > 0.5 >= v
    return i + step * float((a - 0.5) / max(a - v, 1e-6)), "edge"


def _run_points(centre, direction, reach) -> tuple[np.ndarray, np.ndarray]:
    """Sample offsets ``[-reach, reach]`` px (every :data:`_STEP`) along ``direction`` (unit)
    through ``centre``, and their points (N, 2)."""
    offs = np.arange(-reach, reach + _STEP / 2, _STEP)
    return offs, centre[None] + offs[:, None] * direction[None]


def _run(offs: np.ndarray, vals: np.ndarray, seek) -> tuple[float, float, str, str] | None:
    """The mask run through the centre (offset 0) of samples ``vals`` at ``offs``: (neg end, pos
    end) as signed offsets, and the reasons; None when no mask sample lies within ``seek`` px of
    the centre."""
    mid = int(np.argmin(np.abs(offs)))
    inside = np.nonzero((vals > 0.5) & (np.abs(offs) <= seek))[0]
    if inside.size == 0:
        return None
    start = int(inside[np.argmin(np.abs(inside - mid))])
    lo, why_lo = _walk(vals, start, -1)
    hi, why_hi = _walk(vals, start, 1)
    return offs[0] + lo * _STEP, offs[0] + hi * _STEP, why_lo, why_hi


def _median(values: list[float]) -> float:
    """``float(np.median(values))`` of a few floats, without numpy's overhead: the middle one,
    or the mean of the middle two (``(a + b) / 2``, as numpy's mean of two)."""
    if any(v != v for v in values):  # NaN: numpy's answer
        return float(np.median(values))
    s = sorted(float(v) for v in values)
    n = len(s)
    return s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2.0


def _cross(a: np.ndarray, b: np.ndarray, t: float) -> float | None:
    """x of the body-frame segment a -> b ((x, t) pairs) at ``t``, or None."""
    if (a[1] - t) * (b[1] - t) > 0 or abs(b[1] - a[1]) < 1e-9:
        return None
    k = (t - a[1]) / (b[1] - a[1])
    return float(a[0] + k * (b[0] - a[0]))


def body_outline(
    person_mask: torch.Tensor | None, keypoints: torch.Tensor, height: int, width: int
) -> BodyOutline:
    """Measure the outline of the person ``keypoints`` on ``person_mask``.

    Args:
        person_mask: ``(H, W)`` (or ``(1, H, W)``) float mask in [0, 1] at the keypoints' scale,
            or ``None`` (every value is then a keypoint estimate, ``status == "keypoints"``).
        keypoints: ``(18, 3)`` pose in pixels (any device; its values are read on the host,
            :func:`engine.inputs.keypoint_mirror.host_keypoints`).
        height, width: the image size.

    Returns:
        a :class:`BodyOutline` (see the module docstring for every rule), CPU tensors.

    The mask stays on its device (:func:`sample_mask`): the measurement is keypoint geometry and
    walks along the samples on the host, with two rounds of samples, each one copy of the sample
    positions to the device and one of their values (a few thousand floats) back: the arms and
    torso lines, then the shoulder tops.
    """
    check_keypoints(keypoints, max_ndim=2)
    height, width = check_size(height, "height"), check_size(width, "width")
    mask = None
    if person_mask is not None:
        if not isinstance(person_mask, torch.Tensor) or tuple(person_mask.shape) not in (
            (height, width),
            (1, height, width),
        ):
            raise InputError(
                "person_mask", f"None or a tensor of shape {(height, width)}", person_mask
            )
        mask = person_mask.detach().reshape(height, width).to(torch.float32)

    kp = host_keypoints(keypoints)
    bf = host_body_frame(kp[None], height)
    present = present_keypoints(kp).numpy()
    f64 = lambda v: v[0].numpy().astype(np.float64)  # noqa: E731
    m = 0.5 * (f64(bf.r_shoulder) + f64(bf.l_shoulder))
    u, d = f64(bf.across), f64(bf.down)
    sw = float(bf.shoulder_width[0])
    valid = bool(bf.valid[0])

    def to_body(p: np.ndarray) -> np.ndarray:
        q = p - m
        return np.array([q @ u, q @ d])

    def to_img(x: float, t: float) -> np.ndarray:
        return m + x * u + t * d

    edges = np.zeros((4, 2, 2))
    conf = np.zeros((4, 2))
    tops = np.zeros((2, 2))
    top_conf = np.zeros(2)
    arm_w = np.full(2, 2 * ARM_RADIUS_RATIO * max(sw, 1.0))
    arm_conf = np.zeros(2)
    line_t = np.zeros(4)
    if not valid:
        z = lambda a: torch.from_numpy(a.astype(np.float32))  # noqa: E731
        return BodyOutline(z(edges), z(conf), z(tops), z(top_conf), z(arm_w), z(arm_conf),
                           z(line_t), "none")  # fmt: skip

    # Lines along the axis.
    hips_mid = 0.5 * (f64(bf.r_hip) + f64(bf.l_hip))
    t_hem = float(to_body(hips_mid)[1])
    if d[1] > 1e-6:
        t_hem = min(t_hem, (height - 1.5 - m[1]) / d[1])
    t_hem = max(t_hem, 0.3 * sw)
    t_chest = min(CHEST_RATIO * sw, 0.6 * t_hem)
    line_t[:] = [0.0, t_chest, 0.5 * (t_chest + t_hem), t_hem]

    # Keypoint estimates (body coordinates, per line and side).
    xr_hip, xl_hip = to_body(f64(bf.r_hip))[0], to_body(f64(bf.l_hip))[0]
    est = np.array(
        [
            [-0.55 * sw, 0.55 * sw],
            [-0.42 * sw, 0.42 * sw],
            [0.0, 0.0],
            [xr_hip - 0.12 * sw, xl_hip + 0.12 * sw],
        ]
    )
    est[2] = 0.5 * (est[1] + est[3])

    elbows = (f64(bf.r_elbow), f64(bf.l_elbow))
    shoulders = (f64(bf.r_shoulder), f64(bf.l_shoulder))
    has_elbow = (bf.conf_elbow[0] > 0).numpy()
    wrists = (kp[_RW, :2].numpy().astype(np.float64), kp[_LW, :2].numpy().astype(np.float64))
    has_wrist = (bool(present[_RW]), bool(present[_LW]))

    ranges = [HALF_WIDTH_RANGE[name] for name in LINES]
    side_view = False
    hips_present = bool(
        present[KEYPOINT_INDEX["right_hip"]] and present[KEYPOINT_INDEX["left_hip"]]
    )
    if hips_present and float(to_body(hips_mid)[1]) > SIDE_VIEW_TORSO_RATIO * sw:
        side_view = True

    # The first round of samples: every run across the upper arms and the torso lines (their
    # positions depend on the keypoints only), one copy to the mask's device and back.
    first = _Samples(mask)
    arm_runs: list[list[tuple[np.ndarray, int]]] = [[], []]
    for side in (0, 1):
        if not has_elbow[side]:
            continue
        arm_conf[side] = ESTIMATE
        a, b = shoulders[side], elbows[side]
        length = float(np.linalg.norm(b - a))
        if mask is None or length < 0.15 * sw:
            continue
        axis = (b - a) / length
        normal = np.array([-axis[1], axis[0]])
        for frac in (0.35, 0.5, 0.65):
            offs, pts = _run_points(a + frac * (b - a), normal, 0.3 * sw)
            arm_runs[side].append((offs, first.add(pts)))
    line_runs: list[tuple[np.ndarray, int]] = []
    if mask is not None and not side_view:
        for li, t in enumerate(line_t):
            offs, pts = _run_points(to_img(0.0, t), u, ranges[li][1] * sw + 2.0)
            line_runs.append((offs, first.add(pts)))
    vals = first.values()

    # Upper arm widths.
    for side in (0, 1):
        if not arm_runs[side]:
            continue
        widths = []
        for offs, i in arm_runs[side]:
            run = _run(offs, vals[i], 0.1 * sw)
            if run is None:
                continue
            lo, hi, why_lo, why_hi = run
            ok_lo, ok_hi = why_lo == "edge", why_hi == "edge"
            if ok_lo and ok_hi:
                widths.append(hi - lo)
            elif ok_lo or ok_hi:
                widths.append(2 * (-lo if ok_lo else hi))
        if widths:
            wmed = _median(widths)
            if 0.08 * sw <= wmed <= 0.45 * sw:
                arm_w[side], arm_conf[side] = wmed, MEASURED

    # Torso edges.
    arm_segments = []
    for side in (0, 1):
        segs = []
        if has_elbow[side]:
            segs.append((to_body(shoulders[side]), to_body(elbows[side])))
            if has_wrist[side]:
                segs.append((to_body(elbows[side]), to_body(wrists[side])))
        arm_segments.append(segs)
    measured = np.zeros((4, 2))
    xs = est.copy()
    bounds = 0
    if line_runs:
        for li, t in enumerate(line_t):
            offs, i = line_runs[li]
            run = _run(offs, vals[i], 0.15 * sw)
            if run is None:
                continue
            ends = (run[0], run[1])
            whys = (run[2], run[3])
            for side, sign in ((0, -1.0), (1, 1.0)):
                x, why = ends[side], whys[side]
                c = MEASURED
                if li > 0:
                    for a, b in arm_segments[side]:
                        xc = _cross(a, b, t)
                        if xc is None or sign * xc <= 0.3 * sw:
                            continue
                        cut = xc - sign * 0.5 * arm_w[side]
                        if sign * x > sign * cut:
                            x, why, c = cut, "edge", ARM_CUT
                lo_r, hi_r = ranges[li]
                bounds += why == "bound"
                if why == "edge" and lo_r * sw <= sign * x <= hi_r * sw:
                    xs[li, side], measured[li, side] = x, c
        # Both shoulder and chest runs hitting the bound on both sides: a side view.
        if bounds >= 4 and not measured[:2].any():
            side_view = True
            xs, measured = est.copy(), np.zeros((4, 2))
    for li, t in enumerate(line_t):
        for side in (0, 1):
            edges[li, side] = to_img(xs[li, side], t)
            conf[li, side] = measured[li, side] if measured[li, side] > 0 else ESTIMATE

    # Shoulder tops: the second round of samples (where they start depends on the first).
    second = _Samples(mask)
    top_x, top_runs = [0.0, 0.0], [-1, -1]
    for side, sign in ((0, -1.0), (1, 1.0)):
        x = xs[0, side] - sign * (0.25 * arm_w[side] if measured[0, side] else 0.0)
        top_x[side] = x
        if mask is not None and measured[0, side] and not side_view:
            offs = np.arange(0.0, 0.35 * sw + _STEP / 2, _STEP)
            top_runs[side] = second.add(to_img(x, 0.0)[None] - offs[:, None] * d[None])
    vals = second.values()
    for side in (0, 1):
        t_top, c = -0.06 * sw, ESTIMATE
        if top_runs[side] >= 0:
            top = vals[top_runs[side]]
            if top[0] > 0.5:
                end, why = _walk(top, 0, 1)
                if why == "edge":
                    t_top, c = -end * _STEP, MEASURED
        tops[side] = to_img(top_x[side], t_top)
        top_conf[side] = c

    if side_view:
        status = "side_view"
    elif mask is None:
        status = "keypoints"
    elif measured.all():
        status = "measured"
    else:
        status = "partial"
    if not math.isfinite(float(edges.sum() + tops.sum() + arm_w.sum())):
        raise InputError("keypoints", "finite keypoints", keypoints)
    z = lambda a: torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))  # noqa: E731
    return BodyOutline(
        edges=z(edges),
        confidence=z(conf),
        shoulder_tops=z(tops),
        shoulder_top_confidence=z(top_conf),
        arm_width=z(arm_w),
        arm_confidence=z(arm_conf),
        line_t=z(line_t),
        status=status,
    )
