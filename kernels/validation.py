"""Argument checks shared by the image ops. Each raises :class:`kernels.errors.InputError` naming
the argument, before any work is done."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from kernels.errors import InputError

__all__ = ["check_image", "check_like", "check_odd_ksize", "check_unit_range"]


def check_image(
    name: str,
    x: object,
    *,
    dtypes: Sequence[torch.dtype],
    channels: int | None = None,
) -> torch.Tensor:
    """``x`` must be a 4-D (N, C, H, W) tensor (any strides) of one of ``dtypes``, non-empty."""
    dtype_names = "/".join(str(d).removeprefix("torch.") for d in dtypes)
    c = "C" if channels is None else str(channels)
    expected = f"a (N, {c}, H, W) {dtype_names} tensor"
    if not isinstance(x, torch.Tensor):
        raise InputError(name, expected, x)
    if x.dim() != 4 or x.dtype not in dtypes or x.numel() == 0:
        raise InputError(
            name, expected + (" with no zero-sized dimension" if x.dim() == 4 else ""), x
        )
    if channels is not None and x.shape[1] != channels:
        raise InputError(name, expected, x)
    return x


def check_like(
    name: str, x: torch.Tensor, ref_name: str, ref: torch.Tensor, *, channels: int
) -> None:
    """``x`` must share ``ref``'s batch, height, width and device, with ``channels`` channels."""
    n, _, h, w = ref.shape
    if tuple(x.shape) != (n, channels, h, w):
        raise InputError(name, f"shape {(n, channels, h, w)} to match {ref_name}", x)
    if x.device != ref.device:
        raise InputError(name, f"a tensor on {ref.device} like {ref_name}", x)


def check_odd_ksize(name: str, ksize: object) -> tuple[int, int]:
    """``ksize`` must be an odd positive int or a pair (kh, kw) of them; returns (kh, kw)."""
    expected = "an odd int >= 1 or a pair (kh, kw) of odd ints >= 1"
    pair = (ksize, ksize) if isinstance(ksize, int) else ksize
    if (
        isinstance(ksize, bool)
        or not isinstance(pair, (tuple, list))
        or len(pair) != 2
        or not all(
            isinstance(k, int) and not isinstance(k, bool) and k >= 1 and k % 2 == 1 for k in pair
        )
    ):
        raise InputError(name, expected, ksize)
    return int(pair[0]), int(pair[1])


def check_unit_range(name: str, mask: torch.Tensor) -> None:
    """Floating ``mask`` values must lie in [0, 1] (one reduction over the mask)."""
    if mask.dtype.is_floating_point:
        lo, hi = torch.aminmax(mask)
        if not (lo >= 0 and hi <= 1):  # also rejects NaN
            raise InputError(name, "values in [0, 1]", f"values in [{lo.item():g}, {hi.item():g}]")
