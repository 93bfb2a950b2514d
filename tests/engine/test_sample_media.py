import cv2
import numpy as np
import pytest
import torch

from engine.errors import InputError
from engine.inputs.garment import GARMENT_POINTS, garment_keypoints
from engine.sample_media import (
    ASSETS_DIR,
    CLIP_FRAMES,
    CLIP_HEIGHT,
    CLIP_WIDTH,
    read_sample_clip,
    read_sample_garment,
    sample_clip_camera,
    sample_clip_path,
    sample_garment_path,
    sample_source_path,
)
from engine.training.sample_assets import write_sample_assets

P = {name: i for i, name in enumerate(GARMENT_POINTS)}


@pytest.fixture(scope="module")
def clip() -> list[np.ndarray]:
    return read_sample_clip()


def test_assets_are_bundled_and_small():
    paths = [sample_clip_path(), sample_garment_path(), sample_source_path()]
    for path in paths:
        assert path.is_file() and path.parent == ASSETS_DIR
    assert (ASSETS_DIR / "README.md").is_file()
    assert sum(p.stat().st_size for p in paths) < 3 * 2**20


def test_clip_reads_back_with_opencv(clip):
    assert len(clip) == CLIP_FRAMES
    for frame in clip:
        assert frame.shape == (CLIP_HEIGHT, CLIP_WIDTH, 3) and frame.dtype == np.uint8
        assert frame.flags.c_contiguous
    cap = cv2.VideoCapture(str(sample_clip_path()))
    assert cap.isOpened()
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == CLIP_FRAMES
    assert cap.get(cv2.CAP_PROP_FPS) == pytest.approx(24.0)
    cap.release()


def test_max_frames(clip):
    first = read_sample_clip(max_frames=3)
    assert len(first) == 3
    np.testing.assert_array_equal(first[2], clip[2])
    assert len(read_sample_clip(max_frames=1000)) == CLIP_FRAMES


def test_frames_change_like_a_webcam(clip):
    # camera motion, exposure and noise: no two frames alike
    assert np.abs(clip[0].astype(np.int16) - clip[40].astype(np.int16)).mean() > 10.0
    assert np.abs(clip[0].astype(np.int16) - clip[1].astype(np.int16)).mean() > 1.0


def test_camera_path_stays_inside_the_photo():
    mats = sample_clip_camera()
    assert mats.shape == (CLIP_FRAMES, 2, 3) and mats.dtype == np.float64
    corners = np.array(
        [[0, 0, 1], [CLIP_WIDTH, 0, 1], [0, CLIP_HEIGHT, 1], [CLIP_WIDTH, CLIP_HEIGHT, 1]]
    )
    for m in mats:
        inv = cv2.invertAffineTransform(m)  # frame -> photo
        src = corners @ inv.T  # (4, 2)
        assert (src >= -1e-6).all() and (src <= 512 + 1e-6).all()
    zoom = np.sqrt(np.abs(np.linalg.det(mats[:, :, :2])))
    assert 1.27 < zoom.min() < zoom.max() < 1.38  # 640 / 500 .. 640 / 470
    assert sample_clip_camera(1).shape == (1, 2, 3)


def test_garment_is_rgba_with_findable_landmarks():
    rgba = read_sample_garment()
    assert rgba.shape == (512, 384, 4) and rgba.dtype == np.uint8
    alpha = rgba[..., 3]
    assert set(np.unique(alpha).tolist()) == {0, 255}
    assert 0.2 < (alpha > 0).mean() < 0.7
    tensor = torch.from_numpy(rgba).permute(2, 0, 1).float() / 255.0  # (4, Hg, Wg)
    pts = garment_keypoints(tensor).numpy()  # (10, 2) x, y
    x, y = pts[:, 0], pts[:, 1]
    for side in ("collar", "shoulder", "sleeve", "armpit", "hem"):
        assert x[P[f"{side}_right"]] < 192 < x[P[f"{side}_left"]]  # wearer's right = image left
    assert y[P["collar_right"]] < y[P["armpit_right"]] < y[P["hem_right"]]
    assert x[P["sleeve_right"]] < x[P["armpit_right"]]  # a t-shirt: sleeves stick out
    assert x[P["sleeve_left"]] > x[P["armpit_left"]]
    for i, (px, py) in enumerate(pts):  # every landmark lies on (or at the edge of) the garment
        r, c = int(py), int(px)
        assert alpha[max(r - 3, 0) : r + 4, max(c - 3, 0) : c + 4].any(), GARMENT_POINTS[i]


def test_regenerating_gives_the_bundled_clip(tmp_path, clip):
    # The bundled clip is the encoded render_sample_clip(); encoding costs 3-4 levels of mean
    # absolute difference against the uncompressed frames (the sensor noise it drops, blocking).
    written = write_sample_assets(tmp_path)
    assert set(written) == {"clip", "garment"}
    cap = cv2.VideoCapture(str(written["clip"]))
    for i in range(CLIP_FRAMES):
        ok, bgr = cap.read()
        assert ok
        diff = np.abs(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB).astype(np.int16) - clip[i])
        assert diff.mean() < 2.5  # identical here; another FFmpeg build may encode differently
    cap.release()
    garment = cv2.imread(str(written["garment"]), cv2.IMREAD_UNCHANGED)
    assert garment.shape == (512, 384, 4)


@pytest.mark.parametrize("value", [0, -1, 2.0, "3", True])
def test_bad_frame_counts_raise(value):
    with pytest.raises(InputError, match="^max_frames:"):
        read_sample_clip(max_frames=value)
    with pytest.raises(InputError, match="^frames:"):
        sample_clip_camera(value)


def test_bad_out_dir_raises(tmp_path):
    with pytest.raises(InputError, match="^out_dir:"):
        write_sample_assets(3)
    afile = tmp_path / "a_file"
    afile.write_text("x")
    with pytest.raises(InputError, match="^out_dir:"):
        write_sample_assets(afile)
