import functools

import numpy as np
import pytest
import torch

from engine.errors import InputError
from engine.keypoints import KEYPOINT_INDEX
from engine.training.synthetic import Clip, clip_seeds, make_clip

RS, LS = KEYPOINT_INDEX["right_shoulder"], KEYPOINT_INDEX["left_shoulder"]
RE, RW = KEYPOINT_INDEX["right_elbow"], KEYPOINT_INDEX["right_wrist"]
LE, LW = KEYPOINT_INDEX["left_elbow"], KEYPOINT_INDEX["left_wrist"]
RH, LH, NECK = KEYPOINT_INDEX["right_hip"], KEYPOINT_INDEX["left_hip"], KEYPOINT_INDEX["neck"]
SEEDS = range(50)


@functools.cache
def clip(seed: int) -> Clip:
    return make_clip(seed)


def shoulder_width(c: Clip) -> torch.Tensor:  # (T,)
    k = c.clean_keypoints
    return (k[:, RS, :2] - k[:, LS, :2]).norm(dim=-1)


def at(mask: torch.Tensor, x: float, y: float) -> float:  # mask (H, W)
    h, w = mask.shape
    return float(mask[min(max(int(y), 0), h - 1), min(max(int(x), 0), w - 1)])


@pytest.mark.parametrize("frames, height, width", [(4, 128, 96), (1, 64, 48), (3, 97, 131)])
def test_shapes_dtypes_ranges(frames, height, width):
    c = make_clip(7, frames=frames, height=height, width=width)
    t, h, w = frames, height, width
    expected = {
        "frames": (t, 3, h, w),
        "keypoints": (t, 18, 3),
        "clean_keypoints": (t, 18, 3),
        "person_mask": (t, 1, h, w),
        "garment_mask": (t, 1, h, w),
        "garment": (4, h, w),
    }
    for name, shape in expected.items():
        value = getattr(c, name)
        assert value.shape == shape and value.dtype == torch.float32, name
        assert torch.isfinite(value).all(), name
    for value in (c.frames, c.garment, c.keypoints[..., 2], c.clean_keypoints[..., 2]):
        assert value.min() >= 0 and value.max() <= 1
    for value in (c.person_mask, c.garment_mask, c.garment[3], c.clean_keypoints[..., 2]):
        assert set(value.unique().tolist()) <= {0.0, 1.0}


def test_deterministic():
    a, b = make_clip(3), make_clip(3)
    for name in Clip.__dataclass_fields__:
        assert torch.equal(getattr(a, name), getattr(b, name)), name
    other = make_clip(4)
    assert not torch.equal(a.frames, other.frames)
    assert not torch.equal(a.garment, other.garment)


def test_clip_seeds_disjoint():
    train, evaluation = clip_seeds("train", 100), clip_seeds("eval", 100)
    assert train == list(range(100)) and evaluation[0] == 10**6
    assert not set(train) & set(evaluation)
    with pytest.raises(InputError, match="split"):
        clip_seeds("test", 3)
    with pytest.raises(InputError, match="count"):
        clip_seeds("train", -1)


@pytest.mark.parametrize(
    "kwargs, argument",
    [
        ({"frames": 0}, "frames"),
        ({"frames": 2.0}, "frames"),
        ({"height": 8}, "height"),
        ({"width": 4}, "width"),
        ({"height": True}, "height"),
    ],
)
def test_bad_arguments(kwargs, argument):
    with pytest.raises(InputError, match=f"^{argument}:") as info:
        make_clip(0, **kwargs)
    assert info.value.argument == argument


def test_bad_seed():
    with pytest.raises(InputError, match="^seed:"):
        make_clip(-1)


def test_masks():
    for seed in range(12):
        c = clip(seed)
        g, p = c.garment_mask, c.person_mask
        assert (g <= p).all(), seed
        assert (g.sum(dim=(1, 2, 3)) > 0.05 * g[0, 0].numel()).all(), seed
        assert c.garment[3].sum() > 0.05 * c.garment[3].numel(), seed
        assert (c.garment[:3] * (1 - c.garment[3])).abs().max() == 0, seed


def test_keypoints_on_person_and_noise_small():
    for seed in range(12):
        c = clip(seed)
        sw = shoulder_width(c)
        for t in range(c.frames.shape[0]):
            mask = c.person_mask[t, 0]
            for i, (x, y, conf) in enumerate(c.clean_keypoints[t].tolist()):
                if conf > 0:
                    assert at(mask, x, y) == 1, (seed, t, i)
            for i in (RS, LS):  # shoulders are always in frame, on the person
                assert c.clean_keypoints[t, i, 2] == 1
        seen = c.keypoints[..., 2] > 0
        assert (c.clean_keypoints[..., 2][seen] == 1).all()  # only in-frame points are seen
        err = (c.keypoints[..., :2] - c.clean_keypoints[..., :2]).norm(dim=-1)
        assert (err[seen] < 0.12 * sw[:, None].expand_as(err)[seen]).all(), seed
        assert 0.003 < err[seen].mean() / sw.mean() < 0.05, seed
        in_frame = c.clean_keypoints[..., 2] == 1
        assert seen.sum() > 0.7 * in_frame.sum(), seed  # most in-frame points are detected


def test_some_points_dropped_and_out_of_frame_zero():
    dropped = 0
    for seed in SEEDS:
        c = clip(seed)
        k, kc = c.keypoints, c.clean_keypoints
        _, h, w = c.frames.shape[1:]
        x, y = kc[..., 0], kc[..., 1]
        outside = (x < 0) | (x >= w) | (y < 0) | (y >= h)
        assert (kc[..., 2][outside] == 0).all() and (k[..., 2][outside] == 0).all()
        dropped += int(((k[..., 2] == 0) & ~outside).sum())
    assert dropped > 0


def test_hips_out_of_frame_in_some_clips():
    hidden = [s for s in SEEDS if (clip(s).clean_keypoints[:, [RH, LH], 2] == 0).all()]
    visible = [s for s in SEEDS if (clip(s).clean_keypoints[:, [RH, LH], 2] == 1).all()]
    assert 10 <= len(hidden) <= 40 and 10 <= len(visible) <= 40


def test_motion_is_smooth():
    for seed in SEEDS:
        c = clip(seed)
        k = c.clean_keypoints
        sw = shoulder_width(c)
        step = (k[1:, :, :2] - k[:-1, :, :2]).norm(dim=-1).amax(dim=1)
        assert (step < 0.35 * sw[:-1]).all(), seed
        assert sw.amax() / sw.amin() < 1.1, seed
        assert step.amax() > 0, seed  # something moves


def test_arms_crossing_occlude_the_garment():
    occluding = 0
    for seed in SEEDS:
        c = clip(seed)
        k = c.clean_keypoints
        for t in range(k.shape[0]):
            neck_x = float(k[t, NECK, 0])
            for elbow, wrist, side in ((RE, RW, 1), (LE, LW, -1)):
                e, wr = k[t, elbow, :2], k[t, wrist, :2]
                if side * (float(wr[0]) - neck_x) <= 0:
                    continue  # this forearm does not cross the body's midline
                points = [e + (wr - e) * a for a in np.linspace(0.3, 1.0, 12)]
                hidden = [
                    at(c.person_mask[t, 0], *pt.tolist()) == 1
                    and at(c.garment_mask[t, 0], *pt.tolist()) == 0
                    for pt in points
                ]
                occluding += sum(hidden) >= 4
    assert occluding >= 3
