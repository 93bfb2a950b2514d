"""A garment as the session uses it: decoded, resized, masked and its landmarks found, once.

:func:`load_garment_image` takes a path or an array and returns a :class:`GarmentImage`; every
per-garment cost (decoding, the mask, the landmarks) is paid here, never per frame.

Decoding (:func:`read_garment`): an image file is decoded by OpenCV with its EXIF orientation
applied (a phone JPEG tagged "rotate 90" comes out upright); an image with alpha keeps its alpha,
turned the same way as the colour (OpenCV applies the orientation to the colour decode only, so
the turn is found by matching that decode against the unturned one). Arrays are taken as they
are (upright, RGB(A)).

Plausibility (:func:`check_garment_mask`): the garment mask (alpha, or the pixels that differ
from the plain border colour, :func:`engine.inputs.garment.garment_mask`) is thresholded at 0.5,
at the resized size, and must look like one upper-body garment laid flat with a margin around it.
The image is refused, with the rule it broke, when

1. the mask covers less than :data:`MIN_COVERAGE` or more than :data:`MAX_COVERAGE` of the image
   (a speck, or an opaque photograph / busy background that the mask fills edge to edge);
2. the mask runs along more than :data:`MAX_BORDER_CONTACT` of the image border (a garment
   cropped tight touches it at the hem and sleeve ends only; a photograph fills it);
3. the largest connected piece holds less than :data:`MIN_DOMINANT` of the mask (not one garment);
4. (no alpha) more than :data:`MAX_CLUTTER` times the mask's area of non-background pixels lie
   outside the mask in pieces that reach the image border (the background is not plain:
   stripes, texture, a scene; pieces inside the picture, e.g. parts of a garment whose light
   stripes match a white background, are not counted);
5. the silhouette is no wider at the shoulders than at the collar: the widest row between 10 % and
   50 % of the garment's height must be at least :data:`MIN_SHOULDER_RATIO` times the widest row
   of its top 5 % (a rectangle, a photo frame or a blob with a flat top is refused; so is a
   strapless tube top, which the warp could not place anyway).

Known limits: a person photographed on a plain studio background, with margin, passes these
rules (its head is narrower than its shoulders); the landmark search may then still refuse it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from engine.errors import InputError
from engine.inputs.garment import BACKGROUND_DISTANCE, garment_keypoints, garment_mask

__all__ = [
    "GARMENT_MAX_SIDE",
    "GARMENT_MIN_SIDE",
    "MAX_BORDER_CONTACT",
    "MAX_CLUTTER",
    "MAX_COVERAGE",
    "MIN_COVERAGE",
    "MIN_DOMINANT",
    "MIN_SHOULDER_RATIO",
    "GarmentImage",
    "check_garment_mask",
    "load_garment_image",
    "read_garment",
]

GARMENT_MAX_SIDE = 384
"""Garments are resized (area interpolation) so their longer side is at most this many pixels."""
GARMENT_MIN_SIDE = 8
"""The smallest garment image side, in pixels."""

MIN_COVERAGE = 0.05
"""Smallest fraction of the image the garment mask may cover."""
MAX_COVERAGE = 0.92
"""Largest fraction of the image the garment mask may cover."""
MAX_BORDER_CONTACT = 0.5
"""Largest fraction of the image's border pixels (all four sides) that may lie in the mask."""
MIN_DOMINANT = 0.9
"""Smallest share of the mask's area in its largest connected (8-connected) piece."""
MAX_CLUTTER = 0.2
"""Largest area of non-background pixels outside the mask in pieces that reach the image border,
as a fraction of the mask's area (images without alpha; "non-background" as in
:func:`engine.inputs.garment.garment_mask`)."""
MIN_SHOULDER_RATIO = 1.1
"""Widest row at 10-50 % of the garment's height over the widest row of its top 5 %."""

_EXPECTED = "a garment on a transparent or plain background (one upper-body garment laid flat)"


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


def _named(what: str, path: Path) -> str:
    """``what`` with the file's name when that stays short enough to be shown in full."""
    text = f"{what} ({path.name})"
    return text if len(text) <= 56 else what


# The 8 EXIF orientations as operations on an (H, W, C) array; identity first.
_TURNS = (
    lambda a: a,
    lambda a: a[:, ::-1],
    lambda a: a[::-1, ::-1],
    lambda a: a[::-1],
    lambda a: a.transpose(1, 0, 2),
    lambda a: a.transpose(1, 0, 2)[:, ::-1],
    lambda a: a.transpose(1, 0, 2)[::-1, ::-1],
    lambda a: a.transpose(1, 0, 2)[::-1],
)


def _orient_alpha(bgra: np.ndarray, upright_bgr: np.ndarray) -> np.ndarray:
    """Turn ``bgra`` (decoded without EXIF orientation) the way OpenCV turned ``upright_bgr``."""
    best, best_err = bgra, None
    for turn in _TURNS:
        candidate = turn(bgra)
        if candidate.shape[:2] != upright_bgr.shape[:2]:
            continue
        err = float(np.abs(candidate[..., :3].astype(np.int16) - upright_bgr).mean())
        if best_err is None or err < best_err:
            best, best_err = candidate, err
        if err == 0.0:
            break
    return np.ascontiguousarray(best)


def _decode(path: Path) -> np.ndarray:
    """An image file -> (H, W, 3|4) uint8 RGB(A), upright (EXIF orientation applied)."""
    expected = "an image file OpenCV can decode (PNG, JPEG, WebP, ...)"
    try:
        data = np.frombuffer(path.read_bytes(), np.uint8)
    except OSError as exc:
        raise InputError("image", expected, _named(f"unreadable: {exc.strerror}", path)) from exc
    if data.size == 0:
        raise InputError("image", expected, _named("an empty file", path))
    try:
        raw = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
        upright = cv2.imdecode(data, cv2.IMREAD_COLOR) if raw is not None else None
    except cv2.error:
        raw = upright = None
    if raw is None or upright is None:
        raise InputError("image", expected, _named("a file that is not an image", path))
    if raw.ndim == 3 and raw.shape[2] in (2, 4):  # with alpha (grey + alpha, or colour + alpha)
        if raw.dtype == np.uint16:
            raw = (raw >> 8).astype(np.uint8)
        if raw.dtype != np.uint8:
            raise InputError("image", "an 8- or 16-bit image file",
                             _named(f"a {raw.dtype} image", path))  # fmt: skip
        if raw.shape[2] == 2:
            raw = np.dstack([raw[..., 0]] * 3 + [raw[..., 1]])
        return cv2.cvtColor(_orient_alpha(raw, upright), cv2.COLOR_BGRA2RGBA)
    return cv2.cvtColor(upright, cv2.COLOR_BGR2RGB)  # no alpha: OpenCV's upright colour decode


def read_garment(image: object) -> np.ndarray:
    """A path or an (H, W, 3|4) uint8 RGB(A) array -> (H, W, 3|4) uint8 RGB(A), H, W >= 8.

    A file is decoded upright (EXIF orientation applied, alpha kept); an array is returned as is.

    Raises:
        InputError (``image``): no such file, not a readable image, smaller than 8x8 pixels, or
            not an (H, W, 3|4) uint8 array.
    """
    if isinstance(image, (str, Path)):
        path = Path(image)
        if not path.is_file():
            raise InputError("image", "a path to an existing image file", str(image))
        rgba = _decode(path)
        if min(rgba.shape[:2]) < GARMENT_MIN_SIDE:
            h, w = rgba.shape[:2]
            raise InputError("image", f"an image of at least {GARMENT_MIN_SIDE}x"
                             f"{GARMENT_MIN_SIDE} pixels", _named(f"a {w}x{h} image",
                                                                  path))  # fmt: skip
        return rgba
    if (
        not isinstance(image, np.ndarray)
        or image.dtype != np.uint8
        or image.ndim != 3
        or image.shape[2] not in (3, 4)
        or min(image.shape[:2]) < GARMENT_MIN_SIDE
    ):
        raise InputError("image", "a path or an (H, W, 3|4) uint8 RGB(A) array of at least "
                         f"{GARMENT_MIN_SIDE}x{GARMENT_MIN_SIDE} pixels", image)  # fmt: skip
    return image


def check_garment_mask(garment: torch.Tensor, alpha: torch.Tensor) -> None:
    """Refuse a mask that is not a plausible garment (rules: the module docstring).

    Args:
        garment: ``(3|4, Hg, Wg)`` float in [0, 1], the image the mask came from.
        alpha: ``(Hg, Wg)`` float in [0, 1] from :func:`engine.inputs.garment.garment_mask`.

    Raises:
        InputError (``image``): the rule it broke, in the image's terms.
    """
    mask = (alpha > 0.5).numpy().astype(np.uint8)
    area = int(mask.sum())
    if area < 16:
        raise InputError("image", _EXPECTED, "an image with no garment shape in it")
    coverage = area / mask.size
    if coverage < MIN_COVERAGE:
        raise InputError("image", _EXPECTED, f"a garment covering only {coverage:.0%} of it")
    if coverage > MAX_COVERAGE:
        raise InputError("image", _EXPECTED, f"{coverage:.0%} of it garment: a photo or busy "
                         "background?")  # fmt: skip
    border = np.concatenate([mask[0], mask[-1], mask[1:-1, 0], mask[1:-1, -1]])
    if border.mean() > MAX_BORDER_CONTACT:
        raise InputError("image", _EXPECTED, f"garment along {border.mean():.0%} of its edges: "
                         "a photo?")  # fmt: skip
    count, _, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    largest = int(stats[1:, cv2.CC_STAT_AREA].max())
    if largest < MIN_DOMINANT * area:
        raise InputError("image", _EXPECTED, f"a mask in {count - 1} pieces, the largest "
                         f"{largest / area:.0%} of it")  # fmt: skip
    g = garment.detach().to("cpu", torch.float32)
    if g.shape[0] == 3 or float(g[3].min()) >= 1.0 - 1e-3:  # no alpha: the plain-background mask
        rgb = g[:3]
        edge = torch.cat([rgb[:, 0], rgb[:, -1], rgb[:, :, 0], rgb[:, :, -1]], dim=1)
        bg = edge.median(dim=1).values
        other = ((rgb - bg[:, None, None]).norm(dim=0) > BACKGROUND_DISTANCE).numpy()
        other = (other & (mask == 0)).astype(np.uint8)
        n, labels, stats, _ = cv2.connectedComponentsWithStats(other, connectivity=8)
        edge_labels = np.unique(
            np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]])
        )
        edge_labels = edge_labels[edge_labels > 0]
        clutter = float(stats[edge_labels, cv2.CC_STAT_AREA].sum()) / area
        if clutter > MAX_CLUTTER:
            raise InputError("image", _EXPECTED, "a busy background, not a plain one")
    rows = np.nonzero(mask.any(axis=1))[0]
    y0, gh = int(rows[0]), int(rows[-1] - rows[0] + 1)
    widths = mask.sum(axis=1)
    top = int(widths[y0 : y0 + max(1, round(0.05 * gh))].max())
    upper = int(widths[y0 + int(0.1 * gh) : y0 + int(0.5 * gh) + 1].max())
    if upper < MIN_SHOULDER_RATIO * top:
        raise InputError("image", _EXPECTED, "a shape no wider at the shoulders than at the top")


def load_garment_image(image: str | Path | np.ndarray) -> GarmentImage:
    """Decode, resize to at most :data:`GARMENT_MAX_SIDE`, mask, check and find the landmarks.

    The mask is the alpha channel, or (no alpha) the pixels that differ from the plain background
    colour around the border (:func:`engine.inputs.garment.garment_mask`); it must pass
    :func:`check_garment_mask` (rules: the module docstring).

    Raises:
        InputError (``image``): not an image, not a plausible garment (the message says which
            rule it broke), or no garment shape (collar, shoulders, hem) found in it.
    """
    rgba = read_garment(image)
    h, w = rgba.shape[:2]
    scale = min(1.0, GARMENT_MAX_SIDE / max(h, w))
    if scale < 1.0:
        size = (max(8, round(w * scale)), max(8, round(h * scale)))
        rgba = cv2.resize(rgba, size, interpolation=cv2.INTER_AREA)
    garment = torch.from_numpy(np.ascontiguousarray(rgba)).permute(2, 0, 1).float() / 255.0
    alpha = garment_mask(garment)
    check_garment_mask(garment, alpha)
    garment = torch.cat([garment[:3] * alpha, alpha[None]])  # (4, Hg, Wg) RGBA
    try:
        points = garment_keypoints(garment)
    except (InputError, cv2.error, IndexError, ValueError) as exc:
        raise InputError("image", "a garment whose collar, shoulders and hem can be found",
                         "a shape without them") from exc  # fmt: skip
    return GarmentImage(garment, points)
