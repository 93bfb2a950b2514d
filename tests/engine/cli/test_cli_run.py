"""`tryon run` and `tryon demo` through engine.cli.main.main: output videos, the --show check
without a display, errors as "error: ..." with exit code 1, and the stats formatting."""

import cv2
import numpy as np
import pytest

from engine.cli.main import main
from engine.runtime import video_run
from engine.runtime.video_run import format_stats, gui_unavailable_reason
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
    assert "error: show: expected a machine where OpenCV can open a window" in err
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
        (["--output", "out.gif"], "error: output"),
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
