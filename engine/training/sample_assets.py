"""Regenerating the bundled sample media (``engine/assets/``) from its sources.

``python -m engine.training.sample_assets`` rewrites ``sample_clip.mp4`` (rendered by
:func:`engine.sample_media.render_sample_clip` from ``astronaut.png``) and ``sample_garment.png``
(a garment of :mod:`engine.training.synthetic`). This lives beside the synthetic data because the
garment is drawn by it; the runtime only reads the files (:mod:`engine.sample_media`).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from engine.errors import InputError
from engine.sample_media import (
    ASSETS_DIR,
    CLIP_FPS,
    CLIP_HEIGHT,
    CLIP_NAME,
    CLIP_WIDTH,
    GARMENT_HEIGHT,
    GARMENT_NAME,
    GARMENT_SEED,
    GARMENT_WIDTH,
    render_sample_clip,
)
from engine.training.synthetic import make_clip

__all__ = ["render_sample_garment", "write_sample_assets"]


def render_sample_garment() -> np.ndarray:
    """Render the sample garment: ``(512, 384, 4)`` uint8 RGBA, RGB 0 where alpha is 0.

    The flat garment of :func:`engine.training.synthetic.make_clip` for seed :data:`GARMENT_SEED`
    drawn at 512 x 384 (a striped t-shirt with a chest logo; about 1 s on a 2-core CPU).
    """
    rgba = make_clip(GARMENT_SEED, frames=1, height=GARMENT_HEIGHT, width=GARMENT_WIDTH).garment
    arr = rgba.permute(1, 2, 0).numpy()  # (Hg, Wg, 4) float32 in [0, 1]
    return np.clip(arr * 255.0 + 0.5, 0.0, 255.0).astype(np.uint8)


def write_sample_assets(out_dir: str | Path | None = None) -> dict[str, Path]:
    """Regenerate the clip and the garment (the source photo is read, not written).

    Args:
        out_dir: where to write; ``None`` = :data:`ASSETS_DIR` (overwrites the bundled files).

    Returns:
        ``{"clip": path, "garment": path}``.

    Raises:
        InputError: ``out_dir`` is not a path or names an existing non-directory.
        RuntimeError: OpenCV cannot write ``mp4v`` video here, or the written clip does not read
            back with every frame.
    """
    if out_dir is not None and not isinstance(out_dir, (str, Path)):
        raise InputError("out_dir", "None or a directory path", out_dir)
    folder = ASSETS_DIR if out_dir is None else Path(out_dir)
    if folder.exists() and not folder.is_dir():
        raise InputError("out_dir", "a directory path", str(folder))
    folder.mkdir(parents=True, exist_ok=True)

    frames = render_sample_clip()
    clip_path = folder / CLIP_NAME
    writer = cv2.VideoWriter(
        str(clip_path), cv2.VideoWriter_fourcc(*"mp4v"), CLIP_FPS, (CLIP_WIDTH, CLIP_HEIGHT)
    )
    if not writer.isOpened():
        raise RuntimeError(f"OpenCV cannot write mp4v video to {clip_path}")
    try:
        for frame in frames:
            writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    finally:
        writer.release()
    cap = cv2.VideoCapture(str(clip_path))
    count = 0
    while cap.read()[0]:
        count += 1
    cap.release()
    if count != len(frames):
        raise RuntimeError(f"{clip_path} reads back {count} frames, wrote {len(frames)}")

    garment_path = folder / GARMENT_NAME
    rgba = render_sample_garment()
    if not cv2.imwrite(
        str(garment_path), cv2.cvtColor(rgba, cv2.COLOR_RGBA2BGRA), [cv2.IMWRITE_PNG_COMPRESSION, 9]
    ):
        raise RuntimeError(f"OpenCV cannot write {garment_path}")
    return {"clip": clip_path, "garment": garment_path}


if __name__ == "__main__":
    for kind, written in write_sample_assets().items():
        print(f"{kind}: {written} ({written.stat().st_size} bytes)")
