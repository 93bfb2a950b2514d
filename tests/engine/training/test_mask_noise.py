"""``segmenter_mask``: segmenter-like person masks, seeded and deterministic, whose edge moves only
within its band around the exact edge and jitters from frame to frame; ``clip_model_inputs``
builds a clip's generator inputs on them; bad arguments raise InputError naming them."""

import cv2
import numpy as np
import pytest
import torch

from engine.errors import InputError
from engine.inputs.frame_inputs import clip_inputs
from engine.training.mask_noise import clip_model_inputs, mask_noise_px, segmenter_mask
from engine.training.synthetic import make_clip

H, W, T = 64, 48, 3
NOISE = dict(edge_px=1.0, jitter_px=1.5, softness_px=0.6)


def exact_masks() -> torch.Tensor:
    """(T, 1, H, W) {0, 1}: an ellipse and a bar (an arm), moving a pixel per frame."""
    out = np.zeros((T, H, W), np.uint8)
    for t in range(T):
        cv2.ellipse(out[t], (24 + t, 36), (12, 20), 0, 0, 360, 1, -1)
        cv2.line(out[t], (24 + t, 30), (44, 8 + t), 1, 5)
    return torch.from_numpy(out.astype(np.float32))[:, None]


def distance_to_edge(inside: np.ndarray) -> np.ndarray:
    """(H, W) px from each pixel centre to the nearest pixel centre of the other label."""
    d_in = cv2.distanceTransform(inside, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    d_out = cv2.distanceTransform(1 - inside, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    return np.where(inside > 0, d_in, d_out)


def test_same_seed_same_mask_other_seed_another():
    mask = exact_masks()
    a, b = segmenter_mask(mask, 3, **NOISE), segmenter_mask(mask, 3, **NOISE)
    assert torch.equal(a, b)
    assert not torch.equal(a, segmenter_mask(mask, 4, **NOISE))
    assert a.shape == mask.shape and a.dtype == torch.float32
    assert a.min() >= 0.0 and a.max() <= 1.0
    soft = ((a > 0.02) & (a < 0.98)).float().mean()
    assert soft > 0.01  # a soft edge, not a hard one


def test_the_edge_moves_only_within_its_band():
    mask = exact_masks()
    noisy = segmenter_mask(mask, 11, **NOISE)
    band = 0.5 + NOISE["edge_px"] + NOISE["jitter_px"]
    flipped_total = 0
    for t in range(T):
        inside = (mask[t, 0].numpy() > 0.5).astype(np.uint8)
        flipped = (noisy[t, 0].numpy() > 0.5) != (inside > 0)
        flipped_total += int(flipped.sum())
        assert (distance_to_edge(inside)[flipped] <= band + 0.5).all(), t  # +0.5: centre to edge
        far = distance_to_edge(inside) > band + 3 * NOISE["softness_px"] + 1
        assert (np.abs(noisy[t, 0].numpy() - inside)[far] < 0.05).all(), t
    assert flipped_total > 0  # the edge did move


def test_without_noise_the_thresholded_mask_is_exact():
    mask = exact_masks()
    clean = segmenter_mask(mask, 0, edge_px=0.0, jitter_px=0.0, softness_px=0.6)
    assert torch.equal((clean > 0.5).float(), mask)


def test_the_edge_jitters_from_frame_to_frame():
    still = exact_masks()[:1].repeat(T, 1, 1, 1)  # a person who does not move
    jittered = segmenter_mask(still, 5, **NOISE)
    assert all(not torch.equal(jittered[0] > 0.5, jittered[t] > 0.5) for t in range(1, T))
    biased = segmenter_mask(still, 5, edge_px=1.0, jitter_px=0.0, softness_px=0.6)
    assert all(torch.equal(biased[0], biased[t]) for t in range(1, T))  # the bias is per clip
    assert not torch.equal((biased[0] > 0.5).float(), still[0])


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        (dict(mask=torch.zeros(3, 8, 8)), "mask"),
        (dict(mask=torch.zeros(3, 2, 8, 8)), "mask"),
        (dict(mask=np.zeros((3, 1, 8, 8), np.float32)), "mask"),
        (dict(mask=torch.zeros(0, 1, 8, 8)), "mask"),
        (dict(seed=-1), "seed"),
        (dict(seed=1.5), "seed"),
        (dict(seed=True), "seed"),
        (dict(edge_px=-1.0), "edge_px"),
        (dict(edge_px=float("nan")), "edge_px"),
        (dict(jitter_px="1"), "jitter_px"),
        (dict(jitter_px=float("inf")), "jitter_px"),
        (dict(softness_px=0.0), "softness_px"),
        (dict(softness_px=None), "softness_px"),
    ],
)
def test_bad_arguments_raise_input_error_naming_them(kwargs, argument):
    args = dict(mask=exact_masks(), seed=0, **NOISE) | kwargs
    with pytest.raises(InputError) as info:
        segmenter_mask(args.pop("mask"), args.pop("seed"), **args)
    assert info.value.argument == argument


def test_clip_model_inputs_use_the_segmenter_like_mask():
    clip = make_clip(7, frames=2)
    exact = clip_model_inputs(clip, 7, fit="outline", mask_noise=False)
    reference = clip_inputs(clip, fit="outline")
    assert all(torch.equal(exact[k], reference[k]) for k in reference)
    noisy = clip_model_inputs(clip, 7, fit="outline")
    assert torch.equal(noisy["cloth"], clip_model_inputs(clip, 7, fit="outline")["cloth"])
    assert not torch.equal(noisy["region"], exact["region"])  # the region follows the mask
    assert mask_noise_px(128, 96) == pytest.approx(NOISE)
