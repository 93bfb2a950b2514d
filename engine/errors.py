"""Exceptions raised by the try-on engine.

Every error the engine raises on purpose derives from :class:`TryOnError`, so an embedding
application can catch the whole family with one ``except``. Each subclass also derives from the
built-in exception a Python user would expect (``ValueError`` for bad input, ``RuntimeError`` for
an unusable backend or model), so generic handlers keep working.

:class:`TryOnError`, :class:`InputError`, :class:`BackendUnavailableError` and :func:`describe`
are defined in :mod:`kernels.errors` (the bottom layer, which may not import ``engine``) and are
the same classes here.

Errors are raised before any work or state change: a caller that catches one can retry with
corrected arguments on the same object.
"""

from __future__ import annotations

from kernels.errors import BackendUnavailableError, InputError, TryOnError, describe

__all__ = [
    "TryOnError",
    "InputError",
    "BackendUnavailableError",
    "ModelLoadError",
    "ExportError",
    "SessionBusyError",
    "describe",
]


class ModelLoadError(TryOnError, RuntimeError):
    """A model, weights file or engine file is missing, corrupt or does not match its config.

    Attributes:
        source: the model name or path that was being loaded.
        reason: what is wrong with it.
    """

    def __init__(self, source: str, reason: str) -> None:
        self.source = source
        self.reason = reason
        super().__init__(f"cannot load model {source!r}: {reason}")


class ExportError(TryOnError, RuntimeError):
    """Exporting a model to ONNX or building a TensorRT engine failed."""


class SessionBusyError(TryOnError, RuntimeError):
    """The session is already serving a stream: one stream (or ``process`` caller) at a time.

    Close the open stream's iterator (``it.close()``, or leave the ``for`` loop) first, or use
    one :class:`~engine.runtime.session.TryOnSession` per concurrent stream.
    """
