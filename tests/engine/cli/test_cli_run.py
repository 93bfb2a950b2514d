"""`tryon run` and `tryon demo` through engine.cli.main.main: output videos, the --show check
without a display, errors as "error: ..." with exit code 1 (bad --output destinations and a
missing virtual camera before any frame), Ctrl-C (a valid video so far, exit 130), the virtual
camera sink, and the stats formatting."""

import re
import sys
import threading
import types

import cv2
import numpy as np
import pytest

from engine.cli.main import main
from engine.runtime import video_run
from engine.runtime.session import TryOnSession
from engine.runtime.video_run import format_stats, gui_unavailable_reason, run_video
from engine.sample_media import sample_garment_path
from tests.runtime_fixtures import tiny_model_file

FRAMES, H, W = 6, 48, 64


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return tiny_model_file(tmp_path_factory.mktemp("tiny"))


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    path = tmp_path_factory.mktemp("clip") / "clip.avi"
    rng = np.random.default_rng(0)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (W, H))
    for _ in range(FRAMES):
        writer.write(rng.integers(0, 256, (H, W, 3), dtype=np.uint8))
    writer.release()
    return path


@pytest.fixture
def no_display(monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)


def _read_video(path):
    capture = cv2.VideoCapture(str(path))
    assert capture.isOpened(), f"cannot open {path}"
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    capture.release()
    return frames


def _run_args(tiny, clip, *extra):
    return ["run", "--garment", str(sample_garment_path()), "--source", str(clip),
            "--model", str(tiny), "--backend", "torch", *extra]  # fmt: skip


def test_run_writes_the_video(tiny, clip, tmp_path, capsys):
    out = tmp_path / "sub" / "out.avi"  # the parent is created
    assert main(_run_args(tiny, clip, "--output", str(out))) == 0
    captured = capsys.readouterr()
    assert "backend: torch" in captured.err
    assert f"wrote {out}" in captured.out and "end of source" in captured.out
    assert f"over {FRAMES} frames" in captured.out
    frames = _read_video(out)
    assert len(frames) == FRAMES
    assert all(f.shape == (H, W, 3) for f in frames)


def test_run_stops_at_max_frames(tiny, clip, tmp_path, capsys):
    out = tmp_path / "out.avi"
    assert main(_run_args(tiny, clip, "--output", str(out), "--max-frames", "4")) == 0
    assert "max_frames" in capsys.readouterr().out
    assert len(_read_video(out)) == 4


def test_show_without_a_display_is_an_error(tiny, clip, no_display, tmp_path, capsys):
    out = tmp_path / "out.avi"
    assert main(_run_args(tiny, clip, "--show", "--output", str(out))) == 1
    err = capsys.readouterr().err
    assert "error: --show: expected a machine where OpenCV can open a window" in err
    assert "Traceback" not in err
    assert not out.exists()  # refused before any frame


def test_show_error_names_the_reason(tiny, clip, no_display, capsys):
    reason = gui_unavailable_reason()
    assert reason is not None
    assert main(_run_args(tiny, clip, "--show")) == 1
    assert reason in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--garment", "no/such/garment.png"], "error: image"),
        (["--source", "no/such/clip.mp4"], "no such video file"),
        (["--output", "out.gif"], "error: --output: expected a .mp4 or .avi path"),
        (["--model", "no/such/weights.safetensors"], "error: cannot load model"),
        (["--window", "0"], "error: window"),
    ],
    ids=["garment", "source", "output-suffix", "model", "window"],
)
def test_run_errors_exit_1_with_a_message(tiny, clip, tmp_path, monkeypatch, capsys, argv,
                                          message):  # fmt: skip
    monkeypatch.chdir(tmp_path)
    args = _run_args(tiny, clip)
    for flag, value in zip(argv[::2], argv[1::2], strict=True):
        if flag in args:
            args[args.index(flag) + 1] = value
        else:
            args += [flag, value]
    assert main(args) == 1
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "out.gif").exists()


def test_gui_unavailable_reason(monkeypatch, no_display):
    assert isinstance(gui_unavailable_reason(), str)
    monkeypatch.setattr(video_run.cv2, "getBuildInformation", lambda: "  GUI:   NONE\n")
    monkeypatch.setenv("DISPLAY", ":0")
    assert "no GUI support" in gui_unavailable_reason()
    monkeypatch.setattr(video_run.cv2, "getBuildInformation", lambda: "Video I/O:\n")
    assert "no GUI support" in gui_unavailable_reason()
    monkeypatch.setattr(video_run.cv2, "getBuildInformation", lambda: "  GUI:  GTK3\n")
    monkeypatch.setattr(video_run.sys, "platform", "linux")
    assert gui_unavailable_reason() is None
    monkeypatch.delenv("DISPLAY")
    assert "$DISPLAY" in gui_unavailable_reason()
    monkeypatch.setenv("WAYLAND_DISPLAY", "wayland-0")
    assert gui_unavailable_reason() is None


def test_format_stats():
    stats = {
        "backend": "torch", "mode": "latency", "fps": 12.345, "frames": 40,
        "dropped_frames": 2, "bad_frames": 1, "no_person_frames": 3,
        "stages": {
            "total": {"p50_ms": 80.0, "p95_ms": 95.5, "mean_ms": 82.0, "count": 40},
            "zeta": {"p50_ms": 1.0, "p95_ms": 2.0, "mean_ms": 1.2, "count": 40},
            "pose": {"p50_ms": 10.25, "p95_ms": 12.5, "mean_ms": 11.0, "count": 40},
            "alpha": {"p50_ms": 0.5, "p95_ms": 0.75, "mean_ms": 0.6, "count": 40},
            "generator": {"p50_ms": 50.0, "p95_ms": 60.0, "mean_ms": 52.0, "count": 40},
        },
    }  # fmt: skip
    lines = format_stats(stats).splitlines()
    assert lines[0] == ("backend torch (latency mode): 12.3 FPS over 40 frames; dropped 2, "
                        "bad 1, no person 3")  # fmt: skip
    # the pipeline's stages in pipeline order, then the others by name
    order = [line.split()[0] for line in lines[1:]]
    assert order == ["pose", "generator", "total", "alpha", "zeta"]
    assert "p50    10.25 ms" in lines[1] and "p95    12.50 ms" in lines[1]
    stats["fps"] = None
    stats["stages"] = {}
    assert format_stats(stats).splitlines() == [
        "backend torch (latency mode): n/a FPS over 40 frames; dropped 2, bad 1, no person 3"
    ]


def test_demo_writes_the_video_and_the_preview(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--max-frames", str(FRAMES), "--out", str(out), "--backend", "torch"]) == 0
    video, preview = out / "tryon_demo.mp4", out / "tryon_demo_preview.png"
    printed = capsys.readouterr().out
    assert f"wrote {video} and {preview}" in printed and "backend torch" in printed
    frames = _read_video(video)
    assert len(frames) == FRAMES
    image = cv2.imread(str(preview))
    assert image is not None
    h, w = frames[0].shape[:2]
    assert image.shape == (h, 2 * w, 3)  # 2 rows x 4 frames, at half size
    top, bottom = image[: h // 2].astype(int), image[h // 2 :].astype(int)
    assert np.abs(top - bottom).mean() > 2  # input above, try-on below


def _refused_before_any_frame(err):
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert "backend:" not in err  # checked before the session (model, garment, frames)


def test_output_that_is_a_directory_is_an_error(tiny, clip, tmp_path, capsys):
    out = tmp_path / "out.mp4"
    out.mkdir()
    assert main(_run_args(tiny, clip, "--output", str(out))) == 1
    captured = capsys.readouterr()
    assert "error: --output: expected a video file path, not a directory" in captured.err
    assert "wrote" not in captured.out
    _refused_before_any_frame(captured.err)
    assert list(out.iterdir()) == []


def test_output_under_a_file_is_an_error(tiny, clip, tmp_path, capsys):
    a_file = tmp_path / "a_file"
    a_file.write_text("keep me")
    assert main(_run_args(tiny, clip, "--output", str(a_file / "out.avi"))) == 1
    err = capsys.readouterr().err
    assert "error: --output: expected a path under directories" in err and "is a file" in err
    _refused_before_any_frame(err)
    assert a_file.read_text() == "keep me"


def test_output_opencv_cannot_write_is_an_error(tiny, clip, tmp_path, monkeypatch, capsys):
    class ClosedWriter:  # what cv2.VideoWriter gives for an unwritable path: no exception
        def __init__(self, *args):
            pass

        def isOpened(self):  # noqa: N802  (OpenCV's name)
            return False

        def write(self, frame):
            pass

        def release(self):
            pass

    monkeypatch.setattr(video_run.cv2, "VideoWriter", ClosedWriter)
    out = tmp_path / "new" / "out.mp4"
    assert main(_run_args(tiny, clip, "--output", str(out))) == 1
    captured = capsys.readouterr()
    assert "error: --output: expected a path OpenCV can write a video to" in captured.err
    assert "wrote" not in captured.out
    _refused_before_any_frame(captured.err)
    assert not (tmp_path / "new").exists()  # the directory made for the probe is removed


def test_check_sinks_leaves_nothing_behind(tmp_path):
    video_run.check_sinks(tmp_path / "a" / "b" / "out.mp4")
    video_run.check_sinks(tmp_path / "out.avi")
    assert list(tmp_path.iterdir()) == []


def _interrupting_stream(monkeypatch, after):
    """TryOnSession.stream whose consumer gets KeyboardInterrupt (Ctrl-C) after ``after``
    results, the way SIGINT reaches the main thread while it waits for the next result."""
    original = TryOnSession.stream

    def stream(self, source, **kwargs):
        inner = original(self, source, **kwargs)

        def results():
            try:
                for index, result in enumerate(inner):
                    if index == after:
                        raise KeyboardInterrupt
                    yield result
            finally:
                inner.close()

        return results()

    monkeypatch.setattr(TryOnSession, "stream", stream)


def test_ctrl_c_keeps_a_valid_video_and_exits_130(tiny, clip, tmp_path, monkeypatch, capsys):
    _interrupting_stream(monkeypatch, after=3)
    out = tmp_path / "out.avi"
    try:
        code = main(_run_args(tiny, clip, "--output", str(out)))
    except KeyboardInterrupt:
        pytest.fail("KeyboardInterrupt escaped tryon run")
    captured = capsys.readouterr()
    assert code == 130
    done = re.search(r"FPS over (\d+) frames; dropped 0", captured.out)  # the stats so far
    assert done and 3 <= int(done[1]) < FRAMES, captured.out
    assert "stream ended: interrupted" in captured.out
    assert f"wrote {out}" in captured.out and "Traceback" not in captured.err
    frames = _read_video(out)
    assert len(frames) == 3 and all(f.shape == (H, W, 3) for f in frames)


def test_ctrl_c_while_writing_stops_the_stream(tiny, clip, tmp_path, monkeypatch):
    calls = []
    convert = video_run.cv2.cvtColor

    def cvt_color(image, code, *args):  # Ctrl-C lands in run_video's own loop this time
        if threading.current_thread() is threading.main_thread() and code == cv2.COLOR_RGB2BGR:
            calls.append(1)
            if len(calls) == 3:
                raise KeyboardInterrupt
        return convert(image, code, *args)

    out = tmp_path / "out.mp4"
    with TryOnSession(str(tiny), backend="torch") as session:
        session.set_garment(sample_garment_path())
        monkeypatch.setattr(video_run.cv2, "cvtColor", cvt_color)
        try:
            stats = run_video(session, clip, output=out, progress=False)
        except KeyboardInterrupt:
            pytest.fail("KeyboardInterrupt escaped run_video")
        monkeypatch.undo()
        assert stats["end_reason"] == "interrupted" and stats["frames"] >= 2
        assert len(_read_video(out)) == 2
        second = run_video(session, clip, progress=False)  # the stream was closed: not busy
    assert second["frames"] == FRAMES and "end of source" in second["end_reason"]


def test_virtual_camera_without_pyvirtualcam_says_what_to_install(tiny, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "pyvirtualcam", None)  # not importable, even if installed
    assert main(_run_args(tiny, "0", "--virtual-camera")) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: --virtual-camera: expected pyvirtualcam, which is not installed")
    assert "pip install 'tryon-engine[virtualcam]'" in err and "v4l2loopback" in err
    _refused_before_any_frame(err)


def _fake_pyvirtualcam(camera):
    return types.SimpleNamespace(Camera=camera, PixelFormat=types.SimpleNamespace(RGB="RGB"))


def test_virtual_camera_without_a_device_says_what_to_install(tiny, monkeypatch, capsys):
    def no_device(*args, **kwargs):
        raise RuntimeError("'/dev/video0' is not a video4linux device\n(v4l2loopback missing?)")

    monkeypatch.setitem(sys.modules, "pyvirtualcam", _fake_pyvirtualcam(no_device))
    assert main(_run_args(tiny, "0", "--virtual-camera")) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: --virtual-camera: expected a virtual camera device")
    assert "'/dev/video0' is not a video4linux device (v4l2loopback missing?)" in err
    assert "pip install 'tryon-engine[virtualcam]'" in err and "OBS" in err
    _refused_before_any_frame(err)


def test_virtual_camera_gets_every_result_as_rgb(tiny, clip, monkeypatch, capsys):
    cameras = []

    class Camera:
        def __init__(self, width, height, fps, *, fmt):
            self.size, self.fmt, self.frames, self.closed = (width, height), fmt, [], False
            cameras.append(self)

        def send(self, frame):
            self.frames.append(frame.copy())

        def close(self):
            self.closed = True

    monkeypatch.setitem(sys.modules, "pyvirtualcam", _fake_pyvirtualcam(Camera))
    assert main(_run_args(tiny, clip, "--virtual-camera")) == 0
    assert "end of source" in capsys.readouterr().out
    streamed = [c for c in cameras if c.frames]
    assert len(streamed) == 1 and all(c.closed for c in cameras)  # probes closed too
    camera = streamed[0]
    assert camera.size == (W, H) and camera.fmt == "RGB" and len(camera.frames) == FRAMES
    assert all(f.shape == (H, W, 3) and f.dtype == np.uint8 for f in camera.frames)
