"""Per-stage timing statistics of a session: bounded memory, thread-safe.

Each stage keeps its last :data:`WINDOW` durations (a ring, so a run of any length uses the same
memory); :meth:`StageStats.summary` gives p50 / p95 per stage in milliseconds, frames out, frames
per second over the output clock, and the counters (dropped, bad and no-person frames).
"""

from __future__ import annotations

import threading
import time
from collections import deque

import numpy as np

__all__ = ["StageStats", "WINDOW"]

WINDOW = 2048
"""Durations kept per stage (the most recent ones)."""


class StageStats:
    """Collects per-stage milliseconds and stream counters."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self._stages: dict[str, deque] = {}
            self._out_times: deque = deque(maxlen=WINDOW)
            self.frames_out = 0
            self.dropped = 0
            self.bad_frames = 0
            self.no_person = 0

    def add(self, timings: dict[str, float]) -> None:
        """Record one frame's ``{stage: milliseconds}``."""
        with self._lock:
            for stage, ms in timings.items():
                self._stages.setdefault(stage, deque(maxlen=WINDOW)).append(float(ms))

    def frame_out(self, person_found: bool) -> None:
        """One result delivered (its time is the output clock of the FPS figure)."""
        with self._lock:
            self.frames_out += 1
            self.no_person += 0 if person_found else 1
            self._out_times.append(time.perf_counter())

    def count(self, *, dropped: int = 0, bad: int = 0) -> None:
        with self._lock:
            self.dropped += dropped
            self.bad_frames += bad

    def summary(self) -> dict:
        """``{"stages": {name: {"p50_ms", "p95_ms", "mean_ms", "count"}}, "fps", "frames",
        "dropped_frames", "bad_frames", "no_person_frames"}``; ``fps`` is None before two
        outputs (over the last :data:`WINDOW` outputs)."""
        with self._lock:
            stages = {}
            for name, values in self._stages.items():
                a = np.fromiter(values, dtype=np.float64)
                stages[name] = {"p50_ms": float(np.percentile(a, 50)),
                                "p95_ms": float(np.percentile(a, 95)),
                                "mean_ms": float(a.mean()), "count": int(a.size)}  # fmt: skip
            times = list(self._out_times)
            fps = None
            if len(times) >= 2 and times[-1] > times[0]:
                fps = (len(times) - 1) / (times[-1] - times[0])
            return {"stages": stages, "fps": fps, "frames": self.frames_out,
                    "dropped_frames": self.dropped, "bad_frames": self.bad_frames,
                    "no_person_frames": self.no_person}  # fmt: skip
