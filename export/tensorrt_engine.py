"""TensorRT engines from the exported ONNX graph (TensorRT 10/11 Python API, imported lazily).

TensorRT cannot be installed on the machines this project is developed on, so this module keeps
everything that does not need it as plain functions (the cache key, the profile shapes), tested
everywhere, and the TensorRT calls thin, in :func:`build_engine` (the engine runs in
:class:`engine.backends.runners.TensorRTRunner`); their tests skip with a reason where ``tensorrt``
is absent.

Builder steps (explicit, TensorRT samples style): parse the ONNX bytes (every parser error is
logged, then :class:`engine.errors.ExportError` is raised); a *strongly typed* network (precision
comes from the graph's own types: an fp16 graph gives an fp16 engine; TensorRT 10.12+ prefers and
11 requires this); one optimization profile with min = opt = max = the graph's static shapes; a
workspace memory-pool limit; a timing cache loaded from and saved to disk; serialize.

Plugins: a graph with ``tryon``-domain nodes (the plugins graph of :mod:`export.plugin_graph`)
needs the ``tryon::patch_attention`` and ``tryon::composite`` plugins registered before it is
parsed: :func:`build_engine` calls :func:`export.tensorrt_plugins.register_plugins` then, and the
cache key includes :func:`export.tensorrt_plugins.plugin_source_hash`, so editing a plugin kernel
rebuilds its engines. A caller that can fall back to a standard graph (the streaming engines of
:func:`engine.backends.graph_cache.build_into_cache`) asks :func:`try_register_plugins` first:
the plugins need TensorRT's AOT quickly deployable plugins (``tensorrt.plugin.aot_impl``,
TensorRT 10.9+), the Triton compiler (``TRITON_INTERPRET`` unset) and a CUDA device. Build
progress is printed through a ``tensorrt.IProgressMonitor``.

Engine cache: ``<cache_dir>/<key>.engine`` where the key is the sha256 of the ONNX bytes, the
TensorRT version, the GPU name and compute capability, the precision, the profile and the
plugin-kernel source hash (:func:`engine_cache_key`; :func:`engine_key` derives the profile and
the plugin hash from the graph itself). A plugins graph and its standard twin therefore never
share an engine: their ONNX bytes differ, and only the plugins graph's key carries the plugin
hash. A cached engine that fails to deserialize is
rebuilt, with a message.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from pathlib import Path

import torch

from engine.errors import BackendUnavailableError, ExportError
from engine.packages import import_tensorrt

__all__ = [
    "engine_cache_key",
    "engine_key",
    "uses_plugins",
    "try_register_plugins",
    "build_engine",
    "load_or_build_engine",
]

WORKSPACE_BYTES = 4 << 30


def uses_plugins(onnx_bytes: bytes) -> bool:
    """Whether the serialized ONNX graph has ``tryon``-domain (plugin) nodes."""
    import onnx

    from export.tensorrt_plugins import PLUGIN_NAMESPACE

    proto = onnx.load_from_string(onnx_bytes)
    return any(n.domain == PLUGIN_NAMESPACE for n in proto.graph.node)


def _plugins_unavailable() -> str | None:
    """Why the ``tryon`` plugins cannot be registered and compiled here, or None."""
    import importlib.util

    try:
        trt = import_tensorrt()
    except BackendUnavailableError as exc:
        return f"TensorRT {exc.reason}"
    try:
        import tensorrt.plugin as trtp
    except ImportError:
        return f"TensorRT {trt.__version__} has no tensorrt.plugin (quickly deployable plugins)"
    if not hasattr(trtp, "aot_impl"):
        return f"TensorRT {trt.__version__} has no AOT plugins (tensorrt.plugin.aot_impl, 10.9+)"
    if importlib.util.find_spec("triton") is None:
        return "Triton is not installed (it compiles the plugin kernels)"
    from kernels.triton_mode import interpreter_requested

    if interpreter_requested():
        return "TRITON_INTERPRET is set (the plugin kernels need the Triton compiler)"
    if not torch.cuda.is_available():
        return "no CUDA device"
    return None


def try_register_plugins(log: Callable[[str], None] = print) -> bool:
    """Register the ``tryon`` plugins (:func:`export.tensorrt_plugins.register_plugins`) if this
    machine can build them (module docstring); otherwise log why and return False."""
    reason = _plugins_unavailable()
    if reason is None:
        from export.tensorrt_plugins import register_plugins

        try:
            register_plugins()
        except (BackendUnavailableError, ExportError, ImportError, AttributeError) as exc:
            reason = f"registration failed: {exc}"
    if reason is not None:
        log(f"tryon TensorRT plugins unavailable: {reason}")
        return False
    return True


def _progress_monitor(trt, log: Callable[[str], None]):
    """A ``tensorrt.IProgressMonitor`` logging each top-level build phase and its steps."""

    class _Progress(trt.IProgressMonitor):
        def __init__(self) -> None:
            trt.IProgressMonitor.__init__(self)
            self.steps: dict[str, int] = {}

        def phase_start(self, phase_name: str, parent_phase: str | None, num_steps: int) -> None:
            self.steps[phase_name] = num_steps
            if parent_phase is None:
                log(f"  {phase_name} ({num_steps} steps)")

        def step_complete(self, phase_name: str, step: int) -> bool:
            return True  # never cancel

        def phase_finish(self, phase_name: str) -> None:
            self.steps.pop(phase_name, None)

    return _Progress()


def engine_cache_key(
    onnx_bytes: bytes,
    *,
    tensorrt_version: str,
    gpu_name: str,
    compute_capability: tuple[int, int],
    precision: str,
    profile: Mapping[str, tuple[int, ...]],
    plugin_source_hash: str = "",
) -> str:
    """sha256 hex digest identifying an engine; any ingredient changing gives a new key."""
    record = {
        "onnx": hashlib.sha256(onnx_bytes).hexdigest(),
        "tensorrt": tensorrt_version,
        "gpu": gpu_name,
        "cc": list(compute_capability),
        "precision": precision,
        "profile": {k: list(v) for k, v in sorted(profile.items())},
        "plugins": plugin_source_hash,
    }
    return hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()


def engine_key(
    onnx_bytes: bytes,
    *,
    precision: str,
    tensorrt_version: str,
    gpu_name: str,
    compute_capability: tuple[int, int],
    plugin_source_hash: str | None = None,
) -> str:
    """:func:`engine_cache_key` of a serialized graph: the profile is its static input shapes;
    ``plugin_source_hash`` defaults to :func:`export.tensorrt_plugins.plugin_source_hash` for a
    graph with plugin nodes and to ``""`` otherwise."""
    import onnx

    if plugin_source_hash is None:
        from export import tensorrt_plugins

        plugin_source_hash = (
            tensorrt_plugins.plugin_source_hash() if uses_plugins(onnx_bytes) else ""
        )
    proto = onnx.load_from_string(onnx_bytes)
    profile = {
        i.name: tuple(d.dim_value for d in i.type.tensor_type.shape.dim) for i in proto.graph.input
    }
    return engine_cache_key(
        onnx_bytes,
        tensorrt_version=tensorrt_version,
        gpu_name=gpu_name,
        compute_capability=compute_capability,
        precision=precision,
        profile=profile,
        plugin_source_hash=plugin_source_hash,
    )


def build_engine(
    onnx_bytes: bytes,
    *,
    timing_cache: Path | None = None,
    workspace_bytes: int = WORKSPACE_BYTES,
    log: Callable[[str], None] = print,
) -> bytes:
    """Build a serialized engine from ONNX bytes (strongly typed, static profile); registers the
    ``tryon`` plugins first when the graph has plugin nodes."""
    trt = import_tensorrt()
    if uses_plugins(onnx_bytes):
        from export.tensorrt_plugins import register_plugins

        register_plugins()
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED))
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(onnx_bytes):
        errors = [str(parser.get_error(i)) for i in range(parser.num_errors)]
        for error in errors:
            log(f"TensorRT ONNX parser: {error}")
        raise ExportError(f"TensorRT could not parse the graph ({len(errors)} errors, see log)")

    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace_bytes)
    profile = builder.create_optimization_profile()
    for i in range(network.num_inputs):
        tensor = network.get_input(i)
        shape = tuple(tensor.shape)
        if any(d < 0 for d in shape):
            raise ExportError(f"input {tensor.name} has a dynamic shape {shape}; export static")
        profile.set_shape(tensor.name, shape, shape, shape)
    config.add_optimization_profile(profile)
    cache_bytes = timing_cache.read_bytes() if timing_cache and timing_cache.is_file() else b""
    config.set_timing_cache(config.create_timing_cache(cache_bytes), ignore_mismatch=False)
    monitor = _progress_monitor(trt, log)  # must outlive the build
    config.progress_monitor = monitor

    log("building the TensorRT engine (minutes on first build; the timing cache speeds reruns)")
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise ExportError("TensorRT failed to build the engine (see its log above)")
    if timing_cache is not None:
        timing_cache.parent.mkdir(parents=True, exist_ok=True)
        timing_cache.write_bytes(bytes(config.get_timing_cache().serialize()))
    return bytes(serialized)


def load_or_build_engine(
    onnx_path: str | Path,
    cache_dir: str | Path,
    *,
    precision: str,
    plugin_source_hash: str | None = None,
    log: Callable[[str], None] = print,
) -> bytes:
    """The engine for ``onnx_path`` on this GPU, from the cache when valid, else built.

    ``plugin_source_hash`` defaults to :func:`export.tensorrt_plugins.plugin_source_hash` for a
    graph with plugin nodes and to ``""`` otherwise.
    """
    trt = import_tensorrt()
    if not torch.cuda.is_available():
        raise BackendUnavailableError("tensorrt", "no CUDA device")
    onnx_bytes = Path(onnx_path).read_bytes()
    key = engine_key(
        onnx_bytes,
        precision=precision,
        tensorrt_version=trt.__version__,
        gpu_name=torch.cuda.get_device_name(0),
        compute_capability=torch.cuda.get_device_capability(0),
        plugin_source_hash=plugin_source_hash,
    )
    cache_dir = Path(cache_dir)
    path = cache_dir / f"{key}.engine"
    if path.is_file():
        data = path.read_bytes()
        runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
        if runtime.deserialize_cuda_engine(data) is not None:
            return data
        log(f"cached engine {path.name} does not deserialize here: rebuilding")
    data = build_engine(onnx_bytes, timing_cache=cache_dir / "timing.cache", log=log)
    cache_dir.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return data
