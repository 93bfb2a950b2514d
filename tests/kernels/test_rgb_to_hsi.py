"""rgb_to_hsi: Triton kernel vs the torch reference vs an independent float64 arccos evaluation."""

from __future__ import annotations

import math

import pytest
import torch

from engine.errors import InputError
from kernels.rgb_to_hsi import rgb_to_hsi, rgb_to_hsi_ref

# per-dtype extra absolute tolerance (H in degrees, S, I) on top of 2x the reference's own error
# (STYLE rule 7). fp16/uint8 inputs are converted exactly to fp32 before any math, so the error
# budget is the fp32 one for every dtype; uint8 adds the rounding of x / 255.
ATOL = {
    torch.uint8: (2e-4, 2e-6, 2e-6),
    torch.float16: (2e-4, 2e-6, 2e-6),
    torch.float32: (2e-4, 2e-6, 2e-6),
}


def hsi_f64(x: torch.Tensor, red_weight: float = 1.0) -> torch.Tensor:
    """The textbook formulas, literally, in float64 (arccos of the clamped ratio)."""
    xd = x.double() / 255.0 if x.dtype == torch.uint8 else x.double()
    r, g, b = xd.unbind(1)
    total = r + g + b
    intensity = total / 3
    mn = torch.minimum(torch.minimum(r, g), b)
    sat = torch.where(total > 0, 1 - 3 * mn / total.where(total > 0, 1.0), 0.0)
    num = 0.5 * ((r - g) + (r - b))
    den = torch.sqrt((r - g) ** 2 + red_weight * (r - b) * (g - b))
    ratio = (num / den.where(den > 0, 1.0)).clamp(-1.0, 1.0)
    theta = torch.rad2deg(torch.arccos(ratio))
    hue = torch.where(b <= g, theta, 360 - theta).where(den > 0, 0.0)
    return torch.stack((hue % 360, sat, intensity), dim=1)


def hsi_error(a: torch.Tensor, b: torch.Tensor) -> tuple[float, float, float]:
    """Max error per channel; hue as a circular distance in degrees."""
    a, b = a.double(), b.double()
    dh = (a[:, 0] - b[:, 0]).abs() % 360
    dh = torch.minimum(dh, 360 - dh)
    return (
        dh.max().item(),
        (a[:, 1] - b[:, 1]).abs().max().item(),
        (a[:, 2] - b[:, 2]).abs().max().item(),
    )


def random_rgb(shape, dtype, seed=0):
    gen = torch.Generator().manual_seed(seed)
    if dtype == torch.uint8:
        x = torch.randint(0, 256, shape, generator=gen, dtype=torch.uint8)
    else:
        x = torch.rand(shape, generator=gen).to(dtype)
    # sprinkle grey, black and near-grey pixels
    flat = x.view(shape[0], 3, -1) if x.is_contiguous() else None
    if flat is not None and flat.shape[-1] >= 3:
        flat[:, :, 0] = flat[:, :1, 0]
        flat[:, :, 1] = 0
    return x


def assert_close_to_f64(out, x, red_weight=1.0):
    expect = hsi_f64(x, red_weight)
    ref_err = hsi_error(rgb_to_hsi_ref(x, red_weight=red_weight), expect)
    err = hsi_error(out, expect)
    for e, r, atol in zip(err, ref_err, ATOL[x.dtype], strict=True):
        assert e <= 2 * r + atol, (err, ref_err)
    assert torch.isfinite(out).all()
    assert (out[:, 0] >= 0).all() and (out[:, 0] < 360).all()
    assert (out[:, 1:] >= 0).all() and (out[:, 1:] <= 1).all()


@pytest.mark.parametrize("dtype", [torch.uint8, torch.float16, torch.float32])
@pytest.mark.parametrize("shape", [(1, 3, 13, 17), (2, 3, 1, 5), (1, 3, 7, 1), (3, 3, 1, 1)])
def test_triton_matches_reference(dtype, shape):
    x = random_rgb(shape, dtype)
    out = rgb_to_hsi(x, impl="triton")
    assert out.shape == shape and out.dtype == torch.float32
    assert_close_to_f64(out, x)
    assert_close_to_f64(rgb_to_hsi(x, impl="torch"), x)


@pytest.mark.parametrize("layout", ["channels_last", "strided_view", "transposed"])
def test_any_strides(layout):
    base = random_rgb((2, 3, 9, 11), torch.float32, seed=1)
    if layout == "channels_last":
        x = base.contiguous(memory_format=torch.channels_last)
    elif layout == "strided_view":
        x = random_rgb((2, 3, 18, 23), torch.float32, seed=1)[:, :, ::2, 1::2]
    else:  # (N, 3, W, H) storage seen as (N, 3, H, W)
        x = base.transpose(2, 3).contiguous().transpose(2, 3)
    assert not x.is_contiguous()
    out = rgb_to_hsi(x, impl="triton")
    assert out.is_contiguous()
    torch.testing.assert_close(out, rgb_to_hsi(x.contiguous(), impl="triton"), rtol=0, atol=0)
    assert_close_to_f64(out, x)


def test_dense_colour_sweep_accuracy():
    """Every 17th uint8 level per channel (16^3 colours), incl. all greys and near-clamp hues."""
    levels = torch.arange(0, 256, 17, dtype=torch.uint8)
    r, g, b = torch.meshgrid(levels, levels, levels, indexing="ij")
    x = torch.stack((r, g, b)).reshape(1, 3, 16, 256)
    out = rgb_to_hsi(x, impl="triton")
    h_err, s_err, i_err = hsi_error(out, hsi_f64(x))
    assert h_err < 1e-3 and s_err < 1e-6 and i_err < 1e-6
    assert_close_to_f64(out, x)


@pytest.mark.parametrize("impl", ["triton", "torch"])
def test_primaries_grey_and_black(impl):
    colours = [
        (1, 0, 0),  # red: H 0
        (0, 1, 0),  # green: H 120
        (0, 0, 1),  # blue: H 240
        (1, 1, 0),  # yellow: H 60
        (0.5, 0.5, 0.5),  # grey: H 0, S 0
        (0, 0, 0),  # black: H 0, S 0, I 0
        (1, 1, 1),  # white
    ]
    x = torch.tensor(colours, dtype=torch.float32).T.reshape(1, 3, 1, -1)
    out = rgb_to_hsi(x, impl=impl)[0, :, 0]  # (3, colours)
    expect_h = torch.tensor([0, 120, 240, 60, 0, 0, 0], dtype=torch.float32)
    torch.testing.assert_close(out[0], expect_h, rtol=0, atol=1e-4)
    torch.testing.assert_close(out[1], torch.tensor([1, 1, 1, 1, 0, 0, 0.0]), rtol=0, atol=1e-6)
    torch.testing.assert_close(out[2], x[0, :, 0].mean(0), rtol=0, atol=1e-6)
    u8 = (x * 255).round().to(torch.uint8)
    out_u8 = rgb_to_hsi(u8, impl=impl)[0, :, 0]
    torch.testing.assert_close(out_u8[:2], out[:2], rtol=0, atol=1e-4)
    torch.testing.assert_close(out_u8[2], u8[0, :, 0].float().mean(0) / 255, rtol=0, atol=1e-6)


@pytest.mark.parametrize("red_weight", [0.5, 2.0, 3.5])
def test_red_weight_enters_hue_denominator(red_weight):
    x = random_rgb((2, 3, 6, 7), torch.float32, seed=2)
    out = rgb_to_hsi(x, red_weight=red_weight, impl="triton")
    assert_close_to_f64(out, x, red_weight)
    base = rgb_to_hsi(x, impl="triton")
    torch.testing.assert_close(out[:, 1:], base[:, 1:], rtol=0, atol=0)  # S, I unchanged
    # only H changes; and where (R - B)(G - B) == 0 (B equal to R or to G) it cannot
    assert not torch.allclose(out[:, 0], base[:, 0])
    same = torch.tensor([[1, 0, 0], [0, 1, 0], [1, 0, 1], [0, 1, 1], [0.7, 0.2, 0.2]])
    same = same.T.reshape(1, 3, 1, -1)
    torch.testing.assert_close(
        rgb_to_hsi(same, red_weight=red_weight, impl="triton"), rgb_to_hsi(same, impl="triton")
    )


def test_red_weight_documented_effect_on_one_colour():
    """theta = arccos(num / sqrt((R-G)^2 + w (R-B)(G-B))); H = theta (B <= G) or 360 - theta.

    A larger w enlarges den where (R-B)(G-B) > 0 (B below both R and G: theta grows, H moves away
    from red) and shrinks it where (R-B)(G-B) < 0 (B between G and R: theta shrinks).
    """
    cases = (((0.9, 0.6, 0.2), (1.0, 2.0, 3.0), 1), ((0.9, 0.2, 0.6), (0.5, 1.0, 1.5), -1))
    for (r, g, b), weights, direction in cases:
        x = torch.tensor([r, g, b]).reshape(1, 3, 1, 1)
        thetas = []
        for w in weights:
            num = 0.5 * ((r - g) + (r - b))
            den = math.sqrt((r - g) ** 2 + w * (r - b) * (g - b))
            theta = math.degrees(math.acos(num / den))
            expect = theta if b <= g else 360 - theta
            got = rgb_to_hsi(x, red_weight=w, impl="triton")[0, 0, 0, 0].item()
            assert got == pytest.approx(expect, abs=1e-3)
            thetas.append(min(got, 360 - got))
        steps = [direction * (t1 - t0) for t0, t1 in zip(thetas[:-1], thetas[1:], strict=True)]
        assert all(step > 0.1 for step in steps), thetas


def test_clamped_ratio_gives_zero_or_360_wrap():
    # w = 0.25: for (R, G, B) = (1, 0.9, 1) num = 0.05, den^2 < num^2 -> ratio clamps to 1 -> 0
    x = torch.tensor([[1.0, 0.9, 1.0], [1.0, 0.2, 0.3]]).T.reshape(1, 3, 1, 2)
    for impl in ("triton", "torch"):
        out = rgb_to_hsi(x, red_weight=0.25, impl=impl)
        assert torch.isfinite(out).all()
        assert (out[0, 0] >= 0).all() and (out[0, 0] < 360).all()
        assert_close_to_f64(out, x, 0.25)


def test_custom_op_matches():
    x = random_rgb((1, 3, 5, 6), torch.uint8, seed=3)
    expect = rgb_to_hsi(x, red_weight=2.0, impl="triton")
    got = torch.ops.tryon.rgb_to_hsi(x, 2.0, "triton")
    torch.testing.assert_close(got, expect, rtol=0, atol=0)
    torch.testing.assert_close(torch.ops.tryon.rgb_to_hsi(x), rgb_to_hsi(x))
    torch.library.opcheck(torch.ops.tryon.rgb_to_hsi.default, (x, 2.0, "torch"))


def test_auto_is_torch_on_cpu():
    x = random_rgb((1, 3, 4, 5), torch.float32)
    torch.testing.assert_close(rgb_to_hsi(x), rgb_to_hsi_ref(x), rtol=0, atol=0)


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"x": torch.rand(3, 4, 5)}, "x"),  # rank 3
        ({"x": torch.rand(1, 4, 4, 5)}, "x"),  # 4 channels
        ({"x": torch.rand(1, 3, 0, 5)}, "x"),  # empty
        ({"x": torch.rand(1, 3, 4, 5, dtype=torch.float64)}, "x"),  # dtype
        ({"x": torch.zeros(1, 3, 4, 5, dtype=torch.int32)}, "x"),
        ({"x": [[1, 2, 3]]}, "x"),  # not a tensor
        ({"red_weight": 0.0}, "red_weight"),
        ({"red_weight": -1.0}, "red_weight"),
        ({"red_weight": 4.0}, "red_weight"),  # den^2 no longer positive definite
        ({"red_weight": float("nan")}, "red_weight"),
        ({"red_weight": float("inf")}, "red_weight"),
        ({"red_weight": True}, "red_weight"),
        ({"red_weight": "1"}, "red_weight"),
        ({"impl": "opencv"}, "impl"),  # no OpenCV HSI
        ({"impl": "cuda"}, "impl"),
    ],
)
def test_bad_input_raises(kwargs, argument):
    args = {"x": torch.rand(1, 3, 4, 5), **kwargs}
    x = args.pop("x")
    with pytest.raises(InputError) as info:
        rgb_to_hsi(x, **args)
    assert info.value.argument == argument
    assert str(info.value).startswith(f"{argument}:")
