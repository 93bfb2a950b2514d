import cv2
import pytest
import torch

from engine.errors import InputError
from kernels.gaussian_blur import gaussian_blur, gaussian_blur_ref
from kernels.gaussian_weights import gaussian_weights, gaussian_weights_fixed_point
from tests.kernels.filter_cases import (
    BORDER,
    DTYPES,
    SHAPES,
    assert_matches_opencv,
    make_image,
    opencv_per_image,
)


def _opencv(x, ksize, sigma):
    kh, kw = (ksize, ksize) if isinstance(ksize, int) else ksize
    sy, sx = (sigma, sigma) if isinstance(sigma, (int, float)) else sigma
    return opencv_per_image(
        lambda img: cv2.GaussianBlur(img, (kw, kh), sigmaX=sx, sigmaY=sy, borderType=BORDER), x
    )


@pytest.mark.parametrize("ksize", [1, 3, 5, 7, 9, 11, 21, 51])
@pytest.mark.parametrize("sigma", [0.0, -1.0, 0.3, 0.8, 1.7, 4.2])
def test_taps_match_opencv(ksize, sigma):
    # OpenCV evaluates exp() in its own soft-float: double taps agree to an ulp, float32 exactly.
    ours = torch.tensor(gaussian_weights(ksize, sigma), dtype=torch.float64)
    theirs = torch.from_numpy(cv2.getGaussianKernel(ksize, sigma, cv2.CV_64F)).flatten()
    torch.testing.assert_close(ours, theirs, rtol=1e-15, atol=1e-16)
    ours32 = torch.tensor(gaussian_weights(ksize, sigma), dtype=torch.float32)
    theirs32 = torch.from_numpy(cv2.getGaussianKernel(ksize, sigma, cv2.CV_32F)).flatten()
    assert torch.equal(ours32, theirs32)
    assert sum(gaussian_weights_fixed_point(ksize, sigma)) == 256


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("impl", ["triton", "torch", "opencv"])
def test_matches_opencv(impl, shape, dtype):
    x = make_image(shape, dtype)
    for ksize, sigma in [(5, 0.0), ((3, 7), (1.3, 0.7)), (9, 0.0)]:
        out = gaussian_blur(x, ksize, sigma, impl=impl)
        assert_matches_opencv(out, _opencv(x, ksize, sigma), x)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("layout", ["channels_last", "strided"])
def test_layouts_are_read_in_place(layout, dtype):
    x = make_image((2, 3, 9, 11), dtype, seed=1, layout=layout)
    expected = gaussian_blur_ref(x.contiguous(), 5, 1.1)
    for impl in ("triton", "torch", "opencv"):
        out = gaussian_blur(x, 5, 1.1, impl=impl)
        assert_matches_opencv(out, expected, x)


@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32])
def test_kernel_close_to_or_larger_than_the_image(dtype):
    # Reflect-101 bounces more than once when the radius exceeds the image.
    for shape, ksize in [((1, 2, 6, 7), 7), ((1, 1, 4, 5), 11), ((1, 1, 2, 2), (5, 3))]:
        x = make_image(shape, dtype, seed=2)
        expected = _opencv(x, ksize, 0.0)
        assert_matches_opencv(gaussian_blur(x, ksize, impl="triton"), expected, x)
        assert_matches_opencv(gaussian_blur_ref(x, ksize), expected, x)


def test_triton_equals_reference_bit_for_bit():
    for dtype in DTYPES:
        x = make_image((2, 2, 11, 13), dtype, seed=3)
        assert torch.equal(gaussian_blur(x, (7, 5), (2.0, 0.9), impl="triton"),
                           gaussian_blur_ref(x, (7, 5), (2.0, 0.9)))  # fmt: skip


def test_one_by_one_is_a_copy():
    x = make_image((1, 3, 4, 5), torch.float32)
    out = gaussian_blur(x, 1, impl="triton")
    assert torch.equal(out, x) and out.data_ptr() != x.data_ptr()


def test_auto_on_cpu_is_opencv_and_custom_op_agrees():
    x = make_image((1, 3, 8, 9), torch.uint8)
    expected = _opencv(x, 5, 0.0)
    assert torch.equal(gaussian_blur(x, 5), expected)
    assert torch.equal(torch.ops.tryon.gaussian_blur(x, 5, 5, 0.0, 0.0, "torch"), expected)


@pytest.mark.parametrize(
    "kwargs, argument",
    [
        ({"x": torch.zeros(3, 4, 5)}, "x"),  # wrong rank
        ({"x": torch.zeros(1, 3, 4, 5, dtype=torch.int32)}, "x"),  # wrong dtype
        ({"x": torch.zeros(1, 3, 0, 5)}, "x"),  # empty
        ({"x": [[1.0]]}, "x"),  # not a tensor
        ({"ksize": 4}, "ksize"),  # even
        ({"ksize": 0}, "ksize"),
        ({"ksize": -3}, "ksize"),
        ({"ksize": (3, 4)}, "ksize"),
        ({"ksize": 3.0}, "ksize"),
        ({"ksize": True}, "ksize"),
        ({"sigma": float("nan")}, "sigma"),
        ({"sigma": (1.0, 2.0, 3.0)}, "sigma"),
        ({"sigma": "1"}, "sigma"),
        ({"impl": "cuda"}, "impl"),
    ],
)
def test_bad_input_is_named(kwargs, argument):
    args = {"x": torch.zeros(1, 3, 4, 5), "ksize": 3, "sigma": 0.0, "impl": "torch"} | kwargs
    with pytest.raises(InputError) as info:
        gaussian_blur(args.pop("x"), args.pop("ksize"), args.pop("sigma"), impl=args.pop("impl"))
    assert info.value.argument == argument
