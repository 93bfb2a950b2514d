"""Keypoint values on the host for keypoints on a device: no wait for the device to read them.

The inputs take decisions on keypoint values (is there a person, which box to rasterize, where the
face is, the body frame's cache key). On a CUDA session the keypoints are uploaded from the host
detector; reading them back (``.cpu()``, ``.tolist()``) would wait for everything queued on the
device. :func:`mirror_keypoints` registers the host array next to the uploaded tensor, and
:func:`host_keypoints` returns it for that tensor and any view of it. :func:`to_device` sends
small host-made tensors up without waiting (pinned memory, non-blocking copy).
"""

from __future__ import annotations

import threading
from typing import NamedTuple

import torch

from engine.errors import InputError

__all__ = ["host_keypoints", "is_mirrored", "mirror_keypoints", "to_device"]


class _Mirror(NamedTuple):
    device: torch.Tensor  # the registered tensor (held: its memory cannot be reused meanwhile)
    version: int  # its version counter when registered: an in-place write invalidates
    host: torch.Tensor  # the same values on the CPU, the same shape, contiguous


_MIRRORS: dict[tuple[str, int], _Mirror] = {}
_MIRRORS_LOCK = threading.Lock()
_MIRRORS_SIZE = 16


def mirror_keypoints(keypoints: torch.Tensor, host: torch.Tensor) -> None:
    """Register ``host``, a CPU copy of the device tensor ``keypoints``, so that the inputs read
    keypoint values (presence, shoulder width, the body frame's cache key) from the host instead
    of copying them back from the device (a copy that waits for everything queued on it).

    The keypoints come from the host detector anyway: upload them, then register the host array
    they came from. :func:`host_keypoints` finds the copy for ``keypoints`` and for any view of
    it (``keypoints[i]``, ``reshape``, ``detach``) until the tensor is written in place; the last
    few registrations are kept.

    Args:
        keypoints: contiguous floating tensor (e.g. ``(T, 18, 3)``) on any device.
        host: CPU tensor of the same shape and dtype holding the same values.

    Raises:
        InputError: a shape, dtype or layout mismatch.
    """
    if (
        not isinstance(keypoints, torch.Tensor)
        or not keypoints.is_floating_point()
        or not keypoints.is_contiguous()
        or keypoints.storage_offset() != 0
        or keypoints.untyped_storage().nbytes() != keypoints.numel() * keypoints.element_size()
    ):
        raise InputError("keypoints", "a contiguous floating tensor that owns its memory",
                         keypoints)  # fmt: skip
    if (
        not isinstance(host, torch.Tensor)
        or host.device.type != "cpu"
        or host.shape != keypoints.shape
        or host.dtype != keypoints.dtype
    ):
        raise InputError("host", f"a CPU {keypoints.dtype} tensor of shape "
                         f"{tuple(keypoints.shape)}", host)  # fmt: skip
    entry = _Mirror(keypoints, keypoints._version, host.detach().contiguous().clone())
    key = (str(keypoints.device), keypoints.untyped_storage().data_ptr())
    with _MIRRORS_LOCK:
        _MIRRORS.pop(key, None)
        if len(_MIRRORS) >= _MIRRORS_SIZE:
            _MIRRORS.pop(next(iter(_MIRRORS)))  # the oldest
        _MIRRORS[key] = entry


def host_keypoints(keypoints: torch.Tensor) -> torch.Tensor:
    """``keypoints``' values as a CPU float32 tensor, without waiting for the device where
    possible: the registered host copy (:func:`mirror_keypoints`) viewed like ``keypoints``;
    else ``keypoints`` itself when on the CPU; else a copy from the device (which waits for it).
    Treat the result as read-only."""
    if keypoints.numel() > 0 and not keypoints.requires_grad:
        key = (str(keypoints.device), keypoints.untyped_storage().data_ptr())
        with _MIRRORS_LOCK:
            entry = _MIRRORS.get(key)
        if (
            entry is not None
            and entry.device._version == entry.version
            and keypoints._version == entry.version
            and keypoints.dtype == entry.host.dtype
        ):
            view = entry.host.as_strided(
                keypoints.shape, keypoints.stride(), keypoints.storage_offset()
            )
            return view.to(torch.float32)
    return keypoints.detach().to("cpu", torch.float32)


def is_mirrored(keypoints: torch.Tensor) -> bool:
    """Whether ``keypoints`` (or the tensor it views) has a host copy registered."""
    with _MIRRORS_LOCK:
        return (str(keypoints.device), keypoints.untyped_storage().data_ptr()) in _MIRRORS


def to_device(tensor: torch.Tensor, device: torch.device) -> torch.Tensor:
    """A small host tensor on ``device`` without waiting for the device: through page-locked
    memory from torch's caching host allocator (reused only once its copy has run) and a
    non-blocking copy on CUDA; ``tensor`` itself on the CPU."""
    if device.type == "cpu":
        return tensor
    if device.type == "cuda":
        return tensor.pin_memory().to(device, non_blocking=True)
    return tensor.to(device)
