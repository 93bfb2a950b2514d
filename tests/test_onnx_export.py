import collections

import onnx
import pytest
import torch

from engine.errors import ExportError, InputError
from engine.mpdt import INPUT_NAMES, OUTPUT_NAMES, MPDTConfig, MPDTGenerator
from export.onnx_export import FP32_MAX_REL_ERROR, export_onnx
from export.tensorrt_onnx_ops import TENSORRT_ONNX_OPS, audit

TINY = dict(height=32, width=32, frames=2, channels=8, blocks=1)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    torch.manual_seed(0)
    model = MPDTGenerator(MPDTConfig(**TINY))
    path, parity = export_onnx(model, tmp_path_factory.mktemp("onnx") / "tiny.onnx", frames=3)
    return model, onnx.load(str(path)), parity


def test_names_shapes_and_opset(exported):
    _, proto, _ = exported
    assert [i.name for i in proto.graph.input] == list(INPUT_NAMES)
    assert [o.name for o in proto.graph.output] == list(OUTPUT_NAMES)
    dims = {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim] for v in proto.graph.input}
    assert dims["cloth"] == [1, 3, 4, 32, 32] and dims["pose"][2] == 35
    out_dims = [[d.dim_value for d in o.type.tensor_type.shape.dim] for o in proto.graph.output]
    assert out_dims == [[1, 3, 3, 32, 32], [1, 3, 3, 32, 32], [1, 3, 1, 32, 32]]
    assert max(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")) >= 17


def test_every_op_parses_in_tensorrt(exported):
    _, proto, _ = exported
    assert audit(proto) == []
    ops = collections.Counter(n.op_type for n in proto.graph.node)
    assert set(ops) <= TENSORRT_ONNX_OPS
    assert "Col2Im" not in ops and "ScatterND" not in ops  # GridSample: 4-D only (audited)
    assert ops["Softmax"] >= 1 and ops["MatMul"] >= 1  # the attention is really in the graph


def test_onnxruntime_matches_pytorch(exported):
    _, _, parity = exported
    assert parity.worst_rel < FP32_MAX_REL_ERROR
    assert set(parity.max_rel) == set(OUTPUT_NAMES)


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


def test_bad_arguments():
    with pytest.raises(InputError):
        export_onnx("not a model", "/tmp/x.onnx")
    with pytest.raises(InputError):
        export_onnx(MPDTGenerator(MPDTConfig(**TINY)), "/tmp/x.onnx", frames=0)
    assert issubclass(ExportError, RuntimeError)
