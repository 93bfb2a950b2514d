"""The paste stage on the bundled clip: the garment keeps its detail at full resolution, pixels
outside the crop box never change, the stage works without a session, and it pastes into a frame
the inputs stage already uploaded instead of uploading it again."""

import cv2
import numpy as np
import pytest
import torch

from engine import TryOnSession
from engine.errors import InputError
from engine.inputs.person_crop import CropBox
from engine.runtime.frame_transfer import FrameTransfer
from engine.runtime.paste import Paste
from engine.sample_media import read_sample_clip, sample_garment_path


def _laplacian_variance(image: np.ndarray, mask: np.ndarray) -> float:
    gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float64)
    return float(cv2.Laplacian(gray, cv2.CV_64F)[mask].var())


@pytest.fixture(scope="module")
def result():
    clip = read_sample_clip(max_frames=6)
    with TryOnSession("demo", backend="torch") as s:
        s.set_garment(sample_garment_path())
        for i, frame in enumerate(clip):
            r = s.process(frame, timestamp_s=i / 24)
    return clip[-1], r


def test_the_garment_keeps_its_detail(result):
    """Inside the garment area the output's Laplacian variance is at least twice that of the
    same area after a round trip through the model size (what the old paste produced)."""
    frame, r = result
    assert r.person_found
    x0, y0, x1, y1 = r.crop_box
    changed = np.abs(r.image.astype(int) - frame.astype(int)).sum(axis=2) > 30
    erode = cv2.erode(changed.astype(np.uint8), np.ones((9, 9), np.uint8)).astype(bool)
    assert erode.sum() > 2000  # a real garment area, not a few pixels
    h, w = 128, 96  # the demo's model size
    crop = r.image[max(y0, 0) : y1, max(x0, 0) : x1]
    small = cv2.resize(crop, (w, h), interpolation=cv2.INTER_AREA)
    round_trip = r.image.copy()
    round_trip[max(y0, 0) : y1, max(x0, 0) : x1] = cv2.resize(
        small, (crop.shape[1], crop.shape[0]), interpolation=cv2.INTER_LINEAR
    )
    sharp, blurred = _laplacian_variance(r.image, erode), _laplacian_variance(round_trip, erode)
    assert sharp >= 2.0 * blurred, (sharp, blurred)


def test_pixels_outside_the_box_are_untouched(result):
    frame, r = result
    x0, y0, x1, y1 = r.crop_box
    outside = np.ones(frame.shape[:2], bool)
    outside[max(y0, 0) : max(y1, 0), max(x0, 0) : max(x1, 0)] = False
    assert np.array_equal(r.image[outside], frame[outside])


def test_the_stage_alone_pastes_the_texture_where_the_mask_says():
    frame, box, outputs, maps, garment = _tiny_paste_case(channel=1, frame_value=10, x0=5)
    out = Paste("garment", 0.0)(frame, box, outputs, maps, garment)
    inner = out[8:32, 8:26]
    assert (inner[..., 1] == 255).all() and (inner[..., [0, 2]] == 0).all()
    assert (out[:4] == 10).all() and (out[:, :5] == 10).all() and (frame == 10).all()
    # region mode: the generator's own cloth mask (0 here), so its rendered image (black) shows
    region = Paste("region", 0.0)(frame, box, outputs, maps, garment)
    assert (region[8:32, 8:26] == 0).all() and (region[:4] == 10).all()


def _tiny_paste_case(*, channel: int = 0, frame_value: int | None = None, x0: int = -3):
    """A 40x50 frame (random, or all ``frame_value``), an opaque garment of one colour channel
    and model-size maps that paste all of it into a 24x32 box at (x0, 4)."""
    h, w = 16, 12
    if frame_value is None:
        frame = np.random.default_rng(7).integers(0, 256, (40, 50, 3), dtype=np.uint8)
    else:
        frame = np.full((40, 50, 3), frame_value, np.uint8)
    garment = torch.zeros(4, 32, 24)
    garment[channel], garment[3] = 1.0, 1.0
    ys, xs = torch.meshgrid(torch.linspace(-0.9, 0.9, h), torch.linspace(-0.9, 0.9, w),
                            indexing="ij")  # fmt: skip
    maps = {
        "garment_grid": torch.stack([xs, ys], -1)[None],
        "cloth": torch.ones(1, 4, h, w),
        "region": torch.ones(1, 1, h, w),
        "paste_mask": torch.ones(1, 1, h, w),
    }
    outputs = {"rendered": torch.zeros(1, 3, h, w), "cloth_mask": torch.zeros(1, 1, h, w)}
    box = CropBox(x0=x0, y0=4, width=24, height=32, out_width=w, out_height=h)
    return frame, box, outputs, maps, garment


def test_the_paste_writes_into_the_frame_already_uploaded(monkeypatch):
    """A ``device_frame`` (the inputs stage's upload) is pasted into in place: no second upload,
    the same image as a paste that uploads, and the frame as filmed left alone."""
    frame, box, outputs, maps, garment = _tiny_paste_case()
    before = frame.copy()
    want = Paste("garment", 0.5)(frame, box, outputs, maps, garment)
    uploads = []
    upload = FrameTransfer.upload
    monkeypatch.setattr(FrameTransfer, "upload",
                        lambda self, f: uploads.append(f.shape) or upload(self, f))  # fmt: skip
    device_frame = torch.from_numpy(frame.copy())
    got = Paste("garment", 0.5)(frame, box, outputs, maps, garment, device_frame=device_frame)
    assert uploads == []
    assert np.array_equal(got, want) and np.array_equal(frame, before)
    assert np.array_equal(device_frame.numpy(), want)  # written in place (consumed)
    # one on another device than the outputs is not used: the frame is uploaded instead
    elsewhere = torch.empty(frame.shape, dtype=torch.uint8, device="meta")
    again = Paste("garment", 0.5)(frame, box, outputs, maps, garment, device_frame=elsewhere)
    assert uploads == [frame.shape] and np.array_equal(again, want)


@pytest.mark.parametrize(
    "device_frame",
    [np.zeros((40, 50, 3), np.uint8), torch.zeros(40, 50, 3), torch.zeros(40, 49, 3).byte()],
    ids=["numpy", "float", "shape"],
)
def test_a_bad_device_frame_is_named(device_frame):
    frame, box, outputs, maps, garment = _tiny_paste_case()
    with pytest.raises(InputError) as info:
        Paste("garment", 0.0)(frame, box, outputs, maps, garment, device_frame=device_frame)
    assert info.value.argument == "device_frame"
