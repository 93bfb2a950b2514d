import importlib.util

import pytest

from engine.errors import BackendUnavailableError
from export.tensorrt_engine import build_engine, engine_cache_key, uses_plugins

BASE = dict(
    tensorrt_version="10.13.0",
    gpu_name="NVIDIA H200",
    compute_capability=(9, 0),
    precision="fp16",
    profile={"cloth": (1, 4, 4, 128, 96), "pose": (1, 4, 35, 128, 96)},
    plugin_source_hash="abc",
)


def test_cache_key_depends_on_every_ingredient():
    key = engine_cache_key(b"onnx", **BASE)
    assert key == engine_cache_key(b"onnx", **BASE) and len(key) == 64
    changes = [
        ("tensorrt_version", "11.0.0"),
        ("gpu_name", "NVIDIA L4"),
        ("compute_capability", (8, 9)),
        ("precision", "fp32"),
        ("profile", {"cloth": (1, 8, 4, 128, 96), "pose": (1, 4, 35, 128, 96)}),
        ("plugin_source_hash", "abd"),
    ]
    keys = {engine_cache_key(b"onnx", **(BASE | {field: value})) for field, value in changes}
    keys.add(engine_cache_key(b"onnx2", **BASE))
    assert len(keys) == len(changes) + 1 and key not in keys


def test_plugin_graphs_are_recognized():
    import onnx

    def model(domain):
        node = onnx.helper.make_node("composite", ["a"], ["b"], domain=domain)
        graph = onnx.helper.make_graph([node], "g", [], [])
        return onnx.helper.make_model(graph).SerializeToString()

    assert uses_plugins(model("tryon")) and not uses_plugins(model(""))


@pytest.mark.skipif(
    importlib.util.find_spec("tensorrt") is not None, reason="TensorRT is installed here"
)
def test_without_tensorrt_the_builder_says_how_to_get_it():
    with pytest.raises(BackendUnavailableError, match="pip install"):
        build_engine(b"")


@pytest.mark.tensorrt
@pytest.mark.skipif(
    importlib.util.find_spec("tensorrt") is None,
    reason="TensorRT is not installed (it cannot be on these machines; NVIDIA hosts only)",
)
@pytest.mark.parametrize("graph", ["standard", "plugins"])
@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_engine_matches_onnxruntime_with_cuda_graphs(tmp_path, precision, graph):
    import torch

    from engine.backends.runners import OnnxRuntimeRunner, TensorRTRunner
    from engine.model.mpdt_generator import MPDTConfig, MPDTGenerator, example_inputs
    from export.onnx_export import export_graphs
    from export.tensorrt_engine import load_or_build_engine

    if not torch.cuda.is_available():
        pytest.skip("TensorRT engines need a CUDA device")
    torch.manual_seed(0)
    model = MPDTGenerator(MPDTConfig(height=32, width=32, frames=2, channels=8, blocks=1))
    report = export_graphs(model, tmp_path / "graphs", frames=2, precision=precision)
    path = report.plugins.path if graph == "plugins" else report.standard.path
    engine = load_or_build_engine(path, tmp_path / "cache", precision=precision)
    again = load_or_build_engine(path, tmp_path / "cache", precision=precision)
    assert again == engine  # cached
    runner = TensorRTRunner(engine, cuda_graph=True, warmup=1)
    expected = OnnxRuntimeRunner(report.standard.path)
    tolerance = 1e-3 if precision == "fp32" else 2e-2
    for seed in range(3):  # ordinary run, capture, replays
        inputs = example_inputs(model, 2, seed=seed)
        got = {k: v.cpu() for k, v in runner.run({k: v.cuda() for k, v in inputs.items()}).items()}
        want = expected.run(inputs)
        for name in want:
            torch.testing.assert_close(got[name], want[name], rtol=tolerance, atol=tolerance)
    assert runner.graph is not None
