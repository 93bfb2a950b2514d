"""A generic threaded stage pipeline: a producer, then stages, each in its own thread.

::

    producer(feed) -> [queue] -> stage 1 -> [queue] -> ... -> stage n -> [queue] -> consumer

Each :class:`Stage` turns one item into zero or more items (``work(item) -> list``), so a stage
may batch (return nothing until it has enough) and emit the rest from ``flush()`` at the end.
Queues are bounded, so a slow stage back-pressures the ones before it; the producer decides,
per item, whether to wait (``feed.put``: files, nothing dropped) or to drop the oldest queued
item (``feed.put_latest``: live sources, latest frame wins).

Failures: an item whose ``work`` raises is reported (``report(index, error)``) and skipped; the
stream goes on. If ``report`` itself raises, the pipeline stops and :meth:`StagePipeline.run`
re-raises that error in the consumer's thread after every thread has been stopped (a failing
callback ends the stream; it can never hang it). Closing the consumer's iterator stops every
thread within one queue timeout.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import torch

__all__ = ["END", "Feed", "Stage", "StagePipeline"]

END = object()
"""Queue sentinel: nothing follows."""
_POLL_S = 0.05


@dataclass(frozen=True)
class Stage:
    """One step of a pipeline.

    Attributes:
        name: the thread's name (``tryon-<name>``).
        work: one item in -> a list of items out (empty while batching).
        index_of: the frame index of an item, for error reports.
        flush: called once at the end of the input: the items still held (batching stages).
        single_thread: run torch with one intra-op thread in this stage's thread.
        replace: ``replace(waiting, newer) -> item``: when the next stage has not yet taken
            this stage's previous item, that item is dropped (counted by ``on_drop``) and
            ``replace``'s result queued in its place, so the next stage always gets the newest
            (live sources); None: wait for room (nothing is dropped here).
    """

    name: str
    work: Callable[[object], list]
    index_of: Callable[[object], int]
    flush: Callable[[], list] | None = None
    single_thread: bool = False
    replace: Callable[[object, object], object] | None = None


class Feed:
    """The producer's handle on the first queue."""

    def __init__(self, sink: queue.Queue, stop: threading.Event, on_drop: Callable[[], None]):
        self._sink = sink
        self._stop = stop
        self._on_drop = on_drop

    @property
    def stopped(self) -> bool:
        """The consumer went away or the pipeline failed: stop producing."""
        return self._stop.is_set()

    def put(self, item: object) -> bool:
        """Wait for room; False once the pipeline stopped."""
        return _put(self._sink, item, self._stop)

    def put_latest(self, item: object) -> None:
        """Never wait: when the queue is full, drop its oldest item (``on_drop`` counts it)."""
        while not self._stop.is_set():
            try:
                self._sink.put_nowait(item)
                return
            except queue.Full:
                try:
                    self._sink.get_nowait()
                    self._on_drop()
                except queue.Empty:
                    pass


def _put(sink: queue.Queue, item: object, stop: threading.Event) -> bool:
    while not stop.is_set():
        try:
            sink.put(item, timeout=_POLL_S)
            return True
        except queue.Full:
            continue
    return False


def _put_newest(sink: queue.Queue, item: object, replace, on_drop) -> None:
    """Queue ``item`` now: if the sink is full, its waiting item is taken out and
    ``replace(waiting, item)`` goes in instead. Only the calling stage puts into ``sink``, so
    the room made is there for it."""
    while True:
        try:
            sink.put_nowait(item)
            return
        except queue.Full:
            try:
                waiting = sink.get_nowait()
            except queue.Empty:
                continue  # the next stage took it meanwhile
            item = replace(waiting, item)
            on_drop()


def _get(source: queue.Queue, stop: threading.Event) -> object:
    while not stop.is_set():
        try:
            return source.get(timeout=_POLL_S)
        except queue.Empty:
            continue
    return END


class StagePipeline:
    """Runs ``stages`` over what a producer feeds; see the module docstring.

    Args:
        stages: in order; the last one's items are what :meth:`run` yields.
        report: ``report(index, error)`` for an item whose work failed.
        on_drop: called for each item :meth:`Feed.put_latest` dropped.
        queue_sizes: the capacity of the queue *into* each stage, then of the output queue
            (``len(stages) + 1`` ints >= 1).
    """

    def __init__(
        self,
        stages: Sequence[Stage],
        *,
        report: Callable[[int, Exception], None],
        on_drop: Callable[[], None],
        queue_sizes: Sequence[int],
    ) -> None:
        if len(queue_sizes) != len(stages) + 1:
            raise ValueError("queue_sizes: one per stage plus the output queue")
        self.stages = tuple(stages)
        self.report = report
        self.on_drop = on_drop
        self.queue_sizes = tuple(queue_sizes)

    def run(self, producer: Callable[[Feed], None]) -> Iterator[object]:
        """Start the threads, yield the last stage's items in order, stop everything at the end
        (or when the consumer closes the iterator). ``producer(feed)`` runs in its own thread;
        END is queued after it returns or raises (it should catch its own errors)."""
        stop = threading.Event()
        queues = [queue.Queue(maxsize=n) for n in self.queue_sizes]
        failure: list[BaseException] = []

        def produce() -> None:
            try:
                producer(Feed(queues[0], stop, self.on_drop))
            finally:
                _put(queues[0], END, stop)

        def run_stage(stage: Stage, source: queue.Queue, sink: queue.Queue) -> None:
            if stage.single_thread:
                torch.set_num_threads(1)  # this thread only (OpenMP's setting is per thread)
            while not stop.is_set():
                item = _get(source, stop)
                if item is END:
                    for out in stage.flush() if stage.flush is not None else ():
                        if not _put(sink, out, stop):
                            return
                    _put(sink, END, stop)
                    return
                try:
                    outs = stage.work(item)
                except Exception as exc:  # one bad item never ends the stream
                    try:
                        self.report(stage.index_of(item), exc)
                    except BaseException as callback_error:  # the callback ends the stream
                        failure.append(callback_error)
                        stop.set()
                        return
                    continue
                for out in outs:
                    if stage.replace is not None:
                        _put_newest(sink, out, stage.replace, self.on_drop)
                    elif not _put(sink, out, stop):
                        return

        threads = [threading.Thread(target=produce, name="tryon-capture", daemon=True)]
        threads += [
            threading.Thread(
                target=run_stage,
                args=(stage, queues[i], queues[i + 1]),
                name=f"tryon-{stage.name}",
                daemon=True,
            )  # fmt: skip
            for i, stage in enumerate(self.stages)
        ]
        for thread in threads:
            thread.start()
        try:
            while True:
                item = _get(queues[-1], stop)
                if item is END:
                    break
                yield item
        finally:
            stop.set()
            for q in queues:  # unblock anything waiting on a full queue
                with contextlib.suppress(queue.Empty):
                    while True:
                        q.get_nowait()
            for thread in threads:
                thread.join(timeout=5.0)
        if failure:
            raise failure[0]
