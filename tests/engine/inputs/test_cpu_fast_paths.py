"""The inputs' CPU fast paths give the same bits as the general (tensor) paths they shortcut."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import engine.inputs.body_outline as bo
import engine.inputs.garment as garment_module
import engine.inputs.tryon_region as tr
from engine.inputs.body_outline import body_outline, sample_mask
from engine.inputs.garment import fit_points, garment_keypoints, garment_mask, tps_grid
from engine.inputs.pose_maps import render_pose_maps
from engine.training.synthetic import make_clip

H, W = 128, 96


def _random_poses(rng: np.random.Generator, count: int) -> torch.Tensor:
    """(count, 18, 3) float32 poses around an upright body, some keypoints missing, some
    degenerate (shoulders on top of each other, hips coinciding, integer coordinates)."""
    base = np.array([[48, 20], [48, 40], [30, 42], [24, 70], [22, 95], [66, 42], [72, 70],
                     [74, 95], [36, 100], [36, 125], [36, 140], [60, 100], [60, 125], [60, 140],
                     [45, 15], [51, 15], [40, 17], [56, 17]], np.float32)  # fmt: skip
    kp = np.zeros((count, 18, 3), np.float32)
    kp[..., :2] = base + rng.normal(0, 6, (count, 18, 2))
    kp[..., 2] = rng.uniform(0, 1, (count, 18))
    kp[::3, :, 2] *= rng.random((len(kp[::3]), 18)) < 0.6  # missing keypoints
    kp[1::7, 5, :2] = kp[1::7, 2, :2] + 0.5  # shoulders almost on top of each other
    kp[2::7, 11, :2] = kp[2::7, 8, :2]  # hips coinciding
    kp[3::7, :, :2] = np.round(kp[3::7, :, :2])
    kp[4::7, :, 2] = np.float32(0.1)  # exactly at the presence threshold
    return torch.from_numpy(kp)


def test_tps_grid_on_scratch_buffers_equals_the_allocating_path():
    g = torch.Generator().manual_seed(0)
    for n in (3, 12, 31):
        src = torch.rand(n, 2, generator=g) * torch.tensor([288.0, 384.0])
        tgt = torch.rand(n, 2, generator=g) * torch.tensor([W, H], dtype=torch.float32)
        fast = tps_grid(src, tgt, H, W, 384, 288)
        general = tps_grid(src, tgt.clone().requires_grad_(True), H, W, 384, 288)  # autograd
        assert general.requires_grad and torch.equal(fast, general.detach())
    kept = fast.clone()
    tps_grid(src, tgt + 1.0, H, W, 384, 288)  # another grid on the same buffers
    assert torch.equal(fast, kept)  # the result is not a view of them


@pytest.mark.parametrize("shape", [(1, 1, 7, 5), (2, 1, 64, 48), (1, 1, 3, 3), (1, 1, 1, 9)])
@pytest.mark.parametrize("px", [0, 1, 2, 5])
def test_dilated_binary_equals_max_pool(shape, px):
    mask = torch.rand(shape, generator=torch.Generator().manual_seed(px))
    want = (mask > 0.5).float()
    if px:
        want = F.max_pool2d(want, 2 * px + 1, stride=1, padding=px)
    got = tr._dilated_binary(mask, px)
    assert got.shape == want.shape and got.dtype == torch.float32 and torch.equal(got, want)


def test_sample_mask_on_the_host_equals_the_tensor_path():
    rng = np.random.default_rng(1)
    for h, w in ((H, W), (5, 3), (1, 1)):
        mask = torch.from_numpy(rng.random((h, w), dtype=np.float32))
        pts = rng.uniform(-3, max(h, w) + 3, (500, 2))
        pts[::5] = np.round(pts[::5] * 64) / 64  # exactly halfway between sub-pixel steps
        general = sample_mask(mask.clone().requires_grad_(True), pts)  # the torch ops
        fast = sample_mask(mask, pts)
        assert fast.dtype == torch.float32 and torch.equal(fast, general.detach())
        assert bool((fast[torch.from_numpy((pts < 0).any(1))] == -1).all())


def test_median_of_a_few_floats_equals_numpy():
    rng = np.random.default_rng(2)
    for _ in range(2000):
        values = list(rng.normal(size=int(rng.integers(1, 6))) * 10.0 ** rng.uniform(-3, 3))
        assert bo._median(values) == float(np.median(values))
    assert np.isnan(bo._median([1.0, float("nan")]))


def test_host_body_frame_is_shared_and_body_frame_copies():
    kp = _random_poses(np.random.default_rng(4), 1)
    shared = tr.host_body_frame(kp, H)
    assert tr.host_body_frame(kp.clone(), H) is shared  # remembered by value
    copy = tr.body_frame(kp, H)
    assert all(torch.equal(a, b) for a, b in zip(copy, shared, strict=True))
    assert copy.neck.data_ptr() != shared.neck.data_ptr()


def _limb_maps_ref(kp: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """The limb channels as the device path computes them: 0-d float32 tensor scalars."""
    from engine.keypoints import LIMBS, present_keypoints

    sigma = max(1.0, height / 64.0)
    inv = -0.5 / sigma**2
    present = present_keypoints(kp)
    xy = torch.where(present[:, None], kp[:, :2], torch.zeros_like(kp[:, :2]))
    xs = torch.arange(width, dtype=torch.float32) + 0.5
    ys = torch.arange(height, dtype=torch.float32) + 0.5
    out = torch.zeros(len(LIMBS), height, width)
    for li, (ia, ib) in enumerate(LIMBS):
        if not (present[ia] and present[ib]):
            continue
        lo = (torch.minimum(xy[ia], xy[ib]) - 5 * sigma).clamp(-1.0, 1e7).floor().long()
        hi = (torch.maximum(xy[ia], xy[ib]) + 5 * sigma).clamp(-1.0, 1e7).ceil().long()
        x0, y0 = int(lo[0].clamp(0, width)), int(lo[1].clamp(0, height))
        x1, y1 = int(hi[0].clamp(0, width)), int(hi[1].clamp(0, height))
        if x1 <= x0 or y1 <= y0:
            continue
        ax, ay = xy[ia, 0], xy[ia, 1]
        abx, aby = xy[ib, 0] - ax, xy[ib, 1] - ay
        len2 = (abx * abx + aby * aby).clamp_min(1e-12)
        apx = (xs[x0:x1] - ax)[None, :]
        apy = (ys[y0:y1] - ay)[:, None]
        t = ((apx * (abx / len2)) + (apy * (aby / len2))).clamp_(0.0, 1.0)
        dx, dy = apx - t * abx, apy - t * aby
        out[li, y0:y1, x0:x1] = torch.exp_((dx * dx).add_(dy * dy).mul_(inv))
    return out


def test_pose_maps_from_host_scalars_equal_the_tensor_path():
    poses = _random_poses(np.random.default_rng(5), 40)
    poses[5, :, :2] += 200.0  # out of the picture: no limb box
    for kp in (poses[i] for i in range(len(poses))):
        fast = render_pose_maps(kp, H, W)
        assert torch.equal(fast[18:], _limb_maps_ref(kp, H, W))
    assert torch.equal(render_pose_maps(poses, H, W)[7], render_pose_maps(poses[7], H, W))


def _run_halfwidth_walk(alpha, centre, normal, reach):
    """The reference: walk from the centre sample while the mask holds."""
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
    lo = hi = mid
    while lo > 0 and inside[lo - 1]:
        lo -= 1
    while hi < len(offs) - 1 and inside[hi + 1]:
        hi += 1
    return -offs[lo], offs[hi]


def test_run_halfwidth_equals_the_walk():
    rng = np.random.default_rng(6)
    for _ in range(1500):
        h, w = rng.integers(3, 60, 2)
        alpha = (rng.random((h, w)) > rng.uniform(0.05, 0.6)).astype(np.float32)
        centre = rng.uniform(-4, max(h, w) + 4, 2)
        normal = rng.normal(size=2)
        normal /= np.linalg.norm(normal)
        reach = rng.uniform(0.5, 40)
        want = _run_halfwidth_walk(alpha, centre, normal, reach)
        got = garment_module._run_halfwidth(alpha, centre, normal, reach)
        assert (want is None and got is None) or (want[0] == got[0] and want[1] == got[1])


def test_sleeve_sources_are_remembered_per_mask_and_its_version():
    clip = make_clip(3, frames=1, height=H, width=W)
    alpha = garment_mask(clip.garment)
    gp = garment_keypoints(clip.garment).double().numpy()
    root, vec = 0.5 * (gp[2] + gp[6]), gp[4] - 0.5 * (gp[2] + gp[6])
    first = garment_module._sleeve_sources(alpha, root, vec, 6)
    assert garment_module._sleeve_sources(alpha, root, vec, 6) is first
    assert len(first) == 6 + 2 * 4 and not first[0].flags.writeable
    assert garment_module._sleeve_sources(alpha, root, vec, 4) is not first  # n is in the key
    alpha.mul_(1.0)  # written in place: measured again (the same values)
    again = garment_module._sleeve_sources(alpha, root, vec, 6)
    assert again is not first
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))
    assert len(garment_module._sleeve_sources(None, root, vec, 4)) == 4 + 2 * 3


def test_fit_points_repeat_gives_the_same_pairs():
    clip = make_clip(7, frames=1, height=H, width=W)
    kp, mask = clip.keypoints[0], clip.person_mask[0, 0]
    outline = body_outline(mask, kp, H, W)
    gp = garment_keypoints(clip.garment)
    alpha = garment_mask(clip.garment)
    for follow in (None, (0.25, 0.75), (1.0, 0.0)):
        first = fit_points(gp, kp, outline, H, garment_alpha=alpha, sleeve_follow=follow)
        second = fit_points(gp, kp, outline, H, garment_alpha=alpha, sleeve_follow=follow)
        assert all(torch.equal(a, b) for a, b in zip(first, second, strict=True))


def test_the_cpu_texture_is_channels_last_and_samples_the_same():
    clip = make_clip(3, frames=1, height=H, width=W)
    alpha, rgba = garment_module._texture(clip.garment, torch.device("cpu"))
    assert rgba.shape == (4, *clip.garment.shape[1:]) and rgba.stride()[0] == 1
    grid = torch.rand(1, H, W, 2, generator=torch.Generator().manual_seed(0)) * 2.2 - 1.1
    sample = lambda t: F.grid_sample(t[None], grid, mode="bilinear", padding_mode="zeros",  # noqa: E731
                                     align_corners=False)  # fmt: skip
    assert torch.equal(sample(rgba), sample(rgba.contiguous()))
    assert torch.equal(rgba[3], alpha)
