"""The One Euro filter (Casiez, Roussel and Vogel, CHI 2012) for keypoint tracks.

A first-order low-pass filter whose cutoff frequency rises with the speed of the signal: slow
movements are smoothed hard (little jitter), fast ones barely (little lag). Per coordinate, for a
sample ``x_i`` at time ``t_i`` (seconds) with ``dt = t_i - t_{i-1}``:

.. code-block:: text

    alpha(fc)  = 1 / (1 + 1 / (2 * pi * fc * dt))          # smoothing factor of cutoff fc (Hz)
    dx_i       = (x_i - xhat_{i-1}) / dt                     # raw speed (units/s)
    dxhat_i    = dxhat_{i-1} + alpha(d_cutoff) * (dx_i - dxhat_{i-1})
    fc_i       = min_cutoff + beta * |dxhat_i|               # adaptive cutoff (Hz)
    xhat_i     = xhat_{i-1} + alpha(fc_i) * (x_i - xhat_{i-1})

The first sample of a track passes through unchanged (``xhat = x``, ``dxhat = 0``).

Units: ``min_cutoff`` and ``d_cutoff`` are in Hz; ``beta`` is in Hz per (unit/s), i.e. 1/unit, where
the unit is whatever the coordinates are in (pixels, or a normalized length such as frame heights:
:class:`engine.perception.person_detector.PersonDetector` filters coordinates divided by the frame
height so
its ``beta`` does not depend on the resolution). Lower ``min_cutoff`` = less jitter at rest; higher
``beta`` = less lag in fast movements.

Tracks and timestamps (this implementation's rules):

* A sample set is ``(N, D)``: N independent points (the 18 keypoints) of D coordinates (x, y); all
  N x D coordinates are filtered at once, vectorized.
* ``present`` marks which points were observed. A missing point keeps no state: its output is its
  input unchanged, and when it comes back its track restarts (first-sample rule), so a keypoint
  that jumps back in far away is not dragged in from its old position.
* Duplicate timestamp (``dt == 0``): the step is taken as the last positive ``dt`` (1/30 s
  before any), i.e. the sample is treated as the next frame at the stream's rate.
* Timestamp going backwards (a looped file, a new stream): every track restarts.
"""

from __future__ import annotations

import math

import numpy as np

from engine.errors import InputError

__all__ = ["OneEuroFilter", "DEFAULT_DT_S"]

DEFAULT_DT_S = 1.0 / 30.0
"""Step used for a duplicate timestamp before any positive step was seen (seconds)."""


def _check_positive(name: str, value: object, *, allow_zero: bool = False) -> float:
    ok = isinstance(value, (int, float, np.floating, np.integer)) and not isinstance(value, bool)
    if ok:
        value = float(value)
        ok = math.isfinite(value) and (value >= 0.0 if allow_zero else value > 0.0)
    if not ok:
        expected = "a finite float >= 0" if allow_zero else "a finite float > 0"
        raise InputError(name, expected, value)
    return value


def _alpha(cutoff_hz: np.ndarray | float, dt_s: float) -> np.ndarray | float:
    """Smoothing factor of a first-order low-pass filter of cutoff ``cutoff_hz`` over ``dt_s``."""
    return 1.0 / (1.0 + 1.0 / (2.0 * math.pi * cutoff_hz * dt_s))


class OneEuroFilter:
    """One Euro filter over ``N`` points of ``D`` coordinates (e.g. the 18 keypoints' x, y).

    Args:
        min_cutoff: cutoff frequency at rest, Hz (> 0).
        beta: speed coefficient, 1/unit of the coordinates (>= 0; 0 = a fixed low-pass filter).
        d_cutoff: cutoff frequency of the speed estimate, Hz (> 0).

    Call it once per frame with the points, the frame's timestamp in seconds and optionally which
    points are present; it returns the filtered points, ``(N, D)`` float32. The shape is fixed by
    the first call (until :meth:`reset`). Not thread-safe: one filter per stream.

    Raises:
        InputError: a parameter is not a finite number in its range (at construction).
    """

    def __init__(self, min_cutoff: float = 1.0, beta: float = 0.0, d_cutoff: float = 1.0) -> None:
        self.min_cutoff = _check_positive("min_cutoff", min_cutoff)
        self.beta = _check_positive("beta", beta, allow_zero=True)
        self.d_cutoff = _check_positive("d_cutoff", d_cutoff)
        self._shape: tuple[int, int] | None = None
        self._x: np.ndarray | None = None  # (N, D) float64 filtered value
        self._dx: np.ndarray | None = None  # (N, D) float64 filtered speed, units/s
        self._live: np.ndarray | None = None  # (N,) bool: the track has state
        self._t: float | None = None  # timestamp of the last call, s
        self._dt = DEFAULT_DT_S  # last positive step, s

    def reset(self) -> None:
        """Forget every track and the shape; the next call starts afresh."""
        self._shape = None
        self._x = self._dx = self._live = None
        self._t = None
        self._dt = DEFAULT_DT_S

    def _check(self, points: object, timestamp_s: object, present: object) -> tuple:
        if (
            not isinstance(points, np.ndarray)
            or points.ndim != 2
            or points.shape[0] < 1
            or points.shape[1] < 1
            or points.dtype.kind not in "fiu"
            or (self._shape is not None and points.shape != self._shape)
        ):
            shape = "(N, D)" if self._shape is None else str(self._shape)
            raise InputError("points", f"a real numpy array of shape {shape}", points)
        ok = isinstance(timestamp_s, (int, float, np.floating, np.integer))
        if not ok or isinstance(timestamp_s, bool) or not math.isfinite(float(timestamp_s)):
            raise InputError("timestamp_s", "a finite number of seconds", timestamp_s)
        n = points.shape[0]
        if present is None:
            mask = np.ones(n, dtype=bool)
        elif isinstance(present, np.ndarray) and present.dtype == bool and present.shape == (n,):
            mask = present
        else:
            raise InputError("present", f"None or a bool numpy array of shape ({n},)", present)
        x = points.astype(np.float64)
        if not np.isfinite(x[mask]).all():
            raise InputError("points", "finite values for the present points", points)
        return x, float(timestamp_s), mask

    def __call__(
        self, points: np.ndarray, timestamp_s: float, present: np.ndarray | None = None
    ) -> np.ndarray:
        """Filter one frame.

        Args:
            points: ``(N, D)`` real array, the raw coordinates of this frame.
            timestamp_s: the frame's time in seconds (any origin; see the module docstring for
                duplicate and backward timestamps).
            present: ``(N,)`` bool, which points were observed; ``None`` = all. Values of absent
                points are ignored (may be NaN) and returned unchanged.

        Returns:
            ``(N, D)`` float32: filtered coordinates for present points, the input for absent ones.

        Raises:
            InputError: wrong type, shape (another shape than the first call's), non-finite
                present values or timestamp, or a malformed ``present`` (checked before any
                state changes).
        """
        x, t, mask = self._check(points, timestamp_s, present)
        if self._shape is None:
            self._shape = x.shape
            self._x = np.zeros_like(x)
            self._dx = np.zeros_like(x)
            self._live = np.zeros(x.shape[0], dtype=bool)
        if self._t is not None and t < self._t:  # time went backwards: a new stream
            self._live[:] = False
            self._dt = DEFAULT_DT_S
        elif self._t is not None and t > self._t:
            self._dt = t - self._t
        dt = self._dt

        cont = mask & self._live  # tracks that continue
        start = mask & ~self._live  # tracks that (re)start: first-sample rule
        if cont.any():
            xp, dxp = self._x[cont], self._dx[cont]  # (n, D)
            dx = (x[cont] - xp) / dt
            dxh = dxp + _alpha(self.d_cutoff, dt) * (dx - dxp)
            cutoff = self.min_cutoff + self.beta * np.abs(dxh)
            self._x[cont] = xp + _alpha(cutoff, dt) * (x[cont] - xp)
            self._dx[cont] = dxh
        self._x[start] = x[start]
        self._dx[start] = 0.0
        self._live = mask.copy()
        self._t = t

        out = np.where(mask[:, None], self._x, x)  # (N, D)
        return out.astype(np.float32)
