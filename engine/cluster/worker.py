"""``StreamWorker``: a Ray actor that owns one device and serves up to ``capacity`` streams.

Each stream keeps its own state, as a :class:`~engine.runtime.session.TryOnSession` would: its
person detector, :class:`~engine.runtime.stages.BuildInputs` (its garment, its crop smoothing,
its "person lost" flag), its :class:`~engine.cluster.batched.StreamWindow` (ring buffers) and
its :class:`~engine.runtime.stages.Finish` (paste, statistics). The generator is shared: per
tick, the generator steps of every stream with a frame ready run as ONE batched call
(:class:`~engine.cluster.batched.BatchedGenerator`), then each stream's paste runs on its own
output.

- :meth:`StreamWorkerCore.step_streams` (batched) and :meth:`StreamWorkerCore.process`
  (per stream, batch of one) are the two explicit paths, usable without Ray.
- :meth:`AsyncStreamWorker.send` is what the router calls: every call waits for the next tick;
  a tick takes, for each stream, its next frame in sequence order (so results stay in order per
  stream whatever order the calls arrive in) and runs them through ``step_streams``.

``StreamWorker`` (``StreamWorker.options(num_cpus=1, num_gpus=0).remote(...)``) is
:class:`AsyncStreamWorker` as a Ray actor class, made on first use (Ray is optional).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
import torch

from engine.cluster.batched import BatchedGenerator, StreamWindow
from engine.cluster.errors import ClusterBusyError
from engine.errors import BackendUnavailableError, InputError
from engine.inputs.garment_image import GarmentImage
from engine.inputs.person_crop import PersonCrop
from engine.model.weights import load_generator
from engine.perception.frame_check import check_frame
from engine.perception.person_detector import PersonDetector
from engine.runtime.paste import PASTE_MODES, Paste
from engine.runtime.stage_stats import StageStats
from engine.runtime.stages import BuildInputs, Finish, FrameWork, Perceive, TryOnResult

__all__ = ["AsyncStreamWorker", "StreamWorkerCore", "StreamWorker"]


class _Stream:
    """One stream's own stage objects."""

    def __init__(
        self, garment: GarmentImage, tracker, window: StreamWindow, paste: Paste, size: tuple
    ) -> None:
        self.garment = garment
        self.tracker = tracker
        self.perceive = Perceive(tracker)
        self.build = BuildInputs(PersonCrop(*size), lambda: self.garment)
        self.window = window
        self.stats = StageStats()
        self.finish = Finish(paste, self.stats)
        self.frames = 0


class StreamWorkerCore:
    """The streams of one device and their batched generator (no Ray here).

    Args:
        name: the worker's name (in health reports and errors).
        model: ``"demo"`` or a weights file path.
        window: T, frames per window.
        capacity: most streams served at once (more are refused with ClusterBusyError).
        device: ``"cpu"`` or ``"cuda"``.
        tracker_factory: makes one person detector per stream (default: mediapipe
            :class:`~engine.perception.person_detector.PersonDetector`).
        paste, feather: as for :class:`~engine.runtime.session.TryOnSession`.
        threads: torch intra-op threads of this process (None: leave torch's setting).
    """

    def __init__(
        self,
        name: str,
        model: str | Path = "demo",
        *,
        window: int = 4,
        capacity: int = 4,
        device: str = "cpu",
        tracker_factory: Callable[[], object] | None = None,
        paste: str = "garment",
        feather: float = 1.0,
        threads: int | None = 1,
    ) -> None:
        if isinstance(capacity, bool) or not isinstance(capacity, int) or capacity < 1:
            raise InputError("capacity", "an int >= 1 (streams per worker)", capacity)
        if paste not in PASTE_MODES:
            raise InputError("paste", "'garment' or 'region'", paste)
        if threads is not None:
            torch.set_num_threads(threads)
        self.name = name
        self.capacity = capacity
        self.device = device
        self.generator = BatchedGenerator(load_generator(model), window, device)
        cfg = self.generator.model.config
        self._model_size = (cfg.height, cfg.width)
        self._tracker_factory = tracker_factory or (lambda: PersonDetector(smoothing=True))
        self._paste = (paste, float(feather))
        self.streams: dict[str, _Stream] = {}
        self.batches: list[int] = []  # batch size of every generator call (newest last)

    # ------------------------------------------------------------------ streams
    def open(self, stream_id: str, garment: GarmentImage, start_index: int = 0) -> str:
        """Start serving ``stream_id`` with this garment; returns the worker's name.

        ``start_index``: the index of the stream's first frame here (a stream reopened after
        its worker was lost goes on counting where it stopped; its window starts over).

        Raises:
            ClusterBusyError: ``capacity`` streams are already open here.
            InputError: the id is already open, ``garment`` is not a GarmentImage, or a bad
                ``start_index``.
        """
        if stream_id in self.streams:
            raise InputError("stream_id", "an id not already open on this worker", stream_id)
        if not isinstance(garment, GarmentImage):
            raise InputError("garment", "a GarmentImage (engine.inputs.garment_image)", garment)
        if isinstance(start_index, bool) or not isinstance(start_index, int) or start_index < 0:
            raise InputError("start_index", "an int >= 0", start_index)
        if len(self.streams) >= self.capacity:
            raise ClusterBusyError(f"worker {self.name!r} already serves {self.capacity} streams")
        window = self.generator.new_window()
        tracker = self._tracker_factory()
        stream = _Stream(garment, tracker, window, Paste(*self._paste), self._model_size)
        stream.frames = start_index
        self.streams[stream_id] = stream
        return self.name

    def set_garment(self, stream_id: str, garment: GarmentImage) -> None:
        """Use this garment for the stream's next frames; its window restarts there (as
        :meth:`engine.runtime.session.TryOnSession.set_garment` does), so it shows at once.

        Raises:
            InputError: not a stream open here, or ``garment`` is not a GarmentImage.
        """
        stream = self._stream(stream_id)
        if not isinstance(garment, GarmentImage):
            raise InputError("garment", "a GarmentImage (engine.inputs.garment_image)", garment)
        stream.garment = garment
        stream.build.lost = True

    def close(self, stream_id: str) -> bool:
        """Stop serving a stream (False if it was not open)."""
        stream = self.streams.pop(stream_id, None)
        if stream is None:
            return False
        stream.tracker.close()
        return True

    def health(self) -> dict:
        """Name, device, capacity, open streams, frames per stream, recent batch sizes."""
        return {
            "name": self.name,
            "device": self.device,
            "capacity": self.capacity,
            "streams": sorted(self.streams),
            "frames": {k: s.frames for k, s in self.streams.items()},
            "batches": self.batches[-32:],
        }

    # ------------------------------------------------------------------ frames
    def _stream(self, stream_id: str) -> _Stream:
        if stream_id not in self.streams:
            raise InputError("stream_id", f"a stream open on worker {self.name!r}", stream_id)
        return self.streams[stream_id]

    def process(
        self, stream_id: str, frame: np.ndarray, timestamp_s: float | None = None
    ) -> TryOnResult:
        """The per-stream path: one frame of one stream, the generator at batch one."""
        return self.step_streams({stream_id: (frame, timestamp_s)})[stream_id]

    def step_streams(
        self, frames: Mapping[str, tuple[np.ndarray, float | None]]
    ) -> dict[str, TryOnResult]:
        """One frame for each of several streams: perception and inputs per stream, ONE
        generator call for all of them that have a person, the paste per stream.

        Raises:
            InputError: an unknown stream or a bad frame (nothing of the batch has run).
        """
        return self._step(dict(frames), strict=True)  # type: ignore[return-value]

    def _step(self, frames: Mapping[str, tuple], *, strict: bool) -> dict[str, object]:
        """Results per stream; with ``strict=False`` a stream's error is its result."""
        results: dict[str, object] = {}
        works: dict[str, FrameWork] = {}
        checked = {}
        for sid, (frame, stamp) in frames.items():
            try:
                stream = self._stream(sid)
                checked[sid] = (stream, check_frame(frame),
                                time.monotonic() if stamp is None else float(stamp))  # fmt: skip
            except Exception as exc:
                if strict:
                    raise
                results[sid] = exc
        for sid, (stream, frame, stamp) in checked.items():
            try:
                work = stream.build(*stream.perceive(frame, stream.frames, stamp))
                stream.frames += 1
                works[sid] = work
            except Exception as exc:
                if strict:
                    raise
                results[sid] = exc
        people = [sid for sid, w in works.items() if w.inputs is not None]
        outputs: dict[str, dict] = {}
        ms = 0.0
        if people:
            for sid in people:
                if works[sid].restart:
                    self.streams[sid].window.reset()
            t0 = time.perf_counter()
            batch = self.generator.step([self.streams[s].window for s in people],
                                        [works[s].inputs for s in people])  # fmt: skip
            ms = (time.perf_counter() - t0) * 1e3 / len(people)
            outputs = dict(zip(people, batch, strict=True))
            self.batches.append(len(people))
        for sid, work in works.items():
            try:
                results[sid] = self.streams[sid].finish(work, outputs.get(sid), ms)
            except Exception as exc:
                if strict:
                    raise
                results[sid] = exc
        return results


class AsyncStreamWorker(StreamWorkerCore):
    """:class:`StreamWorkerCore` with :meth:`send`, the ticked cross-stream batching that the
    router uses (a Ray async actor: one event loop, so the streams never race)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._pending: dict[str, dict[int, tuple]] = {}
        self._next: dict[str, int] = {}
        self._ticking = False

    def ping(self) -> str:
        return self.name

    def open(self, stream_id: str, garment: GarmentImage, start_index: int = 0) -> str:
        name = super().open(stream_id, garment, start_index)
        self._pending[stream_id] = {}
        self._next[stream_id] = 0
        return name

    def close(self, stream_id: str) -> bool:
        pending = self._pending.pop(stream_id, {})
        self._next.pop(stream_id, None)
        for _, _, future in pending.values():
            if not future.done():
                future.set_exception(InputError("stream_id", "an open stream (closed)", stream_id))
        return super().close(stream_id)

    async def send(
        self, stream_id: str, seq: int, frame: np.ndarray, timestamp_s: float | None
    ) -> TryOnResult:
        """Frame number ``seq`` (0, 1, ...) of a stream; waits for its tick and returns its
        result. Frames of one stream run in ``seq`` order."""
        if stream_id not in self._pending:
            raise InputError("stream_id", f"a stream open on worker {self.name!r}", stream_id)
        if seq in self._pending[stream_id] or seq < self._next[stream_id]:
            raise InputError("seq", "a frame number not already sent", seq)
        future = asyncio.get_running_loop().create_future()
        self._pending[stream_id][seq] = (frame, timestamp_s, future)
        if not self._ticking:
            self._ticking = True
            asyncio.ensure_future(self._ticks())
        return await future

    async def _ticks(self) -> None:
        try:
            while True:
                await asyncio.sleep(0)  # let the calls that have arrived join this tick
                ready = {}
                for sid, pending in self._pending.items():
                    if self._next[sid] in pending:
                        ready[sid] = pending.pop(self._next[sid])
                        self._next[sid] += 1
                if not ready:
                    return
                try:
                    results = self._step({s: r[:2] for s, r in ready.items()}, strict=False)
                except Exception as exc:  # the batched call itself failed: every frame says so
                    results = {sid: exc for sid in ready}
                for sid, (_, _, future) in ready.items():
                    if future.done():
                        continue
                    result = results[sid]
                    if isinstance(result, Exception):
                        future.set_exception(result)
                    else:
                        future.set_result(result)
        finally:
            self._ticking = False


_ACTOR = None


def import_ray():
    """The ``ray`` module, or :class:`BackendUnavailableError` saying how to get it."""
    try:
        import ray
    except ImportError as exc:
        raise BackendUnavailableError(
            "ray",
            "not installed: pip install 'tryon-engine[cluster]' (from a source checkout: "
            'pip install -e ".[cluster]")',
        ) from exc
    return ray


def _actor_class():
    global _ACTOR
    if _ACTOR is None:  # no restarts: a dead worker's streams end (StreamLostError)
        _ACTOR = import_ray().remote(max_restarts=0, max_task_retries=0)(AsyncStreamWorker)
    return _ACTOR


class StreamWorker:
    """:class:`AsyncStreamWorker` as a Ray actor:
    ``StreamWorker.options(num_cpus=1, num_gpus=0).remote(name, model, ...)`` (or
    ``StreamWorker.remote(...)``) returns an actor handle. Ray is imported on first use.

    Raises:
        BackendUnavailableError: ray is not installed.
    """

    @staticmethod
    def options(**options):
        return _actor_class().options(**options)

    @staticmethod
    def remote(*args, **kwargs):
        return _actor_class().remote(*args, **kwargs)
