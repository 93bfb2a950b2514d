"""The garment warp: flat-lay garment -> warped cloth ``C`` on the body (thin-plate spline).

Three steps, each reusable on its own so a runtime can cache the per-garment work:

1. :func:`garment_keypoints` finds :data:`GARMENT_POINTS` on the garment's silhouette (once per
   garment);
2. :func:`body_anchor_points` gives the matching points on the body from the 18 keypoints (per
   frame), with a confidence each; given the body's outline
   (:func:`engine.inputs.body_outline.body_outline`, measured on the person mask),
   :func:`fit_points` gives a denser set of pairs that puts the seams on the silhouette and the
   sleeves along the arms;
3. :func:`tps_grid` solves the thin-plate spline target -> source and evaluates it on the output
   pixel grid; :func:`warp_garment` samples the garment with it.

Sides: ``*_right`` is the wearer's right, which is the image's *left* for a front-facing flat-lay
garment and a front-facing person (the convention of :mod:`engine.keypoints`).

Pixel convention: as in :mod:`engine.inputs.pose_maps`, origin at the top-left pixel's corner, pixel
``(row i, col j)`` has centre ``(j + 0.5, i + 0.5)``; returned garment landmarks are pixel centres.
"""

from __future__ import annotations

import math
import threading

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from engine.errors import InputError
from engine.inputs.body_outline import BodyOutline
from engine.inputs.keypoint_mirror import host_keypoints, to_device
from engine.inputs.scratch import scratch
from engine.inputs.tryon_region import body_frame, host_body_frame
from engine.keypoints import KEYPOINT_INDEX, check_keypoints, check_size, present_keypoints

__all__ = [
    "BACKGROUND_DISTANCE",
    "GARMENT_POINTS",
    "body_anchor_points",
    "fit_points",
    "garment_keypoints",
    "garment_mask",
    "tps_grid",
    "warp_garment",
]

GARMENT_POINTS = (
    "collar_right",
    "collar_left",
    "shoulder_right",
    "shoulder_left",
    "sleeve_right",
    "sleeve_left",
    "armpit_right",
    "armpit_left",
    "hem_right",
    "hem_left",
)
NUM_GARMENT_POINTS = len(GARMENT_POINTS)

BACKGROUND_DISTANCE = 0.12
"""RGB (Euclidean, [0, 1] scale) distance from the background colour above which a pixel of an
opaque (alpha all ones) garment image belongs to the garment."""

_ALPHA_OPAQUE = 1.0 - 1e-3
_CR, _CL, _SR, _SL, _VR, _VL, _AR, _AL, _HR, _HL = range(NUM_GARMENT_POINTS)
_SLEEVES = (_VR, _VL)


def _check_garment(garment: object, name: str = "garment") -> torch.Tensor:
    expected = "a floating torch.Tensor of shape (4, Hg, Wg) (RGBA in [0, 1]) or (3, Hg, Wg)"
    if (
        not isinstance(garment, torch.Tensor)
        or not garment.is_floating_point()
        or garment.ndim != 3
        or garment.shape[0] not in (3, 4)
        or garment.shape[1] < 2
        or garment.shape[2] < 2
    ):
        raise InputError(name, expected, garment)
    return garment


def _check_points(points: object, name: str, n: int | None = None) -> torch.Tensor:
    expected = f"a floating torch.Tensor of shape ({n if n else 'N'}, 2)"
    if (
        not isinstance(points, torch.Tensor)
        or not points.is_floating_point()
        or points.ndim != 2
        or points.shape[1] != 2
        or (n is not None and points.shape[0] != n)
        or points.shape[0] < 3
        or not bool(torch.isfinite(points).all())
    ):
        raise InputError(name, expected + " with finite values, N >= 3", points)
    return points


def garment_mask(garment: torch.Tensor) -> torch.Tensor:
    """The garment's alpha ``(Hg, Wg)`` float32 in [0, 1].

    The alpha channel when it is not all ones; otherwise (an RGB image on a plain background, or a
    3-channel garment) the background colour is the per-channel median of the border pixels and a
    pixel is garment (1.0) when its RGB distance to it exceeds :data:`BACKGROUND_DISTANCE`, after
    which only the largest connected component is kept and its holes are filled.
    """
    _check_garment(garment)
    g = garment.detach().to("cpu", torch.float32)
    if g.shape[0] == 4 and float(g[3].min()) < _ALPHA_OPAQUE:
        return g[3].clamp(0.0, 1.0)
    rgb = g[:3]
    border = torch.cat([rgb[:, 0], rgb[:, -1], rgb[:, :, 0], rgb[:, :, -1]], dim=1)  # (3, n)
    bg = border.median(dim=1).values  # (3,)
    dist = (rgb - bg[:, None, None]).norm(dim=0)
    mask = (dist > BACKGROUND_DISTANCE).numpy().astype(np.uint8)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    if count <= 1:
        return torch.zeros(g.shape[1:], dtype=torch.float32)
    largest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    mask = (labels == largest).astype(np.uint8)
    contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    cv2.drawContours(mask, contours, -1, 1, thickness=cv2.FILLED)
    return torch.from_numpy(mask.astype(np.float32))


def _landmarks(mask: np.ndarray) -> np.ndarray:
    """Landmarks (10, 2) in pixel-index coordinates (col, row) of a binary uint8 mask."""
    hg, wg = mask.shape
    rows, cols = np.nonzero(mask)
    y_top, y_bot = int(rows.min()), int(rows.max())
    x_min, x_max = int(cols.min()), int(cols.max())
    gh, gw = y_bot - y_top + 1, x_max - x_min + 1
    # Centre column: centroid of the lower quarter (the torso, below the sleeves).
    lower = rows >= y_top + 0.75 * gh
    cx = float(cols[lower].mean())
    cxi = int(round(cx))

    # Top contour: first garment row of every column (hg where empty).
    col_has = mask.any(axis=0)
    top = np.where(col_has, mask.argmax(axis=0), hg)

    # Hem: the run containing the centre column, a little above the lowest row of that column.
    col_rows = np.nonzero(mask[:, cxi])[0]
    if col_rows.size == 0:
        cxi = int(cols[lower][np.argmin(np.abs(cols[lower] - cx))])
        col_rows = np.nonzero(mask[:, cxi])[0]
    yb = int(col_rows.max())
    yh = max(y_top, yb - max(1, int(round(0.015 * gh))))
    row = mask[yh]
    left = cxi
    while left > 0 and row[left - 1]:
        left -= 1
    right = cxi
    while right < wg - 1 and row[right + 1]:
        right += 1
    bottom = np.where(col_has, hg - 1 - mask[::-1].argmax(axis=0), -1)
    hem_r = (left, float(bottom[left]))
    hem_l = (right, float(bottom[right]))

    # Armpits: deepest convexity defect on each side, between the top and the hem.
    armpit = [None, None]
    contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    contour = max(contours, key=cv2.contourArea)
    try:
        hull = cv2.convexHull(contour, returnPoints=False)
        defects = cv2.convexityDefects(contour, hull)
    except cv2.error:
        defects = None
    if defects is not None:
        best = [0.0, 0.0]
        for _s, _e, f, depth in defects[:, 0]:
            x, y = contour[f, 0]
            if not (y_top + 0.08 * gh < y < yh - 0.05 * gh) or depth / 256.0 < 0.02 * gw:
                continue
            side = 0 if x < cx - 0.1 * gw else 1 if x > cx + 0.1 * gw else -1
            if side >= 0 and depth > best[side]:
                best[side], armpit[side] = depth, (float(x), float(y))
    for side, hem_x in ((0, left), (1, right)):
        if armpit[side] is None:  # no sleeve notch: the torso side at 35% of the height
            armpit[side] = (float(hem_x), y_top + 0.35 * gh)

    # Shoulders: the top contour above the armpit's column (torso side line extended up); for a
    # sleeveless garment, the nearest column towards the centre that rises well above the armpit.
    xs_all = np.arange(wg)
    shoulders = []
    for side in (0, 1):
        ax, ay = armpit[side]
        high = top < ay - 0.1 * gh
        cand = (
            high
            & ((xs_all >= ax) if side == 0 else (xs_all <= ax))
            & ((xs_all <= cx) if side == 0 else (xs_all >= cx))
        )
        if not cand.any():
            cand = high
        idx = np.nonzero(cand)[0]
        if idx.size == 0:
            shoulders.append((ax, float(y_top)))
            continue
        xs_ = int(idx[np.argmin(np.abs(idx - ax))])
        shoulders.append((float(xs_), float(top[xs_])))

    # Collars: the highest top-contour column on each side of the centre (ties: nearest the
    # centre); when the neckline dip is shallow, 35% of the way from the centre to the shoulder.
    collars = []
    dip = top[cxi] if col_has[cxi] else hg
    for side in (0, 1):
        sx = shoulders[side][0]
        lo, hi = (int(sx), cxi) if side == 0 else (cxi, int(sx))
        idx = np.arange(lo, hi + 1)
        idx = idx[col_has[idx]]
        if idx.size == 0:
            collars.append((cx, float(y_top)))
            continue
        tmin = top[idx].min()
        ties = idx[top[idx] == tmin]
        xc = int(ties[np.argmin(np.abs(ties - cx))])
        if dip - tmin < 0.03 * gh:
            xc = int(round(cx + 0.35 * (sx - cx)))
            xc = min(max(xc, 0), wg - 1)
        collars.append((float(xc), float(top[xc] if col_has[xc] else tmin)))

    # Sleeve ends: pixels outside the torso side line (beyond the armpit and hem-corner columns,
    # above the hem); the mean of those farthest along the sleeve axis (root -> sleeve centroid).
    # No sleeve: the sleeve root (midpoint of shoulder and armpit).
    sleeves = []
    area = rows.size
    for side in (0, 1):
        ax, ay = armpit[side]
        sx, sy = shoulders[side]
        root = np.array([(ax + sx) / 2, (ay + sy) / 2])
        hem_x = hem_r[0] if side == 0 else hem_l[0]
        outside = (cols < min(ax, hem_x) - 1) if side == 0 else (cols > max(ax, hem_x) + 1)
        outside &= rows <= yh
        if outside.sum() < 0.01 * area:
            sleeves.append(tuple(root))
            continue
        pts = np.stack([cols[outside], rows[outside]], axis=1).astype(np.float64)
        axis = pts.mean(axis=0) - root
        norm = np.linalg.norm(axis)
        if norm < 1e-6:
            sleeves.append(tuple(root))
            continue
        proj = (pts - root) @ (axis / norm)
        far = pts[proj >= proj.max() - max(1.0, 0.04 * gw)]
        sleeves.append(tuple(far.mean(axis=0)))

    out = np.zeros((NUM_GARMENT_POINTS, 2), dtype=np.float64)
    out[_CR], out[_CL] = collars
    out[_SR], out[_SL] = shoulders
    out[_VR], out[_VL] = sleeves
    out[_AR], out[_AL] = armpit
    out[_HR], out[_HL] = hem_r, hem_l
    return out


def garment_keypoints(garment: torch.Tensor) -> torch.Tensor:
    """Find :data:`GARMENT_POINTS` on a flat-lay front view of an upper-body garment.

    Args:
        garment: ``(4, Hg, Wg)`` RGBA float in [0, 1] (alpha marks the garment); with alpha all
            ones, or ``(3, Hg, Wg)`` RGB, the mask comes from the background colour
            (:func:`garment_mask`).

    Returns:
        ``(10, 2)`` float32 pixel coordinates (pixel centres, see the module docstring), on CPU.

    The silhouette rules (for t-shirt, shirt, sweater and sleeveless shapes, sleeves spread out):
    hem corners = ends of the row run through the centre column, 1.5% of the garment height above
    its lowest pixel; armpits = deepest concave corner (convexity defect) on each side between
    the top and the hem; shoulders = top of the column above each armpit (the torso side line
    extended up); collars = highest top-contour points on each side of the neckline, nearest the
    centre; sleeve ends = centre of the pixels farthest out along each sleeve's axis.

    Raises:
        InputError: ``garment`` is malformed, or its mask is empty.
    """
    _check_garment(garment)
    mask = (garment_mask(garment) > 0.5).numpy().astype(np.uint8)
    if mask.sum() < 16:
        raise InputError("garment", "an image containing a garment (non-empty mask)", garment)
    pts = _landmarks(mask) + 0.5
    return torch.from_numpy(pts.astype(np.float32))


def body_anchor_points(
    keypoints: torch.Tensor,
    *,
    height: int | None = None,
    sleeve_fraction: float = 0.5,
    outline: BodyOutline | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Target points on the body for :data:`GARMENT_POINTS`, with a confidence each.

    With ``sw`` the shoulder width, ``u`` the unit vector right -> left shoulder and ``d`` the
    body axis (:func:`engine.inputs.tryon_region.body_frame`, whose rules for missing shoulders and
    hips apply:
    hips missing -> extrapolated along the body axis, up to the frame bottom when ``height`` is
    given):

    * collars: ``neck -/+ 0.17 sw u - 0.03 sw d``;
    * shoulders: the shoulder keypoints pushed out by ``0.05 sw``;
    * sleeve ends: ``shoulder + sleeve_fraction * (elbow - shoulder)`` (confidence 0 when the
      elbow is missing: the warp then ignores them);
    * armpits: ``shoulder + 0.08 sw u_inward + 0.45 sw d``;
    * hem corners: the hips pushed out by ``0.12 sw``.

    Args:
        keypoints: ``(18, 3)`` or ``(T, 18, 3)`` pose in pixels.
        height: the image height (limits the hip extrapolation); ``None`` = unlimited.
        sleeve_fraction: where the sleeve ends lie between shoulder (0) and elbow (1).
        outline: the body's outline (:func:`engine.inputs.body_outline.body_outline`) for a
            single ``(18, 3)`` pose: the points then follow the silhouette (:func:`fit_points`'s
            rules: shoulders on the shoulder tops, armpits and hem corners on the torso edges
            pushed out by :data:`EASE`, sleeve ends ``sleeve_fraction`` of the way from the sleeve
            root to the elbow); confidences stay the keypoints'.

    Returns:
        ``points`` ``(10, 2)`` (or ``(T, 10, 2)``) float32 pixels and ``confidence`` ``(10,)``
        (or ``(T, 10)``) float32 in [0, 1]; all-zero confidence when no person is found.
    """
    check_keypoints(keypoints, max_ndim=3)
    if height is not None:
        height = check_size(height, "height")
    if (
        isinstance(sleeve_fraction, bool)
        or not isinstance(sleeve_fraction, (int, float))
        or not math.isfinite(sleeve_fraction)
    ):
        raise InputError("sleeve_fraction", "a finite float", sleeve_fraction)
    batched = keypoints.ndim == 3
    kp = keypoints.reshape(-1, 18, 3)
    frame_of = host_body_frame if kp.device.type == "cpu" and not kp.requires_grad else body_frame
    bf = frame_of(kp, height if height is not None else 10**9)
    sw = bf.shoulder_width[:, None]
    u, d = bf.across, bf.down
    rs, ls = bf.r_shoulder, bf.l_shoulder
    pts = [
        bf.neck - 0.17 * sw * u - 0.03 * sw * d,
        bf.neck + 0.17 * sw * u - 0.03 * sw * d,
        rs - 0.05 * sw * u,
        ls + 0.05 * sw * u,
        rs + sleeve_fraction * (bf.r_elbow - rs),
        ls + sleeve_fraction * (bf.l_elbow - ls),
        rs + 0.08 * sw * u + 0.45 * sw * d,
        ls - 0.08 * sw * u + 0.45 * sw * d,
        bf.r_hip - 0.12 * sw * u,
        bf.l_hip + 0.12 * sw * u,
    ]
    cs, ch, ce = bf.conf_shoulder, bf.conf_hip, bf.conf_elbow
    conf = [bf.conf_neck, bf.conf_neck, cs[:, 0], cs[:, 1], ce[:, 0], ce[:, 1]]
    conf += [cs[:, 0], cs[:, 1], ch[:, 0], ch[:, 1]]
    points = torch.stack(pts, dim=1)  # (B, 10, 2)
    confidence = torch.stack(conf, dim=1).clamp(0.0, 1.0)  # (B, 10)
    if outline is not None:
        if batched or not isinstance(outline, BodyOutline):
            raise InputError("outline", "a BodyOutline for one (18, 3) pose", outline)
        if outline.valid:
            points = points.clone()
            points[0, : _HL + 1] = _outline_targets(bf, outline, sleeve_fraction, points.device)
    if not batched:
        return points[0], confidence[0]
    return points, confidence


EASE = 0.03
"""How far (in shoulder widths) the side seams and hem corners are pushed out past the measured
torso edges, so the person's own clothes do not show along the garment's sides."""

SLEEVE_ELBOW_MIN = 0.5
"""Sleeves follow the arm only where the elbow is seen with at least this confidence: a
half-hidden elbow whose confidence flickers around the detection threshold would otherwise
switch the sleeve targets on and off from frame to frame (the sleeves flare and fold)."""
SLEEVE_EASE = 1.15
"""A sleeve's width over the measured upper arm width."""
SLEEVE_MIN_ANGLE_DEG = 25.0
"""Smallest angle between a sleeve and the body's down axis, outwards. An arm hanging closer to
the body (or in front of it) would lay the sleeve's inner edge over the garment's own side seam:
two parts of the garment on the same body pixels, which the thin-plate spline can only fold. The
sleeve then flares out at this angle from the shoulder, as a loose sleeve does."""


def check_sleeve_follow(value: object, name: str = "sleeve_follow") -> tuple[float, float] | None:
    """``value`` as a (right, left) pair of floats in [0, 1], or None; else InputError."""
    if value is None:
        return None
    try:
        pair = tuple(float(v) for v in value)  # type: ignore[union-attr]
    except (TypeError, ValueError):
        pair = ()
    if len(pair) != 2 or not all(0.0 <= v <= 1.0 for v in pair) or isinstance(value, str):
        raise InputError(name, "None or a (right, left) pair of floats in [0, 1]", value)
    return pair  # type: ignore[return-value]


def _outline_targets(bf, outline: BodyOutline, sleeve_fraction: float, device) -> torch.Tensor:
    """The 10 targets of one pose from its outline (rules: :func:`fit_points`)."""
    sw = float(bf.shoulder_width[0])
    u, d = bf.across[0].cpu(), bf.down[0].cpu()
    e = outline.edges
    out = torch.zeros(NUM_GARMENT_POINTS, 2)
    out[_CR] = bf.neck[0].cpu() - 0.17 * sw * u - 0.03 * sw * d
    out[_CL] = bf.neck[0].cpu() + 0.17 * sw * u - 0.03 * sw * d
    out[_SR], out[_SL] = outline.shoulder_tops[0], outline.shoulder_tops[1]
    ease = EASE * sw * u
    out[_AR] = e[1, 0] - ease - 0.08 * sw * d
    out[_AL] = e[1, 1] + ease - 0.08 * sw * d
    out[_HR], out[_HL] = e[3, 0] - ease, e[3, 1] + ease
    for side, (v, s, a) in enumerate(((_VR, _SR, _AR), (_VL, _SL, _AL))):
        root = 0.5 * (out[s] + out[a])
        elbow = (bf.r_elbow if side == 0 else bf.l_elbow)[0].cpu()
        out[v] = root + sleeve_fraction * (elbow - root)
    return out.to(device)


def _run_halfwidth(alpha: np.ndarray, centre: np.ndarray, normal: np.ndarray, reach: float):
    """Half widths (along -normal, +normal) of the alpha run through ``centre``, or None."""
    hg, wg = alpha.shape
    offs = np.arange(-reach, reach + 0.25, 0.5)
    pts = centre[None] + offs[:, None] * normal[None]
    ix = np.clip(np.floor(pts[:, 0]).astype(int), 0, wg - 1)
    iy = np.clip(np.floor(pts[:, 1]).astype(int), 0, hg - 1)
    inside = (alpha[iy, ix] > 0.5) & (pts[:, 0] >= 0) & (pts[:, 0] < wg)
    inside &= (pts[:, 1] >= 0) & (pts[:, 1] < hg)
    mid = int(np.argmin(np.abs(offs)))
    if not inside[mid]:
        return None
    gaps = np.flatnonzero(~inside)  # the run through mid lies between two of these
    before, after = gaps[gaps < mid], gaps[gaps > mid]
    lo = int(before[-1]) + 1 if before.size else 0
    hi = int(after[0]) - 1 if after.size else len(offs) - 1
    return -offs[lo], offs[hi]


def _has_sleeve(gp: torch.Tensor, side: int) -> bool:
    sleeve, shoulder, armpit = ((_VR, _SR, _AR), (_VL, _SL, _AL))[side]
    g_sw = float((gp[_SL] - gp[_SR]).norm())
    root = 0.5 * (gp[shoulder] + gp[armpit])
    return float((gp[sleeve] - root).norm()) >= 0.05 * max(g_sw, 1.0)


def _rot90(v: np.ndarray) -> np.ndarray:
    return np.array([-v[1], v[0]])


def fit_points(
    garment_points: torch.Tensor,
    keypoints: torch.Tensor,
    outline: BodyOutline,
    height: int,
    *,
    garment_alpha: torch.Tensor | None = None,
    sleeve_follow: tuple[float, float] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Garment -> body point pairs for the thin-plate spline, from the body's outline.

    Rules (``sw`` the shoulder width, ``u`` across, ``d`` down, edges from
    :func:`engine.inputs.body_outline.body_outline`, each with its own keypoint fallback):

    * collars: ``neck -/+ 0.17 sw u - 0.03 sw d`` (as :func:`body_anchor_points`);
    * shoulders (the seams): the outline's shoulder tops (top of the silhouette a quarter arm
      width inside the outer shoulder edge), not the joints;
    * armpits: the chest edges moved up by ``0.08 sw`` and out by :data:`EASE` ``sw``;
    * hem corners: the hem line's edges (hips, or the frame bottom) pushed out by ``EASE sw``;
    * side mid points: the garment's armpit -> hem midpoints on the waist edges (``+ EASE sw``),
      and the garment's armpit midpoint on the body's armpit midpoint (keeps the spline from
      folding between the side seams);
    * sleeves (when the garment has one, :func:`warp_garment`'s rule, and the elbow is found):
      the garment's sleeve axis, root (shoulder/armpit midpoint) -> sleeve landmark, maps onto
      the arm path body root -> elbow -> wrist (the wrist only when found; an upper arm
      hanging closer to the body than :data:`SLEEVE_MIN_ANGLE_DEG` is flared out to it) with length
      ``L = (garment sleeve length / garment shoulder-to-hem length) * body shoulder-to-hip
      length`` (the body length is ``1.35 sw`` when a hip is missing), clamped to the path's
      length: a short sleeve stops part-way down the upper arm, a long one bends at the elbow
      and follows the forearm (a missing wrist: the forearm continues the upper arm for
      ``0.6 sw``). Points at ``k / n`` of the way (``n = 4``, or 6 when ``L``
      passes the elbow); from ``k / n >= 0.5`` also both sleeve edges: the garment's measured
      half width (across its sleeve axis, on ``garment_alpha``) onto ``SLEEVE_EASE / 2`` times
      the measured arm width (both sides rotated the same way, so nothing is mirrored).

    Which sleeves follow the arm: on one frame (``sleeve_follow=None``) those whose elbow has
    confidence >= :data:`SLEEVE_ELBOW_MIN`; the others get no points (the spline carries them
    with the torso). In a stream, ``sleeve_follow`` gives each side's weight (right, left) in
    [0, 1] (:class:`engine.inputs.sleeve_follow.SleeveFollow`): every sleeve of the garment gets
    its points, their targets ``w * (along the arm) + (1 - w) * (at rest)``, where "at rest" is
    where the thin-plate spline through the torso pairs carries the sleeve points; so a sleeve
    moves between the two continuously (an elbow not found: at rest).

    Args:
        garment_points: ``(10, 2)`` landmarks (:func:`garment_keypoints`).
        keypoints: ``(18, 3)`` pose in pixels.
        outline: its :class:`~engine.inputs.body_outline.BodyOutline`.
        height: the image height.
        garment_alpha: ``(Hg, Wg)`` garment mask (sleeve widths); ``None``: a sleeve's half width
            is taken as 0.35 of its length.
        sleeve_follow: ``None`` or the (right, left) follow weights, floats in [0, 1].

    Returns:
        ``source`` (garment pixels) and ``target`` (body pixels), both ``(N, 2)`` float32 CPU;
        ``N == 0`` when no person is found.
    """
    _check_points(garment_points, "garment_points", NUM_GARMENT_POINTS)
    check_keypoints(keypoints, max_ndim=2)
    height = check_size(height, "height")
    if not isinstance(outline, BodyOutline):
        raise InputError("outline", "a BodyOutline", outline)
    sleeve_follow = check_sleeve_follow(sleeve_follow)
    kp = host_keypoints(keypoints)  # (18, 3) CPU float32: no wait for a device
    targets, conf = body_anchor_points(kp, height=height, outline=outline)
    empty = torch.zeros(0, 2)
    if not outline.valid or float(conf.max()) <= 0:
        return empty, empty
    gp = garment_points.detach().to("cpu", torch.float64).numpy()
    tg = targets.to(torch.float64).numpy()
    bf = host_body_frame(kp[None], height)
    sw = float(bf.shoulder_width[0])
    u = bf.across[0].double().numpy()
    down = bf.down[0].double().numpy()
    src, tgt = [], []
    use = (conf > 0).numpy()
    use[[_VR, _VL]] = False  # the sleeve chains below replace the sleeve ends
    for i in np.nonzero(use)[0]:
        src.append(gp[i])
        tgt.append(tg[i])
    # Side mid points and the chest centre.
    waist = outline.edges[2].double().numpy()
    ease = EASE * sw * u
    for side, (a, h) in enumerate(((_AR, _HR), (_AL, _HL))):
        if use[a] and use[h]:
            src.append(0.5 * (gp[a] + gp[h]))
            tgt.append(waist[side] + (-ease if side == 0 else ease))
    if use[_AR] and use[_AL]:
        src.append(0.5 * (gp[_AR] + gp[_AL]))
        tgt.append(0.5 * (tg[_AR] + tg[_AL]))

    # Sleeves.
    g_len = float(np.linalg.norm(0.5 * (gp[_HR] + gp[_HL]) - 0.5 * (gp[_SR] + gp[_SL])))
    present = present_keypoints(kp).numpy()
    hips = (KEYPOINT_INDEX["right_hip"], KEYPOINT_INDEX["left_hip"])
    if present[list(hips)].all():
        mid_h = 0.5 * (kp[hips[0], :2] + kp[hips[1], :2]).double().numpy()
        mid_s = 0.5 * (bf.r_shoulder[0] + bf.l_shoulder[0]).double().numpy()
        b_len = float(np.linalg.norm(mid_h - mid_s))
    else:
        b_len = 1.35 * sw
    wrist_idx = (KEYPOINT_INDEX["right_wrist"], KEYPOINT_INDEX["left_wrist"])
    elbows = (bf.r_elbow[0].double().numpy(), bf.l_elbow[0].double().numpy())
    conf_elbow = bf.conf_elbow[0].numpy()
    torso = (np.asarray(src), np.asarray(tgt))  # the pairs a sleeve at rest follows
    rest_spline = None  # their spline, fitted when a sleeve first needs it
    for side, (v, s, a) in enumerate(((_VR, _SR, _AR), (_VL, _SL, _AL))):
        if sleeve_follow is None:  # one frame: follow the arm or leave the sleeve unconstrained
            weight = 1.0 if conf_elbow[side] >= SLEEVE_ELBOW_MIN else 0.0
            if weight == 0.0:
                continue
        else:
            weight = float(sleeve_follow[side])
        if not _has_sleeve(garment_points, side) or g_len < 1e-6:
            continue
        g_root = 0.5 * (gp[s] + gp[a])
        g_vec = gp[v] - g_root
        g_sleeve = float(np.linalg.norm(g_vec))
        path = None
        if weight > 0.0 and conf_elbow[side] > 0:
            b_root = 0.5 * (tg[s] + tg[a])
            outward = -u if side == 0 else u  # across runs right shoulder -> left shoulder
            path = [b_root, _flared_elbow(b_root, elbows[side], down, outward)]
            if present[wrist_idx[side]]:
                path.append(kp[wrist_idx[side], :2].double().numpy())
            else:  # wrist not found (often out of frame): the forearm continues the upper arm
                ua = path[1] - path[0]
                path.append(path[1] + 0.6 * sw * ua / max(float(np.linalg.norm(ua)), 1e-9))
            if np.linalg.norm(path[1] - path[0]) < 1e-3:
                path = None
        if path is None and sleeve_follow is None:
            continue
        length = g_sleeve / g_len * b_len
        half_b = 0.5 * SLEEVE_EASE * float(outline.arm_width[side])
        s_pts, f_pts = _sleeve_pairs(g_root, g_vec, garment_alpha, path, length, half_b)
        if f_pts is None or weight < 1.0:  # blend with where the torso carries it (at rest)
            if len(torso[0]) < 3:
                continue
            if rest_spline is None:
                rest_spline = _Spline(torso[0], torso[1])
            rest = rest_spline(np.asarray(s_pts))
            f_pts = rest if f_pts is None else weight * np.asarray(f_pts) + (1 - weight) * rest
        src += list(s_pts)
        tgt += list(f_pts)
    to = lambda pts: torch.from_numpy(np.asarray(pts, dtype=np.float32).reshape(-1, 2))  # noqa: E731
    return to(src), to(tgt)


def _sleeve_pairs(g_root, g_vec, garment_alpha, path, length, half_b):
    """One sleeve's garment points and, given the arm ``path`` (body root, elbow, wrist), their
    targets along it (:func:`fit_points`'s rules; ``garment_alpha`` the garment mask tensor or
    None); ``path=None``: the points of ``n = 4`` and no targets (None)."""
    n, seg, dirs, total = 4, None, None, 0.0
    if path is not None:
        seg = [float(np.linalg.norm(q - p)) for p, q in zip(path, path[1:], strict=False)]
        dirs = [(q - p) / max(d, 1e-9) for p, q, d in zip(path, path[1:], seg, strict=False)]
        total = sum(seg)
        length = min(length, total)
        n = 6 if length > seg[0] + 1e-6 else 4
    src = list(_sleeve_sources(garment_alpha, g_root, g_vec, n))
    if path is None:
        return src, None
    tgt = []
    for k in range(1, n + 1):
        f = k / n
        at = f * length
        i = 0 if at <= seg[0] or len(seg) == 1 else 1
        start = 0.0 if i == 0 else seg[0]
        point = path[i] + min(at - start, seg[i]) * dirs[i]
        tangent = dirs[i]
        if len(dirs) > 1 and abs(at - seg[0]) < 0.15 * total:  # at the elbow: mean direction
            mean = dirs[0] + dirs[1]
            if np.linalg.norm(mean) > 1e-6:
                tangent = mean / np.linalg.norm(mean)
        tgt.append(point)
        if f < 0.5:
            continue
        b_n = _rot90(tangent)
        tgt += [point - half_b * b_n, point + half_b * b_n]
    return src, tgt


_SLEEVE_SOURCES: dict[tuple, tuple] = {}
_SLEEVE_SOURCES_LOCK = threading.Lock()
_SLEEVE_SOURCES_SIZE = 16


def _sleeve_sources(
    garment_alpha: torch.Tensor | None, g_root: np.ndarray, g_vec: np.ndarray, n: int
) -> tuple[np.ndarray, ...]:
    """A sleeve's garment points for :func:`_sleeve_pairs` (read-only (2,) float64 arrays, in
    its order: per ``k`` of ``1..n`` the point ``k / n`` of the way root -> sleeve end, then
    from ``k / n >= 0.5`` its two edges on the garment mask). They depend on the garment only,
    so they are remembered per mask (its identity and version), sleeve and ``n``: a stream
    measures each sleeve's widths on the mask once instead of every frame."""
    version = None if garment_alpha is None else garment_alpha._version
    key = (id(garment_alpha), version, g_root.tobytes(), g_vec.tobytes(), n)
    with _SLEEVE_SOURCES_LOCK:
        hit = _SLEEVE_SOURCES.get(key)
    if hit is not None and hit[0] is garment_alpha:
        return hit[1]
    alpha = None if garment_alpha is None else garment_alpha.detach().cpu().numpy()
    g_sleeve = float(np.linalg.norm(g_vec))
    g_dir = g_vec / max(g_sleeve, 1e-9)
    g_n = _rot90(g_dir)
    src = []
    for k in range(1, n + 1):
        f = k / n
        g_point = g_root + f * g_vec
        src.append(g_point)
        if f < 0.5:
            continue
        g_half = None
        if alpha is not None:
            g_half = _run_halfwidth(alpha, g_point, g_n, 0.6 * g_sleeve + 2.0)
        if g_half is None:
            g_half = (0.35 * g_sleeve, 0.35 * g_sleeve)
        src += [g_point - g_half[0] * g_n, g_point + g_half[1] * g_n]
    for point in src:
        point.flags.writeable = False
    out = tuple(src)
    with _SLEEVE_SOURCES_LOCK:
        if len(_SLEEVE_SOURCES) >= _SLEEVE_SOURCES_SIZE:
            _SLEEVE_SOURCES.pop(next(iter(_SLEEVE_SOURCES)))  # the oldest
        _SLEEVE_SOURCES[key] = (garment_alpha, out)  # the mask held: its id is not reused
    return out


class _Spline:
    """The thin-plate spline through ``source -> target`` ((N, 2) pixels each), fitted once on
    coordinates centred and scaled by the sources' spread, with :func:`tps_grid`'s
    regularization; calling it maps (M, 2) points: (M, 2) float64 (both sleeves' rest positions
    come from the same torso pairs: one solve)."""

    def __init__(self, source: np.ndarray, target: np.ndarray) -> None:
        s = torch.from_numpy(np.asarray(source, np.float64).reshape(-1, 2))
        t = torch.from_numpy(np.asarray(target, np.float64).reshape(-1, 2))
        self.centre = s.mean(dim=0)
        self.scale = 1.0 / max(float((s - self.centre).abs().max()), 1e-9)
        self.s = (s - self.centre) * self.scale
        self.coef = _tps_solve(self.s, t, 1e-4)

    def __call__(self, points: np.ndarray) -> np.ndarray:
        q = torch.from_numpy(np.asarray(points, np.float64).reshape(-1, 2))
        q = (q - self.centre) * self.scale
        coef, n = self.coef, self.s.shape[0]
        u = _tps_kernel(torch.cdist(q, self.s) ** 2)  # (M, N)
        out = u @ coef[:n] + coef[n] + q[:, :1] * coef[n + 1] + q[:, 1:] * coef[n + 2]
        return out.numpy()


def _flared_elbow(
    root: np.ndarray, elbow: np.ndarray, down: np.ndarray, outward: np.ndarray
) -> np.ndarray:
    """``elbow``, or where it would be if the upper arm ``root -> elbow`` made at least
    :data:`SLEEVE_MIN_ANGLE_DEG` with ``down`` towards ``outward`` (same length)."""
    arm = elbow - root
    length = float(np.linalg.norm(arm))
    if length < 1e-9:
        return elbow
    angle = math.atan2(float(arm @ outward), float(arm @ down))  # 0: straight down, > 0: out
    least = math.radians(SLEEVE_MIN_ANGLE_DEG)
    if angle >= least or angle < -math.pi / 2:  # out far enough, or raised across the head
        return elbow
    return root + length * (math.cos(least) * down + math.sin(least) * outward)


_TEXTURES: dict[tuple, tuple[torch.Tensor, ...]] = {}
_TEXTURES_LOCK = threading.Lock()
_TEXTURES_SIZE = 4


def _texture(garment: torch.Tensor, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """``(alpha (Hg, Wg) on the CPU, premultiplied RGBA (4, Hg, Wg) on device)`` float32 of
    ``garment``, made once per garment (its identity and version) and device: a stream warps the
    same garment every frame (on CUDA this saves moving its texture up each time). On the CPU
    the RGBA is stored channels last (``grid_sample`` reads it in place, the same values; with
    the texture out of cache between frames, the warp's sampling takes half the time)."""
    key = (id(garment), garment._version, str(device))
    with _TEXTURES_LOCK:
        hit = _TEXTURES.get(key)
    if hit is not None and hit[0] is garment:
        return hit[1], hit[2]
    alpha = garment_mask(garment)
    rgba = torch.cat([garment[:3].detach().to("cpu", torch.float32) * alpha, alpha[None]], dim=0)
    if device.type == "cpu":  # channels last: a bilinear tap's four channels in one cache line
        rgba = rgba.permute(1, 2, 0).contiguous().permute(2, 0, 1)  # (4, Hg, Wg) view
    rgba = rgba.to(device)
    with _TEXTURES_LOCK:
        if len(_TEXTURES) >= _TEXTURES_SIZE:
            _TEXTURES.pop(next(iter(_TEXTURES)))  # the oldest
        _TEXTURES[key] = (garment, alpha, rgba)  # the garment held: its id is not reused
    return alpha, rgba


def _tps_kernel(r2: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
    """Thin-plate radial basis ``U = r^2 log r^2`` (0 at r = 0); into ``out`` (same shape as
    ``r2``, not ``r2`` itself) when given, the same values."""
    if out is None:
        return r2 * torch.log(r2.clamp_min(1e-20))
    return torch.clamp_min(r2, 1e-20, out=out).log_().mul_(r2)


def _tps_solve(ctrl: torch.Tensor, values: torch.Tensor, regularization: float) -> torch.Tensor:
    """Coefficients ``(N + 3, 2)`` of the thin-plate spline ``f`` with ``f(ctrl_i) ~ values_i``
    (both ``(N, 2)`` float64 on one device): N kernel weights, then the affine part's constant,
    x and y rows; ``regularization`` on the kernel diagonal (least squares, so a degenerate set
    still solves)."""
    f64, device = torch.float64, ctrl.device
    n = ctrl.shape[0]
    eye = torch.eye(n, dtype=f64, device=device)
    k = _tps_kernel(torch.cdist(ctrl, ctrl) ** 2) + regularization * eye
    p = torch.cat([torch.ones(n, 1, dtype=f64, device=device), ctrl], dim=1)  # (N, 3)
    system = torch.zeros(n + 3, n + 3, dtype=f64, device=device)
    system[:n, :n], system[:n, n:], system[n:, :n] = k, p, p.T
    rhs = torch.zeros(n + 3, 2, dtype=f64, device=device)
    rhs[:n] = values
    return torch.linalg.lstsq(system, rhs).solution


def tps_grid(
    source_points: torch.Tensor,
    target_points: torch.Tensor,
    height: int,
    width: int,
    src_height: int,
    src_width: int,
    *,
    regularization: float = 1e-4,
) -> torch.Tensor:
    """The sampling grid of the thin-plate spline that maps target points onto source points.

    The spline ``f: R^2 -> R^2`` (affine part plus ``sum_i w_i U(|p - t_i|)``, ``U = r^2 log r^2``)
    is fitted in float64 on normalized coordinates (``x / width * 2 - 1`` for the target,
    ``x / src_width * 2 - 1`` for the source) so that ``f(t_i) ~ s_i``, with ``regularization``
    added to the kernel diagonal (0 interpolates exactly; larger is smoother). It is evaluated at
    the output pixel centres.

    Args:
        source_points: ``(N, 2)`` pixels in the source (garment) image, N >= 3, not collinear.
        target_points: ``(N, 2)`` matching pixels in the output image.
        height, width: output size; src_height, src_width: source image size.
        regularization: >= 0.

    Returns:
        ``(1, height, width, 2)`` float32 grid for ``grid_sample(..., align_corners=False)``, on
        ``target_points.device``.
    """
    _check_points(source_points, "source_points")
    _check_points(target_points, "target_points", source_points.shape[0])
    height, width = check_size(height, "height"), check_size(width, "width")
    src_height = check_size(src_height, "src_height")
    src_width = check_size(src_width, "src_width")
    if (
        isinstance(regularization, bool)
        or not isinstance(regularization, (int, float))
        or not math.isfinite(regularization)
        or regularization < 0
    ):
        raise InputError("regularization", "a finite float >= 0", regularization)
    device = target_points.device
    f64 = torch.float64
    t_scale = torch.tensor([2.0 / width, 2.0 / height], dtype=f64, device=device)
    s_scale = torch.tensor([2.0 / src_width, 2.0 / src_height], dtype=f64, device=device)
    t = target_points.to(device, f64) * t_scale - 1.0  # (N, 2)
    s = source_points.to(device, f64) * s_scale - 1.0
    n = t.shape[0]
    coef = _tps_solve(t, s, regularization)  # (N + 3, 2)

    # Evaluate in float32 (coordinates are normalized to [-1, 1]); r^2 is separable in x and y.
    f32 = torch.float32
    tc, coef = t.to(f32), coef.to(f32)
    gx = (torch.arange(width, dtype=f32, device=device) + 0.5) * (2.0 / width) - 1.0  # (W,)
    gy = (torch.arange(height, dtype=f32, device=device) + 0.5) * (2.0 / height) - 1.0  # (H,)
    dx2 = (gx[:, None] - tc[:, 0]) ** 2  # (W, N)
    dy2 = (gy[:, None] - tc[:, 1]) ** 2  # (H, N)
    if device.type == "cpu" and not (torch.is_grad_enabled() and tc.requires_grad):
        # The (H, W, N) temporaries in this thread's scratch buffers (fresh ones would fault
        # their pages in every frame).
        r2 = scratch("tps_r2", (height, width, n), device=device)
        torch.add(dy2[:, None, :], dx2[None, :, :], out=r2)  # (H, W, N)
        u = _tps_kernel(r2, out=scratch("tps_u", (height, width, n), device=device))
    else:
        u = _tps_kernel(dy2[:, None, :] + dx2[None, :, :])  # (H, W, N)
    out = u @ coef[:n]  # (H, W, 2)
    out += coef[n] + gx[None, :, None] * coef[n + 1] + gy[:, None, None] * coef[n + 2]
    return out[None]  # (1, H, W, 2)


def warp_garment(
    garment: torch.Tensor,
    garment_points: torch.Tensor,
    keypoints: torch.Tensor,
    height: int,
    width: int,
    *,
    sleeve_fraction: float = 0.5,
    regularization: float = 1e-4,
    outline: BodyOutline | None = None,
    with_grid: bool = False,
    sleeve_follow: tuple[float, float] | None = None,
) -> tuple[torch.Tensor, ...]:
    """Warp a flat-lay garment onto the body (thin-plate spline, bilinear, zero padding).

    With ``outline`` (:func:`engine.inputs.body_outline.body_outline` of this pose), the control
    points are :func:`fit_points` (seams on the silhouette, sleeves along the arms); without it,
    the keypoint anchors below (the targets the bundled demo generator was trained on).

    The TPS control points are the garment landmarks whose body anchor has confidence > 0
    (:func:`body_anchor_points`); sleeve ends are also dropped when the garment has no sleeve
    (sleeve end within 5% of the shoulder width from its sleeve root).

    Args:
        garment: ``(4, Hg, Wg)`` RGBA (or ``(3, Hg, Wg)``) float in [0, 1].
        garment_points: ``(10, 2)`` landmarks from :func:`garment_keypoints`.
        keypoints: ``(18, 3)`` pose in pixels of the ``height x width`` output.
        height, width: output size.

    Returns:
        ``cloth`` ``(3, height, width)`` float32: RGB multiplied by the warped mask (0 outside the
        garment); ``cloth_mask`` ``(1, height, width)`` float32 in [0, 1]: the warped alpha
        (:func:`garment_mask`). Both all zero when the body has too few keypoints.
        ``with_grid=True`` adds the sampling grid ``(height, width, 2)`` float32 in
        ``grid_sample``'s normalized garment coordinates (align_corners=False), so a paste can
        sample the garment at its own resolution; -2 (outside the garment) when nothing warps.

    ``sleeve_follow`` (with ``outline`` only): the sleeves' follow weights of :func:`fit_points`.
    """
    _check_garment(garment)
    _check_points(garment_points, "garment_points", NUM_GARMENT_POINTS)
    check_keypoints(keypoints, max_ndim=2)
    height, width = check_size(height, "height"), check_size(width, "width")
    device = keypoints.device
    cloth = torch.zeros(3, height, width, device=device)
    cloth_mask = torch.zeros(1, height, width, device=device)
    nothing = (cloth, cloth_mask, torch.full((height, width, 2), -2.0, device=device))
    if not with_grid:
        nothing = nothing[:2]

    alpha, rgba = _texture(garment, device)
    if outline is not None:
        if not isinstance(outline, BodyOutline):
            raise InputError("outline", "None or a BodyOutline", outline)
        src, tgt = fit_points(garment_points, keypoints, outline, height, garment_alpha=alpha,
                              sleeve_follow=sleeve_follow)  # fmt: skip
    else:
        targets, conf = body_anchor_points(
            host_keypoints(keypoints), height=height, sleeve_fraction=sleeve_fraction
        )
        use = conf > 0
        gp = garment_points.detach().to("cpu", torch.float32)
        for side, sleeve in enumerate(_SLEEVES):
            if not _has_sleeve(gp, side):
                use[sleeve] = False
        src, tgt = gp[use], targets[use]
    # Host points (N, 2); the affine part needs 3 non-collinear target points.
    if src.shape[0] < 3:
        return nothing
    centred = tgt - tgt.mean(dim=0)
    if float(torch.linalg.matrix_rank(centred.to(torch.float64), atol=1e-3)) < 2:
        return nothing
    src, tgt = to_device(src, device), to_device(tgt, device)

    hg, wg = garment.shape[1:]
    grid = tps_grid(src, tgt, height, width, hg, wg, regularization=regularization)
    warped = F.grid_sample(
        rgba[None], grid, mode="bilinear", padding_mode="zeros", align_corners=False
    )[0]  # (4, H, W)
    if with_grid:
        return warped[:3].clamp(0.0, 1.0), warped[3:].clamp(0.0, 1.0), grid[0]
    return warped[:3].clamp(0.0, 1.0), warped[3:].clamp(0.0, 1.0)
