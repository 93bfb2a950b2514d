"""The body outline and the silhouette fit of the garment, on synthetic people with known masks."""

import math

import numpy as np
import pytest
import torch

from engine.inputs.body_outline import LINES, body_outline
from engine.inputs.frame_inputs import frame_inputs
from engine.inputs.garment import fit_points, garment_keypoints, garment_mask, warp_garment
from engine.training.synthetic import make_clip

H, W = 256, 192
# (seed, kind) of synthetic clips, frame 0: arms beside the torso or on the hips.
SLEEVED = [3, 7, 10]
LONG = 0  # long sleeves, the right arm held out
CROSSED_SHORT = 11  # a t-shirt, forearms crossed in front of the torso


def _clip(seed):
    return make_clip(seed, frames=1, height=H, width=W)


def _frame_axes(kp):
    rs, ls = kp[2, :2].double().numpy(), kp[5, :2].double().numpy()
    sw = float(np.linalg.norm(ls - rs))
    u = (ls - rs) / sw
    d = np.array([-u[1], u[0]])
    return (rs + ls) / 2, u, d if d[1] > 0 else -d, sw


def _capsule(a, b, r):
    ys, xs = np.mgrid[0:H, 0:W] + 0.5
    p = np.stack([xs, ys], -1)
    ab = b - a
    t = np.clip(((p - a) @ ab) / max(ab @ ab, 1e-9), 0, 1)
    return np.linalg.norm(p - (a + t[..., None] * ab), axis=-1) <= r


def _torso_run(clip, t_ratio, outer=0.0):
    """Ground truth from the clean skeleton: the person mask's pixels on the line ``t_ratio`` sw
    below the shoulders (perpendicular to the shoulder line), outside both arms (capsules of
    0.15 sw), in the run containing the body axis, farther than ``outer`` sw from the axis (to
    leave out a neckline). Returns the pixel (x, y) samples."""
    kp = clip.clean_keypoints[0]
    m, u, d, sw = _frame_axes(kp)
    k = kp[:, :2].double().numpy()
    arms = np.zeros((H, W), bool)
    for s, e, w in ((2, 3, 4), (5, 6, 7)):
        arms |= _capsule(k[s], k[e], 0.15 * sw) | _capsule(k[e], k[w], 0.15 * sw)
    person = clip.person_mask[0, 0].numpy() > 0.5
    body = person & ~arms
    if t_ratio == "hip":
        t_ratio = min(float((0.5 * (k[8] + k[11]) - m) @ d) / sw, (H - 2 - m[1]) / d[1] / sw)
    offs = np.arange(-sw, sw, 0.5)
    pts = m[None] + t_ratio * sw * d[None] + offs[:, None] * u[None]
    ix, iy = pts[:, 0].astype(int), pts[:, 1].astype(int)
    ok = (ix >= 0) & (ix < W) & (iy >= 0) & (iy < H)
    inside = np.zeros(len(offs), bool)
    inside[ok] = body[iy[ok], ix[ok]]
    mid = len(offs) // 2
    assert inside[mid]
    lo = hi = mid
    while lo > 0 and inside[lo - 1]:
        lo -= 1
    while hi < len(offs) - 1 and inside[hi + 1]:
        hi += 1
    keep = np.abs(offs[lo : hi + 1]) >= outer * sw
    return ix[lo : hi + 1][keep], iy[lo : hi + 1][keep]


def _coverage(alpha, run):
    ix, iy = run
    return float((alpha[iy, ix] > 0.5).mean())


def _outline_warp(clip):
    kp = clip.keypoints[0]
    outline = body_outline(clip.person_mask[0, 0], kp, H, W)
    gp = garment_keypoints(clip.garment)
    _, alpha = warp_garment(clip.garment, gp, kp, H, W, outline=outline)
    return outline, alpha[0].numpy()


@pytest.mark.parametrize("seed", SLEEVED)
def test_the_garment_covers_the_torso_at_shoulder_chest_and_waist(seed):
    clip = _clip(seed)
    outline, alpha = _outline_warp(clip)
    assert outline.status in ("measured", "partial")
    assert float(outline.confidence.min()) >= 0.5
    chest = _coverage(alpha, _torso_run(clip, 0.5))
    shoulder = _coverage(alpha, _torso_run(clip, 0.05, outer=0.25))
    waist = _coverage(alpha, _torso_run(clip, 0.9))
    assert chest >= 0.9 and shoulder >= 0.85 and waist >= 0.85, (chest, shoulder, waist)


def _upper_arm_pixels(clip, side, fraction=1.0):
    kp = clip.clean_keypoints[0]
    _, _, _, sw = _frame_axes(kp)
    s, e = (2, 3) if side == 0 else (5, 6)
    a, b = kp[s, :2].double().numpy(), kp[e, :2].double().numpy()
    b = a + fraction * (b - a)
    a = a + 0.2 * (b - a)  # leave out the shoulder itself
    return _capsule(a, b, 0.1 * sw) & (clip.person_mask[0, 0].numpy() > 0.5)


def test_long_sleeves_cover_the_upper_arms():
    clip = _clip(LONG)
    outline, alpha = _outline_warp(clip)
    assert float(outline.arm_confidence.min()) == 1.0
    for side in (0, 1):
        arm = _upper_arm_pixels(clip, side)
        cover = float((alpha[arm] > 0.5).mean())
        assert cover >= 0.7, (side, cover)


@pytest.mark.parametrize("seed", [3, 10])
def test_short_sleeves_cover_the_upper_arm_part_way(seed):
    clip = _clip(seed)
    outline, alpha = _outline_warp(clip)
    for side in (0, 1):
        top = _upper_arm_pixels(clip, side, fraction=0.45)
        assert float((alpha[top] > 0.5).mean()) >= 0.7
    # The sleeve targets (after the 8 landmarks and 3 side points) stop before the elbows.
    kp = clip.keypoints[0]
    gp = garment_keypoints(clip.garment)
    _, tgt = fit_points(gp, kp, outline, H, garment_alpha=garment_mask(clip.garment))
    sleeves = tgt[11:].double().numpy()
    assert len(sleeves) == 2 * 10  # 4 axis points + 3 edge pairs per sleeve
    for chain, (s, e) in ((sleeves[:10], (2, 3)), (sleeves[10:], (5, 6))):
        a, b = kp[s, :2].double().numpy(), kp[e, :2].double().numpy()
        axis = chain[[0, 1, 4, 7]]  # the axis points (the others are the sleeve's edges)
        along = (axis - a) @ (b - a) / float((b - a) @ (b - a))
        assert 0.2 < along.max() < 0.95, along  # part-way: before the elbow


def test_measuring_across_a_tilted_body():
    # A rectangle torso of half width 30 px, tilted by 20 degrees, shoulders 50 px apart.
    ang = math.radians(20)
    d = np.array([math.sin(ang), math.cos(ang)])
    u = np.array([d[1], -d[0]])
    m = np.array([96.0, 60.0])
    ys, xs = np.mgrid[0:H, 0:W] + 0.5
    q = np.stack([xs, ys], -1) - m
    x, t = q @ u, q @ d
    mask = ((np.abs(x) <= 30) & (t >= -8) & (t <= 150)).astype(np.float32)
    kp = torch.zeros(18, 3)
    for i, (xx, tt) in {1: (0, -5), 2: (-25, 0), 5: (25, 0), 8: (-15, 130), 11: (15, 130)}.items():
        kp[i, :2] = torch.tensor(m + xx * u + tt * d)
        kp[i, 2] = 1.0
    outline = body_outline(torch.from_numpy(mask), kp, H, W)
    assert outline.status == "measured"
    for li in range(1, 4):
        for side, sign in ((0, -1), (1, 1)):
            p = outline.edges[li, side].double().numpy() - m
            assert abs(p @ u - sign * 30) < 1.5, (LINES[li], side, p @ u)
    upright = body_outline(torch.from_numpy(mask), kp, H, W).edges
    assert torch.equal(upright, outline.edges)  # deterministic


def test_no_mask_falls_back_to_keypoint_estimates():
    clip = _clip(3)
    outline = body_outline(None, clip.keypoints[0], H, W)
    assert outline.status == "keypoints"
    assert torch.all(outline.confidence == 0.5)
    nobody = body_outline(clip.person_mask[0, 0], torch.zeros(18, 3), H, W)
    assert nobody.status == "none" and not nobody.valid
    src, tgt = fit_points(garment_keypoints(clip.garment), torch.zeros(18, 3), nobody, H)
    assert src.shape == tgt.shape == (0, 2)


def test_a_vest_gets_no_sleeve_targets():
    clip = _clip(10)  # a t-shirt
    garment = clip.garment.clone()
    gp = garment_keypoints(garment)
    x0, x1 = float(gp[6, 0]), float(gp[7, 0])  # armpits: the torso's side lines
    cols = torch.arange(garment.shape[2]) + 0.5
    garment[:, :, (cols < x0 - 1) | (cols > x1 + 1)] = 0.0  # erase the sleeves
    vest_points = garment_keypoints(garment)
    kp = clip.keypoints[0]
    outline = body_outline(clip.person_mask[0, 0], kp, H, W)
    src_t, _ = fit_points(gp, kp, outline, H, garment_alpha=garment_mask(clip.garment))
    src_v, tgt_v = fit_points(vest_points, kp, outline, H, garment_alpha=garment_mask(garment))
    assert src_v.shape[0] == 8 + 3  # 8 landmarks (no sleeve ends) + 2 side + 1 chest point
    assert src_t.shape[0] > src_v.shape[0] + 10  # the t-shirt has two sleeve chains
    _, alpha = warp_garment(garment, vest_points, kp, H, W, outline=outline)
    assert float(alpha.sum()) > 0


def test_one_arm_out_of_frame():
    clip = _clip(10)
    kp = clip.keypoints[0].clone()
    kp[[3, 4], 2] = 0.0  # the right elbow and wrist are not found
    outline = body_outline(clip.person_mask[0, 0], kp, H, W)
    assert float(outline.arm_confidence[0]) == 0.0 and float(outline.arm_confidence[1]) == 1.0
    gp = garment_keypoints(clip.garment)
    src, _ = fit_points(gp, kp, outline, H, garment_alpha=garment_mask(clip.garment))
    full, _ = fit_points(
        gp, clip.keypoints[0], outline, H, garment_alpha=garment_mask(clip.garment)
    )
    assert 11 < src.shape[0] < full.shape[0]
    out = frame_inputs(clip.frames, kp[None], clip.garment, person_mask=clip.person_mask)
    assert out["cloth"][:, 3].sum() > 0 and torch.isfinite(out["shading"]).all()


def test_a_person_seen_from_the_side_falls_back_clearly():
    clip = _clip(10)
    kp = clip.keypoints[0].clone()
    neck = kp[1, :2].clone()
    kp[2, :2] = neck + torch.tensor([-3.0, 2.0])  # shoulders 6 px apart
    kp[5, :2] = neck + torch.tensor([3.0, 2.0])
    kp[8, :2] = neck + torch.tensor([-2.0, 110.0])
    kp[11, :2] = neck + torch.tensor([2.0, 110.0])
    kp[[2, 5, 8, 11], 2] = 1.0
    outline = body_outline(clip.person_mask[0, 0], kp, H, W)
    assert outline.status == "side_view"
    assert torch.all(outline.confidence == 0.5)
    out = frame_inputs(clip.frames, kp[None], clip.garment, person_mask=clip.person_mask)
    assert all(torch.isfinite(v).all() for v in out.values())


def test_outline_shoulders_lie_outside_the_joints():
    clip = _clip(10)
    kp = clip.keypoints[0]
    outline = body_outline(clip.person_mask[0, 0], kp, H, W)
    m, u, d, sw = _frame_axes(kp)
    for side, (sign, j) in enumerate(((-1, 2), (1, 5))):
        top = outline.shoulder_tops[side].double().numpy()
        joint = kp[j, :2].double().numpy()
        assert sign * (top - joint) @ u > 0.0  # outwards of the joint
        assert (top - joint) @ d < -0.03 * sw  # on top of the shoulder, not inside it
        edge = outline.edges[0, side].double().numpy()
        assert sign * (edge - joint) @ u > 0.05 * sw
