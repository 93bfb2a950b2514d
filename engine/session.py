"""`TryOnSession`: the object a developer embeds to run video try-on on frames or streams.

Per frame (stages, each timed in ``result.timings`` in milliseconds)::

    pose, segmentation  mediapipe pose (33 landmarks -> the 18 COCO keypoints, One Euro smoothed)
                        and person segmentation, on the full frame (engine.person_tracking)
    crop                the box around the person, framed like the training data and smoothed
                        over time (engine.person_crop), cut out and resized to the model's size
    inputs              try-on region, background, warped garment, pose maps at model size
                        (engine.generator_inputs, the code that built the training data)
    generator           the generator over the window (engine.window_generator)
    composite           the try-on crop resized back and composited into the full frame inside
                        the region, feathered, straight to uint8 (kernels.composite)

``mode="latency"`` (live video): a causal sliding window of the last ``window`` frames, one
output per input frame; each frame is encoded once and its features cached, so a frame costs
one encoder, the MPDT blocks over the window and one decoder. ``mode="throughput"`` (video
files, :meth:`TryOnSession.stream` only): frames go through the generator in blocks of
``window``; the blocks run once per ``window`` frames instead of once per frame (cheaper per
frame), but a frame's result waits for its block.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import cv2
import numpy as np
import torch

from engine.backends.selection import BACKENDS, choose_backend
from engine.errors import InputError
from engine.frame_sources import SourceError, check_frame, open_source
from engine.garment import garment_keypoints, garment_mask
from engine.generator_inputs import frame_inputs
from engine.mpdt import INPUT_NAMES
from engine.person_crop import CropBox, PersonCrop
from engine.stage_stats import StageStats
from kernels.composite import composite

__all__ = ["TryOnSession", "TryOnResult", "GARMENT_MAX_SIDE"]

log = logging.getLogger("tryon")

PRECISIONS = ("auto", "fp32", "fp16")
MODES = ("latency", "throughput")
GARMENT_MAX_SIDE = 384
"""Garments are resized (area interpolation) so their longer side is at most this many pixels."""
_END = object()  # queue sentinel: the stream is over


@dataclass
class TryOnResult:
    """One processed frame.

    Attributes:
        image: (H, W, 3) uint8 RGB, the frame's size, the try-on composited in (a new array).
        person_found: False when no usable person was found (``image`` is then the frame).
        timings: milliseconds per stage (see the module docstring) and ``total`` (from the
            start of perception to the result; in a stream, waits between stages included).
        index: the frame's position in its stream (or the count of ``process`` calls).
        timestamp_s: the frame's time in seconds.
        crop_box: ``(x0, y0, x1, y1)`` frame pixels of the crop the generator saw (may extend
            past the frame; None without a person): pixels outside it are never changed.
    """

    image: np.ndarray
    person_found: bool
    timings: dict[str, float] = field(default_factory=dict)
    index: int = 0
    timestamp_s: float = 0.0
    crop_box: tuple[int, int, int, int] | None = None


@dataclass
class _Prepared:
    """A frame after the per-frame stages before the generator."""

    frame: np.ndarray
    index: int
    timestamp_s: float
    timings: dict[str, float]
    box: CropBox | None = None
    inputs: dict[str, torch.Tensor] | None = None  # (1, C, H, W) each
    region: torch.Tensor | None = None  # (1, 1, H, W), 1 = regenerated
    restart: bool = False  # the person was lost before this frame: the window starts over
    started: float = 0.0


@contextlib.contextmanager
def _torch_threads(n: int | None):
    """Run the block with ``n`` torch intra-op threads in *this* thread (OpenMP's setting is
    per thread), then restore; ``None`` leaves it alone. The session's tensors are small (the
    crop is 128x96): thread pools cost more than they save there, and on a 2-core machine they
    fight onnxruntime and mediapipe for the cores (measured: input building 40 ms with one
    thread, 308 ms with two, under load)."""
    if n is None:
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _load_garment(image: object) -> np.ndarray:
    """A path or an (H, W, 3|4) uint8 RGB(A) array -> (H, W, 3|4) uint8 RGB(A)."""
    if isinstance(image, (str, Path)):
        if not Path(image).is_file():
            raise InputError("image", "a path to an existing image file", str(image))
        raw = cv2.imread(str(image), cv2.IMREAD_UNCHANGED)
        if raw is None or raw.dtype != np.uint8 or raw.ndim != 3 or raw.shape[2] not in (3, 4):
            raise InputError("image", "an 8-bit RGB or RGBA image file OpenCV can read",
                             str(image))  # fmt: skip
        code = cv2.COLOR_BGRA2RGBA if raw.shape[2] == 4 else cv2.COLOR_BGR2RGB
        return cv2.cvtColor(raw, code)
    if (
        not isinstance(image, np.ndarray)
        or image.dtype != np.uint8
        or image.ndim != 3
        or image.shape[2] not in (3, 4)
        or min(image.shape[:2]) < 8
    ):
        raise InputError("image", "a path or an (H, W, 3|4) uint8 RGB(A) array, H, W >= 8", image)
    return image


class TryOnSession:
    """Video virtual try-on over frames or a stream.

    Example::

        session = TryOnSession("demo", backend="auto", window=4, mode="latency")
        session.set_garment("shirt.png")        # HxWx3/4 uint8 RGB(A) or a path
        result = session.process(frame)         # frame: HxWx3 uint8 RGB, any size
        result.image                            # HxWx3 uint8, same size as frame

    Args:
        model: ``"demo"`` (the bundled generator) or a path to a weights file.
        backend: ``"auto"``, ``"onnxruntime"`` or ``"torch"`` (``"tensorrt"`` runs exported
            engines through :mod:`engine.backends`; the streaming window here uses the first
            two). ``"auto"`` follows :func:`engine.backends.selection.choose_backend`.
        precision: ``"auto"`` or ``"fp32"`` (the window backends compute in fp32; ``"fp16"``
            is refused with a clear error rather than silently ignored).
        window: frames T the generator sees at once (>= 1).
        mode: ``"latency"`` or ``"throughput"`` (see the module docstring).
        feather: Gaussian sigma, in crop pixels, softening the pasted edge.
        paste: what of the generated crop replaces the frame: ``"garment"`` (where the warped
            garment lies: the new garment over the person as filmed) or ``"region"`` (the
            whole regenerated try-on region, arms and neck included).
        cache_dir: where exported graphs are cached (default ``~/.cache/tryon-engine``).
        tracker: the person detector (default: mediapipe, :class:`engine.person_tracking.
            PersonTracker`); any object with ``tracker(frame, timestamp_s)`` returning a
            :class:`~engine.person_tracking.PersonDetection`, ``reset()`` and ``close()``.

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
        if precision == "fp16":
            raise InputError("precision", "'auto' or 'fp32' for the streaming window (fp16 runs "
                             "in engines built by `tryon export`)", precision)  # fmt: skip
        if isinstance(window, bool) or not isinstance(window, int) or window < 1:
            raise InputError("window", "an int >= 1 (frames per generator call)", window)
        if mode not in MODES:
            raise InputError("mode", f"one of {', '.join(map(repr, MODES))}", mode)
        if (
            isinstance(feather, bool)
            or not isinstance(feather, (int, float))
            or not (0 <= feather <= 10)
        ):
            raise InputError("feather", "a number of pixels in [0, 10]", feather)
        if paste not in ("garment", "region"):
            raise InputError("paste", "'garment' or 'region'", paste)
        from engine.person_tracking import PersonTracker
        from engine.weights import load_generator
        from engine.window_generator import SlidingWindow

        choice = choose_backend(backend)
        if choice.backend == "tensorrt":  # auto on a TensorRT machine: the window runs in ORT
            choice = choose_backend("onnxruntime")
        generator = load_generator(model)
        self.config = generator.config
        self.mode = mode
        self.feather = float(feather)
        self.paste = paste
        self.window = SlidingWindow(generator, frames=window, choice=choice, cache_dir=cache_dir)
        self.backend = choice.backend
        self.backend_reason = choice.reason
        self.tracker = PersonTracker(smoothing=True) if tracker is None else tracker
        self.crop = PersonCrop(self.config.height, self.config.width)
        self._garment: tuple[torch.Tensor, torch.Tensor] | None = None
        self._stats = StageStats()
        self._calls = 0
        self._lost = True  # no person yet: the first person frame starts the window
        self.stream_end_reason: str | None = None

    # ------------------------------------------------------------------ garment
    def set_garment(self, image: str | Path | np.ndarray) -> None:
        """Use this garment from the next frame on: a path or an (H, W, 3|4) uint8 RGB(A) array.

        The garment mask is the alpha channel, or (no alpha) the pixels that differ from the
        plain background colour around the border. All per-garment work (mask, landmarks,
        resize to at most :data:`GARMENT_MAX_SIDE` pixels) happens here, once.

        Raises:
            InputError: not an image, or no garment shape (collar, shoulders, hem) found in it.
        """
        rgba = _load_garment(image)
        h, w = rgba.shape[:2]
        scale = min(1.0, GARMENT_MAX_SIDE / max(h, w))
        if scale < 1.0:
            size = (max(8, round(w * scale)), max(8, round(h * scale)))
            rgba = cv2.resize(rgba, size, interpolation=cv2.INTER_AREA)
        garment = torch.from_numpy(np.ascontiguousarray(rgba)).permute(2, 0, 1).float() / 255.0
        alpha = garment_mask(garment)
        if float(alpha.sum()) < 16:
            raise InputError("image", "a garment on a transparent or plain background",
                             "an image with no garment shape in it")  # fmt: skip
        garment = torch.cat([garment[:3] * alpha, alpha[None]])  # (4, Hg, Wg) RGBA
        try:
            points = garment_keypoints(garment)
        except InputError as exc:
            raise InputError("image", "a garment whose collar, shoulders and hem can be found",
                             str(exc)) from exc  # fmt: skip
        self._garment = (garment, points)  # one assignment: a stream picks it up atomically
        self._lost = True  # the window restarts, so the new garment shows at once

    # ------------------------------------------------------------------ stages
    def _perceive(self, frame: np.ndarray, index: int, timestamp_s: float):
        """Pose and segmentation of the full frame: ``(prepared, detection)``."""
        started = time.perf_counter()
        detection = self.tracker(frame, timestamp_s)
        prepared = _Prepared(frame, index, timestamp_s, dict(detection.timings), started=started)
        return prepared, detection

    def _prepare(self, frame: np.ndarray, index: int, timestamp_s: float) -> _Prepared:
        return self._build(*self._perceive(frame, index, timestamp_s))

    def _build(self, prepared: _Prepared, detection) -> _Prepared:
        """Crop and generator inputs for a perceived frame (no person: inputs stay None)."""
        frame, timings = prepared.frame, prepared.timings
        t0 = time.perf_counter()
        box = self.crop.place(detection.keypoints) if detection.person_found else None
        garment = self._garment
        if box is None or garment is None:
            self.crop.reset()
            self._lost = True
            return prepared
        rgb = self.crop.crop(frame, box)
        keypoints = torch.from_numpy(box.keypoints_to_crop(detection.keypoints))[None]
        mask = None
        if detection.person_mask is not None:
            person = self.crop.crop(detection.person_mask, box, interpolation=cv2.INTER_LINEAR)
            mask = torch.from_numpy(person)[None, None]
        frames = torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255.0
        t1 = time.perf_counter()
        inputs = frame_inputs(frames, keypoints, garment[0], garment_points=garment[1],
                              person_mask=mask)  # fmt: skip
        t2 = time.perf_counter()
        timings["crop"] = (t1 - t0) * 1e3
        timings["inputs"] = (t2 - t1) * 1e3
        if float(inputs["region"].sum()) == 0:  # keypoints too degenerate for a region
            self._lost = True
            return prepared
        prepared.box = box
        prepared.region = inputs.pop("region")
        prepared.inputs = inputs
        prepared.restart, self._lost = self._lost, False
        return prepared

    def _paste(self, prepared: _Prepared, tryon: torch.Tensor) -> np.ndarray:
        """Composite the (1, 3, h, w) try-on crop into a copy of the frame: where the warped
        garment lies (``paste="garment"``) or in the whole try-on region (``"region"``)."""
        frame = prepared.frame
        image = frame.copy()
        placed = PersonCrop.paste_region(prepared.box, frame.shape[0], frame.shape[1])
        if placed is None:
            return image
        frame_part, box_part, (bh, bw) = placed
        crop_rgb = tryon[0].permute(1, 2, 0).numpy()  # (h, w, 3) float32 view
        up = cv2.resize(crop_rgb, (bw, bh), interpolation=cv2.INTER_LINEAR)  # a fresh array
        np.clip(up, 0.0, 1.0, out=up)  # bilinear overshoot never, but stay in [0, 1] for sure
        mask = prepared.region if self.paste == "region" else prepared.inputs["cloth"][:, 3:4]
        keep = 1.0 - cv2.resize(mask[0, 0].numpy(), (bw, bh), interpolation=cv2.INTER_LINEAR)
        np.clip(keep, 0.0, 1.0, out=keep)
        up_t = torch.from_numpy(up[box_part]).permute(2, 0, 1)[None]  # (1, 3, h', w') view
        keep_t = torch.from_numpy(keep[box_part])[None, None]  # (1, 1, h', w') view
        background = torch.from_numpy(frame[frame_part]).permute(2, 0, 1)[None]
        background = background.to(torch.float32).div_(255.0)
        scale = bw / self.config.width
        # cloth = rendered = the try-on crop: its mask is irrelevant (the keep mask is reused)
        out = composite(up_t, up_t, keep_t, background, keep_t,
                        feather=min(10.0, self.feather * scale), out_dtype=torch.uint8,
                        out_layout="nhwc")  # fmt: skip
        image[frame_part] = out[0].numpy()
        return image

    def _finish(self, prepared: _Prepared, out: dict | None, ms: float) -> TryOnResult:
        timings = prepared.timings
        if out is None:
            image, found = prepared.frame.copy(), False
        else:
            timings["generator"] = ms
            t0 = time.perf_counter()
            image, found = self._paste(prepared, out["tryon"]), True
            timings["composite"] = (time.perf_counter() - t0) * 1e3
        timings["total"] = (time.perf_counter() - prepared.started) * 1e3
        self._stats.add(timings)
        self._stats.frame_out(found)
        box = prepared.box.bounds if found else None
        return TryOnResult(image, found, timings, prepared.index, prepared.timestamp_s, box)

    def _generate(self, prepared: _Prepared) -> tuple[_Prepared, dict | None, float]:
        """The generator's step for one prepared frame: ``(prepared, outputs, ms)``; outputs
        are copied out of the window's reused buffers (None without a person)."""
        if prepared.inputs is None:
            return prepared, None, 0.0
        if prepared.restart:
            self.window.reset()
        t0 = time.perf_counter()
        with _torch_threads(None if self.backend == "torch" else 1):
            out = self.window.step(prepared.inputs)
        # (1, 3, h, w) on the host: the next step reuses the buffer, the composite reads numpy
        tryon = out["tryon"].to("cpu", copy=True)
        return prepared, {"tryon": tryon}, (time.perf_counter() - t0) * 1e3

    def _step(self, prepared: _Prepared) -> TryOnResult:
        generated = self._generate(prepared)
        with _torch_threads(1):
            return self._finish(*generated)

    def _generate_blocks(
        self, items: list[_Prepared]
    ) -> list[tuple[_Prepared, dict | None, float]]:
        """Throughput mode: the generator over blocks of T person frames (the last block is
        padded by repeating its last frame); frames without a person get None."""
        people = [p for p in items if p.inputs is not None]
        outputs: dict[int, tuple[dict, float]] = {}
        t = self.window.frames
        for start in range(0, len(people), t):
            chunk = people[start : start + t]
            padded = chunk + [chunk[-1]] * (t - len(chunk))
            batch = {n: torch.cat([p.inputs[n] for p in padded]) for n in INPUT_NAMES}
            t0 = time.perf_counter()
            out = self.window.block(batch)
            ms = (time.perf_counter() - t0) * 1e3 / len(chunk)
            for i, p in enumerate(chunk):
                outputs[id(p)] = ({k: v[i : i + 1].to("cpu", copy=True) for k, v in out.items()},
                                  ms)  # fmt: skip
        return [(p, *outputs.get(id(p), (None, 0.0))) for p in items]

    # ------------------------------------------------------------------ public
    def process(self, frame: np.ndarray, timestamp_s: float | None = None) -> TryOnResult:
        """Try the garment on one frame (causal window over the previous frames).

        Args:
            frame: (H, W, 3) uint8 RGB, any size.
            timestamp_s: the frame's time in seconds (for the keypoint filter); default: now.

        Raises:
            InputError: a bad frame (None, wrong dtype, channels or rank, empty), or no garment.
        """
        check_frame(frame)
        if self._garment is None:
            raise InputError("garment", "set with set_garment() before process()", None)
        stamp = time.monotonic() if timestamp_s is None else float(timestamp_s)
        index = self._calls
        self._calls += 1
        with _torch_threads(1):
            prepared = self._prepare(frame, index, stamp)
        return self._step(prepared)

    def stats(self) -> dict:
        """p50 / p95 per stage (ms), FPS over the outputs, frames, dropped, bad and no-person
        frames (:meth:`engine.stage_stats.StageStats.summary`), plus the backend."""
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
    ) -> Iterator[TryOnResult]:
        """Results for a webcam index, a video file, a directory of images or an iterable of
        frames, in order, from threads: capture -> pose and segmentation -> crop and inputs ->
        generator -> composite into the frame.

        Live sources (webcams) keep only the newest frames when the pipeline falls behind
        (``stats()["dropped_frames"]``); files and iterables drop nothing. A bad frame is
        reported (log warning, ``on_bad_frame(index, error)``, ``stats()["bad_frames"]``) and
        skipped; the stream goes on. A source that fails or ends closes the stream cleanly;
        :attr:`stream_end_reason` says why. Queues hold ``queue_size`` frames per stage.

        Raises:
            InputError: bad arguments or no garment set (before any thread starts).
            SourceError: the source cannot be opened.
        """
        if self._garment is None:
            raise InputError("garment", "set with set_garment() before stream()", None)
        if max_frames is not None and (
            isinstance(max_frames, bool) or not isinstance(max_frames, int) or max_frames < 1
        ):
            raise InputError("max_frames", "None or an int >= 1", max_frames)
        if isinstance(queue_size, bool) or not isinstance(queue_size, int) or queue_size < 1:
            raise InputError("queue_size", "an int >= 1", queue_size)
        frames = open_source(source, fps=fps)
        self.stream_end_reason = None
        self.tracker.reset()
        self.crop.reset()
        self._lost = True
        stop = threading.Event()
        captured: queue.Queue = queue.Queue(maxsize=queue_size)
        perceived_q: queue.Queue = queue.Queue(maxsize=queue_size)
        prepared_q: queue.Queue = queue.Queue(maxsize=queue_size)
        generated_q: queue.Queue = queue.Queue(maxsize=queue_size * max(2, self.window.frames))
        results_q: queue.Queue = queue.Queue(maxsize=queue_size * max(2, self.window.frames))
        reason: list[str] = []

        def put(q: queue.Queue, item: object) -> bool:
            while not stop.is_set():
                try:
                    q.put(item, timeout=0.05)
                    return True
                except queue.Full:
                    continue
            return False

        def capture() -> None:
            try:
                for index, (frame, stamp) in enumerate(frames):
                    if stop.is_set():
                        return
                    if max_frames is not None and index >= max_frames:
                        reason.append(f"max_frames={max_frames} reached")
                        break
                    if frames.live:  # latest frame wins: drop the oldest queued frame
                        while True:
                            try:
                                captured.put_nowait((index, frame, stamp))
                                break
                            except queue.Full:
                                try:
                                    captured.get_nowait()
                                    self._stats.count(dropped=1)
                                except queue.Empty:
                                    pass
                    elif not put(captured, (index, frame, stamp)):
                        return
                else:
                    reason.append(f"{frames.description}: end of source")
            except SourceError as exc:
                reason.append(str(exc))
            except Exception as exc:  # a failing source ends the stream, with its reason
                reason.append(f"{frames.description}: {type(exc).__name__}: {exc}")
            finally:
                put(captured, _END)

        def report(index: int, exc: Exception) -> None:
            self._stats.count(bad=1)
            log.warning("frame %d skipped: %s", index, exc)
            if on_bad_frame is not None:
                on_bad_frame(index, exc)

        def stage(source: queue.Queue, sink: queue.Queue, work: Callable, index_of: Callable,
                  single_thread: bool) -> None:  # fmt: skip
            """One pipeline stage: ``work`` on every item of ``source`` into ``sink``; an item
            whose work fails is reported and skipped; the end marker is passed on."""
            if single_thread:
                torch.set_num_threads(1)  # this worker thread only (see _torch_threads)
            while not stop.is_set():
                item = source.get()
                if item is _END:
                    put(sink, _END)
                    return
                try:
                    ready = work(item)
                except Exception as exc:  # one bad frame never ends the stream
                    report(index_of(item), exc)
                    continue
                if not put(sink, ready):
                    return

        def perceive(item: tuple) -> tuple:  # mediapipe (native code): overlaps the rest
            index, frame, stamp = item
            return self._perceive(check_frame(frame), index, stamp)

        def emit_blocks(pending: list[_Prepared]) -> bool:
            try:
                done = self._generate_blocks(pending)
            except Exception as exc:  # a failed block: its frames are reported, the stream goes on
                for p in pending:
                    report(p.index, exc)
                return True
            return all(put(generated_q, item) for item in done)

        def generate_blocks() -> None:  # throughput mode: blocks of T person frames
            if self.backend != "torch":
                torch.set_num_threads(1)  # this worker thread only (see _torch_threads)
            pending: list[_Prepared] = []
            while not stop.is_set():
                item = prepared_q.get()
                if item is _END:
                    if pending:
                        emit_blocks(pending)
                    put(generated_q, _END)
                    return
                pending.append(item)
                if sum(p.inputs is not None for p in pending) >= self.window.frames:
                    if not emit_blocks(pending):
                        return
                    pending = []

        frame_index = lambda item: item[0].index  # noqa: E731  (items that start with _Prepared)
        if self.mode == "latency":  # the generator alone: the composite overlaps in "paste"
            generate = (stage, (prepared_q, generated_q, self._generate, lambda item: item.index,
                                self.backend != "torch"))  # fmt: skip
        else:
            generate = (generate_blocks, ())
        workers = {
            "capture": (capture, ()),
            "pose": (stage, (captured, perceived_q, perceive, lambda item: item[0], False)),
            "inputs": (stage, (perceived_q, prepared_q, lambda item: self._build(*item),
                               frame_index, True)),
            "generator": generate,
            "paste": (stage, (generated_q, results_q, lambda item: self._finish(*item),
                              frame_index, True)),
        }  # fmt: skip
        threads = [threading.Thread(target=f, args=args, name=f"tryon-{name}", daemon=True)
                   for name, (f, args) in workers.items()]  # fmt: skip
        for thread in threads:
            thread.start()
        try:
            while True:
                item = results_q.get()
                if item is _END:
                    break
                yield item
        finally:
            stop.set()
            for q in (captured, perceived_q, prepared_q, generated_q, results_q):  # unblock
                try:
                    while True:
                        q.get_nowait()
                except queue.Empty:
                    pass
            for q in (captured, perceived_q, prepared_q, generated_q):
                with contextlib.suppress(queue.Full):
                    q.put_nowait(_END)
            for thread in threads:
                thread.join(timeout=5.0)
            frames.close()
            self.stream_end_reason = reason[0] if reason else "stopped by the consumer"

    def close(self) -> None:
        """Release mediapipe's graphs."""
        self.tracker.close()

    def __enter__(self) -> TryOnSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
