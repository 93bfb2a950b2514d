"""rgb_to_ycbcr: Triton (interpreted on CPU) vs the torch reference vs OpenCV itself."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from engine.errors import InputError
from kernels.rgb_to_ycbcr import rgb_to_ycbcr, rgb_to_ycbcr_ref

SHAPES = [(1, 3, 1, 1), (1, 3, 1, 17), (2, 3, 13, 5), (1, 3, 7, 16)]
DTYPES = [torch.uint8, torch.float16, torch.float32]
# Absolute slack on top of 2 x PyTorch's own error (STYLE rule 7); uint8 is exact.
ATOL = {torch.float16: 1e-3, torch.float32: 1e-6}


def _image(shape, dtype, layout, seed=0):
    g = torch.Generator().manual_seed(seed)
    n, c, h, w = shape
    if layout == "strided":  # a non-contiguous view: every other column of a wider image
        w = 2 * w
    x = torch.randint(0, 256, (n, c, h, w), dtype=torch.uint8, generator=g)
    if dtype != torch.uint8:
        x = (x.float() / 255).to(dtype)
    if layout == "channels_last":
        x = x.contiguous(memory_format=torch.channels_last)
    elif layout == "strided":
        x = x[:, :, :, 1::2]
        assert not x.is_contiguous()
    return x


def _cv2_ycbcr(x: torch.Tensor) -> torch.Tensor:
    """OpenCV itself, per image, channels reordered to Y, Cb, Cr (float16 through float32)."""
    outs = []
    for img in x:
        hwc = img.permute(1, 2, 0)
        src = np.ascontiguousarray((hwc.float() if img.dtype == torch.float16 else hwc).numpy())
        ycrcb = cv2.cvtColor(src, cv2.COLOR_RGB2YCrCb)[:, :, (0, 2, 1)]
        outs.append(torch.from_numpy(np.ascontiguousarray(ycrcb)).permute(2, 0, 1))
    return torch.stack(outs)


def _assert_close_rule7(out, x):
    """max|out - ref64| <= 2 max|torch_same_dtype - ref64| + atol."""
    ref64 = rgb_to_ycbcr_ref(x.double())
    err = (out.double() - ref64).abs().max().item()
    torch_err = (rgb_to_ycbcr_ref(x).double() - ref64).abs().max().item()
    assert err <= 2 * torch_err + ATOL[x.dtype], (err, torch_err)


@pytest.mark.parametrize("layout", ["contiguous", "channels_last", "strided"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
def test_triton_matches_ref_and_opencv(shape, dtype, layout):
    x = _image(shape, dtype, layout)
    out = rgb_to_ycbcr(x, impl="triton")
    assert out.shape == x.shape and out.dtype == dtype
    ref = rgb_to_ycbcr_ref(x)
    cv = _cv2_ycbcr(x)
    if dtype == torch.uint8:
        torch.testing.assert_close(out, ref, rtol=0, atol=0)
        torch.testing.assert_close(out, cv, rtol=0, atol=0)
    elif dtype == torch.float32:
        torch.testing.assert_close(out, ref, rtol=0, atol=1e-6)
        torch.testing.assert_close(out, cv, rtol=0, atol=1e-6)
    else:
        _assert_close_rule7(out, x)
        # OpenCV on the same values in fp32, rounded once to fp16 by the kernel.
        assert (out.float() - cv).abs().max().item() <= 2**-11 + 1e-6


@pytest.mark.parametrize("impl", ["auto", "torch", "opencv"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_cpu_paths_match_triton(impl, dtype):
    for layout in ("contiguous", "channels_last", "strided"):
        x = _image((2, 3, 5, 9), dtype, layout, seed=1)
        tri = rgb_to_ycbcr(x, impl="triton")
        out = rgb_to_ycbcr(x, impl=impl)
        assert out.shape == x.shape and out.dtype == dtype
        if dtype == torch.float16:
            _assert_close_rule7(out, x)
        else:
            torch.testing.assert_close(out, tri, rtol=0, atol=0 if dtype == torch.uint8 else 1e-6)


def test_ref_bit_exact_on_all_uint8_colours():
    v = torch.arange(1 << 24, dtype=torch.int32)
    rgb = torch.stack([(v >> 16) & 255, (v >> 8) & 255, v & 255]).to(torch.uint8)
    x = rgb.reshape(1, 3, 4096, 4096)
    torch.testing.assert_close(rgb_to_ycbcr_ref(x), _cv2_ycbcr(x), rtol=0, atol=0)


def test_triton_bit_exact_on_uint8_sample_with_extremes():
    g = torch.Generator().manual_seed(2)
    x = torch.randint(0, 256, (1, 3, 48, 64), dtype=torch.uint8, generator=g)
    corners = torch.tensor([[r, gg, b] for r in (0, 255) for gg in (0, 255) for b in (0, 255)])
    x[0, :, 0, :8] = corners.T.to(torch.uint8)
    torch.testing.assert_close(rgb_to_ycbcr(x, impl="triton"), _cv2_ycbcr(x), rtol=0, atol=0)


def test_known_values():
    x = torch.tensor([[255, 0, 0], [0, 255, 0], [0, 0, 255], [128, 128, 128]], dtype=torch.uint8)
    x = x.T.reshape(1, 3, 1, 4)
    out = rgb_to_ycbcr(x, impl="triton")[0, :, 0].T.tolist()
    # (Y, Cb, Cr): red, green, blue, grey.
    assert out == [[76, 85, 255], [150, 43, 21], [29, 255, 107], [128, 128, 128]]


def test_output_is_fresh_and_keeps_layout():
    x = _image((1, 3, 4, 5), torch.uint8, "channels_last")
    out = rgb_to_ycbcr(x, impl="triton")
    assert out.untyped_storage().data_ptr() != x.untyped_storage().data_ptr()
    assert out.is_contiguous(memory_format=torch.channels_last)


@pytest.mark.parametrize("dtype", DTYPES)
def test_custom_op(dtype):
    x = _image((2, 3, 3, 7), dtype, "strided", seed=3)
    for impl in ("triton", "torch"):
        torch.testing.assert_close(
            torch.ops.tryon.rgb_to_ycbcr(x, impl), rgb_to_ycbcr(x, impl=impl), rtol=0, atol=0
        )


@pytest.mark.parametrize(
    "x",
    [
        torch.zeros(3, 4, 4, dtype=torch.uint8),  # rank 3
        torch.zeros(1, 4, 4, 4, dtype=torch.uint8),  # 4 channels
        torch.zeros(1, 3, 0, 4, dtype=torch.uint8),  # empty
        torch.zeros(1, 3, 4, 4, dtype=torch.int32),  # dtype
        torch.zeros(1, 3, 4, 4, dtype=torch.float64),  # dtype
        np.zeros((1, 3, 4, 4), dtype=np.uint8),  # not a tensor
    ],
)
def test_bad_input_raises(x):
    with pytest.raises(InputError) as info:
        rgb_to_ycbcr(x, impl="triton")
    assert info.value.argument == "x"


def test_bad_impl_raises():
    x = torch.zeros(1, 3, 2, 2, dtype=torch.uint8)
    with pytest.raises(InputError) as info:
        rgb_to_ycbcr(x, impl="cuda")
    assert info.value.argument == "impl"
