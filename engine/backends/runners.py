"""The backends that run a generator: one small interface, one class per runtime.

``runner.run(inputs) -> outputs``: ``inputs`` maps the graph's input names (``cloth``, ``pose``,
``background``, ``background_mask``) to (1, T, C, H, W) float32 tensors; the result maps its
output names (``tryon``, ``rendered``, ``cloth_mask``) to float32 tensors. Shapes are static:
fixed when the runner is made (T, H, W of the export), checked on every call before any work.
Inputs and outputs are float32 at every precision (the fp16 graphs cast at their boundary).

- :class:`TorchRunner`: eager PyTorch (Triton kernels on CUDA, the references on CPU); fp16 runs
  the export's mixed-precision copy of the model (:mod:`engine.model.mixed_precision`).
- :class:`OnnxRuntimeRunner`: an exported standard ONNX graph (fp32 or fp16) in onnxruntime,
  graph optimizations on, intra-op threads = this machine's cores; inputs and outputs bound in
  place (I/O binding), the outputs preallocated once and *reused by every call* (copy them to
  keep them).
- :class:`TensorRTRunner`: a serialized TensorRT engine (built by
  :mod:`export.tensorrt_engine`), preallocated torch CUDA tensors bound by name,
  ``execute_async_v3`` on the current torch stream, every call's result checked; optionally the
  execution is captured in a CUDA graph after warm-up and replayed. TensorRT is imported lazily.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch

from engine.errors import BackendUnavailableError, InputError
from engine.model.mixed_precision import MixedPrecisionGenerator
from engine.model.mpdt_generator import INPUT_NAMES, OUTPUT_NAMES, MPDTGenerator, example_inputs
from engine.packages import import_tensorrt

__all__ = ["TorchRunner", "OnnxRuntimeRunner", "TensorRTRunner", "execute", "open_engine"]


def _check(inputs: Mapping[str, torch.Tensor], shapes: Mapping[str, tuple[int, ...]]) -> None:
    if not isinstance(inputs, Mapping) or set(inputs) != set(shapes):
        raise InputError("inputs", f"a mapping with exactly the keys {sorted(shapes)}", inputs)
    for name, shape in shapes.items():
        x = inputs[name]
        if not isinstance(x, torch.Tensor) or tuple(x.shape) != shape or x.dtype != torch.float32:
            raise InputError(name, f"a float32 tensor of shape {shape}", x)


def open_engine(trt, engine_bytes: bytes):
    """``(engine, execution context)`` of a serialized TensorRT engine, or
    :class:`BackendUnavailableError` saying which step failed."""
    engine = trt.Runtime(trt.Logger(trt.Logger.WARNING)).deserialize_cuda_engine(engine_bytes)
    if engine is None:
        raise BackendUnavailableError("tensorrt", "the engine does not deserialize here")
    context = engine.create_execution_context()
    if context is None:
        raise BackendUnavailableError("tensorrt", "could not create an execution context")
    return engine, context


def execute(context) -> None:
    """``execute_async_v3`` on the current torch stream, its result checked."""
    if not context.execute_async_v3(torch.cuda.current_stream().cuda_stream):
        raise BackendUnavailableError("tensorrt", "execute_async_v3 reported a failure")


class TorchRunner:
    """Eager PyTorch on ``device``; ``frames`` fixes T like an exported graph does; ``precision``
    ``"fp16"`` runs :class:`engine.model.mixed_precision.MixedPrecisionGenerator` (float32 in and
    out)."""

    name = "torch"

    def __init__(
        self,
        model: MPDTGenerator,
        frames: int,
        device: str | torch.device = "cpu",
        *,
        precision: str = "fp32",
    ):
        if precision not in ("fp32", "fp16"):
            raise InputError("precision", "'fp32' or 'fp16'", precision)
        self.device = torch.device(device)
        self.precision = precision
        self.model = model.to(self.device).eval()
        cfg = model.config
        if precision == "fp16":
            calibration = {k: v.to(self.device) for k, v in example_inputs(model, frames).items()}
            self.model = MixedPrecisionGenerator(self.model, calibration).eval()
        self.input_shapes = {
            n: (1, frames, c, cfg.height, cfg.width) for n, c in cfg.input_channels.items()
        }
        self.output_names = OUTPUT_NAMES

    @torch.no_grad()
    def run(self, inputs: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        _check(inputs, self.input_shapes)
        return self.model(**{k: v.to(self.device) for k, v in inputs.items()})


class OnnxRuntimeRunner:
    """onnxruntime on CPU (or its CUDA provider) for an exported standard graph."""

    name = "onnxruntime"

    def __init__(self, path: str | Path, *, device: str = "cpu", threads: int | None = None):
        import onnx
        import onnxruntime as ort

        if not Path(path).is_file():
            raise InputError("path", "an exported standard.onnx file", str(path))
        if any(n.domain for n in onnx.load(str(path), load_external_data=False).graph.node):
            raise InputError("path", "a standard graph (the plugins graph is for TensorRT)",
                             str(path))  # fmt: skip

        providers = ["CPUExecutionProvider"]
        if device == "cuda":
            if "CUDAExecutionProvider" not in ort.get_available_providers():
                raise BackendUnavailableError("onnxruntime", "no CUDAExecutionProvider here")
            providers.insert(0, "CUDAExecutionProvider")
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = threads or os.cpu_count() or 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        self.session = ort.InferenceSession(str(path), options, providers=providers)
        self.device = torch.device(device)
        self.input_shapes = {i.name: tuple(i.shape) for i in self.session.get_inputs()}
        self.output_names = tuple(o.name for o in self.session.get_outputs())
        io = (*self.session.get_inputs(), *self.session.get_outputs())
        if (
            set(self.input_shapes) != set(INPUT_NAMES)
            or set(self.output_names) != set(OUTPUT_NAMES)
            or any(t.type != "tensor(float)" for t in io)
        ):
            raise InputError("path", "a standard graph exported by `tryon export` (float32 I/O)",
                             str(path))  # fmt: skip
        self.outputs = {  # preallocated once, bound by every run
            o.name: torch.empty(tuple(o.shape), dtype=torch.float32, device=self.device)
            for o in self.session.get_outputs()
        }
        self._binding = self.session.io_binding()
        kind, index = self.device.type, self.device.index or 0
        for name, tensor in self.outputs.items():
            self._binding.bind_output(name, kind, index, np.float32, tuple(tensor.shape),
                                      tensor.data_ptr())  # fmt: skip

    def run(self, inputs: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        _check(inputs, self.input_shapes)
        kind, index = self.device.type, self.device.index or 0
        keep = []  # contiguous copies must outlive the run
        for name, x in inputs.items():
            x = x.to(self.device).contiguous()
            keep.append(x)
            self._binding.bind_input(name, kind, index, np.float32, tuple(x.shape), x.data_ptr())
        self.session.run_with_iobinding(self._binding)
        return self.outputs


class TensorRTRunner:
    """Runs a serialized engine with preallocated torch CUDA tensors bound by name.

    Args:
        engine_bytes: a serialized engine (:func:`export.tensorrt_engine.load_or_build_engine`).
        cuda_graph: after ``warmup`` ordinary runs, capture ``execute_async_v3`` in a
            ``torch.cuda.CUDAGraph`` and replay it for every later call (static shapes and
            addresses make this valid; it removes TensorRT's per-call launch overhead).
        warmup: ordinary runs before the capture (TensorRT needs at least one, to finish its
            deferred setup outside the capture).

    Raises:
        BackendUnavailableError: TensorRT missing, the engine does not deserialize here, or a
            TensorRT call reports failure.
    """

    name = "tensorrt"

    def __init__(self, engine_bytes: bytes, *, cuda_graph: bool = False, warmup: int = 2):
        if isinstance(warmup, bool) or not isinstance(warmup, int) or warmup < 1:
            raise InputError("warmup", "an int >= 1", warmup)
        trt = import_tensorrt()
        if not torch.cuda.is_available():
            raise BackendUnavailableError("tensorrt", "no CUDA device")
        self.engine, self.context = open_engine(trt, engine_bytes)
        self.buffers: dict[str, torch.Tensor] = {}
        self.input_shapes: dict[str, tuple[int, ...]] = {}
        self.output_names: list[str] = []
        dtypes = {trt.DataType.FLOAT: torch.float32, trt.DataType.HALF: torch.float16}
        for i in range(self.engine.num_io_tensors):
            name = self.engine.get_tensor_name(i)
            shape = tuple(self.engine.get_tensor_shape(name))
            dtype = dtypes.get(self.engine.get_tensor_dtype(name))
            if dtype is None or any(d < 0 for d in shape):
                raise BackendUnavailableError(
                    "tensorrt", f"tensor {name}: expected static float32/float16, got "
                    f"{self.engine.get_tensor_dtype(name)} {shape}"
                )  # fmt: skip
            self.buffers[name] = torch.empty(shape, dtype=dtype, device="cuda")
            if not self.context.set_tensor_address(name, self.buffers[name].data_ptr()):
                raise BackendUnavailableError("tensorrt", f"set_tensor_address({name}) failed")
            if self.engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT:
                self.input_shapes[name] = shape
            else:
                self.output_names.append(name)
        self.cuda_graph = cuda_graph
        self.warmup = warmup
        self.runs = 0
        self.graph: torch.cuda.CUDAGraph | None = None

    def _execute(self) -> None:
        execute(self.context)

    def _capture(self) -> None:
        """Record one execution on a side stream into a CUDA graph (replayed by :meth:`run`)."""
        graph = torch.cuda.CUDAGraph()
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.graph(graph, stream=side):
            self._execute()  # inside, the current stream is the capture stream
        torch.cuda.current_stream().wait_stream(side)
        self.graph = graph

    def run(self, inputs: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        _check(inputs, self.input_shapes)
        for name in self.input_shapes:
            self.buffers[name].copy_(inputs[name], non_blocking=True)
        if self.graph is not None:
            self.graph.replay()
        else:
            self._execute()
            self.runs += 1
            if self.cuda_graph and self.runs >= self.warmup:
                self._capture()
        return {name: self.buffers[name] for name in self.output_names}
