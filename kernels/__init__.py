"""Triton kernels for the try-on engine, each beside its plain-PyTorch reference (``*_ref``).

Public ops (torch tensors in and out; ``impl="auto" | "triton" | "torch" | "opencv"``)::

    gaussian_blur, box_blur                 filters equal to OpenCV's (reflect-101)
    composite                               seed 000's two-stage mask compositing
    rgb_to_ycbcr, skin_mask, rgb_to_hsi,    seed 002's colour conversions and skin ellipse
    gradient_map                            seed 002's zero-sum gradient filters

They are imported on first use: Triton fixes compiled vs interpreted execution when a kernel
module is imported (see :mod:`kernels.triton_mode`), and ``import kernels`` alone stays cheap.
Each op is also registered as ``torch.ops.tryon.<name>`` when its module is imported.
"""

from __future__ import annotations

import importlib
from typing import Any

_OPS = {
    "gaussian_blur": "kernels.gaussian_blur",
    "box_blur": "kernels.box_blur",
    "composite": "kernels.composite",
    "rgb_to_ycbcr": "kernels.rgb_to_ycbcr",
    "skin_mask": "kernels.skin_mask",
    "rgb_to_hsi": "kernels.rgb_to_hsi",
    "gradient_map": "kernels.gradient_map",
}
__all__ = [name for op in _OPS for name in (op, f"{op}_ref")]


def __getattr__(name: str) -> Any:
    module = _OPS.get(name.removesuffix("_ref"))
    if module is None:
        raise AttributeError(f"module 'kernels' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return sorted(__all__)
