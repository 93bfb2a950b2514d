"""The errors of the cluster layer: both are :class:`engine.errors.TryOnError` subclasses."""

from __future__ import annotations

from engine.errors import TryOnError

__all__ = ["ClusterBusyError", "StreamLostError"]


class ClusterBusyError(TryOnError, RuntimeError):
    """Every live worker already serves its maximum number of streams: the stream is refused
    (never queued). Close a stream, or add workers, and open it again."""


class StreamLostError(TryOnError, RuntimeError):
    """The worker serving this stream died or stopped answering: the stream has ended.

    Attributes:
        worker: the name of the lost worker.
        stream_id: the stream that ended.
        reason: what happened.
    """

    def __init__(self, worker: str, stream_id: str, reason: str) -> None:
        self.worker = worker
        self.stream_id = stream_id
        self.reason = reason
        super().__init__(f"stream {stream_id} lost: worker {worker!r} {reason}; open a new "
                         "stream (its garment) to continue on another worker")  # fmt: skip
