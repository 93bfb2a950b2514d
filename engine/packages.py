"""Optional packages, imported on demand with an error that says how to install them.

Imports only :mod:`engine.errors`, so every layer (the runtime's TensorRT runner as well as the
build-time TensorRT builder in ``export/``) reaches optional packages through this one place.
"""

from __future__ import annotations

from types import ModuleType

from engine.errors import BackendUnavailableError

__all__ = ["import_tensorrt"]


def import_tensorrt() -> ModuleType:
    """The ``tensorrt`` module, or :class:`BackendUnavailableError` saying how to get it."""
    try:
        import tensorrt
    except ImportError as exc:
        raise BackendUnavailableError(
            "tensorrt", "not installed (pip install 'tryon-engine[tensorrt]' on an NVIDIA GPU)"
        ) from exc
    return tensorrt
