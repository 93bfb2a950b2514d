import importlib.util

import pytest

from engine.errors import BackendUnavailableError
from export.tensorrt_engine import build_engine, engine_cache_key

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
def test_build_and_run_matches_onnxruntime(tmp_path):
    import torch

    from engine.backends.runners import OnnxRuntimeRunner, TensorRTRunner
    from engine.mpdt import MPDTConfig, MPDTGenerator
    from export.onnx_export import example_inputs, export_onnx
    from export.tensorrt_engine import load_or_build_engine

    model = MPDTGenerator(MPDTConfig(height=32, width=32, frames=2, channels=8, blocks=1))
    path, _ = export_onnx(model, tmp_path / "tiny.onnx", frames=2)
    engine = load_or_build_engine(path, tmp_path / "cache", precision="fp32")
    assert load_or_build_engine(path, tmp_path / "cache", precision="fp32") == engine  # cached
    inputs = example_inputs(model, 2)
    got = TensorRTRunner(engine).run({k: v.cuda() for k, v in inputs.items()})
    expected = OnnxRuntimeRunner(path).run(inputs)
    for name in expected:
        torch.testing.assert_close(got[name].cpu(), expected[name], rtol=1e-3, atol=1e-3)
