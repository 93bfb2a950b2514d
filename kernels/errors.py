"""The error family's root, and the two errors the kernels raise.

The bottom layer of the project (kernels import nothing of ``engine`` or ``export``), so the
family starts here: :mod:`engine.errors` re-exports these classes unchanged and adds the errors
of the layers above. ``except engine.errors.InputError`` therefore catches a kernel's bad
argument too (it is the same class).

Every error raised on purpose derives from :class:`TryOnError`; each subclass also derives from
the built-in exception a Python user would expect (``ValueError`` for bad input,
``RuntimeError`` for an unusable backend), so generic handlers keep working. Errors are raised
before any work or state change.
"""

from __future__ import annotations

from typing import Any

__all__ = ["TryOnError", "InputError", "BackendUnavailableError", "describe"]


class TryOnError(Exception):
    """Base class of every error the engine raises on purpose."""


class InputError(TryOnError, ValueError):
    """An argument has the wrong type, shape, dtype, device, layout or value.

    The message always names the argument and what was expected, e.g.
    ``frame: expected an HxWx3 uint8 array, got a float32 array of shape (4, 4)``.

    Attributes:
        argument: name of the offending argument as the caller wrote it.
        expected: what would have been accepted.
        got: a short description of what was passed (see :func:`describe`), or ``None``.
    """

    def __init__(self, argument: str, expected: str, got: Any = None) -> None:
        self.argument = argument
        self.expected = expected
        self.got = got
        message = f"{argument}: expected {expected}"
        if got is not None:
            message += f", got {describe(got)}"
        super().__init__(message)


class BackendUnavailableError(TryOnError, RuntimeError):
    """The requested inference backend cannot run here (package missing, no device, ...).

    Attributes:
        backend: the backend that was asked for (``"tensorrt"``, ``"onnxruntime"``, ``"torch"``).
        reason: why it cannot run, and where possible how to make it run.
    """

    def __init__(self, backend: str, reason: str) -> None:
        self.backend = backend
        self.reason = reason
        super().__init__(f"backend {backend!r} is unavailable: {reason}")


def describe(value: Any) -> str:
    """A short, human description of ``value`` for error messages.

    Tensors and arrays give dtype, shape (and device for tensors); strings their repr; other
    objects their repr and type, or only their type when the repr is long.
    """
    shape = getattr(value, "shape", None)
    dtype = getattr(value, "dtype", None)
    if shape is not None and dtype is not None:
        dtype_name = str(dtype).removeprefix("torch.")
        kind = "tensor" if type(value).__module__.startswith("torch") else "array"
        text = f"a {dtype_name} {kind} of shape {tuple(shape)}"
        device = getattr(value, "device", None)
        if kind == "tensor" and device is not None:
            text += f" on {device}"
        return text
    if value is None:
        return "None"
    text, type_name = repr(value), type(value).__name__
    if isinstance(value, str):
        return text if len(text) <= 60 else f"a str of length {len(value)}"
    return f"{text} ({type_name})" if len(text) <= 60 else f"a {type_name}"
