"""TryOnSession: the real pipeline on the bundled clip (mediapipe + demo generator), garment
swaps, pass-through without a person, every bad input, and streams (files, directories,
iterables with bad frames, failing sources, throughput mode)."""

import threading
import time

import cv2
import numpy as np
import pytest

import engine
from engine.errors import InputError
from engine.runtime.frame_sources import SourceError
from engine.runtime.session import TryOnSession
from engine.sample_media import read_sample_clip, read_sample_garment, sample_garment_path
from tests.runtime_fixtures import ScriptedTracker, tiny_model_file

STAGES = {"smoothing", "crop", "inputs", "generator", "composite", "total"}  # pose: keyframes


@pytest.fixture(scope="module")
def clip():
    return read_sample_clip(max_frames=12)


@pytest.fixture(scope="module")
def session():
    with TryOnSession("demo", backend="torch", window=4) as s:
        s.set_garment(sample_garment_path())
        yield s


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return tiny_model_file(tmp_path_factory.mktemp("tiny"))


def _outside(box, shape):
    """Boolean (H, W) mask of the pixels outside an (x0, y0, x1, y1) box."""
    out = np.ones(shape[:2], bool)
    x0, y0, x1, y1 = box
    out[max(y0, 0) : max(y1, 0), max(x0, 0) : max(x1, 0)] = False
    return out


def test_session_is_importable_from_engine():
    assert engine.TryOnSession is TryOnSession


@pytest.mark.parametrize(
    "kwargs, argument",
    [
        ({"model": ""}, "model"),
        ({"backend": "cuda"}, "backend"),
        ({"precision": "int8"}, "precision"),
        ({"precision": "fp16"}, "precision"),
        ({"window": 0}, "window"),
        ({"window": True}, "window"),
        ({"mode": "fast"}, "mode"),
        ({"feather": -1}, "feather"),
        ({"paste": "all"}, "paste"),
    ],
)
def test_bad_arguments_are_named(kwargs, argument):
    with pytest.raises(InputError) as info:
        TryOnSession(**kwargs)
    assert info.value.argument == argument
    assert str(info.value).startswith(f"{argument}: expected")


def test_process_on_the_bundled_clip(session, clip):
    results = [session.process(frame, timestamp_s=i / 24) for i, frame in enumerate(clip)]
    keyframes = 0
    assert sum(r.person_found for r in results) >= len(clip) - 1
    for frame, r in zip(clip, results, strict=True):
        assert r.image.shape == frame.shape and r.image.dtype == np.uint8
        assert r.image is not frame
        if not r.person_found:
            continue
        assert set(r.timings) >= STAGES and all(v >= 0 for v in r.timings.values())
        keyframes += "pose" in r.timings
        outside = _outside(r.crop_box, frame.shape)
        assert np.array_equal(r.image[outside], frame[outside])  # nothing changes out of the crop
        changed = np.any(r.image != frame, axis=2)
        assert changed.mean() > 0.03  # the garment is there
        # the garment sits on the torso: below the shoulders, between the crop's sides
        ys, xs = np.nonzero(changed)
        x0, y0, x1, y1 = r.crop_box
        assert y0 <= ys.min() and ys.max() < y1 and x0 <= xs.min() and xs.max() < x1
    assert len(clip) / 3 - 1 <= keyframes < len(clip)  # the pose on keyframes (pose_every=3)
    stats = session.stats()
    assert stats["frames"] >= len(clip) and stats["stages"]["generator"]["p50_ms"] > 0
    assert stats["stages"]["pose"]["p50_ms"] > 0  # the keyframes' pose time


def test_no_person_passes_the_frame_through(session):
    blank = np.full((120, 160, 3), 90, np.uint8)
    r = session.process(blank)
    assert not r.person_found and r.crop_box is None
    assert np.array_equal(r.image, blank)


def test_garment_swap_changes_the_garment_only(session, clip):
    first = session.process(clip[0], timestamp_s=0.0)
    recolored = read_sample_garment().copy()
    recolored[..., :3] = 255 - recolored[..., :3]  # same shape, inverted colours
    session.set_garment(recolored)
    try:
        swapped = session.process(clip[0], timestamp_s=0.0)
    finally:
        session.set_garment(sample_garment_path())
    assert first.person_found and swapped.person_found
    diff = np.any(first.image != swapped.image, axis=2)
    assert diff.mean() > 0.03
    assert not diff[_outside(swapped.crop_box, clip[0].shape)].any()


def test_garment_without_alpha_uses_the_plain_background(session, clip):
    rgba = read_sample_garment()
    alpha = rgba[..., 3:4].astype(np.float32) / 255
    on_white = (rgba[..., :3] * alpha + 255 * (1 - alpha)).astype(np.uint8)
    session.set_garment(on_white)
    try:
        r = session.process(clip[0], timestamp_s=0.0)
    finally:
        session.set_garment(sample_garment_path())
    assert r.person_found and np.any(r.image != clip[0])


@pytest.mark.parametrize(
    "frame",
    [
        None,
        np.zeros((48, 64, 3), np.float32),
        np.zeros((48, 64, 4), np.uint8),
        np.zeros((48, 64), np.uint8),
        np.zeros((0, 0, 3), np.uint8),
        np.zeros((48, 0, 3), np.uint8),
        [[0, 0, 0]],
    ],
    ids=["none", "float32", "rgba", "2d", "empty", "zero-width", "list"],
)
def test_bad_frames_raise_naming_frame(session, frame):
    calls = session.stats()["frames"]
    with pytest.raises(InputError) as info:
        session.process(frame)
    assert info.value.argument == "frame"
    assert session.stats()["frames"] == calls  # rejected before any work


@pytest.mark.parametrize(
    "image",
    [None, "no/such/garment.png", np.zeros((64, 64, 3), np.float32), np.zeros((4, 4, 3), np.uint8),
     np.full((64, 64, 3), 200, np.uint8)],
    ids=["none", "missing-path", "float32", "tiny", "no-garment"],
)  # fmt: skip
def test_bad_garments_raise_naming_image(session, image):
    with pytest.raises(InputError) as info:
        session.set_garment(image)
    assert info.value.argument == "image"


def test_process_before_set_garment(tiny):
    with TryOnSession(str(tiny), backend="torch", tracker=ScriptedTracker()) as s:
        with pytest.raises(InputError) as info:
            s.process(np.zeros((48, 64, 3), np.uint8))
        assert info.value.argument == "garment"


def _tiny_session(tiny, **kw):
    s = TryOnSession(str(tiny), backend="torch", tracker=ScriptedTracker(), **kw)
    s.set_garment(sample_garment_path())
    return s


def _frames(n, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.integers(30, 220, (48, 64, 3), dtype=np.uint8) for _ in range(n)]


def test_stream_skips_bad_frames_and_reports_them(tiny):
    good = _frames(6)
    items = [good[0], None, good[1], np.zeros((48, 64), np.uint8), good[2], good[3],
             np.zeros((48, 64, 3), np.float64), good[4], good[5]]  # fmt: skip
    reported = []
    with _tiny_session(tiny) as s:
        results = list(s.stream(items, on_bad_frame=lambda i, e: reported.append(i)))
        assert [r.index for r in results] == [0, 2, 4, 5, 7, 8]  # in order, bad ones skipped
        assert reported == [1, 3, 6]
        assert s.stats()["bad_frames"] == 3 and s.stats()["dropped_frames"] == 0
        assert "end of source" in s.stream_end_reason


def test_failing_source_closes_the_stream_with_the_reason(tiny):
    def camera():
        yield from _frames(3)
        raise OSError("device unplugged")

    before = threading.active_count()
    with _tiny_session(tiny) as s:
        results = list(s.stream(camera()))
        assert len(results) == 3
        assert "device unplugged" in s.stream_end_reason
    assert threading.active_count() <= before


def test_stream_stops_when_the_consumer_stops(tiny):
    with _tiny_session(tiny) as s:
        stream = s.stream(_frames(50))
        first = [next(stream) for _ in range(3)]
        stream.close()
        assert [r.index for r in first] == [0, 1, 2]
        assert s.stream_end_reason == "stopped by the consumer"


def test_stream_a_video_file_and_a_directory(tiny, tmp_path):
    frames = _frames(7)
    video = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (64, 48))
    for f in frames:
        writer.write(f)
    writer.release()
    folder = tmp_path / "frames"
    folder.mkdir()
    for i, f in enumerate(frames):
        cv2.imwrite(str(folder / f"{i:03d}.png"), f)
    (folder / "notes.txt").write_text("not an image")
    with _tiny_session(tiny) as s:
        assert [r.index for r in s.stream(video)] == list(range(7))
        assert [r.index for r in s.stream(folder, max_frames=5)] == list(range(5))
        assert "max_frames" in s.stream_end_reason
        with pytest.raises(SourceError):
            list(s.stream(tmp_path / "missing.mp4"))


def test_throughput_mode_matches_frame_count_and_passes_no_person_through(tiny):
    frames = _frames(7)
    frames[3] = np.zeros_like(frames[3])  # black: the scripted tracker finds nobody
    with _tiny_session(tiny, mode="throughput", window=2) as s:
        results = list(s.stream(frames))
    assert [r.index for r in results] == list(range(7))
    assert [r.person_found for r in results] == [True, True, True, False, True, True, True]
    assert np.array_equal(results[3].image, frames[3])


def test_latency_and_throughput_agree_on_full_windows(tiny):
    """A window of T identical frames: both modes see the same T frames for the last one."""
    frame = _frames(1)[0]
    with _tiny_session(tiny, window=2) as s:
        latency = list(s.stream([frame, frame]))[-1].image
    with _tiny_session(tiny, window=2, mode="throughput") as s:
        throughput = list(s.stream([frame, frame]))[-1].image
    assert np.abs(latency.astype(int) - throughput.astype(int)).max() <= 1


def test_stream_arguments_are_checked(tiny):
    with _tiny_session(tiny) as s:
        cases = (({"max_frames": 0}, "max_frames"), ({"queue_size": 0}, "queue_size"),
                 ({"fps": 0}, "fps"))  # fmt: skip
        for kwargs, argument in cases:
            with pytest.raises(InputError) as info:
                list(s.stream(_frames(1), **kwargs))
            assert info.value.argument == argument
        with pytest.raises(InputError) as info:
            list(s.stream(np.zeros((48, 64, 3), np.uint8)))
        assert info.value.argument == "source"
        for bad in (3, True, "2"):
            with pytest.raises(InputError) as info:
                s.live_threads = bad
            assert info.value.argument == "live_threads"
        assert s.live_threads == 2


@pytest.mark.parametrize("live_threads", [4, 2])
def test_live_source_drops_old_frames_when_behind(tiny, monkeypatch, live_threads):
    """A live source that delivers faster than the pipeline: the oldest queued frames are
    dropped (counted), results stay in capture order, and nothing waits for old frames; with
    the stages in four threads or in two (perception; the rest)."""
    import engine.runtime.session as session_module
    from engine.runtime.frame_sources import FrameSource

    frames = _frames(40)

    def live(source, fps, live=None):
        return FrameSource(((f, i / 1000) for i, f in enumerate(frames)), live=True, fps=1000.0,
                           description="fake camera")  # fmt: skip

    monkeypatch.setattr(session_module, "open_source", live)
    with _tiny_session(tiny) as s:
        s.live_threads = live_threads
        indices, found = [], 0
        threads = set()  # where the generator's steps ran
        step = s._generate.step
        s._generate.step = lambda w: threads.add(threading.current_thread().name) or step(w)
        for r in s.stream(0, queue_size=1):
            found += r.person_found
            indices.append(r.index)
            time.sleep(0.01)  # a slow consumer
        stats = s.stats()
    assert indices == sorted(indices) and len(set(indices)) == len(indices)
    assert stats["dropped_frames"] > 0
    assert len(indices) + stats["dropped_frames"] == len(frames)
    assert found == len(indices)  # every frame through the whole path
    assert threads == {"tryon-tryon" if live_threads == 2 else "tryon-generator"}


def test_a_replaced_perceived_frame_hands_its_motion_on():
    from engine.perception.person_detector import PersonDetection
    from engine.runtime.session import _newer_perceived
    from engine.runtime.stages import FrameWork

    def perceived(index, motion):
        work = FrameWork(np.zeros((4, 4, 3), np.uint8), index, index / 30, {})
        return work, PersonDetection(np.zeros((18, 3), np.float32), None, motion=motion)

    shift = lambda dx, dy: np.array([[1.0, 0.0, dx], [0.0, 1.0, dy]])  # noqa: E731
    work, detection = _newer_perceived(perceived(1, shift(2, 3)), perceived(2, shift(5, -1)))
    assert work.index == 2
    np.testing.assert_allclose(detection.motion, shift(7, 2))  # both frames' motion
    _, unknown = _newer_perceived(perceived(1, None), perceived(2, shift(5, -1)))
    assert unknown.motion is None  # the dropped frame's motion is unknown: so is the total
