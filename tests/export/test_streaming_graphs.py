"""export_streaming_graphs on the tiny generator: encoder.onnx and window.onnx with their names,
static shapes, onnx.checker, the TensorRT operator audit and onnxruntime parity; the window
graph's ``newest`` slot is a real input (not a traced constant). With ``plugins=True``:
window.plugins.onnx (fp32 and fp16) with one tryon node per head and per composite, no reference
attention left, the window's I/O, and CPU parity with the PyTorch window on every slot."""

import collections

import numpy as np
import onnx
import pytest
import torch

import export.streaming_graphs as streaming
from engine.errors import ExportError, InputError
from engine.model.mpdt_generator import FEATURE_NAMES, INPUT_NAMES, OUTPUT_NAMES
from engine.model.weights import load_generator
from export.plugin_graph import evaluate_plugins_graph, plugin_nodes
from export.streaming_graphs import (
    NEWEST_NAMES,
    RING_NAMES,
    WINDOW_INPUT_NAMES,
    FrameEncoder,
    WindowDecoder,
    example_window_inputs,
    export_streaming_graphs,
    plugins_file,
)
from export.tensorrt_onnx_ops import audit
from export.tensorrt_plugins import PLUGIN_NAMESPACE
from tests.runtime_fixtures import make_lively, tiny_model_file

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxsim")

T = 2


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return make_lively(load_generator(tiny_model_file(tmp_path_factory.mktemp("tiny"))))


@pytest.fixture(scope="module")
def exported(model, tmp_path_factory):
    out_dir = tmp_path_factory.mktemp("graphs") / "nested"  # created by the export
    errors = export_streaming_graphs(model, out_dir, frames=T)
    return out_dir, errors


def _shapes(values):
    return {
        v.name: tuple(d.dim_value if d.HasField("dim_value") else d.dim_param
                      for d in v.type.tensor_type.shape.dim)
        for v in values
    }  # fmt: skip


def _session(path):
    import onnxruntime as ort

    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def test_both_graphs_are_written_and_verified(exported):
    out_dir, errors = exported
    assert set(errors) == {"encoder", "window"}
    assert all(0.0 <= e < 1e-4 for e in errors.values())
    for name in ("encoder", "window"):
        proto = onnx.load(str(out_dir / f"{name}.onnx"))
        onnx.checker.check_model(proto, full_check=True)
        assert audit(proto) == []


def test_names_and_static_shapes(model, exported):
    out_dir, _ = exported
    cfg = model.config
    h, w, c = cfg.height, cfg.width, cfg.channels
    fh, fw = cfg.feature_height, cfg.feature_width
    encoder = onnx.load(str(out_dir / "encoder.onnx")).graph
    window = onnx.load(str(out_dir / "window.onnx")).graph
    assert [v.name for v in encoder.input] == list(INPUT_NAMES)
    assert [v.name for v in encoder.output] == list(FEATURE_NAMES)
    assert [v.name for v in window.input] == list(WINDOW_INPUT_NAMES)
    assert [v.name for v in window.output] == list(OUTPUT_NAMES)
    assert WINDOW_INPUT_NAMES == RING_NAMES + ("newest",) + NEWEST_NAMES
    assert _shapes(encoder.input) == {
        "cloth": (1, 4, h, w), "pose": (1, cfg.pose_channels, h, w),
        "background": (1, 3, h, w), "background_mask": (1, 1, h, w),
    }  # fmt: skip
    assert _shapes(encoder.output) == {
        "cloth_features": (1, c, fh, fw), "pose_features": (1, c, fh, fw),
        "background_features": (1, c, fh, fw), "background_half": (1, c, h // 2, w // 2),
        "background_full": (1, c // 2, h, w), "omega": (1, 1, fh, fw),
    }  # fmt: skip
    assert _shapes(window.input) == {
        "cloth_features": (T, c, fh, fw), "pose_features": (T, c, fh, fw),
        "background_features": (T, c, fh, fw), "omega": (T, 1, fh, fw), "newest": (1,),
        "background_half": (1, c, h // 2, w // 2), "background_full": (1, c // 2, h, w),
        "cloth": (1, 4, h, w), "background": (1, 3, h, w), "background_mask": (1, 1, h, w),
    }  # fmt: skip
    assert _shapes(window.output) == {"tryon": (1, 3, h, w), "rendered": (1, 3, h, w),
                                      "cloth_mask": (1, 1, h, w)}  # fmt: skip
    types = {v.name: v.type.tensor_type.elem_type for v in window.input}
    assert types.pop("newest") == onnx.TensorProto.INT64
    assert set(types.values()) == {onnx.TensorProto.FLOAT}


def test_newest_selects_the_decoded_slot(model, exported):
    """The export traced slot T // 2; every slot must be decodable. Random ring features (the
    tiny model's encoder maps random frames to nearly equal features, whose slots would decode
    alike)."""
    out_dir, _ = exported
    session = _session(out_dir / "window.onnx")
    _, window_in = example_window_inputs(model, T, seed=5)
    g = torch.Generator().manual_seed(0)
    for name in ("cloth_features", "pose_features", "background_features"):
        window_in[name] = 3 * torch.randn(window_in[name].shape, generator=g)
    outputs = []
    for slot in range(T):
        feeds = {k: v.numpy() for k, v in window_in.items()}
        feeds["newest"] = np.array([slot], np.int64)
        got = session.run(list(OUTPUT_NAMES), feeds)
        with torch.no_grad():
            want = WindowDecoder(model)(*{**window_in, "newest": torch.tensor([slot])}.values())
        for value, ref in zip(got, want, strict=True):
            assert np.abs(value - ref.numpy()).max() <= 1e-5  # outputs in [0, 1]
        outputs.append(got)
    assert all(np.abs(a - b).max() > 1e-3 for a, b in zip(*outputs, strict=True))


def test_encoder_graph_on_other_inputs(model, exported):
    out_dir, _ = exported
    encoder_in, _ = example_window_inputs(model, 1, seed=9)
    got = _session(out_dir / "encoder.onnx").run(
        list(FEATURE_NAMES), {k: v.numpy() for k, v in encoder_in.items()}
    )
    with torch.no_grad():
        want = FrameEncoder(model)(*encoder_in.values())
    for value, ref in zip(got, want, strict=True):
        assert value.shape == tuple(ref.shape)
        assert np.abs(value - ref.numpy()).max() <= 1e-4 * max(np.abs(ref.numpy()).max(), 1)


def test_parity_failure_raises_export_error(model, tmp_path, monkeypatch):
    monkeypatch.setattr(streaming, "_export", lambda *args: None)
    monkeypatch.setattr(streaming, "_parity", lambda *args: 3e-3)
    with pytest.raises(ExportError, match="encoder.onnx differs from PyTorch"):
        export_streaming_graphs(model, tmp_path, frames=T)


@pytest.mark.parametrize(
    "kwargs, argument",
    [
        ({"frames": 0}, "frames"),
        ({"frames": -2}, "frames"),
        ({"frames": True}, "frames"),
        ({"frames": 2.0}, "frames"),
        ({"frames": T, "model": torch.nn.Identity()}, "model"),
        ({"frames": T, "model": "demo"}, "model"),
    ],
)
def test_bad_arguments_are_named(model, tmp_path, kwargs, argument):
    kwargs = {"model": model, **kwargs}
    with pytest.raises(InputError) as info:
        export_streaming_graphs(kwargs.pop("model"), tmp_path / "out", **kwargs)
    assert info.value.argument == argument
    assert not (tmp_path / "out").exists()  # rejected before writing anything


def test_fp16_graphs_are_strongly_typed_with_float32_io(model, tmp_path):
    errors = export_streaming_graphs(model, tmp_path, frames=T, precision="fp16")
    assert set(errors) == {"encoder", "window"} and max(errors.values()) < 2e-2
    for name in ("encoder", "window"):
        proto = onnx.load(str(tmp_path / f"{name}.onnx"))
        weights = {
            onnx.helper.tensor_dtype_to_np_dtype(t.data_type) for t in proto.graph.initializer
        }
        assert np.dtype("float16") in weights  # the fp16 convolutions
        io = [*proto.graph.input, *proto.graph.output]
        float_io = [v for v in io if v.type.tensor_type.elem_type != onnx.TensorProto.INT64]
        assert all(v.type.tensor_type.elem_type == onnx.TensorProto.FLOAT for v in float_io)


@pytest.fixture(scope="module", params=["fp32", "fp16"])
def exported_plugins(model, tmp_path_factory, request):
    out_dir = tmp_path_factory.mktemp(f"plugins-{request.param}")
    errors = export_streaming_graphs(model, out_dir, frames=T, precision=request.param,
                                     plugins=True)  # fmt: skip
    return request.param, out_dir, errors


def test_standard_export_writes_no_plugins_graph(exported):
    out_dir, errors = exported
    assert sorted(p.name for p in out_dir.iterdir()) == ["encoder.onnx", "window.onnx"]


def test_plugins_graph_is_written_for_the_window_only(exported_plugins):
    """The encoder calls no kernel reference (convolutions only): no encoder.plugins.onnx."""
    precision, out_dir, errors = exported_plugins
    names = {p.name for p in out_dir.iterdir()}
    assert names == {"encoder.onnx", "window.onnx", plugins_file("window")}
    assert set(errors) == {"encoder", "window", "window.plugins"}
    limit = 1e-4 if precision == "fp32" else 2e-2
    assert all(0.0 <= e < limit for e in errors.values()), errors


def test_window_plugins_graph_has_the_plugin_nodes_and_no_reference(model, exported_plugins):
    precision, out_dir, _ = exported_plugins
    proto = onnx.load(str(out_dir / plugins_file("window")))
    onnx.checker.check_model(proto, full_check=True)
    assert audit(proto) != [] and audit(proto, allowed_domains=(PLUGIN_NAMESPACE,)) == []
    cfg = model.config
    heads = len(cfg.patch_sizes)
    nodes = plugin_nodes(proto)
    kinds = collections.Counter(n.op_type for n in nodes)
    # two attentions per MPDT block (cloth, background), one node per head; one composite
    assert kinds == {"patch_attention": 2 * cfg.blocks * heads, "composite": 1}
    ops = collections.Counter(n.op_type for n in proto.graph.node if not n.domain)
    assert ops["Softmax"] == 0 and ops["MatMul"] == 0  # the reference subgraphs are gone
    standard = onnx.load(str(out_dir / "window.onnx"))
    standard_ops = collections.Counter(n.op_type for n in standard.graph.node)
    assert standard_ops["Softmax"] == 2 * cfg.blocks * heads and "composite" not in standard_ops
    cn = cfg.channels // heads
    elem = {v.name: v.type.tensor_type.elem_type for v in proto.graph.value_info}
    elem.update({t.name: t.data_type for t in proto.graph.initializer})  # the all-keys masks
    for node in nodes:
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        assert attrs["plugin_namespace"] == PLUGIN_NAMESPACE.encode() and attrs["aot"] == 1
        if node.op_type == "patch_attention":
            assert len(node.input) == 4
            assert attrs["head_channels"] == cn and attrs["channel_offset"] % cn == 0
            assert (attrs["patch_h"], attrs["patch_w"]) in cfg.patch_sizes
            # the MPDT blocks are an fp32 island of the fp16 export: fp32 plugins in both
            assert {elem[i] for i in node.input} == {onnx.TensorProto.FLOAT}
        else:
            assert len(node.input) == 5
    # the same inputs and outputs as window.onnx: the TensorRT runner binds either
    for part in ("input", "output"):
        assert [(v.name, v.type) for v in getattr(proto.graph, part)] == [
            (v.name, v.type) for v in getattr(standard.graph, part)
        ]
    float_io = [v.type.tensor_type.elem_type for v in (*proto.graph.input, *proto.graph.output)
                if v.name != "newest"]  # fmt: skip
    assert set(float_io) == {onnx.TensorProto.FLOAT}


def test_window_plugins_graph_matches_pytorch_on_every_slot(model, exported_plugins):
    """CPU evaluation (onnxruntime + the kernels' references for the tryon nodes) vs the float32
    PyTorch window on other inputs than the traced ones, every slot decoded."""
    precision, out_dir, _ = exported_plugins
    proto = onnx.load(str(out_dir / plugins_file("window")))
    _, window_in = example_window_inputs(model, T, seed=5)
    g = torch.Generator().manual_seed(0)
    for name in ("cloth_features", "pose_features", "background_features"):
        window_in[name] = 3 * torch.randn(window_in[name].shape, generator=g)
    limit = 1e-4 if precision == "fp32" else 2e-2
    for slot in range(T):
        inputs = {**window_in, "newest": torch.tensor([slot])}
        got = evaluate_plugins_graph(proto, {k: v.numpy() for k, v in inputs.items()})
        with torch.no_grad():
            want = WindowDecoder(model)(*inputs.values())
        for value, ref in zip(got, want, strict=True):
            assert value.dtype == np.float32 and value.shape == tuple(ref.shape)
            assert np.abs(value - ref.numpy()).max() < limit  # outputs in [0, 1]


def test_plugins_parity_failure_raises_export_error(model, tmp_path, monkeypatch):
    monkeypatch.setattr(streaming, "_export", lambda *args: None)
    monkeypatch.setattr(streaming, "_parity", lambda *args: 0.0)
    monkeypatch.setattr(streaming, "_export_plugins", lambda *args: None)
    monkeypatch.setattr(streaming, "_plugins_parity", lambda *args: float("nan"))
    with pytest.raises(ExportError, match="window.plugins.onnx differs from PyTorch"):
        export_streaming_graphs(model, tmp_path, frames=T, plugins=True)


@pytest.mark.parametrize("value", [1, "yes", None])
def test_bad_plugins_argument_is_named(model, tmp_path, value):
    with pytest.raises(InputError) as info:
        export_streaming_graphs(model, tmp_path / "out", frames=T, plugins=value)
    assert info.value.argument == "plugins"
    assert not (tmp_path / "out").exists()
