"""``StreamRouter``: places streams on Ray stream workers, watches them, and the stream API.

A plain Python object in the driver (thread-safe)::

    router = StreamRouter.start(2, capacity=4, model="demo", num_cpus=1)
    handle = router.open_stream("shirt.png")      # least-loaded live worker, kept there
    result = handle.send(frame)                   # a TryOnResult; or submit() / collect()
    handle.close()
    router.health()                               # workers, alive, streams per worker

Placement: a new stream goes to the live worker with the fewest open streams (ties: the first
started) and stays there. When every live worker is at ``capacity`` the stream is refused with
:class:`~engine.cluster.errors.ClusterBusyError`; nothing is ever queued.

Failure: a call that fails with Ray's actor errors (``RayActorError`` / ``ActorDiedError`` /
``ActorUnavailableError``) or gets no reply within ``timeout_s`` marks that worker dead (a
worker that timed out is also killed, so it cannot serve half its streams). The router never
routes to it again, and ``health()["dead"]`` names it with the reason. Other workers' streams
are unaffected. What happens to the dead worker's streams is chosen per stream, when it is
opened:

- ``open_stream(garment)`` (``reopen=False``, the default): the stream ends. Its pending and
  later calls raise :class:`~engine.cluster.errors.StreamLostError` naming the worker; the
  caller may open a new stream with the same garment.
- ``open_stream(garment, reopen=True)``: the stream is reopened on the least-loaded live worker
  with a free slot, with its garment, and the frames that were in flight are sent again there;
  the same handle goes on (its ``worker`` is the new one, ``moves`` records the move, result
  indices go on counting). Its window and crop smoothing lived on the dead worker, so they
  start over: the first frames after the move are generated without past frames, as at the
  start of a stream. When no live worker has a free slot the stream ends as above
  (``StreamLostError``, saying so).
"""

from __future__ import annotations

import collections
import contextlib
import itertools
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from engine.cluster.errors import ClusterBusyError, StreamLostError
from engine.cluster.worker import StreamWorker, import_ray
from engine.errors import InputError, TryOnError
from engine.inputs.garment_image import GarmentImage, load_garment_image
from engine.perception.frame_check import check_frame
from engine.runtime.stages import TryOnResult

__all__ = ["StreamHandle", "StreamRouter"]


def _lost_errors(ray) -> tuple[type[BaseException], ...]:
    names = ("RayActorError", "ActorDiedError", "ActorUnavailableError")
    return tuple(getattr(ray.exceptions, n) for n in names if hasattr(ray.exceptions, n))


class _Worker:
    def __init__(self, name: str, actor, capacity: int) -> None:
        self.name = name
        self.actor = actor
        self.capacity = capacity
        self.alive = True
        self.reason = ""
        self.streams: set[str] = set()


class StreamRouter:
    """Streams onto workers (see the module docstring).

    Args:
        workers: ``(name, actor handle)`` pairs of started :class:`StreamWorker` actors.
        capacity: streams per worker (the workers refuse more as well).
        timeout_s: the longest wait for any reply of a worker.
    """

    def __init__(
        self, workers: Sequence[tuple[str, object]], *, capacity: int, timeout_s: float = 60.0
    ) -> None:
        if not workers:
            raise InputError("workers", "at least one (name, StreamWorker actor) pair", workers)
        self._ray = import_ray()
        self._lost = _lost_errors(self._ray)
        self.timeout_s = float(timeout_s)
        self._workers = {name: _Worker(name, actor, capacity) for name, actor in workers}
        self._lock = threading.Lock()
        self._ids = itertools.count()
        self._reopened = 0

    @classmethod
    def start(
        cls,
        n_workers: int,
        *,
        capacity: int = 4,
        model: str | Path = "demo",
        window: int = 4,
        num_cpus: float = 1,
        num_gpus: float = 0,
        tracker_factory: Callable[[], object] | None = None,
        timeout_s: float = 60.0,
    ) -> StreamRouter:
        """Start ``n_workers`` workers on the connected Ray cluster (``ray.init`` first; each
        one on CUDA when ``num_gpus`` > 0) and wait until each has loaded its model."""
        if isinstance(n_workers, bool) or not isinstance(n_workers, int) or n_workers < 1:
            raise InputError("n_workers", "an int >= 1", n_workers)
        ray = import_ray()
        device = "cuda" if num_gpus > 0 else "cpu"
        threads = max(1, int(num_cpus)) if num_cpus else 1
        workers = []
        for i in range(n_workers):
            name = f"worker-{i}"
            actor = StreamWorker.options(num_cpus=num_cpus, num_gpus=num_gpus).remote(
                name, str(model), window=window, capacity=capacity, device=device,
                tracker_factory=tracker_factory, threads=threads,
            )  # fmt: skip
            workers.append((name, actor))
        ray.get([a.ping.remote() for _, a in workers], timeout=timeout_s)
        return cls(workers, capacity=capacity, timeout_s=timeout_s)

    # ------------------------------------------------------------------ calls
    def _get(self, worker: _Worker, ref, stream_id: str = "-"):
        """``ray.get`` with the timeout; actor loss -> StreamLostError (worker marked dead);
        a TryOnError raised in the worker is raised as itself."""
        ray = self._ray
        try:
            return ray.get(ref, timeout=self.timeout_s)
        except ray.exceptions.GetTimeoutError:
            self._mark_dead(worker, f"gave no reply within {self.timeout_s:g} s", kill=True)
            raise StreamLostError(worker.name, stream_id, worker.reason) from None
        except self._lost as exc:
            self._mark_dead(worker, f"died ({type(exc).__name__})")
            raise StreamLostError(worker.name, stream_id, worker.reason) from None
        except ray.exceptions.RayTaskError as exc:
            cause = getattr(exc, "cause", None)
            if isinstance(cause, TryOnError):
                raise cause from None
            raise

    def _mark_dead(self, worker: _Worker, reason: str, *, kill: bool = False) -> None:
        with self._lock:
            if not worker.alive:
                return
            worker.alive, worker.reason = False, reason
        if kill:
            with contextlib.suppress(Exception):  # already gone
                self._ray.kill(worker.actor)

    # ------------------------------------------------------------------ streams
    def open_stream(
        self, garment: str | Path | np.ndarray | GarmentImage, *, reopen: bool = False
    ) -> StreamHandle:
        """A new stream with this garment on the least-loaded live worker.

        Args:
            garment: a path, an (H, W, 3|4) uint8 RGB(A) array or a loaded GarmentImage.
            reopen: when the stream's worker is lost, reopen the stream on another live worker
                (True; its window restarts there) or end it (False; see the module docstring).

        Raises:
            InputError: not a garment image, or ``reopen`` is not a bool.
            ClusterBusyError: every live worker is at capacity (or none is alive).
        """
        if not isinstance(reopen, bool):
            raise InputError("reopen", "True or False", reopen)
        if not isinstance(garment, GarmentImage):
            garment = load_garment_image(garment)
        with self._lock:
            stream_id = f"s{next(self._ids)}"
        worker = self._place(stream_id, garment, 0)
        return StreamHandle(self, worker, stream_id, garment, reopen=reopen)

    def _place(self, stream_id: str, garment: GarmentImage, start_index: int) -> _Worker:
        """Open ``stream_id`` on the least-loaded live worker with a free slot; that worker.

        Raises:
            ClusterBusyError: no live worker has a free slot.
        """
        while True:
            with self._lock:
                live = [w for w in self._workers.values() if w.alive]
                free = [w for w in live if len(w.streams) < w.capacity]
                if not free:
                    raise ClusterBusyError(f"every live worker is at capacity ({len(live)} live "
                                           f"of {len(self._workers)}); close a stream or add "
                                           "workers")  # fmt: skip
                worker = min(free, key=lambda w: len(w.streams))
                worker.streams.add(stream_id)  # reserved while the worker opens it
            try:
                call = worker.actor.open.remote(stream_id, garment, start_index)
                self._get(worker, call, stream_id)
            except StreamLostError:
                continue  # that worker is dead now: try the next one
            except BaseException:
                with self._lock:
                    worker.streams.discard(stream_id)
                raise
            return worker

    def _moved(self) -> None:
        with self._lock:
            self._reopened += 1

    def _closed(self, worker: _Worker, stream_id: str) -> None:
        with self._lock:
            worker.streams.discard(stream_id)

    def health(self, *, ping: bool = True) -> dict:
        """``workers``, ``alive``, ``streams`` per live worker (ids), ``dead`` (name ->
        reason), ``free`` (slots left on live workers), ``capacity`` (streams per worker) and
        ``reopened`` (streams moved off a lost worker so far). ``ping``: ask every live
        worker first (a worker that does not answer within ``timeout_s`` is marked dead)."""
        if ping:
            for worker in [w for w in self._workers.values() if w.alive]:
                with contextlib.suppress(StreamLostError):
                    self._get(worker, worker.actor.ping.remote())
        with self._lock:
            live = [w for w in self._workers.values() if w.alive]
            return {
                "workers": len(self._workers),
                "alive": len(live),
                "streams": {w.name: sorted(w.streams) for w in live},
                "dead": {w.name: w.reason for w in self._workers.values() if not w.alive},
                "free": sum(w.capacity - len(w.streams) for w in live),
                "capacity": {w.name: w.capacity for w in self._workers.values()},
                "reopened": self._reopened,
            }

    def shutdown(self) -> None:
        """Kill every worker (their streams end)."""
        for worker in self._workers.values():
            self._mark_dead(worker, "shut down", kill=True)


class StreamHandle:
    """One open stream: :meth:`send` (one frame, its result), or :meth:`submit` then
    :meth:`collect` (results in submission order), :meth:`set_garment` and :meth:`close`.
    Used from one thread at a time.

    Attributes:
        stream_id: the stream's id (kept when it is reopened elsewhere).
        worker: the name of the worker serving it now.
        garment: its garment (what a reopened stream is opened with).
        reopen: whether a lost worker reopens it elsewhere (see the module docstring).
        moves: one ``{"lost": worker, "to": worker, "reason": ..., "next_index": k}`` per
            reopening, oldest first.
    """

    def __init__(
        self,
        router: StreamRouter,
        worker: _Worker,
        stream_id: str,
        garment: GarmentImage,
        *,
        reopen: bool = False,
    ) -> None:
        self._router = router
        self._worker = worker
        self.stream_id = stream_id
        self.worker = worker.name
        self.garment = garment
        self.reopen = reopen
        self.moves: list[dict] = []
        self._seq = 0
        self._pending: collections.deque = collections.deque()  # (ref, frame, timestamp_s)
        self._next_index = 0  # the index the next result gets (where a reopened stream goes on)
        self._ended: tuple[str, str] | None = None  # (worker, reason) once the stream has ended
        self.closed = False

    def _raise_ended(self) -> None:
        worker, reason = self._ended
        raise StreamLostError(worker, self.stream_id, reason)

    def _lost(self) -> None:
        """The worker is dead: reopen the stream elsewhere (``reopen``), resending the frames in
        flight, or end it. Raises StreamLostError when the stream ends."""
        lost = self._worker
        self._router._closed(lost, self.stream_id)
        frames = [(frame, stamp) for _, frame, stamp in self._pending]
        self._pending.clear()
        if not self.reopen:
            self._ended = (lost.name, lost.reason)
            self._raise_ended()
        try:
            worker = self._router._place(self.stream_id, self.garment, self._next_index)
        except ClusterBusyError:
            self._ended = (lost.name, f"{lost.reason}, and no live worker had a free slot to "
                           "reopen the stream on")  # fmt: skip
            self._raise_ended()
        self._router._moved()
        self.moves.append({"lost": lost.name, "to": worker.name, "reason": lost.reason,
                           "next_index": self._next_index})  # fmt: skip
        self._worker, self.worker, self._seq = worker, worker.name, 0
        for frame, stamp in frames:
            self._send(frame, stamp)

    def _check_live(self) -> None:
        if self.closed:
            raise InputError("stream", "an open stream (this one is closed)", self.stream_id)
        if self._ended is not None:
            self._raise_ended()
        if not self._worker.alive:
            self._lost()

    def _send(self, frame: np.ndarray, timestamp_s: float | None) -> None:
        ref = self._worker.actor.send.remote(self.stream_id, self._seq, frame, timestamp_s)
        self._seq += 1
        self._pending.append((ref, frame, timestamp_s))

    def submit(self, frame: np.ndarray, timestamp_s: float | None = None) -> None:
        """Send a frame without waiting; :meth:`collect` returns the results in order.

        Raises:
            InputError: a bad frame, or the stream is closed.
            StreamLostError: the stream has ended (its worker was lost).
        """
        frame = check_frame(frame)
        self._check_live()
        self._send(frame, timestamp_s)

    def collect(self) -> TryOnResult:
        """The oldest submitted frame's result (each wait at most the router's ``timeout_s``).

        Raises:
            StreamLostError: the worker died and the stream has ended (not reopened).
            InputError: nothing was submitted.
        """
        if self.closed:
            raise InputError("stream", "an open stream (this one is closed)", self.stream_id)
        if not self._pending:
            raise InputError("collect", "a submitted frame to collect", None)
        self._check_live()
        while True:
            ref = self._pending[0][0]
            try:
                result = self._router._get(self._worker, ref, self.stream_id)
            except StreamLostError:
                self._lost()  # raises, or the frames in flight are on a live worker now
                continue
            except BaseException:
                self._pending.popleft()
                raise
            self._pending.popleft()
            self._next_index = result.index + 1
            return result

    def send(self, frame: np.ndarray, timestamp_s: float | None = None) -> TryOnResult:
        """One frame's result (frames already submitted are collected first, in order)."""
        self.submit(frame, timestamp_s)
        while len(self._pending) > 1:
            self.collect()
        return self.collect()

    def set_garment(self, garment: str | Path | np.ndarray | GarmentImage) -> None:
        """Use this garment from the next frame on (the window restarts, so it shows at once).

        Raises:
            InputError: not a garment image, or the stream is closed.
            StreamLostError: the stream has ended (its worker was lost).
        """
        if not isinstance(garment, GarmentImage):
            garment = load_garment_image(garment)
        self._check_live()
        self.garment = garment  # what a reopened stream starts with
        try:
            self._router._get(self._worker,
                              self._worker.actor.set_garment.remote(self.stream_id, garment),
                              self.stream_id)  # fmt: skip
        except StreamLostError:
            self._lost()  # reopened with the new garment, or raises

    def close(self) -> None:
        """End the stream and free its slot (pending results are dropped)."""
        if self.closed:
            return
        self.closed = True
        self._pending.clear()
        if self._worker.alive and self._ended is None:
            with contextlib.suppress(StreamLostError):
                self._router._get(self._worker, self._worker.actor.close.remote(self.stream_id))
        self._router._closed(self._worker, self.stream_id)
