"""How still the garment stays on a still person: the bundled clip is one photograph moved by a
known camera path (engine.sample_media.sample_clip_camera), so every output frame can be warped
back to the photograph. Inside the garment area, the temporal standard deviation of the try-on
(warped back) is compared with that of the input frames (their own resampling, exposure and
sensor noise). A garment that sticks to the body varies no more than the input does.

Run from a checkout root: ``python bench/garment_stability.py [FRAMES]``; prints one line.
"""

import sys

import cv2
import numpy as np

sys.path.insert(0, ".")  # the checkout this is run from

from engine import TryOnSession  # noqa: E402
from engine.sample_media import (  # noqa: E402
    read_sample_clip,
    sample_clip_camera,
    sample_garment_path,
)


def _back(image: np.ndarray, source_to_frame: np.ndarray) -> np.ndarray:
    """A frame warped back onto the 512 x 512 source photograph (black outside the frame)."""
    inverse = cv2.invertAffineTransform(source_to_frame)
    return cv2.warpAffine(image, inverse, (512, 512), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT).astype(np.float32)  # fmt: skip


def main(frames: int = 32) -> None:
    clip = read_sample_clip(max_frames=frames)
    mats = sample_clip_camera()[:frames]  # (T, 2, 3) source -> frame
    with TryOnSession("demo", backend="onnxruntime") as session:
        session.set_garment(sample_garment_path())
        outs = [session.process(f, timestamp_s=i / 24).image for i, f in enumerate(clip)]
    inputs = np.stack([_back(f, m) for f, m in zip(clip, mats, strict=True)])
    results = np.stack([_back(o, m) for o, m in zip(outs, mats, strict=True)])
    garment = (np.abs(results - inputs).sum(-1) > 40).mean(0) > 0.8  # covered in most frames
    seen = (inputs.sum(-1) > 0).all(0)
    area = cv2.erode((garment & seen).astype(np.uint8), np.ones((7, 7), np.uint8)).astype(bool)
    sd_in = float(inputs.std(0).mean(-1)[area].mean())
    sd_out = float(results.std(0).mean(-1)[area].mean())
    print(f"{frames} frames, garment area {int(area.sum())} px: temporal std of the input "
          f"{sd_in:.2f}, of the garment {sd_out:.2f} grey levels (ratio {sd_out / sd_in:.2f}; "
          f"target <= 2 x input + 1 = {2 * sd_in + 1:.2f})")  # fmt: skip


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 32)
