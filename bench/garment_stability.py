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
from dataclasses import dataclass

import cv2
import numpy as np

sys.path.insert(0, ".")  # the checkout this is run from

from engine import TryOnSession  # noqa: E402
from engine.perception.person_detector import PersonDetector  # noqa: E402
from engine.sample_media import (  # noqa: E402
    read_sample_clip,
    sample_clip_camera,
    sample_garment_path,
)

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
    stays over frames ``start .. start + frames - 1``.

    The garment area: photograph pixels where the output differs from the input (sum over RGB
    > 40 levels) in more than 80 % of the frames, seen in every frame, eroded by 3 pixels.
    """
    clip = read_sample_clip(max_frames=start + frames)
    mats = sample_clip_camera()[: len(clip)]  # (T, 2, 3) source -> frame
    tracker = PersonDetector(stabilize=stabilize)
    with TryOnSession("demo", backend="onnxruntime", tracker=tracker) as session:
        session.set_garment(sample_garment_path())
        results = [session.process(f, timestamp_s=i / 24) for i, f in enumerate(clip)]
    clip, mats, results = clip[start:], mats[start:], results[start:]  # the measured window
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


def main(argv: list[str]) -> None:
    stabilize = "--no-stabilize" not in argv
    numbers = [int(a) for a in argv if not a.startswith("--")]
    start = numbers[1] if len(numbers) > 1 else 0
    s = garment_stability(numbers[0] if numbers else 32, stabilize=stabilize, start=start)
    print(f"{s.frames} frames from frame {start}, garment area {s.area} px: temporal std of "
          f"the input {s.input_std:.2f}, of the garment {s.garment_std:.2f} grey levels (ratio "
          f"{s.garment_std / s.input_std:.2f}; target <= 2 x input + 1 = {s.target:.2f}); "
          f"{'stabilizer' if stabilize else 'One Euro filter'}, smoothing stage "
          f"{s.smoothing_ms:.2f} ms/frame (median)")  # fmt: skip


if __name__ == "__main__":
    main(sys.argv[1:])
