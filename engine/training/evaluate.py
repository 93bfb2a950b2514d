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

``fit`` picks how the garment is warped onto each clip's body
(:func:`engine.inputs.frame_inputs.clip_inputs`, always passed explicitly): ``"outline"`` (what
the runtime feeds the generator: seams on the silhouette measured on the person mask, sleeves
along the arms; :data:`DEFAULT_FIT`, training's default too, since the bundled demo is trained on
it) or ``"keypoints"`` (the skeleton-anchor warp the demo was first trained on).

Each clip's person mask is made segmenter-like first (:mod:`engine.training.mask_noise`: a soft
edge that is biased per clip and wanders per frame, seeded by the clip's seed) unless
``mask_noise=False``: the outline fit's targets then jitter as they do live, which the temporal
window can average away and a per-frame run cannot. The held-out clips exercise both fits: every
frame's segmenter-like mask gives a valid outline, and the set holds sleeved garments on raised
arms and forearms crossing in front of the torso (checked by
``tests/engine/training/test_evaluate.py``).
"""

from __future__ import annotations

import torch

from engine.errors import InputError
from engine.inputs.frame_inputs import FITS
from engine.model.mpdt_generator import INPUT_NAMES, MPDTGenerator
from engine.training.mask_noise import clip_model_inputs
from engine.training.metrics import flicker, psnr, psnr_region, ssim
from engine.training.synthetic import clip_seeds, make_clip

__all__ = ["evaluate", "paste_baseline", "check_fit", "METRICS", "DEFAULT_FIT"]

METRICS = ("psnr", "psnr_region", "ssim", "flicker")
DEFAULT_FIT = "outline"  # the bundled demo's fit; see the module docstring


def check_fit(fit: object) -> str:
    """``fit`` if it is one of :data:`engine.inputs.frame_inputs.FITS`, else InputError."""
    if not isinstance(fit, str) or fit not in FITS:
        raise InputError("fit", f"one of {FITS}", fit)
    return fit


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


def evaluate(
    model: MPDTGenerator, *, clips: int = 16, fit: str = DEFAULT_FIT, mask_noise: bool = True
) -> dict[str, dict[str, float]]:
    """Mean metrics of ``model``, ``paste`` and ``per_frame`` over ``clips`` held-out clips whose
    inputs are built with garment fit ``fit`` (``"outline"`` or ``"keypoints"``) on segmenter-like
    person masks (exact ones when ``mask_noise`` is False)."""
    fit = check_fit(fit)
    if not isinstance(mask_noise, bool):
        raise InputError("mask_noise", "a bool", mask_noise)
    if isinstance(clips, bool) or not isinstance(clips, int) or clips < 1:
        raise InputError("clips", "an int >= 1", clips)
    model.eval()
    cfg = model.config
    totals = {name: dict.fromkeys(METRICS, 0.0) for name in ("model", "paste", "per_frame")}
    for seed in clip_seeds("eval", clips):
        clip = make_clip(seed, frames=cfg.frames, height=cfg.height, width=cfg.width)
        inputs = clip_model_inputs(clip, seed, fit=fit, mask_noise=mask_noise)
        outputs = {
            "model": _run(model, inputs, per_frame=False),
            "paste": paste_baseline(inputs),
            "per_frame": _run(model, inputs, per_frame=True),
        }
        for name, out in outputs.items():
            for metric, value in _scores(out, clip.frames, inputs["region"]).items():
                totals[name][metric] += value / clips
    return {name: {m: round(v, 4) for m, v in scores.items()} for name, scores in totals.items()}
