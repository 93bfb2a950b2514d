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
        "paste_mask": (3, 1, 64, 48),
        "shading": (3, 1, 64, 48),
        "garment_grid": (3, 64, 48, 2),
    }
    assert all(v.dtype == torch.float32 for v in inputs.values())
    # the grid reproduces the warped cloth when the garment is sampled through it
    rgba = torch.cat([clip.garment[:3] * clip.garment[3:], clip.garment[3:]])[None]
    resampled = torch.nn.functional.grid_sample(
        rgba.expand(3, -1, -1, -1),
        inputs["garment_grid"], mode="bilinear", padding_mode="zeros", align_corners=False,
    )  # fmt: skip
    assert (resampled.clamp(0, 1) - inputs["cloth"]).abs().max() < 1e-4
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


def _paste_inputs(seed):
    clip = make_clip(seed, frames=1, height=256, width=192)
    out = frame_inputs(clip.frames, clip.keypoints, clip.garment, person_mask=clip.person_mask)
    return clip, out


def test_paste_mask_leaves_crossed_forearms_and_the_head_alone():
    clip, out = _paste_inputs(11)  # a t-shirt, forearms crossed in front of the torso
    paste = out["paste_mask"][0, 0]
    assert paste.shape == (256, 192) and float(paste.min()) >= 0 and float(paste.max()) <= 1
    kp = clip.clean_keypoints[0]
    sw = float((kp[5, :2] - kp[2, :2]).norm())
    ys, xs = torch.meshgrid(torch.arange(256) + 0.5, torch.arange(192) + 0.5, indexing="ij")
    # bare forearm pixels in front of the torso: person, not garment, near an elbow -> wrist line
    near = torch.zeros(256, 192, dtype=torch.bool)
    for e, w in ((3, 4), (6, 7)):
        a, b = kp[e, :2], kp[w, :2]
        ab = b - a
        t = (((xs - a[0]) * ab[0] + (ys - a[1]) * ab[1]) / (ab @ ab)).clamp(0, 1)
        dist = ((xs - a[0] - t * ab[0]) ** 2 + (ys - a[1] - t * ab[1]) ** 2).sqrt()
        near |= dist <= 0.05 * sw
    in_front = near & (clip.person_mask[0, 0] > 0.5) & (clip.garment_mask[0, 0] < 0.5)
    in_front &= out["cloth"][0, 3] > 0.5  # where the new garment would otherwise be pasted
    assert int(in_front.sum()) > 20
    assert float(paste[in_front].mean()) < 0.1
    # the head never changes
    assert float(paste[ys < float(kp[1, 1]) - 0.15 * sw].abs().max()) == 0.0
    # and the garment is pasted on the rest of the torso
    assert float(paste[(clip.garment_mask[0, 0] > 0.5) & ~near].mean()) > 0.8


def test_shading_follows_a_known_field_on_plain_clothing():
    clip = make_clip(10, frames=1, height=256, width=192)
    ys, xs = torch.meshgrid(torch.arange(256) + 0.5, torch.arange(192) + 0.5, indexing="ij")
    field = 1 + 0.25 * torch.sin(xs / 9.0) * torch.cos(ys / 11.0)  # folds, a few per garment
    worn = clip.garment_mask[0, 0] > 0.5
    frame = clip.frames.clone()
    plain = torch.tensor([0.3, 0.5, 0.7])[:, None, None] * field
    frame[0][:, worn] = plain[:, worn]
    out = frame_inputs(frame, clip.keypoints, clip.garment, person_mask=clip.person_mask)
    shading, area = out["shading"][0, 0], out["paste_mask"][0, 0] > 0.5
    inside = area & worn
    assert int(inside.sum()) > 1000
    corr = torch.corrcoef(torch.stack([shading[inside], field[inside]]))[0, 1]
    assert float(corr) >= 0.6, float(corr)
    assert torch.all(shading[~area] == 1.0)
    assert float(shading.min()) >= 0.6 and float(shading.max()) <= 1.4


def test_clips_take_the_outline_fit_by_default():
    clip = make_clip(10, frames=1, height=128, width=96)
    old = clip_inputs(clip, fit="keypoints")
    new = clip_inputs(clip)
    direct = frame_inputs(clip.frames, clip.keypoints, clip.garment, person_mask=clip.person_mask)
    assert torch.equal(new["cloth"], direct["cloth"])
    assert not torch.equal(old["cloth"], new["cloth"])
