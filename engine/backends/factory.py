"""``make_runner``: the runner for a generator on this machine, exporting and caching graphs.

The backend comes from :func:`engine.backends.selection.choose_backend` (``"auto"``: TensorRT >
onnxruntime-CUDA > PyTorch-CUDA > onnxruntime-CPU > PyTorch-CPU), then:

- ``torch``: :class:`~engine.backends.runners.TorchRunner` on the chosen device;
- ``onnxruntime``: the *standard* graph from the cache
  (:func:`engine.backends.graph_cache.build_into_cache`, exported once):
  :class:`~engine.backends.runners.OnnxRuntimeRunner`;
- ``tensorrt``: the engine built once from the *plugins* graph and cached (keyed by ONNX bytes,
  TensorRT, GPU, precision, profile and plugin sources):
  :class:`~engine.backends.runners.TensorRTRunner` with CUDA-graph replay.

``precision="auto"`` is fp16 on CUDA and fp32 on CPU.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Protocol

import torch

from engine.backends.graph_cache import build_into_cache
from engine.backends.selection import Capabilities, choose_backend
from engine.errors import InputError
from engine.model.mpdt_generator import MPDTGenerator

__all__ = ["PRECISIONS", "Runner", "make_runner"]

PRECISIONS = ("auto", "fp32", "fp16")


class Runner(Protocol):
    """What every runner offers (see :mod:`engine.backends.runners`)."""

    name: str
    input_shapes: dict[str, tuple[int, ...]]

    def run(self, inputs: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """(1, T, C, H, W) float32 inputs by name -> float32 outputs by name."""
        ...


def make_runner(
    model: MPDTGenerator,
    *,
    backend: str = "auto",
    frames: int,
    precision: str = "auto",
    cache_dir: str | Path | None = None,
    caps: Capabilities | None = None,
    log: Callable[[str], None] = lambda message: None,
) -> Runner:
    """A ready runner for ``model`` with static T = ``frames`` (see module docstring).

    Args:
        model: the float32 generator.
        backend: ``"auto"``, ``"tensorrt"``, ``"onnxruntime"`` or ``"torch"``.
        frames: T, frames per call (>= 1).
        precision: ``"auto"`` (fp16 on CUDA, fp32 on CPU), ``"fp32"`` or ``"fp16"``.
        cache_dir: where graphs and engines are cached (default
            :func:`engine.backends.graph_cache.default_cache_dir`).
        caps: the machine to decide for (default: probed).
        log: receives one line per decision and per export or build.

    Raises:
        InputError: a bad argument (before any work).
        BackendUnavailableError: an explicitly requested backend cannot run here.
        ExportError: exporting or building failed.
    """
    from engine.backends.runners import OnnxRuntimeRunner, TensorRTRunner, TorchRunner

    if not isinstance(model, MPDTGenerator):
        raise InputError("model", "an MPDTGenerator", model)
    if isinstance(frames, bool) or not isinstance(frames, int) or frames < 1:
        raise InputError("frames", "an int >= 1", frames)
    if precision not in PRECISIONS:
        raise InputError("precision", f"one of {', '.join(map(repr, PRECISIONS))}", precision)
    if cache_dir is not None and not isinstance(cache_dir, (str, Path)):
        raise InputError("cache_dir", "a path (str or pathlib.Path) or None", cache_dir)
    choice = choose_backend(backend, caps)
    if precision == "auto":
        precision = "fp16" if choice.device == "cuda" else "fp32"
    log(f"backend {choice.backend} on {choice.device}, {precision}: {choice.reason}")
    if choice.backend == "torch":
        return TorchRunner(model, frames, device=choice.device, precision=precision)

    if choice.backend == "onnxruntime":
        path = build_into_cache(model, "standard", frames=frames, precision=precision,
                                cache_dir=cache_dir, log=log)  # fmt: skip
        return OnnxRuntimeRunner(path, device=choice.device)
    engine = build_into_cache(model, "tensorrt", frames=frames, precision=precision,
                              cache_dir=cache_dir, log=log)  # fmt: skip
    return TensorRTRunner(engine, cuda_graph=True)
