import types

import torch

import kernels


def test_public_ops_are_functions_even_after_submodule_imports():
    import kernels.composite  # noqa: F401  (binds the submodule: must not shadow the function)
    import kernels.gaussian_blur  # noqa: F401

    for name in kernels.__all__:
        assert callable(getattr(kernels, name)), name
        assert not isinstance(getattr(kernels, name), types.ModuleType), name
        if not name.endswith("_ref"):
            assert hasattr(torch.ops.tryon, name), f"tryon::{name} is not registered"
