"""gradient_map: fused Triton kernel vs the torch reference vs two cv2.filter2D calls."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from engine.errors import InputError
from kernels.gradient_map import (
    LARGE_KERNELS,
    SMALL_KERNELS,
    gradient_map,
    gradient_map_ref,
)

# extra absolute tolerance per dtype, relative to the output's scale (max |A2| sum x 8), on top
# of 2x the float32 OpenCV path's own error against float64 (STYLE rule 7). fp16 and uint8
# inputs become float32 exactly (uint8 / 255 up to one rounding), so every dtype has the fp32
# budget.
ATOL_PER_SCALE = {torch.uint8: 2e-7, torch.float16: 2e-7, torch.float32: 2e-7}


def filter2d_twice(gray: torch.Tensor, small: int, large: int, dtype=np.float32) -> torch.Tensor:
    """Independent evaluation: cv2.filter2D twice, reflect-101, in ``dtype`` (float32/float64)."""
    x = gray[:, 0].double()
    if gray.dtype == torch.uint8:
        x = x / 255.0
    a1 = np.asarray(SMALL_KERNELS[small], dtype=dtype)
    a2 = np.asarray(LARGE_KERNELS[large], dtype=dtype)
    depth = cv2.CV_32F if dtype == np.float32 else cv2.CV_64F
    out = []
    for img in x.numpy().astype(dtype):
        s1 = cv2.filter2D(img, depth, a1, borderType=cv2.BORDER_REFLECT_101)
        out.append(cv2.filter2D(s1, depth, a2, borderType=cv2.BORDER_REFLECT_101))
    return torch.from_numpy(np.stack(out)).unsqueeze(1).double()


def random_gray(shape, dtype, seed=0):
    gen = torch.Generator().manual_seed(seed)
    if dtype == torch.uint8:
        return torch.randint(0, 256, shape, generator=gen, dtype=torch.uint8)
    return torch.rand(shape, generator=gen).to(dtype)


def assert_matches_opencv(out, gray, small, large):
    expect = filter2d_twice(gray, small, large, np.float64)
    own_err = (filter2d_twice(gray, small, large, np.float32) - expect).abs().max().item()
    scale = 8 * float(np.abs(np.asarray(LARGE_KERNELS[large])).sum())
    err = (out.double() - expect).abs().max().item()
    assert err <= 2 * own_err + ATOL_PER_SCALE[gray.dtype] * scale, (err, own_err)


def test_kernels_are_zero_sum_and_match_opencv_laplacian():
    for k in {**SMALL_KERNELS, **LARGE_KERNELS}.values():
        assert np.asarray(k).sum() == 0
        assert np.array_equal(np.asarray(k), np.asarray(k)[::-1, ::-1])  # symmetric
    for ksize, kernel in LARGE_KERNELS.items():
        kx, ky = cv2.getDerivKernels(2, 0, ksize)
        np.testing.assert_array_equal(np.outer(ky, kx) + np.outer(kx, ky), np.asarray(kernel))
    img = np.random.default_rng(0).random((9, 11)).astype(np.float32)
    lap1 = cv2.Laplacian(img, cv2.CV_32F, ksize=1, borderType=cv2.BORDER_REFLECT_101)
    a1 = np.asarray(SMALL_KERNELS[3], dtype=np.float32)
    np.testing.assert_allclose(
        cv2.filter2D(img, cv2.CV_32F, a1, borderType=cv2.BORDER_REFLECT_101), lap1, atol=1e-5
    )


@pytest.mark.parametrize("dtype", [torch.uint8, torch.float16, torch.float32])
@pytest.mark.parametrize("large", [5, 7])
@pytest.mark.parametrize(
    "shape",
    [
        (2, 1, 13, 17),  # batch, odd sizes
        (1, 1, 1, 9),  # H = 1
        (1, 1, 6, 1),  # W = 1
        (1, 1, 3, 4),  # smaller than the kernels: multiple reflections
    ],
)
def test_triton_matches_opencv_and_reference(dtype, large, shape):
    gray = random_gray(shape, dtype)
    out = gradient_map(gray, 3, large, impl="triton")
    assert out.shape == shape and out.dtype == torch.float32
    assert_matches_opencv(out, gray, 3, large)
    assert_matches_opencv(gradient_map_ref(gray, 3, large), gray, 3, large)
    assert_matches_opencv(gradient_map(gray, 3, large, impl="opencv"), gray, 3, large)


def test_single_pixel_and_constant_images_are_zero():
    for shape in ((1, 1, 1, 1), (2, 1, 5, 7)):
        gray = torch.full(shape, 0.37)
        for impl in ("triton", "torch", "opencv"):
            out = gradient_map(gray, 3, 7, impl=impl)
            torch.testing.assert_close(out, torch.zeros(shape), rtol=0, atol=1e-4)


@pytest.mark.parametrize("layout", ["channels_last", "strided_view", "transposed"])
def test_any_strides(layout):
    if layout == "channels_last":
        gray = random_gray((2, 1, 9, 11), torch.float32, seed=1)
        gray = gray.contiguous(memory_format=torch.channels_last)
        gray = gray.as_strided(gray.shape, (99, 1, 11, 1))  # not the default contiguous strides
    elif layout == "strided_view":
        gray = random_gray((2, 2, 18, 23), torch.float32, seed=1)[:, 1:, ::2, 1::2]
    else:
        gray = random_gray((2, 1, 11, 9), torch.float32, seed=1).transpose(2, 3)
    out = gradient_map(gray, 3, 5, impl="triton")
    assert out.is_contiguous()
    torch.testing.assert_close(
        out, gradient_map(gray.contiguous(), 3, 5, impl="triton"), rtol=0, atol=0
    )
    assert_matches_opencv(out, gray, 3, 5)
    assert_matches_opencv(gradient_map(gray, 3, 5, impl="opencv"), gray, 3, 5)


def test_equals_one_filter_with_the_combined_kernel():
    """Stage 2 reflects stage 1's *output*; the kernels being symmetric, stage 1's output keeps
    the reflect-101 symmetry of its input, so the result also equals one 7x7 filter with
    ``A1 * A2`` and a single reflect-101 border, borders included."""
    gray = random_gray((1, 1, 8, 10), torch.float32, seed=4)
    out = gradient_map(gray, 3, 5, impl="triton")
    full = np.zeros((7, 7))
    full[1:6, 1:6] = np.asarray(LARGE_KERNELS[5])
    a1 = np.asarray(SMALL_KERNELS[3], dtype=np.float64)
    combined = cv2.filter2D(full, cv2.CV_64F, a1, borderType=cv2.BORDER_CONSTANT)  # A1 * A2
    single = cv2.filter2D(
        gray[0, 0].double().numpy(), cv2.CV_64F, combined, borderType=cv2.BORDER_REFLECT_101
    )
    np.testing.assert_allclose(out[0, 0].numpy(), single, atol=1e-4)


def test_custom_op_matches():
    gray = random_gray((1, 1, 5, 6), torch.uint8, seed=3)
    expect = gradient_map(gray, 3, 7, impl="triton")
    torch.testing.assert_close(
        torch.ops.tryon.gradient_map(gray, 3, 7, "triton"), expect, rtol=0, atol=0
    )
    torch.testing.assert_close(torch.ops.tryon.gradient_map(gray), gradient_map(gray))
    torch.library.opcheck(torch.ops.tryon.gradient_map.default, (gray, 3, 5, "opencv"))


def test_auto_is_opencv_on_cpu():
    gray = random_gray((2, 1, 6, 7), torch.float32)
    torch.testing.assert_close(
        gradient_map(gray), gradient_map(gray, impl="opencv"), rtol=0, atol=0
    )


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"gray": torch.rand(4, 5)}, "gray"),  # rank 2
        ({"gray": torch.rand(1, 3, 4, 5)}, "gray"),  # 3 channels
        ({"gray": torch.rand(1, 1, 4, 0)}, "gray"),  # empty
        ({"gray": torch.rand(1, 1, 4, 5, dtype=torch.float64)}, "gray"),  # dtype
        ({"gray": np.zeros((1, 1, 4, 5), np.float32)}, "gray"),  # not a tensor
        ({"small": 5}, "small"),
        ({"small": 3.0}, "small"),
        ({"small": True}, "small"),
        ({"large": 3}, "large"),
        ({"large": 9}, "large"),
        ({"large": 6}, "large"),
        ({"large": "5"}, "large"),
        ({"impl": "cuda"}, "impl"),
        ({"impl": None}, "impl"),
    ],
)
def test_bad_input_raises(kwargs, argument):
    args = {"gray": torch.rand(1, 1, 4, 5), "small": 3, "large": 5, **kwargs}
    gray, small, large = args.pop("gray"), args.pop("small"), args.pop("large")
    with pytest.raises(InputError) as info:
        gradient_map(gray, small, large, **args)
    assert info.value.argument == argument
    assert str(info.value).startswith(f"{argument}:")
