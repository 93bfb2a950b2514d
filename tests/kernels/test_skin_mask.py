"""skin_mask: Triton (interpreted on CPU) vs the torch reference vs OpenCV's conversion."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
import torch

from engine.errors import InputError
from kernels.skin_mask import (
    HSU_ANGLE,
    HSU_AXES,
    HSU_CENTER,
    HSU_OFFSET,
    skin_mask,
    skin_mask_ref,
)

SHAPES = [(1, 3, 1, 1), (1, 3, 1, 17), (2, 3, 13, 5), (1, 3, 7, 16)]
DTYPES = [torch.uint8, torch.float16, torch.float32]

SKIN = [(200, 150, 120), (224, 172, 138), (141, 85, 36), (255, 219, 172), (180, 120, 100)]
NOT_SKIN = [
    (128, 128, 128),
    (255, 0, 0),
    (0, 255, 0),
    (0, 0, 255),
    (0, 0, 0),
    (255, 255, 255),
    (60, 120, 200),
    (240, 230, 60),
]


def _image(shape, dtype, layout, seed=0):
    g = torch.Generator().manual_seed(seed)
    n, c, h, w = shape
    if layout == "strided":
        w = 2 * w
    # Mostly skin-like colours, so both mask values occur.
    base = torch.tensor([190, 140, 110], dtype=torch.int32).view(1, 3, 1, 1)
    x = (base + torch.randint(-60, 61, (n, c, h, w), generator=g)).clamp(0, 255).to(torch.uint8)
    if dtype != torch.uint8:
        x = (x.float() / 255).to(dtype)
    if layout == "channels_last":
        x = x.contiguous(memory_format=torch.channels_last)
    elif layout == "strided":
        x = x[:, :, :, ::2]
        assert not x.is_contiguous()
    return x


def _cv2_mask(x: torch.Tensor) -> torch.Tensor:
    """The ellipse applied to OpenCV's own Cb, Cr (float64 math, fp16 through fp32)."""
    masks = []
    t = HSU_ANGLE
    for img in x:
        hwc = img.permute(1, 2, 0)
        src = np.ascontiguousarray((hwc.float() if img.dtype == torch.float16 else hwc).numpy())
        ycrcb = cv2.cvtColor(src, cv2.COLOR_RGB2YCrCb).astype(np.float64)
        if x.dtype != torch.uint8:
            ycrcb *= 255
        dcb, dcr = ycrcb[..., 2] - HSU_CENTER[0], ycrcb[..., 1] - HSU_CENTER[1]
        ex = math.cos(t) * dcb + math.sin(t) * dcr - HSU_OFFSET[0]
        ey = -math.sin(t) * dcb + math.cos(t) * dcr - HSU_OFFSET[1]
        masks.append(torch.from_numpy(ex**2 / HSU_AXES[0] ** 2 + ey**2 / HSU_AXES[1] ** 2 <= 1))
    return torch.stack(masks)[:, None]


@pytest.mark.parametrize("layout", ["contiguous", "channels_last", "strided"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
def test_triton_matches_ref_and_opencv(shape, dtype, layout):
    x = _image(shape, dtype, layout)
    out = skin_mask(x, impl="triton")
    n, _, h, w = x.shape
    assert out.shape == (n, 1, h, w) and out.dtype == torch.bool
    torch.testing.assert_close(out, skin_mask_ref(x), rtol=0, atol=0)
    # Random colours are not within float rounding of the boundary: OpenCV agrees exactly.
    torch.testing.assert_close(out, _cv2_mask(x), rtol=0, atol=0)


def test_mixed_mask_on_large_sample():
    x = _image((1, 3, 40, 50), torch.uint8, "contiguous", seed=5)
    out = skin_mask(x, impl="triton")
    assert 0 < out.sum() < out.numel()
    torch.testing.assert_close(out, skin_mask_ref(x), rtol=0, atol=0)


@pytest.mark.parametrize("impl", ["triton", "torch", "opencv", "auto"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_known_skin_and_non_skin_colours(impl, dtype):
    colours = torch.tensor(SKIN + NOT_SKIN, dtype=torch.uint8).T.reshape(1, 3, 1, -1)
    x = colours if dtype == torch.uint8 else (colours.float() / 255).to(dtype)
    out = skin_mask(x, impl=impl)[0, 0, 0].tolist()
    assert out == [True] * len(SKIN) + [False] * len(NOT_SKIN)


@pytest.mark.parametrize("impl", ["auto", "torch", "opencv"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_cpu_paths_match_triton(impl, dtype):
    for layout in ("contiguous", "channels_last", "strided"):
        x = _image((2, 3, 5, 9), dtype, layout, seed=1)
        torch.testing.assert_close(
            skin_mask(x, impl=impl), skin_mask(x, impl="triton"), rtol=0, atol=0
        )


def test_custom_parameters():
    x = _image((1, 3, 6, 11), torch.float32, "contiguous", seed=4)
    kw = dict(center=(110.0, 150.0), axes=(40.0, 20.0), angle=0.3, offset=(0.0, -1.0))
    out = skin_mask(x, impl="triton", **kw)
    torch.testing.assert_close(out, skin_mask_ref(x, **kw), rtol=0, atol=0)
    # A huge ellipse holds every colour.
    assert skin_mask(x, impl="triton", axes=(1e4, 1e4)).all()


@pytest.mark.parametrize("dtype", DTYPES)
def test_custom_op(dtype):
    x = _image((2, 3, 3, 7), dtype, "channels_last", seed=3)
    args = (list(HSU_CENTER), list(HSU_AXES), HSU_ANGLE, list(HSU_OFFSET))
    for impl in ("triton", "torch"):
        out = torch.ops.tryon.skin_mask(x, *args, impl)
        torch.testing.assert_close(out, skin_mask(x, impl=impl), rtol=0, atol=0)


@pytest.mark.parametrize(
    "x",
    [
        torch.zeros(3, 4, 4, dtype=torch.uint8),  # rank 3
        torch.zeros(1, 1, 4, 4, dtype=torch.uint8),  # 1 channel
        torch.zeros(1, 3, 4, 0, dtype=torch.uint8),  # empty
        torch.zeros(1, 3, 4, 4, dtype=torch.int16),  # dtype
        torch.zeros(1, 3, 4, 4, dtype=torch.bool),  # dtype
        [[0, 0, 0]],  # not a tensor
    ],
)
def test_bad_input_raises(x):
    with pytest.raises(InputError) as info:
        skin_mask(x, impl="triton")
    assert info.value.argument == "x"


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"axes": (0.0, 14.0)}, "axes"),
        ({"axes": (25.0, -1.0)}, "axes"),
        ({"axes": (25.0,)}, "axes"),
        ({"axes": (float("inf"), 1.0)}, "axes"),
        ({"center": (1.0, float("nan"))}, "center"),
        ({"center": "ab"}, "center"),
        ({"offset": (1.0, 2.0, 3.0)}, "offset"),
        ({"angle": float("nan")}, "angle"),
        ({"angle": "2.53"}, "angle"),
        ({"impl": "gpu"}, "impl"),
    ],
)
def test_bad_parameters_raise(kwargs, argument):
    x = torch.zeros(1, 3, 2, 2, dtype=torch.uint8)
    with pytest.raises(InputError) as info:
        skin_mask(x, **{"impl": "triton", **kwargs})
    assert info.value.argument == argument
