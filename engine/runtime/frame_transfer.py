"""A frame's one trip to the paste's device and the result's one trip back.

The generator's outputs stay on the runner's device; the paste runs there too (the Triton kernel
on CUDA), so a frame crosses the bus twice: up once before the paste, the composited result down
once after it. Both go through page-locked (pinned) staging buffers allocated once per frame size,
so the copies are DMA transfers rather than pageable copies. On the CPU the same two calls are a
copy of the frame into a new tensor (the frame as filmed is never written) and a zero-copy view
back as numpy.
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["FrameTransfer"]


class FrameTransfer:
    """Upload frames to ``device`` and download results, through reused pinned buffers.

    One instance serves one thread (the paste stage): a buffer is reused by the next frame only
    after :meth:`download` has waited for the device.

    Args:
        device: where the paste runs, e.g. ``"cpu"`` or ``"cuda:0"``.
    """

    def __init__(self, device: str | torch.device) -> None:
        self.device = torch.device(device)
        self._up: torch.Tensor | None = None
        self._down: torch.Tensor | None = None

    def _pinned(self, buffer: torch.Tensor | None, shape: tuple[int, ...]) -> torch.Tensor:
        if buffer is None or tuple(buffer.shape) != shape:
            buffer = torch.empty(shape, dtype=torch.uint8, pin_memory=True)
        return buffer

    def upload(self, frame: np.ndarray) -> torch.Tensor:
        """A new (H, W, 3) uint8 tensor on the device holding ``frame`` ((H, W, 3) uint8 numpy,
        any strides; left unchanged)."""
        if self.device.type == "cpu":
            return torch.from_numpy(np.array(frame, dtype=np.uint8, order="C"))
        self._up = self._pinned(self._up, tuple(frame.shape))
        np.copyto(self._up.numpy(), frame)
        return self._up.to(self.device, non_blocking=True)

    def download(self, image: torch.Tensor) -> np.ndarray:
        """(H, W, 3) uint8 numpy array of ``image`` (a tensor from :meth:`upload`, written since);
        a new array the caller owns. Waits for the device's work on it."""
        if image.device.type == "cpu":
            return image.numpy()
        self._down = self._pinned(self._down, tuple(image.shape))
        self._down.copy_(image, non_blocking=True)
        torch.cuda.current_stream(image.device).synchronize()
        return self._down.numpy().copy()
