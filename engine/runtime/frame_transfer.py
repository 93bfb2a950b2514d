"""A frame's one trip to the session's device and the result's one trip back.

The generator's outputs stay on the runner's device; the crop, the inputs and the paste run there
too (the Triton kernels on CUDA), so a frame crosses the bus twice: up once before the crop
(:class:`engine.runtime.stages.BuildInputs`; the paste writes into that same device copy), the
composited result down once after the paste. Both go through page-locked (pinned) staging memory,
so the copies are DMA transfers rather than pageable copies: the upload's staging block comes from
torch's caching host allocator (after the first frames no new page-locked memory is allocated,
and a block is handed out again only once the copy that read it has run, so the next frame can
be staged while the previous one is still on its way, from any thread); the download's buffer is
allocated once per frame size. On the CPU the same two calls are a copy of the frame into a new
tensor (the frame as filmed is never written) and a zero-copy view back as numpy.
"""

from __future__ import annotations

import numpy as np
import torch

from engine.errors import InputError

__all__ = ["FrameTransfer"]

_DTYPES = {np.dtype(np.uint8): torch.uint8, np.dtype(np.float32): torch.float32}


class FrameTransfer:
    """Upload frames (and other host arrays) to ``device`` and download results.

    :meth:`upload` may be called from any thread; :meth:`download` serves one thread (the paste
    stage): its buffer is reused by the next result only after it has waited for the device.

    Args:
        device: where the frames go, e.g. ``"cpu"`` or ``"cuda:0"``.
    """

    def __init__(self, device: str | torch.device) -> None:
        try:
            self.device = torch.device(device)
        except (TypeError, RuntimeError):
            raise InputError("device", "a torch device, e.g. 'cpu' or 'cuda:0'", device) from None
        self._down: torch.Tensor | None = None

    def upload(self, frame: np.ndarray) -> torch.Tensor:
        """A new tensor on the device holding ``frame`` (left unchanged).

        Args:
            frame: a uint8 or float32 numpy array of any shape and strides: the (H, W, 3) uint8
                frame, or a small host array such as a cropped mask.

        Returns:
            a tensor of the same shape and dtype on :attr:`device`, contiguous, which the
            caller owns (the paste writes into it); on CUDA the copy is queued, not waited for.

        Raises:
            InputError: ``frame`` is not a uint8 or float32 numpy array.
        """
        if not isinstance(frame, np.ndarray) or frame.dtype not in _DTYPES:
            raise InputError("frame", "a uint8 or float32 numpy array", frame)
        if self.device.type == "cpu":
            return torch.from_numpy(np.array(frame, order="C"))
        staging = torch.empty(frame.shape, dtype=_DTYPES[frame.dtype], pin_memory=True)
        np.copyto(staging.numpy(), frame)
        return staging.to(self.device, non_blocking=True)

    def download(self, image: torch.Tensor) -> np.ndarray:
        """(H, W, 3) uint8 numpy array of ``image`` (a tensor from :meth:`upload`, written since);
        a new array the caller owns. Waits for the device's work on it."""
        if image.device.type == "cpu":
            return image.numpy()
        if self._down is None or tuple(self._down.shape) != tuple(image.shape):
            self._down = torch.empty(tuple(image.shape), dtype=torch.uint8, pin_memory=True)
        self._down.copy_(image, non_blocking=True)
        torch.cuda.current_stream(image.device).synchronize()
        return self._down.numpy().copy()
