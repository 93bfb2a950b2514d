"""Per-thread scratch buffers for the inputs' large CPU temporaries.

A frame's inputs need a few temporaries far larger than their outputs (the thin-plate spline's
radial kernel is ``H x W x N`` floats: 1.5 MB at 128x96 with 31 control points). Allocated fresh
every frame, such a block comes from the C allocator as new pages (glibc maps blocks that size
from the system and trims its heap back once they are freed), and the first touch of each page
faults: on this 2-core CPU the page faults of one warp cost more than its arithmetic (about 1,400
faults, 2.5 ms a frame, against 1 ms of logs and matrix products). :func:`scratch` keeps one
buffer per name, thread and device and hands out views of it, grown when a larger one is asked
for, so a stream touches the same pages every frame.

A view is valid until the same thread asks for the same name again: use it for temporaries
that do not leave the function (never return one, nor keep a tensor that views it).
"""

from __future__ import annotations

import math
import threading

import torch

__all__ = ["scratch"]


class _Buffers(threading.local):
    def __init__(self) -> None:
        self.flat: dict[tuple[str, str, torch.dtype], torch.Tensor] = {}


_BUFFERS = _Buffers()


def scratch(
    name: str,
    shape: tuple[int, ...],
    *,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """An uninitialized contiguous tensor of ``shape``, a view of this thread's buffer ``name``.

    Args:
        name: the buffer (one per use: two temporaries alive at once need two names).
        shape: the view's shape (any sizes >= 0).
        dtype: its dtype (each dtype has a buffer of its own).
        device: its device.

    Returns:
        ``shape`` ``dtype`` tensor on ``device`` holding arbitrary values; the buffer grows (a new
        allocation) only when ``shape`` has more elements than any earlier request for ``name``.
    """
    device = torch.device(device)
    key = (name, str(device), dtype)
    numel = math.prod(shape)
    flat = _BUFFERS.flat.get(key)
    if flat is None or flat.numel() < numel:
        flat = torch.empty(numel, dtype=dtype, device=device)
        _BUFFERS.flat[key] = flat
    return flat[:numel].view(shape)
