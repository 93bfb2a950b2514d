"""PersonCrop: the training framing (shoulder width, neck height, centring), temporal smoothing,
frames without a usable person, crops that leave the frame (replicated border), the paste-back
region that inverts a crop, and the torch crop and mask smoothing (any device; here on CPU
tensors) against the OpenCV path."""

import cv2
import numpy as np
import pytest
import torch

from engine.errors import InputError
from engine.inputs.person_crop import (
    MIN_SHOULDER_PX,
    SHOULDER_WIDTH_FRACTION,
    CropBox,
    PersonCrop,
)
from engine.keypoints import KEYPOINT_INDEX
from engine.sample_media import read_sample_clip
from tests.runtime_fixtures import upright_pose

H, W = 480, 640  # frame
OUT_H, OUT_W = 128, 96  # the model's input (the lite preset)
RS, LS, NECK = (KEYPOINT_INDEX[n] for n in ("right_shoulder", "left_shoulder", "neck"))


def _shifted(keypoints, dx=0.0, dy=0.0):
    out = keypoints.copy()
    out[:, 0] += dx
    out[:, 1] += dy
    return out


def _gradient_image(h, w, channels=3, dtype=np.uint8):
    """Every pixel distinct enough to tell where a crop pixel came from."""
    ys, xs = np.mgrid[0:h, 0:w]
    base = (ys * 7 + xs * 3) % 251
    if channels == 0:
        return base.astype(dtype)
    return np.stack([(base + 40 * c) % 251 for c in range(channels)], axis=-1).astype(dtype)


def test_framing_matches_the_training_clips():
    crop = PersonCrop(OUT_H, OUT_W)
    keypoints = upright_pose(H, W)
    box = crop.place(keypoints)
    assert isinstance(box, CropBox)
    assert (box.out_height, box.out_width) == (OUT_H, OUT_W)
    # the model's aspect ratio, within the rounding of the integer box
    assert box.height / box.width == pytest.approx(OUT_H / OUT_W, abs=2 / box.width)
    k = box.keypoints_to_crop(keypoints)
    shoulder = abs(k[LS, 0] - k[RS, 0])
    # the training clips' medians: shoulders 0.484 of the width, neck at 0.507 of the height
    assert shoulder / OUT_W == pytest.approx(0.48, abs=0.01)
    assert k[NECK, 1] / OUT_H == pytest.approx(0.5, abs=0.01)
    assert k[NECK, 0] / OUT_W == pytest.approx(0.5, abs=0.01)  # centred
    assert np.array_equal(k[:, 2], keypoints[:, 2])  # confidences unchanged
    # the box itself: centred on the neck, 0.3 W / 0.48 wide
    x0, y0, x1, y1 = box.bounds
    assert (x0 + x1) / 2 == pytest.approx(W / 2, abs=1)
    assert box.width == pytest.approx(0.3 * W / SHOULDER_WIDTH_FRACTION, abs=1)


def test_keypoints_to_crop_maps_the_box_corners():
    box = CropBox(x0=-10, y0=20, width=50, height=100, out_width=25, out_height=40)
    k = np.zeros((18, 3), np.float32)
    k[0] = (-10, 20, 1.0)  # top-left corner
    k[1] = (40, 120, 0.5)  # bottom-right corner
    out = box.keypoints_to_crop(k)
    assert np.allclose(out[0], (0, 0, 1.0)) and np.allclose(out[1], (25, 40, 0.5))
    assert out is not k and k[1, 0] == 40  # the input is not modified
    assert box.bounds == (-10, 20, 40, 120)


def test_missing_neck_uses_the_shoulder_midpoint():
    keypoints = upright_pose(H, W)
    without_neck = keypoints.copy()
    without_neck[NECK] = (0, 0, 0)
    assert PersonCrop(OUT_H, OUT_W).place(without_neck) == PersonCrop(OUT_H, OUT_W).place(keypoints)


def test_small_jitter_is_damped():
    crop = PersonCrop(OUT_H, OUT_W, smoothing=0.35)
    keypoints = upright_pose(H, W)
    first = crop.place(keypoints)
    second = crop.place(_shifted(keypoints, dx=20.0, dy=-10.0))
    # the centre moves by smoothing * shift: 7 px right, 3.5 px up, not 20 and 10
    assert second.x0 - first.x0 == pytest.approx(0.35 * 20, abs=1)
    assert second.y0 - first.y0 == pytest.approx(-0.35 * 10, abs=1)
    assert second.width == first.width  # same shoulders, same size
    # held still, the box converges to the new position
    for _ in range(40):
        last = crop.place(_shifted(keypoints, dx=20.0, dy=-10.0))
    assert last == PersonCrop(OUT_H, OUT_W).place(_shifted(keypoints, dx=20.0, dy=-10.0))


def test_size_changes_are_smoothed_too():
    crop = PersonCrop(OUT_H, OUT_W, smoothing=0.5)
    keypoints = upright_pose(H, W)
    first = crop.place(keypoints)
    wider = keypoints.copy()
    wider[RS, 0] -= 24  # shoulders 48 px further apart: the fresh box would be 100 px wider
    wider[LS, 0] += 24
    second = crop.place(wider)
    fresh = PersonCrop(OUT_H, OUT_W).place(wider)
    assert fresh.width - first.width == pytest.approx(100, abs=1)
    assert second.width - first.width == pytest.approx(50, abs=1)


def test_smoothing_one_follows_at_once():
    crop = PersonCrop(OUT_H, OUT_W, smoothing=1)
    keypoints = upright_pose(H, W)
    crop.place(keypoints)
    moved = _shifted(keypoints, dx=15.0, dy=12.0)
    assert crop.place(moved) == PersonCrop(OUT_H, OUT_W).place(moved)


def test_a_big_horizontal_jump_is_followed_at_once():
    crop = PersonCrop(OUT_H, OUT_W, smoothing=0.1)
    keypoints = upright_pose(H, W)
    first = crop.place(keypoints)
    jump = 0.6 * first.width  # more than half a box width
    moved = _shifted(keypoints, dx=jump)
    assert crop.place(moved) == PersonCrop(OUT_H, OUT_W).place(moved)


def test_a_big_vertical_jump_is_followed_at_once():
    crop = PersonCrop(OUT_H, OUT_W, smoothing=0.1)
    keypoints = upright_pose(H, W)
    first = crop.place(keypoints)
    moved = _shifted(keypoints, dy=0.8 * first.width)  # the box moves by 0.8 of its width
    assert crop.place(moved) == PersonCrop(OUT_H, OUT_W).place(moved)


def test_reset_forgets_the_smoothed_box():
    crop = PersonCrop(OUT_H, OUT_W, smoothing=0.2)
    keypoints = upright_pose(H, W)
    crop.place(keypoints)
    moved = _shifted(keypoints, dx=30.0)
    damped = crop.place(moved)
    crop.reset()
    fresh = crop.place(moved)
    assert fresh == PersonCrop(OUT_H, OUT_W).place(moved)
    assert fresh.x0 - damped.x0 == pytest.approx(0.8 * 30, abs=1)


def test_no_box_without_both_shoulders():
    crop = PersonCrop(OUT_H, OUT_W)
    for index in (RS, LS):
        keypoints = upright_pose(H, W)
        keypoints[index, 2] = 0.0
        assert crop.place(keypoints) is None
    assert crop.place(np.zeros((18, 3), np.float32)) is None
    # a frame without a person does not disturb the smoothing state
    keypoints = upright_pose(H, W)
    assert crop.place(keypoints) == PersonCrop(OUT_H, OUT_W).place(keypoints)


def test_no_box_when_the_shoulders_are_too_close():
    crop = PersonCrop(OUT_H, OUT_W)
    keypoints = upright_pose(H, W)
    keypoints[LS, :2] = keypoints[RS, :2] + (MIN_SHOULDER_PX * 0.9, 0)
    assert crop.place(keypoints) is None
    keypoints[LS, :2] = keypoints[RS, :2] + (MIN_SHOULDER_PX * 1.1, 0)
    assert crop.place(keypoints) is not None


def _edge_reference(image, box):
    """The box of ``image`` padded by edge replication, computed by numpy."""
    pad = max(abs(v) for v in box.bounds) + max(image.shape[:2])
    widths = ((pad, pad), (pad, pad)) + ((0, 0),) * (image.ndim - 2)
    padded = np.pad(image, widths, mode="edge")
    x0, y0, x1, y1 = box.bounds
    return padded[y0 + pad : y1 + pad, x0 + pad : x1 + pad]


@pytest.mark.parametrize(
    "bounds",
    [(-5, -3, 12, 14), (20, 15, 15, 12), (-4, 10, 40, 6), (50, 2, 10, 8), (-20, -30, 7, 9),
     (3, 40, 5, 6), (0, 0, 30, 20), (-25, -30, 12, 15)],
    ids=["top-left", "bottom-right", "wider-than-frame", "right-of-frame", "above-left",
         "below-frame", "inside", "wholly-above-left-near"],
)  # fmt: skip
@pytest.mark.parametrize("kind", ["rgb-uint8", "mask-float32"])
def test_crop_replicates_the_border(bounds, kind):
    image = _gradient_image(20, 30, 3) if kind == "rgb-uint8" else _gradient_image(20, 30, 0)
    if kind == "mask-float32":
        image = image.astype(np.float32) / 250
    x0, y0, w, h = bounds
    # output size = box size: the resize is the identity, so values compare exactly
    crop = PersonCrop(h, w)
    box = CropBox(x0, y0, w, h, out_width=w, out_height=h)
    out = crop.crop(image, box)
    assert out.dtype == image.dtype and out.shape == (h, w) + image.shape[2:]
    assert np.array_equal(out, _edge_reference(image, box))


@pytest.mark.parametrize("kind", ["rgb-uint8", "mask-float32"])
def test_crop_resizes_to_the_model_size(kind):
    image = _gradient_image(H, W, 3)
    if kind == "mask-float32":
        image = (image[..., 0] > 120).astype(np.float32)
    crop = PersonCrop(OUT_H, OUT_W)
    box = crop.place(upright_pose(H, W))
    out = crop.crop(image, box)
    assert out.shape == (OUT_H, OUT_W) + image.shape[2:] and out.dtype == image.dtype
    if kind == "mask-float32":
        assert out.min() >= 0.0 and out.max() <= 1.0
    nearest = crop.crop(image, box, interpolation=cv2.INTER_NEAREST)
    assert set(np.unique(nearest)) <= set(np.unique(image))


def test_crop_keeps_a_single_channel_axis():
    image = _gradient_image(20, 30, 1)
    out = PersonCrop(8, 6).crop(image, CropBox(-2, 3, 12, 16, 6, 8))
    assert out.shape == (8, 6, 1)


def test_constant_image_gives_a_constant_crop_even_outside():
    image = np.full((40, 60, 3), (10, 200, 30), np.uint8)
    crop = PersonCrop(OUT_H, OUT_W)
    for box in (CropBox(-100, -80, 90, 120, OUT_W, OUT_H), CropBox(55, 35, 300, 400, OUT_W, OUT_H)):
        out = crop.crop(image, box)
        assert out.shape == (OUT_H, OUT_W, 3)
        assert np.all(out == (10, 200, 30))


@pytest.mark.parametrize(
    "bounds",
    [(-5, -3, 12, 14), (20, 15, 15, 12), (-4, 10, 40, 6), (0, 0, 30, 20), (4, 5, 6, 7)],
    ids=["top-left", "bottom-right", "wider-than-frame", "whole-frame", "inside"],
)
def test_paste_region_inverts_the_crop(bounds):
    image = _gradient_image(20, 30, 3)
    x0, y0, w, h = bounds
    box = CropBox(x0, y0, w, h, out_width=w, out_height=h)
    out = PersonCrop(h, w).crop(image, box)
    region = PersonCrop.paste_region(box, 20, 30)
    assert region is not None
    frame_part, box_part, size = region
    assert size == (h, w)
    assert np.array_equal(out[box_part], image[frame_part])
    # the region is exactly the box's intersection with the frame
    fy, fx = frame_part
    assert (fx.start, fy.start) == (max(x0, 0), max(y0, 0))
    assert (fx.stop, fy.stop) == (min(x0 + w, 30), min(y0 + h, 20))
    # pasting the crop back leaves the frame unchanged
    pasted = np.zeros_like(image)
    pasted[frame_part] = out[box_part]
    mask = np.zeros(image.shape[:2], bool)
    mask[frame_part] = True
    assert np.array_equal(pasted[mask], image[mask])


@pytest.mark.parametrize(
    "bounds", [(30, 0, 5, 5), (-5, 0, 5, 5), (0, 20, 5, 5), (0, -5, 30, 5), (40, 40, 3, 3)]
)
def test_paste_region_is_none_when_the_box_misses_the_frame(bounds):
    x0, y0, w, h = bounds
    assert PersonCrop.paste_region(CropBox(x0, y0, w, h, w, h), 20, 30) is None


@pytest.mark.parametrize(
    "kwargs, argument",
    [
        ({"out_height": 0, "out_width": 96}, "out_height"),
        ({"out_height": 128.0, "out_width": 96}, "out_height"),
        ({"out_height": True, "out_width": 96}, "out_height"),
        ({"out_height": 128, "out_width": -1}, "out_width"),
        ({"out_height": 128, "out_width": "96"}, "out_width"),
        ({"out_height": 128, "out_width": 96, "smoothing": 0.0}, "smoothing"),
        ({"out_height": 128, "out_width": 96, "smoothing": 1.5}, "smoothing"),
        ({"out_height": 128, "out_width": 96, "smoothing": float("nan")}, "smoothing"),
        ({"out_height": 128, "out_width": 96, "smoothing": "0.5"}, "smoothing"),
        ({"out_height": 128, "out_width": 96, "mask_smoothing": 0.0}, "mask_smoothing"),
        ({"out_height": 128, "out_width": 96, "mask_smoothing": True}, "mask_smoothing"),
    ],
)
def test_bad_constructor_arguments_are_named(kwargs, argument):
    with pytest.raises(InputError) as info:
        PersonCrop(**kwargs)
    assert info.value.argument == argument
    assert str(info.value).startswith(f"{argument}: expected")


def test_bool_smoothing_is_rejected():
    with pytest.raises(InputError) as info:
        PersonCrop(OUT_H, OUT_W, smoothing=True)
    assert info.value.argument == "smoothing"


def _motion(dx=0.0, dy=0.0, scale=1.0):
    return np.array([[scale, 0.0, dx], [0.0, scale, dy]])


def test_the_box_moves_with_the_image_motion():
    # The person moves 30 px right and grows 5 %: told the motion, the smoothed box is where the
    # unsmoothed one is at once; without it, it lags (smoothing 0.35).
    keypoints = upright_pose(H, W)
    moved = keypoints.copy()
    centre = keypoints[NECK, :2]
    moved[:, :2] = (keypoints[:, :2] - centre) * 1.05 + centre + (30.0, 0.0)
    motion = _motion(30.0 - 0.05 * centre[0], -0.05 * centre[1], 1.05)  # about the neck
    told, blind, fresh = (
        PersonCrop(OUT_H, OUT_W),
        PersonCrop(OUT_H, OUT_W),
        PersonCrop(OUT_H, OUT_W),
    )
    told.place(keypoints)
    blind.place(keypoints)
    want = fresh.place(moved)
    got, lag = told.place(moved, motion), blind.place(moved)
    assert max(abs(a - b) for a, b in zip(got.bounds, want.bounds, strict=True)) <= 1
    assert abs(lag.x0 - want.x0) > 10  # 0.65 of the 30 px shift behind


def test_crop_mask_smooths_flicker_along_the_motion_and_resets():
    keypoints = upright_pose(H, W)
    ys, xs = np.mgrid[0:H, 0:W]
    rng = np.random.default_rng(0)
    crop = PersonCrop(OUT_H, OUT_W)
    raw, smooth = [], []
    for i in range(12):  # a silhouette edge moving 4 px per frame, flickering by +-6 px
        shift = 4.0 * i
        box = crop.place(_shifted(keypoints, shift), _motion(4.0) if i else None)
        edge = W / 2 + shift + rng.uniform(-6, 6)
        mask = np.clip((edge - xs + 0.5) / 3.0, 0, 1).astype(np.float32) * (ys > 100)
        raw.append(PersonCrop(OUT_H, OUT_W).crop(mask, box, interpolation=cv2.INTER_LINEAR))
        smooth.append(crop.crop_mask(mask, box, _motion(4.0) if i else None))
        assert smooth[-1].shape == (OUT_H, OUT_W) and smooth[-1].dtype == np.float32
    # In the crop (which moves with the person) the edge stands still: only flicker is left.
    row = OUT_H // 2
    assert (
        np.stack(smooth)[4:, row].std(axis=0).max() < 0.6 * np.stack(raw)[4:, row].std(axis=0).max()
    )  # measured 0.4x
    crop.reset()
    box = crop.place(keypoints)
    first = crop.crop_mask(mask, box)
    plain = PersonCrop(OUT_H, OUT_W).crop(mask, box, interpolation=cv2.INTER_LINEAR)
    np.testing.assert_array_equal(first, plain)  # nothing to smooth with after a reset
    with pytest.raises(InputError, match="^motion:"):
        crop.crop_mask(mask, box, np.eye(3))
    with pytest.raises(InputError, match="^mask:"):
        crop.crop_mask(mask[..., None], box)
    with pytest.raises(InputError, match="^motion:"):
        crop.place(keypoints, np.full((2, 3), np.nan))


# ------------------------------------------------------------------ the torch crop (any device)
# The same boxes as the OpenCV path, on tensors: tested here on CPU tensors, the code a CUDA
# session runs on its device.

_TORCH_BOXES = {
    "inside": (40, 30, 200, 260),
    "top-left-outside": (-60, -40, 210, 280),
    "bottom-right-outside": (500, 300, 240, 320),
    "wider-than-frame": (-100, -120, 840, 1120),
    "misses-the-frame": (-400, -500, 120, 160),
    "tiny": (300, 200, 9, 12),  # upscaled to the model size
    "one-pixel": (10, 10, 1, 1),
    "odd": (33, 17, 151, 203),
}


def _torch_crop(crop, image, box, interpolation="area"):
    out = crop.crop_tensor(torch.from_numpy(image), box, interpolation=interpolation)
    return (out.permute(1, 2, 0) if out.ndim == 3 else out).numpy()


@pytest.mark.parametrize("name", list(_TORCH_BOXES))
@pytest.mark.parametrize("out_size", [(OUT_H, OUT_W), (37, 23)], ids=["model", "odd-out"])
def test_torch_crop_matches_opencv_area_on_uint8(name, out_size):
    """uint8: within OpenCV's rounding to uint8 (0.5) and its fixed-point upscale weights."""
    image = np.random.default_rng(3).integers(0, 256, (H, W, 3), dtype=np.uint8)
    image = cv2.GaussianBlur(image, (0, 0), 2.0)  # camera-like: neighbours correlate
    out_h, out_w = out_size
    x0, y0, w, h = _TORCH_BOXES[name]
    box = CropBox(x0, y0, w, h, out_width=out_w, out_height=out_h)
    crop = PersonCrop(out_h, out_w)
    ref = crop.crop(image, box).astype(np.float64)
    got = _torch_crop(crop, image, box)
    assert got.shape == ref.shape and got.dtype == np.float32
    diff = np.abs(got - ref)
    assert diff.max() <= 0.75, (diff.max(), diff.mean())
    assert diff.mean() <= 0.3


@pytest.mark.parametrize("name", list(_TORCH_BOXES))
@pytest.mark.parametrize("interpolation", ["area", "linear"])
def test_torch_crop_matches_opencv_on_float_masks(name, interpolation):
    """float32 (where OpenCV computes in float too): the same filter to 1e-3 (OpenCV's area
    tables leave out overlaps under 1e-3 px)."""
    rng = np.random.default_rng(4)
    image = cv2.GaussianBlur(rng.random((H, W)).astype(np.float32), (0, 0), 3.0)
    x0, y0, w, h = _TORCH_BOXES[name]
    box = CropBox(x0, y0, w, h, out_width=OUT_W, out_height=OUT_H)
    crop = PersonCrop(OUT_H, OUT_W)
    flag = cv2.INTER_AREA if interpolation == "area" else cv2.INTER_LINEAR
    ref = crop.crop(image, box, interpolation=flag)
    got = _torch_crop(crop, image, box, interpolation)
    assert got.shape == ref.shape == (OUT_H, OUT_W)
    assert np.abs(got - ref).max() <= (1e-3 if interpolation == "area" else 1e-5)


def test_torch_crop_of_the_bundled_clip_is_within_a_grey_level():
    clip = read_sample_clip(max_frames=4)
    crop = PersonCrop(OUT_H, OUT_W)
    box = crop.place(upright_pose(*clip[0].shape[:2]))
    for frame in clip:
        ref = crop.crop(frame, box).astype(np.float64)
        got = crop.crop_tensor(torch.from_numpy(frame), box).permute(1, 2, 0).numpy()
        diff = np.abs(got - ref)
        assert diff.mean() <= 0.3 and diff.max() <= 0.6  # measured 0.24 / 0.50: the rounding


def test_torch_crop_reads_any_strides_and_keeps_the_channel_axis():
    image = _gradient_image(60, 80, 3)
    box = CropBox(-7, 5, 45, 60, out_width=OUT_W, out_height=OUT_H)
    crop = PersonCrop(OUT_H, OUT_W)
    flipped = np.ascontiguousarray(image[:, ::-1])
    want = crop.crop_tensor(torch.from_numpy(flipped), box)
    got = crop.crop_tensor(torch.from_numpy(image).flip(1), box)  # a negative-stride view
    torch.testing.assert_close(got, want, rtol=0, atol=1e-4)
    assert crop.crop_tensor(torch.from_numpy(image[..., :1]), box).shape == (1, OUT_H, OUT_W)
    assert crop.crop_tensor(torch.from_numpy(image[..., 0]), box).shape == (OUT_H, OUT_W)
    constant = torch.full((40, 60, 3), 77, dtype=torch.uint8)
    outside = crop.crop_tensor(constant, CropBox(-100, -80, 90, 120, OUT_W, OUT_H))
    torch.testing.assert_close(outside, torch.full_like(outside, 77.0), rtol=0, atol=1e-3)


@pytest.mark.parametrize(
    "call, argument",
    [
        (lambda c, b: c.crop_tensor(np.zeros((10, 10, 3), np.uint8), b), "image"),
        (lambda c, b: c.crop_tensor(torch.zeros(1, 10, 10, 3), b), "image"),
        (lambda c, b: c.crop_tensor(torch.zeros(10, 10, dtype=torch.bool), b), "image"),
        (lambda c, b: c.crop_tensor(torch.zeros(0, 10, 3), b), "image"),
        (lambda c, b: c.crop_tensor(torch.zeros(10, 10, 3), (0, 0, 5, 5)), "box"),
        (lambda c, b: c.crop_tensor(torch.zeros(10, 10, 3), CropBox(0, 0, 4, 4, 3, 3)), "box"),
        (lambda c, b: c.crop_tensor(torch.zeros(10, 10, 3), b, interpolation="cubic"),
         "interpolation"),
        (lambda c, b: c.smooth_mask(torch.zeros(OUT_H, OUT_W + 1), b), "crop"),
        (lambda c, b: c.smooth_mask(np.zeros((OUT_H, OUT_W), np.float32), b), "crop"),
        (lambda c, b: c.smooth_mask(torch.zeros(OUT_H, OUT_W), b, np.eye(3)), "motion"),
        (lambda c, b: c.crop_mask_tensor(torch.zeros(1, 10, 10), b), "mask"),
    ],
)  # fmt: skip
def test_torch_crop_bad_input_is_named(call, argument):
    crop = PersonCrop(OUT_H, OUT_W)
    box = CropBox(0, 0, 10, 10, OUT_W, OUT_H)
    with pytest.raises(InputError) as info:
        call(crop, box)
    assert info.value.argument == argument


def test_smooth_mask_on_tensors_follows_the_numpy_smoother():
    """The tensor smoothing (the state a device session keeps on its device) against
    :meth:`PersonCrop.crop_mask` (numpy + OpenCV): the same masks over a moving, flickering
    stream, up to OpenCV's 1/32 px warp positions."""
    keypoints = upright_pose(H, W)
    ys, xs = np.mgrid[0:H, 0:W]
    rng = np.random.default_rng(0)
    ref, dev = PersonCrop(OUT_H, OUT_W), PersonCrop(OUT_H, OUT_W)
    for i in range(10):
        shift = 4.0 * i
        motion = _motion(4.0) if i not in (0, 6) else None  # frame 6: the motion is lost
        box = ref.place(_shifted(keypoints, shift), motion)
        assert dev.place(_shifted(keypoints, shift), motion) == box
        edge = W / 2 + shift + rng.uniform(-6, 6)
        mask = np.clip((edge - xs + 0.5) / 3.0, 0, 1).astype(np.float32) * (ys > 100)
        want = ref.crop_mask(mask, box, motion)
        cut = dev.cut_mask(mask, box)
        got = dev.smooth_mask(torch.from_numpy(cut), box, motion)
        assert got.dtype == torch.float32 and got.shape == (OUT_H, OUT_W)
        if motion is None:  # starts over: the crop as it is
            np.testing.assert_array_equal(got.numpy(), cut)
        diff = np.abs(got.numpy() - want)
        assert diff.max() <= 0.03 and diff.mean() <= 1e-3, (i, diff.max(), diff.mean())
    dev.reset()
    fresh = dev.crop_mask_tensor(torch.from_numpy(mask), box, _motion(4.0))
    np.testing.assert_allclose(fresh.numpy(), dev.cut_mask(mask, box), atol=1e-5)


@pytest.mark.parametrize("shape", [(128, 96), (5, 40), (40, 3), (2, 2)])
def test_the_tensor_box_blur_is_opencvs(shape):
    from engine.inputs.person_crop import _box_blur

    image = np.random.default_rng(1).random(shape).astype(np.float32)
    for k in (3, 5, 17):
        want = cv2.blur(image, (k, k))
        got = _box_blur(torch.from_numpy(image), k).numpy()
        np.testing.assert_allclose(got, want, atol=1e-5)  # float32 running sums


def test_the_tensor_warp_is_opencvs_warp_affine():
    from engine.inputs.person_crop import _warp

    image = cv2.GaussianBlur(np.random.default_rng(2).random((64, 48)).astype(np.float32),
                             (0, 0), 2.0)  # fmt: skip
    angle = np.deg2rad(3.0)
    motion = np.array([[1.02 * np.cos(angle), -np.sin(angle), 2.3],
                       [np.sin(angle), 1.02 * np.cos(angle), -1.7]])  # fmt: skip
    want = cv2.warpAffine(image, motion, (48, 64), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REPLICATE)  # fmt: skip
    got = _warp(torch.from_numpy(image), motion).numpy()
    assert np.abs(got - want).max() <= 0.02  # OpenCV rounds the positions to 1/32 px
    assert np.abs(got - want).mean() <= 2e-3
    degenerate = np.zeros((2, 3))
    np.testing.assert_array_equal(_warp(torch.from_numpy(image), degenerate).numpy(), image)
