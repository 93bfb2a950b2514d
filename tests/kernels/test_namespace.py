import importlib
import types

import torch

import kernels


def test_public_ops_are_functions_even_after_submodule_imports():
    # Importing a submodule binds it on the package: it must not shadow the function.
    importlib.import_module("kernels.composite")
    importlib.import_module("kernels.gaussian_blur")

    for name in kernels.__all__:
        assert callable(getattr(kernels, name)), name
        assert not isinstance(getattr(kernels, name), types.ModuleType), name
        if not name.endswith("_ref"):
            assert hasattr(torch.ops.tryon, name), f"tryon::{name} is not registered"
