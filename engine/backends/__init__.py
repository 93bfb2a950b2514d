"""Inference backends that run the try-on generator: TensorRT, onnxruntime and eager PyTorch.

:mod:`engine.backends.selection` chooses one (``backend="auto"``); :mod:`engine.backends.runners`
runs a generator through eager PyTorch or onnxruntime (TensorRT: :mod:`export.tensorrt_engine`).
"""

from engine.backends.selection import (
    BACKENDS,
    BackendChoice,
    Capabilities,
    choose_backend,
    probe_capabilities,
)

__all__ = ["BACKENDS", "BackendChoice", "Capabilities", "choose_backend", "probe_capabilities"]
