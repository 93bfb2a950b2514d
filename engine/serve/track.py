"""The per-peer video track: latest frame wins.

:class:`TryOnTrack` reads the peer's camera track as fast as frames arrive and keeps only the
newest one; when the encoder asks for the next output (``recv``), that newest frame goes
through :meth:`TryOnSession.process` in the peer's own worker thread. Frames that arrive while
the session is busy replace the one waiting and are counted in :attr:`TryOnTrack.dropped`, so a
slow generator lowers the output frame rate but never builds a queue: a frame's latency stays
one processing time (plus the network).

A bad frame goes back unchanged (counted in :attr:`TryOnTrack.bad`). Any other engine error
(:class:`~engine.errors.TryOnError`: a cluster worker lost, ...) ends the track: it is kept in
:attr:`TryOnTrack.error`, ``on_end(error)`` is called, and the output track ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from concurrent.futures import Executor

import av
from aiortc import MediaStreamTrack
from aiortc.mediastreams import MediaStreamError

from engine.errors import InputError, TryOnError
from engine.runtime.session import TryOnSession

__all__ = ["TryOnTrack"]


class TryOnTrack(MediaStreamTrack):
    """The try-on of ``source`` (a remote video track), one output per processed frame.

    Args:
        source: the peer's incoming video track.
        session: this peer's session (garment set): a TryOnSession, or anything with its
            ``process(frame, timestamp_s)`` (a :class:`engine.serve.cluster.ClusterSession`);
            only ``executor`` calls it.
        executor: a one-thread executor of this peer (its calls never overlap).
        on_frame: called on the event loop after each output with a dict of timings:
            ``n``, ``server_ms`` (arrival to output), ``process_ms``, ``received``,
            ``dropped``, ``person``.
        on_end: called on the event loop with the error that ended the track.
    """

    kind = "video"

    def __init__(
        self,
        source: MediaStreamTrack,
        session: TryOnSession,
        executor: Executor,
        on_frame: Callable[[dict], None] | None = None,
        on_end: Callable[[TryOnError], None] | None = None,
    ) -> None:
        super().__init__()
        self.session = session
        self.received = 0
        self.dropped = 0
        self.processed = 0
        self.bad = 0
        self.error: TryOnError | None = None
        self._on_end = on_end
        self._source = source
        self._executor = executor
        self._on_frame = on_frame
        self._latest: tuple[av.VideoFrame, float] | None = None
        self._fresh = asyncio.Event()
        self._source_ended = False
        self._reader = asyncio.ensure_future(self._read())

    async def _read(self) -> None:
        try:
            while True:
                frame = await self._source.recv()
                self.received += 1
                if self._latest is not None:  # never processed: the newer one wins
                    self.dropped += 1
                self._latest = (frame, time.monotonic())
                self._fresh.set()
        except MediaStreamError:
            pass
        finally:
            self._source_ended = True
            self._fresh.set()

    def _process(self, frame: av.VideoFrame) -> tuple[av.VideoFrame, bool]:
        rgb = frame.to_ndarray(format="rgb24")
        try:
            result = self.session.process(rgb, timestamp_s=frame.time)
            image, person = result.image, result.person_found
        except InputError:  # a bad frame goes back unchanged (counted)
            self.bad += 1
            image, person = rgb, False
        out = av.VideoFrame.from_ndarray(image, format="rgb24")
        out.pts = frame.pts
        if frame.time_base is not None:
            out.time_base = frame.time_base
        return out, person

    async def recv(self) -> av.VideoFrame:
        while self._latest is None:
            if self._source_ended or self.readyState != "live" or self.error is not None:
                raise MediaStreamError
            self._fresh.clear()
            await self._fresh.wait()
        frame, arrival = self._latest
        self._latest = None
        start = time.monotonic()
        loop = asyncio.get_running_loop()
        try:
            out, person = await loop.run_in_executor(self._executor, self._process, frame)
        except TryOnError as exc:  # the session cannot go on: end this track, say why
            self.error = exc
            if self._on_end is not None:
                self._on_end(exc)
            raise MediaStreamError(str(exc)) from exc
        self.processed += 1
        if self._on_frame is not None:
            now = time.monotonic()
            self._on_frame({"n": self.processed, "server_ms": round((now - arrival) * 1e3, 1),
                            "process_ms": round((now - start) * 1e3, 1),
                            "received": self.received, "dropped": self.dropped,
                            "person": person})  # fmt: skip
        return out

    def stop(self) -> None:
        super().stop()
        self._reader.cancel()
        self._fresh.set()
        with contextlib.suppress(Exception):
            self._source.stop()
