"""The fp16 export policy: which parts of the generator run in float16, which stay float32.

The fp16 graph is *strongly typed*: every tensor's type is written in the graph (Cast nodes at
the boundaries), so TensorRT builds exactly these precisions. It is traced from
:class:`MixedPrecisionGenerator`, a copy of the generator whose convolutions carry their own
dtype (their inputs are cast to it on entry):

- **float16**: the convolutions of the encoders and the decoder (almost all the FLOPs: they
  run at full and half resolution) and the elementwise work between them;
- **float32**, where the numerics need it:
  - the MPDT blocks (1/4 scale, a few % of the FLOPs): their attention scores ``Q K^T`` reach
    ~1e8 before the softmax on the demo weights, beyond float16's 65504; the softmax statistics
    and the key masking are float32 (in :func:`kernels.patch_attention.patch_attention_ref`);
  - any other convolution whose output, measured on seeded calibration inputs, comes within
    :data:`HEADROOM` of float16's largest value (the demo's last pose-encoder conv reaches ~7e4);
  - the geometry: the inputs stay float32, so the appearance-flow grid and ``GridSample`` are
    float32 (float16 grid coordinates would move the cloth by up to ~0.05 px);
  - the composite (float32 arithmetic inside :func:`kernels.composite.composite_ref`).

Only convolutions are cast: the GroupNorm layers (the MPDT blocks' pre-norms and the output
norm) keep float32 parameters.
Inputs and outputs of the fp16 graph stay **float32**, so every runner binds the same tensors.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from engine.model.mpdt_generator import INPUT_NAMES, MPDTGenerator

__all__ = ["FP16_MAX", "HEADROOM", "MixedPrecisionGenerator", "float32_convs"]

FP16_MAX = 65504.0
HEADROOM = 4.0
"""A convolution stays float32 when ``HEADROOM * max|output|`` on calibration inputs passes
:data:`FP16_MAX`."""


def float32_convs(model: MPDTGenerator, inputs: dict[str, torch.Tensor]) -> set[str]:
    """Names of the convolutions that stay float32: those in ``model.blocks``, and those whose
    output magnitude on ``inputs`` (run once, float32, no grad) leaves less than
    :data:`HEADROOM` of float16's range."""
    peaks: dict[str, float] = {}
    hooks = []
    for name, module in model.named_modules():
        if isinstance(module, nn.Conv2d):

            def record(module, args, out, name=name):
                peaks[name] = max(peaks.get(name, 0.0), float(out.detach().abs().max()))

            hooks.append(module.register_forward_hook(record))
    try:
        with torch.no_grad():
            model(**{k: inputs[k] for k in INPUT_NAMES})
    finally:
        for hook in hooks:
            hook.remove()
    keep = {n for n, peak in peaks.items() if not HEADROOM * peak < FP16_MAX}  # NaN stays fp32
    keep |= {n for n in peaks if n.startswith("blocks.")}
    return keep


def _cast_inputs(module: nn.Module, args: tuple) -> tuple:
    dtype = module.weight.dtype
    return tuple(
        a.to(dtype) if isinstance(a, torch.Tensor) and a.is_floating_point() else a for a in args
    )


class MixedPrecisionGenerator(nn.Module):
    """A float16/float32 copy of ``model`` (the policy of the module docstring); same inputs,
    outputs cast back to float32: ``{"tryon", "rendered", "cloth_mask"}`` (B, T, C, H, W).

    Args:
        model: the float32 generator (left untouched).
        calibration: seeded inputs for :func:`float32_convs`.
    """

    def __init__(self, model: MPDTGenerator, calibration: dict[str, torch.Tensor]) -> None:
        super().__init__()
        self.float32 = frozenset(float32_convs(model, calibration))
        self.generator = copy.deepcopy(model).eval()
        self.config = model.config
        for name, module in self.generator.named_modules():
            if isinstance(module, nn.Conv2d):
                module.to(torch.float32 if name in self.float32 else torch.float16)
                module.register_forward_pre_hook(_cast_inputs)

    def forward(
        self,
        cloth: torch.Tensor,
        pose: torch.Tensor,
        background: torch.Tensor,
        background_mask: torch.Tensor,
        *,
        impl: str = "auto",
    ) -> dict[str, torch.Tensor]:
        out = self.generator(cloth, pose, background, background_mask, impl=impl)
        return {name: x.to(torch.float32) for name, x in out.items()}
