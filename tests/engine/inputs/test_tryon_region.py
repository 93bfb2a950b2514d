import pytest
import torch

from engine.errors import InputError
from engine.inputs.tryon_region import TORSO_LENGTH_RATIO, make_background, tryon_region

H, W = 256, 192


def _pose(points: dict[int, tuple[float, float]]) -> torch.Tensor:
    kp = torch.zeros(18, 3)
    for k, (x, y) in points.items():
        kp[k] = torch.tensor([x, y, 1.0])
    return kp


# Front-facing person, shoulder width 40 px, hips 88 px below the shoulders.
BODY = {0: (96, 40), 1: (96, 60), 2: (76, 62), 3: (70, 100), 4: (66, 135), 5: (116, 62),
        6: (122, 100), 7: (126, 135), 8: (82, 150), 11: (110, 150), 14: (92, 36),
        15: (100, 36)}  # fmt: skip
FULL = _pose(BODY)


def _at(region: torch.Tensor, x: float, y: float) -> float:
    return float(region[int(y), int(x)])


def test_shape_dtype_binary():
    region = tryon_region(FULL, H, W)
    assert region.shape == (H, W) and region.dtype == torch.float32
    assert set(region.unique().tolist()) == {0.0, 1.0}


def test_covers_torso_and_excludes_far_pixels():
    region = tryon_region(FULL, H, W)
    # Every pixel of the shoulder-hip box (the torso is a rectangle-ish quad here) is covered.
    assert region[62:150, 82:110].all()
    # Upper arms covered, neck base covered.
    assert _at(region, 73, 81) == 1.0 and _at(region, 119, 81) == 1.0
    assert _at(region, 96, 56) == 1.0
    # Far away: head top, wrists, legs, image corners, beside the torso at hip level.
    for x, y in [(96, 20), (66, 135), (126, 135), (96, 200), (5, 5), (186, 250), (40, 150)]:
        assert _at(region, x, y) == 0.0, (x, y)
    # Below the hips by more than the dilation (0.1 * 40 px = 4 px): not covered.
    assert not region[160:].any()


def test_hips_missing_extends_down_by_rule():
    kp = FULL.clone()
    kp[[8, 11], 2] = 0.0
    region = tryon_region(kp, H, W)
    sw = 40.0
    bottom = 62 + TORSO_LENGTH_RATIO * sw  # 126: 1.6 shoulder widths below the shoulders
    assert region[62 : int(bottom), 80:112].all()
    assert not region[int(bottom + 0.1 * sw) + 2 :].any()


def test_hips_out_of_frame_reaches_frame_bottom():
    # Webcam framing: shoulders 30 px above the bottom, less than 1.6 shoulder widths.
    kp = FULL.clone()
    kp[:, 1] += 166
    kp[[3, 4, 6, 7, 8, 11], 2] = 0.0
    region = tryon_region(kp, H, W)
    assert region[H - 1, 80:112].all()
    assert region[230:, 80:112].all()


def test_one_shoulder_missing_is_mirrored():
    kp = FULL.clone()
    kp[5, 2] = 0.0  # left shoulder
    kp[[6, 7], 2] = 0.0  # and its arm
    ref = FULL.clone()
    ref[[6, 7], 2] = 0.0
    a, b = tryon_region(kp, H, W), tryon_region(ref, H, W)
    iou = float((a * b).sum() / ((a + b) > 0).sum())
    assert iou > 0.95


def test_arms_crossing_cover_torso_not_forearms():
    # Elbows folded across the torso, wrists far outside it on the other side.
    kp = _pose({**BODY, 3: (104, 100), 4: (150, 95), 6: (88, 102), 7: (40, 97)})
    region = tryon_region(kp, H, W)
    assert region[62:150, 82:110].all()
    # Forearm pixels outside the torso: not covered.
    for x, y in [(135, 97), (145, 96), (57, 99), (47, 98)]:
        assert _at(region, x, y) == 0.0, (x, y)


@pytest.mark.parametrize(
    "points",
    [{}, {0: (96, 40)}, {2: (76, 62)}, {1: (96, 60)}, {2: (76, 62), 5: (77, 62)}],
    ids=["empty", "nose", "one-shoulder", "neck", "degenerate"],
)
def test_no_person_gives_zeros(points):
    assert not tryon_region(_pose(points), H, W).any()


def test_batched_matches_per_frame():
    kp2 = FULL.clone()
    kp2[[8, 11], 2] = 0.0
    batch = torch.stack([FULL, kp2, torch.zeros(18, 3)])
    out = tryon_region(batch, H, W)
    assert out.shape == (3, H, W)
    for i in range(3):
        assert torch.equal(out[i], tryon_region(batch[i], H, W))


def test_person_mask_intersects_with_dilation():
    person = torch.zeros(H, W)
    person[:, :96] = 1.0  # only the image-left half is the person
    region = tryon_region(FULL, H, W, person_mask=person)
    full = tryon_region(FULL, H, W)
    assert torch.equal(region[:, :96], full[:, :96])
    assert region[:, 96:100].any()  # dilated by max(1, 256 / 64) = 4 px
    assert not region[:, 100:].any()
    assert torch.equal(tryon_region(FULL, H, W, person_mask=torch.ones(H, W)), full)


def test_dilate_grows_region():
    small = tryon_region(FULL, H, W, dilate=0.0)
    big = tryon_region(FULL, H, W, dilate=0.3)
    assert (big >= small).all() and big.sum() > small.sum()


def test_make_background_single_frame():
    frame = torch.rand(3, H, W)
    region = tryon_region(FULL, H, W)
    background, mask = make_background(frame, region, fill=0.25)
    inside = region > 0.5
    assert background.shape == frame.shape and background.dtype == frame.dtype
    assert mask.shape == (1, H, W) and mask.dtype == torch.float32
    assert (background[:, inside] == 0.25).all()
    assert torch.equal(background[:, ~inside], frame[:, ~inside])
    assert torch.equal(mask[0], 1.0 - region)


@pytest.mark.parametrize("region_shape", ["T1HW", "THW", "HW"])
def test_make_background_batched(region_shape):
    t = 3
    frames = torch.rand(t, 3, H, W, dtype=torch.float64)
    regions = (torch.rand(t, H, W) > 0.5).float()
    if region_shape == "T1HW":
        region = regions[:, None]
    elif region_shape == "THW":
        region = regions
    else:
        region, regions = regions[0], regions[:1].expand(t, H, W)
    background, mask = make_background(frames, region)
    assert background.shape == frames.shape and background.dtype == torch.float64
    assert mask.shape == (t, 1, H, W) and mask.dtype == torch.float32
    assert torch.equal(mask[:, 0], 1.0 - regions)
    expected = torch.where(regions[:, None] > 0.5, torch.tensor(0.5, dtype=torch.float64), frames)
    assert torch.equal(background, expected)


@pytest.mark.parametrize(
    "call, argument",
    [
        (lambda: tryon_region(FULL.numpy(), H, W), "keypoints"),
        (lambda: tryon_region(FULL.int(), H, W), "keypoints"),
        (lambda: tryon_region(FULL[:, :2], H, W), "keypoints"),
        (lambda: tryon_region(FULL.expand(2, 2, 18, 3), H, W), "keypoints"),
        (lambda: tryon_region(FULL, 0, W), "height"),
        (lambda: tryon_region(FULL, H, -1), "width"),
        (lambda: tryon_region(FULL, H, 1.5), "width"),
        (lambda: tryon_region(FULL, H, W, dilate=-0.1), "dilate"),
        (lambda: tryon_region(FULL, H, W, person_mask=torch.ones(H, W + 1)), "person_mask"),
        (lambda: tryon_region(FULL, H, W, person_mask=[[1.0]]), "person_mask"),
        (lambda: tryon_region(FULL, H, W, mask_dilate_px=-1), "mask_dilate_px"),
        (lambda: make_background(torch.rand(4, H, W), torch.zeros(H, W)), "frame"),
        (
            lambda: make_background(torch.zeros(3, H, W, dtype=torch.uint8), torch.zeros(H, W)),
            "frame",
        ),
        (lambda: make_background(torch.rand(3, H, W), torch.zeros(H, W - 1)), "region"),
        (lambda: make_background(torch.rand(3, H, W), torch.zeros(2, H, W)), "region"),
        (
            lambda: make_background(torch.rand(3, H, W), torch.zeros(H, W), fill=float("nan")),
            "fill",
        ),
    ],
)
def test_bad_input_raises(call, argument):
    with pytest.raises(InputError) as info:
        call()
    assert info.value.argument == argument


def test_body_frame_remembered_by_value_and_handed_out_as_copies():
    from engine.inputs import tryon_region as tr

    kp = FULL[None]
    first = tr.body_frame(kp, H)
    fresh = tr._body_frame(kp, H)  # computed, not remembered
    assert all(torch.equal(a, b) for a, b in zip(first, fresh, strict=True))
    first.neck.add_(100.0)  # a caller writing into its copy
    again = tr.body_frame(kp.clone(), H)  # same values, another tensor: remembered
    assert torch.equal(again.neck, fresh.neck)
    moved = kp.clone()
    moved[0, :, 0] += 3.0  # other values: computed anew
    shifted = tr.body_frame(moved, H)
    assert torch.allclose(shifted.neck, fresh.neck + torch.tensor([3.0, 0.0]))
    other_height = tr.body_frame(kp, H // 2)  # the height is part of the key
    assert all(torch.equal(a, b) for a, b in zip(other_height, tr._body_frame(kp, H // 2),
                                                 strict=True))  # fmt: skip
