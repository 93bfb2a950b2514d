"""Held-out evaluation of a generator against two baselines (``tryon eval``).

Clips come from :func:`engine.training.synthetic.clip_seeds` ``("eval", n)``: seeds never used for
training. For each clip, three outputs are scored against the ground-truth frames with
:mod:`engine.training.metrics` (``psnr``, ``psnr_region``, ``ssim``, ``flicker``), and averaged
over clips:

- ``model``: the generator over the clip's T frames at once (its temporal attention at work);
- ``paste``: no network: the warped cloth pasted into the background inside the try-on region,
  ``M_a * A + (1 - M_a) * (alpha * C + (1 - alpha) * A)`` (region pixels the warp does not cover
  keep the background's grey fill);
- ``per_frame``: the same generator run on each frame alone (T = 1).
"""

from __future__ import annotations

import torch

from engine.inputs.frame_inputs import clip_inputs
from engine.model.mpdt_generator import INPUT_NAMES, MPDTGenerator
from engine.training.metrics import flicker, psnr, psnr_region, ssim
from engine.training.synthetic import clip_seeds, make_clip

__all__ = ["evaluate", "paste_baseline", "METRICS"]

METRICS = ("psnr", "psnr_region", "ssim", "flicker")


def paste_baseline(inputs: dict[str, torch.Tensor]) -> torch.Tensor:
    """(T, 3, H, W): the warped cloth pasted into the background inside the region."""
    cloth, alpha = inputs["cloth"][:, :3], inputs["cloth"][:, 3:4]
    background, keep = inputs["background"], inputs["background_mask"]
    return keep * background + (1 - keep) * (alpha * cloth + (1 - alpha) * background)


@torch.no_grad()
def _run(model: MPDTGenerator, inputs: dict[str, torch.Tensor], per_frame: bool) -> torch.Tensor:
    batch = {k: inputs[k][None] for k in INPUT_NAMES}  # (1, T, C, H, W)
    if not per_frame:
        return model(**batch)["tryon"][0]
    frames = batch["cloth"].shape[1]
    outs = [
        model(**{k: v[:, t : t + 1] for k, v in batch.items()})["tryon"][0] for t in range(frames)
    ]
    return torch.cat(outs)  # (T, 3, H, W)


def _scores(output: torch.Tensor, target: torch.Tensor, region: torch.Tensor) -> dict[str, float]:
    return {
        "psnr": psnr(output, target),
        "psnr_region": psnr_region(output, target, region),
        "ssim": ssim(output, target),
        "flicker": flicker(output, target, region),
    }


def evaluate(model: MPDTGenerator, *, clips: int = 16) -> dict[str, dict[str, float]]:
    """Mean metrics of ``model``, ``paste`` and ``per_frame`` over ``clips`` held-out clips."""
    model.eval()
    cfg = model.config
    totals = {name: dict.fromkeys(METRICS, 0.0) for name in ("model", "paste", "per_frame")}
    for seed in clip_seeds("eval", clips):
        clip = make_clip(seed, frames=cfg.frames, height=cfg.height, width=cfg.width)
        inputs = clip_inputs(clip)
        outputs = {
            "model": _run(model, inputs, per_frame=False),
            "paste": paste_baseline(inputs),
            "per_frame": _run(model, inputs, per_frame=True),
        }
        for name, out in outputs.items():
            for metric, value in _scores(out, clip.frames, inputs["region"]).items():
                totals[name][metric] += value / clips
    return {name: {m: round(v, 4) for m, v in scores.items()} for name, scores in totals.items()}
