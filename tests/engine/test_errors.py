import numpy as np
import pytest
import torch

from engine.errors import (
    BackendUnavailableError,
    ExportError,
    InputError,
    ModelLoadError,
    TryOnError,
    describe,
)


def test_input_error_is_value_error_and_names_argument():
    err = InputError("frame", "an HxWx3 uint8 array", np.zeros((4, 4), np.float32))
    assert isinstance(err, ValueError) and isinstance(err, TryOnError)
    assert str(err) == "frame: expected an HxWx3 uint8 array, got a float32 array of shape (4, 4)"
    assert (err.argument, err.expected) == ("frame", "an HxWx3 uint8 array")


def test_input_error_without_got():
    assert str(InputError("ksize", "an odd int >= 1")) == "ksize: expected an odd int >= 1"


def test_input_error_quotes_string_values():
    assert str(InputError("mode", "'latency'", "fast")) == "mode: expected 'latency', got 'fast'"


@pytest.mark.parametrize(
    "cls, args, base",
    [
        (BackendUnavailableError, ("tensorrt", "not installed"), RuntimeError),
        (ModelLoadError, ("demo", "file is truncated"), RuntimeError),
        (ExportError, ("parser failed",), RuntimeError),
    ],
)
def test_runtime_errors(cls, args, base):
    err = cls(*args)
    assert isinstance(err, base) and isinstance(err, TryOnError)
    for part in args:
        assert part in str(err)


def test_describe():
    assert describe(torch.zeros(2, 3, dtype=torch.float16)) == (
        "a float16 tensor of shape (2, 3) on cpu"
    )
    assert describe(np.zeros((5,), np.uint8)) == "a uint8 array of shape (5,)"
    assert describe(None) == "None"
    assert describe(3) == "3 (int)"
    assert describe("x" * 100) == "a str of length 100"
    assert describe(list(range(100))) == "a list"
