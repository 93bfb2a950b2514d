"""The torch generator stepped for several streams at once: batch dimension = streams.

Each stream owns a :class:`StreamWindow` (its ring of T encoder-feature slots and its frame
count), exactly what :class:`engine.backends.streaming_runner.TorchStreamingRunner` keeps for
one stream. :meth:`BatchedGenerator.step` takes B streams that each have a frame ready and runs
ONE encoder call on the B frames, ONE ``attend`` over the B windows (``(B*T, c, h, w)``,
``frames=T``) and ONE decoder call on the B newest slots, then scatters the outputs back to
the streams. B = 1 is the per-stream path. Batched and per-stream results agree to float
rounding (a batch-B convolution sums in another order than batch 1).

Only the torch path batches across streams: the exported onnxruntime / TensorRT streaming
graphs have a fixed batch of one window.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch

from engine.backends.streaming_runner import RING_NAMES
from engine.errors import InputError
from engine.model.mpdt_generator import INPUT_NAMES, MPDTGenerator
from engine.runtime.stages import PASTED

__all__ = ["BatchedGenerator", "StreamWindow"]


class StreamWindow:
    """One stream's window: ``ring`` (T slots per feature name) and ``seen`` frames."""

    def __init__(self, ring: dict[str, torch.Tensor], frames: int) -> None:
        self.ring = ring
        self.frames = frames
        self.seen = 0

    def reset(self) -> None:
        """Forget the window: the next step starts a new stream (every slot = that frame)."""
        self.seen = 0


class BatchedGenerator:
    """A generator shared by the streams of one worker (one device).

    Args:
        model: the float32 generator (moved to ``device``, eval mode).
        frames: T, the window length.
        device: ``"cpu"`` or ``"cuda"``.
    """

    def __init__(self, model: MPDTGenerator, frames: int, device: str = "cpu") -> None:
        if isinstance(frames, bool) or not isinstance(frames, int) or frames < 1:
            raise InputError("frames", "an int >= 1", frames)
        self.model = model.eval().to(device)
        self.frames = frames
        self.device = torch.device(device)
        cfg = model.config
        self.input_shapes = {n: (c, cfg.height, cfg.width) for n, c in cfg.input_channels.items()}
        with torch.no_grad():
            probe = self.model.encode(**{n: torch.zeros((1, *s), device=self.device)
                                         for n, s in self.input_shapes.items()})  # fmt: skip
        self._slot_shapes = {n: tuple(probe[n].shape[1:]) for n in RING_NAMES}

    def new_window(self) -> StreamWindow:
        """A fresh window (its ring allocated once, on the device) for a new stream."""
        ring = {n: torch.zeros((self.frames, *s), device=self.device)
                for n, s in self._slot_shapes.items()}  # fmt: skip
        return StreamWindow(ring, self.frames)

    def _check(self, inputs: Mapping[str, torch.Tensor]) -> None:
        if not isinstance(inputs, Mapping) or set(inputs) != set(INPUT_NAMES):
            raise InputError("inputs", f"a mapping with the keys {list(INPUT_NAMES)}", inputs)
        for name, shape in self.input_shapes.items():
            x = inputs[name]
            if not isinstance(x, torch.Tensor) or tuple(x.shape) != (1, *shape):
                raise InputError(name, f"a float32 tensor of shape {(1, *shape)}", x)

    @torch.no_grad()
    def step(
        self, windows: Sequence[StreamWindow], inputs: Sequence[Mapping[str, torch.Tensor]]
    ) -> list[dict[str, torch.Tensor]]:
        """The newest frame's ``rendered`` (1, 3, H, W) and ``cloth_mask`` (1, 1, H, W) for
        each of B streams (CPU copies), from one encode, one attend and one decode call.

        Args:
            windows: B distinct windows (one per stream), each advanced by one frame.
            inputs: B mappings of (1, C, H, W) float32 generator inputs, one per window.
        """
        if len(windows) != len(inputs) or not windows:
            raise InputError("inputs", "one input mapping per window (at least one)", len(inputs))
        if len({id(w) for w in windows}) != len(windows):
            raise InputError("windows", "distinct windows (one frame per stream per step)", None)
        for x in inputs:
            self._check(x)
        t = self.frames
        batch = {n: torch.cat([x[n] for x in inputs]).to(self.device).float() for n in INPUT_NAMES}
        feats = self.model.encode(**batch)  # (B, ...) per feature
        slots = []
        for b, window in enumerate(windows):
            slot = window.seen % t
            for name, ring in window.ring.items():
                ring[slot].copy_(feats[name][b])
                if window.seen == 0:  # start of a stream: every slot holds the first frame
                    ring[1:].copy_(ring[:1].expand_as(ring[1:]))
            window.seen += 1
            slots.append(b * t + slot)
        rings = [torch.cat([w.ring[n] for w in windows]) for n in RING_NAMES]  # (B*T, ...)
        fused = self.model.attend(*rings, t)
        newest = torch.tensor(slots, device=self.device)
        out = self.model.decode(fused.index_select(0, newest), feats["background_half"],
                                feats["background_full"], batch["cloth"], batch["background"],
                                batch["background_mask"])  # fmt: skip
        return [{k: out[k][b : b + 1].to("cpu", copy=True) for k in PASTED}
                for b in range(len(windows))]  # fmt: skip
