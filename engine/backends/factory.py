"""``make_runner``: the runner for a generator on this machine, exporting and caching graphs.

The backend comes from :func:`engine.backends.selection.choose_backend` (``"auto"``: TensorRT >
onnxruntime-CUDA > PyTorch-CUDA > onnxruntime-CPU > PyTorch-CPU), then:

- ``torch``: :class:`~engine.backends.runners.TorchRunner` on the chosen device;
- ``onnxruntime``: the *standard* graph (:func:`export.onnx_export.export_onnx`), exported once
  into the cache and reused: :class:`~engine.backends.runners.OnnxRuntimeRunner`;
- ``tensorrt``: the *plugins* graph (:func:`export.onnx_export.export_graphs`), exported once into
  the cache, its engine built once and cached (:func:`export.tensorrt_engine.load_or_build_engine`,
  keyed by ONNX bytes, TensorRT, GPU, precision, profile and plugin sources):
  :class:`~engine.backends.runners.TensorRTRunner` with CUDA-graph replay.

Graph cache: ``<cache_dir>/graphs/<key>/`` with :data:`export.onnx_export.STANDARD_FILE` and
:data:`export.onnx_export.PLUGINS_FILE`; the key is a sha256 of the weights (config and tensors),
T, H, W, precision, the exporter version, the opset and the torch and onnx versions. Files are
written to a temporary name first and renamed, so an interrupted export leaves no half graph.
``cache_dir`` defaults to ``$TRYON_CACHE_DIR``, else ``~/.cache/tryon-engine``.

``precision="auto"`` is fp16 on CUDA and fp32 on CPU.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Protocol

import torch

from engine.backends.selection import Capabilities, choose_backend
from engine.errors import InputError
from engine.mpdt import MPDTGenerator

__all__ = [
    "PRECISIONS",
    "Runner",
    "cached_file",
    "default_cache_dir",
    "graph_cache_dir",
    "make_runner",
]

GRAPH_CODE = (
    "engine/mpdt.py",
    "export/onnx_export.py",
    "export/plugin_graph.py",
    "export/fp16.py",
    "export/streaming_graphs.py",
    "kernels/patch_attention.py",
    "kernels/composite.py",
)
"""Source files that shape the exported graphs: their bytes are part of the cache key, so a
changed model or exporter never reuses a stale graph."""

PRECISIONS = ("auto", "fp32", "fp16")


class Runner(Protocol):
    """What every runner offers (see :mod:`engine.backends.runners`)."""

    name: str
    input_shapes: dict[str, tuple[int, ...]]

    def run(self, inputs: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """(1, T, C, H, W) float32 inputs by name -> float32 outputs by name."""
        ...


def default_cache_dir() -> Path:
    """``$TRYON_CACHE_DIR``, else ``~/.cache/tryon-engine`` (as the sliding window's cache)."""
    return Path(os.environ.get("TRYON_CACHE_DIR") or Path.home() / ".cache" / "tryon-engine")


def graph_cache_dir(
    model: MPDTGenerator, *, frames: int, precision: str, cache_dir: str | Path
) -> Path:
    """The cache folder of ``model``'s graphs for ``frames`` and ``precision`` (see module
    docstring; not created here)."""
    import onnx

    from export.onnx_export import EXPORTER_VERSION, OPSET, weights_digest

    cfg = model.config
    record = {
        "weights": weights_digest(model),
        "frames": frames,
        "size": [cfg.height, cfg.width],
        "precision": precision,
        "exporter": EXPORTER_VERSION,
        "opset": OPSET,
        "torch": torch.__version__,
        "onnx": onnx.__version__,
    }
    repo = Path(__file__).resolve().parents[2]
    code = hashlib.sha256()
    for rel in GRAPH_CODE:
        path = repo / rel
        code.update(rel.encode() + (path.read_bytes() if path.is_file() else b""))
    record["code"] = code.hexdigest()
    key = hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()[:32]
    return Path(cache_dir) / "graphs" / key


def cached_file(
    target: Path, export: Callable[[Path], None], log: Callable[[str], None] = lambda m: None
) -> Path:
    """``target`` if present, else ``export(tmp_dir)`` then every file it wrote moved next to
    ``target`` (a crash mid-export never leaves a partial file under the final name)."""
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    log(f"exporting {target.name} into the cache ({target.parent})")
    tmp = Path(tempfile.mkdtemp(prefix=".export-", dir=target.parent))
    try:
        export(tmp)
        for item in tmp.iterdir():
            os.replace(item, target.parent / item.name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


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
        cache_dir: where graphs and engines are cached (default :func:`default_cache_dir`).
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

    from export.onnx_export import PLUGINS_FILE, STANDARD_FILE, export_graphs, export_onnx

    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    graphs = graph_cache_dir(model, frames=frames, precision=precision, cache_dir=cache)
    if choice.backend == "onnxruntime":
        path = cached_file(
            graphs / STANDARD_FILE,
            lambda tmp: export_onnx(model, tmp / STANDARD_FILE, frames=frames, precision=precision),
            log,
        )
        return OnnxRuntimeRunner(path, device=choice.device)

    from export.tensorrt_engine import load_or_build_engine

    path = cached_file(
        graphs / PLUGINS_FILE,
        lambda tmp: export_graphs(model, tmp, frames=frames, precision=precision),
        log,
    )
    engine = load_or_build_engine(path, cache / "engines", precision=precision, log=log)
    return TensorRTRunner(engine, cuda_graph=True)
