import pytest

from engine.backends import BackendChoice, Capabilities, choose_backend, probe_capabilities
from engine.errors import BackendUnavailableError, InputError

CPU = Capabilities(onnxruntime_version="1.20", onnxruntime_providers=("CPUExecutionProvider",))
GPU_TORCH_ONLY = Capabilities(
    cuda_device="NVIDIA H200",
    onnxruntime_version="1.20",
    onnxruntime_providers=("CPUExecutionProvider",),
)
GPU_ORT = Capabilities(
    cuda_device="NVIDIA H200",
    onnxruntime_version="1.20",
    onnxruntime_providers=("CUDAExecutionProvider", "CPUExecutionProvider"),
)
GPU_TRT = Capabilities(
    cuda_device="NVIDIA H200",
    tensorrt_version="10.13.0",
    onnxruntime_version="1.20",
    onnxruntime_providers=("CUDAExecutionProvider", "CPUExecutionProvider"),
)


@pytest.mark.parametrize(
    "caps, backend, device",
    [
        (GPU_TRT, "tensorrt", "cuda"),
        (GPU_ORT, "onnxruntime", "cuda"),
        (GPU_TORCH_ONLY, "torch", "cuda"),
        (CPU, "onnxruntime", "cpu"),
        (Capabilities(), "torch", "cpu"),
        # TensorRT without a GPU is not a candidate.
        (
            Capabilities(tensorrt_version="10.13.0", onnxruntime_version="1.20"),
            "onnxruntime",
            "cpu",
        ),
        # The CUDA provider without a device is not a candidate either.
        (
            Capabilities(
                onnxruntime_version="1.20", onnxruntime_providers=("CUDAExecutionProvider",)
            ),
            "onnxruntime",
            "cpu",
        ),
    ],
)
def test_auto_preference_order(caps, backend, device):
    choice = choose_backend("auto", caps)
    assert (choice.backend, choice.device) == (backend, device)
    assert choice.reason


def test_auto_says_why_faster_backends_were_skipped():
    reason = choose_backend("auto", CPU).reason
    assert "tensorrt is not installed" in reason
    assert "no CUDA device" in reason
    assert "CUDAExecutionProvider" in choose_backend("auto", GPU_TORCH_ONLY).reason


def test_broken_tensorrt_is_reported():
    caps = Capabilities(cuda_device="GPU", tensorrt_error="ImportError: libnvinfer.so.10")
    assert "libnvinfer" in choose_backend("auto", caps).reason
    with pytest.raises(BackendUnavailableError, match="libnvinfer"):
        choose_backend("tensorrt", caps)


def test_explicit_requests():
    choice = choose_backend("torch", GPU_TRT)
    assert isinstance(choice, BackendChoice)
    assert (choice.backend, choice.device) == ("torch", "cuda")
    assert choose_backend("torch", CPU).device == "cpu"
    assert choose_backend("onnxruntime", GPU_ORT).device == "cuda"
    assert choose_backend("onnxruntime", GPU_TORCH_ONLY).device == "cpu"
    assert choose_backend("tensorrt", GPU_TRT).backend == "tensorrt"


@pytest.mark.parametrize(
    "caps, backend, message",
    [
        (CPU, "tensorrt", "not installed"),
        (Capabilities(tensorrt_version="10.13.0"), "tensorrt", "CUDA device"),
        (Capabilities(), "onnxruntime", "not installed"),
    ],
)
def test_explicit_unavailable_backend_raises(caps, backend, message):
    with pytest.raises(BackendUnavailableError, match=message) as info:
        choose_backend(backend, caps)
    assert info.value.backend == backend


def test_unknown_backend_is_an_input_error():
    with pytest.raises(InputError, match="backend: expected one of 'auto'.*got 'cuda'"):
        choose_backend("cuda", CPU)


def test_probe_this_machine():
    caps = probe_capabilities()
    assert caps.onnxruntime_version is not None
    assert "CPUExecutionProvider" in caps.onnxruntime_providers
    assert choose_backend("auto", caps).backend in {"tensorrt", "onnxruntime", "torch"}
