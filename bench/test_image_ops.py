"""Image ops on 1080p frames, each per implementation, with GB/s and fraction of peak.

CPU: the plain-PyTorch references, OpenCV called directly, and ``impl="auto"`` (which must be no
slower than OpenCV called directly: asserted in ``test_gaussian_blur_auto_vs_opencv_1080p``).
CUDA: the references and the Triton kernels (goals: >= 80% of bandwidth for ``composite``,
>= 60% for a 5x5 uint8 Gaussian).

Frames are channels-last, the layout a decoded video frame (H, W, 3) has once viewed as
(1, 3, H, W): every op reads it in place.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

import kernels
from bench.conftest import DEVICE

H, W = 1080, 1920
IMPLS = ("torch", "triton") if DEVICE.type == "cuda" else ("torch", "opencv", "auto")
# The gather-based references are slow on CPU: fewer rounds keep the suite within minutes.
ROUNDS = {"torch": 3, "opencv": 15, "auto": 15, "triton": 50}


def _frame(dtype: torch.dtype, channels: int = 3, seed: int = 0) -> torch.Tensor:
    """(1, C, H, W) channels-last frame on the bench device: uint8 0..255 or float in [0, 1]."""
    rng = np.random.default_rng(seed)
    hwc = rng.integers(0, 256, (H, W, channels), dtype=np.uint8)
    x = torch.from_numpy(hwc).permute(2, 0, 1)[None].to(DEVICE)
    return x if dtype == torch.uint8 else (x.to(torch.float32) / 255).to(dtype)


def _nbytes(*tensors: torch.Tensor) -> int:
    return sum(t.numel() * t.element_size() for t in tensors)


def _supports(impl: str, op: str) -> bool:
    has_opencv = op in {"gaussian_blur", "box_blur", "rgb_to_ycbcr", "skin_mask", "gradient_map"}
    return impl != "opencv" or has_opencv


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32], ids=["u8", "f32"])
def test_gaussian_blur_5x5_1080p(measure, impl, dtype):
    x = _frame(dtype)
    out = kernels.gaussian_blur(x, 5, impl=impl)
    measure(lambda: kernels.gaussian_blur(x, 5, impl=impl), bytes_moved=_nbytes(x, out),
            rounds=ROUNDS[impl])  # fmt: skip


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("masked", [False, True], ids=["full", "masked"])
def test_box_blur_5x5_u8_1080p(measure, impl, masked):
    x = _frame(torch.uint8)
    mask = _frame(torch.float32, channels=1, seed=1) if masked else None
    out = kernels.box_blur(x, 5, mask=mask, impl=impl)
    moved = _nbytes(x, out) + (_nbytes(mask) if masked else 0)
    measure(lambda: kernels.box_blur(x, 5, mask=mask, impl=impl), bytes_moved=moved,
            rounds=ROUNDS[impl])  # fmt: skip


@pytest.mark.parametrize("impl", [i for i in IMPLS if i != "opencv"])
@pytest.mark.parametrize(
    "dtype, out_dtype, layout, feather",
    [
        (torch.float16, torch.uint8, "nhwc", 0.0),
        (torch.float16, torch.uint8, "nhwc", 2.0),
        (torch.float32, torch.float32, "nchw", 0.0),
    ],
    ids=["f16-u8nhwc", "f16-u8nhwc-feather2", "f32-f32"],
)
def test_composite_1080p(measure, impl, dtype, out_dtype, layout, feather):
    cloth, rendered, background = (_frame(dtype, seed=s) for s in (0, 1, 2))
    cloth_mask, background_mask = (_frame(dtype, channels=1, seed=s) for s in (3, 4))
    args = (cloth, rendered, cloth_mask, background, background_mask)
    kwargs = dict(feather=feather, out_dtype=out_dtype, out_layout=layout, impl=impl)
    out = kernels.composite(*args, **kwargs)
    measure(lambda: kernels.composite(*args, **kwargs), bytes_moved=_nbytes(*args, out),
            rounds=ROUNDS[impl])  # fmt: skip


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("op", ["rgb_to_ycbcr", "skin_mask", "rgb_to_hsi"])
def test_colour_ops_u8_1080p(measure, impl, op):
    if not _supports(impl, op):
        pytest.skip(f"{op} has no OpenCV implementation")
    fn = getattr(kernels, op)
    x = _frame(torch.uint8)
    out = fn(x, impl=impl)
    measure(lambda: fn(x, impl=impl), bytes_moved=_nbytes(x, out), rounds=ROUNDS[impl])


@pytest.mark.parametrize("impl", IMPLS)
def test_gradient_map_f32_1080p(measure, impl):
    gray = _frame(torch.float32, channels=1)
    out = kernels.gradient_map(gray, 3, 5, impl=impl)
    measure(lambda: kernels.gradient_map(gray, 3, 5, impl=impl), bytes_moved=_nbytes(gray, out),
            rounds=ROUNDS[impl])  # fmt: skip


@pytest.mark.skipif(DEVICE.type != "cpu", reason="the OpenCV comparison is about the CPU path")
@pytest.mark.parametrize("op", ["gaussian_blur", "box_blur"])
def test_filter_auto_vs_opencv_1080p(benchmark, op):
    """``impl="auto"`` on CPU must cost no more than OpenCV called directly on the same HWC
    array (measured in one run, interleaved, as a ratio; 15% allowed for timer noise)."""
    import time

    x = _frame(torch.uint8)
    hwc = x[0].permute(1, 2, 0).numpy()  # the frame's own memory, no copy
    direct = {
        "gaussian_blur": lambda: cv2.GaussianBlur(
            hwc, (5, 5), 0, borderType=cv2.BORDER_REFLECT_101
        ),
        "box_blur": lambda: cv2.blur(hwc, (5, 5), borderType=cv2.BORDER_REFLECT_101),
    }[op]
    ours = getattr(kernels, op)
    auto = lambda: ours(x, 5)  # noqa: E731
    times = {"auto": [], "opencv": []}
    for _ in range(3):
        auto(), direct()  # warm-up
    for _ in range(25):
        for name, fn in (("auto", auto), ("opencv", direct)):
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    med = {k: float(np.median(v)) for k, v in times.items()}
    ratio = med["auto"] / med["opencv"]
    benchmark.extra_info.update(
        auto_median_ms=round(med["auto"] * 1e3, 3),
        opencv_median_ms=round(med["opencv"] * 1e3, 3),
        auto_over_opencv=round(ratio, 3),
    )
    benchmark.pedantic(auto, rounds=5, warmup_rounds=1)
    assert ratio <= 1.15, f"auto is {ratio:.2f}x OpenCV called directly"
