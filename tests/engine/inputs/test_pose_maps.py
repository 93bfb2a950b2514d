import math

import pytest
import torch

from engine.errors import InputError
from engine.inputs.pose_maps import POSE_CHANNELS, default_sigma, render_pose_maps
from engine.keypoints import CONFIDENCE_MIN, LIMBS, NUM_KEYPOINTS

H, W = 128, 96


def _pose(points: dict[int, tuple[float, float]], conf: float = 1.0) -> torch.Tensor:
    kp = torch.zeros(NUM_KEYPOINTS, 3)
    for k, (x, y) in points.items():
        kp[k] = torch.tensor([x, y, conf])
    return kp


FULL = _pose(
    {0: (48.5, 20.5), 1: (48.5, 32.5), 2: (38.5, 33.5), 3: (35.5, 50.5), 4: (33.5, 67.5),
     5: (58.5, 33.5), 6: (61.5, 50.5), 7: (63.5, 67.5), 8: (41.5, 75.5), 9: (41.5, 95.5),
     10: (41.5, 115.5), 11: (55.5, 75.5), 12: (55.5, 95.5), 13: (55.5, 115.5), 14: (46.5, 18.5),
     15: (50.5, 18.5), 16: (44.5, 19.5), 17: (52.5, 19.5)}
)  # fmt: skip


def render_pose_maps_ref(keypoints, height, width, sigma):
    """Dense float64 reference: every map evaluated on the whole grid."""
    kp = keypoints.to(torch.float64)
    present = (kp[:, 2] >= CONFIDENCE_MIN) & torch.isfinite(kp[:, :2]).all(-1)
    ys, xs = torch.meshgrid(
        torch.arange(height, dtype=torch.float64) + 0.5,
        torch.arange(width, dtype=torch.float64) + 0.5,
        indexing="ij",
    )
    maps = []
    for k in range(NUM_KEYPOINTS):
        d2 = (xs - kp[k, 0]) ** 2 + (ys - kp[k, 1]) ** 2
        maps.append(torch.exp(-d2 / (2 * sigma**2)) * present[k])
    for a, b in LIMBS:
        pa, pb = kp[a, :2], kp[b, :2]
        ab = pb - pa
        t = (((xs - pa[0]) * ab[0] + (ys - pa[1]) * ab[1]) / (ab @ ab).clamp_min(1e-12)).clamp(0, 1)
        d2 = (xs - pa[0] - t * ab[0]) ** 2 + (ys - pa[1] - t * ab[1]) ** 2
        maps.append(torch.exp(-d2 / (2 * sigma**2)) * (present[a] & present[b]))
    return torch.stack(maps)


def test_constants():
    assert POSE_CHANNELS == 18 + len(LIMBS) == 35
    assert default_sigma(256) == 4.0 and default_sigma(32) == 1.0


@pytest.mark.parametrize("batch", [(), (1,), (3,), (2, 2)])
def test_shape_dtype_range(batch):
    kp = FULL.expand(*batch, NUM_KEYPOINTS, 3)
    maps = render_pose_maps(kp, H, W)
    assert maps.shape == (*batch, POSE_CHANNELS, H, W)
    assert maps.dtype == torch.float32
    assert float(maps.min()) >= 0.0 and float(maps.max()) <= 1.0
    if batch:
        assert torch.equal(maps.reshape(-1, POSE_CHANNELS, H, W)[0], render_pose_maps(FULL, H, W))


@pytest.mark.parametrize("sigma", [None, 1.0, 3.5])
@pytest.mark.parametrize("size", [(H, W), (37, 53), (1, 1)])
def test_matches_dense_reference(sigma, size):
    h, w = size
    kp = FULL.clone()
    kp[:, 0] *= w / W
    kp[:, 1] *= h / H
    kp[9, 2] = 0.0  # right knee missing
    s = default_sigma(h) if sigma is None else sigma
    out = render_pose_maps(kp, h, w, sigma=sigma)
    ref = render_pose_maps_ref(kp, h, w, s)
    # Limb maps are cut to 0 beyond 5 sigma (exp(-12.5) < 4e-6).
    assert torch.allclose(out.double(), ref, atol=5e-6, rtol=1e-5)


def test_heatmap_peaks_at_keypoint():
    maps = render_pose_maps(FULL, H, W)
    for k in range(NUM_KEYPOINTS):
        x, y = FULL[k, :2].tolist()
        idx = int(maps[k].argmax())
        assert divmod(idx, W) == (int(y), int(x))
        assert float(maps[k, int(y), int(x)]) == pytest.approx(1.0)


def test_limb_map_is_one_on_the_segment_and_falls_off():
    maps = render_pose_maps(FULL, H, W, sigma=2.0)
    limb = LIMBS.index((8, 9))  # right hip (41.5, 75.5) -> right knee (41.5, 95.5): vertical
    m = maps[NUM_KEYPOINTS + limb]
    assert float(m[85, 41]) == pytest.approx(1.0)
    assert float(m[85, 43]) == pytest.approx(math.exp(-4 / 8), rel=1e-5)
    assert float(m[85, 70]) == 0.0
    assert float(m[10, 41]) == 0.0


def test_missing_keypoints_give_zero_maps():
    kp = FULL.clone()
    kp[3, 2] = CONFIDENCE_MIN / 2  # right elbow below threshold
    kp[6, :2] = float("nan")  # left elbow: non-finite coordinates
    maps = render_pose_maps(kp, H, W)
    assert torch.isfinite(maps).all()
    for k in (3, 6):
        assert not maps[k].any()
    for i, (a, b) in enumerate(LIMBS):
        touches = {a, b} & {3, 6}
        assert bool(maps[NUM_KEYPOINTS + i].any()) != bool(touches)


def test_no_person_and_out_of_frame():
    assert not render_pose_maps(torch.zeros(18, 3), H, W).any()
    far = FULL.clone()
    far[:, 0] += 10_000
    assert not render_pose_maps(far, H, W).any()


def test_non_contiguous_and_float64_input():
    kp = torch.cat([FULL, torch.zeros(18, 3)], dim=1).double()[:, :3]  # non-contiguous
    assert not kp.is_contiguous()
    assert torch.equal(render_pose_maps(kp, H, W), render_pose_maps(FULL, H, W))


@pytest.mark.parametrize(
    "kwargs, argument",
    [
        ({"keypoints": FULL.numpy()}, "keypoints"),
        ({"keypoints": FULL.long()}, "keypoints"),
        ({"keypoints": FULL[:17]}, "keypoints"),
        ({"keypoints": FULL[:, :2]}, "keypoints"),
        ({"keypoints": FULL[0]}, "keypoints"),
        ({"height": 0}, "height"),
        ({"height": 12.0}, "height"),
        ({"height": True}, "height"),
        ({"width": -3}, "width"),
        ({"sigma": 0.0}, "sigma"),
        ({"sigma": float("nan")}, "sigma"),
        ({"sigma": "2"}, "sigma"),
    ],
)
def test_bad_input_raises(kwargs, argument):
    args = {"keypoints": FULL, "height": H, "width": W}
    sigma = kwargs.pop("sigma", None)
    args.update(kwargs)
    with pytest.raises(InputError) as info:
        if sigma is None:
            render_pose_maps(args["keypoints"], args["height"], args["width"])
        else:
            render_pose_maps(args["keypoints"], args["height"], args["width"], sigma=sigma)
    assert info.value.argument == argument


def test_pose_maps_fill_the_generators_pose_input():
    from engine.model.mpdt_generator import MPDTConfig

    assert MPDTConfig.from_name("lite").pose_channels == POSE_CHANNELS
