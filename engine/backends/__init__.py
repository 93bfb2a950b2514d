"""Running the generator: one runner per backend (torch, onnxruntime, tensorrt), which backend
``"auto"`` picks (:mod:`~engine.backends.selection`), the streaming window over a live stream
(:mod:`~engine.backends.streaming_runner`: one ``StreamingRunner`` per backend) and the graph
and engine cache (:mod:`~engine.backends.graph_cache`), whose
:func:`~engine.backends.graph_cache.build_into_cache` is the runtime's only door into
``export/`` (it builds a missing graph or engine). May import the model, ``kernels`` and the
bottom modules of ``engine``; never inputs, perception, runtime, training or the CLI.
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
