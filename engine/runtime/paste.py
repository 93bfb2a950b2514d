"""The paste stage: the try-on composited back into the full frame, sharp, in one fused op.

Inside the crop box only (pixels outside it are never touched), :func:`kernels.paste` per frame
pixel: bilinear upsampling of the generator's model-size ``rendered`` image and ``cloth_mask``
and of the keep mask, the garment texture sampled *at its own resolution* through the upsampled
thin-plate-spline grid (so its detail survives the 4x upsampling that used to blur it), the
two-stage composite, and the blend into the uint8 frame.

What replaces the frame (``mode``):

- ``"garment"``: where the new garment lies on the body (and there the garment's own texture
  wherever the warp put it: the cloth mask is the larger of the generator's and the warped
  alpha): the ``paste_mask`` of
  :func:`engine.inputs.frame_inputs.frame_inputs` (the warped garment on the person, forearms and
  hands in front of the torso and the head kept as filmed), or the warped garment's alpha when
  the inputs carry no paste mask;
- ``"region"``: the whole regenerated try-on region.

The shading map of the inputs (``shading``: the low-passed luminance ratio of the clothing
underneath, :func:`engine.inputs.tryon_region.clothing_shading`) multiplies the sampled garment,
so the folds and shadows of the person's own clothes show through the new one.

The mask is feathered at model size (Gaussian, ``feather`` model pixels) before the upsampling,
so the edge is soft at any box size and costs nothing per frame pixel.

Where: on the device of the generator's outputs. The model-size maps move there (a few hundred KB;
nothing moves when the inputs were built there), the frame goes up once and the result comes down
once (:class:`engine.runtime.frame_transfer.FrameTransfer`): a frame that
:class:`engine.runtime.stages.BuildInputs` already uploaded (``device_frame``) is pasted into in
place instead of being uploaded again. The garment's texture is moved once per garment and device.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch

from engine.errors import InputError
from engine.inputs.person_crop import CropBox
from engine.runtime.frame_transfer import FrameTransfer
from kernels.gaussian_blur import gaussian_blur
from kernels.paste import paste

__all__ = ["PASTE_MODES", "Paste"]

PASTE_MODES = ("garment", "region")
_READ = ("cloth", "paste_mask", "shading", "region", "garment_grid")
"""The inputs the paste reads (moved to its device; nothing moves on the CPU)."""


class Paste:
    """Paste a generated crop into a copy of the frame.

    Args:
        mode: ``"garment"`` or ``"region"`` (see the module docstring).
        feather: Gaussian sigma of the mask's edge, in model pixels (0: a hard edge).
        impl: the :func:`kernels.paste` implementation (``"auto"``: Triton on CUDA tensors,
            the OpenCV path on the CPU).
    """

    def __init__(
        self, mode: Literal["garment", "region"], feather: float, *, impl: str = "auto"
    ) -> None:
        self.mode = mode
        self.feather = float(feather)
        self.impl = impl
        self._transfers: dict[torch.device, FrameTransfer] = {}
        self._texture: tuple[torch.Tensor, torch.Tensor] | None = None  # (host, on device)

    def _on(self, garment_rgba: torch.Tensor, device: torch.device) -> torch.Tensor:
        """The garment's texture on ``device``, moved once per garment and device."""
        if garment_rgba.device == device:
            return garment_rgba
        cached = self._texture
        if cached is None or cached[0] is not garment_rgba or cached[1].device != device:
            cached = (garment_rgba, garment_rgba.to(device))
            self._texture = cached
        return cached[1]

    def keep_mask(self, paste_mask: torch.Tensor) -> torch.Tensor:
        """``1 - feathered(paste_mask)``: (1, 1, h, w) float32 in [0, 1], 1 = keep the frame."""
        mask = paste_mask.to(torch.float32).clamp(0.0, 1.0)
        if self.feather > 0:
            ksize = 2 * int(np.ceil(3 * self.feather)) + 1
            mask = gaussian_blur(mask.contiguous(), ksize, self.feather).clamp_(0.0, 1.0)
        return 1.0 - mask

    def __call__(
        self,
        frame: np.ndarray,
        box: CropBox,
        outputs: dict[str, torch.Tensor],
        inputs: dict[str, torch.Tensor],
        garment_rgba: torch.Tensor,
        *,
        device_frame: torch.Tensor | None = None,
    ) -> np.ndarray:
        """A new (H, W, 3) uint8 frame with the try-on pasted into ``box``.

        Args:
            frame: (H, W, 3) uint8 RGB, the frame as filmed (left unchanged).
            box: the crop box (frame pixels, may extend past the frame).
            outputs: the generator's ``rendered`` (1, 3, h, w) and ``cloth_mask`` (1, 1, h, w),
                float32 on the device the paste runs on.
            inputs: this frame's generator inputs and extras: ``garment_grid`` (1, h, w, 2),
                ``region`` (1, 1, h, w) and, when present, ``paste_mask`` (1, 1, h, w).
            garment_rgba: (4, Hg, Wg) float32, premultiplied RGB and alpha.
            device_frame: ``None`` or this frame already uploaded: an (H, W, 3) uint8 tensor
                holding ``frame`` (:meth:`FrameTransfer.upload`), which the paste then writes
                into (it is consumed) instead of uploading the frame again; one on another
                device than the outputs is not used (the frame is uploaded).

        Raises:
            InputError: ``device_frame`` is not None nor a uint8 tensor of ``frame``'s shape.
        """
        if device_frame is not None and (
            not isinstance(device_frame, torch.Tensor)
            or device_frame.dtype != torch.uint8
            or tuple(device_frame.shape) != tuple(frame.shape)
        ):
            raise InputError("device_frame", f"None or a uint8 tensor of shape {frame.shape}",
                             device_frame)  # fmt: skip
        device = outputs["rendered"].device
        inputs = {k: inputs[k].to(device, non_blocking=True) for k in _READ if k in inputs}
        cloth_mask = outputs["cloth_mask"]
        shading = inputs.get("shading")  # the clothing's folds and shadows, on the new garment
        if self.mode == "region":
            mask = inputs["region"]
        else:
            mask = inputs.get("paste_mask")
            if mask is None:
                mask = inputs["cloth"][:, 3:4]
            # Wherever the warp put garment, show the garment's own texture (sharp), not the
            # generator's blurrier rendered person: the generator's mask can only add cloth.
            cloth_mask = torch.maximum(cloth_mask, inputs["cloth"][:, 3:4])
        transfer = self._transfers.get(device)
        if transfer is None:
            transfer = self._transfers[device] = FrameTransfer(device)
        if device_frame is not None and device_frame.device == device:
            target = device_frame  # uploaded once by the inputs stage; written in place
        else:
            target = transfer.upload(frame)  # (H, W, 3) uint8 on the device, written in place
        paste(target, (box.x0, box.y0, box.width, box.height), outputs["rendered"],
              cloth_mask, self.keep_mask(mask), self._on(garment_rgba, device),
              inputs["garment_grid"], shading=shading, impl=self.impl)  # fmt: skip
        return transfer.download(target)
