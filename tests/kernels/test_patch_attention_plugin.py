"""The single-launch patch attention (TensorRT plugin kernel) against the float64 reference."""

import pytest
import torch

from engine.errors import InputError
from kernels.patch_attention import patch_attention_ref
from kernels.patch_attention_plugin import (
    MAX_TOKENS,
    patch_attention_plugin,
    patch_attention_plugin_ref,
    plugin_blocks,
)
from tests.kernels.attention_cases import err64, make_key_mask, make_qkv, naive_patch_attention

CASES = [
    # (B, T, C, H, W), patch sizes: one shape per path (1 token, odd sizes, several heads)
    ((1, 1, 1, 1, 1), [(1, 1)]),  # size 1 everywhere: a single token
    ((1, 3, 8, 8, 6), [(8, 6), (4, 3), (2, 3), (1, 1)]),  # MPDT-like heads, T > 1
    ((2, 2, 6, 9, 10), [(3, 5), (9, 10)]),  # odd patch sides, batch > 1
    ((1, 2, 3, 5, 7), [(5, 7)]),  # odd channels and sides
]


@pytest.mark.parametrize("shape, sizes", CASES)
@pytest.mark.parametrize("masked", [False, True], ids=["nomask", "mask"])
def test_triton_matches_float64_reference(shape, sizes, masked):
    q, k, v = make_qkv(shape)
    key_mask = make_key_mask(shape) if masked else None
    out = patch_attention_plugin(q, k, v, sizes, key_mask=key_mask, impl="triton")
    assert out.shape == q.shape and out.dtype == q.dtype and out.is_contiguous()
    assert err64(out, q, k, v, sizes, key_mask) < 2e-5


def test_float16_error_is_within_twice_torch_own():
    shape, sizes = (1, 3, 8, 8, 6), [(8, 6), (2, 3)]
    q, k, v = make_qkv(shape, torch.float16, seed=2)
    key_mask = make_key_mask(shape, seed=3)
    torch_err = err64(patch_attention_ref(q, k, v, sizes, key_mask=key_mask), q, k, v, sizes,
                       key_mask)  # fmt: skip
    ours = err64(patch_attention_plugin(q, k, v, sizes, key_mask=key_mask, impl="triton"), q, k,
                  v, sizes, key_mask)  # fmt: skip
    assert ours <= 2 * torch_err + 1e-3, (ours, torch_err)


def test_non_contiguous_inputs_and_empty_mask_rows():
    base = torch.randn((1, 2, 16, 4, 6), generator=torch.Generator().manual_seed(5))
    q, k, v = base[:, :, 0:4], base[:, :, 4:8], base[:, :, 8:12]  # channel slices, read in place
    key_mask = torch.zeros((1, 2, 1, 4, 6), dtype=torch.bool)  # no key at all: zeros, no NaN
    out = patch_attention_plugin(q, k, v, [(2, 3), (4, 6)], key_mask=key_mask, impl="triton")
    assert torch.equal(out, torch.zeros_like(out))
    out = patch_attention_plugin(q, k, v, [(2, 3), (4, 6)], impl="triton")
    assert err64(out, q, k, v, [(2, 3), (4, 6)], None) < 2e-5


@pytest.mark.parametrize("masked", [False, True], ids=["nomask", "mask"])
def test_reference_matches_the_definition_written_out(masked):
    """The plugin's reference against an oracle with its own loops (no shared tokenizer)."""
    shape, sizes = (1, 2, 4, 4, 6), [(2, 3), (4, 6)]
    q, k, v = make_qkv(shape, torch.float64, seed=4)
    key_mask = make_key_mask(shape, seed=5) if masked else None
    want = naive_patch_attention(q, k, v, sizes, key_mask)
    got = patch_attention_plugin_ref(q, k, v, sizes, key_mask=key_mask)
    torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-10)
    triton_out = patch_attention_plugin(q.float(), k.float(), v.float(), sizes,
                                        key_mask=key_mask, impl="triton")  # fmt: skip
    assert (triton_out.double() - want).abs().max().item() < 2e-5


def test_blocks_hold_the_whole_key_row():
    for n in (1, 4, 17, 256, MAX_TOKENS):
        blocks = plugin_blocks(n, 48)
        budget = max(8192, 16 * blocks["BLOCK_N"])  # tl.dot needs BLOCK_D >= 16
        assert blocks["BLOCK_N"] >= n and blocks["BLOCK_N"] * blocks["BLOCK_D"] <= budget
        assert blocks["BLOCK_N"] * blocks["BLOCK_P"] <= budget


def test_bad_inputs_raise_before_any_work():
    q, k, v = make_qkv((1, 2, 4, 4, 4))
    with pytest.raises(InputError) as info:
        patch_attention_plugin(q, k, v, [(3, 3)], impl="triton")
    assert info.value.argument == "patch_sizes"
    with pytest.raises(InputError) as info:
        patch_attention_plugin(q.double(), k.double(), v.double(), [(2, 2)], impl="triton")
    assert info.value.argument == "q"
    big = torch.zeros((1, MAX_TOKENS + 1, 1, 1, 1))
    with pytest.raises(InputError) as info:
        patch_attention_plugin(big, big, big, [(1, 1)], impl="triton")
    assert info.value.argument == "patch_sizes"
