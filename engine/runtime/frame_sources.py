"""Where a stream's frames come from: a webcam, a video file, a directory of images or any
iterable of frames, behind one small interface.

A :class:`FrameSource` is an iterator of ``(frame, timestamp_s)``: ``frame`` as the source gave it
(normally an HxWx3 uint8 RGB array; a bad item is passed on as is, for the stream to report and
skip), ``timestamp_s`` the frame's time in seconds (capture time for a webcam, ``index / fps`` for
a video file, ``index / fps`` with the given ``fps`` for directories and iterables). ``live`` is
True for webcams: a consumer that cannot keep up should drop old frames, not queue them.
A source that fails raises :class:`SourceError` with the reason; one that ends stops iterating.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from pathlib import Path

import cv2
import numpy as np

from engine.errors import InputError, TryOnError
from engine.perception.frame_check import check_frame

__all__ = ["FrameSource", "SourceError", "check_frame", "open_source", "IMAGE_SUFFIXES"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp")


class SourceError(TryOnError):
    """A frame source could not be opened or failed while reading."""


class FrameSource:
    """Iterator of ``(frame, timestamp_s)``; see the module docstring. Close it when done."""

    def __init__(self, frames: Iterator, *, live: bool, fps: float | None, description: str,
                 total: int | None = None, close=None) -> None:  # fmt: skip
        self._frames = frames
        self.live = live
        self.fps = fps
        self.description = description
        self.total = total
        self._close = close

    def __iter__(self) -> FrameSource:
        return self

    def __next__(self) -> tuple[object, float]:
        return next(self._frames)

    def close(self) -> None:
        if self._close is not None:
            self._close()
            self._close = None

    def __enter__(self) -> FrameSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _capture_frames(capture: cv2.VideoCapture, live: bool, fps: float, name: str) -> Iterator:
    index = 0
    start = time.monotonic()
    while True:
        try:
            ok, bgr = capture.read()
        except cv2.error as exc:
            raise SourceError(f"{name}: read failed at frame {index} ({exc})") from exc
        if not ok:
            if live:
                raise SourceError(f"{name}: the camera stopped delivering frames")
            return  # end of the file
        stamp = time.monotonic() - start if live else index / fps
        yield cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), stamp
        index += 1


def _image_frames(paths: list[Path], fps: float) -> Iterator:
    for index, path in enumerate(paths):
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if bgr is None:
            yield None, index / fps  # unreadable: reported and skipped by the stream
            continue
        yield cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), index / fps


def _iterable_frames(frames: Iterable, fps: float) -> Iterator:
    try:
        for index, frame in enumerate(frames):
            yield frame, index / fps
    except Exception as exc:  # the caller's iterable failed: the stream ends with the reason
        raise SourceError(f"the frame iterable raised {type(exc).__name__}: {exc}") from exc


def open_source(source: int | str | Path | Iterable, *, fps: float = 30.0) -> FrameSource:
    """Open a webcam (int index), a video file or a directory of images (path), or wrap an
    iterable of HxWx3 uint8 RGB frames. ``fps`` times frames that carry no time of their own.

    Raises:
        InputError: ``source`` is none of these, or ``fps`` is not > 0.
        SourceError: the camera or file cannot be opened, or a directory holds no images.
    """
    if isinstance(fps, bool) or not isinstance(fps, (int, float)) or not fps > 0:
        raise InputError("fps", "a number > 0 (frames per second)", fps)
    if isinstance(source, bool):
        raise InputError("source", "a webcam index, a video path, a directory or frames", source)
    if isinstance(source, int):
        capture = cv2.VideoCapture(source)
        if not capture.isOpened():
            raise SourceError(f"webcam {source} cannot be opened (no camera at that index?)")
        return FrameSource(_capture_frames(capture, True, fps, f"webcam {source}"), live=True,
                           fps=capture.get(cv2.CAP_PROP_FPS) or None,
                           description=f"webcam {source}", close=capture.release)  # fmt: skip
    if isinstance(source, (str, Path)):
        path = Path(source)
        if path.is_dir():
            images = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
            if not images:
                raise SourceError(f"{path}: no {'/'.join(IMAGE_SUFFIXES)} images in the directory")
            return FrameSource(_image_frames(images, fps), live=False, fps=fps,
                               description=f"{len(images)} images in {path}",
                               total=len(images))  # fmt: skip
        if not path.is_file():
            raise SourceError(f"{path}: no such video file or directory")
        capture = cv2.VideoCapture(str(path))
        if not capture.isOpened():
            raise SourceError(f"{path}: OpenCV cannot open this video")
        video_fps = capture.get(cv2.CAP_PROP_FPS) or fps
        count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) or None
        return FrameSource(_capture_frames(capture, False, video_fps, str(path)), live=False,
                           fps=video_fps, description=str(path), total=count,
                           close=capture.release)  # fmt: skip
    if isinstance(source, np.ndarray) or not isinstance(source, Iterable):
        raise InputError("source", "a webcam index, a video path, a directory or an iterable "
                         "of frames", source)  # fmt: skip
    total = len(source) if hasattr(source, "__len__") else None
    return FrameSource(_iterable_frames(source, fps), live=False, fps=fps,
                       description="frames", total=total)  # fmt: skip
