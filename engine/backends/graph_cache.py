"""The cache of exported graphs and built engines, and the one door from the runtime to ``export/``.

:func:`build_into_cache` is the only place in the runtime (everything in ``engine/`` but the
CLI) that imports ``export``: it returns the cached artifact, exporting or building it first
when it is missing. Everything else in this module only computes where things live.

Graph cache: ``<cache_dir>/graphs/<key>/``; the key is a sha256 of the weights (config and
tensors), T, H, W, precision, the torch and onnx versions and the bytes of every source file that
shapes the graphs (:data:`GRAPH_CODE`: the model, the exporters and the traced kernels, so a
changed exporter or opset never reuses a stale graph). TensorRT engines: ``<cache_dir>/engines/``
(keyed by :func:`export.tensorrt_engine.engine_cache_key`: the ONNX bytes, so which graph, the
precision, TensorRT, the GPU, the profile and the plugin kernels' source hash).

The streaming TensorRT engines (``"streaming-tensorrt"``) are built from the plugins graphs
(``window.plugins.onnx``, the patch attention and the composite as the Triton plugins;
``encoder.onnx`` as it is, it has no plugin op) when
:func:`export.tensorrt_engine.try_register_plugins` succeeds, else from the standard graphs
(``encoder.onnx``, ``window.onnx``; the reason is logged). Files are written to a temporary
folder first and renamed, so an interrupted export leaves no half graph. ``cache_dir`` defaults
to ``$TRYON_CACHE_DIR``, else ``~/.cache/tryon-engine``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch

from engine.errors import BackendUnavailableError, InputError
from engine.model.mpdt_generator import MPDTGenerator
from engine.model.weights import weights_digest

__all__ = [
    "ARTIFACTS",
    "GRAPH_CODE",
    "StreamingEngines",
    "build_into_cache",
    "cached_file",
    "default_cache_dir",
    "graph_cache_dir",
]

Artifact = Literal["standard", "plugins", "streaming", "tensorrt", "streaming-tensorrt"]
ARTIFACTS = ("standard", "plugins", "streaming", "tensorrt", "streaming-tensorrt")
"""What :func:`build_into_cache` can return: the standard ONNX graph (onnxruntime), the plugins
graph (TensorRT's input), the streaming graphs (encoder + window), the whole generator's
TensorRT engine, or the streaming graphs' two TensorRT engines."""

GRAPH_CODE = (
    "engine/model/mpdt_generator.py",
    "export/onnx_export.py",
    "export/plugin_graph.py",
    "engine/model/mixed_precision.py",
    "export/streaming_graphs.py",
    "kernels/patch_attention.py",
    "kernels/composite.py",
)
"""Source files that shape the exported graphs: their bytes are part of the cache key, so a
changed model or exporter never reuses a stale graph."""


@dataclass(frozen=True)
class StreamingEngines:
    """The two serialized TensorRT engines of the streaming graphs and how they were built.

    Attributes:
        encoder, window: the serialized engines.
        plugins: whether they were built from the plugins graphs (Triton plugins inside).
        sources: the ONNX file names they were built from, (encoder, window).
    """

    encoder: bytes
    window: bytes
    plugins: bool
    sources: tuple[str, str]


def default_cache_dir() -> Path:
    """``$TRYON_CACHE_DIR``, else ``~/.cache/tryon-engine`` ."""
    return Path(os.environ.get("TRYON_CACHE_DIR") or Path.home() / ".cache" / "tryon-engine")


def graph_cache_dir(
    model: MPDTGenerator, *, frames: int, precision: str, cache_dir: str | Path
) -> Path:
    """The cache folder of ``model``'s graphs for ``frames`` and ``precision`` (see module
    docstring; not created here)."""
    import onnx

    cfg = model.config
    record = {
        "weights": weights_digest(model),
        "frames": frames,
        "size": [cfg.height, cfg.width],
        "precision": precision,
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


def build_into_cache(
    model: MPDTGenerator,
    artifact: Artifact,
    *,
    frames: int,
    precision: Literal["fp32", "fp16"],
    cache_dir: str | Path | None = None,
    log: Callable[[str], None] = lambda message: None,
    plugins: bool | None = None,
) -> Path | bytes | StreamingEngines:
    """The cached ``artifact`` of ``model`` for T = ``frames``, exported or built if missing.

    Args:
        plugins: ``"streaming-tensorrt"`` only: build from the plugins graphs (True; raises
            where the plugins cannot be registered), from the standard graphs (False), or
            from the plugins graphs when they can be registered (None, the default).

    Returns:
        ``"standard"`` / ``"plugins"``: the path of the ``.onnx`` file; ``"streaming"``: the
        folder holding ``encoder.onnx`` and ``window.onnx``; ``"tensorrt"``: the serialized
        engine (bytes) built from the plugins graph; ``"streaming-tensorrt"``: the
        :class:`StreamingEngines` built from the streaming graphs (module docstring).

    Raises:
        InputError: an unknown artifact or precision, ``plugins`` not None / a bool, or given
            for another artifact.
        ExportError: exporting or building failed (nothing is left under the final name).
        BackendUnavailableError: ``"tensorrt"`` without TensorRT or a CUDA device;
            ``plugins=True`` where the plugins cannot be registered.
    """
    if artifact not in ARTIFACTS:
        raise InputError("artifact", f"one of {', '.join(map(repr, ARTIFACTS))}", artifact)
    if precision not in ("fp32", "fp16"):
        raise InputError("precision", "'fp32' or 'fp16'", precision)
    if plugins is not None and (not isinstance(plugins, bool) or artifact != "streaming-tensorrt"):
        raise InputError("plugins", "None, or a bool for 'streaming-tensorrt'", plugins)
    from export.onnx_export import PLUGINS_FILE, STANDARD_FILE, export_graphs, export_onnx
    from export.streaming_graphs import export_streaming_graphs

    cache = default_cache_dir() if cache_dir is None else Path(cache_dir)
    graphs = graph_cache_dir(model, frames=frames, precision=precision, cache_dir=cache)
    if artifact == "standard":
        return cached_file(
            graphs / STANDARD_FILE,
            lambda tmp: export_onnx(model, tmp / STANDARD_FILE, frames=frames, precision=precision),
            log,
        )
    if artifact == "streaming":
        return cached_file(
            graphs / "window.onnx",
            lambda tmp: export_streaming_graphs(model, tmp, frames=frames, precision=precision),
            log,
        ).parent
    if artifact == "streaming-tensorrt":
        from export.streaming_graphs import plugins_file
        from export.tensorrt_engine import load_or_build_engine, try_register_plugins

        if plugins is None:
            plugins = try_register_plugins(log)
        elif plugins and not try_register_plugins(log):
            raise BackendUnavailableError("tensorrt", "the tryon plugins cannot be registered "
                                          "here (the reason is logged)")  # fmt: skip
        window = plugins_file("window") if plugins else "window.onnx"
        cached_file(
            graphs / window,
            lambda tmp: export_streaming_graphs(
                model, tmp, frames=frames, precision=precision, plugins=plugins
            ),
            log,
        )
        encoder = plugins_file("encoder") if plugins else "encoder.onnx"
        if not (graphs / encoder).is_file():  # no plugin op in the encoder: no plugins graph
            encoder = "encoder.onnx"
        log(f"TensorRT streaming engines from {encoder} + {window}")
        engines = [
            load_or_build_engine(graphs / name, cache / "engines", precision=precision, log=log)
            for name in (encoder, window)
        ]
        return StreamingEngines(*engines, plugins=plugins, sources=(encoder, window))
    plugins_graph = cached_file(
        graphs / PLUGINS_FILE,
        lambda tmp: export_graphs(model, tmp, frames=frames, precision=precision),
        log,
    )
    if artifact == "plugins":
        return plugins_graph
    from export.tensorrt_engine import load_or_build_engine

    return load_or_build_engine(plugins_graph, cache / "engines", precision=precision, log=log)
