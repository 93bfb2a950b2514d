"""Running a session over a source for the command line: ``tryon run`` and ``tryon demo``.

:func:`run_video` streams a source through a :class:`engine.runtime.session.TryOnSession`, writes
the results to a video file, shows them in a window and/or sends them to a virtual camera
(pyvirtualcam, optional), shows a progress bar for files and live FPS with stage times for webcams,
and returns the session's statistics. Each destination is checked before any frame
(:func:`check_sinks`); Ctrl-C stops the stream cleanly, with a valid video of the frames so far.
:func:`run_demo` does that on the bundled sample clip and garment and also writes a side-by-side
preview image.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from engine.errors import InputError

__all__ = ["gui_unavailable_reason", "check_sinks", "run_video", "run_demo", "format_stats",
           "INTERRUPTED", "VIRTUAL_CAMERA_SETUP"]  # fmt: skip

INTERRUPTED = "interrupted"
"""``end_reason`` of a stream stopped by Ctrl-C (KeyboardInterrupt)."""
VIRTUAL_CAMERA_SETUP = ("pip install 'tryon-engine[virtualcam]' and a virtual camera device "
                        "(Linux: v4l2loopback, e.g. sudo modprobe v4l2loopback; Windows/macOS: "
                        "install OBS Studio, whose virtual camera it uses)")  # fmt: skip
_PROBE_SIZE = (64, 48)  # (width, height) of the probe writer and camera that check a destination

STAGE_ORDER = ("pose", "segmentation", "smoothing", "crop", "inputs", "generator", "composite",
               "total")  # fmt: skip


def gui_unavailable_reason() -> str | None:
    """None when ``cv2.imshow`` can open a window here, else why not."""
    info = cv2.getBuildInformation()
    gui = ""
    for line in info.splitlines():
        if line.strip().startswith("GUI:"):
            gui = line.split(":", 1)[1].strip()
            break
    if not gui or gui.upper() == "NONE":
        return ("this OpenCV build has no GUI support (a headless wheel); install "
                "opencv-contrib-python (not -headless) to use --show")  # fmt: skip
    if sys.platform.startswith("linux") and not (
        os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
    ):
        return "no display to open a window on ($DISPLAY and $WAYLAND_DISPLAY are not set)"
    return None


def _fourcc(path: Path) -> int:
    return cv2.VideoWriter_fourcc(*("mp4v" if path.suffix.lower() == ".mp4" else "MJPG"))


def _check_output(output: object) -> None:
    """InputError unless ``output`` is a .mp4/.avi file path OpenCV can write a video to: not a
    directory, under directories (existing or creatable), a probe writer opens next to it. The
    probe file and any directory made for it are removed again."""
    if not isinstance(output, (str, Path)):
        raise InputError("output", "a .mp4 or .avi path (str or pathlib.Path)", output)
    path = Path(output)
    if path.suffix.lower() not in (".mp4", ".avi"):
        raise InputError("output", "a .mp4 or .avi path", str(output))
    if path.is_dir():
        raise InputError("output", "a video file path, not a directory", str(output))
    if path.exists() and not path.is_file():
        raise InputError("output", "a regular file path (it exists and is not a file)", str(output))
    if path.exists() and not os.access(path, os.W_OK):
        raise InputError("output", "a writable file (it exists and is read-only)", str(output))
    missing = []
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise InputError("output", f"a path under directories ({str(parent)!r} is a "
                                 "file)", str(output))  # fmt: skip
            break
        missing.append(parent)
    probe = path.parent / f".{path.stem}.tryon-probe{path.suffix}"
    try:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            where = f"{str(path.parent)!r}: {exc.strerror or exc}"
            raise InputError("output", f"a path whose directory can be created ({where})",
                             str(output)) from None  # fmt: skip
        writer = cv2.VideoWriter(str(probe), _fourcc(path), 30.0, _PROBE_SIZE)
        opened = writer.isOpened()
        writer.release()
        if not opened:
            raise InputError("output", f"a path OpenCV can write a video to (cv2.VideoWriter did "
                             f"not open in {str(path.parent)!r}: is it writable?)",
                             str(output))  # fmt: skip
    finally:
        probe.unlink(missing_ok=True)
        for directory in missing:  # deepest first
            try:
                directory.rmdir()
            except OSError:
                break


def _open_virtual_camera(width: int, height: int, fps: float):
    """A ``pyvirtualcam.Camera`` taking (height, width, 3) uint8 RGB frames; InputError saying
    what to install when pyvirtualcam or a virtual camera device is missing."""
    try:
        import pyvirtualcam
    except ImportError:
        raise InputError("virtual_camera", "pyvirtualcam, which is not installed: "
                         f"{VIRTUAL_CAMERA_SETUP}") from None  # fmt: skip
    try:
        return pyvirtualcam.Camera(width=width, height=height, fps=fps,
                                   fmt=pyvirtualcam.PixelFormat.RGB)  # fmt: skip
    except RuntimeError as exc:  # no backend or no device
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise InputError("virtual_camera", f"a virtual camera device (pyvirtualcam: {reason}); "
                         f"{VIRTUAL_CAMERA_SETUP}") from None  # fmt: skip


def check_sinks(output: str | Path | None = None, *, show: bool = False,
                virtual_camera: bool = False) -> None:  # fmt: skip
    """Check every destination :func:`run_video` would use, before any work: ``output`` a
    writable .mp4/.avi file path (a probe writer opens there), ``show`` a GUI, ``virtual_camera``
    pyvirtualcam with a device (a probe camera opens). Leaves nothing behind.

    Raises:
        InputError: naming ``output``, ``show`` or ``virtual_camera``, with the reason.
    """
    if show:
        reason = gui_unavailable_reason()
        if reason:
            raise InputError("show", f"a machine where OpenCV can open a window ({reason})", True)
    if output is not None:
        _check_output(output)
    if virtual_camera:
        _open_virtual_camera(*_PROBE_SIZE, 30.0).close()


def format_stats(stats: dict) -> str:
    """A few lines: FPS, frames, dropped/bad/no-person counts, p50/p95 per stage."""
    fps = stats.get("fps")
    rate = f"{fps:.1f}" if fps else "n/a"
    lines = [
        f"backend {stats.get('backend')} ({stats.get('mode')} mode): "
        f"{rate} FPS over {stats['frames']} frames; "
        f"dropped {stats['dropped_frames']}, bad {stats['bad_frames']}, "
        f"no person {stats['no_person_frames']}"
    ]
    stages = stats["stages"]
    names = [n for n in STAGE_ORDER if n in stages] + sorted(set(stages) - set(STAGE_ORDER))
    for name in names:
        s = stages[name]
        lines.append(f"  {name:<13} p50 {s['p50_ms']:8.2f} ms   p95 {s['p95_ms']:8.2f} ms")
    return "\n".join(lines)


def _live_line(stats: dict) -> str:
    stages = stats["stages"]
    parts = [f"{n} {stages[n]['p50_ms']:.0f}" for n in STAGE_ORDER if n in stages]
    fps = stats.get("fps")
    rate = f"{fps:.1f}" if fps else "--"
    return f"\r{rate} FPS | " + " | ".join(parts) + " ms   "


def run_video(
    session,
    source: int | str | Path,
    *,
    output: str | Path | None = None,
    show: bool = False,
    max_frames: int | None = None,
    progress: bool = True,
    keep: int = 0,
    virtual_camera: bool = False,
) -> dict:
    """Stream ``source`` through ``session``; returns ``session.stats()`` plus ``end_reason``,
    ``wall_s`` and (``keep`` > 0) ``kept``: the first ``keep`` (frame index, result image) pairs.

    ``output``: a .mp4/.avi video of the results; ``show``: a window (Esc or q stops);
    ``virtual_camera``: each (H, W, 3) uint8 RGB result goes to a pyvirtualcam camera. Ctrl-C
    (KeyboardInterrupt) ends the stream cleanly: the video holds the frames so far and
    ``end_reason`` is :data:`INTERRUPTED`.

    Raises (before any frame, :func:`check_sinks`):
        InputError: ``show`` without GUI support, an ``output`` that is not a writable .mp4/.avi
            file path, ``virtual_camera`` without pyvirtualcam or a virtual camera device (each
            with the reason and what to do).
        SourceError: the source cannot be opened.
    """
    check_sinks(output, show=show, virtual_camera=virtual_camera)
    from tqdm import tqdm

    from engine.runtime.frame_sources import open_source

    probe = open_source(source) if not isinstance(source, int) else None
    total, fps = (probe.total, probe.fps) if probe is not None else (None, None)
    if probe is not None:
        probe.close()
    if max_frames is not None and total is not None:
        total = min(total, max_frames)
    live = isinstance(source, int)
    writer = camera = None
    kept: list[tuple[int, np.ndarray]] = []
    session.reset_stats()
    results = session.stream(source, max_frames=max_frames)
    bar = tqdm(total=total, unit="frame", desc="try-on", disable=not progress or live)
    start = time.perf_counter()
    last_print = None
    interrupted = False
    try:
        for result in results:
            bgr = cv2.cvtColor(result.image, cv2.COLOR_RGB2BGR)
            h, w = bgr.shape[:2]
            if output is not None:
                if writer is None:
                    Path(output).parent.mkdir(parents=True, exist_ok=True)
                    writer = cv2.VideoWriter(str(output), _fourcc(Path(output)),
                                             float(fps or 30.0), (w, h))  # fmt: skip
                    if not writer.isOpened():  # checked up front; a last line of defence
                        raise InputError("output", "a path OpenCV can write a video to "
                                         "(cv2.VideoWriter did not open)", str(output))  # fmt: skip
                writer.write(bgr)
            if virtual_camera:
                if camera is None:
                    camera = _open_virtual_camera(w, h, float(fps or 30.0))
                camera.send(np.ascontiguousarray(result.image))
            if show:
                cv2.imshow("tryon", bgr)
                if cv2.waitKey(1) & 0xFF in (27, ord("q")):
                    break
            if len(kept) < keep:
                kept.append((result.index, result.image))
            bar.update()
            now = time.perf_counter()
            if live and progress and now - (last_print or start) > 1.0:
                sys.stderr.write(_live_line(session.stats()))
                sys.stderr.flush()
                last_print = now
    except KeyboardInterrupt:  # Ctrl-C: stop the stream and finish the outputs
        interrupted = True
    finally:
        close = getattr(results, "close", None)
        if close is not None:
            close()  # stops the stream's threads
        bar.close()
        if last_print is not None:
            sys.stderr.write("\n")
        if writer is not None:
            writer.release()  # finishes the file: a valid video of the frames so far
        if camera is not None:
            camera.close()
        if show:
            cv2.destroyAllWindows()
    stats = session.stats()
    stats["end_reason"] = INTERRUPTED if interrupted else session.stream_end_reason
    stats["wall_s"] = time.perf_counter() - start
    if keep:
        stats["kept"] = kept
    return stats


def run_demo(out_dir: str | Path = "tryon-demo", *, backend: str = "auto",
             max_frames: int | None = None, progress: bool = True) -> dict:  # fmt: skip
    """The bundled sample clip with the bundled garment: writes ``tryon_demo.mp4`` and
    ``tryon_demo_preview.png`` (input above, try-on below, four frames across) into
    ``out_dir``; returns the stats (see :func:`run_video`) with the two paths."""
    from engine.runtime.session import TryOnSession
    from engine.sample_media import read_sample_clip, sample_clip_path, sample_garment_path

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with TryOnSession("demo", backend=backend) as session:
        session.set_garment(sample_garment_path())
        stats = run_video(session, sample_clip_path(), output=out_dir / "tryon_demo.mp4",
                          max_frames=max_frames, progress=progress, keep=10**6)  # fmt: skip
    kept = stats.pop("kept")
    originals = read_sample_clip(max_frames=max(i for i, _ in kept) + 1) if kept else []
    picks = [kept[round(k * (len(kept) - 1) / 3)] for k in range(4)] if kept else []
    if picks:
        top = np.concatenate([originals[i] for i, _ in picks], axis=1)
        bottom = np.concatenate([img for _, img in picks], axis=1)
        sheet = np.concatenate([top, bottom], axis=0)
        small = cv2.resize(sheet, (sheet.shape[1] // 2, sheet.shape[0] // 2),
                           interpolation=cv2.INTER_AREA)  # fmt: skip
        cv2.imwrite(str(out_dir / "tryon_demo_preview.png"), cv2.cvtColor(small, cv2.COLOR_RGB2BGR))
    stats["video"] = str(out_dir / "tryon_demo.mp4")
    stats["preview"] = str(out_dir / "tryon_demo_preview.png") if picks else None
    return stats
