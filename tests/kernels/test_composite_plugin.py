"""The AOT-ordered composite kernel (TensorRT plugin kernel) against its reference."""

import pytest
import torch

from engine.errors import InputError
from kernels.composite_plugin import composite_plugin, composite_plugin_ref, plugin_block


def _inputs(shape, dtype=torch.float32, seed=0):
    n, _, h, w = shape
    g = torch.Generator().manual_seed(seed)
    images = [torch.rand((n, 3, h, w), generator=g).to(dtype) for _ in range(3)]
    masks = [torch.rand((n, 1, h, w), generator=g).to(dtype) for _ in range(2)]
    return images[0], images[1], masks[0], images[2], masks[1]


@pytest.mark.parametrize("shape", [(1, 3, 1, 1), (2, 3, 5, 7), (3, 3, 17, 33)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_triton_equals_reference(shape, dtype):
    args = _inputs(shape, dtype)
    out = composite_plugin(*args, impl="triton")
    ref = composite_plugin_ref(*args)
    assert out.shape == (shape[0], 3, *shape[2:]) and out.dtype == dtype and out.is_contiguous()
    torch.testing.assert_close(out, ref, rtol=0, atol=0)  # same fp32 operations, same order
    # Against the seed's two formulas worked out here in float64 (no shared code).
    cloth, rendered, cm, bg, bm = (a.double() for a in args)
    want = (1 - bm) * (cm * cloth + (1 - cm) * rendered) + bm * bg
    tol = 1e-6 if dtype == torch.float32 else 2e-3
    assert (ref.double() - want).abs().max().item() <= tol
    assert (out.double() - want).abs().max().item() <= tol


def test_strided_and_bool_inputs_are_read_in_place():
    cloth, rendered, cm, bg, bm = _inputs((2, 3, 6, 5))
    wide = torch.rand((2, 6, 6, 5))
    cloth_cl = cloth.to(memory_format=torch.channels_last)
    bool_mask = bm > 0.5
    out = composite_plugin(cloth_cl, rendered, cm, wide[:, 1:4], bool_mask, impl="triton")
    ref = composite_plugin_ref(cloth, rendered, cm, wide[:, 1:4], bool_mask)
    torch.testing.assert_close(out, ref, rtol=0, atol=0)


def test_block_covers_the_frame():
    assert plugin_block(1) == (16, 2) and plugin_block(96 * 128)[0] == 1024


def test_bad_inputs_raise():
    cloth, rendered, cm, bg, bm = _inputs((1, 3, 4, 4))
    with pytest.raises(InputError) as info:
        composite_plugin(cloth, rendered, cm * 2, bg, bm, impl="triton")
    assert info.value.argument == "cloth_mask"
    with pytest.raises(InputError) as info:
        composite_plugin(cloth[:, :2], rendered, cm, bg, bm)
    assert info.value.argument == "cloth"
