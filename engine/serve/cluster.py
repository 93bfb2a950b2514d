"""Browser sessions on Ray stream workers: what ``tryon serve --cluster`` runs.

:func:`start_cluster` connects this process to Ray (``ray.init(address=...)``), or starts a
local Ray on this machine bound to the loopback address, and starts the
:class:`~engine.cluster.worker.StreamWorker` actors behind a
:class:`~engine.cluster.router.StreamRouter`. :class:`ClusterSession` is one peer's stream on
them, with the part of :class:`~engine.runtime.session.TryOnSession` the server calls
(``set_garment``, ``process``, ``close``, ``backend``): the peer's garment goes to the worker
when the stream opens, each frame goes to the worker and its try-on comes back.

Ray is optional (the ``cluster`` extra): it is imported inside :func:`start_cluster` only, which
raises :class:`~engine.errors.BackendUnavailableError` naming the install command without it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from engine.cluster.router import StreamHandle, StreamRouter
from engine.cluster.worker import import_ray
from engine.errors import InputError
from engine.runtime.stages import TryOnResult

__all__ = ["ClusterServing", "ClusterSession", "start_cluster"]

WORKER_TIMEOUT_S = 60.0
"""The longest wait for a worker's reply (its start included) before it counts as lost."""


def _positive_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InputError(name, "an int >= 1", value)
    return value


class ClusterServing:
    """The router of a started cluster, and how to stop it (:meth:`shutdown`).

    Attributes:
        router: places the peers' streams on the workers.
        workers: stream workers started.
        streams_per_worker: streams each worker serves at most.
        address: the Ray address connected to (None: the local Ray started here, or the Ray
            this process was already connected to).
    """

    def __init__(self, router: StreamRouter, *, workers: int, streams_per_worker: int,
                 address: str | None, owns_ray: bool) -> None:  # fmt: skip
        self.router = router
        self.workers = workers
        self.streams_per_worker = streams_per_worker
        self.address = address
        self._owns_ray = owns_ray

    @property
    def capacity(self) -> int:
        """Streams the cluster serves at once while every worker lives."""
        return self.workers * self.streams_per_worker

    def shutdown(self) -> None:
        """Stop the workers; disconnect from Ray (a local Ray started here stops with it)."""
        self.router.shutdown()
        if self._owns_ray:
            import_ray().shutdown()


def start_cluster(
    address: str | None = None,
    *,
    workers: int | None = None,
    streams_per_worker: int = 4,
    model: str | Path = "demo",
    window: int = 4,
    tracker_factory: Callable[[], object] | None = None,
    timeout_s: float = WORKER_TIMEOUT_S,
) -> ClusterServing:
    """Connect to Ray and start the stream workers; returns them behind a router.

    Args:
        address: a Ray cluster's address (``ray.init(address=...)``: ``"auto"``,
            ``"ray://head:10001"``, ...); None starts a local Ray on this machine, bound to
            127.0.0.1, with as many CPUs as the machine has (or ``workers``, if more). A
            process already connected to Ray keeps that connection.
        workers: stream workers to start; default one per GPU of the cluster, else one per two
            CPUs (at least one). Each takes a GPU (or an equal share of them) when the cluster
            has GPUs, and one CPU (or an equal share) otherwise.
        streams_per_worker: streams one worker serves at once (its batch).
        model, window: the generator each worker loads and its window T.
        tracker_factory: makes one person detector per stream, in the worker (default:
            mediapipe); it must be importable there.
        timeout_s: the longest wait for a worker's reply before it counts as lost.

    Raises:
        BackendUnavailableError: ray is not installed.
        InputError: a bad argument, or a cluster without CPUs.
    """
    if workers is not None:
        _positive_int("workers", workers)
    _positive_int("streams_per_worker", streams_per_worker)
    if address is not None and (not isinstance(address, str) or not address):
        raise InputError("address", "None (a local Ray) or a Ray address string", address)
    ray = import_ray()
    owns_ray = not ray.is_initialized()
    if owns_ray and address is None:
        ray.init(num_cpus=max(os.cpu_count() or 1, workers or 1), include_dashboard=False,
                 _node_ip_address="127.0.0.1", configure_logging=False)  # fmt: skip
    elif owns_ray:
        ray.init(address=address, configure_logging=False)
    try:
        resources = ray.cluster_resources()
        cpus, gpus = float(resources.get("CPU", 0)), float(resources.get("GPU", 0))
        if workers is None:
            workers = int(gpus) if gpus >= 1 else max(1, int(cpus) // 2)
        if cpus <= 0:
            raise InputError("address", "a Ray cluster with CPUs", f"{resources}")
        num_gpus = min(1.0, gpus / workers) if gpus else 0.0
        num_cpus = min(1.0, cpus / workers)
        router = StreamRouter.start(workers, capacity=streams_per_worker, model=model,
                                    window=window, num_cpus=num_cpus, num_gpus=num_gpus,
                                    tracker_factory=tracker_factory,
                                    timeout_s=timeout_s)  # fmt: skip
    except BaseException:
        if owns_ray:
            ray.shutdown()
        raise
    return ClusterServing(router, workers=workers, streams_per_worker=streams_per_worker,
                          address=address, owns_ray=owns_ray)  # fmt: skip


class ClusterSession:
    """One peer's stream on the cluster (a :class:`~engine.cluster.router.StreamHandle`),
    called like a :class:`~engine.runtime.session.TryOnSession` by the server. Open it with
    :meth:`open`; only the peer's one-thread executor calls it."""

    backend = "cluster"

    def __init__(self, handle: StreamHandle) -> None:
        self.handle = handle

    @classmethod
    def open(cls, router: StreamRouter, garment: np.ndarray, reopen: bool = False):
        """A stream with this garment on the least-loaded live worker.

        Raises:
            ClusterBusyError: every live worker is at capacity (or none is alive).
            InputError: not a garment image.
        """
        return cls(router.open_stream(garment, reopen=reopen))

    @property
    def worker(self) -> str:
        return self.handle.worker

    def set_garment(self, image: str | Path | np.ndarray) -> None:
        self.handle.set_garment(image)

    def process(self, frame: np.ndarray, timestamp_s: float | None = None) -> TryOnResult:
        """The frame's try-on from the worker.

        Raises:
            InputError: a bad frame.
            StreamLostError: the worker was lost and the stream has ended.
        """
        return self.handle.send(frame, timestamp_s)

    def close(self) -> None:
        self.handle.close()
