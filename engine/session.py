"""`TryOnSession`: the object a developer embeds to run video try-on on frames.

Not implemented yet in this version: constructing a session validates its arguments and then
raises ``NotImplementedError``. The streaming runtime (pose, segmentation, garment warp,
generator, compositing back into the frame) replaces this class; the signature below is the one
it keeps.
"""

from __future__ import annotations

from typing import Literal

from engine.backends.selection import BACKENDS
from engine.errors import InputError

__all__ = ["TryOnSession"]

PRECISIONS = ("auto", "fp32", "fp16")
MODES = ("latency", "throughput")


class TryOnSession:
    """Video virtual try-on over a stream of frames (not implemented yet: see below).

    Intended use::

        session = TryOnSession("demo", backend="auto", precision="auto", window=4)
        session.set_garment("shirt.png")        # HxWx3/4 uint8 RGB(A) or a path
        result = session.process(frame)         # frame: HxWx3 uint8 RGB, any size
        result.image                            # HxWx3 uint8, same size as frame

    Args:
        model: ``"demo"`` (the bundled generator) or a path to exported weights.
        backend: one of ``"auto"``, ``"tensorrt"``, ``"onnxruntime"``, ``"torch"``.
        precision: ``"auto"``, ``"fp32"`` or ``"fp16"``.
        window: number of frames T the generator sees at once (>= 1).
        mode: ``"latency"`` (causal sliding window, one output per frame) or ``"throughput"``
            (blocks of T frames, for video files).

    Raises:
        InputError: an argument is invalid (checked first).
        NotImplementedError: always, after validation, until the streaming runtime lands.
    """

    def __init__(
        self,
        model: str = "demo",
        *,
        backend: str = "auto",
        precision: Literal["auto", "fp32", "fp16"] = "auto",
        window: int = 4,
        mode: Literal["latency", "throughput"] = "latency",
    ) -> None:
        if not isinstance(model, str) or not model:
            raise InputError("model", "'demo' or a path to a model file", model)
        if backend not in BACKENDS:
            raise InputError("backend", f"one of {', '.join(map(repr, BACKENDS))}", backend)
        if precision not in PRECISIONS:
            raise InputError("precision", f"one of {', '.join(map(repr, PRECISIONS))}", precision)
        if isinstance(window, bool) or not isinstance(window, int) or window < 1:
            raise InputError("window", "an int >= 1 (frames per generator call)", window)
        if mode not in MODES:
            raise InputError("mode", f"one of {', '.join(map(repr, MODES))}", mode)
        raise NotImplementedError(
            "TryOnSession is not implemented yet in this version of the engine: the streaming "
            "runtime has not landed. `tryon doctor` reports what is installed and ready."
        )
