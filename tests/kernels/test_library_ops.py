"""The tryon:: ops are visible to torch.compile and pass torch.library's consistency checks."""

import importlib

import pytest
import torch

import kernels  # noqa: F401  (registers torch.ops.tryon.*)
from engine.errors import InputError
from kernels.box_blur import box_blur
from kernels.gaussian_blur import gaussian_blur


def _image(dtype=torch.float32, shape=(1, 3, 6, 7)):
    return torch.rand(shape, generator=torch.Generator().manual_seed(0)).to(dtype)


@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32])
def test_opcheck_filters(dtype):
    x = _image() if dtype == torch.float32 else (_image() * 255).to(torch.uint8)
    mask = _image(shape=(1, 1, 6, 7))
    torch.library.opcheck(torch.ops.tryon.gaussian_blur.default, (x, 5, 3, 1.2, 0.0, "torch"))
    torch.library.opcheck(torch.ops.tryon.box_blur.default, (x, 3, 5, mask, "torch"))


def test_torch_compile_captures_the_ops_in_one_graph():
    def pipeline(x, mask):
        soft = torch.ops.tryon.gaussian_blur(mask, 5, 5, 0.0, 0.0, "torch")
        return torch.ops.tryon.box_blur(x, 3, 3, soft.clamp(0, 1), "torch") * 2

    x, mask = _image(), _image(shape=(1, 1, 6, 7))
    compiled = torch.compile(pipeline, backend="aot_eager", fullgraph=True)
    torch.testing.assert_close(compiled(x, mask), pipeline(x, mask), rtol=0, atol=0)


def test_devices_must_match():
    x = _image()
    on_meta = torch.empty((1, 1, 6, 7), device="meta")
    with pytest.raises(InputError) as info:
        box_blur(x, 3, mask=on_meta)
    assert info.value.argument == "mask"


def test_errors_come_before_any_work(monkeypatch):
    module = importlib.import_module("kernels.gaussian_blur")
    launches = []
    monkeypatch.setattr(module, "separable_filter", lambda *a, **k: launches.append(a))
    gaussian_blur(_image(), 3, impl="triton")
    assert len(launches) == 1  # the patch is effective
    with pytest.raises(InputError):
        gaussian_blur(_image(), 4, impl="triton")
    with pytest.raises(InputError):
        gaussian_blur(_image(), 3, sigma=float("inf"), impl="triton")
    assert len(launches) == 1
