"""MotionStabilizer and MaskSmoother on synthetic scenes with known motion: a textured torso and
arm on a plain background, moved by a known camera path or articulated, with noisy keypoints."""

import math

import cv2
import numpy as np
import pytest

from engine.errors import InputError
from engine.keypoints import KEYPOINT_INDEX as K
from engine.perception.motion_stabilizer import (
    HOLD_FRAMES,
    MaskSmoother,
    MotionStabilizer,
    find_corners,
    fit_similarity,
    person_regions,
    track_corners,
)

H, W = 240, 320
SW = 100.0  # shoulder width of the synthetic person, px


def _texture(h: int, w: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = cv2.GaussianBlur(rng.uniform(0, 255, (h, w)).astype(np.float32), (0, 0), 1.5)
    return np.clip((t - t.mean()) / t.std() * 40 + 128, 0, 255).astype(np.uint8)


TORSO = _texture(H, W, 1)
ARM = _texture(40, 200, 2)  # (across, along) the arm


def _scene(camera=None, arm_deg: float = 0.0, *, arm_texture: bool = True, size=(H, W)):
    """``(rgb, keypoints, mask)``: a person (shoulders 100 px apart at y = 100, right arm hanging
    down-left, raised by ``arm_deg`` about the right shoulder) seen through ``camera``, a (2, 3)
    source -> frame similarity (None: identity)."""
    h, w = size
    cam = np.eye(2, 3) if camera is None else np.asarray(camera, np.float64)
    grey = np.full((H, W), 90, np.uint8)
    mask = np.zeros((H, W), np.float32)
    rs, ls = np.array([110.0, 100.0]), np.array([210.0, 100.0])
    torso = np.zeros((H, W), np.uint8)
    cv2.fillPoly(torso, [np.array([rs + (-5, -10), ls + (5, -10), ls + (0, 140), rs + (0, 140)],
                                  np.int32)], 1)  # fmt: skip
    grey[torso > 0], mask[torso > 0] = TORSO[torso > 0], 1.0
    theta = math.radians(110.0 + arm_deg)
    d = np.array([math.cos(theta), math.sin(theta)])
    n = np.array([-d[1], d[0]])
    elbow, wrist = rs + 75 * d, rs + 145 * d
    to_img = np.float32([[d[0], n[0], rs[0] - 20 * n[0]], [d[1], n[1], rs[1] - 20 * n[1]]])
    arm_pixels = cv2.warpAffine(ARM.T.copy() if arm_texture else np.full((200, 40), 160, np.uint8),
                                to_img, (W, H))  # fmt: skip
    arm = np.zeros((H, W), np.uint8)
    cv2.fillPoly(arm, [np.array([rs + 15 * n, rs - 15 * n, wrist - 12 * n, wrist + 12 * n],
                                np.int32)], 1)  # fmt: skip
    grey[arm > 0], mask[arm > 0] = arm_pixels[arm > 0], 1.0
    kp = np.zeros((18, 3), np.float32)
    points = {
        "nose": (rs + ls) / 2 + (0, -45),
        "neck": (rs + ls) / 2,
        "right_shoulder": rs,
        "left_shoulder": ls,
        "right_elbow": elbow,
        "right_wrist": wrist,
        "left_elbow": ls + (10, 75),
        "left_wrist": ls + (12, 140),
        "right_hip": rs + (10, 135),
        "left_hip": ls + (-10, 135),
    }
    for name, p in points.items():
        kp[K[name]] = (*(cam[:, :2] @ p + cam[:, 2]), 0.9)
    grey = cv2.warpAffine(grey, cam, (w, h), flags=cv2.INTER_LINEAR, borderValue=90)
    mask = cv2.warpAffine(mask, cam, (w, h), flags=cv2.INTER_LINEAR)
    return np.repeat(grey[..., None], 3, axis=2), kp, mask


def _camera(angle_deg=0.0, scale=1.0, shift=(0.0, 0.0), centre=(160.0, 150.0)):
    m = cv2.getRotationMatrix2D(centre, angle_deg, scale)
    m[:, 2] += shift
    return m


def _run(stab, frames, noise=0.0, seed=0):
    """Stabilize ``(rgb, keypoints, mask)`` frames with Gaussian keypoint noise: (T, 18, 3)."""
    rng = np.random.default_rng(seed)
    out = []
    for i, (rgb, kp, mask) in enumerate(frames):
        noisy = kp.copy()
        noisy[:, :2] += rng.normal(0.0, noise, (18, 2)).astype(np.float32)
        out.append(stab(rgb, noisy, i / 30, mask))
    return np.stack(out)


@pytest.mark.parametrize(
    "camera",
    [
        _camera(shift=(4.3, -2.7)),
        _camera(angle_deg=1.5, scale=1.02, shift=(-3.0, 1.0)),
        _camera(angle_deg=-3.0, scale=0.97),
    ],
)
def test_a_known_similarity_is_recovered(camera):
    image = TORSO
    moved = cv2.warpAffine(image, camera, (W, H), flags=cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_REFLECT101)  # fmt: skip
    corners = find_corners(image, max_points=64)
    assert len(corners) >= 48
    before, after = track_corners(image, moved, corners)
    a = fit_similarity(before, after)
    assert a is not None
    grid = np.stack(np.meshgrid(np.linspace(40, W - 40, 7), np.linspace(40, H - 40, 5)), -1)
    grid = grid.reshape(-1, 2)
    err = np.abs((grid @ a[:, :2].T + a[:, 2]) - (grid @ camera[:, :2].T + camera[:, 2]))
    assert err.max() < 0.3  # px; measured <= 0.05


def test_the_torso_motion_is_recovered_at_full_size():
    # 640 x 480 frames are tracked at 320 x 240; the motion comes back in frame pixels.
    up = np.diag([2.0, 2.0, 1.0])
    cams = [up @ np.vstack([_camera(0.8 * i, 1 + 0.01 * i, (3.0 * i, -2.0 * i)), [0, 0, 1]])
            for i in range(3)]  # fmt: skip
    frames = [_scene(c[:2], size=(2 * H, 2 * W)) for c in cams]
    stab = MotionStabilizer()
    _run(stab, frames)
    a_true = (cams[2] @ np.linalg.inv(cams[1]))[:2]  # frame 1 -> frame 2
    torso = frames[1][1][[K["neck"], K["right_shoulder"], K["left_shoulder"]], :2]
    got = torso @ stab.motion[:, :2].T + stab.motion[:, 2]
    want = torso @ a_true[:, :2].T + a_true[:, 2]
    assert np.abs(got - want).max() < 0.6  # 0.3 tracking px; measured 0.03


def test_noisy_keypoints_on_a_still_person_are_damped():
    frames = [_scene() for _ in range(30)]
    out = _run(MotionStabilizer(), frames, noise=4.0)
    raw = _run(lambda rgb, kp, t, mask: kp, frames, noise=4.0)  # the same noise, unfiltered
    seen = frames[0][1][:, 2] > 0
    sd_out = out[:, seen, :2].std(axis=0).mean()
    sd_raw = raw[:, seen, :2].std(axis=0).mean()
    assert sd_out < 0.1 * sd_raw  # measured: 3.8 px -> 0.07 px


def test_a_still_person_under_a_moving_camera_stays_on_its_pixels():
    cams = [_camera(1.5 * math.sin(i / 5), 1.0 + 0.02 * math.sin(i / 7),
                    (20 * math.sin(i / 6), 10 * math.sin(i / 4))) for i in range(30)]  # fmt: skip
    frames = [_scene(c) for c in cams]
    out = _run(MotionStabilizer(), frames, noise=4.0)
    truth = np.stack([kp for _, kp, _ in frames])
    seen = truth[0, :, 2] > 0
    err = out[:, seen, :2] - truth[:, seen, :2]  # (T, n, 2)
    drift = err - err[:1]  # the first measurement's own error is kept
    assert np.abs(drift).max() < 2.0  # px, with 4 px of noise; measured 1.0


def test_a_large_shift_is_followed_at_once():
    shifts = [min(max(i - 5, 0), 4) * 10.0 for i in range(14)]  # 40 px over 4 frames
    frames = [_scene(_camera(shift=(s, 0.3 * s))) for s in shifts]
    out = _run(MotionStabilizer(), frames, noise=2.0)
    truth = np.stack([kp for _, kp, _ in frames])
    seen = truth[0, :, 2] > 0
    err = np.linalg.norm(out[:, seen, :2] - truth[:, seen, :2], axis=-1)  # (T, n)
    assert err.max() < 10.0  # px at every frame, the shift included; measured 7.2 (noise 2)
    moved = (out - out[:1])[5:, seen, 0]  # (T - 5, n) x moved since the first frame
    assert np.abs(moved - np.array(shifts[5:])[:, None]).max() < 3.0  # measured 1.8


@pytest.mark.parametrize("textured", [True, False])
def test_a_raised_arm_is_followed(textured):
    # The arm goes up by 90 degrees over frames 4..10; textured, its pixels carry the keypoints
    # along; untextured, only the pose model sees it move: followed one frame late.
    angles = [min(max(i - 4, 0), 6) * 15.0 for i in range(16)]
    frames = [_scene(arm_deg=a, arm_texture=textured) for a in angles]
    out = _run(MotionStabilizer(), frames, noise=2.0)
    truth = np.stack([kp for _, kp, _ in frames])
    arm = [K["right_elbow"], K["right_wrist"]]
    err = np.linalg.norm(out[:, arm, :2] - truth[:, arm, :2], axis=-1)  # (T, 2)
    assert err[12:].max() < 0.05 * SW  # two frames after the arm stopped; measured 2.4 px
    assert err.max() < 0.5 * SW  # at most a frame behind (38 px/frame); measured 22 px
    body = [K["neck"], K["left_shoulder"], K["left_elbow"]]
    assert np.abs(out[:, body, :2] - out[:1, body, :2]).max() < 2.0  # stays put; 0.3 px


def test_a_one_frame_outlier_is_ignored():
    frames = [_scene() for _ in range(10)]
    stab = MotionStabilizer()
    outs = []
    for i, (rgb, kp, mask) in enumerate(frames):
        kp = kp.copy()
        if i == 5:
            kp[K["right_wrist"], :2] += 0.6 * SW  # beyond the band, once
        outs.append(stab(rgb, kp, i / 30, mask))
    wrist = np.stack(outs)[:, K["right_wrist"], :2]
    assert np.abs(wrist - wrist[0]).max() < 1.0


def test_restarts():
    rgb, kp, mask = _scene()
    seen = kp[:, 2] > 0
    moved = kp.copy()
    moved[seen, :2] += 5.0  # within the bands: a stabilized track does not follow it
    stab = MotionStabilizer()
    stab(rgb, kp, 0.0, mask)
    assert np.abs(stab(rgb, moved, 0.1, mask)[:, :2] - kp[:, :2]).max() < 0.1
    stab.reset()  # a new stream
    np.testing.assert_allclose(stab(rgb, moved, 0.2, mask), moved)
    assert stab(rgb, None, 0.3, mask) is None and stab.motion is None  # no person
    np.testing.assert_allclose(stab(rgb, kp, 0.4, mask), kp)
    np.testing.assert_allclose(stab(rgb, moved, 0.0, mask), moved)  # time went back
    small = _scene(size=(H // 2, W // 2))[0]
    np.testing.assert_allclose(stab(small, kp, 0.1, None), kp)  # another frame size
    wider = kp.copy()
    wider[seen, :2] *= 2.0  # the shoulders twice as far apart: another person, or a cut
    np.testing.assert_allclose(stab(small, wider, 0.2, None), wider)


def test_a_lost_keypoint_is_held_for_a_few_frames():
    rgb, kp, mask = _scene()
    stab = MotionStabilizer()
    stab(rgb, kp, 0.0, mask)
    lost = kp.copy()
    lost[K["left_elbow"], 2] = 0.0
    for i in range(1, HOLD_FRAMES + 3):
        elbow = stab(rgb, lost, i / 30, mask)[K["left_elbow"]]
        if i <= HOLD_FRAMES:  # its smoothed confidence (0.9, decaying over 0.5 s) is >= 0.1
            assert elbow[2] >= 0.1 and np.abs(elbow[:2] - kp[K["left_elbow"], :2]).max() < 0.1
        else:
            assert elbow[2] == 0.0  # dropped: as measured


def test_confidences_are_smoothed():
    rgb, kp, mask = _scene()
    stab = MotionStabilizer()
    got = []
    for i in range(30):
        k = kp.copy()
        k[K["right_elbow"], 2] = 0.4 if i % 2 else 0.6  # flickering around 0.5
        got.append(stab(rgb, k, i / 30, mask)[K["right_elbow"], 2])
    assert np.ptp(got[10:]) < 0.1  # measured 0.04, against 0.2 as measured


def test_person_regions():
    _, kp, mask = _scene()
    person, torso = person_regions(kp, H, W, mask)
    assert person.dtype == torso.dtype == np.bool_ and person.shape == (H, W)
    assert not (torso & ~person).any() and torso.sum() > 0.3 * person.sum()
    x, y = kp[K["right_wrist"], :2].astype(int)
    assert person[y, x] and not torso[y, x]
    no_shoulder = kp.copy()
    no_shoulder[K["left_shoulder"], 2] = 0.0
    assert person_regions(no_shoulder, H, W) is None


def test_mask_smoother_damps_edge_flicker_follows_motion_and_moved_parts():
    smoother = MaskSmoother()
    rng = np.random.default_rng(0)
    xs = np.mgrid[0:120, 0:160][1]
    raw, out = [], []
    for _ in range(20):  # a still edge flickering by +-1.5 px
        raw.append(np.clip(100 + rng.uniform(-1.5, 1.5) - xs + 0.5, 0, 1).astype(np.float32))
        out.append(smoother(raw[-1], None))
    flicker = np.stack(out)[5:, 60, 95:105].std(axis=0).max()
    assert flicker < 0.5 * np.stack(raw)[5:, 60, 95:105].std(axis=0).max()  # measured 0.3x
    shift = np.array([[1.0, 0, 6.0], [0, 1.0, 0]])
    new = np.clip(106 - xs + 0.5, 0, 1).astype(np.float32)
    moved = smoother(new, shift)  # the edge moved 6 px right, and the motion says so
    assert np.abs(moved - new).max() < 0.35
    part = new.copy()
    part[20:60, 110:150] = 1.0  # an arm appears: a whole region disagrees
    assert smoother(part, None)[30:50, 120:140].min() > 0.9
    smoother.reset()
    np.testing.assert_array_equal(smoother(new, None), new)


def _bad_stabilizer_calls():
    rgb, kp, mask = _scene()
    nan = kp.copy()
    nan[0, 0] = np.nan
    return [
        ((None, kp, 0.0), "frame"),
        ((rgb.astype(np.float32), kp, 0.0), "frame"),
        ((rgb[..., 0], kp, 0.0), "frame"),
        ((rgb, kp[:17], 0.0), "keypoints"),
        ((rgb, kp.astype(np.int32), 0.0), "keypoints"),
        ((rgb, kp.tolist(), 0.0), "keypoints"),
        ((rgb, nan, 0.0), "keypoints"),
        ((rgb, kp, float("nan")), "timestamp_s"),
        ((rgb, kp, True), "timestamp_s"),
        ((rgb, kp, 0.0, mask[None]), "person_mask"),
        ((rgb, kp, 0.0, mask > 0.5), "person_mask"),
    ]


@pytest.mark.parametrize(("args", "argument"), _bad_stabilizer_calls())
def test_bad_stabilizer_input_raises(args, argument):
    stab = MotionStabilizer()
    with pytest.raises(InputError, match=f"^{argument}:"):
        stab(*args)


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"drift_time_s": 0}, "drift_time_s"),
        ({"noise_scale": float("inf")}, "noise_scale"),
        ({"max_points": 4}, "max_points"),
        ({"max_points": 24.0}, "max_points"),
        ({"track_max_height": 8}, "track_max_height"),
    ],
)
def test_bad_stabilizer_arguments_raise(kwargs, argument):
    with pytest.raises(InputError, match=f"^{argument}:"):
        MotionStabilizer(**kwargs)


def test_bad_tracking_input_raises():
    grey = TORSO
    pts = find_corners(grey, max_points=16)
    with pytest.raises(InputError, match="^image:"):
        find_corners(grey.astype(np.float32))
    with pytest.raises(InputError, match="^region:"):
        find_corners(grey, np.ones((H, W), np.float32))
    with pytest.raises(InputError, match="^max_points:"):
        find_corners(grey, max_points=0)
    with pytest.raises(InputError, match="^current:"):
        track_corners(grey, grey[:-1], pts)
    with pytest.raises(InputError, match="^points:"):
        track_corners(grey, grey, pts[:, :1])
    with pytest.raises(InputError, match="^after:"):
        fit_similarity(pts, pts[:-1])
    with pytest.raises(InputError, match="^before:"):
        fit_similarity(pts.astype(np.int32), pts)
    assert fit_similarity(pts[:3], pts[:3]) is None  # too few points for a motion
    with pytest.raises(InputError, match="^weight:"):
        MaskSmoother(1.5)
    with pytest.raises(InputError, match="^mask:"):
        MaskSmoother()(np.zeros((4, 4, 1), np.float32), None)
    with pytest.raises(InputError, match="^motion:"):
        MaskSmoother()(np.zeros((4, 4), np.float32), np.eye(3))


def test_compose_motions_is_first_then_second():
    from engine.perception.motion_stabilizer import compose_motions

    def similarity(angle, scale, tx, ty):
        c, s = scale * np.cos(angle), scale * np.sin(angle)
        return np.array([[c, -s, tx], [s, c, ty]])

    a, b = similarity(0.1, 1.05, 3.0, -2.0), similarity(-0.3, 0.9, -7.0, 4.0)
    points = np.array([[10.0, 20.0], [300.0, -40.0], [0.0, 0.0]])
    through_both = (points @ a[:, :2].T + a[:, 2]) @ b[:, :2].T + b[:, 2]
    ab = compose_motions(a, b)
    assert ab.shape == (2, 3)
    np.testing.assert_allclose(points @ ab[:, :2].T + ab[:, 2], through_both, atol=1e-9)
    assert compose_motions(None, b) is None and compose_motions(a, None) is None


# -------------------------------------------------------------------- track / update / predict


def test_track_then_update_is_the_same_as_a_call():
    cams = [_camera(1.0 * math.sin(i / 3), 1.0, (6 * math.sin(i / 4), 3.0 * i)) for i in range(8)]
    frames = [_scene(c, arm_deg=4.0 * i) for i, c in enumerate(cams)]
    rng = np.random.default_rng(0)
    called, split = MotionStabilizer(), MotionStabilizer()
    for i, (rgb, kp, mask) in enumerate(frames):
        noisy = kp.copy()
        noisy[:, :2] += rng.normal(0.0, 2.0, (18, 2)).astype(np.float32)
        a = called(rgb, noisy, i / 30, mask)
        split.track(rgb, i / 30)
        np.testing.assert_array_equal(split.update(noisy, mask), a)
        if i:
            np.testing.assert_array_equal(split.motion, called.motion)


def test_predicted_keypoints_move_with_a_known_shift():
    # Measured on frame 0 only; frames 1..6 are predicted: every keypoint moves with the image.
    shifts = [np.array([3.0 * i, -2.0 * i]) for i in range(7)]
    frames = [_scene(_camera(shift=tuple(s))) for s in shifts]
    stab = MotionStabilizer()
    first = stab(frames[0][0], frames[0][1], 0.0, frames[0][2])
    seen = first[:, 2] >= 0.1
    names = ("neck", "right_shoulder", "left_shoulder", "right_hip", "left_hip", "nose")
    torso_head = seen & np.isin(np.arange(18), [K[n] for n in names])
    for i, ((rgb, _, mask), shift) in enumerate(zip(frames[1:], shifts[1:], strict=True), 1):
        tracking = stab.track(rgb, i / 30)
        assert tracking.motion is not None and tracking.inliers >= 0.75 * tracking.fitted
        np.testing.assert_allclose(tracking.motion[:, 2], [3.0, -2.0], atol=0.3)  # per frame
        assert 0.0 < tracking.shift < 0.05  # 3.6 px of a 100 px shoulder width
        out = stab.predict(mask)
        err = np.abs(out[:, :2] - (first[:, :2] + shift)).max(axis=1)  # (18,)
        assert err[torso_head].max() < 0.5  # moved by the torso motion; measured 0.002
        # The limbs move by their corners' local motion too: an elbow's corners at the arm's
        # edge once went 2.7 px wrong (their spread says so; see the next test).
        assert err[seen].max() < 4.0
        np.testing.assert_array_equal(out[:, 2], first[:, 2])  # confidences kept
        assert stab.steady


def _on_body(kp: np.ndarray) -> np.ndarray:
    """``kp`` without the keypoints the synthetic scene leaves on its plain background (the
    nose, the left elbow and wrist): no corners near them."""
    out = kp.copy()
    out[[K["nose"], K["left_elbow"], K["left_wrist"]], 2] = 0.0
    return out


def test_unsure_names_what_a_prediction_cannot_follow():
    from engine.perception.motion_stabilizer import PREDICT_MAX_LOCAL, PREDICT_MAX_SPREAD

    def first_step(frames, keep=_on_body):
        stab = MotionStabilizer()
        stab(frames[0][0], keep(frames[0][1]), 0.0, frames[0][2])
        tracking = stab.track(frames[1][0], 1 / 30)
        return stab.unsure(tracking), tracking

    still = [_scene(), _scene()]
    assert first_step(still)[0] is None
    assert first_step(still, keep=lambda kp: kp)[0] == "part untracked"  # the nose: no corners
    arm = [K["right_elbow"], K["right_wrist"]]
    reason, tracking = first_step([_scene(), _scene(arm_deg=3.0)])  # 7.6 px at the wrist
    assert (tracking.local_points[arm] >= 3).all()
    moved = np.linalg.norm(tracking.local[arm], axis=1).max() > PREDICT_MAX_LOCAL * SW
    assert moved or tracking.local_spread[arm].max() > PREDICT_MAX_SPREAD * SW
    assert reason in ("part moving", "part unsure")
    # Small shifts: sure; a fast move, a cut, an outlier: unsure.
    rgb, kp, mask = _scene()
    stab = MotionStabilizer()
    assert stab.unsure(stab.track(rgb, 0.0)) == "no track"
    stab.update(_on_body(kp), mask)
    for i, shift in enumerate([(2.0, 1.0), (4.0, 2.0)], 1):
        moved = _scene(_camera(shift=shift))
        assert stab.unsure(stab.track(moved[0], i / 30)) is None
        stab.update(_on_body(moved[1]), moved[2])
    fast = _scene(_camera(shift=(24.0, 2.0)))  # 20 px in a frame: 0.2 shoulder widths
    assert stab.unsure(stab.track(fast[0], 3 / 30)) == "large motion"
    stab.update(_on_body(fast[1]), fast[2])
    cut = np.repeat(_texture(H, W, 7)[..., None], 3, axis=2)
    assert stab.unsure(stab.track(cut, 4 / 30)) == "few inliers"
    outlier = _on_body(fast[1])
    outlier[K["right_wrist"], :2] += 0.6 * SW
    stab.update(outlier, fast[2])
    assert stab.unsure(stab.track(fast[0], 5 / 30)) == "unsteady keypoint"


def test_a_scene_cut_gives_no_motion_to_predict_with():
    rgb, kp, mask = _scene()
    stab = MotionStabilizer()
    stab(rgb, kp, 0.0, mask)
    other = np.repeat(_texture(H, W, 7)[..., None], 3, axis=2)  # another picture altogether
    tracking = stab.track(other, 1 / 30)
    assert tracking.motion is None and tracking.inliers == 0
    assert stab.update(kp, mask) is not None  # and it can still be measured as usual


def test_predict_marks_keypoints_leaving_the_frame_missing():
    rgb, kp, mask = _scene()
    stab = MotionStabilizer()
    stab(rgb, kp, 0.0, mask)
    shifted = _scene(_camera(shift=(0.0, 8.0)))  # the hips (y = 235) go below the 240 rows
    stab.track(shifted[0], 1 / 30)
    out = stab.predict(shifted[2])
    low = (kp[:, 1] + 8.0 >= H) & (kp[:, 2] > 0)
    assert low.sum() >= 2 and (out[low, 2] == 0.0).all()  # hips and wrists
    assert (out[~low & (kp[:, 2] > 0), 2] > 0.5).all()
    with pytest.raises(InputError, match="^frame:"):
        stab.predict()  # nothing tracked since
    with pytest.raises(InputError, match="^frame:"):
        stab.update(kp)
    with pytest.raises(InputError, match="^person_mask:"):
        stab.track(rgb, 2 / 30)
        stab.predict(mask[None])
    stab.reset()
    stab.track(rgb, 0.0)
    assert stab.predict() is None and not stab.steady  # nothing tracked: nothing to predict


def test_an_outlier_makes_the_tracks_unsteady_until_it_passes():
    frames = [_scene() for _ in range(4)]
    stab = MotionStabilizer()
    steady = []
    for i, (rgb, kp, mask) in enumerate(frames):
        kp = kp.copy()
        if i == 1:
            kp[K["right_wrist"], :2] += 0.6 * SW  # beyond its band, once
        stab(rgb, kp, i / 30, mask)
        steady.append(stab.steady)
    assert steady == [True, False, True, True]
