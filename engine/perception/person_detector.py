"""Per-frame person perception for the runtime: 18 body keypoints and a person mask, via mediapipe.

:class:`PersonDetector` wraps mediapipe's legacy *solutions* graphs, whose models ship inside the
mediapipe 0.10.21 wheel (nothing is downloaded):

* **Pose**: ``mediapipe.solutions.pose.Pose`` in video mode (``static_image_mode=False``: the
  person detector runs only until a person is found, then the landmark model tracks its region of
  interest from frame to frame). Only ``model_complexity=1`` (``pose_landmark_full.tflite``) is
  in the wheel; 0 (lite) and 2 (heavy) are accepted only where their model file was installed by
  hand next to it, since mediapipe would otherwise try to download it.
* **Segmentation**: by default the pose graph's own segmentation output (``enable_segmentation``):
  the full landmark model has a mask head, so the mask costs a fraction of a separate
  ``selfie_segmentation`` pass (figures: ``bench/results/design-measurements.md``).
  ``segmentation="selfie"`` uses the landscape selfie model instead (a mask
  even when no pose is found); ``"none"`` skips the mask.

**Keypoints.** BlazePose's 33 landmarks map to the 18 OpenPose keypoints of :mod:`engine.keypoints`
(mediapipe's "left"/"right" are the person's own sides, as in this engine):
nose 0, right/left shoulder 12/11, elbow 14/13, wrist 16/15, hip 24/23, knee 26/25, ankle 28/27,
right/left eye 5/2, right/left ear 8/7; the neck is the midpoint of the two shoulders with the
smaller of their two confidences. Coordinates are pixels of the frame (mediapipe's normalized
``x * W``, ``y * H``; origin at the top-left corner). The confidence is the landmark's
``visibility`` (mediapipe's sigmoid score that the point is visible, in [0, 1]), except that a
point outside the frame (``x < 0``, ``x >= W``, ``y < 0`` or ``y >= H``; mediapipe extrapolates
off-frame body parts, e.g. hips and knees under a webcam's bottom edge) gets confidence 0, the
convention of the training data (:mod:`engine.training.synthetic`), so the region builder's rules
for missing points apply. Points with confidence below :data:`engine.keypoints.CONFIDENCE_MIN` are
missing for every consumer.

**Smoothing** (``smoothing=True``). With ``stabilize=True`` (the default), image-based
stabilization (:class:`engine.perception.motion_stabilizer.MotionStabilizer`, every rule in its
module docstring): the grey frame, downscaled to at most 240 rows, is tracked frame to frame
(Lucas-Kanade on corners of the person region, plus a few around every keypoint), the torso's
similarity motion (RANSAC) moves every keypoint, and the head's and limbs' own motion moves
theirs; the pose model's measurement corrects a keypoint only slowly (time constant 10 s) while
it stays within the keypoint's band (0.4 shoulder widths for neck, shoulders and hips, 0.3 for
the limbs, 0.2 for the head: about the most mediapipe wanders on a still person), and replaces it
as soon as it lies beyond the band two frames in a row (a movement the image did not show);
confidences are smoothed over 0.5 s, and a keypoint mediapipe just lost is kept (moved with its
pixels) for up to 5 frames. The neck stays the midpoint of the two stabilized shoulders. Every
track restarts on :meth:`PersonDetector.reset`, a frame without a person, a new frame size, a
timestamp going back, or a jump of the shoulder width by 1.5 times. The first frame of a track
(after a reset or a frame without a person) runs the pose graph twice: mediapipe's first
landmarks come from its person detector's coarse region, the second pass from the landmarks' own
region, as every later frame does (on the bundled clip the first frame's shoulders then err about
as much as the next frames'), and that first position is held, so the garment does not jump as
the track settles. The image motion (previous frame -> this one) is returned as
:attr:`PersonDetection.motion`, for the crop and the person mask to follow
(:class:`engine.inputs.person_crop.PersonCrop`).

**Pose keyframes** (``pose_every``, default :data:`DEFAULT_POSE_EVERY`; stabilizing only). The
pose graph (with its mask head) is most of the detector's cost, so it runs only on *keyframes*;
on the frames between, the image motion the stabilizer measures anyway moves the last keypoints
(:meth:`~engine.perception.motion_stabilizer.MotionStabilizer.predict`: the torso similarity,
plus each head and limb keypoint's local motion; confidences kept) and the last pose frame's mask
(warped by the torso motion composed since that frame, at the graphs' size, then upsampled), and
:class:`PersonDetection` carries keypoints, confidences, mask and motion as on any frame, with
``pose_ran=False`` and a ``"pose"`` time of 0. The rule, checked on every frame after its motion
is tracked and before the pose model would run: the pose model runs when

* ``pose_every`` is 1, or ``pose_every - 1`` frames in a row went without it (at least one frame
  in ``pose_every`` is a keyframe);
* the last frame found no person, or this is a track's first frame (after :meth:`reset`, a
  frame without a person, a new frame size, a timestamp going back: the stabilizer then tracks
  nothing);
* the last face detection saw anyone besides the subject, or lost it; or face detection is due
  (it runs on keyframes only, once :data:`FACE_EVERY` frames have passed);
* there is no mask to move (a track's keyframe without one);
* or the tracking is unsure
  (:meth:`~engine.perception.motion_stabilizer.MotionStabilizer.unsure`, all on this frame):
  a keypoint is not steady (the pose model showed a movement the image did not, or it is
  settling after one), the torso fit is missing or fits fewer than 75 % of its corners, the
  torso motion moves a keypoint by more than 0.08 shoulder widths in the frame, or a shown head
  or limb keypoint has fewer than 3 corners near it, moves against the torso by more than 0.04
  shoulder widths, or its corners disagree by more than 0.02 shoulder widths.

So a person moving fast against their own torso, a cut, or a new person gets the pose model on
that very frame; only a steady, well-tracked person is predicted, for at most ``pose_every - 1``
frames. mediapipe's clock stays that of the video: the legacy graphs stamp each call one 30 fps
frame after the last, and a keyframe after ``k`` skipped frames is stamped ``k`` frames later
(its region-of-interest filter reads the stamps). The CPU this saves and the accuracy it costs,
measured: ``python bench/pose_keyframes.py`` (README).

With ``stabilize=False``, a :class:`engine.perception.one_euro.OneEuroFilter` per coordinate, on
coordinates divided by the frame height (so ``beta`` does not depend on the resolution), driven
by the caller's timestamps; a keypoint that goes missing restarts its track when it comes back, a
frame with no person or a new frame size restarts all of them. The One Euro defaults
(``min_cutoff`` 1 Hz, ``beta`` 10 per frame-height/s) were chosen on the bundled clip, whose true
motion is known (:func:`engine.sample_media.sample_clip_camera`); the jitter and drift they give,
and the alternatives tried, are in ``bench/results/design-measurements.md``. It follows the
pose model's slow drift, which the stabilizer does not. mediapipe's own landmark smoothing is off
(``smooth_landmarks=False``) either way; its mask smoothing option (``smooth_segmentation``)
follows ``smoothing`` but changes nothing in mediapipe 0.10.21's pose graph (the masks are
identical bit for bit); the mask is smoothed along the image motion at crop size instead
(:meth:`engine.inputs.person_crop.PersonCrop.crop_mask`).

**Downscaling** (``pose_max_height``, default 256): frames taller than that go to the graphs
downscaled by an integer factor (640 x 480 -> 320 x 240). The landmark model sees a 256 x 256 crop
around the person either way, so the keypoints barely change, but the pose graph's mask is
computed and warped at the smaller size and upsampled here, which is what saves time. Integer
factors keep OpenCV's area filter on its fast path.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import cv2
import numpy as np

from engine.errors import BackendUnavailableError, InputError, ModelLoadError
from engine.keypoints import CONFIDENCE_MIN, KEYPOINT_INDEX, NUM_KEYPOINTS
from engine.perception.frame_check import check_frame, check_timestamp
from engine.perception.motion_stabilizer import MotionStabilizer, Tracking, compose_motions
from engine.perception.one_euro import DEFAULT_DT_S, OneEuroFilter
from engine.perception.subject import SubjectChooser, subject_region

__all__ = [
    "BLAZEPOSE_TO_OPENPOSE",
    "DEFAULT_BETA",
    "DEFAULT_D_CUTOFF",
    "DEFAULT_MIN_CUTOFF",
    "DEFAULT_POSE_EVERY",
    "DEFAULT_POSE_MAX_HEIGHT",
    "FACE_EVERY",
    "PersonDetection",
    "PersonDetector",
    "SEGMENTATION_MODES",
    "blazepose_to_openpose",
]

BLAZEPOSE_TO_OPENPOSE = (0, -1, 12, 14, 16, 11, 13, 15, 24, 26, 28, 23, 25, 27, 5, 2, 8, 7)
"""For each of the 18 OpenPose keypoints, the BlazePose landmark index (-1: the neck, derived)."""

_GATHER = np.array([max(i, 0) for i in BLAZEPOSE_TO_OPENPOSE])
_NECK = KEYPOINT_INDEX["neck"]
_OPENPOSE_RS, _OPENPOSE_LS = KEYPOINT_INDEX["right_shoulder"], KEYPOINT_INDEX["left_shoulder"]
_NUM_BLAZEPOSE = 33

DEFAULT_MIN_CUTOFF = 1.0
"""One Euro cutoff at rest, Hz (see :mod:`engine.perception.one_euro`)."""
DEFAULT_BETA = 10.0
"""One Euro speed coefficient, per (frame heights per second)."""
DEFAULT_D_CUTOFF = 1.0
"""One Euro cutoff of the speed estimate, Hz."""
DEFAULT_POSE_MAX_HEIGHT = 256
"""Frames taller than this (pixels) are downscaled before the mediapipe graphs."""
FACE_EVERY = 3
"""While the subject is the only face seen, face detection runs on one frame in this many (the
first frame the pose model runs on once that many have passed)."""
DEFAULT_POSE_EVERY = 3
"""The pose model runs on at least one frame in this many (the keyframe rule, module docstring)."""
_GRAPH_FRAME_US = 33333  # what mediapipe's legacy solutions API stamps each process() call with

SEGMENTATION_MODES = ("pose", "selfie", "none")
_POSE_MODELS = {
    0: "pose_landmark_lite.tflite",
    1: "pose_landmark_full.tflite",
    2: "pose_landmark_heavy.tflite",
}


@dataclass(frozen=True)
class PersonDetection:
    """What :class:`PersonDetector` found in one frame.

    Attributes:
        keypoints: ``(18, 3)`` float32 ``(x px, y px, confidence)`` in the format of
            :mod:`engine.keypoints`, or ``None`` when no person was found.
        person_mask: ``(H, W)`` float32 in [0, 1] (1 = person) at the frame's size, or ``None``
            (no person with ``segmentation="pose"``, or ``segmentation="none"``). A fresh array
            the caller owns.
        timings: milliseconds per stage: ``"pose"`` (the mediapipe pose graph, including the mask
            head with ``segmentation="pose"``, twice on a track's first frame when stabilizing),
            ``"segmentation"`` (the selfie graph with ``"selfie"``; otherwise only copying the
            mask out and upsampling it), ``"smoothing"`` (landmark mapping and the stabilizer or
            the One Euro filter). A frame between pose keyframes has no ``"pose"`` (nor
            ``"subject"``) entry, so a stream's pose figures are the keyframes'.
        motion: ``(2, 3)`` float64 image motion of the person's torso from the previous frame to
            this one, frame pixels (a point ``q`` moves to ``motion[:, :2] @ q + motion[:, 2]``),
            or ``None`` (not stabilizing, no person, the first frame of a track, or no
            consistent motion found).
        pose_ran: whether the pose model ran on this frame (``False``: a frame between pose
            keyframes, whose keypoints and mask are the last ones moved by the image motion;
            ``PersonDetector(pose_every=...)``).
    """

    keypoints: np.ndarray | None
    person_mask: np.ndarray | None
    timings: dict[str, float] = field(default_factory=dict)
    motion: np.ndarray | None = None
    pose_ran: bool = True

    @property
    def person_found(self) -> bool:
        """Whether a person (a pose) was found in the frame."""
        return self.keypoints is not None


def blazepose_to_openpose(landmarks: np.ndarray, height: int, width: int) -> np.ndarray:
    """Map BlazePose landmarks to the 18 OpenPose keypoints (rules in the module docstring).

    Args:
        landmarks: ``(33, 3)`` real array of mediapipe's normalized ``(x, y, visibility)``.
        height, width: the frame size in pixels (>= 1).

    Returns:
        ``(18, 3)`` float32 ``(x px, y px, confidence)``; confidence 0 outside the frame.

    Raises:
        InputError: wrong shape or type, or a non-positive size.
    """
    if not isinstance(landmarks, np.ndarray) or landmarks.shape != (_NUM_BLAZEPOSE, 3):
        raise InputError("landmarks", f"a numpy array of shape ({_NUM_BLAZEPOSE}, 3)", landmarks)
    for name, value in (("height", height), ("width", width)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise InputError(name, "an int >= 1 (pixels)", value)
    lm = landmarks.astype(np.float32)
    out = lm[_GATHER].copy()  # (18, 3); the neck row is filled below
    out[:, 0] *= width
    out[:, 1] *= height
    conf = np.nan_to_num(out[:, 2], nan=0.0).clip(0.0, 1.0)
    xs, ys = out[:, 0], out[:, 1]
    inside = (xs >= 0) & (xs < width) & (ys >= 0) & (ys < height)  # False for NaN
    out[:, 2] = np.where(inside, conf, 0.0)
    out[_NECK, :2] = 0.5 * (out[_OPENPOSE_RS, :2] + out[_OPENPOSE_LS, :2])
    out[_NECK, 2] = min(out[_OPENPOSE_RS, 2], out[_OPENPOSE_LS, 2])
    return out


def _check_number(name: str, value: object, low: float, high: float | None = None) -> float:
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    if ok:
        value = float(value)
        ok = math.isfinite(value) and value >= low and (high is None or value <= high)
    if not ok:
        bound = f"in [{low}, {high}]" if high is not None else f">= {low}"
        raise InputError(name, f"a finite number {bound}", value)
    return value


class PersonDetector:
    """Pose keypoints and a person mask per video frame (mediapipe; see the module docstring).

    Construct once per stream (building the mediapipe graphs takes tens of milliseconds) and call
    it on every frame in order; :meth:`reset` before an unrelated stream; :meth:`close` (or a
    ``with`` block) frees the graphs. Not thread-safe: one tracker per thread.

    Args:
        smoothing: smooth the keypoints over time (see ``stabilize``).
        model_complexity: mediapipe pose model, 0 (lite), 1 (full) or 2 (heavy); only 1 ships in
            the mediapipe wheel.
        segmentation: ``"pose"`` (the pose graph's mask, the cheapest), ``"selfie"`` (a separate
            selfie-segmentation pass) or ``"none"``.
        min_detection_confidence: mediapipe's person-detection threshold, in [0, 1].
        min_tracking_confidence: mediapipe's threshold below which tracking is considered lost
            and the detector runs again, in [0, 1].
        min_cutoff: One Euro cutoff at rest, Hz (> 0; ``stabilize=False``).
        beta: One Euro speed coefficient, per (frame heights / s) (>= 0; ``stabilize=False``).
        d_cutoff: One Euro cutoff of the speed estimate, Hz (> 0; ``stabilize=False``).
        pose_max_height: frames taller than this many pixels are downscaled by the smallest
            integer factor that brings them to at most this height (area filter when the factor
            divides both sides, bilinear otherwise; 640 x 480 -> 320 x 240 with the default)
            before the mediapipe graphs; the keypoints still come in full-frame pixels
            (mediapipe's coordinates are normalized) and the mask is upsampled (bilinear) to the
            frame's size. ``None``: always the full frame. See the module docstring for the cost.
        choose_subject: with several people in view, dress the one nearest the camera and the
            centre and stay on them (mediapipe's face detector; :mod:`engine.perception.subject`).
        stabilize: with ``smoothing``, image-based stabilization
            (:class:`~engine.perception.motion_stabilizer.MotionStabilizer`: keypoints move with
            the person's pixels, the pose model corrects them beyond its noise) instead of the
            One Euro filter (``min_cutoff``, ``beta`` and ``d_cutoff`` then apply). See the
            module docstring: what is tracked, the bands and gains, when it resets.
        pose_every: with the stabilizer, the pose model (and its mask) runs on at least one
            frame in this many, and on every frame the keyframe rule of the module docstring
            asks for; the frames between get the last keypoints and mask moved by the image.
            An int in [1, 30]; 1: on every frame. Without the stabilizer (``smoothing=False`` or
            ``stabilize=False``) the pose model runs on every frame whatever this is.

    Raises:
        InputError: an argument is invalid (checked before anything is built).
        ModelLoadError: the pose model of ``model_complexity`` is not installed.
        BackendUnavailableError: mediapipe cannot be imported.
    """

    def __init__(
        self,
        *,
        smoothing: bool = True,
        model_complexity: int = 1,
        segmentation: Literal["pose", "selfie", "none"] = "pose",
        min_detection_confidence: float = 0.5,
        min_tracking_confidence: float = 0.5,
        min_cutoff: float = DEFAULT_MIN_CUTOFF,
        beta: float = DEFAULT_BETA,
        d_cutoff: float = DEFAULT_D_CUTOFF,
        pose_max_height: int | None = DEFAULT_POSE_MAX_HEIGHT,
        choose_subject: bool = True,
        stabilize: bool = True,
        pose_every: int = DEFAULT_POSE_EVERY,
    ) -> None:
        if not isinstance(smoothing, bool):
            raise InputError("smoothing", "True or False", smoothing)
        if isinstance(model_complexity, bool) or model_complexity not in _POSE_MODELS:
            raise InputError("model_complexity", "0, 1 or 2", model_complexity)
        if segmentation not in SEGMENTATION_MODES:
            expected = f"one of {', '.join(map(repr, SEGMENTATION_MODES))}"
            raise InputError("segmentation", expected, segmentation)
        det = _check_number("min_detection_confidence", min_detection_confidence, 0.0, 1.0)
        trk = _check_number("min_tracking_confidence", min_tracking_confidence, 0.0, 1.0)
        filt = OneEuroFilter(min_cutoff=min_cutoff, beta=beta, d_cutoff=d_cutoff)  # validates
        if pose_max_height is not None and (
            isinstance(pose_max_height, bool)
            or not isinstance(pose_max_height, (int, np.integer))
            or pose_max_height < 16
        ):
            raise InputError("pose_max_height", "None or an int >= 16 (pixels)", pose_max_height)

        try:
            import mediapipe
            from mediapipe.python.solutions import pose as _  # noqa: F401  (checked here)
        except ImportError as exc:  # pragma: no cover - mediapipe is a hard dependency
            raise BackendUnavailableError("mediapipe", f"cannot import mediapipe: {exc}") from exc
        model = Path(mediapipe.__file__).parent / "modules" / "pose_landmark"
        model = model / _POSE_MODELS[model_complexity]
        if not model.is_file():
            raise ModelLoadError(
                str(model),
                f"model_complexity={model_complexity} needs this file, which the mediapipe wheel "
                "does not ship (only model_complexity=1 is bundled) and which would otherwise be "
                "downloaded at run time; use model_complexity=1",
            )

        self.smoothing = smoothing
        self.model_complexity = model_complexity
        self.segmentation = segmentation
        self.pose_max_height = None if pose_max_height is None else int(pose_max_height)
        self._filter = filt
        if not isinstance(stabilize, bool):
            raise InputError("stabilize", "True or False", stabilize)
        if (
            isinstance(pose_every, bool)
            or not isinstance(pose_every, (int, np.integer))
            or not (1 <= pose_every <= 30)
        ):
            raise InputError("pose_every", "an int in [1, 30] (frames)", pose_every)
        self.pose_every = int(pose_every)
        self.stabilize = stabilize
        self._stabilizer = MotionStabilizer() if smoothing and stabilize else None
        if not isinstance(choose_subject, bool):
            raise InputError("choose_subject", "True or False", choose_subject)
        self.choose_subject = choose_subject
        self._chooser = SubjectChooser()
        self._alone_for: int | None = None  # frames since a face detection saw the subject alone
        self._faces: Any = None
        self._graph_options = dict(
            static_image_mode=False,
            model_complexity=model_complexity,
            smooth_landmarks=False,
            enable_segmentation=segmentation == "pose",
            smooth_segmentation=smoothing,
            min_detection_confidence=det,
            min_tracking_confidence=trk,
        )
        self._pose: Any = None
        self._selfie: Any = None
        self._graph_size: tuple[int, int] | None = None  # (h, w) the graphs were built for
        self._build_graphs()
        self._size: tuple[int, int] | None = None
        self._last_t: float | None = None
        self._tracking = False  # the previous frame had a pose
        self._skipped = 0  # frames since the pose model last ran
        self._key_mask: np.ndarray | None = None  # the last pose frame's mask, graphs' size
        self._key_motion: np.ndarray | None = None  # image motion since then, frame px
        self._closed = False

    def _build_graphs(self) -> None:
        """(Re)build the mediapipe graphs. Their calculators keep per-size state (the mask
        smoothing holds the previous mask), so a frame of another size needs fresh graphs;
        ``reset()`` alone does not clear it."""
        from mediapipe.python.solutions import pose as mp_pose
        from mediapipe.python.solutions import selfie_segmentation as mp_selfie

        for graph in (self._pose, self._selfie):
            if graph is not None:
                graph.close()
        self._pose = mp_pose.Pose(**self._graph_options)
        self._selfie = None
        if self.segmentation == "selfie":
            self._selfie = mp_selfie.SelfieSegmentation(model_selection=1)
        if self.choose_subject:
            from mediapipe.python.solutions import face_detection as mp_faces

            if self._faces is not None:
                self._faces.close()
            self._faces = mp_faces.FaceDetection(model_selection=1, min_detection_confidence=0.5)

    # ----------------------------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._closed

    def _check_open(self) -> None:
        if self._closed:
            raise BackendUnavailableError(
                "mediapipe", "this PersonDetector is closed; make a new one"
            )

    def reset(self) -> None:
        """Start a new stream: forget the tracked region, the filter state and the timestamps."""
        self._check_open()
        self._pose.reset()
        if self._selfie is not None:
            self._selfie.reset()
        self._chooser.reset()
        self._alone_for = None
        self._filter.reset()
        if self._stabilizer is not None:
            self._stabilizer.reset()
        self._size = None
        self._last_t = None
        self._tracking = False
        self._skipped = 0
        self._key_mask = self._key_motion = None

    def close(self) -> None:
        """Free the mediapipe graphs. Idempotent; the tracker cannot be used afterwards."""
        if self._closed:
            return
        self._closed = True
        for graph in (self._pose, self._selfie, self._faces):
            if graph is not None:
                graph.close()
        self._pose = self._selfie = self._faces = None

    def __enter__(self) -> PersonDetector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _isolate_subject(self, rgb: np.ndarray) -> np.ndarray:
        """``rgb`` with everyone but the chosen subject greyed out (see
        :mod:`engine.perception.subject`); unchanged with one face or none.

        While the last face detection saw exactly the subject and nobody else, the detector runs
        on one frame in :data:`FACE_EVERY` only (the frame is used as is in between, which is
        what one face gives anyway), or on the first frame the pose model runs on after that
        (this is called on those frames only; frames without it count, see
        :meth:`_between_keyframes`): someone stepping in is greyed out from the next detection
        on, at most ``max(FACE_EVERY, pose_every) - 1`` frames late, and cannot take over the
        subject meanwhile (mediapipe's pose graph keeps to the person it tracks)."""
        if self._alone_for is not None and self._alone_for < FACE_EVERY:
            self._alone_for += 1
            return rgb
        h, w = rgb.shape[:2]
        found = self._faces.process(rgb).detections or []
        boxes = []
        for det in found:
            rel = det.location_data.relative_bounding_box
            x0, y0 = rel.xmin * w, rel.ymin * h
            boxes.append((x0, y0, x0 + rel.width * w, y0 + rel.height * h))
        face = self._chooser(boxes, h, w)
        self._alone_for = 1 if len(boxes) == 1 and face is not None else None
        if face is None:
            face = self._chooser.subject  # out of sight for a moment: keep its region
        if face is None or len(boxes) < 2 and self._chooser.missed == 0:
            return rgb
        x0, y0, x1, y1 = subject_region(face, h, w)
        out = np.full_like(rgb, 128)
        out[y0:y1, x0:x1] = rgb[y0:y1, x0:x1]
        return out

    # ----------------------------------------------------------------------------------------

    def __call__(self, frame: np.ndarray, timestamp_s: float | None = None) -> PersonDetection:
        """Find the person in one frame.

        Args:
            frame: ``(H, W, 3)`` uint8 RGB (any size; need not be contiguous).
            timestamp_s: the frame's capture time in seconds, for the smoothing filter (any
                origin, normally increasing; a repeat is taken as one more frame at the stream's
                rate, a step back restarts the filter). ``None``: the previous timestamp plus
                1/30 s (0 for the first frame).

        Returns:
            A :class:`PersonDetection`.

        Raises:
            InputError: ``frame`` is not a non-empty HxWx3 uint8 array, or ``timestamp_s`` is not
                a finite number (checked before any work).
            BackendUnavailableError: the tracker was closed.
        """
        frame = check_frame(frame)
        if timestamp_s is None:
            t = 0.0 if self._last_t is None else self._last_t + DEFAULT_DT_S
        else:
            t = check_timestamp(timestamp_s)
        self._check_open()
        height, width = frame.shape[:2]
        if self._size != (height, width):
            self._filter.reset()
            self._size = (height, width)
        self._last_t = t

        timings: dict[str, float] = {}
        tracking = None
        if self._stabilizer is not None:  # the image motion first: it decides the pose's turn
            start = time.perf_counter()
            tracking = self._stabilizer.track(frame, t)
            timings["smoothing"] = (time.perf_counter() - start) * 1e3
            if self._may_skip_pose(tracking):
                return self._between_keyframes(tracking, height, width, timings)

        start = time.perf_counter()
        limit = self.pose_max_height
        if limit is not None and height > limit:
            k = -(-height // limit)  # integer factor: OpenCV's area filter has a fast path for it
            size = (max(1, round(width / k)), max(1, round(height / k)))  # (w, h) for OpenCV
            exact = height % k == 0 and width % k == 0
            interp = cv2.INTER_AREA if exact else cv2.INTER_LINEAR
            rgb = cv2.resize(frame, size, interpolation=interp)  # (h, w, 3) uint8
        else:
            rgb = np.ascontiguousarray(frame)  # (H, W, 3) uint8
        if self._graph_size is not None and self._graph_size != rgb.shape[:2]:
            self._build_graphs()  # a new frame size: the old graphs would fail on it
            self._alone_for = None
            self._skipped = 0
        self._graph_size = rgb.shape[:2]
        if self._faces is not None:
            t_faces = time.perf_counter()
            rgb = self._isolate_subject(rgb)
            timings["subject"] = (time.perf_counter() - t_faces) * 1e3
        for graph in (self._pose, self._selfie):
            _skip_graph_clock(graph, self._skipped)
        self._skipped = 0
        result = self._pose.process(rgb)
        if self._stabilizer is not None and not self._tracking and result.pose_landmarks:
            result = self._pose.process(rgb)  # a new track: again, from the landmarks' region
        self._tracking = result.pose_landmarks is not None
        timings["pose"] = (time.perf_counter() - start) * 1e3

        start = time.perf_counter()
        mask = None  # (h, w) at the graphs' size until upsampled below
        if self._selfie is not None:
            mask = self._selfie.process(rgb).segmentation_mask
        elif self.segmentation == "pose":
            mask = result.segmentation_mask
        if mask is not None:  # mediapipe's array views graph memory: copy it out
            mask = np.array(mask, dtype=np.float32, copy=True)
        timings["segmentation"] = (time.perf_counter() - start) * 1e3

        start = time.perf_counter()
        keypoints = None
        if result.pose_landmarks is not None:
            lm = np.array(
                [(p.x, p.y, p.visibility) for p in result.pose_landmarks.landmark], np.float32
            )  # (33, 3)
            keypoints = blazepose_to_openpose(lm, height, width)  # (18, 3)
            if self._stabilizer is not None:
                keypoints = self._stabilizer.update(keypoints, mask)
                _neck_between_shoulders(keypoints)  # the neck rule, on stabilized ones
            elif self.smoothing:
                present = keypoints[:, 2] >= CONFIDENCE_MIN  # (18,)
                xy = self._filter(keypoints[:, :2] / height, t, present)  # frame heights
                keypoints[:, :2] = xy * height
        elif self._stabilizer is not None:
            self._stabilizer.update(None)
        elif self.smoothing:  # no person: every track restarts when one is found again
            self._filter(np.zeros((NUM_KEYPOINTS, 2), np.float32), t, np.zeros(NUM_KEYPOINTS, bool))
        timings["smoothing"] = timings.get("smoothing", 0.0) + (time.perf_counter() - start) * 1e3
        self._key_mask = mask
        self._key_motion = np.eye(2, 3)

        start = time.perf_counter()
        mask = _frame_size(mask, height, width)
        timings["segmentation"] += (time.perf_counter() - start) * 1e3
        motion = None if self._stabilizer is None else self._stabilizer.motion
        return PersonDetection(keypoints, mask, timings, motion)

    def _may_skip_pose(self, tracking: Tracking) -> bool:
        """The keyframe rule (module docstring): whether this frame may do without the pose
        model, its keypoints and mask moved from the last ones by ``tracking``."""
        return self._pose_reason(tracking) is None

    def _pose_reason(self, tracking: Tracking) -> str | None:
        """Why the keyframe rule runs the pose model on this frame; ``None``: it need not."""
        stab = self._stabilizer
        if self.pose_every == 1:
            return "every frame"
        if self._skipped + 1 >= self.pose_every:
            return "cadence"
        if not self._tracking:
            return "new track"
        if self._faces is not None and self._alone_for is None:
            return "subject not alone"
        if self.segmentation != "none" and self._key_mask is None:
            return "no mask"
        return stab.unsure(tracking)

    def _between_keyframes(
        self, tracking: Tracking, height: int, width: int, timings: dict[str, float]
    ) -> PersonDetection:
        """A frame without the pose model: the last keypoints and mask moved by the image."""
        start = time.perf_counter()
        self._skipped += 1
        if self._alone_for is not None:
            self._alone_for += 1  # face detection's cadence counts frames
        self._key_motion = compose_motions(self._key_motion, tracking.motion)
        mask = None  # (h, w) at the graphs' size until upsampled below
        if self._key_mask is not None:
            h, w = self._key_mask.shape
            a = _scaled_motion(self._key_motion, w / width, h / height)
            mask = cv2.warpAffine(self._key_mask, a, (w, h), flags=cv2.INTER_LINEAR,
                                  borderMode=cv2.BORDER_REPLICATE)  # fmt: skip
        keypoints = self._stabilizer.predict(mask)
        _neck_between_shoulders(keypoints)
        timings["smoothing"] += (time.perf_counter() - start) * 1e3
        start = time.perf_counter()
        mask = _frame_size(mask, height, width)
        timings["segmentation"] = (time.perf_counter() - start) * 1e3
        # No "pose" (nor "subject") time: a stream's stage figures are those of the keyframes.
        return PersonDetection(keypoints, mask, timings, self._stabilizer.motion, pose_ran=False)


def _neck_between_shoulders(keypoints: np.ndarray) -> None:
    """The neck rule, in place on ``(18, 3)`` keypoints: the neck at the shoulders' midpoint."""
    keypoints[_NECK, :2] = keypoints[[_OPENPOSE_RS, _OPENPOSE_LS], :2].mean(axis=0)


def _frame_size(mask: np.ndarray | None, height: int, width: int) -> np.ndarray | None:
    """A mask at the graphs' size upsampled (bilinear) to the frame's ``(height, width)``."""
    if mask is not None and mask.shape != (height, width):
        mask = cv2.resize(mask, (width, height), interpolation=cv2.INTER_LINEAR)
    return mask


def _scaled_motion(motion: np.ndarray, sx: float, sy: float) -> np.ndarray:
    """A ``(2, 3)`` motion in frame pixels -> in pixels of an image ``sx`` by ``sy`` times the
    frame's size (``S A S^-1``, ``S = diag(sx, sy)``)."""
    out = np.array(motion, dtype=np.float64)
    out[0, 1] *= sx / sy
    out[1, 0] *= sy / sx
    out[0, 2] *= sx
    out[1, 2] *= sy
    return out


def _skip_graph_clock(graph: Any, frames: int) -> None:
    """Advance a mediapipe solution graph's clock over ``frames`` frames it was not given.

    The legacy solutions API stamps every ``process()`` call 33333 us after the previous one (a
    30 frames/s video); the pose graph's region of interest comes from its auxiliary landmarks
    through a One Euro filter (on even with ``smooth_landmarks=False``) that reads those stamps.
    Skipped frames are then a gap in its time, as in the video, not a faster person. The stamps
    only grow, as mediapipe requires."""
    if graph is not None and frames > 0 and hasattr(graph, "_simulated_timestamp"):
        graph._simulated_timestamp += _GRAPH_FRAME_US * frames
