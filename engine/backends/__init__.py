"""Inference backends that run the try-on generator: TensorRT, onnxruntime and eager PyTorch.

:mod:`engine.backends.selection` chooses one (``backend="auto"``); :mod:`engine.backends.runners`
runs a generator through eager PyTorch, onnxruntime or a TensorRT engine;
:func:`engine.backends.factory.make_runner` (also importable from here, lazily) chooses, exports
and caches the graph or engine, and returns the ready runner.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from engine.backends.selection import (
    BACKENDS,
    BackendChoice,
    Capabilities,
    choose_backend,
    probe_capabilities,
)

if TYPE_CHECKING:
    from engine.backends.factory import Runner, make_runner

__all__ = [
    "BACKENDS",
    "BackendChoice",
    "Capabilities",
    "Runner",
    "choose_backend",
    "make_runner",
    "probe_capabilities",
]


def __getattr__(name: str) -> Any:
    if name in ("make_runner", "Runner"):  # imports torch and the generator: only when asked
        from engine.backends import factory

        return getattr(factory, name)
    raise AttributeError(f"module 'engine.backends' has no attribute {name!r}")
