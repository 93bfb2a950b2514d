"""The paste stage: the model-size try-on composited back into the full frame.

Inside the crop box only, where the warped garment lies (``mode="garment"``) or in the whole
try-on region (``mode="region"``): the crop is resized to the box, the mask's complement is the
"keep the frame" weight, and :func:`kernels.composite` blends them (feathered, straight to
uint8 HWC). Pixels outside the box are never touched.
"""

from __future__ import annotations

from typing import Literal

import cv2
import numpy as np
import torch

from engine.inputs.person_crop import CropBox, PersonCrop
from kernels.composite import composite

__all__ = ["PASTE_MODES", "Paste"]

PASTE_MODES = ("garment", "region")


class Paste:
    """Composite a (1, 3, h, w) try-on crop into a copy of the frame.

    Args:
        mode: ``"garment"`` or ``"region"`` (see the module docstring).
        feather: Gaussian sigma in crop (model) pixels, scaled to the box.
        model_width: the model's input width w (pixels), to scale ``feather``.
    """

    def __init__(self, mode: Literal["garment", "region"], feather: float, model_width: int):
        self.mode = mode
        self.feather = float(feather)
        self.model_width = model_width

    def __call__(
        self,
        frame: np.ndarray,
        box: CropBox,
        tryon: torch.Tensor,
        cloth_alpha: torch.Tensor,
        region: torch.Tensor,
    ) -> np.ndarray:
        """``frame`` (H, W, 3) uint8 with ``tryon`` (1, 3, h, w) float32 in [0, 1] pasted into
        ``box``, weighted by ``cloth_alpha`` (the warped garment's alpha) or ``region`` (the
        try-on region), both (1, 1, h, w) float32: a new array."""
        image = frame.copy()
        placed = PersonCrop.paste_region(box, frame.shape[0], frame.shape[1])
        if placed is None:
            return image
        frame_part, box_part, (bh, bw) = placed
        crop_rgb = tryon[0].permute(1, 2, 0).numpy()  # (h, w, 3) float32 view
        up = cv2.resize(crop_rgb, (bw, bh), interpolation=cv2.INTER_LINEAR)  # a fresh array
        np.clip(up, 0.0, 1.0, out=up)
        mask = region if self.mode == "region" else cloth_alpha
        keep = 1.0 - cv2.resize(mask[0, 0].numpy(), (bw, bh), interpolation=cv2.INTER_LINEAR)
        np.clip(keep, 0.0, 1.0, out=keep)
        up_t = torch.from_numpy(up[box_part]).permute(2, 0, 1)[None]  # (1, 3, h', w') view
        keep_t = torch.from_numpy(keep[box_part])[None, None]  # (1, 1, h', w') view
        background = torch.from_numpy(frame[frame_part]).permute(2, 0, 1)[None]
        background = background.to(torch.float32).div_(255.0)
        scale = bw / self.model_width
        # cloth = rendered = the try-on crop: its mask is irrelevant (the keep mask is reused)
        out = composite(up_t, up_t, keep_t, background, keep_t,
                        feather=min(10.0, self.feather * scale), out_dtype=torch.uint8,
                        out_layout="nhwc")  # fmt: skip
        image[frame_part] = out[0].numpy()
        return image
