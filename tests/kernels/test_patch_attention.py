import pytest
import torch

from engine.errors import InputError
from kernels.patch_attention import patch_attention, patch_attention_flops, patch_attention_ref
from tests.kernels.attention_cases import err64, make_key_mask, make_qkv

MPDT_LIKE = [(8, 6), (4, 3), (2, 3), (1, 1)]  # whole 8x6 map down to single pixels


CASES = [
    # (B, T, C, H, W), patch sizes
    ((1, 1, 4, 8, 6), [(8, 6)]),  # T = 1, one head, patch = whole map
    ((1, 3, 8, 8, 6), MPDT_LIKE),  # four heads, T > 1
    ((2, 2, 6, 9, 10), [(3, 5), (9, 10)]),  # odd patch sides, batch > 1
    ((1, 2, 3, 6, 5), [(2, 5)]),  # odd channels per head
]


@pytest.mark.parametrize("shape, sizes", CASES)
@pytest.mark.parametrize("masked", [False, True], ids=["nomask", "mask"])
def test_triton_matches_float64_reference(shape, sizes, masked):
    q, k, v = make_qkv(shape)
    key_mask = make_key_mask(shape) if masked else None
    out = patch_attention(q, k, v, sizes, key_mask=key_mask, impl="triton")
    assert out.shape == q.shape and out.dtype == q.dtype and out.is_contiguous()
    assert err64(out, q, k, v, sizes, key_mask) < 2e-5


@pytest.mark.parametrize("shape, sizes", CASES[1:3])
def test_float16_error_is_within_twice_torch_own(shape, sizes):
    q, k, v = make_qkv(shape, torch.float16, seed=2)
    key_mask = make_key_mask(shape, seed=3)
    torch_err = err64(patch_attention_ref(q, k, v, sizes, key_mask=key_mask), q, k, v, sizes,
                       key_mask)  # fmt: skip
    ours = err64(patch_attention(q, k, v, sizes, key_mask=key_mask, impl="triton"), q, k, v,
                  sizes, key_mask)  # fmt: skip
    assert ours <= 2 * torch_err + 1e-3, (ours, torch_err)


def test_float16_large_tokens_do_not_overflow():
    # D = 64 * 8 * 6 = 3072 products of values ~30: the unscaled dot is ~2.8e6 > fp16 max.
    shape, sizes = (1, 2, 64, 8, 6), [(8, 6)]
    q, k, v = (x * 30 for x in make_qkv(shape, torch.float16, seed=4))
    out = patch_attention(q, k, v, sizes, impl="triton")
    ref = patch_attention_ref(q, k, v, sizes)
    assert torch.isfinite(out).all() and torch.isfinite(ref).all()
    assert err64(out, q, k, v, sizes, None) <= 2 * err64(ref, q, k, v, sizes, None) + 0.05


def test_empty_mask_gives_zeros_full_mask_equals_no_mask():
    shape, sizes = (1, 2, 4, 8, 6), [(4, 3), (2, 2)]
    q, k, v = make_qkv(shape)
    empty = torch.zeros((1, 2, 1, 8, 6), dtype=torch.bool)
    for impl in ("triton", "torch"):
        out = patch_attention(q, k, v, sizes, key_mask=empty, impl=impl)
        assert torch.equal(out, torch.zeros_like(out))  # no key left: zeros, never NaN
        full = patch_attention(q, k, v, sizes, key_mask=~empty, impl=impl)
        torch.testing.assert_close(full, patch_attention(q, k, v, sizes, impl=impl))


def test_a_frame_outside_the_region_takes_no_part():
    shape, sizes = (1, 3, 4, 8, 6), [(8, 6), (4, 3)]
    q, k, v = make_qkv(shape)
    key_mask = make_key_mask(shape)
    key_mask[:, 1] = False  # frame 1 has no region pixel
    out = patch_attention(q, k, v, sizes, key_mask=key_mask, impl="triton")
    k2, v2 = k.clone(), v.clone()
    k2[:, 1] += 100.0
    v2[:, 1] -= 50.0
    changed = patch_attention(q, k2, v2, sizes, key_mask=key_mask, impl="triton")
    torch.testing.assert_close(out, changed, rtol=0, atol=0)
    assert err64(out, q, k, v, sizes, key_mask) < 2e-5


def test_one_pixel_makes_a_key_patch_count():
    shape, sizes = (1, 2, 2, 4, 4), [(2, 2)]
    q, k, v = make_qkv(shape)
    key_mask = torch.zeros((1, 2, 1, 4, 4), dtype=torch.bool)
    key_mask[0, 1, 0, 3, 3] = True  # only the last patch of frame 1
    out = patch_attention(q, k, v, sizes, key_mask=key_mask, impl="triton")
    # every query attends to that single key patch: its value patch is copied everywhere
    expected = v[0, 1, :, 2:4, 2:4].repeat(1, 2, 2)  # (C, 4, 4)
    for t in range(2):
        torch.testing.assert_close(out[0, t], expected)


def test_channel_slices_and_strided_inputs_are_read_in_place():
    shape, sizes = (2, 2, 8, 8, 6), [(4, 3), (8, 6)]
    g = torch.Generator().manual_seed(5)
    block = torch.randn((2, 2, 30, 8, 6), generator=g)  # the three streams in one tensor
    q, k, v = block[:, :, 0:8], block[:, :, 10:18], block[:, :, 20:28]
    assert not q.is_contiguous()
    wide = torch.randn((2, 2, 8, 8, 12), generator=g)[..., ::2]  # strided W
    key_mask = make_key_mask(shape)
    for kk in (k, wide):
        out = patch_attention(q, kk, v, sizes, key_mask=key_mask, impl="triton")
        ref = patch_attention_ref(q.contiguous(), kk.contiguous(), v.contiguous(), sizes,
                                  key_mask=key_mask)  # fmt: skip
        torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)


def test_custom_op_and_auto():
    shape, sizes = (1, 2, 4, 4, 6), [(2, 3), (4, 6)]
    q, k, v = make_qkv(shape)
    key_mask = make_key_mask(shape)
    expected = patch_attention_ref(q, k, v, sizes, key_mask=key_mask)
    op = torch.ops.tryon.patch_attention(q, k, v, [2, 4], [3, 6], key_mask, "torch")
    torch.testing.assert_close(op, expected)
    torch.testing.assert_close(patch_attention(q, k, v, sizes, key_mask=key_mask), expected)
    torch.library.opcheck(torch.ops.tryon.patch_attention.default,
                          (q, k, v, [2, 4], [3, 6], key_mask, "torch"))  # fmt: skip


def test_flops():
    # one head: N = T * L tokens of D values: 4 * B * N^2 * D
    assert patch_attention_flops((1, 4, 256, 64, 48), [(64, 48)]) == 4 * 4 * 4 * 256 * 64 * 48
    total = patch_attention_flops((1, 8, 256, 64, 48), [(64, 48), (32, 24), (16, 12), (8, 6)])
    assert total == sum(4 * (8 * n) ** 2 * 64 * (3072 // n) for n in (1, 4, 16, 64))


@pytest.mark.parametrize(
    "change, argument",
    [
        ({"q": torch.zeros(2, 4, 8, 6)}, "q"),  # rank 4
        ({"q": torch.zeros(1, 2, 4, 8, 6, dtype=torch.float64)}, "q"),
        ({"q": torch.zeros(1, 2, 4, 8, 6, dtype=torch.bfloat16)}, "q"),  # bf16: CUDA only
        ({"q": torch.zeros(1, 0, 4, 8, 6)}, "q"),
        ({"k": torch.zeros(1, 2, 4, 8, 5)}, "k"),
        ({"v": torch.zeros(1, 2, 4, 8, 6, dtype=torch.float16)}, "v"),
        ({"patch_sizes": []}, "patch_sizes"),
        ({"patch_sizes": [(3, 3)]}, "patch_sizes"),  # 8 % 3
        ({"patch_sizes": [(8, 6)] * 3}, "patch_sizes"),  # 4 channels, 3 heads
        ({"patch_sizes": [(0, 6)]}, "patch_sizes"),
        ({"patch_sizes": [(8,)]}, "patch_sizes"),
        ({"patch_sizes": "8x6"}, "patch_sizes"),
        ({"key_mask": torch.zeros(1, 2, 1, 8, 6)}, "key_mask"),  # float, not bool
        ({"key_mask": torch.zeros(1, 2, 2, 8, 6, dtype=torch.bool)}, "key_mask"),
        ({"impl": "opencv"}, "impl"),
    ],
)
def test_bad_input_is_named(change, argument):
    args = dict(zip("qkv", make_qkv((1, 2, 4, 8, 6)), strict=True))
    args |= {"patch_sizes": [(8, 6), (4, 3)], "key_mask": None, "impl": "triton"} | change
    with pytest.raises(InputError) as info:
        patch_attention(args["q"], args["k"], args["v"], args["patch_sizes"],
                        key_mask=args["key_mask"], impl=args["impl"])  # fmt: skip
    assert info.value.argument == argument
