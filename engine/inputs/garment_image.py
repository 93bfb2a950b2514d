"""A garment as the session uses it: decoded, resized, masked and its landmarks found, once.

:func:`load_garment_image` takes a path or an array and returns a :class:`GarmentImage`; every
per-garment cost (decoding, the mask, the landmarks) is paid here, never per frame.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from engine.errors import InputError
from engine.inputs.garment import garment_keypoints, garment_mask

__all__ = ["GARMENT_MAX_SIDE", "GarmentImage", "load_garment_image", "read_garment"]

GARMENT_MAX_SIDE = 384
"""Garments are resized (area interpolation) so their longer side is at most this many pixels."""


@dataclass(frozen=True)
class GarmentImage:
    """A garment ready for the warp.

    Attributes:
        rgba: (4, Hg, Wg) float32 in [0, 1], RGB premultiplied by the mask, mask in channel 3.
        points: (N, 2) float32 landmarks (:data:`engine.inputs.garment.GARMENT_POINTS` order), in
            pixels of ``rgba``.
    """

    rgba: torch.Tensor
    points: torch.Tensor


def read_garment(image: object) -> np.ndarray:
    """A path or an (H, W, 3|4) uint8 RGB(A) array -> (H, W, 3|4) uint8 RGB(A), H, W >= 8."""
    if isinstance(image, (str, Path)):
        if not Path(image).is_file():
            raise InputError("image", "a path to an existing image file", str(image))
        raw = cv2.imread(str(image), cv2.IMREAD_UNCHANGED)
        if raw is None or raw.dtype != np.uint8 or raw.ndim != 3 or raw.shape[2] not in (3, 4):
            raise InputError("image", "an 8-bit RGB or RGBA image file OpenCV can read",
                             str(image))  # fmt: skip
        code = cv2.COLOR_BGRA2RGBA if raw.shape[2] == 4 else cv2.COLOR_BGR2RGB
        image = cv2.cvtColor(raw, code)
    if (
        not isinstance(image, np.ndarray)
        or image.dtype != np.uint8
        or image.ndim != 3
        or image.shape[2] not in (3, 4)
        or min(image.shape[:2]) < 8
    ):
        raise InputError("image", "a path or an (H, W, 3|4) uint8 RGB(A) array, H, W >= 8", image)
    return image


def load_garment_image(image: str | Path | np.ndarray) -> GarmentImage:
    """Decode, resize to at most :data:`GARMENT_MAX_SIDE`, mask and find the landmarks.

    The mask is the alpha channel, or (no alpha) the pixels that differ from the plain background
    colour around the border (:func:`engine.inputs.garment.garment_mask`).

    Raises:
        InputError: not an image, or no garment shape (collar, shoulders, hem) found in it.
    """
    rgba = read_garment(image)
    h, w = rgba.shape[:2]
    scale = min(1.0, GARMENT_MAX_SIDE / max(h, w))
    if scale < 1.0:
        size = (max(8, round(w * scale)), max(8, round(h * scale)))
        rgba = cv2.resize(rgba, size, interpolation=cv2.INTER_AREA)
    garment = torch.from_numpy(np.ascontiguousarray(rgba)).permute(2, 0, 1).float() / 255.0
    alpha = garment_mask(garment)
    if float(alpha.sum()) < 16:
        raise InputError("image", "a garment on a transparent or plain background",
                         "an image with no garment shape in it")  # fmt: skip
    garment = torch.cat([garment[:3] * alpha, alpha[None]])  # (4, Hg, Wg) RGBA
    try:
        points = garment_keypoints(garment)
    except InputError as exc:
        raise InputError("image", "a garment whose collar, shoulders and hem can be found",
                         str(exc)) from exc  # fmt: skip
    return GarmentImage(garment, points)
