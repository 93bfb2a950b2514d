"""Where a stream's frames come from: a webcam, a video file, a directory of images or any
iterable of frames, behind one small interface.

A :class:`FrameSource` is an iterator of ``(frame, timestamp_s)``: ``frame`` as the source gave it
(normally an HxWx3 uint8 RGB array; a bad item is passed on as is, for the stream to report and
skip), ``timestamp_s`` the frame's time in seconds (capture time for a webcam, ``index / fps`` for
a video file, ``index / fps`` with the given ``fps`` for directories and iterables).

``live`` tells the consumer what to do when it cannot keep up: drop old frames (live) or queue
them (not live). By default webcams and network streams (``rtsp://``, ``rtmp://``, ``http://``,
``https://`` URLs) are live, video files, directories and iterables are not; ``open_source(...,
live=True|False)`` overrides it for any source (an iterable standing in for a camera can be
live; a file played "as live" drops frames when the consumer is slow, its timestamps stay
``index / fps``). ``live`` changes only the dropping policy, never how frames are read or timed,
except for a URL: live, it is timed by capture time and a failed read is a :class:`SourceError`
(the stream broke); not live, it is read like a remote video file (``index / fps``, a failed
read ends it).

A source that fails raises :class:`SourceError` with the reason; one that ends stops iterating,
and :meth:`FrameSource.finished_reason` says how it ended: a video file that stops before the
frame count its container announces is reported as damaged or truncated (and logged), not as a
normal end.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import cv2
import numpy as np

from engine.errors import InputError, TryOnError
from engine.perception.frame_check import check_frame

__all__ = [
    "FrameSource",
    "SourceError",
    "check_frame",
    "open_source",
    "IMAGE_SUFFIXES",
    "STREAM_SCHEMES",
]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp")
STREAM_SCHEMES = ("rtsp", "rtmp", "http", "https")
"""URL schemes opened as network streams (live by default)."""

log = logging.getLogger("tryon")


class SourceError(TryOnError):
    """A frame source could not be opened or failed while reading."""


class FrameSource:
    """Iterator of ``(frame, timestamp_s)``; see the module docstring. Close it when done.

    Attributes:
        live: drop old frames rather than queue them when the consumer falls behind (settable).
        fps: frames per second of the source, ``None`` when unknown.
        description: the source in words, for messages (no password of a URL).
        total: the number of frames announced (container frame count, images, ``len``), or
            ``None``.
        frames_read: frames yielded so far.
    """

    def __init__(self, frames: Iterator, *, live: bool, fps: float | None, description: str,
                 total: int | None = None, close: Callable[[], object] | None = None,
                 check_total: bool = False) -> None:  # fmt: skip
        self._frames = frames
        self.live = live
        self.fps = fps
        self.description = description
        self.total = total
        self.frames_read = 0
        self._close = close
        self._check_total = check_total and total is not None and total > 0
        self._ended = False
        self._closed = False

    def __iter__(self) -> FrameSource:
        return self

    def __next__(self) -> tuple[object, float]:
        try:
            item = next(self._frames)
        except StopIteration:
            if not self._ended:
                self._ended = True
                if self._short():
                    log.warning("%s: %s", self.description, self.finished_reason())
            raise
        self.frames_read += 1
        return item

    def _short(self) -> bool:
        return self._check_total and self.frames_read < self.total

    def finished_reason(self) -> str:
        """How the source ended: ``"end of source"``, or for a video file that stopped before
        its container's frame count ``M``: ``"ended after N of M frames: the file is damaged or
        truncated"``. Before the end: ``"still open after N frames"``, or ``"closed after N
        frames"`` when it was closed first."""
        if self._ended:
            if self._short():
                return (f"ended after {self.frames_read} of {self.total} frames: the file is "
                        "damaged or truncated")  # fmt: skip
            return "end of source"
        state = "closed" if self._closed else "still open"
        return f"{state} after {self.frames_read} frames"

    def close(self) -> None:
        self._closed = True
        if self._close is not None:
            self._close()
            self._close = None

    def __enter__(self) -> FrameSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _capture_frames(capture: cv2.VideoCapture, device: bool, fps: float, name: str) -> Iterator:
    """Frames of a capture: ``device`` (camera, network stream) = capture-time stamps, and a
    failed read is an error; otherwise (a file) stamps ``index / fps`` and a failed read ends."""
    index = 0
    start = time.monotonic()
    while True:
        try:
            ok, bgr = capture.read()
        except cv2.error as exc:
            raise SourceError(f"{name}: read failed at frame {index} ({exc})") from exc
        if not ok:
            if device:
                raise SourceError(f"{name}: stopped delivering frames")
            return  # end of the file
        stamp = time.monotonic() - start if device else index / fps
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


def _stream_url(source: str | Path) -> str | None:
    """``source`` when it is a network stream URL (see :data:`STREAM_SCHEMES`), else ``None``."""
    if not isinstance(source, str) or "://" not in source:
        return None
    return source if source.split("://", 1)[0].lower() in STREAM_SCHEMES else None


def _safe_url(url: str) -> str:
    """The URL without its password, for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def _frame_count(capture: cv2.VideoCapture) -> int | None:
    """The container's frame count, ``None`` when unknown (OpenCV gives <= 0 or NaN then)."""
    announced = capture.get(cv2.CAP_PROP_FRAME_COUNT)
    return int(announced) if 0 < announced < 1e9 else None


def open_source(
    source: int | str | Path | Iterable, *, fps: float = 30.0, live: bool | None = None
) -> FrameSource:
    """Open a webcam (int index), a network stream (``rtsp://``, ``rtmp://``, ``http(s)://`` URL),
    a video file or a directory of images (path), or wrap an iterable of HxWx3 uint8 RGB frames.
    ``fps`` times frames that carry no time of their own. ``live``: ``None`` = the source's
    default (webcams and network streams live, the rest not), ``True`` / ``False`` overrides it
    for any source (see the module docstring).

    Raises:
        InputError: ``source`` is none of these, ``fps`` is not > 0, or ``live`` is not None or a
            bool.
        SourceError: the camera, stream or file cannot be opened, or a directory holds no images.
    """
    if isinstance(fps, bool) or not isinstance(fps, (int, float)) or not fps > 0:
        raise InputError("fps", "a number > 0 (frames per second)", fps)
    if live is not None and not isinstance(live, bool):
        raise InputError("live", "None (the source's default), True or False", live)
    if isinstance(source, bool):
        raise InputError("source", "a webcam index, a video path, a directory or frames", source)

    def is_live(default: bool) -> bool:
        return default if live is None else live

    if isinstance(source, int):
        capture = cv2.VideoCapture(source)
        if not capture.isOpened():
            capture.release()
            raise SourceError(f"webcam {source} cannot be opened (no camera at that index?)")
        return FrameSource(_capture_frames(capture, True, fps, f"webcam {source}"),
                           live=is_live(True), fps=capture.get(cv2.CAP_PROP_FPS) or None,
                           description=f"webcam {source}", close=capture.release)  # fmt: skip
    url = _stream_url(source)
    if url is not None:  # live by default; live=False: a remote file (stamps index / fps, ends)
        name, device = _safe_url(url), is_live(True)
        capture = cv2.VideoCapture(url)
        if not capture.isOpened():
            capture.release()
            raise SourceError(f"{name}: the stream cannot be opened (wrong URL, or not reachable?)")
        stream_fps = capture.get(cv2.CAP_PROP_FPS) or None
        return FrameSource(_capture_frames(capture, device, stream_fps or fps, name),
                           live=device, fps=stream_fps, description=name,
                           total=None if device else _frame_count(capture),
                           close=capture.release, check_total=not device)  # fmt: skip
    if isinstance(source, (str, Path)):
        path = Path(source)
        if path.is_dir():
            images = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
            if not images:
                raise SourceError(f"{path}: no {'/'.join(IMAGE_SUFFIXES)} images in the directory")
            return FrameSource(_image_frames(images, fps), live=is_live(False), fps=fps,
                               description=f"{len(images)} images in {path}",
                               total=len(images))  # fmt: skip
        if not path.is_file():
            raise SourceError(f"{path}: no such video file or directory")
        capture = cv2.VideoCapture(str(path))
        if not capture.isOpened():
            capture.release()
            raise SourceError(f"{path}: OpenCV cannot open this video")
        video_fps = capture.get(cv2.CAP_PROP_FPS) or fps
        return FrameSource(_capture_frames(capture, False, video_fps, str(path)),
                           live=is_live(False), fps=video_fps, description=str(path),
                           total=_frame_count(capture), close=capture.release,
                           check_total=True)  # fmt: skip
    if isinstance(source, np.ndarray) or not isinstance(source, Iterable):
        raise InputError("source", "a webcam index, a video path, a directory or an iterable "
                         "of frames", source)  # fmt: skip
    total = len(source) if hasattr(source, "__len__") else None
    return FrameSource(_iterable_frames(source, fps), live=is_live(False), fps=fps,
                       description="frames", total=total)  # fmt: skip
