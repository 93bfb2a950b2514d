"""Which person to dress when several are in the frame, and keeping to that person.

mediapipe's pose graph follows one person, whichever its detector found first (in a photo of
two people it may pick the one in the background). :class:`SubjectChooser` decides instead, from
the faces mediapipe's bundled face detector sees:

- **choice**: the largest face (the person nearest the camera); faces within
  :data:`SIZE_TIE` of the largest count as equally large and the one nearest the frame centre
  wins among them;
- **staying**: once chosen, the subject is the face that overlaps the previous subject's face
  best (IoU >= :data:`MIN_IOU`, or its centre within one face width); another person, even a
  larger one stepping in, does not take over while the subject is seen; the subject is given up
  only after ``patience`` frames in a row without it, then the choice starts over;
- **region**: pose and segmentation then run on the frame with everything outside the subject's
  region (:func:`subject_region`: a column around the face, five face widths wide, from a face
  height above it to the frame bottom) filled with grey, so the frame size never changes and
  nobody else can be picked up. With one face or none, the frame is used as is.
- **cost**: while the subject is the only face seen, the detector looks for faces on one frame
  in :data:`engine.perception.person_detector.FACE_EVERY` only.

Boxes are ``(x0, y0, x1, y1)`` in pixels of the frame the faces were found on.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from engine.errors import InputError

__all__ = ["MIN_IOU", "SIZE_TIE", "SubjectChooser", "subject_region"]

SIZE_TIE = 0.15
"""Faces whose area is within this fraction of the largest one are equally near the camera."""
MIN_IOU = 0.3
"""A face continues the subject when it overlaps the subject's last face at least this much."""

Box = tuple[float, float, float, float]


def _area(b: Box) -> float:
    return max(0.0, b[2] - b[0]) * max(0.0, b[3] - b[1])


def _iou(a: Box, b: Box) -> float:
    inter = _area((max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3])))
    union = _area(a) + _area(b) - inter
    return inter / union if union > 0 else 0.0


def _centre(b: Box) -> tuple[float, float]:
    return 0.5 * (b[0] + b[2]), 0.5 * (b[1] + b[3])


def subject_region(face: Box, height: int, width: int) -> tuple[int, int, int, int]:
    """The part of a ``height x width`` frame that holds the person of ``face``: five face
    widths wide around it, from one face height above it to the frame bottom (clipped)."""
    fw, fh = face[2] - face[0], face[3] - face[1]
    cx = 0.5 * (face[0] + face[2])
    x0 = int(np.floor(max(0.0, cx - 2.5 * fw)))
    x1 = int(np.ceil(min(float(width), cx + 2.5 * fw)))
    y0 = int(np.floor(max(0.0, face[1] - fh)))
    return x0, y0, x1, height


class SubjectChooser:
    """Chooses and keeps the subject from per-frame face boxes (see the module docstring).

    Args:
        patience: frames in a row without the subject's face before another person is chosen.
    """

    def __init__(self, *, patience: int = 15) -> None:
        if isinstance(patience, bool) or not isinstance(patience, int) or patience < 1:
            raise InputError("patience", "an int >= 1 (frames)", patience)
        self.patience = patience
        self.reset()

    def reset(self) -> None:
        """Forget the subject (a new stream)."""
        self.subject: Box | None = None
        self.missed = 0

    def _continues(self, face: Box) -> bool:
        if self.subject is None:
            return False
        (ax, ay), (bx, by) = _centre(face), _centre(self.subject)
        width = self.subject[2] - self.subject[0]
        return _iou(face, self.subject) >= MIN_IOU or np.hypot(ax - bx, ay - by) <= width

    def __call__(self, faces: Sequence[Box], height: int, width: int) -> Box | None:
        """The subject's face this frame, or None (nobody, or the subject is out of sight but
        not yet given up: then keep the previous region, see :attr:`subject`)."""
        faces = [tuple(map(float, f[:4])) for f in faces if _area(tuple(map(float, f[:4]))) > 0]
        same = [f for f in faces if self._continues(f)]
        if same:
            best = max(same, key=lambda f: _iou(f, self.subject))  # type: ignore[arg-type]
            self.subject, self.missed = best, 0
            return best
        if self.subject is not None:
            self.missed += 1
            if self.missed < self.patience:
                return None
            self.reset()
        if not faces:
            return None
        largest = max(_area(f) for f in faces)
        near = [f for f in faces if _area(f) >= (1.0 - SIZE_TIE) * largest]
        cx, cy = 0.5 * width, 0.5 * height
        chosen = min(near, key=lambda f: np.hypot(_centre(f)[0] - cx, _centre(f)[1] - cy))
        self.subject, self.missed = chosen, 0
        return chosen
