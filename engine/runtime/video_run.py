"""Running a session over a source for the command line: ``tryon run`` and ``tryon demo``.

:func:`run_video` streams a source through a :class:`engine.runtime.session.TryOnSession`, writes
the results to a video file and/or shows them in a window, shows a progress bar for files and live
FPS with stage times for webcams, and returns the session's statistics. :func:`run_demo` does
that on the bundled sample clip and garment and also writes a side-by-side preview image.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from engine.errors import InputError

__all__ = ["gui_unavailable_reason", "run_video", "run_demo", "format_stats"]

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
) -> dict:
    """Stream ``source`` through ``session``; returns ``session.stats()`` plus ``end_reason``,
    ``wall_s`` and (``keep`` > 0) ``kept``: the first ``keep`` (frame index, result image) pairs.

    Raises:
        InputError: ``show`` without GUI support (with the reason), bad ``output`` suffix.
        SourceError: the source cannot be opened.
    """
    if show:
        reason = gui_unavailable_reason()
        if reason:
            raise InputError("show", f"a machine where OpenCV can open a window ({reason})", True)
    if output is not None and Path(output).suffix.lower() not in (".mp4", ".avi"):
        raise InputError("output", "a .mp4 or .avi path", str(output))
    from tqdm import tqdm

    from engine.runtime.frame_sources import open_source

    probe = open_source(source) if not isinstance(source, int) else None
    total, fps = (probe.total, probe.fps) if probe is not None else (None, None)
    if probe is not None:
        probe.close()
    if max_frames is not None and total is not None:
        total = min(total, max_frames)
    live = isinstance(source, int)
    writer = None
    bar = tqdm(total=total, unit="frame", desc="try-on", disable=not progress or live)
    kept: list[tuple[int, np.ndarray]] = []
    session.reset_stats()
    start = time.perf_counter()
    last_print = start
    try:
        for result in session.stream(source, max_frames=max_frames):
            bgr = cv2.cvtColor(result.image, cv2.COLOR_RGB2BGR)
            if output is not None:
                if writer is None:
                    Path(output).parent.mkdir(parents=True, exist_ok=True)
                    fourcc = cv2.VideoWriter_fourcc(*("mp4v" if str(output).endswith("4") else
                                                      "MJPG"))  # fmt: skip
                    h, w = bgr.shape[:2]
                    writer = cv2.VideoWriter(str(output), fourcc, float(fps or 30.0), (w, h))
                writer.write(bgr)
            if show:
                cv2.imshow("tryon", bgr)
                if cv2.waitKey(1) & 0xFF in (27, ord("q")):
                    break
            if len(kept) < keep:
                kept.append((result.index, result.image))
            bar.update()
            now = time.perf_counter()
            if live and progress and now - last_print > 1.0:
                sys.stderr.write(_live_line(session.stats()))
                sys.stderr.flush()
                last_print = now
    finally:
        bar.close()
        if writer is not None:
            writer.release()
        if show:
            cv2.destroyAllWindows()
    stats = session.stats()
    stats["end_reason"] = session.stream_end_reason
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
