"""Inference backends that run the try-on generator: TensorRT, onnxruntime and eager PyTorch.

Only the choice of backend lives here so far (:mod:`engine.backends.selection`); the backends
themselves arrive with the export issue.
"""

from engine.backends.selection import (
    BACKENDS,
    BackendChoice,
    Capabilities,
    choose_backend,
    probe_capabilities,
)

__all__ = ["BACKENDS", "BackendChoice", "Capabilities", "choose_backend", "probe_capabilities"]
