"""`TryOnSession`: the object a developer embeds to run video try-on on frames or streams.

Per frame, the stages of :mod:`engine.runtime.stages`, each timed in ``result.timings`` in
milliseconds::

    pose, segmentation  mediapipe pose (33 landmarks -> the 18 OpenPose keypoints) and person
                        segmentation on the full frame, stabilized on the image motion
                        (engine.perception.person_detector, .motion_stabilizer)
    crop                the box around the person, framed like the training data and smoothed
                        over time (engine.inputs.person_crop), cut out and resized to model size
    inputs              try-on region, background, warped garment, pose maps at model size
                        (engine.inputs.frame_inputs, the code that built the training data)
    generator           the generator over the window (engine.backends.streaming_runner)
    composite           one fused op back into the full frame inside the crop box: rendered
                        person and masks upsampled, the garment sampled at its own resolution
                        (sharp), feathered, straight to uint8 (engine.runtime.paste)

``mode="latency"`` (live video): a causal sliding window of the last ``window`` frames, one
output per input frame; each frame is encoded once and its features cached, so a frame costs
one encoder, the MPDT blocks over the window and one decoder. ``mode="throughput"`` (video
files, :meth:`TryOnSession.stream` only): frames go through the generator in blocks of
``window``; the blocks run once per ``window`` frames instead of once per frame (cheaper per
frame), but a frame's result waits for its block.

The session itself only checks arguments, holds the garment and the stages, and wires them:
``process`` calls them in order; ``stream`` runs them in the threads of
:class:`engine.runtime.pipeline.StagePipeline`.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Literal

import numpy as np

from engine.backends.selection import BACKENDS, choose_backend
from engine.backends.streaming_runner import make_streaming_runner
from engine.errors import InputError, SessionBusyError
from engine.inputs.garment_image import GARMENT_MAX_SIDE, GarmentImage, load_garment_image
from engine.inputs.person_crop import PersonCrop
from engine.model.weights import load_generator
from engine.perception.frame_check import check_frame, check_timestamp
from engine.perception.motion_stabilizer import compose_motions
from engine.perception.person_detector import PersonDetector
from engine.runtime.frame_sources import FrameSource, SourceError, open_source
from engine.runtime.paste import PASTE_MODES, Paste
from engine.runtime.pipeline import Feed, Stage, StagePipeline
from engine.runtime.stage_stats import StageStats
from engine.runtime.stages import (
    BuildInputs,
    Finish,
    Generate,
    GenerateBlocks,
    Perceive,
    TryOnResult,
    torch_threads,
)

__all__ = ["TryOnSession", "TryOnResult", "GARMENT_MAX_SIDE"]

log = logging.getLogger("tryon")

PRECISIONS = ("auto", "fp32", "fp16")
MODES = ("latency", "throughput")
MAX_WINDOW = 32
"""The longest window (frames T) a session accepts: the MPDT attention's score matrices grow
with T squared (T = 1000 needs tens of GB), and the demo model was trained at T = 4."""


_STREAM_BUSY = (
    "stream(): this session already serves a stream (close its iterator first) or a process() call"
)


def _newer_perceived(waiting: tuple, newer: tuple) -> tuple:
    """``newer`` (a ``(FrameWork, PersonDetection)``) in place of ``waiting``, which is
    dropped: its image motion is composed into the newer one's, so the crop, which never saw
    the dropped frame, still moves by the whole motion since the frame it saw last."""
    work, detection = newer
    if getattr(detection, "motion", None) is None:
        return newer
    motion = compose_motions(getattr(waiting[1], "motion", None), detection.motion)
    return work, dataclasses.replace(detection, motion=motion)


def _check_cache_dir(cache_dir: object) -> Path | None:
    """None, or a directory path that exists or can be created (it is created here)."""
    if cache_dir is None:
        return None
    if not isinstance(cache_dir, (str, Path)) or not str(cache_dir):
        raise InputError("cache_dir", "None or a directory path", cache_dir)
    path = Path(cache_dir)
    if path.exists() and not path.is_dir():
        raise InputError("cache_dir", "a directory (this path is a file)", str(path))
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError("cache_dir", f"a directory that can be created ({exc.strerror})",
                         str(path)) from None  # fmt: skip
    return path


class TryOnSession:
    """Video virtual try-on over frames or a stream.

    Example::

        session = TryOnSession("demo", backend="auto", window=4, mode="latency")
        session.set_garment("shirt.png")        # HxWx3/4 uint8 RGB(A) or a path
        result = session.process(frame)         # frame: HxWx3 uint8 RGB, any size
        result.image                            # HxWx3 uint8, same size as frame

    Args:
        model: ``"demo"`` (the bundled generator) or a path to a weights file.
        backend: ``"auto"``, ``"tensorrt"``, ``"onnxruntime"`` or ``"torch"``: the streaming
            runner of :mod:`engine.backends.streaming_runner`; ``"auto"`` follows
            :func:`engine.backends.selection.choose_backend`. A backend that cannot run here
            raises; another one is never substituted.
        precision: ``"auto"`` (fp16 on CUDA, else fp32), ``"fp32"`` or ``"fp16"`` (CUDA only:
            TensorRT, CUDA torch, onnxruntime's CUDA provider; refused on the CPU).
        window: frames T the generator sees at once (>= 1).
        mode: ``"latency"`` or ``"throughput"`` (see the module docstring).
        feather: Gaussian sigma, in model pixels, softening the pasted edge.
        paste: what of the generated crop replaces the frame: ``"garment"`` (where the warped
            garment lies: the new garment over the person as filmed) or ``"region"`` (the
            whole regenerated try-on region, arms and neck included).
        cache_dir: where exported graphs are cached (default ``~/.cache/tryon-engine``).
        tracker: the person detector (default: mediapipe,
            :class:`engine.perception.person_detector.PersonDetector`); any object with
            ``tracker(frame, timestamp_s)`` returning a
            :class:`~engine.perception.person_detector.PersonDetection`, ``reset()`` and
            ``close()``.

    Raises:
        InputError: an argument is invalid (checked before anything is loaded).
        ModelLoadError, BackendUnavailableError: the model or the backend cannot be used.
    """

    def __init__(
        self,
        model: str = "demo",
        *,
        backend: str = "auto",
        precision: Literal["auto", "fp32", "fp16"] = "auto",
        window: int = 4,
        mode: Literal["latency", "throughput"] = "latency",
        feather: float = 1.0,
        paste: Literal["garment", "region"] = "garment",
        cache_dir: str | Path | None = None,
        tracker=None,
    ) -> None:
        if not isinstance(model, (str, Path)) or not str(model):
            raise InputError("model", "'demo' or a path to a model file", model)
        if backend not in BACKENDS:
            raise InputError("backend", f"one of {', '.join(map(repr, BACKENDS))}", backend)
        if precision not in PRECISIONS:
            raise InputError("precision", f"one of {', '.join(map(repr, PRECISIONS))}", precision)
        if isinstance(window, bool) or not isinstance(window, int) or not 1 <= window <= MAX_WINDOW:
            raise InputError("window", f"an int in [1, {MAX_WINDOW}] (frames per generator call)",
                             window)  # fmt: skip
        if mode not in MODES:
            raise InputError("mode", f"one of {', '.join(map(repr, MODES))}", mode)
        if (
            isinstance(feather, bool)
            or not isinstance(feather, (int, float))
            or not (0 <= feather <= 10)
        ):
            raise InputError("feather", "a number of pixels in [0, 10]", feather)
        if paste not in PASTE_MODES:
            raise InputError("paste", "'garment' or 'region'", paste)
        cache_dir = _check_cache_dir(cache_dir)

        choice = choose_backend(backend)  # BackendUnavailableError: never another backend
        if precision == "auto":
            precision = "fp16" if choice.device == "cuda" else "fp32"
        if precision == "fp16" and choice.device != "cuda":
            raise InputError("precision", f"'auto' or 'fp32' for {choice.backend} on the CPU "
                             "(fp16 runs on CUDA devices: TensorRT, CUDA torch, onnxruntime-gpu)",
                             precision)  # fmt: skip
        generator = load_generator(model)
        self.config = generator.config
        self.mode = mode
        self.backend = choice.backend
        self.backend_reason = choice.reason
        self.precision = precision
        self.window = make_streaming_runner(generator, frames=window, choice=choice,
                                            precision=precision, cache_dir=cache_dir)  # fmt: skip
        self.tracker = PersonDetector(smoothing=True) if tracker is None else tracker
        self.crop = PersonCrop(self.config.height, self.config.width)
        self._garment: GarmentImage | None = None
        self._stats = StageStats()
        self._calls = 0
        self.stream_end_reason: str | None = None
        self._live_threads = 2
        self._busy = threading.Lock()  # held by process() and by an open stream
        # The stages, in a frame's order (engine.runtime.stages).
        self._perceive = Perceive(self.tracker)
        # The crop and the inputs are built where the runner runs (a CUDA runner: on the GPU,
        # the frame uploaded once and pasted into there; the CPU: OpenCV on the host).
        self._build = BuildInputs(self.crop, lambda: self._garment,
                                  device=getattr(self.window, "device", "cpu"))  # fmt: skip
        self._generate = Generate(self.window, threads=None if self.backend == "torch" else 1)
        self._finish = Finish(Paste(paste, feather), self._stats)

    @property
    def live_threads(self) -> int:
        """Threads of a live stream's stages in latency mode: 2 (perception; the rest of a
        frame's path in one go: the default, lower latency) or 4 (one per stage). Set before
        ``stream()``; ``bench/live_latency.py`` measures both. Files and other non-live sources
        always run one thread per stage."""
        return self._live_threads

    @live_threads.setter
    def live_threads(self, value: int) -> None:
        if value not in (2, 4) or isinstance(value, bool):
            raise InputError("live_threads", "2 or 4", value)
        self._live_threads = value

    # ------------------------------------------------------------------ garment
    def set_garment(self, image: str | Path | np.ndarray) -> None:
        """Use this garment from the next frame on: a path or an (H, W, 3|4) uint8 RGB(A) array.

        The garment mask is the alpha channel, or (no alpha) the pixels that differ from the
        plain background colour around the border. All per-garment work (mask, landmarks,
        resize to at most :data:`GARMENT_MAX_SIDE` pixels) happens here, once
        (:func:`engine.inputs.garment_image.load_garment_image`).

        Raises:
            InputError: not an image, or no garment shape (collar, shoulders, hem) found in it.
        """
        self._garment = load_garment_image(image)  # one assignment: a stream picks it up at once
        self._build.lost = True  # the window restarts, so the new garment shows at once

    # ------------------------------------------------------------------ frames
    def process(self, frame: np.ndarray, timestamp_s: float | None = None) -> TryOnResult:
        """Try the garment on one frame (causal window over the previous frames).

        Args:
            frame: (H, W, 3) uint8 RGB, any size.
            timestamp_s: the frame's time in seconds (for the keypoint filter); default: now.

        Raises:
            InputError: a bad frame (None, wrong dtype, channels or rank, empty), or no garment.
        """
        frame = check_frame(frame)
        if self._garment is None:
            raise InputError("garment", "set with set_garment() before process()", None)
        stamp = time.monotonic() if timestamp_s is None else check_timestamp(timestamp_s)
        if not self._busy.acquire(blocking=False):
            raise SessionBusyError("process(): this session is busy with a stream or another "
                                   "process() call; use one session per stream")  # fmt: skip
        try:
            index = self._calls
            self._calls += 1
            with torch_threads(1):
                perceived = self._perceive(frame, index, stamp)
            return self._tryon(perceived)
        finally:
            self._busy.release()

    def _tryon(self, perceived: tuple) -> TryOnResult:
        """Crop and inputs, the generator's step and the paste of one perceived frame, one after
        the other in this thread (``process``, and the second thread of a live stream)."""
        with torch_threads(1):
            work = self._build(*perceived)
        generated = self._generate.step(work)  # its own torch thread count
        with torch_threads(1):
            return self._finish(*generated)

    def stats(self) -> dict:
        """p50 / p95 per stage (ms), FPS over the outputs, frames, dropped, bad and no-person
        frames (:meth:`engine.runtime.stage_stats.StageStats.summary`), plus the backend."""
        summary = self._stats.summary()
        summary["backend"] = self.backend
        summary["mode"] = self.mode
        return summary

    def reset_stats(self) -> None:
        self._stats.reset()

    def stream(
        self,
        source: int | str | Path | Iterable,
        *,
        fps: float = 30.0,
        max_frames: int | None = None,
        on_bad_frame: Callable[[int, Exception], None] | None = None,
        queue_size: int = 2,
        live: bool | None = None,
    ) -> Iterator[TryOnResult]:
        """Results for a webcam index, a video file, a directory of images or an iterable of
        frames, in order, from threads: capture -> pose and segmentation -> crop and inputs ->
        generator -> composite into the frame.

        ``live`` (default: webcams and network streams are live, files and iterables are not):
        a live source keeps only the newest frame when the pipeline falls behind (counted in
        ``stats()["dropped_frames"]``) and runs with one-frame queues, so its latency stays
        bounded by the stage times; a non-live source drops nothing and is back-pressured. A
        bad frame is reported (log warning, ``on_bad_frame(index, error)``,
        ``stats()["bad_frames"]``) and skipped; the stream goes on. An ``on_bad_frame`` that
        raises ends the stream: its error is raised from this iterator after every thread has
        stopped. A source that fails or ends closes the stream cleanly; :attr:`stream_end_reason`
        says why. Queues hold ``queue_size`` frames per stage (non-live sources).

        One stream at a time per session: a second ``stream()`` (or ``process()``) while a
        stream's iterator is open raises :class:`~engine.errors.SessionBusyError`.

        Raises (here, when called, before any thread starts):
            InputError: bad arguments or no garment set.
            SourceError: the source cannot be opened.
            SessionBusyError: another stream of this session is open.
        """
        if self._garment is None:
            raise InputError("garment", "set with set_garment() before stream()", None)
        if max_frames is not None and (
            isinstance(max_frames, bool) or not isinstance(max_frames, int) or max_frames < 1
        ):
            raise InputError("max_frames", "None or an int >= 1", max_frames)
        if isinstance(queue_size, bool) or not isinstance(queue_size, int) or queue_size < 1:
            raise InputError("queue_size", "an int >= 1", queue_size)
        if live is not None and not isinstance(live, bool):
            raise InputError("live", "None (the source's default), True or False", live)
        if on_bad_frame is not None and not callable(on_bad_frame):
            raise InputError("on_bad_frame", "None or a callable (index, error)", on_bad_frame)
        if self._busy.locked():
            raise SessionBusyError(_STREAM_BUSY)
        frames = open_source(source, fps=fps, live=live)
        return self._run_stream(frames, max_frames, on_bad_frame, queue_size)

    def _run_stream(
        self,
        frames: FrameSource,
        max_frames: int | None,
        on_bad_frame: Callable[[int, Exception], None] | None,
        queue_size: int,
    ) -> Iterator[TryOnResult]:
        if not self._busy.acquire(blocking=False):
            frames.close()
            raise SessionBusyError(_STREAM_BUSY)
        try:
            self.stream_end_reason = None
            self.tracker.reset()
            self._build.restart()
            yield from self._pipeline(frames, max_frames, on_bad_frame, queue_size)
        finally:
            frames.close()
            self._busy.release()

    def _pipeline(
        self,
        frames: FrameSource,
        max_frames: int | None,
        on_bad_frame: Callable[[int, Exception], None] | None,
        queue_size: int,
    ) -> Iterator[TryOnResult]:
        """The stages of a stream in a :class:`~engine.runtime.pipeline.StagePipeline`."""
        reason: list[str] = []

        def capture(feed: Feed) -> None:
            try:
                for index, (frame, stamp) in enumerate(frames):
                    if feed.stopped:
                        return
                    if max_frames is not None and index >= max_frames:
                        reason.append(f"max_frames={max_frames} reached")
                        return
                    if frames.live:
                        feed.put_latest((index, frame, stamp))
                    elif not feed.put((index, frame, stamp)):
                        return
                reason.append(f"{frames.description}: {frames.finished_reason()}")
            except SourceError as exc:
                reason.append(str(exc))
            except Exception as exc:  # a failing source ends the stream, with its reason
                reason.append(f"{frames.description}: {type(exc).__name__}: {exc}")

        def report(index: int, exc: Exception) -> None:
            self._stats.count(bad=1)
            log.warning("frame %d skipped: %s", index, exc)
            if on_bad_frame is not None:
                on_bad_frame(index, exc)

        def perceive(item: tuple) -> list:  # mediapipe (native code): overlaps the rest
            index, frame, stamp = item
            return [self._perceive(check_frame(frame), index, stamp)]

        first = lambda item: item[0].index  # noqa: E731  (items that start with a FrameWork)
        threads = self._generate.threads is not None
        if self.mode == "latency":  # the generator alone: the paste overlaps in its own stage
            generator = Stage("generator", lambda w: [self._generate.step(w)],
                              lambda w: w.index, single_thread=threads)  # fmt: skip
        else:
            blocks = GenerateBlocks(self._generate, report)
            generator = Stage("generator", blocks.work, lambda w: w.index, flush=blocks.flush,
                              single_thread=threads)  # fmt: skip
        stages = [
            Stage("pose", perceive, lambda item: item[0]),
            Stage("inputs", lambda item: [self._build(*item)], first, single_thread=True),
            generator,
            Stage("paste", lambda item: [self._finish(*item)], first, single_thread=True),
        ]
        if frames.live and self.mode == "latency" and self.live_threads == 2:
            # Latest frame wins, and a frame's latency is the sum of its stages' times: in two
            # threads (perception; the rest of the frame's path in one go) no stage of a frame
            # waits for a core that another of its stages holds.
            # Perception runs on: a perceived frame the second thread has not taken yet is
            # replaced by the newer one (counted as dropped), carrying both frames' motion.
            perception = Stage("pose", perceive, lambda item: item[0], replace=_newer_perceived)
            stages = [perception, Stage("tryon", lambda item: [self._tryon(item)], first)]
            sizes = (1, 1, 1)
        elif frames.live and self.mode == "latency":  # latest frame wins: no frame waits in line
            sizes = (1, 1, 1, 1, 1)
        else:
            deep = queue_size * max(2, self.window.frames)  # a block's worth after the generator
            sizes = (queue_size, queue_size, queue_size, deep, deep)
        pipeline = StagePipeline(stages, report=report, queue_sizes=sizes,
                                 on_drop=lambda: self._stats.count(dropped=1))  # fmt: skip
        try:
            yield from pipeline.run(capture)
        finally:
            self.stream_end_reason = reason[0] if reason else "stopped by the consumer"

    def close(self) -> None:
        """Release mediapipe's graphs."""
        self.tracker.close()

    def __enter__(self) -> TryOnSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
