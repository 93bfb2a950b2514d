"""The per-frame stages a session chains, each usable (and tested) without a session.

A frame's path, in order (``mode="latency"``)::

    Perceive      pose + person mask of the full frame (the detector)      -> (FrameWork, detection)
    BuildInputs   crop box, crop, generator inputs at model size            -> FrameWork
    Generate      the generator's step over the window (or blocks of T) -> (work, out, ms)
    Paste         rendered person + garment texture, sharp, into the frame (runtime.paste)
    Finish        timings, statistics, the :class:`TryOnResult`

Each stage is a small object holding only its own state (the crop smoothing, the window, the
"person lost" flag); the session owns one of each and :mod:`engine.runtime.pipeline` runs them in
threads for a stream.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Literal

import cv2
import numpy as np
import torch

from engine.backends.streaming_runner import StreamingRunner
from engine.errors import InputError
from engine.inputs.body_outline import body_outline
from engine.inputs.frame_inputs import frame_inputs
from engine.inputs.garment_image import GarmentImage
from engine.inputs.keypoint_mirror import mirror_keypoints, to_device
from engine.inputs.outline_smoother import OutlineSmoother
from engine.inputs.person_crop import CropBox, PersonCrop
from engine.inputs.sleeve_follow import SleeveFollow
from engine.model.mpdt_generator import INPUT_NAMES
from engine.runtime.frame_transfer import FrameTransfer
from engine.runtime.paste import Paste
from engine.runtime.stage_stats import StageStats

CROP_IMPLS = ("auto", "opencv", "torch")
"""Where :class:`BuildInputs` crops: OpenCV on the host, or torch on the session's device."""
PASTED = ("rendered", "cloth_mask")
"""The generator outputs the paste reads (the garment itself is re-sampled at full size)."""

__all__ = [
    "BuildInputs",
    "Finish",
    "FrameWork",
    "Generate",
    "GenerateBlocks",
    "Perceive",
    "TryOnResult",
    "torch_threads",
]


@dataclass
class TryOnResult:
    """One processed frame.

    Attributes:
        image: (H, W, 3) uint8 RGB, the frame's size, the try-on composited in (a new array).
        person_found: False when no usable person was found (``image`` is then the frame).
        timings: milliseconds per stage (see :mod:`engine.runtime.session`) and ``total`` (from
            the start of perception to the result; in a stream, waits between stages included).
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
class FrameWork:
    """A frame on its way through the stages: what each stage added so far."""

    frame: np.ndarray  # (H, W, 3) uint8 RGB
    index: int
    timestamp_s: float
    timings: dict[str, float]
    started: float = 0.0  # perf_counter() when perception started
    box: CropBox | None = None
    inputs: dict[str, torch.Tensor] | None = None  # (1, C, h, w) each, model size
    region: torch.Tensor | None = None  # (1, 1, h, w), 1 = regenerated
    extras: dict[str, torch.Tensor] = field(default_factory=dict)  # other frame_inputs outputs
    garment: GarmentImage | None = None  # the garment this frame was built with
    restart: bool = False  # the person was lost before this frame: the window starts over
    # (H, W, 3) uint8 on the session's device: the frame as uploaded once by BuildInputs (its
    # torch crop read it); the paste writes the result into it. None: the paste uploads.
    device_frame: torch.Tensor | None = None


@contextlib.contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Run the block with ``n`` torch intra-op threads in *this* thread (OpenMP's setting is per
    thread), then restore; ``None`` leaves it alone. The session's tensors are small (model
    size): thread pools cost more than they save there and fight onnxruntime and mediapipe for
    the cores (``bench/test_session.py`` measures the stages)."""
    if n is None:
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


class Perceive:
    """Pose and person mask of a full frame: ``(work, detection)``.

    Args:
        detector: ``detector(frame, timestamp_s)`` returning a
            :class:`~engine.perception.person_detector.PersonDetection`.
    """

    def __init__(self, detector: Callable) -> None:
        self.detector = detector

    def __call__(self, frame: np.ndarray, index: int, timestamp_s: float):
        started = time.perf_counter()
        detection = self.detector(frame, timestamp_s)
        work = FrameWork(frame, index, timestamp_s, dict(detection.timings), started=started)
        return work, detection


class BuildInputs:
    """Crop box, crop and generator inputs for a perceived frame (no person: inputs stay None).

    Keeps the "person lost" flag: the first usable frame after a loss (or after
    :meth:`restart`) is marked ``restart``, so the generator's window starts over there.

    The sleeves glide between following the arms and resting with the torso
    (:class:`~engine.inputs.sleeve_follow.SleeveFollow`) and the body outline the garment is
    fitted to is smoothed in the body's frame (:class:`~engine.inputs.outline_smoother.
    OutlineSmoother`), both reset with the crop. The crop box and
    the person mask are smoothed over the stream by ``crop``, along the image
    motion the detector reports (``detection.motion``, previous -> this frame; ``None`` or absent:
    no motion): the box moves with the person instead of lagging it, and the mask's edge flicker
    (which would move the garment's measured outline) averages out.

    Where it runs (``device``, ``crop_impl``):

    - ``"opencv"`` (the default on the CPU): the frame and the mask are cropped on the host with
      OpenCV (:meth:`PersonCrop.crop`, :meth:`PersonCrop.crop_mask`), the inputs are built on
      CPU tensors.
    - ``"torch"`` (the default on any other device): the frame is uploaded once
      (:class:`~engine.runtime.frame_transfer.FrameTransfer`, pinned staging), cropped and
      resized there (:meth:`PersonCrop.crop_tensor`) and the inputs are built there; the
      uploaded frame is kept on the work (``FrameWork.device_frame``) for the paste to write
      into, so it is not uploaded twice. The detector's person mask is a host array: it is cut
      to the model size on the host (:meth:`PersonCrop.cut_mask`, OpenCV: the full-size mask
      would be as many bytes as the frame, four times over in float32) and that small crop is
      uploaded, then smoothed over the stream on the device (:meth:`PersonCrop.smooth_mask`).
      The keypoints (18 x 3 floats) are uploaded too, and their host copy registered
      (:func:`engine.inputs.keypoint_mirror.mirror_keypoints`) so that the inputs read keypoint
      values from the host instead of from the device. The same code runs on CPU tensors
      with ``device="cpu", crop_impl="torch"`` (the uploads are then host copies).

    Args:
        crop: the crop placement and its smoothing (:class:`~engine.inputs.person_crop.PersonCrop`).
        garment: returns the current garment (None before one is set); read once per frame, so
            a garment swapped mid-stream takes effect atomically.
        device: where the crop and the inputs are built: the session's (the runner's) device.
        crop_impl: ``"auto"`` (``"opencv"`` on the CPU, ``"torch"`` elsewhere), ``"opencv"``
            (CPU only) or ``"torch"``.

    Raises:
        InputError: a bad ``device`` or ``crop_impl``.
    """

    def __init__(
        self,
        crop: PersonCrop,
        garment: Callable[[], GarmentImage | None],
        *,
        device: str | torch.device = "cpu",
        crop_impl: Literal["auto", "opencv", "torch"] = "auto",
    ) -> None:
        try:
            device = torch.device(device)
        except (TypeError, RuntimeError):
            raise InputError("device", "a torch device, e.g. 'cpu' or 'cuda'", device) from None
        if crop_impl not in CROP_IMPLS:
            raise InputError("crop_impl", f"one of {CROP_IMPLS}", crop_impl)
        if crop_impl == "auto":
            crop_impl = "opencv" if device.type == "cpu" else "torch"
        if crop_impl == "opencv" and device.type != "cpu":
            raise InputError("crop_impl", f"'auto' or 'torch' on {device} (OpenCV crops on the "
                             "host)", crop_impl)  # fmt: skip
        self.device = device
        self.crop_impl = crop_impl
        self.transfer = FrameTransfer(device)  # the frame's one upload (and the mask crop's)
        self.crop = crop
        self.garment = garment
        self.sleeves = SleeveFollow()
        self.outlines = OutlineSmoother()
        self.lost = True

    def restart(self) -> None:
        """Forget the crop's, the sleeves' and the outline's smoothing; the next person frame
        restarts the window."""
        self.crop.reset()
        self.sleeves.reset()
        self.outlines.reset()
        self.lost = True

    def __call__(self, work: FrameWork, detection) -> FrameWork:
        frame, timings = work.frame, work.timings
        t0 = time.perf_counter()
        motion = getattr(detection, "motion", None)  # image motion, when the detector has it
        box = self.crop.place(detection.keypoints, motion) if detection.person_found else None
        garment = self.garment()
        if box is None or garment is None:
            self.restart()
            return work
        host_keypoints = torch.from_numpy(box.keypoints_to_crop(detection.keypoints))[None]
        device_frame = None
        if self.crop_impl == "torch":
            frames, keypoints, mask, device_frame = self._crop_on_device(
                frame, box, host_keypoints, detection.person_mask, motion
            )
        else:
            rgb = self.crop.crop(frame, box)
            keypoints = host_keypoints
            mask = None
            if detection.person_mask is not None:
                person = self.crop.crop_mask(
                    detection.person_mask, box, motion, interpolation=cv2.INTER_LINEAR
                )  # smoothed
                mask = torch.from_numpy(person)[None, None]
            frames = torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255.0
        t1 = time.perf_counter()
        h, w = frames.shape[2:]
        sleeves = [self.sleeves(host_keypoints[0], h)]  # host values
        outlines = None
        if mask is not None:  # the outline fit: measured, then smoothed over the stream
            outline = body_outline(mask[0, 0], keypoints[0], h, w)
            outlines = [self.outlines(outline, host_keypoints[0], h, work.timestamp_s)]
        inputs = frame_inputs(frames, keypoints, garment.rgba, garment_points=garment.points,
                              person_mask=mask, sleeve_follow=sleeves,
                              outlines=outlines)  # fmt: skip
        t2 = time.perf_counter()
        timings["crop"] = (t1 - t0) * 1e3
        timings["inputs"] = (t2 - t1) * 1e3
        if float(inputs["region"].sum()) == 0:  # keypoints too degenerate for a region
            self.lost = True
            return work
        work.box = box
        work.region = inputs.pop("region")
        work.inputs = {name: inputs.pop(name) for name in INPUT_NAMES}  # the generator's
        work.extras = inputs  # paste mask, shading, garment grid: kept for the paste
        work.garment = garment
        work.device_frame = device_frame
        work.restart, self.lost = self.lost, False
        return work

    def _crop_on_device(
        self,
        frame: np.ndarray,
        box: CropBox,
        host_keypoints: torch.Tensor,
        person_mask: np.ndarray | None,
        motion: np.ndarray | None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, torch.Tensor]:
        """The torch path: ``(frames (1, 3, h, w) float32 in [0, 1], keypoints (1, 18, 3),
        person mask (1, 1, h, w) float32 or None, the uploaded (H, W, 3) uint8 frame)``, all on
        :attr:`device`."""
        device_frame = self.transfer.upload(frame)  # the frame's one upload
        frames = (self.crop.crop_tensor(device_frame, box) * (1.0 / 255.0))[None]
        keypoints = to_device(host_keypoints, self.device)  # (1, 18, 3)
        if keypoints is host_keypoints:  # on the CPU: a tensor of its own, as on a device
            keypoints = host_keypoints.clone()
        mirror_keypoints(keypoints, host_keypoints)
        mask = None
        if person_mask is not None:
            cut = self.crop.cut_mask(person_mask, box, interpolation=cv2.INTER_LINEAR)
            mask = self.crop.smooth_mask(self.transfer.upload(cut), box, motion)[None, None]
        return frames, keypoints, mask, device_frame


class Generate:
    """The generator over a stream: :meth:`step` (latency) or :meth:`blocks` (throughput).

    Outputs are copied out of the window's reused buffers; they stay on its device, where the
    paste runs.

    Args:
        window: the generator serving the stream.
        threads: torch intra-op threads while it runs (None: leave torch's setting).
    """

    def __init__(self, window: StreamingRunner, *, threads: int | None) -> None:
        self.window = window
        self.threads = threads

    def step(self, work: FrameWork) -> tuple[FrameWork, dict | None, float]:
        """``(work, {"rendered": (1, 3, h, w), "cloth_mask": (1, 1, h, w)}, ms)``; outputs
        None without a person."""
        if work.inputs is None:
            return work, None, 0.0
        if work.restart:
            self.window.reset()
        t0 = time.perf_counter()
        with torch_threads(self.threads):
            out = self.window.step(work.inputs)
        kept = {k: out[k].clone() for k in PASTED}  # on the device; the next step reuses out
        return work, kept, (time.perf_counter() - t0) * 1e3

    def blocks(self, items: list[FrameWork]) -> list[tuple[FrameWork, dict | None, float]]:
        """Blocks of T person frames through the whole generator (the last block padded by
        repeating its last frame); frames without a person get None; ms is per frame."""
        people = [p for p in items if p.inputs is not None]
        outputs: dict[int, tuple[dict, float]] = {}
        t = self.window.frames
        for start in range(0, len(people), t):
            chunk = people[start : start + t]
            padded = chunk + [chunk[-1]] * (t - len(chunk))
            batch = {n: torch.cat([p.inputs[n] for p in padded]) for n in INPUT_NAMES}
            t0 = time.perf_counter()
            with torch_threads(self.threads):
                out = self.window.block(batch)
            ms = (time.perf_counter() - t0) * 1e3 / len(chunk)
            for i, p in enumerate(chunk):
                outputs[id(p)] = ({k: out[k][i : i + 1].clone() for k in PASTED}, ms)
        return [(p, *outputs.get(id(p), (None, 0.0))) for p in items]


class Finish:
    """Paste, timings and statistics: the last stage, giving the :class:`TryOnResult`."""

    def __init__(self, paste: Paste, stats: StageStats) -> None:
        self.paste = paste
        self.stats = stats

    def __call__(self, work: FrameWork, out: dict | None, ms: float) -> TryOnResult:
        timings = work.timings
        if out is None:
            image, found = work.frame.copy(), False
        else:
            timings["generator"] = ms
            t0 = time.perf_counter()
            maps = {**work.inputs, **work.extras, "region": work.region}
            image = self.paste(work.frame, work.box, out, maps, work.garment.rgba,
                               device_frame=work.device_frame)  # fmt: skip
            found = True
            timings["composite"] = (time.perf_counter() - t0) * 1e3
        timings["total"] = (time.perf_counter() - work.started) * 1e3
        self.stats.add(timings)
        self.stats.frame_out(found)
        box = work.box.bounds if found else None
        return TryOnResult(image, found, timings, work.index, work.timestamp_s, box)


class GenerateBlocks:
    """The throughput-mode generator stage for a pipeline: holds frames until T of them have a
    person, then runs :meth:`Generate.blocks` on them; a failed block reports each of its
    frames (``report(index, error)``) and the stream goes on."""

    def __init__(self, generate: Generate, report: Callable[[int, Exception], None]) -> None:
        self.generate = generate
        self.report = report
        self.pending: list[FrameWork] = []

    def work(self, item: FrameWork) -> list:
        self.pending.append(item)
        if sum(p.inputs is not None for p in self.pending) < self.generate.window.frames:
            return []
        return self.flush()

    def flush(self) -> list:
        pending, self.pending = self.pending, []
        if not pending:
            return []
        try:
            return self.generate.blocks(pending)
        except Exception as exc:  # a failed block: its frames are reported, the stream goes on
            for p in pending:
                self.report(p.index, exc)
            return []
