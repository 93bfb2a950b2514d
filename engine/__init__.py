"""Optimized inference engine for video virtual try-on generators.

Public entry points (imported lazily, so ``import engine`` does no work)::

    from engine import TryOnSession           # the embeddable session (engine.runtime.session)
    from engine import load_generator         # a generator and its weights (engine.model.weights)
    from engine.errors import InputError      # the exception hierarchy

Layers, imports running one way (each subpackage's docstring says what it may import)::

    kernels/  ->  engine.errors, engine.keypoints, engine.packages, engine.sample_media
              ->  engine.model  ->  engine.perception  ->  engine.inputs  ->  engine.backends
              ->  engine.runtime | engine.training  ->  engine (this facade)  ->  engine.cli
    export/ sits beside engine.perception: it may import engine.model and kernels only; the
    runtime reaches it through engine.backends.graph_cache.build_into_cache alone.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["TryOnSession", "load_generator", "__version__"]

if TYPE_CHECKING:
    from engine.model.weights import load_generator
    from engine.runtime.session import TryOnSession


def __getattr__(name: str) -> Any:
    if name == "TryOnSession":
        from engine.runtime.session import TryOnSession

        return TryOnSession
    if name == "load_generator":
        from engine.model.weights import load_generator

        return load_generator
    raise AttributeError(f"module 'engine' has no attribute {name!r}")
