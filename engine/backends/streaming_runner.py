"""The generator over a stream, one runner per backend: a causal sliding window or blocks of T.

Every backend implements :class:`StreamingRunner`:

- ``step(inputs)`` (``mode="latency"``): one output per input frame, from the newest frame and
  the T - 1 before it. Each frame's encoder features go into a ring of T slots (allocated once)
  and are never recomputed; a step costs one encoder, the MPDT blocks over T feature maps
  (1/4 scale) and one decoder of the newest slot. At the start of a stream (fewer than T frames
  seen) the missing slots hold the first frame's features (the oldest frame is repeated). The
  MPDT blocks and the temporal context treat the window as a set, so the ring is never
  reordered.
- ``block(inputs)`` (``mode="throughput"``): the whole generator on T frames at once.
- ``reset()``: forget the window (a new stream, or the person was lost).

Buffers (ring, newest-frame skips, outputs) are allocated once, on the runner's device, and
reused: copy the outputs to keep them. Inputs and outputs are float32 at every precision.

Backends (:func:`make_streaming_runner` picks the class from a
:class:`~engine.backends.selection.BackendChoice`, never substituting another):

- :class:`TorchStreamingRunner`: the model's ``encode`` / ``attend`` / ``decode``; fp16 (CUDA
  only) runs the mixed-precision copy (:mod:`engine.model.mixed_precision`).
- :class:`OnnxRuntimeStreamingRunner`: ``encoder.onnx`` + ``window.onnx`` (and the standard
  graph for blocks) from the cache, I/O-bound in place, the encoder writing straight into its
  ring slot; fp16 graphs on the CUDA provider.
- :class:`TensorRTStreamingRunner`: the two graphs built into TensorRT engines (strongly
  typed; fp16 with the export's fp32 islands) once into the engine cache, torch CUDA tensors
  bound by name, ``execute_async_v3`` on the current stream. Where the Triton plugins can be
  registered the window engine is built from ``window.plugins.onnx`` (patch attention heads and
  composite as ``tryon`` plugins; the encoder has none and is built from ``encoder.onnx``),
  else from the standard graphs (:func:`engine.backends.graph_cache.build_into_cache`;
  :attr:`TensorRTStreamingRunner.uses_plugins` says which). Both have the same inputs and
  outputs, so the bindings are the same.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Protocol

import numpy as np
import torch

from engine.backends.graph_cache import build_into_cache
from engine.backends.runners import OnnxRuntimeRunner, TensorRTRunner, execute, open_engine
from engine.backends.selection import BackendChoice
from engine.errors import BackendUnavailableError, InputError
from engine.model.mixed_precision import MixedPrecisionGenerator
from engine.model.mpdt_generator import (
    FEATURE_NAMES,
    INPUT_NAMES,
    OUTPUT_NAMES,
    MPDTGenerator,
    check_generator_args,
    example_inputs,
)
from engine.packages import import_tensorrt

__all__ = [
    "RING_NAMES",
    "OnnxRuntimeStreamingRunner",
    "StreamingRunner",
    "TensorRTStreamingRunner",
    "TorchStreamingRunner",
    "bind_tensor",
    "make_streaming_runner",
]

RING_NAMES = ("cloth_features", "pose_features", "background_features", "omega")
"""Features kept for every frame of the window (ring buffers of T slots)."""
_NEWEST = tuple(n for n in FEATURE_NAMES if n not in RING_NAMES)  # the newest frame's skips


def bind_tensor(binding, name: str, x: torch.Tensor, *, output: bool = False) -> None:
    """Bind a torch tensor in place to an onnxruntime ``IOBinding`` (the one binding helper of
    the onnxruntime runners): no copy; the tensor must stay alive while the binding is used."""
    kind, index = x.device.type, x.device.index or 0
    dtype = {torch.int64: np.int64, torch.float16: np.float16}.get(x.dtype, np.float32)
    bind = binding.bind_output if output else binding.bind_input
    bind(name, kind, index, dtype, tuple(x.shape), x.data_ptr())


class StreamingRunner(Protocol):
    """What every backend's streaming runner offers (see the module docstring)."""

    frames: int
    backend: str
    precision: str

    def step(self, inputs: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """(1, C, H, W) float32 per input name -> the newest frame's (1, C, H, W) outputs."""
        ...

    def block(self, inputs: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """(T, C, H, W) float32 per input name -> (T, C, H, W) outputs."""
        ...

    def reset(self) -> None: ...


class _Window:
    """The state shared by every backend: ring, newest skips, outputs, slot, argument checks."""

    backend = ""

    def __init__(self, model: MPDTGenerator, frames: int, device: str, precision: str) -> None:
        self.model = model.eval().to(device)
        self.frames = frames
        self.precision = precision
        self.device = torch.device(device)
        cfg = model.config
        self.input_shapes = {n: (c, cfg.height, cfg.width) for n, c in cfg.input_channels.items()}
        with torch.no_grad():  # per-frame feature shapes, from one probe through the encoder
            probe = self.model.encode(**{n: torch.zeros((1, *s), device=self.device)
                                         for n, s in self.input_shapes.items()})  # fmt: skip
        self.ring = {n: torch.zeros((frames, *probe[n].shape[1:]), device=self.device)
                     for n in RING_NAMES}  # fmt: skip
        self.newest = {n: torch.zeros_like(probe[n]) for n in _NEWEST}
        self.outputs = {
            "tryon": torch.zeros((1, 3, cfg.height, cfg.width), device=self.device),
            "rendered": torch.zeros((1, 3, cfg.height, cfg.width), device=self.device),
            "cloth_mask": torch.zeros((1, 1, cfg.height, cfg.width), device=self.device),
        }
        self.slot = torch.zeros(1, dtype=torch.int64, device=self.device)
        self.seen = 0

    def reset(self) -> None:
        """Forget the window: the next step starts a new stream."""
        self.seen = 0

    def _check(self, inputs: Mapping[str, torch.Tensor], frames: int) -> dict[str, torch.Tensor]:
        if not isinstance(inputs, Mapping) or set(inputs) != set(INPUT_NAMES):
            raise InputError("inputs", f"a mapping with the keys {list(INPUT_NAMES)}", inputs)
        for name, shape in self.input_shapes.items():
            x = inputs[name]
            want = (frames, *shape)
            if (
                not isinstance(x, torch.Tensor)
                or tuple(x.shape) != want
                or x.dtype != torch.float32
            ):
                raise InputError(name, f"a float32 tensor of shape {want}", x)
        return {k: v.to(self.device).contiguous() for k, v in inputs.items()}

    @torch.no_grad()
    def step(self, inputs: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The newest frame's outputs. ``inputs``: (1, C, H, W) float32 per input name.

        Returns ``tryon``, ``rendered`` (1, 3, H, W) and ``cloth_mask`` (1, 1, H, W): buffers
        reused by the next call (copy to keep)."""
        inputs = self._check(inputs, 1)
        slot = self.seen % self.frames
        self.slot.fill_(slot)
        self._encode(inputs, slot)
        if self.seen == 0:  # start of a stream: every slot holds the first frame
            for x in self.ring.values():
                x[1:].copy_(x[:1].expand_as(x[1:]))
        self.seen += 1
        self._attend_decode(inputs, slot)
        return self.outputs

    @torch.no_grad()
    def block(self, inputs: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The whole generator on one block: (T, C, H, W) float32 per input name ->
        (T, C, H, W) float32 outputs."""
        inputs = self._check(inputs, self.frames)
        out = self._block({k: v[None] for k, v in inputs.items()})  # (1, T, C, H, W)
        return {name: out[name][0].float() for name in OUTPUT_NAMES}

    def _encode(self, inputs: dict[str, torch.Tensor], slot: int) -> None:
        raise NotImplementedError

    def _attend_decode(self, inputs: dict[str, torch.Tensor], slot: int) -> None:
        raise NotImplementedError

    def _block(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        raise NotImplementedError


class TorchStreamingRunner(_Window):
    """Eager PyTorch (the Triton kernels on CUDA, their torch paths on CPU); fp16 runs the
    mixed-precision copy of the model (CUDA only)."""

    backend = "torch"

    def __init__(self, model: MPDTGenerator, frames: int, device: str, precision: str) -> None:
        super().__init__(model, frames, device, precision)
        self.net: torch.nn.Module = self.model
        self.whole: torch.nn.Module = self.model
        if precision == "fp16":
            calibration = {k: v.to(self.device) for k, v in example_inputs(model, frames).items()}
            mixed = MixedPrecisionGenerator(self.model, calibration).eval()
            self.net, self.whole = mixed.generator, mixed

    def _encode(self, inputs: dict[str, torch.Tensor], slot: int) -> None:
        feats = self.net.encode(**inputs)
        for name, x in self.ring.items():
            x[slot : slot + 1].copy_(feats[name])  # casts fp16 features to the fp32 ring
        for name, x in self.newest.items():
            x.copy_(feats[name])

    def _attend_decode(self, inputs: dict[str, torch.Tensor], slot: int) -> None:
        fused = self.net.attend(*(self.ring[n] for n in RING_NAMES), self.frames)
        out = self.net.decode(fused[slot : slot + 1], self.newest["background_half"],
                              self.newest["background_full"], inputs["cloth"],
                              inputs["background"], inputs["background_mask"])  # fmt: skip
        for name, x in self.outputs.items():
            x.copy_(out[name])

    def _block(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return self.whole(**batch)


def _ort_session(path: Path, device: str):
    """One intra-op thread, no spinning: a window step is small and, on a few cores, the
    session's other stages need the rest (``bench/results/design-measurements.md``)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    providers = ["CPUExecutionProvider"]
    if device == "cuda":
        providers.insert(0, "CUDAExecutionProvider")
    return ort.InferenceSession(str(path), options, providers=providers)


class OnnxRuntimeStreamingRunner(_Window):
    """``encoder.onnx`` + ``window.onnx`` (exported once into the cache), I/O-bound in place."""

    backend = "onnxruntime"

    def __init__(
        self,
        model: MPDTGenerator,
        frames: int,
        device: str,
        precision: str,
        cache_dir: str | Path | None,
    ) -> None:
        super().__init__(model, frames, device, precision)
        self._cache_dir = cache_dir
        self._block_runner = None
        directory = build_into_cache(self.model, "streaming", frames=frames,
                                     precision=precision, cache_dir=cache_dir)  # fmt: skip
        self._encoder = _ort_session(directory / "encoder.onnx", device)
        self._window = _ort_session(directory / "window.onnx", device)
        self._window_binding = self._window.io_binding()
        for name, x in self.ring.items():  # the ring never moves: bound once
            bind_tensor(self._window_binding, name, x)
        bind_tensor(self._window_binding, "newest", self.slot)
        for name, x in self.newest.items():
            bind_tensor(self._window_binding, name, x)
        for name, x in self.outputs.items():
            bind_tensor(self._window_binding, name, x, output=True)

    def _encode(self, inputs: dict[str, torch.Tensor], slot: int) -> None:
        binding = self._encoder.io_binding()
        for name, x in inputs.items():
            bind_tensor(binding, name, x)
        for name in FEATURE_NAMES:
            target = self.ring[name][slot : slot + 1] if name in self.ring else self.newest[name]
            bind_tensor(binding, name, target, output=True)
        self._encoder.run_with_iobinding(binding)

    def _attend_decode(self, inputs: dict[str, torch.Tensor], slot: int) -> None:
        for name in ("cloth", "background", "background_mask"):
            bind_tensor(self._window_binding, name, inputs[name])
        self._window.run_with_iobinding(self._window_binding)

    def _block(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        if self._block_runner is None:
            path = build_into_cache(
                self.model, "standard", frames=self.frames, precision=self.precision,
                cache_dir=self._cache_dir,
            )  # fmt: skip
            self._block_runner = OnnxRuntimeRunner(path, device=self.device.type)
        return self._block_runner.run(batch)


class _TensorRTGraph:
    """One deserialized engine with the caller's torch CUDA tensors bound by name."""

    def __init__(self, trt, engine_bytes: bytes, tensors: Mapping[str, torch.Tensor]) -> None:
        self.engine, self.context = open_engine(trt, engine_bytes)
        self.bind(tensors)

    def bind(self, tensors: Mapping[str, torch.Tensor]) -> None:
        for i in range(self.engine.num_io_tensors):
            name = self.engine.get_tensor_name(i)
            if name not in tensors:
                raise BackendUnavailableError("tensorrt", f"the engine's tensor {name} is unbound")
            if not self.context.set_tensor_address(name, tensors[name].data_ptr()):
                raise BackendUnavailableError("tensorrt", f"set_tensor_address({name}) failed")

    def run(self) -> None:
        execute(self.context)


class TensorRTStreamingRunner(_Window):
    """The encoder and window graphs as TensorRT engines, built once into the cache: from the
    plugins graphs where the Triton plugins can be registered, else from the standard graphs.

    Args:
        plugins: None (default): the plugins graphs when the plugins can be registered; True:
            require them (:class:`BackendUnavailableError` where they cannot be registered);
            False: the standard graphs.

    Attributes:
        uses_plugins: whether the engines were built from the plugins graphs.
        engine_sources: the ONNX files the (encoder, window) engines were built from.
    """

    backend = "tensorrt"

    def __init__(
        self,
        model: MPDTGenerator,
        frames: int,
        precision: str,
        cache_dir: str | Path | None,
        *,
        plugins: bool | None = None,
    ) -> None:
        trt = import_tensorrt()
        if not torch.cuda.is_available():
            raise BackendUnavailableError("tensorrt", "no CUDA device")
        super().__init__(model, frames, "cuda", precision)
        self._cache_dir = cache_dir
        self._block_runner = None
        self._staging = {n: torch.zeros((1, *s), device=self.device)
                         for n, s in self.input_shapes.items()}  # fmt: skip
        engines = build_into_cache(self.model, "streaming-tensorrt", frames=frames,
                                   precision=precision, cache_dir=cache_dir,
                                   plugins=plugins)  # fmt: skip
        self.uses_plugins = engines.plugins
        self.engine_sources = engines.sources
        encoder, window = engines.encoder, engines.window
        self._encoders = []  # one context per ring slot: its outputs are bound to that slot
        for slot in range(frames):
            tensors = dict(self._staging)
            tensors.update({n: self.ring[n][slot : slot + 1] for n in RING_NAMES})
            tensors.update(self.newest)
            self._encoders.append(_TensorRTGraph(trt, encoder, tensors))
        window_tensors = {**self.ring, **self.newest, **self.outputs, "newest": self.slot,
                          **{n: self._staging[n] for n in ("cloth", "background",
                                                           "background_mask")}}  # fmt: skip
        self._window = _TensorRTGraph(trt, window, window_tensors)

    def _encode(self, inputs: dict[str, torch.Tensor], slot: int) -> None:
        for name, x in inputs.items():
            self._staging[name].copy_(x, non_blocking=True)
        self._encoders[slot].run()

    def _attend_decode(self, inputs: dict[str, torch.Tensor], slot: int) -> None:
        self._window.run()

    def _block(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        if self._block_runner is None:
            engine = build_into_cache(
                self.model, "tensorrt", frames=self.frames, precision=self.precision,
                cache_dir=self._cache_dir,
            )  # fmt: skip
            self._block_runner = TensorRTRunner(engine, cuda_graph=True)
        return self._block_runner.run(batch)


def make_streaming_runner(
    model: MPDTGenerator,
    *,
    frames: int | None,
    choice: BackendChoice,
    precision: str = "fp32",
    cache_dir: str | Path | None = None,
) -> StreamingRunner:
    """The streaming runner of ``choice.backend`` on ``choice.device``; never another backend.

    Args:
        model: the float32 generator.
        frames: T, the window length (>= 1); ``None``: the model's own window.
        choice: from :func:`engine.backends.selection.choose_backend`.
        precision: ``"fp32"`` or ``"fp16"`` (fp16 needs a CUDA device: TensorRT, CUDA torch or
            onnxruntime's CUDA provider).
        cache_dir: root of the graph and engine cache (default
            :func:`engine.backends.graph_cache.default_cache_dir`).

    Raises:
        InputError: bad ``frames`` or ``precision``, or fp16 on a CPU backend.
        BackendUnavailableError: the backend cannot run here (e.g. TensorRT not installed).
    """
    frames = check_generator_args(model, frames, precision)
    if precision == "fp16" and choice.device != "cuda":
        expected = (f"'fp32' for {choice.backend} on the CPU (fp16 runs on CUDA devices: "
                    "TensorRT, CUDA torch, onnxruntime-gpu)")  # fmt: skip
        raise InputError("precision", expected, precision)
    if choice.backend == "torch":
        return TorchStreamingRunner(model, frames, choice.device, precision)
    if choice.backend == "onnxruntime":
        return OnnxRuntimeStreamingRunner(model, frames, choice.device, precision, cache_dir)
    if choice.backend == "tensorrt":
        return TensorRTStreamingRunner(model, frames, precision, cache_dir)
    raise InputError("choice", "a torch, onnxruntime or tensorrt BackendChoice", choice.backend)
