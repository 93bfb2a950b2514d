"""The bundled sample media: a short webcam-like clip of a real person, and a flat-lay garment.

Both ship in ``engine/assets/`` (see its README.md for sources and licences) so that ``tryon demo``
and the tests run without any download:

* ``sample_clip.mp4``: :data:`CLIP_FRAMES` frames of :data:`CLIP_HEIGHT` x :data:`CLIP_WIDTH` RGB at
  :data:`CLIP_FPS` frames/s, MPEG-4 part 2 (``mp4v``) that OpenCV's bundled FFmpeg reads. It is
  made from one photograph (``astronaut.png``: NASA's portrait of Eileen Collins, public domain,
  as shipped in scikit-image's wheel) by a slow hand-held-like camera path (pan, zoom in and out,
  +-1.5 degrees of roll), a drifting exposure and white balance, a vignette and per-frame sensor
  noise. The person herself does not move relative to the background; every frame's exact
  source -> frame affine map is :func:`sample_clip_camera`, so the true position of any point of
  the photograph is known in every frame.
* ``sample_garment.png``: a procedurally textured flat-lay t-shirt, RGBA 8-bit, from
  :func:`engine.training.synthetic.make_clip` (seed :data:`GARMENT_SEED` at 512 x 384); its alpha
  is the silhouette, so :func:`engine.inputs.garment.garment_keypoints` finds its landmarks.

Regenerating: ``python -m engine.training.sample_assets`` rewrites both files from
``astronaut.png`` and :mod:`engine.training.synthetic`. The frames are deterministic (fixed
camera path, seeded noise); the encoded bytes are reproducible in spirit only: they depend on the
FFmpeg build inside OpenCV, and the garment on :mod:`engine.training.synthetic` staying as it is.
"""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np

from engine.errors import InputError

__all__ = [
    "ASSETS_DIR",
    "CLIP_FPS",
    "CLIP_FRAMES",
    "CLIP_HEIGHT",
    "CLIP_WIDTH",
    "GARMENT_SEED",
    "read_sample_clip",
    "read_sample_garment",
    "render_sample_clip",
    "sample_clip_camera",
    "sample_clip_path",
    "sample_garment_path",
    "sample_source_path",
]

ASSETS_DIR = Path(__file__).resolve().with_name("assets")
SOURCE_NAME = "astronaut.png"
CLIP_NAME = "sample_clip.mp4"
GARMENT_NAME = "sample_garment.png"

CLIP_FRAMES = 64
CLIP_HEIGHT = 480
CLIP_WIDTH = 640
CLIP_FPS = 24.0
CLIP_NOISE_SEED = 0
CLIP_NOISE_SIGMA = 2.0
"""Standard deviation of the per-pixel Gaussian sensor noise, in 8-bit levels."""

GARMENT_SEED = 13
GARMENT_HEIGHT = 512
GARMENT_WIDTH = 384


def sample_source_path() -> Path:
    """Path of the source photograph (512 x 512 RGB PNG) the clip is made from."""
    return ASSETS_DIR / SOURCE_NAME


def sample_clip_path() -> Path:
    """Path of the bundled sample clip (``.mp4``, 640 x 480, 64 frames at 24 frames/s).

    A :class:`pathlib.Path`; ``cv2.VideoCapture(str(path))`` reads it.
    """
    return ASSETS_DIR / CLIP_NAME


def sample_garment_path() -> Path:
    """Path of the bundled flat-lay garment (RGBA PNG, 512 x 384, alpha = silhouette)."""
    return ASSETS_DIR / GARMENT_NAME


def _check_frames(name: str, value: object, maximum: int | None) -> int | None:
    if value is None:
        return None
    ok = isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value >= 1
    if not ok or (maximum is not None and value > maximum):
        bound = f" and <= {maximum}" if maximum is not None else ""
        raise InputError(name, f"None or an int >= 1{bound}", value)
    return int(value)


def read_sample_clip(max_frames: int | None = None) -> list[np.ndarray]:
    """Decode the bundled clip.

    Args:
        max_frames: decode at most this many frames from the start (``None`` = all 64).

    Returns:
        A list of ``(480, 640, 3)`` uint8 RGB frames (each its own C-contiguous array).

    Raises:
        InputError: ``max_frames`` is not ``None`` or an int >= 1.
        FileNotFoundError: the clip is missing from the install (a broken package).
        RuntimeError: OpenCV cannot open or decode it (an OpenCV build without FFmpeg).
    """
    limit = _check_frames("max_frames", max_frames, None)
    path = sample_clip_path()
    if not path.is_file():
        raise FileNotFoundError(f"the bundled sample clip is missing: {path}")
    cap = cv2.VideoCapture(str(path))
    try:
        if not cap.isOpened():
            raise RuntimeError(f"OpenCV cannot open {path} (is OpenCV built with FFmpeg?)")
        frames: list[np.ndarray] = []
        while limit is None or len(frames) < limit:
            ok, bgr = cap.read()
            if not ok:
                break
            frames.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))  # (H, W, 3) uint8 RGB
    finally:
        cap.release()
    if not frames:
        raise RuntimeError(f"OpenCV decoded no frame from {path}")
    return frames


def read_sample_garment() -> np.ndarray:
    """The bundled garment as a ``(512, 384, 4)`` uint8 RGBA array (alpha 255 = garment).

    Raises:
        FileNotFoundError: the file is missing from the install.
    """
    path = sample_garment_path()
    bgra = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if bgra is None:
        raise FileNotFoundError(f"the bundled sample garment is missing or unreadable: {path}")
    return cv2.cvtColor(bgra, cv2.COLOR_BGRA2RGBA)


def sample_clip_camera(frames: int = CLIP_FRAMES) -> np.ndarray:
    """The clip's camera path: per frame, the affine map from source-photo pixels to frame pixels.

    With ``t = i / (frames - 1)`` the window into the 512 x 512 photo is ``w(t) = 500 - 15 (1 -
    cos 2 pi t)`` pixels wide (a slow zoom in and back out, 4:3), rolled by ``1.5 sin(2 pi t +
    0.3)`` degrees, centred at ``x = 256 + 20 sin(2 pi t + 1)`` and ``40 + 20 sin(3 pi t)`` pixels
    below the highest centre that keeps it inside the photo (both clamped so the rolled window
    never leaves the photo: no border is invented).

    Args:
        frames: number of frames T (>= 1).

    Returns:
        ``(T, 2, 3)`` float64 matrices ``M``: a source point ``(x, y)`` (pixels, origin at the
        photo's top-left corner) is at ``M @ (x, y, 1)`` in the frame (same convention).
    """
    t_count = _check_frames("frames", frames, None)
    size = 512.0
    out = np.empty((t_count, 2, 3), dtype=np.float64)
    for i in range(t_count):
        t = i / (t_count - 1) if t_count > 1 else 0.0
        win_w = 500.0 - 15.0 * (1.0 - math.cos(2.0 * math.pi * t))
        win_h = win_w * CLIP_HEIGHT / CLIP_WIDTH
        roll = math.radians(1.5 * math.sin(2.0 * math.pi * t + 0.3))
        c, s = math.cos(roll), math.sin(roll)
        half_x = 0.5 * (win_w * abs(c) + win_h * abs(s))  # half extent of the rolled window
        half_y = 0.5 * (win_w * abs(s) + win_h * abs(c))
        cx = min(max(256.0 + 20.0 * math.sin(2.0 * math.pi * t + 1.0), half_x), size - half_x)
        cy = min(max(half_y + 40.0 + 20.0 * math.sin(3.0 * math.pi * t), half_y), size - half_y)
        zoom = CLIP_WIDTH / win_w
        # frame = zoom * R (src - centre) + frame centre, R as in cv2.getRotationMatrix2D with
        # angle = roll (content turns counter-clockwise on screen for roll > 0).
        rot = np.array([[c, s], [-s, c]]) * zoom
        out[i, :, :2] = rot
        out[i, :, 2] = np.array([CLIP_WIDTH / 2.0, CLIP_HEIGHT / 2.0]) - rot @ np.array([cx, cy])
    return out


def _read_source() -> np.ndarray:
    path = sample_source_path()
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise FileNotFoundError(f"the bundled source photo is missing or unreadable: {path}")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def render_sample_clip(frames: int = CLIP_FRAMES) -> list[np.ndarray]:
    """Render the sample clip's frames from the source photo, before video compression.

    Deterministic (bit for bit on one machine): the camera path of :func:`sample_clip_camera`,
    bilinear resampling, then per frame an exposure of ``1 + 0.05 sin(2 pi (0.7 t + 0.2))``, a
    white-balance drift of ``+-2 %`` between red and blue, a fixed vignette (-12 % in the corners)
    and Gaussian noise of :data:`CLIP_NOISE_SIGMA` levels from ``default_rng(CLIP_NOISE_SEED)``.

    Args:
        frames: number of frames (>= 1); the path is spread over them.

    Returns:
        A list of ``(480, 640, 3)`` uint8 RGB frames.
    """
    mats = sample_clip_camera(frames)  # (T, 2, 3)
    src = _read_source().astype(np.float32)  # (512, 512, 3)
    ys, xs = np.mgrid[0:CLIP_HEIGHT, 0:CLIP_WIDTH].astype(np.float32)
    r2 = ((xs + 0.5) / CLIP_WIDTH - 0.5) ** 2 + ((ys + 0.5) / CLIP_HEIGHT - 0.5) ** 2
    vignette = (1.0 - 0.24 * r2)[..., None]  # (H, W, 1), 0.88 in the corners
    rng = np.random.default_rng(CLIP_NOISE_SEED)
    out = []
    for i, mat in enumerate(mats):
        t = i / (len(mats) - 1) if len(mats) > 1 else 0.0
        img = cv2.warpAffine(
            src,
            mat,
            (CLIP_WIDTH, CLIP_HEIGHT),
            flags=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_REFLECT101,
        )  # (H, W, 3) float32
        exposure = 1.0 + 0.05 * math.sin(2.0 * math.pi * (0.7 * t + 0.2))
        balance = 0.02 * math.sin(2.0 * math.pi * (1.3 * t))
        gain = np.array([1.0 + balance, 1.0, 1.0 - balance], np.float32) * exposure
        img = img * gain * vignette
        img += rng.standard_normal(img.shape, dtype=np.float32) * CLIP_NOISE_SIGMA
        out.append(np.clip(img + 0.5, 0.0, 255.0).astype(np.uint8))
    return out
