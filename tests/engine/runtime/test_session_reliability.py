"""What careless users do to a session: size changes, two streams, a raising callback, a huge
window, flipped frames, a paced live iterable, bad timestamps and cache folders, and argument
checks that must happen when ``stream()`` is called (regressions of probes run on main)."""

import threading
import time

import cv2
import numpy as np
import pytest

from engine.errors import InputError, SessionBusyError
from engine.perception.person_detector import PersonDetector
from engine.runtime.frame_sources import SourceError
from engine.runtime.session import MAX_WINDOW, TryOnSession
from engine.sample_media import read_sample_clip, sample_garment_path
from tests.runtime_fixtures import ScriptedTracker, tiny_model_file


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return tiny_model_file(tmp_path_factory.mktemp("tiny"))


def _session(tiny, **kw):
    s = TryOnSession(str(tiny), backend="torch", tracker=kw.pop("tracker", ScriptedTracker()), **kw)
    s.set_garment(sample_garment_path())
    return s


def _frames(n, seed=0, shape=(48, 64, 3)):
    rng = np.random.default_rng(seed)
    return [rng.integers(30, 220, shape, dtype=np.uint8) for _ in range(n)]


def test_a_frame_of_another_size_does_not_kill_the_detector():
    """mediapipe's graphs hold per-size state: a new size used to fail for good."""
    frame = read_sample_clip(max_frames=1)[0]
    with PersonDetector() as detector:
        sizes = [frame, cv2.resize(frame, (1280, 720)), cv2.resize(frame, (320, 240)), frame]
        results = [detector(f, 0.04 * i) for i, f in enumerate(sizes)]
    assert all(r.person_found for r in results)
    assert [r.person_mask.shape for r in results] == [f.shape[:2] for f in sizes]


def test_mixed_sizes_in_one_stream(tiny):
    sizes = [(48, 64, 3), (96, 80, 3), (48, 64, 3), (31, 47, 3)]
    frames = [_frames(1, seed=i, shape=s)[0] for i, s in enumerate(sizes)]
    with _session(tiny) as s:
        results = list(s.stream(frames))
    assert [r.image.shape for r in results] == [f.shape for f in frames]
    assert all(r.person_found for r in results)


def test_a_second_stream_is_refused_while_one_is_open(tiny):
    with _session(tiny) as s:
        first = s.stream(_frames(30))
        next(first)
        with pytest.raises(SessionBusyError):
            s.stream(_frames(3))
        with pytest.raises(SessionBusyError):
            s.process(_frames(1)[0])
        first.close()  # closing frees the session
        assert len(list(s.stream(_frames(3)))) == 3
        assert s.process(_frames(1)[0]).person_found


def test_two_threads_streaming_one_session_never_crash(tiny):
    outcomes = []

    def consume(s):
        try:
            outcomes.append(len(list(s.stream(_frames(20)))))
        except SessionBusyError:
            outcomes.append("busy")

    with _session(tiny) as s:
        threads = [threading.Thread(target=consume, args=(s,)) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
    assert not any(t.is_alive() for t in threads)
    assert sorted(outcomes, key=str) in ([20, 20], [20, "busy"])


def test_a_raising_callback_ends_the_stream_with_its_error(tiny):
    frames = _frames(8)
    frames[2] = None  # a bad frame: the callback is called for it

    def callback(index, error):
        raise RuntimeError(f"callback failed on {index}")

    before = threading.active_count()
    with _session(tiny) as s:
        done = []

        def consume():
            with pytest.raises(RuntimeError, match="callback failed on 2"):
                list(s.stream(frames, on_bad_frame=callback))
            done.append(True)

        t = threading.Thread(target=consume)
        t.start()
        t.join(timeout=60)
        assert done == [True], "the stream hung"
        assert len(list(s.stream(_frames(2)))) == 2  # the session is usable afterwards
    time.sleep(0.2)
    assert threading.active_count() <= before


def test_the_window_is_bounded_before_anything_is_built(tiny):
    with pytest.raises(InputError) as info:
        TryOnSession(str(tiny), backend="torch", window=1000, tracker=ScriptedTracker())
    assert info.value.argument == "window" and str(MAX_WINDOW) in str(info.value)


@pytest.mark.parametrize("flip", ["columns", "channels", "rows"])
def test_negative_stride_frames_are_accepted(tiny, flip):
    frame = _frames(1)[0]
    view = {"columns": frame[:, ::-1], "channels": frame[..., ::-1], "rows": frame[::-1]}[flip]
    with _session(tiny) as s:
        result = s.process(view)
        assert result.person_found and result.image.shape == frame.shape
        same = s.process(np.ascontiguousarray(view))
    assert result.image.shape == same.image.shape


def test_bad_timestamps_and_cache_dirs_are_named(tiny, tmp_path):
    with _session(tiny) as s:
        for bad in ("abc", float("nan"), True):
            with pytest.raises(InputError) as info:
                s.process(_frames(1)[0], timestamp_s=bad)
            assert info.value.argument == "timestamp_s"
    a_file = tmp_path / "file"
    a_file.write_text("x")
    for bad in (a_file, a_file / "sub", 3):
        with pytest.raises(InputError) as info:
            TryOnSession(str(tiny), backend="torch", cache_dir=bad, tracker=ScriptedTracker())
        assert info.value.argument == "cache_dir"
    created = tmp_path / "new" / "cache"
    TryOnSession(str(tiny), backend="torch", cache_dir=created, tracker=ScriptedTracker()).close()
    assert created.is_dir()


def test_stream_checks_its_arguments_when_called(tiny, tmp_path):
    """Before any next(): no garment, a missing source, bad arguments."""
    with TryOnSession(str(tiny), backend="torch", tracker=ScriptedTracker()) as s:
        with pytest.raises(InputError) as info:
            s.stream(_frames(1))
        assert info.value.argument == "garment"
        s.set_garment(sample_garment_path())
        with pytest.raises(SourceError, match="missing.mp4"):
            s.stream(tmp_path / "missing.mp4")
        for kwargs, argument in (({"live": "yes"}, "live"), ({"on_bad_frame": 3}, "on_bad_frame"),
                                 ({"max_frames": 0}, "max_frames")):  # fmt: skip
            with pytest.raises(InputError) as info:
                s.stream(_frames(1), **kwargs)
            assert info.value.argument == argument


def test_a_paced_live_iterable_keeps_latency_bounded(tiny):
    """A 30 FPS camera stand-in marked live: old frames are dropped, so a result is never far
    behind the newest captured frame (it used to fall further behind without bound)."""
    captured = {}

    class SlowTracker(ScriptedTracker):
        def __call__(self, frame, timestamp_s=None):
            time.sleep(0.06)  # a pipeline slower than the camera
            return super().__call__(frame, timestamp_s)

    def camera(n=45):
        for i, frame in enumerate(_frames(n)):
            captured[i] = time.perf_counter()
            yield frame
            time.sleep(1 / 30)

    with _session(tiny, tracker=SlowTracker()) as s:
        lags = []
        for r in s.stream(camera(), live=True):
            newest = max(captured)
            lags.append(newest - r.index)
        stats = s.stats()
    assert stats["dropped_frames"] > 0
    assert max(lags[len(lags) // 2 :]) <= 12  # frames behind the newest: bounded, not growing
