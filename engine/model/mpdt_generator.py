"""The MPDT video try-on generator: three encoders, N MPDT blocks, one decoder.

Inputs, each a sequence of T frames, (B, T, C, H, W) float32 in [0, 1]:

- ``cloth`` (C = 4): the garment warped onto the person in each frame, RGB + its warped alpha
  (the alpha is the region Omega the cloth stream's attention is restricted to);
- ``pose`` (C = ``pose_channels``): pose maps (:func:`engine.inputs.pose_maps.render_pose_maps`);
- ``background`` (C = 3): the frame with the try-on region set to one grey value;
- ``background_mask`` (C = 1): 1 where the background pixel is kept, 0 in the try-on region.

Network: each input has a conv encoder (full resolution -> 1/2 -> 1/4); the 1/4-scale features
go through N MPDT blocks; the decoder upsamples the last block's fused output ``O``, with skip
connections from the background encoder (scene detail), to a rendered person ``I_r``, a cloth
mask ``M_c`` and a small appearance flow (at most ``FLOW_MAX`` of the width) that resamples the
warped cloth ``C`` (RGB and alpha) to correct the TPS warp. Composite (:func:`kernels.composite`)::

    I_masked = M_c * C + (1 - M_c) * I_r;   tryon = (1 - M_a) * I_masked + M_a * A

An MPDT block: ``Q = conv1x1(norm(P))``, ``(K_c, V_c) = conv1x1(norm(C))``,
``(K_a, V_a) = conv1x1(norm(A))`` (``norm``: GroupNorm with one group, per frame);
multi-scale patch attention (:func:`kernels.patch_attention`, one patch size per head, over all
patches of all T frames; the cloth keys restricted to Omega), a 3x3 conv fusing the heads per
stream (``att_c``, ``att_a``), ``O = conv1x1(concat(att_c, att_a))``, and the seed's residuals
``C += att_c``, ``P += O``, ``A += att_a``. After the blocks, the temporal context adds to
``O_t`` a 3x3 conv of ``mean_{s != t} P_s - P_t`` (each frame's difference to the rest of its
window; zero for T = 1), and the decoder reads ``norm(O)``.

The pre-norms are not in the seed; without them the shipped demo's first version saturated: the
streams grew through the residuals (|O| ~ 260), attention logits reached ~1e5 (one-hot softmax on
static background patches, identical in every frame) and the decoder's first GELU was dead for
``O``, so the MPDT path had no effect at all and T = 4 gave bit-identical outputs to T = 1.

``M_c`` is the decoder's sigmoid times the (flow-corrected) warped alpha: the cloth is only
composited where the warp put cloth. Any T works with the same weights (T = 1 is per-frame try-on).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from engine.errors import InputError
from kernels.composite import composite, composite_ref
from kernels.patch_attention import patch_attention, patch_attention_ref

__all__ = [
    "MPDTConfig",
    "MPDTGenerator",
    "INPUT_NAMES",
    "OUTPUT_NAMES",
    "FEATURE_NAMES",
    "IMPLS",
    "POSE_CHANNELS",
    "PRECISIONS",
    "check_generator_args",
    "example_inputs",
]

PRECISIONS = ("fp32", "fp16")
"""The precisions a generator is exported and run in (fp16: :mod:`engine.model.mixed_precision`)."""


def check_generator_args(model: object, frames: object, precision: object) -> int:
    """``frames`` (the model's own window for ``None``), after checking ``model`` (an
    :class:`MPDTGenerator`), ``frames`` (an int >= 1) and ``precision`` (one of
    :data:`PRECISIONS`): the checks of every exporter and streaming runner;
    :class:`~engine.errors.InputError` naming the first bad one."""
    if not isinstance(model, MPDTGenerator):
        raise InputError("model", "an MPDTGenerator", model)
    frames = model.config.frames if frames is None else frames
    if isinstance(frames, bool) or not isinstance(frames, int) or frames < 1:
        raise InputError("frames", "an int >= 1", frames)
    if precision not in PRECISIONS:
        raise InputError("precision", f"one of {', '.join(map(repr, PRECISIONS))}", precision)
    return frames


IMPLS = ("auto", "triton", "torch", "reference")
"""How the generator runs its attention and composite (the ``impl`` argument of
:meth:`MPDTGenerator.forward`, :meth:`~MPDTGenerator.attend` and :meth:`~MPDTGenerator.decode`):

- ``"auto"``: the Triton kernels on CUDA tensors, the fastest CPU path otherwise (inference);
- ``"triton"``: the Triton kernels (CUDA, or CPU tensors under ``TRITON_INTERPRET=1``);
- ``"torch"``: the kernels' differentiable plain-PyTorch paths (training);
- ``"reference"``: the plain references with standard ops only and no data-dependent checks,
  which is what ONNX and ``torch.export`` must trace (the exporters pass it)."""

POSE_CHANNELS = 35
"""Default pose input channels: the pose maps of :mod:`engine.inputs.pose_maps` (18 keypoint
heatmaps + 17 limb maps; that module checks it renders exactly this many)."""

INPUT_NAMES = ("cloth", "pose", "background", "background_mask")
OUTPUT_NAMES = ("tryon", "rendered", "cloth_mask")
CLOTH_CHANNELS = 4  # RGB + warped alpha
FEATURE_NAMES = ("cloth_features", "pose_features", "background_features", "background_half",
                 "background_full", "omega")  # fmt: skip
"""Per-frame outputs of :meth:`MPDTGenerator.encode`, cached by streaming callers."""


@dataclass(frozen=True)
class MPDTConfig:
    """Architecture of an :class:`MPDTGenerator`.

    Attributes:
        name: preset name, or ``"custom"``.
        height, width: input image size in pixels (multiples of ``4 * max(head_divisors)``).
        frames: T, frames per generator call (the model runs with any T; this is the default).
        channels: feature channels C of the 1/4-scale maps and the MPDT blocks.
        blocks: number of chained MPDT blocks.
        head_divisors: one per attention head: the head's patch is the feature map divided by it
            (1 = the whole map, pure temporal attention; 8 = an eighth of each side).
        pose_channels: channels of the pose input (pose maps).
        feature_height, feature_width, patch_sizes: derived (1/4 scale, per-head patch sizes).
    """

    name: str = "custom"
    height: int = 256
    width: int = 192
    frames: int = 4
    channels: int = 32
    blocks: int = 2
    head_divisors: tuple[int, ...] = (1, 2, 4, 8)
    pose_channels: int = POSE_CHANNELS
    feature_height: int = field(init=False)
    feature_width: int = field(init=False)
    patch_sizes: tuple[tuple[int, int], ...] = field(init=False)

    PRESETS: ClassVar[dict[str, dict]] = {
        # The shipped demo: trained on this repo's 2-core CPU in minutes.
        "lite": dict(height=128, width=96, frames=4, channels=32, blocks=2),
        # The seed's example scale: 256x192 input, 64x48 features, heads 64x48 .. 8x6.
        "base": dict(height=256, width=192, frames=8, channels=128, blocks=4),
    }

    def __post_init__(self) -> None:
        for name in ("height", "width", "frames", "channels", "blocks", "pose_channels"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InputError(name, "an int >= 1", value)
        divisors = tuple(self.head_divisors)
        if not divisors or not all(isinstance(d, int) and d >= 1 for d in divisors):
            raise InputError("head_divisors", "a non-empty tuple of ints >= 1", self.head_divisors)
        step = 4 * max(divisors)
        if self.height % step or self.width % step:
            raise InputError("height/width", f"multiples of {step} (4 x the largest divisor)",
                             f"{self.height}x{self.width}")  # fmt: skip
        if self.channels % len(divisors):
            raise InputError("channels", f"a multiple of the {len(divisors)} heads", self.channels)
        fh, fw = self.height // 4, self.width // 4
        object.__setattr__(self, "head_divisors", divisors)
        object.__setattr__(self, "feature_height", fh)
        object.__setattr__(self, "feature_width", fw)
        object.__setattr__(self, "patch_sizes", tuple((fh // d, fw // d) for d in divisors))

    @property
    def input_channels(self) -> dict[str, int]:
        """Channels C of each input (``INPUT_NAMES`` order): cloth RGB + alpha, pose maps,
        background RGB, background mask."""
        return {"cloth": CLOTH_CHANNELS, "pose": self.pose_channels, "background": 3,
                "background_mask": 1}  # fmt: skip

    @classmethod
    def from_name(cls, name: str) -> MPDTConfig:
        """A preset: ``"lite"`` or ``"base"``."""
        if name not in cls.PRESETS:
            raise InputError("name", f"one of {', '.join(map(repr, cls.PRESETS))}", name)
        return cls(name=name, **cls.PRESETS[name])

    def to_dict(self) -> dict:
        """The constructor arguments (JSON-serializable)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.init}

    @classmethod
    def from_dict(cls, values: dict) -> MPDTConfig:
        """Inverse of :meth:`to_dict`; unknown keys are an error."""
        names = {f.name for f in dataclasses.fields(cls) if f.init}
        unknown = set(values) - names
        if unknown:
            raise InputError("config", f"only the keys {sorted(names)}", sorted(unknown))
        values = dict(values)
        if "head_divisors" in values:
            values["head_divisors"] = tuple(values["head_divisors"])
        return cls(**values)


def _conv(cin: int, cout: int, k: int = 3, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, k, stride=stride, padding=k // 2)


class _Encoder(nn.Module):
    """(N, Cin, H, W) -> full-res (c/2), 1/2-res (c) and 1/4-res (c) features."""

    def __init__(self, cin: int, c: int) -> None:
        super().__init__()
        self.stem = nn.Sequential(_conv(cin, c // 2), nn.GELU(), _conv(c // 2, c // 2), nn.GELU())
        self.down1 = nn.Sequential(_conv(c // 2, c, stride=2), nn.GELU(), _conv(c, c), nn.GELU())
        self.down2 = nn.Sequential(_conv(c, c, stride=2), nn.GELU(), _conv(c, c))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        full = self.stem(x)  # (N, c/2, H, W)
        half = self.down1(full)  # (N, c, H/2, W/2)
        return full, half, self.down2(half)  # (N, c, H/4, W/4)


class _MPDTBlock(nn.Module):
    """Pose queries, cloth and background keys/values, multi-scale patch attention."""

    def __init__(self, c: int, patch_sizes: tuple[tuple[int, int], ...]) -> None:
        super().__init__()
        self.patch_sizes = [tuple(p) for p in patch_sizes]
        # Pre-norm (per frame, over channels and pixels): keeps the streams' scale fixed through
        # the residuals, so the attention logits stay in the softmax's useful range.
        self.norm_pose, self.norm_cloth, self.norm_background = (
            nn.GroupNorm(1, c) for _ in range(3)
        )
        self.q = nn.Conv2d(c, c, 1)
        self.kv_cloth = nn.Conv2d(c, 2 * c, 1)
        self.kv_background = nn.Conv2d(c, 2 * c, 1)
        self.fuse_cloth = _conv(c, c)
        self.fuse_background = _conv(c, c)
        self.out = nn.Conv2d(2 * c, c, 1)

    def forward(
        self,
        cloth: torch.Tensor,
        pose: torch.Tensor,
        background: torch.Tensor,
        omega: torch.Tensor,
        frames: int,
        impl: str,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        n, c, h, w = cloth.shape  # (B*T, C, h, w) each
        b = n // frames

        def seq(x: torch.Tensor) -> torch.Tensor:  # (B*T, C', h, w) -> (B, T, C', h, w)
            return x.reshape(b, frames, x.shape[1], h, w)

        q = seq(self.q(self.norm_pose(pose)))
        k_c, v_c = seq(self.kv_cloth(self.norm_cloth(cloth))).chunk(2, dim=2)  # slices, no copies
        k_a, v_a = seq(self.kv_background(self.norm_background(background))).chunk(2, dim=2)
        if impl == "reference":  # the plain reference: standard ops only, no data-dependent checks
            att_c = patch_attention_ref(q, k_c, v_c, self.patch_sizes, key_mask=omega)
            att_a = patch_attention_ref(q, k_a, v_a, self.patch_sizes)
        else:
            att_c = patch_attention(q, k_c, v_c, self.patch_sizes, key_mask=omega, impl=impl)
            att_a = patch_attention(q, k_a, v_a, self.patch_sizes, impl=impl)
        att_c = self.fuse_cloth(att_c.reshape(n, c, h, w))
        att_a = self.fuse_background(att_a.reshape(n, c, h, w))
        fused = self.out(torch.cat([att_c, att_a], dim=1))  # O
        return cloth + att_c, pose + fused, background + att_a, fused


class _Decoder(nn.Module):
    """O (1/4 res) + background skips -> rendered RGB and cloth-mask logit at full res."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.up1 = nn.Sequential(_conv(2 * c, c), nn.GELU())
        self.up2 = nn.Sequential(_conv(c + c // 2, c // 2), nn.GELU())
        self.head = nn.Sequential(_conv(c // 2, c // 2), nn.GELU(), _conv(c // 2, 6))
        with torch.no_grad():  # the flow channels start at zero: identity resampling
            self.head[-1].weight[4:].zero_()
            self.head[-1].bias[4:].zero_()

    def forward(self, o: torch.Tensor, half: torch.Tensor, full: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(o, scale_factor=2.0, mode="nearest")
        x = self.up1(torch.cat([x, half], dim=1))  # (N, c, H/2, W/2)
        x = F.interpolate(x, scale_factor=2.0, mode="nearest")
        x = self.up2(torch.cat([x, full], dim=1))  # (N, c/2, H, W)
        return self.head(x)  # (N, 6, H, W): RGB, mask logit, flow (x, y)


class _TemporalContext(nn.Module):
    """Each frame sees the rest of its window: the correction ``conv3x3(mean_{s != t} P_s - P_t)``
    from the pose stream ``P`` after the blocks (where each frame's own, noisy keypoints live:
    the difference to the other frames' mean is that frame's jitter), added to ``O_t``.

    Exactly zero for T = 1 (no other frame), so per-frame try-on is the same network without
    its temporal path. The conv starts at zero (a pretrained generator is unchanged until it
    learns to use its neighbours). In a causal sliding window the other frames are the past ones.
    """

    def __init__(self, c: int) -> None:
        super().__init__()
        self.mix = nn.Conv2d(c, c, 3, padding=1, bias=False)
        nn.init.zeros_(self.mix.weight)

    def forward(self, fused: torch.Tensor, pose: torch.Tensor, frames: int) -> torch.Tensor:
        if frames == 1:
            return fused
        n, c, h, w = pose.shape
        x = pose.reshape(n // frames, frames, c, h, w)
        others = (x.sum(dim=1, keepdim=True) - x) * (1.0 / (frames - 1))
        return fused + self.mix((others - x).reshape(n, c, h, w))


FLOW_MAX = 0.03
"""Largest cloth correction, as a fraction of the image width (about 3 px at 96 wide)."""


def _resample(cloth: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """Resample (N, C, H, W) ``cloth`` at positions moved by the bounded ``flow`` (N, 2, H, W)
    (x, y; ``FLOW_MAX * width * tanh(flow)`` pixels): the appearance-flow correction of the TPS
    warp, which lets the network re-place the cloth using what it sees in the other frames."""
    n, _, h, w = cloth.shape
    ys = (torch.arange(h, dtype=cloth.dtype, device=cloth.device) + 0.5) * (2.0 / h) - 1.0
    xs = (torch.arange(w, dtype=cloth.dtype, device=cloth.device) + 0.5) * (2.0 / w) - 1.0
    base = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), dim=-1)  # (H, W, 2) as (x, y)
    shift = torch.tanh(flow).permute(0, 2, 3, 1) * (2.0 * FLOW_MAX)  # normalized units
    shift = shift * torch.tensor([1.0, w / h], dtype=cloth.dtype, device=cloth.device)
    return F.grid_sample(cloth, base + shift, mode="bilinear", padding_mode="zeros",
                         align_corners=False)  # fmt: skip


class MPDTGenerator(nn.Module):
    """Video try-on generator (see module docstring). Build with an :class:`MPDTConfig`."""

    def __init__(self, config: MPDTConfig) -> None:
        super().__init__()
        self.config = config
        c = config.channels
        self.encode_cloth = _Encoder(CLOTH_CHANNELS, c)
        self.encode_pose = _Encoder(config.pose_channels, c)
        self.encode_background = _Encoder(4, c)  # background RGB + background mask
        self.blocks = nn.ModuleList(_MPDTBlock(c, config.patch_sizes) for _ in range(config.blocks))
        self.temporal = _TemporalContext(c)
        self.norm_out = nn.GroupNorm(1, c)
        self.decoder = _Decoder(c)

    def _check(self, cloth, pose, background, background_mask) -> tuple[int, int]:
        cfg = self.config
        expected_c = cfg.input_channels
        b = t = None
        for name, x in zip(INPUT_NAMES, (cloth, pose, background, background_mask), strict=True):
            want = f"a (B, T, {expected_c[name]}, {cfg.height}, {cfg.width}) float tensor"
            if not isinstance(x, torch.Tensor) or x.dim() != 5 or not x.dtype.is_floating_point:
                raise InputError(name, want, x)
            if b is None:
                b, t = x.shape[:2]
            if tuple(x.shape) != (b, t, expected_c[name], cfg.height, cfg.width) or x.numel() == 0:
                raise InputError(name, want.replace("(B, T", f"({b}, {t}"), x)
        return b, t

    @staticmethod
    def _check_impl(impl: object) -> str:
        if impl not in IMPLS:
            raise InputError("impl", f"one of {', '.join(map(repr, IMPLS))}", impl)
        return impl

    def encode(
        self,
        cloth: torch.Tensor,
        pose: torch.Tensor,
        background: torch.Tensor,
        background_mask: torch.Tensor,
    ) -> dict[str, torch.Tensor]:
        """Per-frame work (no frame sees another): N frames, (N, C, H, W) each -> features.

        Returns (``c`` channels, ``h, w = H/4, W/4``): ``cloth_features``, ``pose_features``,
        ``background_features`` (N, c, h, w); the decoder skips ``background_half``
        (N, c, H/2, W/2) and ``background_full`` (N, c/2, H, W); ``omega`` (N, 1, h, w), the
        warped alpha max-pooled to 1/4 scale (a key is in Omega where it is > 0.5). Streaming
        callers cache these per frame (:data:`FEATURE_NAMES`) and never recompute them.
        """
        _, _, c_feat = self.encode_cloth(cloth)
        _, _, p_feat = self.encode_pose(pose)
        bg_full, bg_half, a_feat = self.encode_background(
            torch.cat([background, background_mask], 1)
        )
        return {"cloth_features": c_feat, "pose_features": p_feat, "background_features": a_feat,
                "background_half": bg_half, "background_full": bg_full,
                "omega": F.max_pool2d(cloth[:, 3:4], 4)}  # fmt: skip

    def attend(
        self,
        cloth_features: torch.Tensor,
        pose_features: torch.Tensor,
        background_features: torch.Tensor,
        omega: torch.Tensor,
        frames: int,
        *,
        impl: str = "auto",
    ) -> torch.Tensor:
        """The MPDT blocks and the temporal context over windows of ``frames`` frames:
        (B*T, c, h, w) features and (B*T, 1, h, w) ``omega`` -> the fused map ``O``
        (B*T, c, h, w) the decoder reads."""
        n, _, fh, fw = cloth_features.shape
        mask = (omega > 0.5).reshape(n // frames, frames, 1, fh, fw)
        c_feat, p_feat, a_feat = cloth_features, pose_features, background_features
        impl = self._check_impl(impl)
        fused = p_feat
        for block in self.blocks:
            c_feat, p_feat, a_feat, fused = block(c_feat, p_feat, a_feat, mask, frames, impl)
        return self.temporal(fused, p_feat, frames)

    def decode(
        self,
        fused: torch.Tensor,
        background_half: torch.Tensor,
        background_full: torch.Tensor,
        cloth: torch.Tensor,
        background: torch.Tensor,
        background_mask: torch.Tensor,
        *,
        impl: str = "auto",
    ) -> dict[str, torch.Tensor]:
        """Per-frame decoding and compositing of N frames: ``fused`` from :meth:`attend`, the
        skips from :meth:`encode` and the frames' (N, C, H, W) inputs -> ``tryon`` and
        ``rendered`` (N, 3, H, W), ``cloth_mask`` (N, 1, H, W), all in [0, 1]."""
        impl = self._check_impl(impl)
        out = self.decoder(self.norm_out(fused), background_half, background_full)  # (N, 6, H, W)
        rendered = torch.sigmoid(out[:, :3])
        warped = _resample(cloth, out[:, 4:6])  # (N, 4, H, W): the cloth, flow-corrected
        cloth_mask = torch.sigmoid(out[:, 3:4]) * warped[:, 3:4]
        if impl == "reference":
            tryon = composite_ref(warped[:, :3], rendered, cloth_mask, background, background_mask)
        else:
            tryon = composite(warped[:, :3], rendered, cloth_mask, background, background_mask,
                              impl=impl)  # fmt: skip
        return {"tryon": tryon, "rendered": rendered, "cloth_mask": cloth_mask}

    def forward(
        self,
        cloth: torch.Tensor,
        pose: torch.Tensor,
        background: torch.Tensor,
        background_mask: torch.Tensor,
        *,
        impl: str = "auto",
    ) -> dict[str, torch.Tensor]:
        """Args: (B, T, C, H, W) float tensors as in the module docstring (H, W from the config);
        ``impl`` one of :data:`IMPLS` (``"torch"`` to train, ``"reference"`` to export).

        Returns:
            ``{"tryon": (B, T, 3, H, W), "rendered": (B, T, 3, H, W),
            "cloth_mask": (B, T, 1, H, W)}``, float, in [0, 1].
        """
        b, t = self._check(cloth, pose, background, background_mask)
        self._check_impl(impl)
        h, w = self.config.height, self.config.width
        flat = lambda x: x.reshape(b * t, x.shape[2], h, w)  # noqa: E731
        cloth_f, pose_f, bg_f, mask_f = map(flat, (cloth, pose, background, background_mask))
        feats = self.encode(cloth_f, pose_f, bg_f, mask_f)
        fused = self.attend(feats["cloth_features"], feats["pose_features"],
                            feats["background_features"], feats["omega"], t, impl=impl)  # fmt: skip
        out = self.decode(fused, feats["background_half"], feats["background_full"], cloth_f,
                          bg_f, mask_f, impl=impl)  # fmt: skip
        return {name: x.reshape(b, t, x.shape[1], h, w) for name, x in out.items()}


def example_inputs(model: MPDTGenerator, frames: int, seed: int = 0) -> dict[str, torch.Tensor]:
    """Seeded (1, T, C, H, W) float32 inputs in the generator's value ranges (masks binary)."""
    cfg = model.config
    g = torch.Generator().manual_seed(seed)
    out = {
        name: torch.rand((1, frames, c, cfg.height, cfg.width), generator=g)
        for name, c in cfg.input_channels.items()
    }
    out["background_mask"] = (out["background_mask"] > 0.5).float()
    out["cloth"][:, :, 3] = (out["cloth"][:, :, 3] > 0.4).float()
    return out
