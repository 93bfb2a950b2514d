"""Optimized inference engine for video virtual try-on generators.

Public entry points (imported lazily, so ``import engine`` does no work)::

    from engine import TryOnSession           # the embeddable session
    from engine.errors import InputError      # the exception hierarchy
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["TryOnSession", "__version__"]

if TYPE_CHECKING:
    from engine.session import TryOnSession


def __getattr__(name: str) -> Any:
    if name == "TryOnSession":
        from engine.session import TryOnSession

        return TryOnSession
    raise AttributeError(f"module 'engine' has no attribute {name!r}")
