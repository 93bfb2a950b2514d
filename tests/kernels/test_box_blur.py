import cv2
import numpy as np
import pytest
import torch

from engine.errors import InputError
from kernels.box_blur import box_blur, box_blur_ref
from kernels.separable_filter import box_divisor_constants
from tests.kernels.filter_cases import (
    BORDER,
    DTYPES,
    SHAPES,
    assert_matches_opencv,
    make_image,
    opencv_per_image,
)


def _opencv(x, ksize):
    kh, kw = (ksize, ksize) if isinstance(ksize, int) else ksize
    return opencv_per_image(lambda img: cv2.blur(img, (kw, kh), borderType=BORDER), x)


def _mask(shape, seed=0, dtype=torch.float32):
    n, _, h, w = shape
    return torch.rand((n, 1, h, w), generator=torch.Generator().manual_seed(seed)).to(dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("impl", ["triton", "torch", "opencv"])
def test_matches_opencv(impl, shape, dtype):
    x = make_image(shape, dtype)
    # Areas <= 256 take OpenCV's integer shift path for uint8.
    for ksize in (3, (3, 7)):
        assert_matches_opencv(box_blur(x, ksize, impl=impl), _opencv(x, ksize), x)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("impl", ["triton", "torch", "opencv"])
def test_large_window_matches_opencv(impl, dtype):
    # Area 17 * 17 = 289 > 256: OpenCV's rounding path for uint8; window wider than the image.
    x = make_image((1, 2, 5, 19), dtype, seed=6)
    assert_matches_opencv(box_blur(x, 17, impl=impl), _opencv(x, 17), x)


def test_divisor_constants_round_every_odd_area():
    # Windows are odd x odd, so areas are odd (no ties): OpenCV's shift formula must equal
    # rounded division for every reachable sum.
    for area in range(3, 257, 2):
        delta, scale = box_divisor_constants(area)
        sums = np.arange(0, 255 * area + 1, dtype=np.int64)
        fast = ((sums + delta) * scale) >> 23
        assert np.array_equal(fast, (2 * sums + area) // (2 * area)), area


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("impl", ["triton", "torch", "opencv"])
def test_mask_applies_the_blur_to_a_region_only(impl, dtype):
    shape = (2, 3, 9, 11)
    x = make_image(shape, dtype, seed=4)
    mask = _mask(shape, seed=5)
    out = box_blur(x, 5, mask=mask, impl=impl)
    expected = box_blur_ref(x, 5, mask=mask)
    assert_matches_opencv(out, expected, x) if dtype != torch.uint8 else None
    if dtype == torch.uint8:  # uint8 blend: opencv path may round the blend of its own bytes
        assert (out.int() - expected.int()).abs().max() <= (0 if impl != "opencv" else 1)
    binary = (mask > 0.5).to(torch.float32)
    out = box_blur(x, 5, mask=binary, impl=impl)
    inside = binary.expand_as(x).bool()
    assert torch.equal(out[~inside], x[~inside])  # untouched outside the region
    assert_matches_opencv(torch.where(inside, out, 0), torch.where(inside, _opencv(x, 5), 0), x)


def test_bool_mask_and_channels_last():
    x = make_image((1, 3, 7, 8), torch.uint8, layout="channels_last")
    mask = _mask((1, 3, 7, 8)) > 0.3
    out = box_blur(x, 3, mask=mask, impl="triton")
    assert torch.equal(out, box_blur_ref(x.contiguous(), 3, mask=mask))


def test_strided_input_and_custom_op():
    x = make_image((2, 3, 6, 9), torch.float32, layout="strided")
    expected = _opencv(x, 5)
    assert_matches_opencv(box_blur(x, 5, impl="triton"), expected, x)
    assert_matches_opencv(torch.ops.tryon.box_blur(x, 5, 5, None, "torch"), expected, x)
    assert_matches_opencv(box_blur(x, 5), expected, x)  # auto: OpenCV on CPU


@pytest.mark.parametrize(
    "kwargs, argument",
    [
        ({"x": torch.zeros(3, 4, 5)}, "x"),
        ({"x": torch.zeros(1, 3, 4, 5, dtype=torch.float64)}, "x"),
        ({"ksize": 2}, "ksize"),
        ({"ksize": (3, 0)}, "ksize"),
        ({"mask": torch.zeros(1, 3, 4, 5)}, "mask"),  # 3 channels
        ({"mask": torch.zeros(1, 1, 4, 6)}, "mask"),  # size mismatch
        ({"mask": torch.zeros(2, 1, 4, 5)}, "mask"),  # batch mismatch
        ({"mask": torch.full((1, 1, 4, 5), 1.5)}, "mask"),  # outside [0, 1]
        ({"mask": torch.full((1, 1, 4, 5), float("nan"))}, "mask"),
        ({"mask": torch.zeros(1, 1, 4, 5, dtype=torch.int64)}, "mask"),
        ({"impl": "numpy"}, "impl"),
    ],
)
def test_bad_input_is_named(kwargs, argument):
    args = {"x": torch.zeros(1, 3, 4, 5), "ksize": 3, "mask": None, "impl": "torch"} | kwargs
    with pytest.raises(InputError) as info:
        box_blur(args["x"], args["ksize"], mask=args["mask"], impl=args["impl"])
    assert info.value.argument == argument
