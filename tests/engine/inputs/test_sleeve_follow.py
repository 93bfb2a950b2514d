"""Sleeves in a stream: the follow decision's hysteresis, the blend in time, and the blended
targets between a sleeve at rest and a sleeve along the arm."""

import numpy as np
import pytest
import torch

from engine.errors import InputError
from engine.inputs.body_outline import body_outline
from engine.inputs.frame_inputs import frame_inputs
from engine.inputs.garment import fit_points, garment_keypoints, garment_mask, warp_garment
from engine.inputs.sleeve_follow import (
    BLEND_FRAMES,
    FOLLOW_OFF,
    FOLLOW_ON,
    ON_FRAMES,
    SleeveFollow,
)
from engine.training.synthetic import make_clip

H, W = 256, 192
SLEEVED = 10  # a t-shirt, arms beside the torso


def _pose(conf_right: float, conf_left: float = 0.9) -> torch.Tensor:
    clip = make_clip(SLEEVED, frames=1, height=H, width=W)
    kp = clip.keypoints[0].clone()
    kp[[2, 5], 2] = 1.0  # shoulders sure: the elbow's own confidence decides
    kp[3, 2], kp[6, 2] = conf_right, conf_left
    return kp


def _fit(kp, follow):
    clip = make_clip(SLEEVED, frames=1, height=H, width=W)
    outline = body_outline(clip.person_mask[0, 0], kp, H, W)
    gp = garment_keypoints(clip.garment)
    alpha = garment_mask(clip.garment)
    return fit_points(gp, kp, outline, H, garment_alpha=alpha, sleeve_follow=follow)


def test_the_first_frame_takes_the_one_frame_rule():
    assert SleeveFollow()(_pose(0.55, 0.45), H) == (1.0, 0.0)  # SLEEVE_ELBOW_MIN = 0.5
    assert SleeveFollow()(_pose(0.3, 0.95), H) == (0.0, 1.0)


def test_hysteresis_and_glide():
    follow = SleeveFollow()
    assert follow(_pose(0.2), H)[0] == 0.0
    # Wandering between off and on changes nothing (the bundled clip's elbow: 0.18 -> 0.55).
    for c in np.linspace(0.2, FOLLOW_ON - 0.01, 20):
        assert follow(_pose(float(c)), H)[0] == 0.0
    # `on` for ON_FRAMES frames in a row starts a glide of BLEND_FRAMES frames, which goes on
    # while above `off`.
    for _ in range(ON_FRAMES - 1):
        assert follow(_pose(FOLLOW_ON), H)[0] == 0.0
    weights = [follow(_pose(FOLLOW_ON if i == 0 else FOLLOW_OFF + 0.01), H)[0]
               for i in range(BLEND_FRAMES + 3)]  # fmt: skip
    assert weights[0] == pytest.approx(1 / BLEND_FRAMES)
    assert np.all(np.diff(weights[:BLEND_FRAMES]) > 0)
    assert weights[BLEND_FRAMES - 1] == pytest.approx(1.0) and weights[-1] == 1.0
    # Below `off` it lets go, gliding down.
    down = [follow(_pose(FOLLOW_OFF - 0.01), H)[0] for _ in range(BLEND_FRAMES)]
    assert down[0] == pytest.approx(1 - 1 / BLEND_FRAMES) and down[-1] == pytest.approx(0.0)
    # The left elbow, sure all along, followed all along.
    assert follow(_pose(0.0), H)[1] == 1.0
    follow.reset()
    assert follow(_pose(0.55), H)[0] == 1.0  # a fresh stream decides at once


def test_an_elbow_blinking_at_the_frame_edge_never_starts_the_sleeve():
    follow = SleeveFollow()
    follow(_pose(0.0), H)
    for i in range(60):  # seen for ON_FRAMES - 1 frames, then gone for one, over and over
        seen = i % ON_FRAMES != ON_FRAMES - 1
        assert follow(_pose(0.9 if seen else 0.0), H)[0] == 0.0


def test_blended_targets_move_continuously_between_rest_and_arm():
    kp = _pose(0.9, 0.9)
    src_one, tgt_one = _fit(kp, None)
    src_arm, tgt_arm = _fit(kp, (1.0, 1.0))
    assert torch.equal(src_one, src_arm) and torch.equal(tgt_one, tgt_arm)  # same as one frame
    src_rest, tgt_rest = _fit(kp, (0.0, 0.0))
    src_half, tgt_half = _fit(kp, (0.5, 0.5))
    assert torch.equal(src_rest, src_arm) and torch.equal(src_half, src_arm)  # the same points
    torso = 11  # 8 landmarks + 2 side points + the chest centre come first
    assert torch.equal(tgt_rest[:torso], tgt_arm[:torso])
    assert torch.allclose(tgt_half, 0.5 * (tgt_rest + tgt_arm), atol=1e-3)
    assert float((tgt_rest[torso:] - tgt_arm[torso:]).norm(dim=1).max()) > 5.0  # they differ


def test_a_sleeve_at_rest_sits_where_the_torso_carries_it():
    """Weight 0 puts the sleeve where the spline without sleeve points would: the warped garment
    with rest targets nearly matches the one-frame warp of an unsure elbow."""
    clip = make_clip(SLEEVED, frames=1, height=H, width=W)
    kp = _pose(0.3, 0.3)  # both elbows unsure: one frame leaves the sleeves unconstrained
    outline = body_outline(clip.person_mask[0, 0], kp, H, W)
    gp = garment_keypoints(clip.garment)
    src_one, _ = fit_points(gp, kp, outline, H, garment_alpha=garment_mask(clip.garment))
    src_rest, _ = _fit(kp, (0.0, 0.0))
    assert src_rest.shape[0] > src_one.shape[0]  # the rest targets are there
    _, one = warp_garment(clip.garment, gp, kp, H, W, outline=outline)
    _, rest = warp_garment(clip.garment, gp, kp, H, W, outline=outline, sleeve_follow=(0, 0))
    a, b = one[0] > 0.5, rest[0] > 0.5
    assert float((a & b).sum() / (a | b).sum()) > 0.93  # 0.95 measured: the tips differ


def test_a_missing_elbow_rests_even_at_full_weight():
    kp = _pose(0.9, 0.9)
    kp[3, 2] = 0.0  # the right elbow is not found at all
    _, tgt = _fit(kp, (1.0, 1.0))
    _, rest = _fit(kp, (0.0, 1.0))
    assert torch.allclose(tgt, rest)


def test_frame_inputs_takes_one_pair_per_frame():
    clip = make_clip(SLEEVED, frames=2, height=H, width=W)
    kw = {"person_mask": clip.person_mask}
    out = frame_inputs(
        clip.frames, clip.keypoints, clip.garment, sleeve_follow=[(0, 0), (1, 1)], **kw
    )
    assert out["cloth"].shape == (2, 4, H, W)
    with pytest.raises(InputError, match="sleeve_follow"):
        frame_inputs(clip.frames, clip.keypoints, clip.garment, sleeve_follow=[(0, 0)], **kw)
    with pytest.raises(InputError, match=r"sleeve_follow\[1\]"):
        frame_inputs(clip.frames, clip.keypoints, clip.garment, sleeve_follow=[(0, 0), (0, 2)],
                     **kw)  # fmt: skip


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [({"on": 1.5}, "on"), ({"off": float("nan")}, "off"), ({"on": 0.3, "off": 0.4}, "off"),
     ({"blend_frames": 0}, "blend_frames"), ({"blend_frames": 2.0}, "blend_frames"),
     ({"on_frames": 0}, "on_frames")],
)  # fmt: skip
def test_bad_arguments(kwargs, name):
    with pytest.raises(InputError, match=name):
        SleeveFollow(**kwargs)


def test_bad_follow_weights():
    kp = _pose(0.9)
    for bad in ((0.5,), "ab", (0.2, -0.1), (float("nan"), 0.0), 3):
        with pytest.raises(InputError, match="sleeve_follow"):
            _fit(kp, bad)
