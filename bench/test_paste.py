"""``paste`` (the sharp full-resolution paste) against today's paste, on 640x480 and 1080p frames.

Baseline ``old``: what ``engine.runtime.paste.Paste`` does today (its logic copied here): copy
the frame, ``cv2.resize`` the model-size 3-channel try-on and its mask to the whole box, keep
= 1 - mask, then ``kernels.composite`` with the scaled feather (sigma 1 model pixel) straight to
uint8 HWC, written into the frame's visible part. The try-on it pastes is the model-size
composite (the garment warped at model size), prepared outside the clock as the runner does.

Implementations of the new op: ``paste_ref`` (float64), ``impl="auto"`` (OpenCV on CPU),
``"torch"``, ``"opencv"`` and the compiled Triton kernel (CUDA only). Each records its median and
p95 ms, and ``old_over_new``: today's paste time over the new one's, the median of the ratios of
interleaved pairs in the same run (robust to load drift on a shared machine).

Inputs at the engine's model size 256 x 192, a 384 x 288 garment texture, a smooth warp grid
(affine plus a gentle bend, like a TPS fit), soft masks; boxes 300 x 400 in a 640 x 480 frame
and 540 x 720 in a 1080p frame, both inside the frame as for a centred subject.
"""

from __future__ import annotations

import statistics

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F

import kernels
from bench.conftest import DEVICE, interleaved_samples

MODEL_HW = (256, 192)
GARMENT_HW = (384, 288)
CASES = {
    # name: frame (H, W), box (x0, y0, bw, bh)
    "640x480": ((480, 640), (170, 40, 300, 400)),
    "1920x1080": ((1080, 1920), (690, 180, 540, 720)),
}
FEATHER = 1.0  # the session's default, in model pixels
RATIO_ROUNDS = 30


def _inputs(frame_hw, seed=0):
    """frame (H, W, 3) uint8 and the op's model-size inputs, on CPU."""
    gen = torch.Generator().manual_seed(seed)
    h, w = MODEL_HW
    hg, wg = GARMENT_HW
    frame = torch.randint(0, 256, (*frame_hw, 3), generator=gen, dtype=torch.uint8)
    ys, xs = torch.meshgrid(torch.linspace(-1, 1, h), torch.linspace(-1, 1, w), indexing="ij")
    grid = torch.stack((1.1 * xs + 0.05 * torch.sin(3 * ys), 1.05 * ys + 0.03 * xs), dim=-1)
    blob = ((xs / 0.7) ** 2 + (ys / 0.8) ** 2).neg().add(1).mul(4).clamp(0, 1)  # soft ellipse
    cloth_mask = blob[None, None].contiguous()  # (1, 1, h, w)
    keep_mask = 1 - ((xs / 0.85) ** 2 + (ys / 0.95) ** 2).neg().add(1).mul(4).clamp(0, 1)
    keep_mask = keep_mask[None, None].contiguous()
    rendered = torch.rand(1, 3, h, w, generator=gen)
    garment = torch.rand(4, hg, wg, generator=gen)
    garment[3] = 1.0
    return frame, rendered, cloth_mask, keep_mask, garment, grid[None].contiguous()


def _old_paste(frame, box, tryon, mask, model_width):
    """engine.runtime.paste.Paste(mode="garment", feather=FEATHER) of today, on numpy frames."""
    x0, y0, bw, bh = box
    image = frame.copy()
    fx0, fy0 = max(x0, 0), max(y0, 0)
    fx1, fy1 = min(x0 + bw, frame.shape[1]), min(y0 + bh, frame.shape[0])
    if fx1 <= fx0 or fy1 <= fy0:
        return image
    frame_part = (slice(fy0, fy1), slice(fx0, fx1))
    box_part = (slice(fy0 - y0, fy1 - y0), slice(fx0 - x0, fx1 - x0))
    crop_rgb = tryon[0].permute(1, 2, 0).numpy()
    up = cv2.resize(crop_rgb, (bw, bh), interpolation=cv2.INTER_LINEAR)
    np.clip(up, 0.0, 1.0, out=up)
    keep = 1.0 - cv2.resize(mask[0, 0].numpy(), (bw, bh), interpolation=cv2.INTER_LINEAR)
    np.clip(keep, 0.0, 1.0, out=keep)
    up_t = torch.from_numpy(up[box_part]).permute(2, 0, 1)[None]
    keep_t = torch.from_numpy(keep[box_part])[None, None]
    background = torch.from_numpy(frame[frame_part]).permute(2, 0, 1)[None]
    background = background.to(torch.float32).div_(255.0)
    scale = bw / model_width
    out = kernels.composite(up_t, up_t, keep_t, background, keep_t,
                            feather=min(10.0, FEATHER * scale), out_dtype=torch.uint8,
                            out_layout="nhwc")  # fmt: skip
    image[frame_part] = out[0].numpy()
    return image


def _old_inputs(rendered, cloth_mask, keep_mask, garment, grid):
    """Today's model-size try-on (garment warped at model size, composited) and paste mask."""
    warped = F.grid_sample(garment[None, :3], grid, mode="bilinear", align_corners=False)
    tryon = cloth_mask * warped + (1 - cloth_mask) * rendered  # (1, 3, h, w)
    return tryon.contiguous(), (1 - keep_mask).contiguous()


def _impl_params():
    cuda = DEVICE.type == "cuda"
    return [
        pytest.param("ref", id="ref"),
        pytest.param("auto", id="auto", marks=pytest.mark.skipif(cuda, reason="auto is triton")),
        pytest.param("torch", id="torch"),
        pytest.param("opencv", id="opencv", marks=pytest.mark.skipif(cuda, reason="CPU only")),
        pytest.param("triton", id="triton",
                     marks=pytest.mark.skipif(not cuda, reason="Triton is benchmarked compiled "
                                              "(CUDA) only, never in its interpreter")),
    ]  # fmt: skip


def _synchronized(fn):
    def run():
        out = fn()
        if DEVICE.type == "cuda":
            torch.cuda.synchronize()
        return out

    return run


@pytest.mark.parametrize("case", list(CASES))
def test_paste_old_baseline(measure, case):
    frame_hw, box = CASES[case]
    frame, rendered, cm, km, garment, grid = _inputs(frame_hw)
    tryon, mask = _old_inputs(rendered, cm, km, garment, grid)
    frame_np = frame.numpy()
    measure(
        lambda: _old_paste(frame_np, box, tryon, mask, MODEL_HW[1]),
        frames=1,
        group=f"paste {case}, box {box[2]}x{box[3]}",
        op="paste",
        impl="old",
        frame=list(frame_hw),
        box=list(box),
    )


@pytest.mark.parametrize("impl", _impl_params())
@pytest.mark.parametrize("case", list(CASES))
def test_paste(measure, benchmark, case, impl):
    frame_hw, box = CASES[case]
    frame, rendered, cm, km, garment, grid = _inputs(frame_hw)
    tryon, mask = _old_inputs(rendered, cm, km, garment, grid)
    frame_np = frame.numpy().copy()
    args = [x.to(DEVICE) for x in (frame, rendered, cm, km, garment, grid)]
    if impl == "ref":
        new = _synchronized(lambda: kernels.paste_ref(args[0], box, *args[1:]))
    else:
        new = _synchronized(lambda: kernels.paste(args[0], box, *args[1:], impl=impl))
    old = lambda: _old_paste(frame_np, box, tryon, mask, MODEL_HW[1])  # noqa: E731

    samples = interleaved_samples({"new": new, "old": old}, RATIO_ROUNDS)
    ratios = [o / n for o, n in zip(samples["old"], samples["new"], strict=True)]
    measure(
        new,
        frames=1,
        group=f"paste {case}, box {box[2]}x{box[3]}",
        op="paste",
        impl=impl,
        frame=list(frame_hw),
        box=list(box),
    )
    benchmark.extra_info.update(
        old_paste_median_ms=round(statistics.median(samples["old"]) * 1e3, 4),
        new_interleaved_median_ms=round(statistics.median(samples["new"]) * 1e3, 4),
        old_over_new=round(statistics.median(ratios), 3),
        note=f"old paste / {impl}: median of {RATIO_ROUNDS} interleaved pairs",
    )
