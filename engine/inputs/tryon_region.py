"""The try-on region (the upper-body garment area to regenerate) and the background input ``A``.

Body geometry, shared with :mod:`engine.inputs.garment` (:func:`body_frame`). All lengths are
relative to the shoulder width ``sw`` (distance between the two shoulder keypoints):

* **Shoulders.** Both present: used as they are. One missing: the present one is point-mirrored
  through the neck (``missing = 2 * neck - present``). Both missing, or one missing with no neck,
  or ``sw < 2 px``: no person (the region is all zeros).
* **Neck.** The neck keypoint, or the shoulders' midpoint when it is missing.
* **Body axis** (unit vector ``down``): from the shoulders' midpoint towards the hips' midpoint
  when both hips are present, otherwise perpendicular to the shoulder line, pointing down the
  image (people are assumed upright).
* **Hips.** Both present: used as they are. One present: the other is that hip moved along the
  shoulder line by ``HIP_WIDTH_RATIO * sw``. Both missing (webcam framing): the torso is extended
  from the shoulders along ``down`` by ``min(TORSO_LENGTH_RATIO * sw, distance to the frame
  bottom)`` (so it stops at the frame bottom or 1.6 shoulder widths below the shoulders, whichever
  comes first), keeping the shoulders' width.

The region is the union of (in pixels, tested at pixel centres, see :mod:`engine.inputs.pose_maps`):

* the torso polygon (right shoulder, left shoulder, left hip, right hip; even-odd rule) dilated by
  ``dilate * sw`` (default 0.1 shoulder widths);
* the upper arms: capsules shoulder -> elbow of radius ``(ARM_RADIUS_RATIO + dilate) * sw`` (only
  when the elbow is present; forearms are never part of the region);
* the neck base: a disk around the neck of radius ``(NECK_RADIUS_RATIO + dilate) * sw``.

The mask is binary (0.0 or 1.0) float32.

**Devices.** The per-pixel work (region, background, paste mask, shading) runs on the device of
its inputs; decisions that depend on keypoint values (is there a person, which box to rasterize,
where the face is) are taken on the host, from a host copy of the keypoints
(:mod:`engine.inputs.keypoint_mirror`: the keypoints come from the host detector, so
a device session registers the array it uploaded), so building the inputs does not wait for the
device. Small host-made tensors reach the device by :func:`to_device` (pinned, non-blocking).
"""

from __future__ import annotations

import math
import threading
from typing import NamedTuple

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from engine.errors import InputError
from engine.inputs.keypoint_mirror import host_keypoints, is_mirrored, to_device
from engine.keypoints import KEYPOINT_INDEX, check_keypoints, check_size, present_keypoints
from kernels import gaussian_blur, rgb_to_ycbcr, skin_mask

__all__ = [
    "ARM_RADIUS_RATIO",
    "HIP_WIDTH_RATIO",
    "NECK_RADIUS_RATIO",
    "TORSO_LENGTH_RATIO",
    "BodyFrame",
    "body_frame",
    "clothing_shading",
    "host_body_frame",
    "make_background",
    "paste_mask",
    "skin_like",
    "tryon_region",
]

TORSO_LENGTH_RATIO = 1.6
HIP_WIDTH_RATIO = 0.8
ARM_RADIUS_RATIO = 0.15
NECK_RADIUS_RATIO = 0.2
MIN_SHOULDER_WIDTH = 2.0

_NECK = KEYPOINT_INDEX["neck"]
_RS, _RE = KEYPOINT_INDEX["right_shoulder"], KEYPOINT_INDEX["right_elbow"]
_LS, _LE = KEYPOINT_INDEX["left_shoulder"], KEYPOINT_INDEX["left_elbow"]
_RH, _LH = KEYPOINT_INDEX["right_hip"], KEYPOINT_INDEX["left_hip"]


class BodyFrame(NamedTuple):
    """Upper-body geometry per pose; every tensor has a leading batch dim ``B``.

    Points are ``(B, 2)`` float32 pixels; flags are ``(B,)`` bool; ``conf`` fields are the
    keypoint confidences (0 where absent) with derived points at half their sources' confidence.
    """

    valid: torch.Tensor  # (B,) a person was found
    neck: torch.Tensor
    r_shoulder: torch.Tensor
    l_shoulder: torch.Tensor
    r_hip: torch.Tensor
    l_hip: torch.Tensor
    r_elbow: torch.Tensor
    l_elbow: torch.Tensor
    shoulder_width: torch.Tensor  # (B,)
    down: torch.Tensor  # (B, 2) unit body axis
    across: torch.Tensor  # (B, 2) unit vector right shoulder -> left shoulder
    conf_shoulder: torch.Tensor  # (B, 2) right, left
    conf_hip: torch.Tensor  # (B, 2)
    conf_elbow: torch.Tensor  # (B, 2)
    conf_neck: torch.Tensor  # (B,)


class _RecentFrames(threading.local):
    """The last few :func:`body_frame` results of this thread, by keypoint values and height:
    one frame's inputs ask for the same pose's geometry five times (region, fit, outline, paste
    mask), and each computation is some sixty small tensor ops."""

    SIZE = 4

    def __init__(self) -> None:
        self.entries: dict[tuple, BodyFrame] = {}


_RECENT = _RecentFrames()


def body_frame(keypoints: torch.Tensor, height: int) -> BodyFrame:
    """The geometry of the module docstring for ``(B, 18, 3)`` keypoints (no validation).

    Every call returns tensors of its own on ``keypoints.device``. The geometry is computed on
    the CPU from the keypoints' host values (:func:`host_keypoints`) and remembered by value;
    on another device it arrives there as one small non-blocking copy (nothing waits for the
    device). Device keypoints with no host copy registered (or needing gradients) are computed
    on their device, uncached."""
    if keypoints.requires_grad:
        return _body_frame(keypoints, height)
    device = keypoints.device
    if device.type != "cpu" and not is_mirrored(keypoints):
        return _body_frame(keypoints, height)
    frame = host_body_frame(host_keypoints(keypoints), height)
    if device.type == "cpu":
        return BodyFrame(*(t.clone() for t in frame))
    return _moved(frame, device)


def host_body_frame(keypoints: torch.Tensor, height: int) -> BodyFrame:
    """:func:`body_frame` of host keypoints, shared: the remembered tensors themselves.

    For the inputs' own reads of the geometry (a frame asks for it some seven times; a copy of
    its fifteen fields each time was a tenth of a millisecond). Never write into the result.

    Args:
        keypoints: ``(B, 18, 3)`` CPU floating keypoints in pixels, not needing gradients.
        height: the image height (as for :func:`body_frame`).

    Returns:
        the :class:`BodyFrame` of CPU tensors remembered for these values and this height.
    """
    kp = keypoints.detach().to(torch.float32).contiguous()
    key = (tuple(kp.shape), float(height), kp.numpy().tobytes())
    entries = _RECENT.entries
    frame = entries.get(key)
    if frame is None:
        frame = _body_frame(kp, height)
        if len(entries) >= _RecentFrames.SIZE:
            entries.pop(next(iter(entries)))  # the oldest
        entries[key] = frame
    return frame


def _moved(frame: BodyFrame, device: torch.device) -> BodyFrame:
    """``frame`` (CPU) on ``device`` in one copy: every field packed into one float32 vector."""
    flat = torch.cat([t.reshape(-1).to(torch.float32) for t in frame])
    moved = to_device(flat, device)
    if moved is flat:
        moved = flat.clone()
    fields, start = [], 0
    for t in frame:
        part = moved[start : start + t.numel()].view(t.shape)
        start += t.numel()
        fields.append(part > 0.5 if t.dtype == torch.bool else part)
    return BodyFrame(*fields)


def _body_frame(keypoints: torch.Tensor, height: int) -> BodyFrame:
    kp = keypoints.to(torch.float32)
    present = present_keypoints(kp)  # (B, 18)
    conf = torch.where(present, kp[..., 2], torch.zeros_like(kp[..., 2]))
    xy = torch.where(present[..., None], kp[..., :2], torch.zeros_like(kp[..., :2]))
    p = present

    def pick(mask: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return torch.where(mask[:, None], a, b)

    rs, ls, neck_kp = xy[:, _RS], xy[:, _LS], xy[:, _NECK]
    has_rs, has_ls, has_neck = p[:, _RS], p[:, _LS], p[:, _NECK]
    both = has_rs & has_ls
    # Neck: keypoint, else shoulders' midpoint (only meaningful when both shoulders exist).
    neck = pick(has_neck, neck_kp, 0.5 * (rs + ls))
    # Mirror a missing shoulder through the neck keypoint.
    rs_full = pick(has_rs, rs, 2 * neck_kp - ls)
    ls_full = pick(has_ls, ls, 2 * neck_kp - rs)
    valid = both | (has_neck & (has_rs | has_ls))
    across_vec = ls_full - rs_full
    sw = across_vec.norm(dim=-1)
    valid = valid & (sw >= MIN_SHOULDER_WIDTH)
    across = across_vec / sw.clamp_min(1e-6)[:, None]

    mid_s = 0.5 * (rs_full + ls_full)
    rh, lh = xy[:, _RH], xy[:, _LH]
    has_rh, has_lh = p[:, _RH], p[:, _LH]
    both_hips = has_rh & has_lh
    # Down axis: towards the hips' midpoint, else perpendicular to the shoulders, pointing down.
    perp = torch.stack([-across[:, 1], across[:, 0]], dim=-1)
    perp = torch.where(perp[:, 1:2] < 0, -perp, perp)
    to_hips = 0.5 * (rh + lh) - mid_s
    to_hips_len = to_hips.norm(dim=-1)
    use_hips = both_hips & (to_hips_len > 1e-3)
    down = pick(use_hips, to_hips / to_hips_len.clamp_min(1e-6)[:, None], perp)

    hip_offset = HIP_WIDTH_RATIO * sw[:, None] * across
    # No hips: extend by min(1.6 sw, distance to the frame bottom along `down`).
    dy = down[:, 1]
    to_bottom = torch.where(
        dy > 1e-6, (float(height) - mid_s[:, 1]) / dy.clamp_min(1e-6), torch.full_like(dy, 1e9)
    ).clamp_min(0.0)
    length = torch.minimum(TORSO_LENGTH_RATIO * sw, to_bottom)[:, None]
    rh_none, lh_none = rs_full + length * down, ls_full + length * down
    rh_full = torch.where(
        has_rh[:, None], rh, torch.where(has_lh[:, None], lh - hip_offset, rh_none)
    )
    lh_full = torch.where(
        has_lh[:, None], lh, torch.where(has_rh[:, None], rh + hip_offset, lh_none)
    )

    c = conf
    cs = torch.stack(
        [
            torch.where(has_rs, c[:, _RS], 0.5 * torch.minimum(c[:, _LS], c[:, _NECK])),
            torch.where(has_ls, c[:, _LS], 0.5 * torch.minimum(c[:, _RS], c[:, _NECK])),
        ],
        dim=-1,
    )
    base = 0.5 * cs.min(dim=-1).values
    ch = torch.stack(
        [
            torch.where(has_rh, c[:, _RH], torch.where(has_lh, 0.5 * c[:, _LH], base)),
            torch.where(has_lh, c[:, _LH], torch.where(has_rh, 0.5 * c[:, _RH], base)),
        ],
        dim=-1,
    )
    ce = torch.stack([torch.minimum(c[:, _RE], cs[:, 0]), torch.minimum(c[:, _LE], cs[:, 1])], -1)
    cn = torch.where(has_neck, c[:, _NECK], 0.5 * cs.min(dim=-1).values)
    v = valid.to(torch.float32)
    return BodyFrame(
        valid=valid,
        neck=neck,
        r_shoulder=rs_full,
        l_shoulder=ls_full,
        r_hip=rh_full,
        l_hip=lh_full,
        r_elbow=xy[:, _RE],
        l_elbow=xy[:, _LE],
        shoulder_width=sw,
        down=down,
        across=across,
        conf_shoulder=cs * v[:, None],
        conf_hip=ch * v[:, None],
        conf_elbow=ce * v[:, None],
        conf_neck=cn * v,
    )


def _segment_dist2(xs: torch.Tensor, ys: torch.Tensor, a: torch.Tensor, b: torch.Tensor):
    """Squared distance of pixel centres to segments ``a -> b`` ``(B, S, 2)``: ``(B, S, H, W)``."""
    ab = b - a
    len2 = (ab * ab).sum(-1).clamp_min(1e-12)[..., None, None]
    apx = (xs - a[..., 0:1])[..., None, :]  # (B, S, 1, W)
    apy = (ys - a[..., 1:2])[..., :, None]  # (B, S, H, 1)
    abx, aby = ab[..., 0, None, None], ab[..., 1, None, None]
    t = ((apx * abx + apy * aby) / len2).clamp(0.0, 1.0)
    dx, dy = apx - t * abx, apy - t * aby
    return dx * dx + dy * dy


def _inside_polygon(xs: torch.Tensor, ys: torch.Tensor, poly: torch.Tensor) -> torch.Tensor:
    """Even-odd point-in-polygon for ``(B, N, 2)`` vertices at pixel centres: ``(B, H, W)``."""
    a, b = poly, torch.roll(poly, -1, dims=1)
    ax, ay = a[..., 0, None, None], a[..., 1, None, None]  # (B, N, 1, 1)
    bx, by = b[..., 0, None, None], b[..., 1, None, None]
    y = ys[:, None]  # (H, 1)
    straddles = (ay > y) != (by > y)  # (B, N, H, 1)
    denom = torch.where(by == ay, torch.ones_like(by), by - ay)
    x_cross = ax + (y - ay) * (bx - ax) / denom  # (B, N, H, 1)
    crossings = straddles & (xs < x_cross)  # (B, N, H, W)
    return crossings.sum(dim=1) % 2 == 1


def _region_shapes(bf: BodyFrame, ratios: torch.Tensor):
    """The region's shapes on ``bf``'s device: torso polygon ``(B, 4, 2)``; segments ``a -> b``
    ``(B, 7, 2)`` (4 torso edges, 2 upper arms, the neck as a point), their radii ``(B, 7)``
    (``ratios`` ``(7,)`` times the shoulder width) and which are used ``(B, 7)`` bool."""
    poly = torch.stack([bf.r_shoulder, bf.l_shoulder, bf.l_hip, bf.r_hip], dim=1)  # (B, 4, 2)
    a = torch.cat([poly, bf.r_shoulder[:, None], bf.l_shoulder[:, None], bf.neck[:, None]], 1)
    b = torch.cat([torch.roll(poly, -1, dims=1), bf.r_elbow[:, None], bf.l_elbow[:, None]], 1)
    b = torch.cat([b, bf.neck[:, None]], 1)  # (B, 7, 2)
    radius = ratios * bf.shoulder_width[:, None]  # (B, 7)
    use = torch.ones_like(radius, dtype=torch.bool)
    use[:, 4:6] = bf.conf_elbow > 0
    return poly, a, b, radius, use


def _dilated_binary(mask: torch.Tensor, px: int) -> torch.Tensor:
    """``mask > 0.5`` as 0.0 / 1.0, dilated by a ``(2 px + 1)`` square: ``(N, 1, H, W)`` float32
    in and out (``max_pool2d`` with ``px`` of padding, which never wins). On the CPU the same
    values come from OpenCV's ``dilate`` on uint8 (a tenth of ``max_pool2d``'s time there)."""
    inside = mask > 0.5
    if px <= 0:
        return inside.to(torch.float32)
    k = 2 * px + 1
    if mask.device.type != "cpu":
        return F.max_pool2d(inside.to(torch.float32), k, stride=1, padding=px)
    h, w = mask.shape[-2:]
    images = inside.reshape(-1, h, w).contiguous().numpy().view(np.uint8)  # (N, H, W) 0 / 1
    kernel = np.ones((k, k), np.uint8)
    out = np.empty(images.shape, np.float32)
    for i, image in enumerate(images):
        out[i] = cv2.dilate(image, kernel)  # the border (constant) never wins, as max_pool2d's
    return torch.from_numpy(out).reshape(mask.shape)


def _check_dilate(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InputError(name, "a finite float >= 0", value)
    if value < 0:
        raise InputError(name, "a finite float >= 0", value)
    return float(value)


def tryon_region(
    keypoints: torch.Tensor,
    height: int,
    width: int,
    *,
    person_mask: torch.Tensor | None = None,
    dilate: float = 0.1,
    mask_dilate_px: int | None = None,
) -> torch.Tensor:
    """The binary mask of the upper-body garment region (see the module docstring).

    Args:
        keypoints: ``(18, 3)`` or ``(T, 18, 3)`` floating pose(s) in pixels of the image.
        height, width: image size (positive ints).
        person_mask: optional ``(H, W)`` (or ``(T, H, W)``) person mask in [0, 1]; the region is
            intersected with it, binarized at 0.5 and dilated by ``mask_dilate_px`` pixels.
        dilate: dilation of the torso, upper arms and neck, in shoulder widths (>= 0).
        mask_dilate_px: dilation of ``person_mask`` in pixels; default
            ``max(1, round(height / 64))``.

    Returns:
        ``(height, width)`` (or ``(T, height, width)``) float32 of 0.0 / 1.0 on
        ``keypoints.device``; all zeros where no person is found.
    """
    check_keypoints(keypoints, max_ndim=3)
    height = check_size(height, "height")
    width = check_size(width, "width")
    dilate = _check_dilate(dilate, "dilate")
    batched = keypoints.ndim == 3
    n = keypoints.shape[0] if batched else 1
    if person_mask is not None:
        ok_shapes = [(height, width), (n, height, width), (n, 1, height, width)]
        if not isinstance(person_mask, torch.Tensor) or tuple(person_mask.shape) not in ok_shapes:
            expected = f"None or a tensor of shape {ok_shapes[0]} (or {ok_shapes[1]})"
            raise InputError("person_mask", expected, person_mask)
    if mask_dilate_px is None:
        mask_dilate_px = max(1, round(height / 64))
    elif (
        isinstance(mask_dilate_px, bool)
        or not isinstance(mask_dilate_px, int)
        or mask_dilate_px < 0
    ):
        raise InputError("mask_dilate_px", "an int >= 0 or None", mask_dilate_px)

    kp = keypoints.reshape(-1, 18, 3)
    on_host = kp.device.type == "cpu" and not kp.requires_grad
    bf = host_body_frame(kp, height) if on_host else body_frame(kp, height)
    device = kp.device
    xs = torch.arange(width, device=device, dtype=torch.float32) + 0.5
    ys = torch.arange(height, device=device, dtype=torch.float32) + 0.5
    ratios = torch.tensor(
        [dilate] * 4 + [ARM_RADIUS_RATIO + dilate] * 2 + [NECK_RADIUS_RATIO + dilate]
    )
    poly, a, b, radius, use = _region_shapes(bf, to_device(ratios, device))
    # Evaluate only inside each pose's bounding box (all shapes plus their radii): one small
    # vectorized block per pose. The boxes come from the host geometry (the same values), so
    # nothing waits for the device.
    host = bf if device.type == "cpu" else body_frame(host_keypoints(kp), height)
    h_poly, h_a, h_b, h_radius, h_use = (
        (poly, a, b, radius, use) if host is bf else _region_shapes(host, ratios)
    )
    r_max = (h_radius * h_use).amax(dim=1)  # (B,)
    ends = torch.cat([h_a, h_b], dim=1)  # (B, 14, 2)
    ends = torch.where(h_use.repeat(1, 2)[..., None], ends, h_a[:, :1].expand_as(ends))
    lo = (ends.amin(dim=1) - r_max[:, None]).clamp(-1.0, 1e7).floor().to(torch.int64)
    hi = (ends.amax(dim=1) + r_max[:, None]).clamp(-1.0, 1e7).ceil().to(torch.int64) + 1
    lo_x, lo_y = lo[:, 0].clamp(0, width), lo[:, 1].clamp(0, height)
    hi_x, hi_y = hi[:, 0].clamp(0, width), hi[:, 1].clamp(0, height)
    boxes = torch.stack([lo_x, hi_x, lo_y, hi_y], dim=-1).tolist()
    valid = host.valid.tolist()
    out = torch.zeros(kp.shape[0], height, width, device=device)
    for i, (x0, x1, y0, y1) in enumerate(boxes):
        if not valid[i] or x1 <= x0 or y1 <= y0:
            continue
        cx, cy = xs[x0:x1], ys[y0:y1]
        inside = _inside_polygon(cx, cy, poly[i : i + 1])  # (1, h, w)
        d2 = _segment_dist2(cx, cy, a[i : i + 1], b[i : i + 1])  # (1, 7, h, w)
        r2 = (radius[i] * radius[i])[:, None, None]
        near = ((d2[0] <= r2) & use[i, :, None, None]).any(dim=0)
        out[i, y0:y1, x0:x1] = (inside[0] | near).to(torch.float32)

    if person_mask is not None:
        pm = person_mask.to(device=device, dtype=torch.float32).reshape(-1, 1, height, width)
        out = out * _dilated_binary(pm, mask_dilate_px)[:, 0]
    return out if batched else out[0]


def make_background(
    frame: torch.Tensor, region: torch.Tensor, *, fill: float = 0.5
) -> tuple[torch.Tensor, torch.Tensor]:
    """The background input ``A`` and the background mask ``M_a``.

    Args:
        frame: ``(3, H, W)`` or ``(T, 3, H, W)`` floating image(s) in [0, 1].
        region: try-on region ``(H, W)``, ``(1, H, W)``, ``(T, H, W)`` or ``(T, 1, H, W)``; a
            pixel is inside where ``region > 0.5``. A single region applies to every frame.
        fill: the constant written into the region (finite float).

    Returns:
        ``background``: ``frame`` (same dtype) with the region pixels set to ``fill``;
        ``background_mask``: ``(1, H, W)`` or ``(T, 1, H, W)`` float32, 1 = keep the background
        pixel, 0 = inside the try-on region (exactly the complement of the region).
    """
    expected_frame = "a floating tensor of shape (3, H, W) or (T, 3, H, W)"
    if (
        not isinstance(frame, torch.Tensor)
        or not frame.is_floating_point()
        or frame.ndim not in (3, 4)
        or frame.shape[-3] != 3
    ):
        raise InputError("frame", expected_frame, frame)
    h, w = frame.shape[-2:]
    t = frame.shape[0] if frame.ndim == 4 else 1
    shapes = [(h, w), (1, h, w), (1, 1, h, w)]
    if frame.ndim == 4:
        shapes += [(t, h, w), (t, 1, h, w)]
    if not isinstance(region, torch.Tensor) or tuple(region.shape) not in shapes:
        raise InputError("region", f"a tensor of shape one of {shapes}", region)
    if isinstance(fill, bool) or not isinstance(fill, (int, float)) or not math.isfinite(fill):
        raise InputError("fill", "a finite float", fill)

    inside = region.to(frame.device).reshape(-1, 1, h, w) > 0.5  # (1 or T, 1, H, W)
    if frame.ndim == 3:
        inside = inside[0]  # (1, H, W)
    background = frame.masked_fill(inside, float(fill))
    mask = (~inside).to(torch.float32).expand(*frame.shape[:-3], 1, h, w).contiguous()
    return background, mask


# --------------------------------------------------------------------------------------------
# The paste's masks: where the new garment replaces the frame, and the clothing's shading.

COLLAR_RATIO = 0.1
"""The collar line lies this many shoulder widths above the neck keypoint (along the body axis);
the paste never covers anything above it (head, hair, neck)."""

SKIN_SPREAD = 3.0
SKIN_MIN_AXIS, SKIN_MAX_AXIS = 6.0, 25.0
HAND_EXTENT = 0.45
"""The hand: the forearm segment continued past the wrist by this fraction of its length."""

_FACE = [KEYPOINT_INDEX[n] for n in ("nose", "right_eye", "left_eye", "right_ear", "left_ear")]
_RW, _LW = KEYPOINT_INDEX["right_wrist"], KEYPOINT_INDEX["left_wrist"]


def skin_like(frame: torch.Tensor, keypoints: torch.Tensor) -> torch.Tensor:
    """``(1, H, W)`` bool on ``frame.device``: pixels whose skin colour matches the person's face.

    Calibration per person: the pixels within ``r`` of the nose and eyes (``r`` = 0.6 of the
    eye distance, else 0.06 of the shoulder width; at least 2 px; ears only when no nose or
    eye is found) give the median ``(Cb, Cr)`` (0..255 scale) and their spread ``1.4826 * MAD``;
    a pixel is skin when inside the ellipse centred there with semi-axes ``SKIN_SPREAD *``
    spread, clamped to ``[SKIN_MIN_AXIS, SKIN_MAX_AXIS]`` (:func:`kernels.skin_mask`). Without a
    face (fewer than 8 samples), the generic Hsu et al. ellipse (the kernel's defaults).

    Args:
        frame: ``(3, H, W)`` float RGB in [0, 1], any device.
        keypoints: ``(18, 3)`` pose in pixels (any device; its host values are read through
            :func:`host_keypoints`).

    Which pixels calibrate is keypoint geometry, decided on the host; the pixels' colours stay
    on the device, and only the four calibration numbers (median and spread of Cb and Cr) come
    back to the host, as one small copy, when a face is found.
    """
    _, h, w = frame.shape
    device = frame.device
    kp = host_keypoints(keypoints)
    present = present_keypoints(kp)
    bf = host_body_frame(kp[None], h)
    x = frame[None].to(torch.float32).clamp(0.0, 1.0)
    eyes = [KEYPOINT_INDEX["right_eye"], KEYPOINT_INDEX["left_eye"]]
    if bool(present[eyes].all()):
        r = 0.6 * float((kp[eyes[0], :2] - kp[eyes[1], :2]).norm())
    else:
        r = 0.06 * float(bf.shoulder_width[0])
    r = max(r, 2.0)
    centres = [i for i in _FACE[:3] if bool(present[i])] or [i for i in _FACE if bool(present[i])]
    if not centres:
        return skin_mask(x)[0]
    ys = torch.arange(h, dtype=torch.float32)[:, None] + 0.5
    xs = torch.arange(w, dtype=torch.float32)[None, :] + 0.5
    near = torch.zeros(h, w, dtype=torch.bool)  # host: keypoint geometry only
    for i in centres:
        near |= (xs - kp[i, 0]) ** 2 + (ys - kp[i, 1]) ** 2 <= r * r
    if int(near.sum()) < 8:
        return skin_mask(x)[0]
    index = to_device(near.reshape(-1).nonzero()[:, 0], device)  # (N,) row-major, as near's
    ycc = rgb_to_ycbcr(x)[0] * 255.0  # (3, H, W) on the device
    chroma = ycc[1:].reshape(2, -1).index_select(1, index)  # (2, N): Cb, Cr of the face
    median = chroma.median(dim=1).values  # (2,)
    mad = (chroma - median[:, None]).abs().median(dim=1).values
    cb0, cr0, mad_cb, mad_cr = torch.cat([median, mad]).tolist()  # the one copy back
    spread = [1.4826 * mad_cb, 1.4826 * mad_cr]
    axes = tuple(min(max(SKIN_SPREAD * sp, SKIN_MIN_AXIS), SKIN_MAX_AXIS) for sp in spread)
    return skin_mask(x, center=(cb0, cr0), axes=axes, angle=0.0, offset=(0.0, 0.0))[0]


def _touches(a: torch.Tensor, b: torch.Tensor, radius: float, height: int, width: int) -> bool:
    """Whether the capsule ``a -> b`` (radius px) may contain a pixel centre of the image: its
    bounding box meets the centres' rectangle (a host test on host points; may say yes for a
    capsule that misses, never no for one that hits)."""
    lo, hi = torch.minimum(a, b) - radius, torch.maximum(a, b) + radius
    return bool(hi[0] >= 0.5 and lo[0] <= width - 0.5 and hi[1] >= 0.5 and lo[1] <= height - 0.5)


def paste_mask(
    frame: torch.Tensor,
    keypoints: torch.Tensor,
    cloth_mask: torch.Tensor,
    *,
    person_mask: torch.Tensor | None = None,
    arm_width: tuple[float, float] | None = None,
) -> torch.Tensor:
    """Where the new garment replaces the frame: ``(1, H, W)`` float32 in [0, 1] on
    ``frame.device``.

    ``cloth_mask`` (the warped garment's alpha) over the body (``person_mask`` > 0.5, dilated by
    ``max(1, H // 64)`` px; without a mask, the whole frame), minus:

    * forearms and hands in front: pixels within ``0.6 * arm_width`` (at least
      ``ARM_RADIUS_RATIO * sw``) of the segment elbow -> wrist continued by
      :data:`HAND_EXTENT` (both ends found) that are skin-coloured (:func:`skin_like`);
    * everything above the collar line (:data:`COLLAR_RATIO` ``sw`` above the neck keypoint,
      perpendicular to the body axis): head, hair and neck never change.

    So for a long-sleeved person trying on a T-shirt, their own sleeves stay visible below the
    new short sleeve (outside the warped alpha nothing is pasted); a clothed forearm lying in
    front of the torso is not skin and is painted over by the new garment.

    Args:
        frame: ``(3, H, W)`` float RGB in [0, 1], any device (the masks are built there).
        keypoints: ``(18, 3)`` pose in pixels; its values are read on the host
            (:func:`host_keypoints`).
        cloth_mask: ``(1, H, W)`` (or ``(H, W)``) warped alpha, moved to ``frame.device``.
        person_mask: ``None`` or ``(H, W)`` person mask, moved to ``frame.device``.
        arm_width: the (right, left) upper arm widths in pixels, or ``None``.
    """
    _, h, w = frame.shape
    device = frame.device
    kp = host_keypoints(keypoints)
    alpha = cloth_mask.detach().to(device, torch.float32).reshape(1, h, w).clamp(0.0, 1.0)
    bf = host_body_frame(kp[None], h)  # host geometry
    if not bool(bf.valid[0]):
        return torch.zeros(1, h, w, device=device)
    out = alpha.clone()
    if person_mask is not None:
        pm = person_mask.detach().to(device, torch.float32).reshape(1, 1, h, w)
        out = out * _dilated_binary(pm, max(1, h // 64))[0]
    sw = float(bf.shoulder_width[0])
    ys = torch.arange(h, dtype=torch.float32, device=device) + 0.5
    xs = torch.arange(w, dtype=torch.float32, device=device) + 0.5
    d, neck = bf.down[0], bf.neck[0]  # host; their 0-d elements act as scalars on any device
    along = (xs[None, :] - neck[0]) * d[0] + (ys[:, None] - neck[1]) * d[1]
    out = out * (along >= -COLLAR_RATIO * sw).float()[None]
    present = present_keypoints(kp)
    widths = arm_width if arm_width is not None else (2 * ARM_RADIUS_RATIO * sw,) * 2
    segments, radii = [], []
    for side, (e, wr) in enumerate(((_RE, _RW), (_LE, _LW))):
        if not (bool(present[e]) and bool(present[wr])):
            continue
        a, b = kp[e, :2], kp[wr, :2]
        b = b + HAND_EXTENT * (b - a)
        radius = max(0.6 * float(widths[side]), ARM_RADIUS_RATIO * sw)
        if _touches(a, b, radius, h, w):
            segments.append(torch.stack([a, b]))
            radii.append(radius)
    if segments:
        ends = to_device(torch.stack(segments), device)  # (S, 2, 2) forearm segments, one copy
        forearm = torch.zeros(h, w, dtype=torch.bool, device=device)
        for i, radius in enumerate(radii):
            d2 = _segment_dist2(xs, ys, ends[i : i + 1, None, 0], ends[i : i + 1, None, 1])[0, 0]
            forearm |= d2 <= radius * radius
        skin = skin_like(frame, kp)[0]
        out = out * (~(forearm & skin)).float()[None]
    return out


def clothing_shading(
    frame: torch.Tensor,
    area: torch.Tensor,
    *,
    strength: float = 1.0,
    fine_sigma: float | None = None,
    coarse_sigma: float | None = None,
    limits: tuple[float, float] = (0.6, 1.4),
) -> torch.Tensor:
    """The original clothing's shading: ``(1, H, W)`` float32 on ``frame.device``, 1.0 outside
    ``area``.

    With ``Y`` the luminance (BT.601) and ``A = area > 0.5``, both blurs normalized by the
    blurred area (so the garment's edge does not darken)::

        fine   = G_fine * (Y A) / G_fine * A        (removes texture, keeps folds)
        coarse = G_coarse * (Y A) / G_coarse * A    (the clothing's mean brightness there)
        shading = clip(1 + strength * (fine / coarse - 1), *limits)   inside A

    ``kernels.gaussian_blur``; ``fine_sigma`` defaults to ``H / 96`` px, ``coarse_sigma`` to
    ``H / 8`` px. ``strength`` 0 gives all ones (no shading), 1 the measured ratio; the paste
    multiplies the new garment by it.
    """
    _, h, w = frame.shape
    if isinstance(strength, bool) or not isinstance(strength, (int, float)):
        raise InputError("strength", "a finite float >= 0", strength)
    if not math.isfinite(strength) or strength < 0:
        raise InputError("strength", "a finite float >= 0", strength)
    if strength == 0:
        return torch.ones(1, h, w, device=frame.device)
    x = frame.detach().to(torch.float32)
    y = 0.299 * x[0] + 0.587 * x[1] + 0.114 * x[2]
    # An empty area needs no test (which would wait for the device): every pixel is then
    # outside it and gets the 1.0 below.
    a = (area.detach().to(frame.device, torch.float32).reshape(h, w) > 0.5).float()
    stack = torch.stack([y * a, a])[None].contiguous()  # (1, 2, H, W)

    def blur(sigma: float) -> torch.Tensor:
        k = 2 * math.ceil(3 * sigma) + 1
        k = max(1, min(k, 2 * ((min(h, w) - 1) // 2) + 1))
        out = gaussian_blur(stack, k, sigma)[0]
        return out[0] / out[1].clamp_min(1e-4)

    fine = blur(fine_sigma if fine_sigma is not None else max(h / 96, 0.5))
    coarse = blur(coarse_sigma if coarse_sigma is not None else max(h / 8, 1.0))
    ratio = fine / coarse.clamp_min(1e-4)
    shading = (1.0 + strength * (ratio - 1.0)).clamp(*limits)
    return torch.where(a > 0, shading, torch.ones_like(shading))[None]
