from pathlib import Path

import cv2
import mediapipe
import numpy as np
import pytest

from engine.errors import BackendUnavailableError, InputError, ModelLoadError
from engine.keypoints import KEYPOINT_INDEX as K
from engine.perception.motion_stabilizer import MotionStabilizer
from engine.perception.person_detector import (
    BLAZEPOSE_TO_OPENPOSE,
    DEFAULT_POSE_EVERY,
    PersonDetection,
    PersonDetector,
    blazepose_to_openpose,
)
from engine.sample_media import CLIP_FPS, read_sample_clip, sample_clip_camera, sample_source_path

H, W = 480, 640
# Where mediapipe puts her shoulders in the (static) source photo, in its pixels.
SOURCE_SHOULDERS = np.array([[112.7, 240.0], [306.2, 256.6]])  # right, left


def _track(frames, **kwargs) -> list[PersonDetection]:
    with PersonDetector(**kwargs) as tracker:
        return [tracker(frame, i / CLIP_FPS) for i, frame in enumerate(frames)]


def _jitter(detections: list[PersonDetection]) -> float:
    """Mean |second difference| (px) of nose, neck and shoulders over the clip."""
    xy = np.stack([d.keypoints[[K["nose"], K["neck"], 2, 5], :2] for d in detections])
    return float(np.abs(xy[2:] - 2 * xy[1:-1] + xy[:-2]).mean())


@pytest.fixture(scope="module")
def clip() -> list[np.ndarray]:
    return read_sample_clip()


@pytest.fixture(scope="module")
def tracker():
    with PersonDetector(segmentation="none") as shared:
        yield shared


@pytest.fixture(scope="module")
def raw(clip) -> list[PersonDetection]:
    return _track(clip, smoothing=False)


@pytest.fixture(scope="module")
def smooth(clip) -> list[PersonDetection]:
    return _track(clip, smoothing=True)


def test_person_found_on_the_clip(raw, smooth):
    for run in (raw, smooth):
        found = sum(d.person_found for d in run)
        assert found >= 0.95 * len(run)  # measured: every frame


def test_keypoints_format_and_bounds(smooth):
    for d in smooth:
        kp = d.keypoints
        assert kp.shape == (18, 3) and kp.dtype == np.float32
        conf = kp[:, 2]
        assert ((conf >= 0) & (conf <= 1)).all()
        seen = conf > 0
        assert (kp[seen, 0] >= 0).all() and (kp[seen, 0] < W).all()
        assert (kp[seen, 1] >= 0).all() and (kp[seen, 1] < H).all()
        for name in ("nose", "neck", "right_shoulder", "left_shoulder", "right_eye", "left_eye"):
            assert conf[K[name]] > 0.5, name
        for name in ("right_hip", "left_hip", "right_knee", "left_ankle"):  # below the frame
            assert conf[K[name]] == 0.0, name
        ran = {"pose", "subject"} if d.pose_ran else set()  # keyframes only
        assert set(d.timings) == {"segmentation", "smoothing"} | ran
        assert all(v >= 0 for v in d.timings.values())


def test_shoulders_follow_the_camera(raw, smooth):
    cams = sample_clip_camera()  # (T, 2, 3) photo -> frame
    truth = np.einsum("tij,kj->tki", cams[:, :, :2], SOURCE_SHOULDERS) + cams[:, None, :, 2]
    for run in (raw, smooth):
        got = np.stack([d.keypoints[[K["right_shoulder"], K["left_shoulder"]], :2] for d in run])
        width = np.linalg.norm(truth[:, 1] - truth[:, 0], axis=-1)  # (T,) ~250 px
        err = np.linalg.norm(got - truth, axis=-1) / width[:, None]  # (T, 2) shoulder widths
        # Measured: max 0.16 (the first frames, before tracking settles), mean 0.06 right and
        # 0.05 left (0.22, 0.08, 0.05 with pose_max_height=None); mediapipe's video-mode
        # shoulders sit ~15 px off its still-photo ones.
        assert err.max() < 0.3 and err.mean(axis=0).max() < 0.12
        assert (got[:, 0, 0] < got[:, 1, 0]).all()  # the person's right is the image's left


def test_mask_covers_the_person(smooth):
    cams = sample_clip_camera()
    chest = np.array([210.0, 330.0, 1.0])  # below the collar ring, photo pixels
    face = np.array([222.0, 120.0, 1.0])
    for d, cam in zip(smooth, cams, strict=True):
        m = d.person_mask
        assert m.shape == (H, W) and m.dtype == np.float32
        assert m.min() >= 0.0 and m.max() <= 1.0
        for point in (chest, face):
            x, y = cam @ point
            assert m[int(y), int(x)] > 0.9
        assert m[:60, -80:].mean() < 0.1  # the top right is background (the shuttle model)
        assert 0.3 < (m > 0.5).mean() < 0.7  # measured 0.44-0.56
        for name in ("neck", "right_shoulder", "left_shoulder"):
            x, y = d.keypoints[K[name], :2]
            assert m[int(y), int(x)] > 0.5, name


def test_smoothing_reduces_jitter(raw, smooth):
    # Measured on the bundled clip: 6.4 px raw, 2.1 px smoothed (the true camera path's own
    # second difference is 0.4 px).
    assert _jitter(smooth) < 0.5 * _jitter(raw)


def test_stabilized_keypoints_stay_on_the_body_and_report_the_motion(clip, smooth):
    # The clip is a still photograph: in its pixels the stabilized keypoints should not move.
    cams = sample_clip_camera()
    sel = [K["neck"], K["right_shoulder"], K["left_shoulder"], K["nose"]]
    back = []
    for d, cam in zip(smooth, cams, strict=True):
        inverse = cv2.invertAffineTransform(cam)
        back.append(d.keypoints[sel, :2] @ inverse[:, :2].T + inverse[:, 2])
    spread = np.stack(back).std(axis=0).max()
    assert spread < 3.0  # photo px; measured 1.0 (One Euro: 9.6)
    for prev, cur, d in zip(cams, cams[1:], smooth[1:], strict=False):
        assert d.motion is not None and d.motion.shape == (2, 3)
        true = (np.vstack([cur, [0, 0, 1]]) @ np.linalg.inv(np.vstack([prev, [0, 0, 1]])))[:2]
        q = smooth[0].keypoints[K["neck"], :2]
        assert np.abs(d.motion @ [*q, 1.0] - true @ [*q, 1.0]).max() < 1.0  # measured 0.25


def _shifted_photo(shifts, flip_from: int | None = None) -> list[np.ndarray]:
    """The source photo through the clip's first camera, shifted by ``shifts[i]`` (px) in frame
    ``i``, with Gaussian noise of 2 grey levels; mirrored left-right from frame ``flip_from``."""
    photo = cv2.cvtColor(cv2.imread(str(sample_source_path())), cv2.COLOR_BGR2RGB)
    base = sample_clip_camera()[0]
    rng = np.random.default_rng(0)
    frames = []
    for i, shift in enumerate(shifts):
        cam = base.copy()
        cam[:, 2] += shift
        img = cv2.warpAffine(photo, cam, (W, H), flags=cv2.INTER_LINEAR,
                             borderMode=cv2.BORDER_REFLECT101).astype(np.float32)  # fmt: skip
        img += rng.normal(0.0, 2.0, img.shape).astype(np.float32)
        img = np.clip(img + 0.5, 0, 255).astype(np.uint8)
        frames.append(img[:, ::-1].copy() if flip_from is not None and i >= flip_from else img)
    return frames


def test_a_person_moved_by_40_px_is_followed_at_once():
    shifts = [min(max(i - 6, 0), 4) * np.array([10.0, 3.0]) for i in range(14)]  # 40 px in 4
    frames = _shifted_photo(shifts)
    run = _track(frames)
    sel = [K["neck"], K["right_shoulder"], K["left_shoulder"], K["nose"]]
    start = run[0].keypoints[sel, :2]
    for d, shift in zip(run, shifts, strict=True):  # measured <= 0.5 px (One Euro: 13 px)
        assert np.abs(d.keypoints[sel, :2] - (start + shift)).max() < 3.0


def test_one_euro_without_stabilization(clip):
    with PersonDetector(stabilize=False) as tracker:
        d = tracker(clip[0], 0.0)
    assert d.person_found and d.motion is None


def test_downscaled_and_full_size_inputs_agree(clip, smooth):
    full = _track(clip[:8], pose_max_height=None)
    for a, b in zip(smooth[:8], full, strict=True):
        sel = [K["nose"], K["neck"], K["right_shoulder"], K["left_shoulder"]]
        diff = np.linalg.norm(a.keypoints[sel, :2] - b.keypoints[sel, :2], axis=-1)
        assert diff.max() < 40.0  # px, shoulder width ~250 px; measured <= 23
        ma, mb = a.person_mask > 0.5, b.person_mask > 0.5
        assert (ma & mb).sum() / (ma | mb).sum() > 0.8  # measured >= 0.9


def test_no_person_in_blank_or_noise_frames():
    rng = np.random.default_rng(0)
    frames = [np.zeros((H, W, 3), np.uint8), rng.integers(0, 256, (H, W, 3), dtype=np.uint8)]
    frames.append(np.full((120, 90, 3), 200, np.uint8))  # another size mid-stream
    for d in _track(frames):
        assert not d.person_found
        assert d.keypoints is None and d.person_mask is None


def test_person_lost_and_found_again(clip):
    frames = [clip[0], clip[1], np.zeros_like(clip[0]), clip[2], clip[3]]
    found = [d.person_found for d in _track(frames)]
    assert found == [True, True, False, True, True]


def test_segmentation_modes(clip):
    selfie = _track(clip[:2], segmentation="selfie")
    assert selfie[-1].person_mask.shape == (H, W) and selfie[-1].person_mask.dtype == np.float32
    assert selfie[-1].person_found
    blank = _track([np.zeros((H, W, 3), np.uint8)], segmentation="selfie")[0]
    assert blank.person_mask is not None and not blank.person_found  # selfie: always a mask
    none = _track(clip[:2], segmentation="none")
    assert none[-1].person_found and none[-1].person_mask is None


def test_reset_timestamps_and_non_contiguous_frames(clip):
    with PersonDetector() as tracker:
        first = tracker(clip[0])  # timestamp None: 0, then +1/30 s
        tracker(clip[1])
        tracker.reset()
        again = tracker(clip[0][:, :, ::-1][:, :, ::-1], 0.0)  # a non-contiguous view, restarted
        assert again.person_found
        np.testing.assert_allclose(again.keypoints, first.keypoints, atol=1e-3)
        tracker(clip[1], 0.0)  # a duplicate timestamp is fine
        assert tracker(clip[2], -5.0).person_found  # so is one going back


def test_close_and_context_manager(clip):
    tracker = PersonDetector()
    with tracker:
        assert not tracker.closed
    assert tracker.closed
    tracker.close()  # idempotent
    with pytest.raises(BackendUnavailableError, match="closed"):
        tracker(clip[0])
    with pytest.raises(BackendUnavailableError, match="closed"):
        tracker.reset()


def test_blazepose_mapping():
    lm = np.zeros((33, 3), np.float32)
    lm[:, 0] = np.linspace(0.1, 0.9, 33)  # distinct x per landmark
    lm[:, 1] = 0.5
    lm[:, 2] = np.linspace(0.2, 1.0, 33)
    lm[26, 1] = 1.2  # right knee below the frame
    lm[8, 0] = -0.01  # right ear left of the frame
    lm[7, 2] = np.nan
    kp = blazepose_to_openpose(lm, 100, 200)
    assert kp.shape == (18, 3) and kp.dtype == np.float32
    for openpose, blaze in enumerate(BLAZEPOSE_TO_OPENPOSE):
        if blaze < 0 or openpose in (K["right_knee"], K["right_ear"], K["left_ear"]):
            continue
        np.testing.assert_allclose(
            kp[openpose], [lm[blaze, 0] * 200, 50.0, lm[blaze, 2]], rtol=1e-6
        )
    np.testing.assert_allclose(kp[K["neck"], :2], (kp[2, :2] + kp[5, :2]) / 2)
    assert kp[K["neck"], 2] == min(kp[2, 2], kp[5, 2])
    assert kp[K["right_knee"], 2] == 0.0 and kp[K["right_ear"], 2] == 0.0
    assert kp[K["left_ear"], 2] == 0.0  # NaN visibility


@pytest.mark.parametrize(
    "frame",
    [
        None,
        [[[0, 0, 0]]],
        np.zeros((H, W, 3), np.float32),
        np.zeros((H, W), np.uint8),
        np.zeros((H, W, 4), np.uint8),
        np.zeros((0, W, 3), np.uint8),
        np.zeros((2, H, W, 3), np.uint8),
    ],
)
def test_bad_frames_raise(tracker, frame):
    with pytest.raises(InputError, match="^frame: expected a non-empty HxWx3 uint8"):
        tracker(frame)


@pytest.mark.parametrize("timestamp", [float("nan"), float("inf"), "0.1", True])
def test_bad_timestamps_raise(tracker, timestamp):
    with pytest.raises(InputError, match="^timestamp_s:"):
        tracker(np.zeros((8, 8, 3), np.uint8), timestamp)


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"smoothing": 1}, "smoothing"),
        ({"model_complexity": 3}, "model_complexity"),
        ({"model_complexity": True}, "model_complexity"),
        ({"segmentation": "mask"}, "segmentation"),
        ({"min_detection_confidence": 1.5}, "min_detection_confidence"),
        ({"min_tracking_confidence": -0.1}, "min_tracking_confidence"),
        ({"min_cutoff": 0}, "min_cutoff"),
        ({"beta": -1.0}, "beta"),
        ({"d_cutoff": None}, "d_cutoff"),
        ({"pose_max_height": 8}, "pose_max_height"),
        ({"pose_max_height": 256.0}, "pose_max_height"),
        ({"stabilize": "yes"}, "stabilize"),
        ({"pose_every": 0}, "pose_every"),
        ({"pose_every": 31}, "pose_every"),
        ({"pose_every": 2.0}, "pose_every"),
        ({"pose_every": True}, "pose_every"),
        ({"pose_every": None}, "pose_every"),
    ],
)
def test_bad_arguments_raise(kwargs, argument):
    with pytest.raises(InputError, match=f"^{argument}:"):
        PersonDetector(**kwargs)


@pytest.mark.parametrize(("complexity", "name"), [(0, "lite"), (2, "heavy")])
def test_unbundled_pose_models_are_refused_without_download(complexity, name):
    model = Path(mediapipe.__file__).parent / f"modules/pose_landmark/pose_landmark_{name}.tflite"
    if model.is_file():
        pytest.skip(f"{model.name} was installed by hand")
    with pytest.raises(ModelLoadError, match="model_complexity=1"):
        PersonDetector(model_complexity=complexity)
    assert not model.exists()


# ------------------------------------------------------------------------------ pose keyframes

TORSO_HEAD = [K[n] for n in ("neck", "right_shoulder", "left_shoulder", "nose", "right_eye",
                             "left_eye")]  # fmt: skip


def _max_run_without_pose(run: list[PersonDetection]) -> int:
    longest = current = 0
    for d in run:
        current = 0 if d.pose_ran else current + 1
        longest = max(longest, current)
    return longest


def test_pose_every_1_is_the_pose_model_and_the_stabilizer_on_every_frame(clip):
    # Today's path written out: mediapipe on the 320 x 240 frame (twice on a track's first),
    # the mapping, MotionStabilizer with the graph-size mask, the neck rule, the mask upsampled.
    from mediapipe.python.solutions import pose as mp_pose

    frames = clip[:10]
    got = _track(frames, pose_every=1)
    assert all(d.pose_ran for d in got)
    stab = MotionStabilizer()
    options = dict(static_image_mode=False, model_complexity=1, smooth_landmarks=False,
                   enable_segmentation=True, smooth_segmentation=True,
                   min_detection_confidence=0.5, min_tracking_confidence=0.5)  # fmt: skip
    with mp_pose.Pose(**options) as pose:
        for i, (frame, d) in enumerate(zip(frames, got, strict=True)):
            small = cv2.resize(frame, (W // 2, H // 2), interpolation=cv2.INTER_AREA)
            result = pose.process(small)
            if i == 0:
                result = pose.process(small)
            lm = np.array([(p.x, p.y, p.visibility) for p in result.pose_landmarks.landmark],
                          np.float32)  # fmt: skip
            mask = np.array(result.segmentation_mask, np.float32)
            kp = stab(frame, blazepose_to_openpose(lm, H, W), i / CLIP_FPS, mask)
            kp[K["neck"], :2] = kp[[K["right_shoulder"], K["left_shoulder"]], :2].mean(axis=0)
            np.testing.assert_allclose(d.keypoints, kp, atol=1e-3)
            up = cv2.resize(mask, (W, H), interpolation=cv2.INTER_LINEAR)
            np.testing.assert_allclose(d.person_mask, up, atol=1e-5)
            if i:
                np.testing.assert_allclose(d.motion, stab.motion, atol=1e-9)


@pytest.mark.parametrize("every", [2, 3])
def test_the_pose_runs_at_least_every_n_frames(clip, every):
    run = _track(clip[:24], pose_every=every)
    assert _max_run_without_pose(run) == every - 1  # skipped as often as allowed, never more
    assert run[0].pose_ran and sum(d.pose_ran for d in run) < 24
    for d in run:  # a frame without the pose model is a detection like any other
        assert (
            d.person_found
            and d.person_mask.shape == (H, W)
            and d.motion is not None
            or (d.pose_ran)
        )
        ran = {"pose", "subject"} if d.pose_ran else set()  # skipped frames: no pose time
        assert set(d.timings) == {"segmentation", "smoothing"} | ran


def test_the_default_keyframes(clip, smooth):
    assert DEFAULT_POSE_EVERY > 1
    assert _max_run_without_pose(smooth) == DEFAULT_POSE_EVERY - 1
    assert sum(d.pose_ran for d in smooth) < 0.5 * len(smooth)  # measured 22 of 64


def test_skipped_frames_move_keypoints_and_mask_with_the_image():
    shifts = [i * np.array([3.0, 1.0]) for i in range(12)]  # 3.2 px a frame
    frames = _shifted_photo(shifts)
    run = _track(frames, pose_every=3)
    skipped = 0
    for i in range(1, len(run)):
        prev, cur = run[i - 1], run[i]
        step = shifts[i] - shifts[i - 1]
        if cur.pose_ran:
            continue
        skipped += 1
        moved = cur.keypoints[TORSO_HEAD, :2] - prev.keypoints[TORSO_HEAD, :2]
        assert np.abs(moved - step).max() < 0.5  # px; measured 0.1
        q = prev.keypoints[K["neck"], :2]
        assert np.abs(cur.motion[:, :2] @ q + cur.motion[:, 2] - (q + step)).max() < 0.5
        np.testing.assert_array_equal(cur.keypoints[:, 2], prev.keypoints[:, 2])
        # The mask, moved back by the shift, is the last one again (away from the frame's edge).
        back = np.float32([[1, 0, -step[0]], [0, 1, -step[1]]])
        undone = cv2.warpAffine(cur.person_mask, back, (W, H), flags=cv2.INTER_LINEAR)
        inner = (slice(20, H - 20), slice(20, W - 20))
        assert np.abs(undone[inner] - prev.person_mask[inner]).mean() < 0.01  # measured 0.002
    assert skipped >= 6


def test_the_pose_runs_at_once_when_the_tracking_fails():
    # A cut (the picture mirrored from frame 7 on), then a 30 px jump (0.12 shoulder widths) in
    # one frame: the pose model runs on both, however long the cadence, and from the frame after
    # the cut on the keypoints are where the every-frame detector puts them, within mediapipe's
    # own wander between runs fed different frames before (measured 16 px; the cut moves the
    # nose by 105 px).
    shifts = [np.array([0.0, 0.0])] * 12 + [np.array([30.0, 0.0])] * 4
    frames = _shifted_photo(shifts, flip_from=7)
    run = _track(frames, pose_every=30)
    ran = [d.pose_ran for d in run]
    assert not any(ran[1:7])  # the still picture: no pose model after the first frame
    assert ran[7] and ran[12]  # the cut and the jump
    every = _track(frames, pose_every=1)
    before = run[6].keypoints[TORSO_HEAD, :2]
    for d, e in zip(run[8:], every[8:], strict=True):
        assert np.abs(d.keypoints[TORSO_HEAD, :2] - e.keypoints[TORSO_HEAD, :2]).max() < 25.0
        assert np.abs(d.keypoints[K["nose"], 0] - before[3, 0]) > 50.0  # not left behind


def test_mediapipe_sees_the_time_of_the_frames_it_skipped(clip):
    # The legacy graph stamps each call 33333 us after the previous one (its ROI filter reads
    # them): with frames skipped, its clock still moves one frame per frame of the stream.
    with PersonDetector(pose_every=3) as tracker:
        for i, frame in enumerate(clip[:10]):
            d = tracker(frame, i / CLIP_FPS)
            if d.pose_ran:  # + 1: the track's first frame runs the graph twice
                assert tracker._pose._simulated_timestamp == 33333 * (i + 2)
