"""make_runner: the backend choice, graph export into the cache and its reuse."""

import pytest
import torch

from engine.backends.factory import make_runner
from engine.backends.graph_cache import graph_cache_dir
from engine.backends.runners import OnnxRuntimeRunner, TorchRunner
from engine.backends.selection import Capabilities
from engine.errors import BackendUnavailableError, InputError
from engine.model.mpdt_generator import OUTPUT_NAMES, MPDTConfig, MPDTGenerator, example_inputs
from export.onnx_export import STANDARD_FILE

TINY = dict(height=32, width=32, frames=2, channels=8, blocks=1)
CPU_ORT = Capabilities(onnxruntime_version="1.x", onnxruntime_providers=("CPUExecutionProvider",))
CPU_ONLY = Capabilities()


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(2)
    return MPDTGenerator(MPDTConfig(**TINY)).eval()


def test_auto_on_cpu_exports_once_then_reuses_the_graph(model, tmp_path):
    lines = []
    runner = make_runner(model, frames=2, cache_dir=tmp_path, caps=CPU_ORT, log=lines.append)
    assert isinstance(runner, OnnxRuntimeRunner) and runner.name == "onnxruntime"
    path = graph_cache_dir(model, frames=2, precision="fp32", cache_dir=tmp_path) / STANDARD_FILE
    assert path.is_file() and any("exporting" in line for line in lines)
    stamp = path.stat().st_mtime_ns
    lines.clear()
    again = make_runner(model, frames=2, cache_dir=tmp_path, caps=CPU_ORT, log=lines.append)
    assert path.stat().st_mtime_ns == stamp and not any("exporting" in line for line in lines)
    assert [p.name for p in path.parent.iterdir()] == [STANDARD_FILE]  # no temporary left
    inputs = example_inputs(model, 2, seed=3)
    expected = TorchRunner(model, 2).run(inputs)
    got = again.run(inputs)
    for name in OUTPUT_NAMES:
        torch.testing.assert_close(got[name], expected[name], rtol=1e-4, atol=1e-5)


def test_cache_key_changes_with_weights_frames_and_precision(model, tmp_path):
    key = graph_cache_dir(model, frames=2, precision="fp32", cache_dir=tmp_path)
    assert key != graph_cache_dir(model, frames=3, precision="fp32", cache_dir=tmp_path)
    assert key != graph_cache_dir(model, frames=2, precision="fp16", cache_dir=tmp_path)
    other = MPDTGenerator(MPDTConfig(**TINY))
    other.load_state_dict(model.state_dict())
    assert graph_cache_dir(other, frames=2, precision="fp32", cache_dir=tmp_path) == key
    with torch.no_grad():
        other.decoder.head[0].bias.add_(1e-3)
    assert graph_cache_dir(other, frames=2, precision="fp32", cache_dir=tmp_path) != key


def test_torch_backend_and_cpu_fallback(model, tmp_path):
    runner = make_runner(model, frames=2, caps=CPU_ONLY, cache_dir=tmp_path)  # no onnxruntime
    assert isinstance(runner, TorchRunner) and runner.precision == "fp32"
    half = make_runner(model, backend="torch", frames=2, precision="fp16", caps=CPU_ONLY)
    assert isinstance(half, TorchRunner) and half.precision == "fp16"  # run in test_runners
    assert not any(tmp_path.iterdir())  # torch exports nothing


def test_bad_arguments_and_unavailable_backends(model):
    with pytest.raises(InputError) as info:
        make_runner(model, backend="tensorflow", frames=2, caps=CPU_ORT)
    assert info.value.argument == "backend"
    with pytest.raises(InputError) as info:
        make_runner(model, frames=0, caps=CPU_ORT)
    assert info.value.argument == "frames"
    with pytest.raises(InputError) as info:
        make_runner(model, frames=2, precision="int8", caps=CPU_ORT)
    assert info.value.argument == "precision"
    with pytest.raises(InputError) as info:
        make_runner("demo", frames=2, caps=CPU_ORT)
    assert info.value.argument == "model"
    with pytest.raises(BackendUnavailableError, match="pip install"):
        make_runner(model, backend="tensorrt", frames=2, caps=CPU_ORT)
