"""Export of an MPDT generator to ONNX: the *standard* and the *plugins* graph, validated.

Steps (:func:`export_graphs`; :func:`export_onnx` stops after the standard graph):

1. trace the model once with ``torch.onnx.export`` (TorchScript exporter, opset :data:`OPSET`,
   static shapes: batch 1, ``frames`` T, the config's H and W), the attention and the composite
   as their plain references (standard ops only), their call boundaries marked
   (:mod:`export.plugin_graph`); fp16: the mixed-precision copy of
   :mod:`engine.model.mixed_precision`;
2. simplify with onnx-simplifier (before any custom node exists);
3. the standard graph (markers dropped, simplified again) and the plugins graph (``tryon``-domain
   nodes for the attention heads and the composite, :mod:`export.plugin_graph`);
4. ``onnx.checker`` (full check) and the TensorRT operator audit
   (:func:`export.tensorrt_onnx_ops.audit`; ``tryon`` nodes only in the plugins graph);
5. parity with PyTorch float32 on the same seeded inputs: the standard graph in onnxruntime
   (CPU), the plugins graph in onnxruntime with its ``tryon`` nodes run by the kernels' torch
   references. fp32 must reach a max relative error below :data:`FP32_MAX_REL_ERROR`; fp16 is
   reported, and must stay below the sanity bound :data:`FP16_MAX_REL_ERROR` (overflow, NaN).

Files in the output directory: :data:`STANDARD_FILE` (what onnxruntime runs) and
:data:`PLUGINS_FILE` (what TensorRT builds, with the plugins of :mod:`export.tensorrt_plugins`).
Input and output names are the generator's: ``cloth``, ``pose``, ``background``,
``background_mask`` -> ``tryon``, ``rendered``, ``cloth_mask``; inputs and outputs are float32 in
both precisions.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import math
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import torch
from torch import nn

from engine.errors import ExportError, InputError
from engine.model.mixed_precision import MixedPrecisionGenerator
from engine.model.mpdt_generator import (
    OUTPUT_NAMES,
    PRECISIONS,
    MPDTGenerator,
    check_generator_args,
    example_inputs,
)
from export.plugin_graph import (
    Call,
    evaluate_plugins_graph,
    insert_plugins,
    plugin_nodes,
    strip_markers,
    trace_marked,
)
from export.tensorrt_onnx_ops import audit
from export.tensorrt_plugins import PLUGIN_NAMESPACE

__all__ = [
    "OPSET",
    "EXPORTER_VERSION",
    "FP32_MAX_REL_ERROR",
    "FP16_MAX_REL_ERROR",
    "PRECISIONS",
    "STANDARD_FILE",
    "PLUGINS_FILE",
    "Parity",
    "GraphReport",
    "ExportReport",
    "simplify_graph",
    "validate_graph",
    "with_size",
    "export_onnx",
    "export_graphs",
    "parity",
    "plugins_parity",
]

OPSET = 17
EXPORTER_VERSION = "2"
"""Bumped whenever the exported graphs change for the same weights (part of cache keys)."""
FP32_MAX_REL_ERROR = 1e-4
FP16_MAX_REL_ERROR = 2e-2
"""Sanity bound for fp16 graphs vs PyTorch float32 (catches overflow and NaN; the measured error
is reported)."""
STANDARD_FILE = "standard.onnx"
PLUGINS_FILE = "plugins.onnx"


@dataclass(frozen=True)
class Parity:
    """A graph vs PyTorch float32 on the same inputs: worst absolute and relative error per
    output (relative to the largest magnitude of the PyTorch output); NaN when not finite."""

    max_abs: dict[str, float]
    max_rel: dict[str, float]

    @property
    def worst_rel(self) -> float:
        values = list(self.max_rel.values())
        return math.nan if any(math.isnan(v) for v in values) else max(values)


@dataclass(frozen=True)
class GraphReport:
    """One written graph: its path, size, op counts, plugin nodes and parity."""

    path: Path
    bytes: int
    ops: dict[str, int]
    plugin_nodes: int
    parity: Parity


@dataclass(frozen=True)
class ExportReport:
    """What :func:`export_graphs` wrote and measured."""

    frames: int
    height: int
    width: int
    precision: str
    standard: GraphReport
    plugins: GraphReport | None

    def to_dict(self) -> dict:
        """JSON-serializable form (paths as strings)."""
        return json.loads(json.dumps(dataclasses.asdict(self), default=str))


def with_size(model: MPDTGenerator, height: int, width: int) -> MPDTGenerator:
    """``model`` at another input size: the same weights in a config copy with ``height`` x
    ``width`` (the network is fully convolutional; each head's patch stays its fraction of the
    feature map). Returns ``model`` itself when the size is unchanged.

    Raises:
        InputError: a size that is not a multiple of ``4 * max(head_divisors)``.
    """
    if not isinstance(model, MPDTGenerator):
        raise InputError("model", "an MPDTGenerator", model)
    cfg = model.config
    if (height, width) == (cfg.height, cfg.width):
        return model
    resized = MPDTGenerator(dataclasses.replace(cfg, height=height, width=width))
    resized.load_state_dict(model.state_dict())
    return resized.eval()


def _check_destination(directory: Path, argument: str) -> None:
    """Raise :class:`ExportError` unless ``directory`` is (or can be created as) a directory this
    process can write files into: tried by creating it and a temporary file in it, before any
    tracing. Directories it had to create stay (the export writes there)."""
    for parent in (directory, *directory.parents):
        if parent.exists():
            if not parent.is_dir():
                what = "is" if parent == directory else f"is inside {str(parent)!r}, which is"
                raise ExportError(f"{argument} {str(directory)!r} {what} an existing file, not a "
                                  "directory")  # fmt: skip
            break
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ExportError(f"{argument} {str(directory)!r} cannot be created: "
                          f"{exc.strerror or exc}") from exc  # fmt: skip
    try:
        with tempfile.NamedTemporaryFile(dir=directory, prefix=".tryon-write-test-"):
            pass
    except OSError as exc:
        raise ExportError(f"{argument} {str(directory)!r} is not writable: "
                          f"{exc.strerror or exc}") from exc  # fmt: skip


def simplify_graph(proto: onnx.ModelProto) -> onnx.ModelProto:
    """onnx-simplifier on ``proto``; :class:`ExportError` when it cannot validate the result."""
    import onnxsim

    simplified, ok = onnxsim.simplify(proto)
    if not ok:
        raise ExportError("onnx-simplifier could not validate the simplified graph")
    return simplified


def _traced(
    model: MPDTGenerator, frames: int, precision: str, simplify: bool
) -> tuple[onnx.ModelProto, list[Call]]:
    """The simplified graph with its call markers (step 1-2 of the module docstring)."""
    model = model.eval()
    inputs = example_inputs(model, frames)
    exported: nn.Module = model if precision == "fp32" else MixedPrecisionGenerator(model, inputs)
    proto, calls = trace_marked(exported, inputs, opset=OPSET)
    return (simplify_graph(proto) if simplify else proto), calls


def validate_graph(proto: onnx.ModelProto, *, plugins: bool) -> None:
    """``onnx.checker`` (full) and the TensorRT operator audit (``tryon`` plugin nodes allowed
    when ``plugins``); :class:`ExportError` naming the first problems otherwise."""
    try:
        onnx.checker.check_model(proto, full_check=True)
    except onnx.checker.ValidationError as exc:
        raise ExportError(f"onnx.checker rejected the graph: {exc}") from exc
    problems = audit(proto, allowed_domains=(PLUGIN_NAMESPACE,) if plugins else ())
    if problems:
        raise ExportError("not parseable by TensorRT: " + "; ".join(problems[:5]))


def _compare(expected: dict[str, torch.Tensor], got: list[np.ndarray]) -> Parity:
    max_abs, max_rel = {}, {}
    for name, value in zip(OUTPUT_NAMES, got, strict=True):
        ref = expected[name].numpy().astype(np.float64)
        diff = float(np.abs(value.astype(np.float64) - ref).max())
        max_abs[name] = diff
        max_rel[name] = diff / max(float(np.abs(ref).max()), 1e-12)
    return Parity(max_abs, max_rel)


def _expected(model: MPDTGenerator, frames: int, seed: int) -> tuple[dict, dict]:
    inputs = example_inputs(model, frames, seed)
    with torch.no_grad():
        expected = model.eval()(**inputs)
    return inputs, expected


def parity(model: MPDTGenerator, path: str | Path, *, frames: int, seed: int = 1) -> Parity:
    """Run a standard graph with onnxruntime (CPU) and the model with PyTorch (float32) on the
    same seeded inputs."""
    import onnxruntime as ort

    inputs, expected = _expected(model, frames, seed)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return _compare(expected, session.run(list(OUTPUT_NAMES), {k: v.numpy() for k, v in
                                                                inputs.items()}))  # fmt: skip


def plugins_parity(model: MPDTGenerator, path: str | Path, *, frames: int, seed: int = 1) -> Parity:
    """Run a plugins graph on CPU (:func:`export.plugin_graph.evaluate_plugins_graph`) and the
    model with PyTorch (float32) on the same seeded inputs."""
    inputs, expected = _expected(model, frames, seed)
    got = evaluate_plugins_graph(onnx.load(str(path)), {k: v.numpy() for k, v in inputs.items()})
    return _compare(expected, got)


def _check_parity(result: Parity, precision: str, graph: str) -> None:
    limit = FP32_MAX_REL_ERROR if precision == "fp32" else FP16_MAX_REL_ERROR
    if not result.worst_rel < limit:  # NaN fails too
        raise ExportError(f"the {precision} {graph} graph differs from PyTorch: max relative "
                          f"error {result.worst_rel:.2e}, limit {limit:.0e}")  # fmt: skip


def _save(proto: onnx.ModelProto, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(proto, str(path))


def _report(proto: onnx.ModelProto, path: Path, result: Parity) -> GraphReport:
    ops = collections.Counter(
        f"{n.domain}::{n.op_type}" if n.domain else n.op_type for n in proto.graph.node
    )
    return GraphReport(path, path.stat().st_size, dict(sorted(ops.items())),
                       len(plugin_nodes(proto)), result)  # fmt: skip


def export_onnx(
    model: MPDTGenerator,
    path: str | Path,
    *,
    frames: int | None = None,
    precision: str = "fp32",
    simplify: bool = True,
) -> tuple[Path, Parity]:
    """Export, simplify, check, audit and verify the standard graph; returns (path, parity).

    Raises:
        InputError: not a generator, ``frames`` < 1, unknown ``precision``, ``path`` not a path
            (before any work).
        ExportError: ``path`` is a directory or an unwritable file, or its directory cannot be
            created or written (before any tracing); the checker, the TensorRT audit or the
            parity check failed.
    """
    frames = check_generator_args(model, frames, precision)
    if not isinstance(path, (str, Path)):
        raise InputError("path", "a file path (str or pathlib.Path)", path)
    path = Path(path)
    if path.is_dir():
        raise ExportError(f"path {str(path)!r} is a directory, expected a file path")
    _check_destination(path.parent, "the directory of path")
    if path.exists() and not os.access(path, os.W_OK):
        raise ExportError(f"path {str(path)!r} exists and is not writable")
    marked, _ = _traced(model, frames, precision, simplify)
    standard = strip_markers(marked)
    if simplify:
        standard = simplify_graph(standard)
    validate_graph(standard, plugins=False)
    _save(standard, path)
    result = parity(model, path, frames=frames)
    _check_parity(result, precision, "standard")
    return path, result


def export_graphs(
    model: MPDTGenerator,
    out_dir: str | Path,
    *,
    frames: int | None = None,
    size: tuple[int, int] | None = None,
    precision: str = "fp32",
) -> ExportReport:
    """Write :data:`STANDARD_FILE` and :data:`PLUGINS_FILE` into ``out_dir``, both validated
    (module docstring), and return what was measured.

    Args:
        model: the float32 generator.
        out_dir: output directory (created, and checked to be writable, before tracing).
        frames: T of the export (default: the config's).
        size: (height, width) (default: the config's); another size exports the same weights at
            that size (:func:`with_size`).
        precision: ``"fp32"`` or ``"fp16"``.

    Raises:
        InputError: a bad argument, before any work.
        ExportError: ``out_dir`` is an existing file, or cannot be created or written (before
            any tracing); a validation step failed.
    """
    frames = check_generator_args(model, frames, precision)
    if size is not None and (
        not isinstance(size, tuple)
        or len(size) != 2
        or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 1 for s in size)
    ):
        raise InputError("size", "(height, width) ints >= 1", size)
    if not isinstance(out_dir, (str, Path)):
        raise InputError("out_dir", "a directory path (str or pathlib.Path)", out_dir)
    if size is not None:
        model = with_size(model, *size)
    out_dir = Path(out_dir)
    _check_destination(out_dir, "output directory")
    marked, calls = _traced(model, frames, precision, simplify=True)

    standard = simplify_graph(strip_markers(marked))
    validate_graph(standard, plugins=False)
    _save(standard, out_dir / STANDARD_FILE)
    standard_parity = parity(model, out_dir / STANDARD_FILE, frames=frames)
    _check_parity(standard_parity, precision, "standard")

    plugins = insert_plugins(marked, calls)
    validate_graph(plugins, plugins=True)
    _save(plugins, out_dir / PLUGINS_FILE)
    plugin_parity = plugins_parity(model, out_dir / PLUGINS_FILE, frames=frames)
    _check_parity(plugin_parity, precision, "plugins")

    cfg = model.config
    return ExportReport(
        frames, cfg.height, cfg.width, precision,
        _report(standard, out_dir / STANDARD_FILE, standard_parity),
        _report(plugins, out_dir / PLUGINS_FILE, plugin_parity),
    )  # fmt: skip
