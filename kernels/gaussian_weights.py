"""Gaussian filter taps exactly as OpenCV computes them (``cv::getGaussianKernel`` and the
fixed-point taps of its bit-exact 8-bit ``GaussianBlur``).

Real-valued taps (double precision, returned as Python floats):

- ``sigma <= 0`` and ``ksize`` in {1, 3, 5, 7, 9}: OpenCV's fixed binomial-like tables
  (e.g. 5 -> [1, 4, 6, 4, 1] / 16; 9 -> [4, 13, 30, 51, 60, 51, 30, 13, 4] / 256), not a sampled
  Gaussian;
- otherwise ``sigma <= 0`` becomes ``0.15 * ksize + 0.35`` (one fused multiply-add, i.e.
  ``0.3 * ((ksize - 1) / 2 - 1) + 0.8``), and tap ``i`` is ``exp(-(i - r)^2 / (2 sigma^2))`` with
  ``r = (ksize - 1) / 2``, normalized by the double-precision sum, the centre tap being exactly
  ``1 / sum``.

Fixed-point taps for uint8 images: the real taps times 2^8, rounded (half to even) from the
outside in with the rounding error carried to the next tap (error diffusion), the centre tap
taking whatever makes the sum exactly 256. OpenCV's uint8 ``GaussianBlur`` then computes
``(sum_j ky[j] * sum_i kx[i] * x + 2^15) >> 16`` in integers.
"""

from __future__ import annotations

import math
from fractions import Fraction
from functools import lru_cache

__all__ = ["gaussian_weights", "gaussian_weights_fixed_point", "opencv_default_sigma"]

FIXED_POINT_BITS = 8

_SMALL_TABLES = {
    1: (1.0,),
    3: (0.25, 0.5, 0.25),
    5: (0.0625, 0.25, 0.375, 0.25, 0.0625),
    7: (0.03125, 0.109375, 0.21875, 0.28125, 0.21875, 0.109375, 0.03125),
    9: tuple(v / 256 for v in (4, 13, 30, 51, 60, 51, 30, 13, 4)),
}


def opencv_default_sigma(ksize: int) -> float:
    """The sigma OpenCV uses for ``sigma <= 0``: ``fma(ksize, 0.15, 0.35)`` in double."""
    return float(Fraction(ksize) * Fraction(0.15) + Fraction(0.35))


@lru_cache(maxsize=256)
def gaussian_weights(ksize: int, sigma: float) -> tuple[float, ...]:
    """OpenCV's real-valued Gaussian taps for an odd ``ksize`` (double precision)."""
    if sigma <= 0 and ksize in _SMALL_TABLES:
        return _SMALL_TABLES[ksize]
    s = sigma if sigma > 0 else opencv_default_sigma(ksize)
    scale2x = -0.125 / (s * s)
    half = (ksize - 1) // 2
    side = [math.exp(float(x * x) * scale2x) for x in range(1 - ksize, 0, 2)][:half]
    total = 0.0
    for t in side:
        total += t
    total = total * 2 + 1.0
    inv = 1.0 / total
    left = [t * inv for t in side]
    return (*left, inv, *reversed(left))


@lru_cache(maxsize=256)
def gaussian_weights_fixed_point(ksize: int, sigma: float) -> tuple[int, ...]:
    """OpenCV's 8-fractional-bit taps (sum exactly 256) for the bit-exact uint8 blur."""
    real = gaussian_weights(ksize, sigma)
    one = 1 << FIXED_POINT_BITS
    half = ksize // 2
    taps = [0] * ksize
    err = 0.0
    total = 0
    for i in range(half):
        adjusted = real[i] * one + err
        v = round(adjusted)  # Python rounds half to even, like cvRound
        err = adjusted - v
        taps[i] = taps[ksize - 1 - i] = v
        total += v
    taps[half] = one - 2 * total
    return tuple(taps)
