"""An NVIDIA Triton Inference Server model repository of the streaming graphs.

:func:`write_triton_repository` lays out the causal sliding window of
:mod:`export.streaming_graphs` (a per-frame encoder, then the window over the last T frames)
as three Triton models, with a batch dimension so that Triton batches many live streams::

    <directory>/
      tryon_encoder/config.pbtxt    platform onnxruntime_onnx, dynamic batching
      tryon_encoder/1/model.onnx    encode of B frames: cloth, pose, background, background_mask
                                    (B, C, H, W) -> FEATURE_NAMES (B, ...)
      tryon_window/config.pbtxt     a stateful model: sequence batcher (oldest strategy),
                                    control inputs START / READY / CORRID, implicit state
      tryon_window/1/model.onnx     one frame of B sequences (streams) through their windows
      tryon_stream/config.pbtxt     ensemble: the four inputs -> encoder -> window -> tryon,
      tryon_stream/1/                 rendered, cloth_mask (the version directory is empty)

Each ONNX model directory also holds :data:`TRTEXEC_FILE`, the ``trtexec`` command that builds
its TensorRT plan (batch profile 1 .. ``max_batch``). For each TensorRT plan given,
``tryon_encoder_tensorrt`` / ``tryon_window_tensorrt`` are written with
``1/model.plan`` and the same inputs and outputs (``platform: "tensorrt_plan"``); the ensemble
then uses the TensorRT model for that step.

The window model (:class:`SequenceWindow`) keeps each stream's window in Triton as implicit state
(``sequence_batching { state [...] }``): for every ring name of
:data:`export.streaming_graphs.RING_NAMES` a ``window_<name>`` input (T slots of that frame
feature) and its ``window_<name>_next`` output, plus ``window_slot`` / ``window_slot_next``
(int32, the slot the next frame is written to). Per request it writes the new frame's features
into the slot, runs the MPDT blocks over the T slots and decodes the new frame, exactly what
:class:`engine.cluster.batched.BatchedGenerator` does for B streams. On START (a new stream)
every slot is set to the first frame, so the state's initial value is never read (it is also
declared zero, ``initial_state { zero_data: true }``); where READY is 0 (an empty batch slot)
the state is passed through unchanged. CORRID (``TYPE_INT64``, which Triton allows besides
``TYPE_UINT64``; TensorRT has no unsigned 64-bit type) is echoed as the ``sequence_id`` output, so
a client can check which stream a result belongs to.

A client sends each stream as one Triton sequence to ``tryon_stream`` (``sequence_id`` = the
stream, ``sequence_start`` on its first frame, ``sequence_end`` on its last), with the inputs a
:class:`~engine.runtime.session.TryOnSession` builds per frame (``frame_inputs``, at model size),
and pastes ``rendered`` / ``cloth_mask`` itself. TensorRT plans must be built from the
``model.onnx`` written here with a profile over the batch dimension (:func:`trtexec_shapes`);
TensorRT cannot be installed on the machines this is developed on, so plans are laid out, not
built or checked, here.
"""

from __future__ import annotations

import io
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
import torch
from torch import nn

from engine.errors import ExportError, InputError
from engine.model.mixed_precision import MixedPrecisionGenerator
from engine.model.mpdt_generator import (
    FEATURE_NAMES,
    INPUT_NAMES,
    OUTPUT_NAMES,
    MPDTGenerator,
    check_generator_args,
    example_inputs,
)
from export.onnx_export import (
    FP16_MAX_REL_ERROR,
    FP32_MAX_REL_ERROR,
    OPSET,
    simplify_graph,
    validate_graph,
)
from export.streaming_graphs import NEWEST_NAMES, RING_NAMES, FrameEncoder

__all__ = [
    "ENCODER_MODEL",
    "WINDOW_MODEL",
    "ENSEMBLE_MODEL",
    "CONTROL_INPUTS",
    "SequenceWindow",
    "TRTEXEC_FILE",
    "TritonRepository",
    "state_names",
    "to_pbtxt",
    "trtexec_shapes",
    "write_triton_repository",
]

ENCODER_MODEL = "tryon_encoder"
WINDOW_MODEL = "tryon_window"
ENSEMBLE_MODEL = "tryon_stream"
TENSORRT_SUFFIX = "_tensorrt"
TRTEXEC_FILE = "trtexec.txt"
"""Next to each ONNX model's config.pbtxt: the ``trtexec`` command that builds its plan."""
CONTROL_INPUTS = ("START", "READY", "CORRID")
"""The window model's control inputs, in its input order (after the frame's tensors)."""
SLOT_STATE = "window_slot"
SEQUENCE_ID = "sequence_id"
WINDOW_FRAME_NAMES = RING_NAMES + NEWEST_NAMES
"""What the window model reads of the new frame (the encoder's features and three inputs)."""


def state_names() -> list[tuple[str, str]]:
    """``(input_name, output_name)`` of every implicit state tensor of the window model."""
    names = [f"window_{n}" for n in RING_NAMES] + [SLOT_STATE]
    return [(n, f"{n}_next") for n in names]


# ---------------------------------------------------------------------- the stateful window
class SequenceWindow(nn.Module):
    """One frame for each of B sequences through their windows (Triton's implicit state).

    Inputs, in order: the new frame's :data:`WINDOW_FRAME_NAMES` (B, ...) float32; ``START``,
    ``READY`` (B, 1) float32 (0 or 1); ``CORRID`` (B, 1) int64; the state: ``window_<ring>``
    (B, T, ...) float32 for each ring name, ``window_slot`` (B, 1) int32. Outputs, in order:
    ``tryon``, ``rendered`` (B, 3, H, W), ``cloth_mask`` (B, 1, H, W), ``sequence_id`` (B, 1)
    int64, then the next state (``*_next``, the shapes of the state inputs).
    """

    def __init__(self, model: MPDTGenerator, frames: int) -> None:
        super().__init__()
        self.model = model
        self.frames = frames

    def forward(self, *tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
        n_frame, t = len(WINDOW_FRAME_NAMES), self.frames
        frame = dict(zip(WINDOW_FRAME_NAMES, tensors[:n_frame], strict=True))
        start, ready, corrid = tensors[n_frame : n_frame + 3]  # (B, 1) each
        rings_in = tensors[n_frame + 3 : n_frame + 3 + len(RING_NAMES)]  # (B, T, ...) each
        slot_in = tensors[-1]  # (B, 1) int32
        begin = start > 0.5
        live = ready > 0.5
        slot = torch.where(begin, torch.zeros_like(slot_in), slot_in)  # (B, 1)
        steps = torch.arange(t, dtype=slot.dtype, device=slot.device)
        here = (steps[None, :] == slot)[:, :, None, None, None]  # (B, T, 1, 1, 1)
        begin5 = begin[:, :, None, None, None]  # (B, 1, 1, 1, 1)
        live5 = live[:, :, None, None, None]
        rings_out, flat = [], []
        for name, ring in zip(RING_NAMES, rings_in, strict=True):
            new = frame[name][:, None]  # (B, 1, c, h, w)
            written = torch.where(begin5 | here, new, ring)  # start: every slot is this frame
            rings_out.append(torch.where(live5, written, ring))
            flat.append(written.reshape(-1, *written.shape[2:]))  # (B*T, c, h, w)
        fused = self.model.attend(*flat, t, impl="reference")  # (B*T, c, h, w)
        fused = fused.reshape(-1, t, *fused.shape[1:])  # (B, T, c, h, w)
        newest = (fused * here.to(fused.dtype)).sum(dim=1)  # (B, c, h, w): the new frame's slot
        out = self.model.decode(newest, frame["background_half"], frame["background_full"],
                                frame["cloth"], frame["background"], frame["background_mask"],
                                impl="reference")  # fmt: skip
        following = slot + 1
        following = torch.where(following == t, torch.zeros_like(following), following)
        slot_out = torch.where(live, following, slot_in)
        outputs = [out[name].float() for name in OUTPUT_NAMES]
        return (*outputs, corrid + 0, *rings_out, slot_out)


# ---------------------------------------------------------------------- config.pbtxt
class _Enum(str):
    """A protobuf enum value: written bare (``TYPE_FP32``), not quoted."""


class _Map(list):
    """A protobuf map field: written as one ``name { key: ... value: ... }`` block per entry."""


def _scalar(value: object) -> str:
    if isinstance(value, _Enum):
        return str(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    raise InputError("value", "a str, int, float, bool or enum in a config", value)


def to_pbtxt(message: Mapping[str, object], indent: int = 0) -> str:
    """A config as protobuf text format (Triton's ``config.pbtxt``): ``key: scalar``,
    ``key: [ scalars ]``, ``key { message }``, ``key [ { message }, ... ]`` for repeated
    messages, and one ``key { key: ... value: ... }`` block per entry of a map."""
    pad = "  " * indent
    lines = []
    for key, value in message.items():
        if isinstance(value, _Map):
            for k, v in value:
                lines.append(f"{pad}{key} {{ key: {_scalar(k)} value: {_scalar(v)} }}")
        elif isinstance(value, Mapping):
            lines += [f"{pad}{key} {{", to_pbtxt(value, indent + 1), f"{pad}}}"]
        elif isinstance(value, (list, tuple)):
            if value and all(isinstance(v, Mapping) for v in value):
                blocks = [f"{pad}  {{\n{to_pbtxt(v, indent + 2)}\n{pad}  }}" for v in value]
                lines += [f"{pad}{key} [", ",\n".join(blocks), f"{pad}]"]
            else:
                lines.append(f"{pad}{key}: [ {', '.join(_scalar(v) for v in value)} ]")
        else:
            lines.append(f"{pad}{key}: {_scalar(value)}")
    return "\n".join(lines)


_TRITON_TYPES = {
    onnx.TensorProto.FLOAT: "TYPE_FP32",
    onnx.TensorProto.FLOAT16: "TYPE_FP16",
    onnx.TensorProto.INT32: "TYPE_INT32",
    onnx.TensorProto.INT64: "TYPE_INT64",
    onnx.TensorProto.UINT64: "TYPE_UINT64",
    onnx.TensorProto.BOOL: "TYPE_BOOL",
}


def _signature(proto: onnx.ModelProto) -> tuple[dict, dict]:
    """``{name: (triton type, dims without the batch dimension)}`` of inputs and outputs."""

    def of(values) -> dict:
        out = {}
        for v in values:
            t = v.type.tensor_type
            dims = [d.dim_value if d.HasField("dim_value") else -1 for d in t.shape.dim]
            if not dims or dims[0] != -1 or any(d < 1 for d in dims[1:]):
                raise ExportError(f"{v.name}: expected a dynamic batch dimension and static "
                                  f"others, got {dims}")  # fmt: skip
            out[v.name] = (_TRITON_TYPES[t.elem_type], dims[1:])
        return out

    return of(proto.graph.input), of(proto.graph.output)


def _tensors(signature: Mapping[str, tuple[str, list[int]]], names: Sequence[str]) -> list:
    return [{"name": n, "data_type": _Enum(signature[n][0]), "dims": list(signature[n][1])}
            for n in names]  # fmt: skip


def _encoder_config(name: str, platform: str, inputs: dict, outputs: dict, max_batch: int,
                    queue_delay_us: int) -> dict:  # fmt: skip
    return {
        "name": name,
        "platform": platform,
        "max_batch_size": max_batch,
        "input": _tensors(inputs, INPUT_NAMES),
        "output": _tensors(outputs, FEATURE_NAMES),
        "dynamic_batching": {"max_queue_delay_microseconds": queue_delay_us},
    }


def _window_config(name: str, platform: str, inputs: dict, outputs: dict, max_batch: int,
                   max_sequences: int, idle_us: int, queue_delay_us: int) -> dict:  # fmt: skip
    states = []
    for state_in, state_out in state_names():
        kind, dims = inputs[state_in]
        if outputs[state_out] != (kind, dims):
            raise ExportError(f"state {state_in} / {state_out}: input {inputs[state_in]} and "
                              f"output {outputs[state_out]} differ")  # fmt: skip
        zeros = {"data_type": _Enum(kind), "dims": list(dims), "zero_data": True,
                 "name": f"{state_in} zeros"}  # fmt: skip
        states.append({"input_name": state_in, "output_name": state_out,
                       "data_type": _Enum(kind), "dims": list(dims),
                       "initial_state": zeros})  # fmt: skip
    flag = lambda n, kind: {"name": n, "control": [{"kind": _Enum(kind),  # noqa: E731
                                                     "fp32_false_true": [0, 1]}]}  # fmt: skip
    controls = [
        flag("START", "CONTROL_SEQUENCE_START"),
        flag("READY", "CONTROL_SEQUENCE_READY"),
        {
            "name": "CORRID",
            "control": [
                {"kind": _Enum("CONTROL_SEQUENCE_CORRID"), "data_type": _Enum(inputs["CORRID"][0])}
            ],
        },
    ]
    return {
        "name": name,
        "platform": platform,
        "max_batch_size": max_batch,
        "input": _tensors(inputs, WINDOW_FRAME_NAMES),
        "output": _tensors(outputs, (*OUTPUT_NAMES, SEQUENCE_ID)),
        "sequence_batching": {
            "max_sequence_idle_microseconds": idle_us,
            "oldest": {
                "max_candidate_sequences": max_sequences,
                "preferred_batch_size": [max_batch],
                "max_queue_delay_microseconds": queue_delay_us,
            },
            "control_input": controls,
            "state": states,
        },
    }


def _ensemble_config(encoder: str, window: str, enc_in: dict, win_out: dict,
                     max_batch: int) -> dict:  # fmt: skip
    same = lambda names: _Map((n, n) for n in names)  # noqa: E731
    return {
        "name": ENSEMBLE_MODEL,
        "platform": "ensemble",
        "max_batch_size": max_batch,
        "input": _tensors(enc_in, INPUT_NAMES),
        "output": _tensors(win_out, OUTPUT_NAMES),
        "ensemble_scheduling": {
            "step": [
                {
                    "model_name": encoder,
                    "model_version": -1,
                    "input_map": same(INPUT_NAMES),
                    "output_map": same(FEATURE_NAMES),
                },
                {
                    "model_name": window,
                    "model_version": -1,
                    "input_map": same(WINDOW_FRAME_NAMES),
                    "output_map": same(OUTPUT_NAMES),
                },
            ]
        },
    }


# ---------------------------------------------------------------------- graphs
def _export(module: nn.Module, inputs: dict[str, torch.Tensor], outputs: Sequence[str],
            path: Path) -> onnx.ModelProto:  # fmt: skip
    buffer = io.BytesIO()
    names = [*inputs, *outputs]
    with torch.no_grad():
        torch.onnx.export(module, tuple(inputs.values()), buffer, input_names=list(inputs),
                          output_names=list(outputs), opset_version=OPSET,
                          do_constant_folding=True, dynamo=False,
                          dynamic_axes={n: {0: "batch"} for n in names})  # fmt: skip
    try:
        proto = simplify_graph(onnx.load_from_string(buffer.getvalue()))
        validate_graph(proto, plugins=False)
    except ExportError as exc:
        raise ExportError(f"{path}: {exc}") from exc
    got = [v.name for v in proto.graph.input], [v.name for v in proto.graph.output]
    if got != (list(inputs), list(outputs)):
        raise ExportError(f"{path}: the graph's inputs / outputs {got} are not the ones traced")
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(proto, str(path))
    return proto


def _window_inputs(model: MPDTGenerator, frames: int, batch: int, seed: int) -> dict:
    """Seeded inputs of the window model for ``batch`` sequences, mid-stream (not START)."""
    per_frame = {n: x[0] for n, x in example_inputs(model, frames * batch, seed).items()}
    with torch.no_grad():
        feats = model.encode(**per_frame)  # (batch*T, ...)
    out = {}
    for name in WINDOW_FRAME_NAMES:
        source = feats if name in feats else per_frame
        out[name] = source[name][::frames].contiguous()  # (batch, ...)
    out["START"] = torch.tensor([[0.0]] * (batch - 1) + [[1.0]])
    out["READY"] = torch.ones(batch, 1)
    out["CORRID"] = torch.arange(1, batch + 1, dtype=torch.int64)[:, None]
    for name in RING_NAMES:
        x = feats[name]  # (batch*T, ...) -> each sequence's T slots
        out[f"window_{name}"] = x.reshape(batch, frames, *x.shape[1:]).contiguous()
    out[SLOT_STATE] = (torch.arange(batch, dtype=torch.int32) % frames)[:, None]
    return out


def _window_outputs() -> list[str]:
    return [*OUTPUT_NAMES, SEQUENCE_ID, *(o for _, o in state_names())]


def _worst_rel(module: nn.Module, inputs: dict, path: Path) -> float:
    import onnxruntime as ort

    with torch.no_grad():
        expected = module(*inputs.values())
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(None, {k: v.numpy() for k, v in inputs.items()})
    worst = 0.0
    for value, ref in zip(got, expected, strict=True):
        ref = ref.numpy().astype(np.float64)
        diff = float(np.abs(value.astype(np.float64) - ref).max())
        worst = max(worst, diff / max(float(np.abs(ref).max()), 1e-12))
    return worst


# ---------------------------------------------------------------------- the repository
@dataclass
class TritonRepository:
    """What :func:`write_triton_repository` wrote.

    Attributes:
        directory: the repository.
        models: model name -> its directory.
        parity: graph -> worst relative error of onnxruntime vs PyTorch float32 (batch 2).
        trtexec_shapes: graph -> the ``--minShapes/--optShapes/--maxShapes`` arguments a
            TensorRT plan of that ``model.onnx`` needs (see :func:`trtexec_shapes`).
    """

    directory: Path
    models: dict[str, Path] = field(default_factory=dict)
    parity: dict[str, float] = field(default_factory=dict)
    trtexec_shapes: dict[str, str] = field(default_factory=dict)


def trtexec_shapes(proto: onnx.ModelProto, max_batch: int, opt_batch: int | None = None) -> str:
    """``--minShapes=... --optShapes=... --maxShapes=...`` for ``trtexec`` (batch 1,
    ``opt_batch`` (default ``max_batch``) and ``max_batch``; the other dimensions static)."""
    inputs, _ = _signature(proto)
    opt = max_batch if opt_batch is None else opt_batch

    def shapes(batch: int) -> str:
        return ",".join(f"{n}:{'x'.join(map(str, [batch, *dims]))}"
                        for n, (_, dims) in inputs.items())  # fmt: skip

    return f"--minShapes={shapes(1)} --optShapes={shapes(opt)} --maxShapes={shapes(max_batch)}"


def _plan(value: object, argument: str) -> Path | None:
    if value is None:
        return None
    path = Path(value) if isinstance(value, (str, Path)) else None
    if path is None or not path.is_file():
        raise InputError(argument, "None or the path of a TensorRT plan file", value)
    return path


def write_triton_repository(
    directory: str | Path,
    model: MPDTGenerator,
    *,
    frames: int | None = None,
    precision: str = "fp32",
    max_batch: int = 8,
    max_sequences: int | None = None,
    max_queue_delay_us: int = 1000,
    max_sequence_idle_us: int = 5_000_000,
    encoder_plan: str | Path | None = None,
    window_plan: str | Path | None = None,
) -> TritonRepository:
    """Write the Triton model repository of ``model``'s streaming graphs (module docstring).

    Args:
        directory: the repository (created; the three model directories are replaced).
        model: the generator.
        frames: T, the window (default: the model's).
        precision: ``"fp32"`` or ``"fp16"`` (the mixed-precision copy of
            :mod:`engine.model.mixed_precision`; inputs, outputs and state stay float32).
        max_batch: Triton's ``max_batch_size`` of every model (streams per batch).
        max_sequences: streams one window-model instance holds at once (the oldest strategy's
            ``max_candidate_sequences``; more wait in Triton's backlog); default 4 x max_batch.
        max_queue_delay_us: how long Triton waits to fill a batch.
        max_sequence_idle_us: a stream without a request this long is ended by Triton.
        encoder_plan, window_plan: TensorRT plans built from this repository's ``model.onnx``
            files (see :func:`trtexec_shapes`); each adds a ``tensorrt_plan`` model.

    Raises:
        InputError: a bad argument.
        ExportError: the simplifier, checker, TensorRT audit or parity failed.
    """
    frames = check_generator_args(model, frames, precision)
    counts = (("max_batch", max_batch), ("max_queue_delay_us", max_queue_delay_us),
              ("max_sequence_idle_us", max_sequence_idle_us),
              ("max_sequences", 1 if max_sequences is None else max_sequences))  # fmt: skip
    for name, value in counts:
        low = 0 if name == "max_queue_delay_us" else 1
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise InputError(name, f"an int >= {low}", value)
    max_sequences = 4 * max_batch if max_sequences is None else max_sequences
    plans = {ENCODER_MODEL: _plan(encoder_plan, "encoder_plan"),
             WINDOW_MODEL: _plan(window_plan, "window_plan")}  # fmt: skip
    root = Path(directory)
    if root.exists() and not root.is_dir():
        raise InputError("directory", "a directory (or a path to create one at)", str(root))

    model = model.eval()
    traced, limit = model, FP32_MAX_REL_ERROR
    if precision == "fp16":
        traced = MixedPrecisionGenerator(model, example_inputs(model, frames)).generator
        limit = FP16_MAX_REL_ERROR
    report = TritonRepository(root)
    for name in (ENCODER_MODEL, WINDOW_MODEL, ENSEMBLE_MODEL):  # what an earlier run wrote
        for stale in (name, name + TENSORRT_SUFFIX):
            shutil.rmtree(root / stale, ignore_errors=True)

    batch = 2  # traced and checked at batch 2: a batch-1 trace could hide a batch-size bug
    encoder_in = {n: x[0, :batch].contiguous() for n, x in example_inputs(model, batch).items()}
    window_in = _window_inputs(model, frames, batch, seed=3)
    graphs = {}
    for name, module, reference, inputs, outputs in (
        (ENCODER_MODEL, FrameEncoder(traced), FrameEncoder(model), encoder_in, FEATURE_NAMES),
        (WINDOW_MODEL, SequenceWindow(traced, frames), SequenceWindow(model, frames), window_in,
         _window_outputs()),
    ):  # fmt: skip
        path = root / name / "1" / "model.onnx"
        graphs[name] = _export(module, inputs, outputs, path)
        report.parity[name] = _worst_rel(reference, inputs, path)
        if report.parity[name] >= limit:
            raise ExportError(f"{path} differs from PyTorch: max relative error "
                              f"{report.parity[name]:.2e} >= {limit:.0e}")  # fmt: skip
        report.trtexec_shapes[name] = trtexec_shapes(graphs[name], max_batch)
        (root / name / TRTEXEC_FILE).write_text(
            f"trtexec --onnx=1/model.onnx --saveEngine=model.plan {report.trtexec_shapes[name]}\n"
        )  # Triton ignores files of a model directory that are not versions or its config

    (enc_in, enc_out), (win_in, win_out) = (_signature(graphs[n]) for n in graphs)
    used = {}
    for name, plan in plans.items():
        variants = [(name, "onnxruntime_onnx", None)]
        if plan is not None:
            variants.append((name + TENSORRT_SUFFIX, "tensorrt_plan", plan))
        for model_name, platform, source in variants:
            if name == ENCODER_MODEL:
                config = _encoder_config(model_name, platform, enc_in, enc_out, max_batch,
                                         max_queue_delay_us)  # fmt: skip
            else:
                config = _window_config(model_name, platform, win_in, win_out, max_batch,
                                        max_sequences, max_sequence_idle_us,
                                        max_queue_delay_us)  # fmt: skip
            if source is not None:
                (root / model_name / "1").mkdir(parents=True, exist_ok=True)
                shutil.copyfile(source, root / model_name / "1" / "model.plan")
            (root / model_name / "config.pbtxt").write_text(to_pbtxt(config) + "\n")
            report.models[model_name] = root / model_name
            used[name] = model_name
    ensemble = _ensemble_config(used[ENCODER_MODEL], used[WINDOW_MODEL], enc_in, win_out,
                                max_batch)  # fmt: skip
    (root / ENSEMBLE_MODEL / "1").mkdir(parents=True, exist_ok=True)
    (root / ENSEMBLE_MODEL / "config.pbtxt").write_text(to_pbtxt(ensemble) + "\n")
    report.models[ENSEMBLE_MODEL] = root / ENSEMBLE_MODEL
    return report
