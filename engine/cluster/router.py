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
routes to it again; each of its streams ends: its pending and later calls raise
:class:`~engine.cluster.errors.StreamLostError` naming the worker. Streams are not reopened
elsewhere (their window and crop smoothing lived on the dead worker): the caller opens a new
stream with the same garment if it wants to go on. Other workers' streams are unaffected.
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
    def open_stream(self, garment: str | Path | np.ndarray | GarmentImage) -> StreamHandle:
        """A new stream with this garment on the least-loaded live worker.

        Raises:
            InputError: not a garment image.
            ClusterBusyError: every live worker is at capacity (or none is alive).
        """
        if not isinstance(garment, GarmentImage):
            garment = load_garment_image(garment)
        while True:
            with self._lock:
                live = [w for w in self._workers.values() if w.alive]
                free = [w for w in live if len(w.streams) < w.capacity]
                if not free:
                    raise ClusterBusyError(f"every live worker is at capacity ({len(live)} live "
                                           f"of {len(self._workers)}); close a stream or add "
                                           "workers")  # fmt: skip
                worker = min(free, key=lambda w: len(w.streams))
                stream_id = f"s{next(self._ids)}"
                worker.streams.add(stream_id)  # reserved while the worker opens it
            try:
                self._get(worker, worker.actor.open.remote(stream_id, garment), stream_id)
            except StreamLostError:
                continue  # that worker is dead now: try the next one
            except BaseException:
                with self._lock:
                    worker.streams.discard(stream_id)
                raise
            return StreamHandle(self, worker, stream_id)

    def _closed(self, worker: _Worker, stream_id: str) -> None:
        with self._lock:
            worker.streams.discard(stream_id)

    def health(self, *, ping: bool = True) -> dict:
        """``workers``, ``alive``, ``streams`` per live worker (ids), ``dead`` (name ->
        reason) and ``capacity`` (free slots left). ``ping``: ask every live worker first (a
        worker that does not answer is marked dead)."""
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
            }

    def shutdown(self) -> None:
        """Kill every worker (their streams end)."""
        for worker in self._workers.values():
            self._mark_dead(worker, "shut down", kill=True)


class StreamHandle:
    """One open stream: :meth:`send` (one frame, its result), or :meth:`submit` then
    :meth:`collect` (results in submission order), and :meth:`close`."""

    def __init__(self, router: StreamRouter, worker: _Worker, stream_id: str) -> None:
        self._router = router
        self._worker = worker
        self.stream_id = stream_id
        self.worker = worker.name
        self._seq = 0
        self._pending: collections.deque = collections.deque()
        self.closed = False

    def _check_live(self) -> None:
        if self.closed:
            raise InputError("stream", "an open stream (this one is closed)", self.stream_id)
        if not self._worker.alive:
            raise StreamLostError(self.worker, self.stream_id, self._worker.reason)

    def submit(self, frame: np.ndarray, timestamp_s: float | None = None) -> None:
        """Send a frame without waiting; :meth:`collect` returns the results in order."""
        self._check_live()
        frame = check_frame(frame)
        ref = self._worker.actor.send.remote(self.stream_id, self._seq, frame, timestamp_s)
        self._seq += 1
        self._pending.append(ref)

    def collect(self) -> TryOnResult:
        """The oldest submitted frame's result (waits at most the router's ``timeout_s``).

        Raises:
            StreamLostError: the worker died; the stream has ended.
            InputError: nothing was submitted.
        """
        if not self._pending:
            raise InputError("collect", "a submitted frame to collect", None)
        if not self._worker.alive:
            self._pending.clear()
            raise StreamLostError(self.worker, self.stream_id, self._worker.reason)
        ref = self._pending.popleft()
        try:
            return self._router._get(self._worker, ref, self.stream_id)
        except StreamLostError:
            self._pending.clear()
            self._router._closed(self._worker, self.stream_id)
            raise

    def send(self, frame: np.ndarray, timestamp_s: float | None = None) -> TryOnResult:
        """One frame's result (frames already submitted are collected first, in order)."""
        self.submit(frame, timestamp_s)
        while len(self._pending) > 1:
            self.collect()
        return self.collect()

    def close(self) -> None:
        """End the stream and free its slot (pending results are dropped)."""
        if self.closed:
            return
        self.closed = True
        self._pending.clear()
        if self._worker.alive:
            with contextlib.suppress(StreamLostError):
                self._router._get(self._worker, self._worker.actor.close.remote(self.stream_id))
        self._router._closed(self._worker, self.stream_id)
