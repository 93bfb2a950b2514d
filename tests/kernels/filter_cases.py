"""Shared inputs and tolerances for the filter tests (gaussian_blur, box_blur)."""

import cv2
import numpy as np
import torch

# (N, C, H, W): odd sizes, 1xN and Nx1, batch > 1, many channels, bigger than one GPU tile.
SHAPES = [(2, 3, 13, 17), (1, 1, 1, 9), (1, 2, 7, 1), (1, 4, 5, 6), (3, 1, 9, 10)]
DTYPES = [torch.uint8, torch.float16, torch.float32]


def make_image(shape, dtype, seed=0, layout="nchw"):
    """Random image: uint8 over 0..255, floats in [0, 1]; optional awkward memory layouts."""
    g = torch.Generator().manual_seed(seed)
    if dtype == torch.uint8:
        x = torch.randint(0, 256, shape, generator=g, dtype=torch.uint8)
    else:
        x = torch.rand(shape, generator=g).to(dtype)
    if layout == "channels_last":
        x = x.contiguous(memory_format=torch.channels_last)
    elif layout == "strided":  # a channel slice, every other column, of a bigger image
        n, c, h, w = shape
        x = make_image((n, c + 1, h, 2 * w), dtype, seed)[:, 1:, :, ::2]
        assert not x.is_contiguous()
    return x


def opencv_per_image(fn, x: torch.Tensor) -> torch.Tensor:
    """Apply ``fn(HxWxC numpy) -> numpy`` to each image of an (N, C, H, W) tensor."""
    work = x.float() if x.dtype == torch.float16 else x
    outs = []
    for img in work:
        res = fn(np.ascontiguousarray(img.permute(1, 2, 0).numpy()))
        outs.append(torch.from_numpy(res.reshape(img.shape[1], img.shape[2], -1)).permute(2, 0, 1))
    return torch.stack(outs).to(x.dtype)


def assert_matches_opencv(out: torch.Tensor, expected: torch.Tensor, x: torch.Tensor) -> None:
    """uint8: bit-exact; float32: 1e-5 (data in [0, 1]); float16: 2x its rounding error + 1e-3
    (STYLE rule 7: the error budget is relative to the dtype's own error)."""
    assert out.shape == expected.shape and out.dtype == expected.dtype
    diff = (out.double() - expected.double()).abs().max().item()
    if x.dtype == torch.uint8:
        assert diff == 0, f"uint8 differs from OpenCV by {diff}"
    elif x.dtype == torch.float32:
        assert diff <= 1e-5, diff
    else:
        rounding = (expected.double() - expected.half().double()).abs().max().item()
        assert diff <= 2 * max(rounding, 2**-11) + 1e-3, diff


BORDER = cv2.BORDER_REFLECT_101
