import pytest
import torch

from engine.backends.runners import OnnxRuntimeRunner, TorchRunner
from engine.errors import InputError
from engine.mpdt import MPDTConfig, MPDTGenerator
from export.onnx_export import example_inputs, export_onnx

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
