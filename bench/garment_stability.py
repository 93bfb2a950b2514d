"""How still the garment stays on a still person: the bundled clip is one photograph moved by a
known camera path (engine.sample_media.sample_clip_camera), so every output frame can be warped
back to the photograph. Inside the garment area, the temporal standard deviation of the try-on
(warped back) is compared with that of the input frames (their own resampling, exposure and
sensor noise). A garment that sticks to the body varies no more than the input does: the target
is ``garment std <= 2 x input std + 1`` grey levels.

Run from a checkout root: ``python bench/garment_stability.py [FRAMES] [START]
[--no-stabilize]`` (the window of FRAMES frames from START; the stream starts at frame 0); prints
one line (``--no-stabilize``: the person detector's One Euro filter instead of its motion
stabilizer, :class:`engine.perception.person_detector.PersonDetector`). The test
``tests/engine/perception/test_garment_stability.py`` runs :func:`garment_stability` on fewer
frames.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass

import cv2
import numpy as np

sys.path.insert(0, ".")  # the checkout this is run from

from engine import TryOnSession  # noqa: E402
from engine.perception.motion_stabilizer import MotionStabilizer  # noqa: E402
from engine.perception.person_detector import PersonDetection, PersonDetector  # noqa: E402
from engine.sample_media import (  # noqa: E402
    CLIP_HEIGHT,
    CLIP_WIDTH,
    read_sample_clip,
    sample_clip_camera,
    sample_garment_path,
)
from engine.training.synthetic import make_clip  # noqa: E402

SOURCE_SIZE = 512
"""Side of the square source photograph the clip is made from, pixels."""


@dataclass(frozen=True)
class Stability:
    """The measurement of :func:`garment_stability`.

    Attributes:
        frames: frames processed.
        area: pixels of the photograph in the garment area.
        input_std: mean temporal std of the input frames there (grey levels, 0..255).
        garment_std: the same for the try-on output.
        smoothing_ms: median of the detector's ``"smoothing"`` stage (keypoint mapping plus
            stabilizer or filter), milliseconds per frame.
    """

    frames: int
    area: int
    input_std: float
    garment_std: float
    smoothing_ms: float

    @property
    def target(self) -> float:
        """``2 * input_std + 1``: the most the garment may vary."""
        return 2.0 * self.input_std + 1.0


def _back(image: np.ndarray, source_to_frame: np.ndarray) -> np.ndarray:
    """A frame warped back onto the source photograph (black outside the frame)."""
    inverse = cv2.invertAffineTransform(source_to_frame)
    return cv2.warpAffine(image, inverse, (SOURCE_SIZE, SOURCE_SIZE), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT).astype(np.float32)  # fmt: skip


def garment_stability(frames: int = 32, *, stabilize: bool = True, start: int = 0) -> Stability:
    """Try the bundled garment on the bundled clip (demo model, onnxruntime,
    :meth:`TryOnSession.process` at 24 frames/s, from its first frame) and measure how still it
    stays over frames ``start .. start + frames - 1`` (:func:`measure`)."""
    clip = read_sample_clip(max_frames=start + frames)
    mats = sample_clip_camera()[: len(clip)]  # (T, 2, 3) source -> frame
    return _run(clip, mats, PersonDetector(stabilize=stabilize), start)


def _run(clip, mats, tracker, start: int) -> Stability:
    with TryOnSession("demo", backend="onnxruntime", tracker=tracker) as session:
        session.set_garment(sample_garment_path())
        results = [session.process(f, timestamp_s=i / 24) for i, f in enumerate(clip)]
    return measure(clip[start:], mats[start:], results[start:])


def measure(clip, mats, results) -> Stability:
    """The garment's stillness over ``clip`` (frames made from a SOURCE_SIZE square photograph by
    ``mats``, (T, 2, 3) source -> frame) and the session's ``results`` on them.

    The garment area: photograph pixels where the output differs from the input (sum over RGB
    > 40 levels) in more than 80 % of the frames, seen in every frame, eroded by 3 pixels.
    """
    outs = [r.image for r in results]
    inputs = np.stack([_back(f, m) for f, m in zip(clip, mats, strict=True)])
    back = np.stack([_back(o, m) for o, m in zip(outs, mats, strict=True)])
    garment = (np.abs(back - inputs).sum(-1) > 40).mean(0) > 0.8  # covered in most frames
    seen = (inputs.sum(-1) > 0).all(0)
    area = cv2.erode((garment & seen).astype(np.uint8), np.ones((7, 7), np.uint8)).astype(bool)
    smoothing = [r.timings["smoothing"] for r in results if "smoothing" in r.timings]
    return Stability(
        frames=len(clip),
        area=int(area.sum()),
        input_std=float(inputs.std(0).mean(-1)[area].mean()),
        garment_std=float(back.std(0).mean(-1)[area].mean()),
        smoothing_ms=float(np.median(smoothing)) if smoothing else float("nan"),
    )


class SyntheticDetector:
    """The detector for :func:`synthetic_stability`: the known keypoints of the synthetic photo
    moved by the camera, with the jitter of a pose model (Gaussian, ``noise_px`` per coordinate,
    confidence 0.9) and a segmenter-like mask (the person's silhouette moved by the camera, its
    edge blurred and wobbling), stabilized by the product's
    :class:`~engine.perception.motion_stabilizer.MotionStabilizer` as
    :class:`~engine.perception.person_detector.PersonDetector` does."""

    def __init__(self, keypoints, mask, mats, *, noise_px: float, seed: int) -> None:
        self.keypoints, self.mask, self.mats = keypoints, mask, mats
        self.noise_px = noise_px
        self.rng = np.random.default_rng(seed)
        self.stabilizer = MotionStabilizer()
        self.index = 0

    def __call__(self, frame: np.ndarray, timestamp_s: float) -> PersonDetection:
        m = self.mats[self.index]
        self.index += 1
        h, w = frame.shape[:2]
        kp = self.keypoints.copy()
        kp[:, :2] = kp[:, :2] @ m[:, :2].T + m[:, 2]
        kp[:, :2] += self.rng.normal(0.0, self.noise_px, (len(kp), 2))
        inside = (kp[:, 0] >= 0) & (kp[:, 0] < w) & (kp[:, 1] >= 0) & (kp[:, 1] < h)
        kp[:, 2] = np.where((self.keypoints[:, 2] > 0) & inside, 0.9, 0.0)
        mask = cv2.warpAffine(self.mask, m, (w, h), flags=cv2.INTER_LINEAR)
        sigma = 1.5 + self.rng.uniform(-0.5, 0.5)  # the edge's softness wobbles
        mask = cv2.GaussianBlur(mask, (0, 0), sigma)
        mask = np.clip(mask + self.rng.normal(0.0, 0.03, mask.shape), 0.0, 1.0).astype(np.float32)
        t0 = time.perf_counter()
        stable = self.stabilizer(frame, kp.astype(np.float32), timestamp_s, person_mask=mask)
        timings = {"smoothing": (time.perf_counter() - t0) * 1e3}
        return PersonDetection(stable, mask, timings, motion=self.stabilizer.motion)

    def reset(self) -> None:
        self.stabilizer.reset()

    def close(self) -> None:
        pass


def synthetic_stability(
    frames: int = 24, *, seed: int = 10, noise_px: float = 1.5, sensor_noise: float = 2.0
) -> Stability:
    """:func:`garment_stability` on a synthetic still person (``engine.training.synthetic``, clip
    ``seed``, rendered as a SOURCE_SIZE square photograph) under the bundled clip's camera path,
    with sensor noise (Gaussian, ``sensor_noise`` grey levels) on every frame and the
    :class:`SyntheticDetector` (mediapipe does not see synthetic people)."""
    person = make_clip(seed, frames=1, height=SOURCE_SIZE, width=SOURCE_SIZE)
    photo = (person.frames[0].permute(1, 2, 0).numpy() * 255.0).round().astype(np.uint8)
    mats = sample_clip_camera()[:frames]
    rng = np.random.default_rng(seed)
    clip = []
    for m in mats:
        f = cv2.warpAffine(photo, m, (CLIP_WIDTH, CLIP_HEIGHT), flags=cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_REFLECT).astype(np.float32)  # fmt: skip
        f += rng.normal(0.0, sensor_noise, f.shape)
        clip.append(np.clip(f, 0, 255).round().astype(np.uint8))
    detector = SyntheticDetector(person.clean_keypoints[0].numpy().astype(np.float64),
                                 person.person_mask[0, 0].numpy(), mats, noise_px=noise_px,
                                 seed=seed + 1)  # fmt: skip
    return _run(np.stack(clip), mats, detector, 0)


def main(argv: list[str]) -> None:
    stabilize = "--no-stabilize" not in argv
    numbers = [int(a) for a in argv if not a.startswith("--")]
    start = numbers[1] if len(numbers) > 1 else 0
    if "--synthetic" in argv:
        s = synthetic_stability(numbers[0] if numbers else 24)
    else:
        s = garment_stability(numbers[0] if numbers else 32, stabilize=stabilize, start=start)
    print(f"{s.frames} frames from frame {start}, garment area {s.area} px: temporal std of "
          f"the input {s.input_std:.2f}, of the garment {s.garment_std:.2f} grey levels (ratio "
          f"{s.garment_std / s.input_std:.2f}; target <= 2 x input + 1 = {s.target:.2f}); "
          f"{'stabilizer' if stabilize else 'One Euro filter'}, smoothing stage "
          f"{s.smoothing_ms:.2f} ms/frame (median)")  # fmt: skip


if __name__ == "__main__":
    main(sys.argv[1:])
