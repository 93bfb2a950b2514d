import torch

from engine.inputs.frame_inputs import clip_inputs, frame_inputs
from engine.inputs.pose_maps import POSE_CHANNELS
from engine.training.synthetic import make_clip


def test_clip_inputs_shapes_and_consistency():
    clip = make_clip(5, frames=3, height=64, width=48)
    inputs = clip_inputs(clip)
    shapes = {k: tuple(v.shape) for k, v in inputs.items()}
    assert shapes == {
        "cloth": (3, 4, 64, 48),
        "pose": (3, POSE_CHANNELS, 64, 48),
        "background": (3, 3, 64, 48),
        "background_mask": (3, 1, 64, 48),
        "region": (3, 1, 64, 48),
    }
    assert all(v.dtype == torch.float32 for v in inputs.values())
    assert torch.equal(inputs["region"], 1 - inputs["background_mask"])
    inside = inputs["region"].bool().expand(-1, 3, -1, -1)
    assert torch.all(inputs["background"][inside] == 0.5)  # the grey fill
    outside = ~inside
    assert torch.equal(inputs["background"][outside], clip.frames[outside])
    # the warped garment lands on the person and mostly inside the try-on region
    alpha = inputs["cloth"][:, 3:4]
    assert alpha.sum() > 0
    assert (alpha * inputs["region"]).sum() > 0.8 * alpha.sum()
    assert inputs["region"].sum() > 0


def test_no_person_gives_an_empty_region_and_no_cloth():
    clip = make_clip(6, frames=2, height=64, width=48)
    nobody = torch.zeros_like(clip.keypoints)
    inputs = frame_inputs(clip.frames, nobody, clip.garment)
    assert inputs["region"].sum() == 0 and inputs["cloth"].abs().sum() == 0
    assert torch.equal(inputs["background"], clip.frames)
