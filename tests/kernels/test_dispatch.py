import pytest
import torch

from engine.errors import BackendUnavailableError, InputError
from kernels.dispatch import resolve_impl

CPU, CUDA = torch.device("cpu"), torch.device("cuda")


def test_auto():
    assert resolve_impl("auto", CUDA, has_opencv=True) == "triton"
    assert resolve_impl("auto", CPU, has_opencv=True) == "opencv"
    assert resolve_impl("auto", CPU, has_opencv=False) == "torch"


def test_explicit():
    assert resolve_impl("torch", CUDA, has_opencv=False) == "torch"
    assert resolve_impl("opencv", CPU, has_opencv=True) == "opencv"
    assert resolve_impl("triton", CUDA, has_opencv=False) == "triton"


def test_triton_on_cpu_needs_the_interpreter(monkeypatch):
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    assert resolve_impl("triton", CPU, has_opencv=False) == "triton"
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    with pytest.raises(BackendUnavailableError, match="TRITON_INTERPRET=1"):
        resolve_impl("triton", CPU, has_opencv=False)


@pytest.mark.parametrize(
    "impl, device, has_opencv",
    [("opencv", CPU, False), ("opencv", CUDA, True), ("cuda", CPU, True), (None, CPU, True)],
)
def test_rejected(impl, device, has_opencv):
    with pytest.raises(InputError) as info:
        resolve_impl(impl, device, has_opencv=has_opencv)
    assert info.value.argument == "impl"
