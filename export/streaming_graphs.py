"""The two graphs of the causal sliding window (``mode="latency"``): per-frame encoder + window.

A live stream needs one output per input frame. Running the whole generator over the last T
frames for every new frame would recompute T encoders and T decoders per frame; the window only
needs the newest frame's encoder and decoder, plus the MPDT blocks over the T cached feature maps.
So the generator is exported twice more, with the same checks as the standard graph (simplified,
``onnx.checker``, TensorRT operator audit, onnxruntime parity vs PyTorch below 1e-4):

- ``encoder.onnx``: :meth:`engine.model.mpdt_generator.MPDTGenerator.encode` for one frame.
  Inputs ``cloth``, ``pose``, ``background``, ``background_mask`` (1, C, H, W) float32 ->
  outputs :data:`engine.model.mpdt_generator.FEATURE_NAMES` (1, ...) float32.
- ``window.onnx``: :meth:`~engine.model.mpdt_generator.MPDTGenerator.attend` over the T cached
  frames, then :meth:`~engine.model.mpdt_generator.MPDTGenerator.decode` of the newest. Inputs:
  ``cloth_features``, ``pose_features``, ``background_features`` (T, c, h, w), ``omega``
  (T, 1, h, w) (a ring buffer: frame order does not matter, the blocks and the temporal context
  are equivariant to it), ``newest`` (1,) int64 (the ring slot of the newest frame), and the
  newest frame's ``background_half``, ``background_full``, ``cloth``, ``background``,
  ``background_mask`` (1, ...) -> ``tryon``, ``rendered`` (1, 3, H, W), ``cloth_mask``
  (1, 1, H, W).

Both are exported in fp32 or fp16 (``precision``), inputs and outputs float32 either way.

With ``plugins=True`` (what TensorRT builds), each graph whose module calls the kernels'
references also gets a *plugins graph* ``<name>.plugins.onnx`` (:func:`plugins_file`): the same
inputs and outputs, the patch attention heads and the composite as ``tryon`` plugin nodes
(:mod:`export.plugin_graph`: traced with call markers, simplified, nodes spliced in), checked like
the standard graphs (``onnx.checker``, TensorRT audit with the ``tryon`` domain allowed, parity
vs PyTorch on CPU through :func:`export.plugin_graph.evaluate_plugins_graph`, same limits). Only
the window calls them (2 attentions per MPDT block, one node per head, and the composite), so
only ``window.plugins.onnx`` is written: the encoder is convolutions only, and TensorRT builds
``encoder.onnx`` as it is.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import onnx
import torch
from torch import nn

from engine.errors import ExportError, InputError
from engine.model.mixed_precision import MixedPrecisionGenerator
from engine.model.mpdt_generator import (
    FEATURE_NAMES,
    OUTPUT_NAMES,
    MPDTGenerator,
    check_generator_args,
    example_inputs,
)
from export.onnx_export import (
    FP16_MAX_REL_ERROR,
    OPSET,
    simplify_graph,
    validate_graph,
)
from export.onnx_export import FP32_MAX_REL_ERROR as MAX_REL_ERROR
from export.plugin_graph import MarkedModule, evaluate_plugins_graph, insert_plugins, trace_marked

__all__ = [
    "FrameEncoder",
    "WindowDecoder",
    "WINDOW_INPUT_NAMES",
    "RING_NAMES",
    "NEWEST_NAMES",
    "export_streaming_graphs",
    "plugins_file",
]

RING_NAMES = ("cloth_features", "pose_features", "background_features", "omega")
"""Features kept for every frame of the window (ring buffers of T slots)."""
NEWEST_NAMES = ("background_half", "background_full", "cloth", "background", "background_mask")
"""What the window graph reads of the newest frame only."""
WINDOW_INPUT_NAMES = RING_NAMES + ("newest",) + NEWEST_NAMES


class FrameEncoder(nn.Module):
    """``encode`` of one frame, outputs as a tuple in :data:`FEATURE_NAMES` order."""

    def __init__(self, model: MPDTGenerator) -> None:
        super().__init__()
        self.model = model

    def forward(self, cloth, pose, background, background_mask) -> tuple[torch.Tensor, ...]:
        feats = self.model.encode(cloth, pose, background, background_mask)
        return tuple(feats[name].float() for name in FEATURE_NAMES)  # float32 at the boundary


class WindowDecoder(nn.Module):
    """``attend`` over the T ring slots, then ``decode`` of slot ``newest``."""

    def __init__(self, model: MPDTGenerator) -> None:
        super().__init__()
        self.model = model

    def forward(
        self,
        cloth_features: torch.Tensor,
        pose_features: torch.Tensor,
        background_features: torch.Tensor,
        omega: torch.Tensor,
        newest: torch.Tensor,
        background_half: torch.Tensor,
        background_full: torch.Tensor,
        cloth: torch.Tensor,
        background: torch.Tensor,
        background_mask: torch.Tensor,
    ) -> tuple[torch.Tensor, ...]:
        frames = cloth_features.shape[0]
        fused = self.model.attend(cloth_features, pose_features, background_features, omega,
                                  frames, impl="reference")  # fmt: skip
        fused = torch.index_select(fused, 0, newest)  # (1, c, h, w)
        out = self.model.decode(fused, background_half, background_full, cloth, background,
                                background_mask, impl="reference")  # fmt: skip
        return tuple(out[name].float() for name in OUTPUT_NAMES)  # float32 at the boundary


def example_window_inputs(model: MPDTGenerator, frames: int, seed: int = 0):
    """Seeded encoder inputs for ``frames`` frames and the matching window-graph inputs."""
    per_frame = {n: x[0] for n, x in example_inputs(model, frames, seed).items()}  # (T, C, H, W)
    with torch.no_grad():
        feats = model.encode(**per_frame)
    newest = frames - 1 if frames == 1 else frames // 2  # a slot in the middle of the ring
    window = {name: feats[name] for name in RING_NAMES}
    window["newest"] = torch.tensor([newest], dtype=torch.int64)
    for name in NEWEST_NAMES:
        source = feats if name in feats else per_frame
        window[name] = source[name][newest : newest + 1].contiguous()
    encoder = {name: x[:1].contiguous() for name, x in per_frame.items()}
    return encoder, window


def _export(module: nn.Module, inputs: dict, outputs: tuple[str, ...], path: Path) -> None:
    buffer = io.BytesIO()
    with torch.no_grad():
        torch.onnx.export(module, tuple(inputs.values()), buffer, input_names=list(inputs),
                          output_names=list(outputs), opset_version=OPSET,
                          do_constant_folding=True, dynamo=False)  # fmt: skip
    try:
        proto = simplify_graph(onnx.load_from_string(buffer.getvalue()))
        validate_graph(proto, plugins=False)
    except ExportError as exc:
        raise ExportError(f"{path.name}: {exc}") from exc
    onnx.save(proto, str(path))


def plugins_file(name: str) -> str:
    """The file name of graph ``name``'s plugins graph: ``"window"`` -> ``window.plugins.onnx``."""
    return f"{name}.plugins.onnx"


def _export_plugins(
    marked: MarkedModule, inputs: dict, outputs: tuple[str, ...], path: Path
) -> None:
    """Trace with the call markers, simplify, splice in the plugin nodes, check, save."""
    try:
        proto, calls = trace_marked(marked, inputs, opset=OPSET)
        proto = insert_plugins(simplify_graph(proto), calls, outputs)
        validate_graph(proto, plugins=True)
    except ExportError as exc:
        raise ExportError(f"{path.name}: {exc}") from exc
    onnx.save(proto, str(path))


def _worst(expected: tuple[torch.Tensor, ...], got: list[np.ndarray]) -> float:
    """The worst relative error over the outputs; NaN when any is not finite."""
    errors = []
    for value, ref in zip(got, expected, strict=True):
        ref = ref.numpy()
        diff = float(np.abs(value.astype(np.float64) - ref).max())
        errors.append(diff / max(float(np.abs(ref).max()), 1e-12))
    return float(np.max(errors))  # propagates NaN (Python's max would drop it)


def _parity(module: nn.Module, inputs: dict, outputs: tuple[str, ...], path: Path) -> float:
    import onnxruntime as ort

    with torch.no_grad():
        expected = module(*inputs.values())
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return _worst(expected, session.run(list(outputs), {k: v.numpy() for k, v in inputs.items()}))


def _plugins_parity(module: nn.Module, inputs: dict, path: Path) -> float:
    with torch.no_grad():
        expected = module(*inputs.values())
    got = evaluate_plugins_graph(onnx.load(str(path)), {k: v.numpy() for k, v in inputs.items()})
    return _worst(expected, got)


def _reference_calls(marked: MarkedModule, inputs: dict) -> int:
    """How many reference calls one eager run of ``marked`` records."""
    with torch.no_grad():
        marked(*(inputs[name] for name in marked.input_names))
    return len(marked.calls)


def export_streaming_graphs(
    model: MPDTGenerator,
    out_dir: str | Path,
    *,
    frames: int | None,
    precision: str = "fp32",
    plugins: bool = False,
) -> dict[str, float]:
    """Write ``encoder.onnx`` and ``window.onnx`` (T = ``frames``; ``None``: the model's own
    window) to ``out_dir``, checked and verified; returns each graph's worst relative error vs
    PyTorch float32, keyed by file stem.

    ``precision="fp16"`` traces the mixed-precision copy of the model
    (:mod:`engine.model.mixed_precision`: fp16 convolutions, the MPDT blocks and every
    calibrated hot spot in fp32); inputs and outputs stay float32, and parity is checked
    against :data:`export.onnx_export.FP16_MAX_REL_ERROR`.

    ``plugins=True`` also writes the plugins graph of every graph that calls a kernel reference
    (module docstring): ``window.plugins.onnx`` (key ``"window.plugins"``); the encoder calls
    none, so there is no ``encoder.plugins.onnx``.

    Raises:
        InputError: ``frames`` < 1, ``model`` is not a generator, a bad ``precision`` or
            ``plugins``.
        ExportError: simplifier, checker, TensorRT audit or parity failed.
    """
    frames = check_generator_args(model, frames, precision)
    if not isinstance(plugins, bool):
        raise InputError("plugins", "True or False", plugins)
    model = model.eval()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    encoder_in, window_in = example_window_inputs(model, frames)
    traced, limit = model, MAX_REL_ERROR
    if precision == "fp16":
        traced = MixedPrecisionGenerator(model, example_inputs(model, frames)).generator
        limit = FP16_MAX_REL_ERROR
    errors = {}
    for name, module, inputs, outputs in (
        ("encoder", FrameEncoder(traced), encoder_in, FEATURE_NAMES),
        ("window", WindowDecoder(traced), window_in, OUTPUT_NAMES),
    ):
        path = out_dir / f"{name}.onnx"
        _export(module, inputs, outputs, path)
        reference = module if precision == "fp32" else _float32_twin(name, model)
        errors[name] = _parity(reference, inputs, outputs, path)
        _check_limit(path.name, errors[name], limit)
        if not plugins:
            continue
        marked = MarkedModule(module, tuple(inputs), outputs)
        if _reference_calls(marked, inputs) == 0:
            continue  # standard ops only: TensorRT builds this graph as it is
        path = out_dir / plugins_file(name)
        _export_plugins(marked, inputs, outputs, path)
        errors[f"{name}.plugins"] = _plugins_parity(reference, inputs, path)
        _check_limit(path.name, errors[f"{name}.plugins"], limit)
    return errors


def _check_limit(file: str, error: float, limit: float) -> None:
    if not error < limit:  # NaN fails too
        raise ExportError(f"{file} differs from PyTorch: max relative error {error:.2e} >= "
                          f"{limit:.0e}")  # fmt: skip


def _float32_twin(name: str, model: MPDTGenerator) -> nn.Module:
    return FrameEncoder(model) if name == "encoder" else WindowDecoder(model)
