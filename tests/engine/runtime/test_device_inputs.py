"""Frames on the device: the inputs stage's torch path, run here on CPU tensors.

A CUDA session uploads the frame once, crops it and builds the inputs on the GPU, and pastes into
the same device copy (engine.runtime.stages.BuildInputs, crop_impl="torch"). Everything of that
path but the two bus copies themselves is the same code on CPU tensors, so it is tested here: the
sampling of the mask by torch (OpenCV's remap to the bit), the keypoints' host copy that saves the
copies back from the device, the inputs of the torch path against the OpenCV path on the bundled
clip, and a frame uploaded once for both the crop and the paste.
"""

import cv2
import numpy as np
import pytest
import torch

import engine.runtime.session as session_module
from engine import TryOnSession
from engine.errors import InputError
from engine.inputs import keypoint_mirror as km
from engine.inputs import tryon_region as tr
from engine.inputs.body_outline import sample_mask
from engine.inputs.garment_image import load_garment_image
from engine.inputs.person_crop import PersonCrop
from engine.perception.person_detector import PersonDetection, PersonDetector
from engine.runtime.frame_transfer import FrameTransfer
from engine.runtime.paste import Paste
from engine.runtime.stage_stats import StageStats
from engine.runtime.stages import BuildInputs, Finish, FrameWork
from engine.sample_media import read_sample_clip, sample_garment_path
from kernels import rgb_to_ycbcr, skin_mask
from tests.runtime_fixtures import ScriptedTracker, tiny_model_file, upright_pose

OUT_H, OUT_W = 128, 96


# ------------------------------------------------------------------ sampling the mask


@pytest.mark.parametrize("seed", range(6))
def test_sample_mask_is_opencv_remap_to_the_bit(seed):
    """The outline's samples as cv2.remap(INTER_LINEAR, BORDER_REPLICATE) gave them on the host
    (positions rounded to 1/32 px), -1 outside: the outline on the CPU is unchanged."""
    rng = np.random.default_rng(seed)
    h, w = (int(v) for v in rng.integers(1, 50, 2))
    mask = rng.random((h, w)).astype(np.float32)
    pts = np.stack([rng.uniform(-3, w + 3, 800), rng.uniform(-3, h + 3, 800)], 1)
    pts[:100] = np.round(pts[:100] * 64) / 64  # ties of the 1/32 rounding
    pts[100:110] = [[0, 0], [w, h], [0.5, 0.5], [w - 0.5, h - 0.5], [w, 0], [0, h],
                    [1e-9, 3.0], [w - 1e-9, 1.0], [0.25, h], [w, 0.75]]  # fmt: skip
    mx = (pts[:, 0] - 0.5).astype(np.float32)[None]
    my = (pts[:, 1] - 0.5).astype(np.float32)[None]
    want = cv2.remap(mask, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)[0]
    outside = (pts[:, 0] < 0) | (pts[:, 0] > w) | (pts[:, 1] < 0) | (pts[:, 1] > h)
    want = np.where(outside, -1.0, want).astype(np.float32)
    got = sample_mask(torch.from_numpy(mask), pts)
    assert got.dtype == torch.float32 and got.shape == (800,)
    np.testing.assert_array_equal(got.numpy(), want)


# ------------------------------------------------------------------ the keypoints' host copy


def test_a_registered_host_copy_answers_for_every_view_until_a_write():
    """CPU tensors stand in for the device: the host copy holds other values, so a read that
    used it shows."""
    device_kp = torch.arange(2 * 18 * 3, dtype=torch.float32).reshape(2, 18, 3)
    marked = device_kp + 1000.0
    km.mirror_keypoints(device_kp, marked)
    for view in (device_kp, device_kp[1], device_kp.reshape(-1, 18, 3), device_kp.detach(),
                 device_kp[:, 3:7], device_kp[0, :, :2]):  # fmt: skip
        got = km.host_keypoints(view)
        assert got.device.type == "cpu" and got.dtype == torch.float32
        assert torch.equal(got, view + 1000.0)
    device_kp[0, 0, 0] = 5.0  # written in place: the copy no longer holds
    assert torch.equal(km.host_keypoints(device_kp[1]), device_kp[1])
    other = torch.zeros(18, 3)
    assert km.host_keypoints(other) is not None and torch.equal(km.host_keypoints(other), other)


@pytest.mark.parametrize(
    "keypoints, host, argument",
    [
        (torch.zeros(4, 18, 3)[1:], torch.zeros(3, 18, 3), "keypoints"),  # a view
        (torch.zeros(18, 3).T, torch.zeros(3, 18), "keypoints"),  # not contiguous
        (torch.zeros(18, 3, dtype=torch.int64), torch.zeros(18, 3, dtype=torch.int64),
         "keypoints"),
        (torch.zeros(18, 3), torch.zeros(18, 2), "host"),
        (torch.zeros(18, 3), np.zeros((18, 3), np.float32), "host"),
        (torch.zeros(18, 3), torch.zeros(18, 3, dtype=torch.float64), "host"),
    ],
)  # fmt: skip
def test_mirror_keypoints_bad_input_is_named(keypoints, host, argument):
    with pytest.raises(InputError) as info:
        km.mirror_keypoints(keypoints, host)
    assert info.value.argument == argument


def test_body_frame_moved_in_one_copy_is_the_same_geometry():
    kp = torch.from_numpy(upright_pose(OUT_H, OUT_W))[None]
    want = tr.body_frame(kp, OUT_H)
    moved = tr._moved(want, torch.device("cpu"))  # what a device gets: one packed copy
    for a, b in zip(moved, want, strict=True):
        assert a.dtype == b.dtype and a.shape == b.shape and torch.equal(a, b)
    moved.neck[0, 0] = -1.0  # the fields do not overlap
    assert moved.r_shoulder[0, 0] == want.r_shoulder[0, 0] and want.neck[0, 0] != -1.0


def _skin_like_reference(frame, kp):
    """skin_like's calibration as written before (boolean indexing of the face pixels)."""
    _, h, w = frame.shape
    eyes = [tr.KEYPOINT_INDEX["right_eye"], tr.KEYPOINT_INDEX["left_eye"]]
    r = max(0.6 * float((kp[eyes[0], :2] - kp[eyes[1], :2]).norm()), 2.0)
    ys = torch.arange(h, dtype=torch.float32)[:, None] + 0.5
    xs = torch.arange(w, dtype=torch.float32)[None, :] + 0.5
    near = torch.zeros(h, w, dtype=torch.bool)
    for i in tr._FACE[:3]:
        near |= (xs - kp[i, 0]) ** 2 + (ys - kp[i, 1]) ** 2 <= r * r
    x = frame[None].clamp(0, 1)
    ycc = rgb_to_ycbcr(x)[0] * 255.0
    cb, cr = ycc[1][near], ycc[2][near]
    spread = [1.4826 * float((v - v.median()).abs().median()) for v in (cb, cr)]
    axes = tuple(min(max(tr.SKIN_SPREAD * s, tr.SKIN_MIN_AXIS), tr.SKIN_MAX_AXIS) for s in spread)
    return skin_mask(x, center=(float(cb.median()), float(cr.median())), axes=axes, angle=0.0,
                     offset=(0.0, 0.0))[0]  # fmt: skip


def test_skin_like_calibrates_on_the_face_pixels_gathered_by_index():
    rng = np.random.default_rng(5)
    kp = torch.from_numpy(upright_pose(OUT_H, OUT_W))
    frame = torch.from_numpy(rng.random((3, OUT_H, OUT_W)).astype(np.float32))
    frame[:, 10:40, 30:66] = torch.tensor([0.8, 0.55, 0.45])[:, None, None]  # a face colour
    frame[:, 10:40, 30:66] += 0.03 * torch.from_numpy(rng.standard_normal((3, 30, 36))).float()
    got = tr.skin_like(frame, kp)
    assert got.dtype == torch.bool and got.shape == (1, OUT_H, OUT_W)
    assert torch.equal(got, _skin_like_reference(frame, kp))
    assert got[0, 12:38, 32:64].float().mean() > 0.9  # the face itself is skin


def test_the_forearm_test_on_the_host_never_misses_a_pixel():
    """_touches (the host's test that replaced an ``any()`` on the device) says yes for every
    capsule that holds a pixel centre."""
    rng = np.random.default_rng(6)
    h, w = 40, 30
    xs, ys = torch.arange(w) + 0.5, torch.arange(h) + 0.5
    missed = 0
    for _ in range(400):
        a = torch.from_numpy(rng.uniform(-30, 60, 2)).float()
        b = torch.from_numpy(rng.uniform(-30, 60, 2)).float()
        r = float(rng.uniform(0.5, 8))
        hit = bool((tr._segment_dist2(xs, ys, a[None, None], b[None, None]) <= r * r).any())
        missed += hit and not tr._touches(a, b, r, h, w)
    assert missed == 0


def test_shading_of_an_empty_area_is_ones_without_a_test():
    frame = torch.rand(3, 20, 16)
    out = tr.clothing_shading(frame, torch.zeros(1, 20, 16))
    assert out.dtype == torch.float32 and torch.equal(out, torch.ones(1, 20, 16))


# ------------------------------------------------------------------ FrameTransfer uploads


def test_upload_takes_uint8_frames_and_float32_crops_and_names_bad_input():
    transfer = FrameTransfer("cpu")
    cut = np.random.default_rng(0).random((OUT_H, OUT_W)).astype(np.float32)
    up = transfer.upload(cut[:, ::-1])
    assert up.dtype == torch.float32 and up.is_contiguous()
    assert np.array_equal(up.numpy(), cut[:, ::-1]) and not np.shares_memory(up.numpy(), cut)
    for bad in (cut.astype(np.float64), torch.zeros(3, 3), [[1, 2]], None):
        with pytest.raises(InputError) as info:
            transfer.upload(bad)
        assert info.value.argument == "frame"
    with pytest.raises(InputError) as info:
        FrameTransfer("not-a-device")
    assert info.value.argument == "device"


# ------------------------------------------------------------------ BuildInputs on the clip


@pytest.fixture(scope="module")
def perceived():
    clip = read_sample_clip(max_frames=8)
    with PersonDetector(smoothing=True) as detector:
        detections = [detector(frame, i / 24) for i, frame in enumerate(clip)]
    assert all(d.person_found for d in detections)
    return clip, detections


@pytest.fixture(scope="module")
def garment():
    return load_garment_image(sample_garment_path())


def _build(impl, clip, detections, garment, *, masks=True):
    stage = BuildInputs(PersonCrop(OUT_H, OUT_W), lambda: garment, crop_impl=impl)
    works = []
    for i, (frame, d) in enumerate(zip(clip, detections, strict=True)):
        d = d if masks else PersonDetection(d.keypoints, None, {}, d.motion)
        works.append(stage(FrameWork(frame, i, i / 24, {}), d))
    return works


BINARY = ("background_mask", "region")


def test_the_torch_path_builds_the_opencv_paths_inputs(perceived, garment):
    """Within the crop's rounding (0.5 grey level) and the mask smoothing's warp positions:
    every input within 2e-3 on average (measured <= 6e-4), the garment grid within 0.01
    (measured 0.003), the binary masks differing in under 1 % of pixels (the smoothed mask
    crossing 0.5 a pixel earlier or later; measured < 0.01 %)."""
    clip, detections = perceived
    ref = _build("opencv", clip, detections, garment)
    got = _build("torch", clip, detections, garment)
    for a, b in zip(ref, got, strict=True):
        assert b.box == a.box and b.inputs is not None and b.restart == a.restart
        ma = {**a.inputs, **a.extras, "region": a.region}
        mb = {**b.inputs, **b.extras, "region": b.region}
        assert ma.keys() == mb.keys()
        for name in ma:
            x, y = ma[name], mb[name]
            assert y.shape == x.shape and y.dtype == x.dtype and y.device.type == "cpu", name
            if name == "garment_grid":
                assert (x - y).abs().max() < 0.01, name
            else:
                assert (x - y).abs().mean() < 2e-3, name
            if name in BINARY:
                assert (x != y).float().mean() < 0.01, name
        torch.testing.assert_close(mb["pose"], ma["pose"], rtol=0, atol=0)


def test_without_a_mask_only_the_crop_differs(perceived, garment):
    """No person mask: the keypoints are the same, so the geometry is identical to the bit and
    the pixels differ by the crop's rounding only."""
    clip, detections = perceived
    ref = _build("opencv", clip, detections, garment, masks=False)
    got = _build("torch", clip, detections, garment, masks=False)
    for a, b in zip(ref, got, strict=True):
        for name in ("pose", "background_mask"):
            assert torch.equal(b.inputs[name], a.inputs[name]), name
        assert torch.equal(b.region, a.region)
        assert (b.inputs["background"] - a.inputs["background"]).abs().max() <= 0.6 / 255
        assert (b.inputs["cloth"] - a.inputs["cloth"]).abs().max() < 1e-5


def test_the_uploaded_frame_travels_with_the_work(perceived, garment):
    clip, detections = perceived
    work = _build("torch", clip[:1], detections[:1], garment)[0]
    frame = work.device_frame
    assert frame.dtype == torch.uint8 and tuple(frame.shape) == clip[0].shape
    assert np.array_equal(frame.numpy(), clip[0]) and not np.shares_memory(frame.numpy(), clip[0])
    assert _build("opencv", clip[:1], detections[:1], garment)[0].device_frame is None


def _counting(monkeypatch):
    """Count FrameTransfer.upload calls by the shape of what is uploaded."""
    calls = []
    upload = FrameTransfer.upload

    def counted(self, frame):
        calls.append(tuple(frame.shape))
        return upload(self, frame)

    monkeypatch.setattr(FrameTransfer, "upload", counted)
    return calls


@pytest.mark.parametrize("impl, frame_uploads", [("torch", 1), ("opencv", 1)])
def test_the_frame_is_uploaded_once_for_the_crop_and_the_paste(
    perceived, garment, monkeypatch, impl, frame_uploads
):
    """The paste writes into the frame the inputs stage uploaded (torch path) instead of
    uploading it again; the OpenCV path's one upload is the paste's. The result is the same
    image either way."""
    clip, detections = perceived
    calls = _counting(monkeypatch)
    stage = BuildInputs(PersonCrop(OUT_H, OUT_W), lambda: garment, crop_impl=impl)
    finish = Finish(Paste("garment", 1.0), StageStats())
    work = stage(FrameWork(clip[0], 0, 0.0, {}), detections[0])
    outputs = {"rendered": work.inputs["background"].clone(),
               "cloth_mask": work.inputs["cloth"][:, 3:4].clone()}  # fmt: skip
    maps = {**work.inputs, **work.extras, "region": work.region}
    fresh = Paste("garment", 1.0)(clip[0], work.box, outputs, maps, garment.rgba)  # uploads
    calls.clear()
    stage = BuildInputs(PersonCrop(OUT_H, OUT_W), lambda: garment, crop_impl=impl)
    work = stage(FrameWork(clip[0], 0, 0.0, {}), detections[0])
    result = finish(work, outputs, 1.0)
    assert calls.count(clip[0].shape) == frame_uploads, calls
    assert calls.count((OUT_H, OUT_W)) == (1 if impl == "torch" else 0)  # the mask's crop
    assert result.person_found and np.array_equal(result.image, fresh)
    assert not np.array_equal(result.image, clip[0])  # something was pasted


@pytest.mark.parametrize(
    "kwargs, argument",
    [
        ({"device": "not-a-device"}, "device"),
        ({"device": 3.5}, "device"),
        ({"crop_impl": "cuda"}, "crop_impl"),
        ({"device": "meta", "crop_impl": "opencv"}, "crop_impl"),
    ],
)
def test_build_inputs_bad_arguments_are_named(kwargs, argument):
    with pytest.raises(InputError) as info:
        BuildInputs(PersonCrop(OUT_H, OUT_W), lambda: None, **kwargs)
    assert info.value.argument == argument


def test_the_device_decides_the_default_crop():
    crop = PersonCrop(OUT_H, OUT_W)
    assert BuildInputs(crop, lambda: None).crop_impl == "opencv"
    assert BuildInputs(crop, lambda: None, device="meta").crop_impl == "torch"
    assert BuildInputs(crop, lambda: None, device="cuda").device.type == "cuda"  # no CUDA needed


def test_the_session_builds_inputs_on_its_runners_device(tmp_path, monkeypatch):
    """A CPU session keeps the OpenCV crop; a runner on another device (a stand-in with
    ``device = cuda``: no GPU needed to build the session) gets the torch crop there."""
    model = tiny_model_file(tmp_path)
    with TryOnSession(str(model), backend="torch", tracker=ScriptedTracker()) as cpu:
        assert cpu._build.device == cpu.window.device == torch.device("cpu")
        assert cpu._build.crop_impl == "opencv"

    real = session_module.make_streaming_runner

    def on_cuda(*args, **kwargs):
        runner = real(*args, **kwargs)
        runner.device = torch.device("cuda")  # what a CUDA runner reports
        return runner

    monkeypatch.setattr(session_module, "make_streaming_runner", on_cuda)
    with TryOnSession(str(model), backend="torch", tracker=ScriptedTracker()) as gpu:
        assert gpu._build.device == torch.device("cuda") and gpu._build.crop_impl == "torch"
        assert gpu._build.transfer.device == torch.device("cuda")


def test_the_device_path_reads_nothing_back_from_the_device():
    """On the ``meta`` device every read of a value raises (there are none): the crop, the mask
    smoothing, the body frame, the region and the paste mask (no forearm in front: the skin
    calibration's one small copy back is by design) run there without one."""
    meta = torch.device("meta")
    host = torch.from_numpy(upright_pose(OUT_H, OUT_W))[None]
    host[0, tr._RW, 2] = host[0, tr._LW, 2] = 0.0  # no wrists: no forearm, no skin test
    kp = host.to(meta)
    km.mirror_keypoints(kp, host)
    bf = tr.body_frame(kp, OUT_H)
    assert bf.neck.device == meta and bf.valid.dtype == torch.bool and bf.neck.shape == (1, 2)
    mask = torch.zeros(1, OUT_H, OUT_W, device=meta)
    assert tr.tryon_region(kp, OUT_H, OUT_W, person_mask=mask).device == meta
    frame = torch.zeros(3, OUT_H, OUT_W, device=meta)
    assert tr.paste_mask(frame, kp[0], mask, person_mask=mask[0]).device == meta
    crop = PersonCrop(OUT_H, OUT_W)
    box = crop.place(upright_pose(480, 640))
    image = torch.zeros(480, 640, 3, dtype=torch.uint8, device=meta)
    assert crop.crop_tensor(image, box).shape == (3, OUT_H, OUT_W)
    crop.smooth_mask(mask[0], box, None)
    motion = np.array([[1.0, 0.0, 2.0], [0.0, 1.0, -1.0]])
    assert crop.smooth_mask(mask[0], box, motion).device == meta
    unregistered = host.clone().to(meta)  # no host copy: the body frame is computed there
    assert tr.body_frame(unregistered, OUT_H).neck.device == meta
