import math

import numpy as np
import pytest

from engine.errors import InputError
from engine.perception.one_euro import DEFAULT_DT_S, OneEuroFilter

FPS = 30.0


def _run(filt: OneEuroFilter, signal: np.ndarray, fps: float = FPS) -> np.ndarray:
    """Filter a (T, N, D) signal sampled at ``fps``; returns (T, N, D) float32."""
    return np.stack([filt(x, i / fps) for i, x in enumerate(signal)])


def _reference(signal: np.ndarray, times: np.ndarray, mc: float, beta: float, dc: float):
    """Scalar transcription of Casiez et al.'s pseudocode, for one coordinate."""

    def alpha(fc, dt):
        tau = 1.0 / (2 * math.pi * fc)
        return 1.0 / (1.0 + tau / dt)

    out, xh, dxh = [], None, 0.0
    for i, x in enumerate(signal):
        if xh is None:
            xh = x
        else:
            dt = times[i] - times[i - 1]
            dx = (x - xh) / dt
            dxh = dxh + alpha(dc, dt) * (dx - dxh)
            xh = xh + alpha(mc + beta * abs(dxh), dt) * (x - xh)
        out.append(xh)
    return np.array(out)


def test_matches_the_papers_pseudocode_per_coordinate():
    rng = np.random.default_rng(0)
    t = np.cumsum(rng.uniform(0.02, 0.05, 50))
    sig = np.cumsum(rng.normal(0, 1, (50, 18, 2)), axis=0)  # (T, 18, 2) random walk
    filt = OneEuroFilter(min_cutoff=0.7, beta=0.3, d_cutoff=1.5)
    got = np.stack([filt(x, ti) for x, ti in zip(sig, t, strict=True)])
    for n, d in ((0, 0), (7, 1), (17, 0)):
        ref = _reference(sig[:, n, d], t, 0.7, 0.3, 1.5)
        np.testing.assert_allclose(got[:, n, d], ref, rtol=1e-5, atol=1e-4)


def test_shape_dtype_and_first_sample_passes_through():
    filt = OneEuroFilter()
    x = np.arange(36, dtype=np.float64).reshape(18, 2)
    out = filt(x, 0.0)
    assert out.shape == (18, 2) and out.dtype == np.float32
    np.testing.assert_array_equal(out, x.astype(np.float32))


def test_constant_signal_stays_constant():
    sig = np.broadcast_to(np.array([[123.25, -7.5]] * 18), (60, 18, 2))
    out = _run(OneEuroFilter(min_cutoff=0.5, beta=2.0), sig)
    np.testing.assert_allclose(out, sig, atol=1e-4)


def test_static_point_jitter_is_reduced():
    rng = np.random.default_rng(1)
    sig = 100.0 + rng.normal(0, 2.0, (300, 18, 2))  # 2 px of noise around a fixed point
    out = _run(OneEuroFilter(min_cutoff=1.0, beta=0.0), sig)
    # A first-order low-pass at 1 Hz sampled at 30 Hz has alpha = 0.173: white noise's standard
    # deviation shrinks by sqrt(alpha / (2 - alpha)) = 0.31 and that of its frame-to-frame
    # difference by sqrt(alpha) * 0.31 = 0.13 (measured 0.31 and 0.13 on this signal).
    spread = (out[50:] - 100.0).std() / (sig[50:] - 100.0).std()
    jitter = np.abs(np.diff(out[50:], axis=0)).mean() / np.abs(np.diff(sig[50:], axis=0)).mean()
    assert 0.25 < spread < 0.37
    assert 0.10 < jitter < 0.16


def test_fast_ramp_lags_less_with_larger_beta():
    t = np.arange(90) / FPS
    ramp = np.repeat((300.0 * t)[:, None, None], 2, axis=2)  # 300 units/s, (T, 1, 2)
    lags = []
    for beta in (0.0, 0.05, 0.5):
        out = _run(OneEuroFilter(min_cutoff=1.0, beta=beta), ramp)
        lags.append(float(np.abs(ramp[-1] - out[-1]).max()))
    # beta = 0: steady lag of a 1 Hz low-pass, v * tau = 300 / (2 pi) ~ 48 (minus the sampling).
    assert 35.0 < lags[0] < 50.0
    assert lags[0] > 2 * lags[1] > 4 * lags[2]


def test_missing_keypoint_restarts_its_track():
    filt = OneEuroFilter(min_cutoff=0.5, beta=0.0)
    present = np.ones(2, bool)
    for i in range(10):
        filt(np.array([[0.0, 0.0], [5.0, 5.0]]), i / FPS, present)
    gone = np.array([True, False])
    out = filt(np.array([[0.0, 0.0], [np.nan, np.nan]]), 10 / FPS, gone)
    assert np.isnan(out[1]).all()  # absent points come back unchanged
    out = filt(np.array([[50.0, 50.0], [200.0, 200.0]]), 11 / FPS, present)
    np.testing.assert_array_equal(out[1], [200.0, 200.0])  # restarted: no drag from 5.0
    assert 0.0 < out[0, 0] < 25.0  # the continuing track is smoothed


def test_reset_forgets_state_and_shape():
    filt = OneEuroFilter(min_cutoff=0.5)
    filt(np.zeros((18, 2)), 0.0)
    filt.reset()
    out = filt(np.full((4, 3), 9.0), 0.0)  # another shape is fine after reset
    np.testing.assert_array_equal(out, np.full((4, 3), 9.0, np.float32))


def test_timestamp_going_back_restarts_and_duplicate_uses_last_step():
    filt = OneEuroFilter(min_cutoff=1.0)
    filt(np.zeros((1, 1)), 5.0)
    out = filt(np.full((1, 1), 10.0), 4.0)  # backwards: a new stream
    assert out[0, 0] == 10.0

    a, b = OneEuroFilter(min_cutoff=1.0), OneEuroFilter(min_cutoff=1.0)
    a(np.zeros((1, 1)), 0.0)
    a(np.zeros((1, 1)), 0.1)
    dup = a(np.ones((1, 1)), 0.1)  # duplicate: as if 0.1 s later
    b(np.zeros((1, 1)), 0.0)
    b(np.zeros((1, 1)), 0.1)
    nxt = b(np.ones((1, 1)), 0.2)
    np.testing.assert_allclose(dup, nxt)

    c, d = OneEuroFilter(min_cutoff=1.0), OneEuroFilter(min_cutoff=1.0)
    c(np.zeros((1, 1)), 0.0)
    first = c(np.ones((1, 1)), 0.0)  # duplicate before any step: DEFAULT_DT_S
    d(np.zeros((1, 1)), 0.0)
    np.testing.assert_allclose(first, d(np.ones((1, 1)), DEFAULT_DT_S))


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"min_cutoff": 0.0}, "min_cutoff"),
        ({"min_cutoff": float("nan")}, "min_cutoff"),
        ({"beta": -1.0}, "beta"),
        ({"beta": True}, "beta"),
        ({"d_cutoff": "1"}, "d_cutoff"),
    ],
)
def test_bad_parameters_raise(kwargs, argument):
    with pytest.raises(InputError, match=f"^{argument}:"):
        OneEuroFilter(**kwargs)


@pytest.mark.parametrize(
    ("points", "timestamp", "present", "argument"),
    [
        ([[1.0, 2.0]], 0.0, None, "points"),  # a list
        (np.zeros(18), 0.0, None, "points"),  # 1-D
        (np.zeros((0, 2)), 0.0, None, "points"),  # empty
        (np.zeros((18, 2), complex), 0.0, None, "points"),
        (np.full((18, 2), np.inf), 0.0, None, "points"),
        (np.zeros((18, 2)), float("nan"), None, "timestamp_s"),
        (np.zeros((18, 2)), "0", None, "timestamp_s"),
        (np.zeros((18, 2)), True, None, "timestamp_s"),
        (np.zeros((18, 2)), 0.0, np.ones(17, bool), "present"),
        (np.zeros((18, 2)), 0.0, np.ones(18), "present"),
    ],
)
def test_bad_call_raises_before_any_state_change(points, timestamp, present, argument):
    filt = OneEuroFilter(min_cutoff=1.0)
    filt(np.ones((18, 2)), -1.0)
    with pytest.raises(InputError, match=f"^{argument}:"):
        filt(points, timestamp, present)
    out = filt(np.full((18, 2), 2.0), -1.0 + 1 / FPS)  # the state is the one before the error
    ref = OneEuroFilter(min_cutoff=1.0)
    ref(np.ones((18, 2)), -1.0)
    np.testing.assert_array_equal(out, ref(np.full((18, 2), 2.0), -1.0 + 1 / FPS))


def test_shape_is_fixed_by_the_first_call():
    filt = OneEuroFilter()
    filt(np.zeros((18, 2)), 0.0)
    with pytest.raises(InputError, match=r"^points: expected .*\(18, 2\)"):
        filt(np.zeros((17, 2)), 0.1)
