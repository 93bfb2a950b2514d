"""Training the MPDT generator on synthetic clips (``tryon train``).

Data: a pool of synthetic clips (:mod:`engine.training.synthetic`, training seeds only), turned
into the generator's inputs by the same code the runtime uses (:mod:`engine.inputs.frame_inputs`)
with garment fit ``fit``: ``"outline"`` (what the runtime feeds the generator; the default, shared
with the evaluation: :data:`engine.training.evaluate.DEFAULT_FIT`, and the bundled demo's) or
``"keypoints"`` (the skeleton-anchor warp), on segmenter-like person masks
(:func:`engine.training.mask_noise.segmenter_mask`, unless ``mask_noise`` is False); each step
samples ``batch`` clips from the pool with a seeded generator. (No flip augmentation: a mirrored
pose map would put the right shoulder's channel on the left side.)

Loss (the MPDT design: L1 whole frame + L1 try-on region + perceptual + adversarial; we keep the
first
three, leave the adversarial term out, since a GAN on a CPU budget of minutes mostly adds noise,
and add a temporal term, since the point of a video generator is a stable result)::

    loss = l1(tryon, gt) + REGION_WEIGHT * l1_region(tryon, gt) + GRADIENT_WEIGHT * grad(tryon, gt)
           + TEMPORAL_WEIGHT * temporal(tryon, gt)

``grad`` is the perceptual-style term that needs no downloaded network: L1 between the Sobel
gradients of output and ground truth at three scales (full, 1/2, 1/4), which rewards sharp,
correctly placed edges (stripes, collar, arm contours) the way VGG features would, at no cost.
``temporal`` is the training form of :func:`engine.training.metrics.flicker`: the L1 distance
between the output's and the ground truth's frame-to-frame changes inside the try-on region.

Adam (lr 2e-3, cosine decay to 5 % with a short warm-up), fp32, seeded; a checkpoint
(``checkpoint.pt``: model + optimizer + step, loaded with ``weights_only=True``) every
``checkpoint_every`` steps makes runs resumable (a checkpoint remembers its fit and mask noise:
resuming with others raises); the final weights go to ``generator.safetensors``. ``init`` starts a
run from existing weights (``"demo"`` or a file): fine-tuning (the bundled demo is the keypoints-fit
demo fine-tuned on the outline fit with mask noise; the README has the command).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from engine.errors import InputError
from engine.model.mpdt_generator import INPUT_NAMES, MPDTConfig, MPDTGenerator
from engine.model.weights import BUNDLED, bundled_path, save_generator
from engine.training.evaluate import DEFAULT_FIT, check_fit
from engine.training.mask_noise import clip_model_inputs
from engine.training.synthetic import clip_seeds, make_clip

__all__ = ["TrainConfig", "tryon_loss", "make_pool", "train"]

REGION_WEIGHT = 2.0
GRADIENT_WEIGHT = 1.0
# 0.5 trained the first demo from scratch (its outline fine-tune, the shipped demo, used 1.0).
# At 2.0 (3000 lite steps, before the flow correction existed) it traded quality for stillness
# and lost everywhere (held-out psnr_region 8.0, flicker 0.122).
TEMPORAL_WEIGHT = 0.5


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters of one training run."""

    model: str = "lite"
    steps: int = 2000
    batch: int = 2
    pool: int = 256
    lr: float = 2e-3
    seed: int = 0
    checkpoint_every: int = 100
    temporal_weight: float = TEMPORAL_WEIGHT
    init: str | None = None  # weights to start from (fine-tuning): "demo" or a weights file
    fit: str = DEFAULT_FIT  # garment fit of the inputs (engine.inputs.frame_inputs.FITS)
    mask_noise: bool = True  # segmenter-like person masks (engine.training.mask_noise)


def _sobel(x: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) -> (N, 2C, H, W) horizontal and vertical Sobel responses."""
    kx = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]], dtype=x.dtype)
    k = torch.stack([kx, kx.T])[:, None].repeat(x.shape[1], 1, 1, 1).to(x.device)  # (2C, 1, 3, 3)
    return F.conv2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), k, groups=x.shape[1])


def tryon_loss(
    output: torch.Tensor,
    target: torch.Tensor,
    region: torch.Tensor,
    *,
    temporal_weight: float = TEMPORAL_WEIGHT,
) -> dict[str, torch.Tensor]:
    """Loss terms for (B, T, 3, H, W) output/target and (B, T, 1, H, W) region; ``total`` is the
    weighted sum (see the module docstring)."""
    temporal = output.new_zeros(())
    if output.shape[1] > 1:
        change = (output[:, 1:] - output[:, :-1]) - (target[:, 1:] - target[:, :-1])
        weight = torch.maximum(region[:, 1:], region[:, :-1])
        temporal = (change.abs() * weight).sum() / (weight.sum() * 3).clamp_min(1.0)
    output, target, region = output.flatten(0, 1), target.flatten(0, 1), region.flatten(0, 1)
    l1 = (output - target).abs()
    whole = l1.mean()
    in_region = (l1 * region).sum() / (region.sum() * 3).clamp_min(1.0)
    grad = output.new_zeros(())
    o, t = output, target
    for _ in range(3):
        grad = grad + (_sobel(o) - _sobel(t)).abs().mean()
        o, t = F.avg_pool2d(o, 2), F.avg_pool2d(t, 2)
    total = (
        whole + REGION_WEIGHT * in_region + GRADIENT_WEIGHT * grad / 3 + temporal_weight * temporal
    )
    return {"total": total, "l1": whole, "l1_region": in_region, "gradient": grad / 3,
            "temporal": temporal}  # fmt: skip


def make_pool(
    config: MPDTConfig,
    seeds: list[int],
    progress: Callable | None = None,
    *,
    fit: str = DEFAULT_FIT,
    mask_noise: bool = True,
) -> list[dict[str, torch.Tensor]]:
    """Generator inputs (garment fit ``fit``, on segmenter-like person masks unless
    ``mask_noise`` is False) + target for each seed: dicts of (T, C, H, W) tensors, the
    generator's inputs, ``target`` and ``region``."""
    fit = check_fit(fit)
    keep = (*INPUT_NAMES, "region")
    pool = []
    for seed in seeds:
        clip = make_clip(seed, frames=config.frames, height=config.height, width=config.width)
        inputs = clip_model_inputs(clip, seed, fit=fit, mask_noise=mask_noise)
        sample = {key: inputs[key] for key in keep}
        sample["target"] = clip.frames
        pool.append(sample)
        if progress is not None:
            progress()
    return pool


def _batch(pool: list[dict], rng: torch.Generator, size: int) -> dict[str, torch.Tensor]:
    index = torch.randint(len(pool), (size,), generator=rng).tolist()
    return {key: torch.stack([pool[i][key] for i in index]) for key in pool[0]}  # (B, T, C, H, W)


def _lr(step: int, total: int, base: float) -> float:
    warmup = max(1, total // 50)
    if step < warmup:
        return base * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return base * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * progress)))


def _load_init(model: MPDTGenerator, path: str) -> str:
    """Load the tensors of weights file ``path`` (or of a bundled model: ``"demo"``) that
    ``model`` has; ``model``'s layers the file lacks keep their initialization. Returns what was
    kept."""
    from safetensors import SafetensorError, safe_open

    if path in BUNDLED:
        path = str(bundled_path(path))

    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            tensors = {key: f.get_tensor(key) for key in f.keys()}  # noqa: SIM118
    except (SafetensorError, OSError, ValueError) as exc:
        raise InputError("init", f"a readable weights file ({exc})", path) from exc
    own = model.state_dict()
    wrong = sorted(k for k in tensors if k not in own or tensors[k].shape != own[k].shape)
    if wrong:
        raise InputError("init", "weights of the same architecture", f"mismatched {wrong[:3]}")
    model.load_state_dict(tensors, strict=False)
    fresh = sorted(set(own) - set(tensors))
    return f"{len(tensors)} tensors loaded, new: {', '.join(fresh) or 'none'}"


def train(cfg: TrainConfig, out_dir: str | Path, *, log: Callable[[str], None] = print) -> Path:
    """Train (or resume) a generator; returns the path of the final weights file."""
    from tqdm import tqdm

    if cfg.steps < 1 or cfg.batch < 1 or cfg.pool < 1:
        raise InputError("steps/batch/pool", "ints >= 1", (cfg.steps, cfg.batch, cfg.pool))
    check_fit(cfg.fit)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(cfg.seed)
    model_cfg = MPDTConfig.from_name(cfg.model)
    model = MPDTGenerator(model_cfg)
    if cfg.init is not None:
        log(f"starting from {cfg.init}: " + _load_init(model, cfg.init))
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    start = 0
    checkpoint = out_dir / "checkpoint.pt"
    if checkpoint.is_file():
        state = torch.load(checkpoint, weights_only=True)
        saved_fit = state.get("fit", "keypoints")  # checkpoints from before the option: keypoints
        if saved_fit != cfg.fit:
            raise InputError("fit", f"{saved_fit!r}, the fit of {checkpoint}", cfg.fit)
        saved_noise = state.get("mask_noise", False)  # checkpoints from before it: exact masks
        if saved_noise != cfg.mask_noise:
            raise InputError("mask_noise", f"{saved_noise}, as in {checkpoint}", cfg.mask_noise)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        start = int(state["step"])
        log(f"resuming from step {start} ({checkpoint})")

    with tqdm(total=cfg.pool, desc="synthetic clips", unit="clip", leave=False) as bar:
        pool = make_pool(model_cfg, clip_seeds("train", cfg.pool), progress=lambda: bar.update(),
                         fit=cfg.fit, mask_noise=cfg.mask_noise)  # fmt: skip
    rng = torch.Generator().manual_seed(cfg.seed)
    for _ in range(start):  # replay the sampler so a resumed run sees the same batches
        _batch(pool, rng, cfg.batch)

    model.train()
    t0 = time.perf_counter()
    with tqdm(total=cfg.steps, initial=start, desc="training", unit="step") as bar:
        for step in range(start, cfg.steps):
            for group in optimizer.param_groups:
                group["lr"] = _lr(step, cfg.steps, cfg.lr)
            batch = _batch(pool, rng, cfg.batch)
            out = model(
                batch["cloth"],
                batch["pose"],
                batch["background"],
                batch["background_mask"],
                impl="torch",
            )  # differentiable paths
            losses = tryon_loss(out["tryon"], batch["target"], batch["region"],
                                temporal_weight=cfg.temporal_weight)  # fmt: skip
            optimizer.zero_grad(set_to_none=True)
            losses["total"].backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            bar.update()
            bar.set_postfix(loss=f"{losses['total'].item():.4f}")
            if (step + 1) % cfg.checkpoint_every == 0 or step + 1 == cfg.steps:
                state = {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                         "step": step + 1, "fit": cfg.fit,
                         "mask_noise": cfg.mask_noise}  # fmt: skip
                torch.save(state, checkpoint)
    minutes = (time.perf_counter() - t0) / 60
    notes = (
        f"preset={cfg.model} steps={cfg.steps} batch={cfg.batch} pool={cfg.pool} seed={cfg.seed} "
        f"temporal_weight={cfg.temporal_weight} fit={cfg.fit} mask_noise={cfg.mask_noise}"
        + (f" init={cfg.init}" if cfg.init else "")
    )
    path = save_generator(model, out_dir / "generator.safetensors", notes=notes)
    log(f"trained {cfg.steps - start} steps in {minutes:.1f} min -> {path}")
    return path
