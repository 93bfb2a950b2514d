"""``evaluate(..., fit=)`` and ``tryon eval --fit``: both garment fits score the three outputs, a
bad fit is refused, and the held-out clips exercise the outline fit (valid outlines on every frame,
sleeved garments on raised arms, forearms crossing in front of the torso)."""

import functools
import json

import pytest
import torch

from engine.errors import InputError
from engine.inputs.body_outline import body_outline
from engine.keypoints import KEYPOINT_INDEX
from engine.model.weights import load_generator
from engine.training.evaluate import DEFAULT_FIT, METRICS, evaluate
from engine.training.mask_noise import clip_model_inputs, mask_noise_px, segmenter_mask
from engine.training.synthetic import clip_seeds, make_clip

EVAL_CLIPS = 16  # what `tryon eval` scores by default


@functools.cache
def demo():
    return load_generator("demo")


@functools.cache
def one_clip_scores(fit: str) -> dict:
    return evaluate(demo(), clips=1, fit=fit)


@pytest.mark.parametrize("fit", ["outline", "keypoints"])
def test_evaluate_with_each_fit_scores_the_three_outputs(fit):
    scores = one_clip_scores(fit)
    assert set(scores) == {"model", "paste", "per_frame"}
    for name, values in scores.items():
        assert tuple(values) == METRICS, name
        assert all(isinstance(v, float) and v == v for v in values.values()), (name, values)
        assert 5 < values["psnr"] < 60 and 0 < values["ssim"] <= 1 and values["flicker"] >= 0


def test_mask_noise_reaches_the_scored_inputs():
    exact = evaluate(demo(), clips=1, fit="outline", mask_noise=False)
    assert exact["paste"] != one_clip_scores("outline")["paste"]
    with pytest.raises(InputError) as info:
        evaluate(demo(), clips=1, mask_noise=1)
    assert info.value.argument == "mask_noise"


def test_the_fit_reaches_the_scored_inputs():
    outline, keypoints = one_clip_scores("outline"), one_clip_scores("keypoints")
    assert outline["paste"] != keypoints["paste"]  # the warped garment is pasted as is


@pytest.mark.parametrize("fit", ["mask", None, "Outline"])
def test_a_bad_fit_raises_input_error_naming_fit(fit):
    with pytest.raises(InputError) as info:
        evaluate(demo(), clips=1, fit=fit)
    assert info.value.argument == "fit"


@pytest.mark.parametrize("clips", [0, -1, 2.0, True])
def test_a_bad_clip_count_raises_input_error_naming_clips(clips):
    with pytest.raises(InputError) as info:
        evaluate(demo(), clips=clips)
    assert info.value.argument == "clips"


def test_eval_cli_fit_flag(capsys):
    from engine.cli.main import build_parser, main

    parse = build_parser().parse_args
    assert DEFAULT_FIT == "outline"  # the demo's (evaluate's docstring)
    assert parse(["eval"]).fit == DEFAULT_FIT and not parse(["eval"]).exact_masks
    assert parse(["eval", "--exact-masks"]).exact_masks
    assert parse(["eval", "--fit", "keypoints"]).fit == "keypoints"
    with pytest.raises(SystemExit):
        parse(["eval", "--fit", "mask"])
    assert main(["eval", "--clips", "1", "--fit", "keypoints", "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == one_clip_scores("keypoints")


def _body_axes(kp: torch.Tensor):
    """Per frame: shoulder midpoint, shoulder width, unit ``across`` (right -> left shoulder) and
    ``down`` vectors, from clean keypoints (T, 18, 3)."""
    rs = kp[:, KEYPOINT_INDEX["right_shoulder"], :2]
    ls = kp[:, KEYPOINT_INDEX["left_shoulder"], :2]
    sw = (ls - rs).norm(dim=-1)
    across = (ls - rs) / sw[:, None]
    down = torch.stack([-across[:, 1], across[:, 0]], dim=-1)
    return (rs + ls) / 2, sw, across, down


def test_held_out_clips_exercise_the_outline_fit():
    raised_sleeves = forearms_in_front = 0
    for seed in clip_seeds("eval", EVAL_CLIPS):
        clip = make_clip(seed)
        t, _, h, w = clip.frames.shape
        mask = segmenter_mask(clip.person_mask, seed, **mask_noise_px(h, w))  # what eval uses
        for i in range(t):  # every frame's person mask gives an outline the fit can use
            outline = body_outline(mask[i, 0], clip.keypoints[i], h, w)
            assert outline.valid and outline.status in ("measured", "partial"), (seed, i)
        alpha = None  # (T, H, W) the outline fit's warped garment, built when needed
        mid, sw, across, down = _body_axes(clip.clean_keypoints)
        for side in ("right", "left"):
            sho, elb, wri = (clip.clean_keypoints[:, KEYPOINT_INDEX[f"{side}_{part}"], :2]
                             for part in ("shoulder", "elbow", "wrist"))  # fmt: skip
            upper = elb - sho
            abduction = torch.rad2deg(
                torch.atan2((upper * across).sum(-1).abs(), (upper * down).sum(-1))
            )
            centre = ((sho + elb) / 2).round().long()  # (T, 2) upper-arm midpoints
            inside = ((centre[:, 0] >= 0) & (centre[:, 0] < w) & (centre[:, 1] >= 0)
                      & (centre[:, 1] < h)).all()  # fmt: skip
            if inside and (abduction > 30).all():  # held out from the body, every frame
                worn = clip.garment_mask[torch.arange(t), 0, centre[:, 1], centre[:, 0]]
                if (worn > 0.5).all():  # a sleeve on a raised arm: the outline fit follows it
                    if alpha is None:
                        alpha = clip_model_inputs(clip, seed, fit="outline")["cloth"][:, 3]
                    warped = alpha[torch.arange(t), centre[:, 1], centre[:, 0]]
                    assert (warped > 0.5).all(), (seed, side)
                    raised_sleeves += 1
            x = ((wri - mid) * across).sum(-1) / sw
            y = ((wri - mid) * down).sum(-1) / sw
            forearms_in_front += bool(((x.abs() < 0.3) & (y > 0.3)).any())
    assert raised_sleeves >= 3, raised_sleeves
    assert forearms_in_front >= 6, forearms_in_front
