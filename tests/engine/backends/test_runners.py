import pytest
import torch

from engine.backends.runners import OnnxRuntimeRunner, TorchRunner
from engine.errors import InputError
from engine.model.mpdt_generator import MPDTConfig, MPDTGenerator, example_inputs
from export.onnx_export import export_onnx

TINY = dict(height=32, width=32, frames=2, channels=8, blocks=1)


@pytest.fixture(scope="module")
def model_and_graph(tmp_path_factory):
    torch.manual_seed(1)
    model = MPDTGenerator(MPDTConfig(**TINY)).eval()
    path, _ = export_onnx(model, tmp_path_factory.mktemp("runners") / "tiny.onnx", frames=2)
    return model, path


def test_onnxruntime_runner_matches_torch_runner(model_and_graph):
    model, path = model_and_graph
    ort_runner, torch_runner = OnnxRuntimeRunner(path), TorchRunner(model, frames=2)
    inputs = example_inputs(model, 2, seed=3)
    got, expected = ort_runner.run(inputs), torch_runner.run(inputs)
    assert set(got) == set(expected) == {"tryon", "rendered", "cloth_mask"}
    for name in expected:
        torch.testing.assert_close(got[name], expected[name], rtol=1e-4, atol=1e-5)


def test_outputs_are_preallocated_and_reused(model_and_graph):
    model, path = model_and_graph
    runner = OnnxRuntimeRunner(path)
    first = runner.run(example_inputs(model, 2, seed=4))
    pointers = {k: v.data_ptr() for k, v in first.items()}
    before = first["tryon"].clone()
    second = runner.run(example_inputs(model, 2, seed=5))
    assert {k: v.data_ptr() for k, v in second.items()} == pointers
    assert not torch.equal(before, second["tryon"])  # the buffer now holds the new result


@pytest.mark.parametrize("runner_kind", ["torch", "onnxruntime"])
def test_bad_inputs_are_named_before_running(model_and_graph, runner_kind):
    model, path = model_and_graph
    runner = TorchRunner(model, frames=2) if runner_kind == "torch" else OnnxRuntimeRunner(path)
    good = example_inputs(model, 2)
    with pytest.raises(InputError) as info:
        runner.run(good | {"pose": good["pose"][:, :1]})  # wrong T
    assert info.value.argument == "pose"
    with pytest.raises(InputError) as info:
        runner.run({k: v for k, v in good.items() if k != "cloth"})
    assert info.value.argument == "inputs"
    with pytest.raises(InputError) as info:
        runner.run(good | {"background": good["background"].double()})
    assert info.value.argument == "background"


def test_runners_refuse_what_they_cannot_run(model_and_graph, tmp_path):
    import importlib.util

    import onnx

    from engine.backends.runners import TensorRTRunner
    from engine.errors import BackendUnavailableError

    model, path = model_and_graph
    proto = onnx.load(str(path))
    proto.graph.node[0].domain = "tryon"  # a plugin node: TensorRT's graph, not onnxruntime's
    onnx.save(proto, str(tmp_path / "plugins.onnx"))
    with pytest.raises(InputError) as info:
        OnnxRuntimeRunner(tmp_path / "plugins.onnx")
    assert info.value.argument == "path"
    with pytest.raises(InputError) as info:
        TorchRunner(model, frames=2, precision="int8")
    assert info.value.argument == "precision"
    if importlib.util.find_spec("tensorrt") is None:
        with pytest.raises(BackendUnavailableError, match="pip install"):
            TensorRTRunner(b"")


def test_torch_runner_fp16_keeps_float32_io(model_and_graph):
    model, _ = model_and_graph
    inputs = example_inputs(model, 2, seed=6)
    expected = TorchRunner(model, frames=2).run(inputs)
    got = TorchRunner(model, frames=2, precision="fp16").run(inputs)
    for name in expected:
        assert got[name].dtype == torch.float32
        torch.testing.assert_close(got[name], expected[name], rtol=0, atol=2e-2)
