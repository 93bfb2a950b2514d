"""Export of an MPDT generator to the *standard* ONNX graph, simplified and validated.

Steps (each a function, all run by :func:`export_onnx`):

1. trace the model with ``torch.onnx.export`` (TorchScript exporter, opset :data:`OPSET`, static
   shapes: batch 1, ``frames`` T, the config's H and W); while exporting, the generator uses its
   plain references for patch attention and compositing (standard ops only);
2. simplify with onnx-simplifier (constant folding, shape ops removed);
3. ``onnx.checker`` (full check) and the TensorRT operator audit
   (:func:`export.tensorrt_onnx_ops.audit`);
4. parity: onnxruntime (CPU) vs PyTorch on the same seeded inputs; fp32 must reach a max relative
   error below :data:`FP32_MAX_REL_ERROR`.

Input and output names are the generator's: ``cloth``, ``pose``, ``background``,
``background_mask`` -> ``tryon``, ``rendered``, ``cloth_mask``.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import torch

from engine.errors import ExportError, InputError
from engine.mpdt import INPUT_NAMES, OUTPUT_NAMES, MPDTGenerator
from export.tensorrt_onnx_ops import audit

__all__ = ["OPSET", "FP32_MAX_REL_ERROR", "Parity", "example_inputs", "export_onnx", "parity"]

OPSET = 17
FP32_MAX_REL_ERROR = 1e-4


def example_inputs(model: MPDTGenerator, frames: int, seed: int = 0) -> dict[str, torch.Tensor]:
    """Seeded (1, T, C, H, W) inputs in the generator's value ranges (masks binary)."""
    cfg = model.config
    g = torch.Generator().manual_seed(seed)
    channels = {"cloth": 4, "pose": cfg.pose_channels, "background": 3, "background_mask": 1}
    out = {
        name: torch.rand((1, frames, channels[name], cfg.height, cfg.width), generator=g)
        for name in INPUT_NAMES
    }
    out["background_mask"] = (out["background_mask"] > 0.5).float()
    out["cloth"][:, :, 3] = (out["cloth"][:, :, 3] > 0.4).float()
    return out


@dataclass(frozen=True)
class Parity:
    """onnxruntime vs PyTorch on the same inputs: worst absolute and relative error per output
    (relative to the largest magnitude of the PyTorch output)."""

    max_abs: dict[str, float]
    max_rel: dict[str, float]

    @property
    def worst_rel(self) -> float:
        return max(self.max_rel.values())


def _trace(model: MPDTGenerator, inputs: dict[str, torch.Tensor]) -> onnx.ModelProto:
    buffer = io.BytesIO()
    with torch.no_grad():
        torch.onnx.export(
            model,
            tuple(inputs[name] for name in INPUT_NAMES),
            buffer,
            input_names=list(INPUT_NAMES),
            output_names=list(OUTPUT_NAMES),
            opset_version=OPSET,
            do_constant_folding=True,
            dynamo=False,
        )
    return onnx.load_from_string(buffer.getvalue())


def _simplify(proto: onnx.ModelProto) -> onnx.ModelProto:
    import onnxsim

    simplified, ok = onnxsim.simplify(proto)
    if not ok:
        raise ExportError("onnx-simplifier could not validate the simplified graph")
    return simplified


def parity(model: MPDTGenerator, path: str | Path, *, frames: int, seed: int = 1) -> Parity:
    """Run the ONNX file with onnxruntime (CPU) and the model with PyTorch on the same inputs."""
    import onnxruntime as ort

    inputs = example_inputs(model, frames, seed)
    with torch.no_grad():
        expected = model(**inputs)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(list(OUTPUT_NAMES), {k: v.numpy() for k, v in inputs.items()})
    max_abs, max_rel = {}, {}
    for name, value in zip(OUTPUT_NAMES, got, strict=True):
        ref = expected[name].numpy()
        diff = float(np.abs(value.astype(np.float64) - ref).max())
        max_abs[name] = diff
        max_rel[name] = diff / max(float(np.abs(ref).max()), 1e-12)
    return Parity(max_abs, max_rel)


def export_onnx(
    model: MPDTGenerator, path: str | Path, *, frames: int | None = None, simplify: bool = True
) -> tuple[Path, Parity]:
    """Export, simplify, check, audit and verify the standard graph; returns (path, parity).

    Raises:
        InputError: ``frames`` < 1.
        ExportError: the checker, the TensorRT audit or the fp32 parity failed.
    """
    if not isinstance(model, MPDTGenerator):
        raise InputError("model", "an MPDTGenerator", model)
    frames = model.config.frames if frames is None else frames
    if isinstance(frames, bool) or not isinstance(frames, int) or frames < 1:
        raise InputError("frames", "an int >= 1", frames)
    model = model.eval()
    proto = _trace(model, example_inputs(model, frames))
    if simplify:
        proto = _simplify(proto)
    try:
        onnx.checker.check_model(proto, full_check=True)
    except onnx.checker.ValidationError as exc:
        raise ExportError(f"onnx.checker rejected the graph: {exc}") from exc
    problems = audit(proto)
    if problems:
        raise ExportError("not parseable by TensorRT: " + "; ".join(problems[:5]))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(proto, str(path))
    result = parity(model, path, frames=frames)
    if result.worst_rel >= FP32_MAX_REL_ERROR:
        raise ExportError(
            f"onnxruntime differs from PyTorch: max relative error {result.worst_rel:.2e} "
            f">= {FP32_MAX_REL_ERROR:.0e}"
        )
    return path, result
