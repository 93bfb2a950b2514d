"""The generator over a stream: a causal sliding window (latency) or blocks of T (throughput).

``step(frame)`` (``mode="latency"``): one output per input frame, from the newest frame and the
T - 1 before it. Per-frame work is cached: each frame's encoder features go into a ring of T
slots (allocated once) and are never recomputed; a step costs one encoder, the MPDT blocks over
T feature maps (1/4 scale) and one decoder. At the start of a stream (fewer than T frames seen)
the missing slots hold the first frame's features, i.e. the oldest frame is repeated. The MPDT
blocks and the temporal context treat the window as a set (no frame order), so the ring is
never reordered; only the newest slot is decoded.

``block(frames)`` (``mode="throughput"``): the whole generator on T frames at once, T outputs
per call: the cheapest per frame (the blocks run once per T frames instead of once per frame)
but an output is only ready when its block is complete, T frames later.

Backends (``engine.backends.selection``): ``torch`` calls the model's ``encode``/``attend``/
``decode`` directly; ``onnxruntime`` runs ``encoder.onnx`` + ``window.onnx`` for steps and the
standard graph for blocks (exported once into a cache directory keyed by the weights, T and the
exporting code, checked against PyTorch when written); inputs and outputs are bound in place
(I/O binding), the encoder writing straight into its ring slot.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch

from engine.backends.graph_cache import build_into_cache
from engine.backends.selection import BackendChoice
from engine.errors import InputError
from engine.model.mpdt_generator import FEATURE_NAMES, INPUT_NAMES, OUTPUT_NAMES, MPDTGenerator

__all__ = ["SlidingWindow"]


def _ort_session(path: Path, device: str):
    """One intra-op thread, no spinning: a window step is small, and on a few cores the
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


def _bind(binding, name: str, x: torch.Tensor, output: bool = False) -> None:
    kind, index = x.device.type, x.device.index or 0
    dtype = np.int64 if x.dtype == torch.int64 else np.float32
    bind = binding.bind_output if output else binding.bind_input
    bind(name, kind, index, dtype, tuple(x.shape), x.data_ptr())


class SlidingWindow:
    """A generator serving a stream; see the module docstring.

    Args:
        model: the generator (eval mode is set here).
        frames: T, the window length (>= 1).
        choice: the resolved backend (:func:`engine.backends.selection.choose_backend`):
            ``torch`` or ``onnxruntime`` (TensorRT runs blocks through its engine: not here).
        cache_dir: root of the exported-graph cache (default
            :func:`engine.backends.graph_cache.default_cache_dir`; keyed by
            :func:`~engine.backends.graph_cache.graph_cache_dir`).
    """

    def __init__(
        self,
        model: MPDTGenerator,
        *,
        frames: int,
        choice: BackendChoice,
        cache_dir: str | Path | None = None,
    ) -> None:
        if isinstance(frames, bool) or not isinstance(frames, int) or frames < 1:
            raise InputError("frames", "an int >= 1", frames)
        if choice.backend not in ("torch", "onnxruntime"):
            raise InputError("choice", "the torch or onnxruntime backend", choice.backend)
        self.model = model.eval().to(choice.device)
        self.frames = frames
        self.choice = choice
        self.device = torch.device(choice.device)
        cfg = model.config
        self.input_shapes = {n: (c, cfg.height, cfg.width) for n, c in cfg.input_channels.items()}
        # Per-frame feature shapes, from one probe through the encoder.
        with torch.no_grad():
            probe = self.model.encode(**{n: torch.zeros((1, *s), device=self.device)
                                         for n, s in self.input_shapes.items()})  # fmt: skip
        ring = ("cloth_features", "pose_features", "background_features", "omega")
        self.ring = {
            n: torch.zeros((frames, *probe[n].shape[1:]), device=self.device) for n in ring
        }
        self.newest = {n: torch.zeros_like(probe[n]) for n in FEATURE_NAMES if n not in ring}
        self.outputs = {
            "tryon": torch.zeros((1, 3, cfg.height, cfg.width), device=self.device),
            "rendered": torch.zeros((1, 3, cfg.height, cfg.width), device=self.device),
            "cloth_mask": torch.zeros((1, 1, cfg.height, cfg.width), device=self.device),
        }
        self.slot = torch.zeros(1, dtype=torch.int64, device=self.device)
        self.seen = 0
        self._block_runner = None
        self._cache_root = cache_dir
        if choice.backend == "onnxruntime":
            directory = build_into_cache(self.model, "streaming", frames=frames,
                                         precision="fp32", cache_dir=cache_dir)  # fmt: skip
            self._encoder = _ort_session(directory / "encoder.onnx", choice.device)
            self._window = _ort_session(directory / "window.onnx", choice.device)
            self._window_binding = self._window.io_binding()
            for name, x in self.ring.items():  # the ring never moves: bound once
                _bind(self._window_binding, name, x)
            _bind(self._window_binding, "newest", self.slot)
            for name in ("background_half", "background_full"):
                _bind(self._window_binding, name, self.newest[name])
            for name, x in self.outputs.items():
                _bind(self._window_binding, name, x, output=True)

    @property
    def backend(self) -> str:
        return self.choice.backend

    def reset(self) -> None:
        """Forget the window (a new stream, or the person was lost): the next step starts over."""
        self.seen = 0

    def _check(self, inputs: Mapping[str, torch.Tensor], frames: int) -> None:
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

    @torch.no_grad()
    def step(self, inputs: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The newest frame's outputs. ``inputs``: (1, C, H, W) float32 per input name.

        Returns ``tryon``, ``rendered`` (1, 3, H, W) and ``cloth_mask`` (1, 1, H, W): buffers
        reused by the next call (copy to keep)."""
        self._check(inputs, 1)
        inputs = {k: v.to(self.device).contiguous() for k, v in inputs.items()}
        slot = self.seen % self.frames
        self.slot.fill_(slot)
        if self.backend == "torch":
            feats = self.model.encode(**inputs)
            for name, x in self.ring.items():
                x[slot : slot + 1].copy_(feats[name])
            for name, x in self.newest.items():
                x.copy_(feats[name])
        else:
            binding = self._encoder.io_binding()
            for name, x in inputs.items():
                _bind(binding, name, x)
            for name in FEATURE_NAMES:
                target = (
                    self.ring[name][slot : slot + 1] if name in self.ring else self.newest[name]
                )
                _bind(binding, name, target, output=True)
            self._encoder.run_with_iobinding(binding)
        if self.seen == 0:  # start of a stream: every slot holds the first frame
            for x in self.ring.values():
                x[1:].copy_(x[:1].expand_as(x[1:]))
        self.seen += 1
        if self.backend == "torch":
            fused = self.model.attend(*(self.ring[n] for n in self.ring), self.frames)
            out = self.model.decode(fused[slot : slot + 1], self.newest["background_half"],
                                    self.newest["background_full"], inputs["cloth"],
                                    inputs["background"], inputs["background_mask"])  # fmt: skip
            for name, x in self.outputs.items():
                x.copy_(out[name])
        else:
            for name in ("cloth", "background", "background_mask"):
                _bind(self._window_binding, name, inputs[name])
            self._window.run_with_iobinding(self._window_binding)
        return self.outputs

    @torch.no_grad()
    def block(self, inputs: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The whole generator on one block: (T, C, H, W) float32 per input name ->
        (T, C, H, W) outputs (fresh tensors on the torch backend, reused buffers otherwise)."""
        self._check(inputs, self.frames)
        batch = {k: v.to(self.device)[None] for k, v in inputs.items()}  # (1, T, C, H, W)
        if self.backend == "torch":
            out = self.model(**batch)
        else:
            if self._block_runner is None:
                from engine.backends.factory import make_runner

                self._block_runner = make_runner(self.model, backend=self.backend,
                                                 frames=self.frames, precision="fp32",
                                                 cache_dir=self._cache_root)  # fmt: skip
            out = self._block_runner.run(batch)
        return {name: out[name][0] for name in OUTPUT_NAMES}
