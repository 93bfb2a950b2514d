import collections

import numpy as np
import onnx
import pytest
import torch

from engine.errors import ExportError, InputError
from engine.model.mpdt_generator import INPUT_NAMES, OUTPUT_NAMES, MPDTConfig, MPDTGenerator
from export.onnx_export import (
    FP16_MAX_REL_ERROR,
    FP32_MAX_REL_ERROR,
    PLUGINS_FILE,
    STANDARD_FILE,
    example_inputs,
    export_graphs,
    export_onnx,
    with_size,
)
from export.tensorrt_onnx_ops import TENSORRT_ONNX_OPS, audit
from export.tensorrt_plugins import PLUGIN_NAMESPACE

TINY = dict(height=32, width=32, frames=2, channels=8, blocks=1)


def _tiny(seed=0):
    torch.manual_seed(seed)
    return MPDTGenerator(MPDTConfig(**TINY)).eval()


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    model = _tiny()
    report = export_graphs(model, tmp_path_factory.mktemp("onnx"), frames=3)
    standard = onnx.load(str(report.standard.path))
    plugins = onnx.load(str(report.plugins.path))
    return model, report, standard, plugins


@pytest.fixture(scope="module")
def exported_fp16(tmp_path_factory):
    model = _tiny()
    return model, export_graphs(model, tmp_path_factory.mktemp("onnx16"), precision="fp16")


def _dims(values):
    return {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim] for v in values}


def test_both_files_are_written(exported):
    _, report, _, _ = exported
    assert report.standard.path.name == STANDARD_FILE and report.plugins.path.name == PLUGINS_FILE
    assert report.standard.path.parent == report.plugins.path.parent
    assert (report.frames, report.height, report.width, report.precision) == (3, 32, 32, "fp32")


@pytest.mark.parametrize("graph", ["standard", "plugins"])
def test_names_shapes_and_opset(exported, graph):
    _, _, standard, plugins = exported
    proto = standard if graph == "standard" else plugins
    assert [i.name for i in proto.graph.input] == list(INPUT_NAMES)
    assert [o.name for o in proto.graph.output] == list(OUTPUT_NAMES)
    dims = _dims(proto.graph.input)
    assert dims["cloth"] == [1, 3, 4, 32, 32] and dims["pose"][2] == 35
    out_dims = list(_dims(proto.graph.output).values())
    assert out_dims == [[1, 3, 3, 32, 32], [1, 3, 3, 32, 32], [1, 3, 1, 32, 32]]
    assert max(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")) >= 17
    onnx.checker.check_model(proto, full_check=True)


def test_every_standard_op_parses_in_tensorrt(exported):
    _, _, standard, _ = exported
    assert audit(standard) == []
    ops = collections.Counter(n.op_type for n in standard.graph.node)
    assert set(ops) <= TENSORRT_ONNX_OPS and not any(n.domain for n in standard.graph.node)
    assert "Col2Im" not in ops and "ScatterND" not in ops  # GridSample: 4-D only (audited)
    assert ops["Softmax"] >= 1 and ops["MatMul"] >= 1  # the attention is really in the graph


def test_plugins_graph_has_one_node_per_head_and_composite(exported):
    model, report, _, plugins = exported
    heads = len(model.config.patch_sizes)
    nodes = [n for n in plugins.graph.node if n.domain == PLUGIN_NAMESPACE]
    kinds = collections.Counter(n.op_type for n in nodes)
    assert kinds == {"patch_attention": 2 * model.config.blocks * heads, "composite": 1}
    assert report.plugins.plugin_nodes == len(nodes)
    ops = collections.Counter(n.op_type for n in plugins.graph.node if not n.domain)
    assert ops["Softmax"] == 0 and ops["MatMul"] == 0  # the reference subgraphs are gone
    assert audit(plugins) != [] and audit(plugins, allowed_domains=(PLUGIN_NAMESPACE,)) == []
    cn = model.config.channels // heads
    for node in nodes:
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        assert attrs["plugin_namespace"] == PLUGIN_NAMESPACE.encode() and attrs["aot"] == 1
        if node.op_type == "patch_attention":
            assert len(node.input) == 4 and attrs["head_channels"] == cn
            assert attrs["channel_offset"] % cn == 0
            assert (attrs["patch_h"], attrs["patch_w"]) in model.config.patch_sizes
        else:
            assert len(node.input) == 5
    assert any(o.domain == PLUGIN_NAMESPACE for o in plugins.opset_import)


@pytest.mark.parametrize("graph", ["standard", "plugins"])
def test_graphs_match_pytorch(exported, graph):
    _, report, _, _ = exported
    parity = report.standard.parity if graph == "standard" else report.plugins.parity
    assert parity.worst_rel < FP32_MAX_REL_ERROR
    assert set(parity.max_rel) == set(OUTPUT_NAMES)


def test_fp16_graph_is_strongly_typed_and_close(exported_fp16):
    model, report = exported_fp16
    proto = onnx.load(str(report.standard.path))
    elem = onnx.TensorProto
    io_types = {v.type.tensor_type.elem_type for v in (*proto.graph.input, *proto.graph.output)}
    assert io_types == {elem.FLOAT}  # float32 in and out
    weights = collections.Counter(i.data_type for i in proto.graph.initializer)
    assert weights[elem.FLOAT16] > weights[elem.FLOAT]  # most weights in fp16
    for part in (report.standard, report.plugins):  # reported, and sane
        assert part.parity.worst_rel < FP16_MAX_REL_ERROR, part.parity
    print(f"fp16 vs PyTorch fp32, max rel: {report.standard.parity.max_rel}")
    # onnxruntime runs it on CPU
    import onnxruntime as ort

    session = ort.InferenceSession(str(report.standard.path), providers=["CPUExecutionProvider"])
    inputs = example_inputs(model, model.config.frames, seed=7)
    got = session.run(None, {k: v.numpy() for k, v in inputs.items()})
    assert all(np.isfinite(g).all() and g.dtype == np.float32 for g in got)


def test_audit_flags_a_5d_grid_sample():
    x = onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 1, 2, 4, 4])
    g = onnx.helper.make_tensor_value_info("g", onnx.TensorProto.FLOAT, [1, 2, 4, 4, 3])
    node = onnx.helper.make_node("GridSample", ["x", "g"], ["y"], name="gs")
    graph = onnx.helper.make_graph([node], "g", [x, g], [])
    model = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 20)])
    assert any("4-D" in p for p in audit(model))


def test_audit_flags_unsupported_ops():
    node = onnx.helper.make_node("Col2Im", ["x", "s", "b"], ["y"], name="fold")
    custom = onnx.helper.make_node("PatchAttention", ["x"], ["z"], name="pa", domain="tryon")
    graph = onnx.helper.make_graph([node, custom], "g", [], [])
    opsets = [onnx.helper.make_opsetid("", 17), onnx.helper.make_opsetid("tryon", 1)]
    problems = audit(onnx.helper.make_model(graph, opset_imports=opsets))
    assert any("Col2Im" in p for p in problems) and any("tryon" in p for p in problems)
    allowed = audit(onnx.helper.make_model(graph, opset_imports=opsets), allowed_domains=("tryon",))
    assert not any("tryon" in p for p in allowed)


def test_with_size_keeps_the_weights():
    model = _tiny()
    bigger = with_size(model, 64, 32)
    assert (bigger.config.height, bigger.config.width) == (64, 32)
    assert bigger.config.patch_sizes[0] == (16, 8)  # each head keeps its fraction of the map
    for (name, a), b in zip(model.state_dict().items(), bigger.state_dict().values(), strict=True):
        assert torch.equal(a, b), name
    assert with_size(model, 32, 32) is model
    with pytest.raises(InputError) as info:
        with_size(model, 40, 32)  # not a multiple of 4 x the largest divisor (32)
    assert info.value.argument == "height/width"


def test_bad_arguments():
    with pytest.raises(InputError):
        export_onnx("not a model", "/tmp/x.onnx")
    with pytest.raises(InputError):
        export_onnx(_tiny(), "/tmp/x.onnx", frames=0)
    with pytest.raises(InputError) as info:
        export_graphs(_tiny(), "/tmp/x", precision="int8")
    assert info.value.argument == "precision"
    with pytest.raises(InputError) as info:
        export_graphs(_tiny(), "/tmp/x", size=(32,))
    assert info.value.argument == "size"
    assert issubclass(ExportError, RuntimeError)


def test_cli_export_writes_both_graphs_and_prints_the_validation(tmp_path, capsys):
    from engine.cli.main import main
    from engine.model.weights import save_generator

    weights = save_generator(_tiny(), tmp_path / "tiny.safetensors")
    code = main(["export", "--model", str(weights), "--out", str(tmp_path / "out"),
                 "--frames", "2"])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0
    assert (tmp_path / "out" / STANDARD_FILE).is_file()
    assert (tmp_path / "out" / PLUGINS_FILE).is_file()
    assert "onnx.checker (full): ok" in out and "TensorRT operator audit: ok" in out
    assert "tryon::patch_attention" in out and "standard, onnxruntime CPU" in out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--size", "256by192"], "--size: expected HEIGHTxWIDTH"),
        (["--size", "40x32"], "height/width"),
        (["--precision", "fp16", "--frames", "0"], "frames: expected an int >= 1"),
    ],
)
def test_cli_export_refuses_bad_arguments(tmp_path, capsys, argv, message):
    from engine.cli.main import main
    from engine.model.weights import save_generator

    weights = save_generator(_tiny(), tmp_path / "tiny.safetensors")
    code = main(["export", "--model", str(weights), "--out", str(tmp_path / "out"), *argv])
    assert code == 1 and message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


@pytest.mark.skipif(
    __import__("importlib").util.find_spec("tensorrt") is not None,
    reason="TensorRT is installed here",
)
def test_cli_tensorrt_export_without_tensorrt_says_how_to_get_it(tmp_path, capsys):
    from engine.cli.main import main

    code = main(["export", "--format", "tensorrt", "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 1 and "pip install" in err and "tensorrt" in err
    assert "Traceback" not in err and not (tmp_path / "out").exists()


@pytest.fixture
def no_tracing(monkeypatch):
    """Tracing fails the test: destination errors must come before it."""
    import export.onnx_export as onnx_export

    def traced(*args, **kwargs):
        raise AssertionError("traced before the destination was checked")

    monkeypatch.setattr(onnx_export, "_traced", traced)


def test_export_refuses_an_unusable_destination_before_tracing(tmp_path, no_tracing):
    a_file = tmp_path / "a_file"
    a_file.write_text("not a directory")
    with pytest.raises(ExportError, match="is an existing file, not a directory"):
        export_graphs(_tiny(), a_file)
    with pytest.raises(ExportError, match="which is an existing file"):
        export_graphs(_tiny(), a_file / "sub")  # its parent is a file
    with pytest.raises(ExportError, match="is a directory, expected a file path"):
        export_onnx(_tiny(), tmp_path)
    with pytest.raises(ExportError, match="a_file' is an existing file, not a directory"):
        export_onnx(_tiny(), a_file / "model.onnx")  # its directory is a file
    assert a_file.read_text() == "not a directory"


def test_export_refuses_an_unwritable_directory_before_tracing(tmp_path, no_tracing,
                                                               monkeypatch):  # fmt: skip
    import export.onnx_export as onnx_export

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    # root may write anywhere, so an unwritable directory is simulated where the check writes
    monkeypatch.setattr(onnx_export.tempfile, "NamedTemporaryFile", refuse)
    with pytest.raises(ExportError, match="is not writable: Permission denied"):
        export_graphs(_tiny(), tmp_path / "out")
    with pytest.raises(ExportError, match="is not writable: Permission denied"):
        export_onnx(_tiny(), tmp_path / "model.onnx")
    monkeypatch.setattr(onnx_export.Path, "mkdir", refuse)
    with pytest.raises(ExportError, match="cannot be created: Permission denied"):
        export_graphs(_tiny(), tmp_path / "new" / "out")


def test_cli_export_to_a_file_is_one_error_line(tmp_path, capsys, no_tracing):
    from engine.cli.main import main

    a_file = tmp_path / "a_file"
    a_file.write_text("")
    assert main(["export", "--out", str(a_file)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: output directory") and "existing file" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
