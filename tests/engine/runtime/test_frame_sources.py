"""open_source: iterables, directories of images, video files and webcams behind one iterator of
(frame, timestamp_s); every failure is a SourceError with the reason, every bad argument an
InputError naming it."""

import time

import cv2
import numpy as np
import pytest

from engine.errors import InputError, TryOnError
from engine.runtime.frame_sources import FrameSource, SourceError, open_source
from engine.sample_media import sample_clip_path


def _frames(n, h=24, w=32, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for _ in range(n)]


def _write_avi(path, bgr_frames, fps=12.0):
    h, w = bgr_frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (w, h))
    assert writer.isOpened()
    for f in bgr_frames:
        writer.write(f)
    writer.release()
    return path


def test_source_error_is_a_tryon_error():
    assert issubclass(SourceError, TryOnError)


def test_list_of_frames():
    frames = _frames(4)
    with open_source(frames, fps=10) as source:
        assert isinstance(source, FrameSource)
        assert source.total == 4 and not source.live and source.fps == 10
        items = list(source)
    assert [t for _, t in items] == pytest.approx([0.0, 0.1, 0.2, 0.3])
    assert all(got is want for (got, _), want in zip(items, frames, strict=True))


def test_generator_has_no_total_and_passes_bad_items_through():
    frames = _frames(2)
    source = open_source(f for f in (frames[0], None, frames[1]))
    assert source.total is None
    items = list(source)
    assert items[1] == (None, pytest.approx(1 / 30))  # passed on, for the stream to report
    assert [t for _, t in items] == pytest.approx([0, 1 / 30, 2 / 30])


def test_failing_iterable_raises_source_error_with_the_reason():
    def camera():
        yield from _frames(2)
        raise OSError("device unplugged")

    source = open_source(camera())
    assert next(source)[1] == 0.0 and next(source)[1] == pytest.approx(1 / 30)
    with pytest.raises(SourceError, match="OSError: device unplugged") as info:
        next(source)
    assert isinstance(info.value.__cause__, OSError)


def test_directory_sorted_images_only(tmp_path):
    frames = _frames(2) + [np.full((24, 32, 3), (200, 30, 60), np.uint8)]  # RGB
    names = ["b.png", "a.PNG", "c.jpg"]  # suffixes in any case; .jpg is lossy: a flat colour
    for name, frame in zip(names, frames, strict=True):
        cv2.imwrite(str(tmp_path / name), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / "z.png.bak").write_bytes(b"x")
    (tmp_path / "sub.png").mkdir()  # named like an image: listed, yields None
    source = open_source(tmp_path, fps=5)
    assert source.total == 4 and source.fps == 5 and not source.live
    items = list(source)
    assert [t for _, t in items] == pytest.approx([0.0, 0.2, 0.4, 0.6])
    # sorted by name: a.PNG, b.png, c.jpg, sub.png (not readable as an image)
    assert np.array_equal(items[0][0], frames[1]) and np.array_equal(items[1][0], frames[0])
    assert items[2][0].shape == frames[2].shape
    assert np.abs(items[2][0].astype(int) - frames[2].astype(int)).max() <= 8  # RGB order
    assert items[3][0] is None


def test_unreadable_image_yields_none(tmp_path):
    good = _frames(2)
    cv2.imwrite(str(tmp_path / "000.png"), good[0])
    (tmp_path / "001.png").write_bytes(b"\x89PNG garbage")
    cv2.imwrite(str(tmp_path / "002.png"), good[1])
    items = list(open_source(str(tmp_path)))  # a str path works too
    assert [f is None for f, _ in items] == [False, True, False]
    assert np.array_equal(items[2][0], cv2.cvtColor(good[1], cv2.COLOR_BGR2RGB))


def test_video_file_frames_in_rgb_order(tmp_path):
    red_bgr = np.zeros((48, 64, 3), np.uint8)
    red_bgr[..., 2] = 255  # pure red in OpenCV's BGR
    noise = [cv2.cvtColor(f, cv2.COLOR_RGB2BGR) for f in _frames(4, 48, 64)]
    path = _write_avi(tmp_path / "clip.avi", [red_bgr] + noise, fps=12.0)
    with open_source(path) as source:
        assert source.total == 5 and source.fps == pytest.approx(12.0) and not source.live
        items = list(source)
    assert len(items) == 5
    assert [t for _, t in items] == pytest.approx([i / 12 for i in range(5)])
    first = items[0][0]
    assert first.shape == (48, 64, 3) and first.dtype == np.uint8
    mean = first.reshape(-1, 3).mean(axis=0)
    assert mean[0] > 230 and mean[1] < 25 and mean[2] < 25  # R, G, B


def test_close_is_idempotent(tmp_path):
    path = _write_avi(tmp_path / "clip.avi", [np.zeros((16, 16, 3), np.uint8)] * 3)
    source = open_source(path)
    next(source)
    source.close()
    source.close()
    plain = open_source(_frames(1))
    plain.close()
    plain.close()
    with open_source(path) as again:
        pass
    again.close()


def test_missing_path_and_empty_directory(tmp_path):
    with pytest.raises(SourceError, match="no such video file or directory"):
        open_source(tmp_path / "missing.mp4")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(SourceError, match="no .* images"):
        open_source(empty)
    (empty / "readme.txt").write_text("no images here")
    with pytest.raises(SourceError):
        open_source(empty)


def test_file_that_is_not_a_video(tmp_path):
    path = tmp_path / "fake.avi"
    path.write_bytes(b"this is not a video" * 10)
    with pytest.raises(SourceError, match="OpenCV cannot open this video") as info:
        open_source(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize(
    "source",
    [True, 3.5, None, np.zeros((4, 4, 3), np.uint8), object()],
    ids=["bool", "float", "none", "array", "object"],
)
def test_bad_source_types_are_named(source):
    with pytest.raises(InputError) as info:
        open_source(source)
    assert info.value.argument == "source"


@pytest.mark.parametrize("fps", [0, -1.0, float("nan"), "30", True, None])
def test_bad_fps_is_named(fps):
    with pytest.raises(InputError) as info:
        open_source(_frames(1), fps=fps)
    assert info.value.argument == "fps"


def test_missing_webcam_raises_source_error():
    start = time.monotonic()
    try:
        source = open_source(99)
    except SourceError as exc:
        assert "webcam 99" in str(exc)
        return
    except Exception as exc:  # noqa: BLE001 - a backend that errors differently
        pytest.skip(f"opening webcam 99 raised {type(exc).__name__}: {exc}")
    source.close()
    if time.monotonic() - start > 5:
        pytest.skip("opening a missing webcam is slow on this machine")
    pytest.skip("a camera answers at index 99 here")


# ---------------------------------------------------------------- damaged files: finished_reason


def _read_count(path):
    capture = cv2.VideoCapture(str(path))
    count = 0
    while capture.read()[0]:
        count += 1
    capture.release()
    return count


def _drain(source):
    n = 0
    for _ in source:
        n += 1
    return n


def test_damaged_video_reports_frames_read_of_announced(tmp_path, caplog):
    data = sample_clip_path().read_bytes()
    path = tmp_path / "damaged.mp4"
    for frac in (0.3, 0.25, 0.35, 0.2):  # bytes flipped mid-file: the decoder gives up early
        damaged = bytearray(data)
        i = int(len(data) * frac)
        damaged[i : i + 4096] = bytes(b ^ 0xFF for b in damaged[i : i + 4096])
        path.write_bytes(bytes(damaged))
        if 0 < _read_count(path) < 64:
            break
    else:
        pytest.skip("this OpenCV build reads through the flipped bytes")
    with caplog.at_level("WARNING", logger="tryon"), open_source(path) as source:
        assert source.total == 64
        n = _drain(source)
        reason = source.finished_reason()
    assert 0 < n < 64 and source.frames_read == n
    assert reason == f"ended after {n} of 64 frames: the file is damaged or truncated"
    warnings = [r for r in caplog.records if r.name == "tryon" and r.levelname == "WARNING"]
    assert len(warnings) == 1 and f"{n} of 64" in warnings[0].getMessage()
    assert str(path) in warnings[0].getMessage()


def test_truncated_video_is_not_a_normal_end(tmp_path):
    full = _write_avi(tmp_path / "full.avi", [cv2.cvtColor(f, cv2.COLOR_RGB2BGR)
                                              for f in _frames(20, 48, 64)])  # fmt: skip
    data = full.read_bytes()
    cut = tmp_path / "cut.avi"
    cut.write_bytes(data[: len(data) // 2])
    source = open_source(cut)
    n = _drain(source)
    with pytest.raises(StopIteration):  # stays ended; the warning is logged once
        next(source)
    assert 0 < n < 20 and source.total == 20
    assert f"ended after {n} of 20 frames" in source.finished_reason()
    assert "damaged or truncated" in source.finished_reason()


def test_complete_sources_end_normally(tmp_path, caplog):
    path = _write_avi(tmp_path / "clip.avi", [np.zeros((16, 16, 3), np.uint8)] * 3)
    with caplog.at_level("WARNING", logger="tryon"):
        source = open_source(path)
        next(source)
        assert source.finished_reason() == "still open after 1 frames"
        assert _drain(source) == 2 and source.frames_read == 3
        assert source.finished_reason() == "end of source"
        frames = open_source(_frames(2))
        list(frames)
        assert frames.finished_reason() == "end of source"
    assert not caplog.records
    early = open_source(path)
    next(early)
    early.close()
    assert early.finished_reason() == "closed after 1 frames"


def test_lying_length_of_an_iterable_is_not_called_damage():
    class Short(list):
        def __len__(self):
            return 10

    source = open_source(Short(_frames(2)))
    assert source.total == 10 and _drain(source) == 2
    assert source.finished_reason() == "end of source"


# ---------------------------------------------------------------- live


def test_live_defaults_per_kind_of_source(tmp_path):
    path = _write_avi(tmp_path / "clip.avi", [np.zeros((16, 16, 3), np.uint8)] * 2)
    cv2.imwrite(str(tmp_path / "a.png"), np.zeros((8, 8, 3), np.uint8))
    for source in (path, str(path), tmp_path, _frames(1), iter(_frames(1))):
        with open_source(source) as opened:
            assert opened.live is False, source


@pytest.mark.parametrize("live", [True, False])
def test_live_overrides_any_source(tmp_path, live):
    path = _write_avi(tmp_path / "clip.avi", [np.zeros((16, 16, 3), np.uint8)] * 2)
    cv2.imwrite(str(tmp_path / "a.png"), np.zeros((8, 8, 3), np.uint8))
    for source in (path, tmp_path, _frames(2), iter(_frames(2))):
        with open_source(source, fps=10, live=live) as opened:
            assert opened.live is live
            items = list(opened)  # read and timed as without the override
        assert [t for _, t in items] == pytest.approx([i / opened.fps for i in range(len(items))])
        assert opened.finished_reason() == "end of source"


@pytest.fixture
def http_dir(tmp_path):
    import functools
    import http.server
    import threading

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    handler = functools.partial(Quiet, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield tmp_path, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_network_url_is_live_by_default_and_can_be_a_remote_file(http_dir):
    folder, base = http_dir
    _write_avi(folder / "clip.avi", [cv2.cvtColor(f, cv2.COLOR_RGB2BGR) for f in _frames(4)])
    probe = cv2.VideoCapture(f"{base}/clip.avi")
    if not probe.isOpened():
        pytest.skip("this OpenCV build cannot read http://")
    probe.release()
    with open_source(f"{base}/clip.avi") as source:
        assert source.live is True and source.description == f"{base}/clip.avi"
        next(source)
    with open_source(f"{base}/clip.avi", live=False) as remote:
        assert remote.live is False
        items = list(remote)
    assert len(items) == 4 and remote.finished_reason() == "end of source"
    assert [t for _, t in items] == pytest.approx([i / 12 for i in range(4)])


def test_unreachable_url_hides_the_password():
    with pytest.raises(SourceError, match="cannot be opened") as info:
        open_source("rtsp://user:secret@127.0.0.1:1/cam")
    assert "secret" not in str(info.value) and "user:***@127.0.0.1:1" in str(info.value)


@pytest.mark.parametrize("live", ["yes", 1, 0, 1.0, "False"])
def test_bad_live_is_named_before_any_work(live):
    with pytest.raises(InputError) as info:  # before opening anything: no SourceError for 99
        open_source(99, live=live)
    assert info.value.argument == "live"
    with pytest.raises(InputError) as info:
        open_source(_frames(1), live=live)
    assert info.value.argument == "live"
