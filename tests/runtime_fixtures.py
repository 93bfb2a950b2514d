"""Shared helpers of the runtime tests: a tiny generator and a scripted person detector.

The scripted detector stands in for mediapipe where a test is about the runtime itself (threads,
queues, memory, ordering) and must run thousands of frames quickly; tests of the real pipeline use
the mediapipe :class:`engine.perception.person_detector.PersonDetector` on the bundled clip.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from engine.keypoints import KEYPOINT_INDEX
from engine.model.mpdt_generator import MPDTConfig, MPDTGenerator
from engine.model.weights import save_generator
from engine.perception.person_detector import PersonDetection

TINY = dict(height=32, width=24, frames=2, channels=8, blocks=1, head_divisors=(1, 2))


def tiny_model_file(directory: Path) -> Path:
    """A randomly initialized 32x24 generator saved as a weights file (milliseconds per frame)."""
    torch.manual_seed(0)
    model = MPDTGenerator(MPDTConfig(name="tiny", **TINY))
    return save_generator(model, Path(directory) / "tiny.safetensors", notes="test")


def upright_pose(height: int, width: int) -> np.ndarray:
    """(18, 3) keypoints of a person facing the camera, shoulders at 40 % of the frame height."""
    k = np.zeros((18, 3), np.float32)
    cx, sw = width / 2, width * 0.3
    points = {
        "nose": (cx, height * 0.2),
        "neck": (cx, height * 0.4),
        "right_shoulder": (cx - sw / 2, height * 0.4),
        "left_shoulder": (cx + sw / 2, height * 0.4),
        "right_elbow": (cx - sw * 0.6, height * 0.6),
        "left_elbow": (cx + sw * 0.6, height * 0.6),
        "right_hip": (cx - sw * 0.35, height * 0.9),
        "left_hip": (cx + sw * 0.35, height * 0.9),
        "right_eye": (cx - sw * 0.1, height * 0.17),
        "left_eye": (cx + sw * 0.1, height * 0.17),
    }
    for name, (x, y) in points.items():
        k[KEYPOINT_INDEX[name]] = (x, y, 0.9)
    return k


def make_lively(model: MPDTGenerator) -> MPDTGenerator:
    """Scale a freshly initialized generator's weights up (in place) so that its output depends
    visibly (~1e-2) on the other frames of its window and on which slot is decoded: as
    initialized, normalized features and small decoder weights make those effects ~1e-6, and no
    window or slot bug would show."""
    with torch.no_grad():
        for module in (model.encode_cloth, model.encode_pose, model.encode_background,
                       model.decoder, *model.blocks):  # fmt: skip
            for conv in module.modules():
                if isinstance(conv, torch.nn.Conv2d):
                    conv.weight.mul_(3.0)
        model.norm_out.weight.mul_(5.0)
        model.temporal.mix.weight.normal_(0.0, 0.2)
    return model


class ScriptedTracker:
    """A detector that finds the :func:`upright_pose` in every frame whose mean is above 8
    (a black frame has no person). Counts its calls."""

    def __init__(self) -> None:
        self.calls = 0
        self.closed = False

    def __call__(self, frame: np.ndarray, timestamp_s: float | None = None) -> PersonDetection:
        self.calls += 1
        if float(frame.mean()) <= 8:
            return PersonDetection(None, None, {"pose": 0.0})
        h, w = frame.shape[:2]
        return PersonDetection(upright_pose(h, w), None, {"pose": 0.0})

    def reset(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True
