import pytest
import torch

from kernels.triton_mode import interpreter_requested, triton_status


def test_conftest_enabled_the_interpreter_on_cpu_machines():
    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present: kernels compile for real")
    assert interpreter_requested()
    status = triton_status()
    assert status.mode == "interpreted"
    assert status.version is not None


def test_without_interpreter_or_gpu_triton_is_unavailable(monkeypatch):
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    status = triton_status()
    assert status.mode == "unavailable"
    assert "TRITON_INTERPRET=1" in status.reason


def test_triton_kernel_runs_in_the_interpreter():
    if not interpreter_requested():
        pytest.skip("TRITON_INTERPRET is not 1")
    import triton
    import triton.language as tl

    @triton.jit
    def _double_kernel(x_ptr, y_ptr, n, BLOCK: tl.constexpr):
        offsets = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
        mask = offsets < n
        tl.store(y_ptr + offsets, tl.load(x_ptr + offsets, mask=mask) * 2, mask=mask)

    x = torch.arange(37, dtype=torch.float32)
    y = torch.empty_like(x)
    _double_kernel[(triton.cdiv(37, 16),)](x, y, 37, BLOCK=16)
    torch.testing.assert_close(y, x * 2)
