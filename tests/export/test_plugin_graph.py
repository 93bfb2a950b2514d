"""export.plugin_graph on any module with named inputs and outputs (not only the generator): the
markers are recorded, the standard graph drops them, the plugins graph has one node per head and
per composite and no reference subgraph left, and both compute what the module computes; names
that do not match are refused."""

import collections

import numpy as np
import onnx
import pytest
import torch
from torch import nn

from engine.errors import ExportError
from engine.model.mpdt_generator import INPUT_NAMES, OUTPUT_NAMES, MPDTConfig, MPDTGenerator
from engine.model.mpdt_generator import example_inputs as generator_inputs
from export.onnx_export import OPSET, simplify_graph, validate_graph
from export.plugin_graph import (
    MarkedGenerator,
    MarkedModule,
    evaluate_plugins_graph,
    insert_plugins,
    plugin_nodes,
    strip_markers,
    trace_marked,
)
from kernels.composite import composite_ref
from kernels.patch_attention import patch_attention_ref

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxsim")

PATCHES = ((4, 4), (2, 2))  # two heads
NAMES = ("q", "k", "v", "omega", "cloth", "rendered", "cloth_mask", "background",
         "background_mask")  # fmt: skip
OUTPUTS = ("image", "mixed")  # not the order of the module's dict


class Toy(nn.Module):
    """Two chained attentions (the second reads the first: two plugin levels) and a composite
    whose result is returned as it is (the exporter adds an Identity)."""

    def __init__(self) -> None:
        super().__init__()
        self.proj = nn.Conv2d(3, 3, 1)

    def forward(self, q, k, v, omega, cloth, rendered, cloth_mask, background, background_mask,
                *, scale: float = 1.0):  # fmt: skip
        att = patch_attention_ref(q * scale, k, v, PATCHES, key_mask=omega > 0.5)
        att = patch_attention_ref(att, k, v, PATCHES)
        image = composite_ref(cloth, torch.sigmoid(self.proj(rendered)), cloth_mask, background,
                              background_mask)  # fmt: skip
        return {"mixed": att + 1.0, "image": image}


class Pair(nn.Module):
    def forward(self, x):
        return x, x + 1.0


def _inputs(seed=0):
    g = torch.Generator().manual_seed(seed)
    qkv = {n: torch.randn((1, 2, 4, 4, 4), generator=g) for n in ("q", "k", "v")}
    images = {n: torch.rand((1, 3, 8, 8), generator=g) for n in ("cloth", "rendered",
                                                                  "background")}  # fmt: skip
    masks = {n: (torch.rand((1, 1, 8, 8), generator=g) > 0.5).float()
             for n in ("cloth_mask", "background_mask")}  # fmt: skip
    omega = torch.rand((1, 2, 1, 4, 4), generator=g)
    values = {**qkv, "omega": omega, **images, **masks}
    return {n: values[n] for n in NAMES}


@pytest.fixture(scope="module")
def toy():
    torch.manual_seed(0)
    return Toy().eval()


@pytest.fixture(scope="module")
def traced(toy):
    marked = MarkedModule(toy, NAMES, OUTPUTS, scale=2.0)
    proto, calls = trace_marked(marked, _inputs(), opset=OPSET)
    return simplify_graph(proto), calls


def _expected(toy, inputs):
    with torch.no_grad():
        out = toy(*inputs.values(), scale=2.0)
    return [out[name].numpy() for name in OUTPUTS]


def test_calls_are_recorded_with_graph_names(traced):
    proto, calls = traced
    assert [c.kind for c in calls] == ["patch_attention", "patch_attention", "composite"]
    assert set(calls[0].inputs) == {"q", "k", "v", "key_mask"}
    assert set(calls[1].inputs) == {"q", "k", "v"}  # no mask: the plugin gets all-ones
    assert calls[0].patch_sizes == PATCHES and calls[0].shapes["q"] == (1, 2, 4, 4, 4)
    names = {o.name for o in proto.graph.output}
    assert [o.name for o in proto.graph.output[:2]] == list(OUTPUTS)
    assert all(c.output in names and set(c.inputs.values()) <= names for c in calls)


def test_standard_graph_drops_the_markers(toy, traced):
    import onnxruntime as ort

    proto, _ = traced
    standard = strip_markers(proto, OUTPUTS)
    assert [o.name for o in standard.graph.output] == list(OUTPUTS)
    assert [i.name for i in standard.graph.input] == list(NAMES)
    validate_graph(standard, plugins=False)
    session = ort.InferenceSession(standard.SerializeToString(),
                                   providers=["CPUExecutionProvider"])  # fmt: skip
    inputs = _inputs(seed=3)
    got = session.run(list(OUTPUTS), {k: v.numpy() for k, v in inputs.items()})
    for value, ref in zip(got, _expected(toy, inputs), strict=True):
        np.testing.assert_allclose(value, ref, atol=1e-5, rtol=0)


def test_plugins_graph_replaces_every_call(toy, traced):
    proto, calls = traced
    plugins = insert_plugins(proto, calls, OUTPUTS)
    validate_graph(plugins, plugins=True)
    kinds = collections.Counter(n.op_type for n in plugin_nodes(plugins))
    assert kinds == {"patch_attention": 2 * len(PATCHES), "composite": 1}
    ops = collections.Counter(n.op_type for n in plugins.graph.node if not n.domain)
    assert ops["Softmax"] == 0 and ops["MatMul"] == 0  # the reference subgraphs are gone
    assert [o.name for o in plugins.graph.output] == list(OUTPUTS)
    heads = [n for n in plugin_nodes(plugins) if n.op_type == "patch_attention"]
    attrs = [{a.name: onnx.helper.get_attribute_value(a) for a in n.attribute} for n in heads]
    assert sorted((a["patch_h"], a["patch_w"], a["channel_offset"]) for a in attrs) == [
        (2, 2, 2), (2, 2, 2), (4, 4, 0), (4, 4, 0)
    ]  # fmt: skip
    for seed in (3, 4):  # not only the traced inputs
        inputs = _inputs(seed)
        got = evaluate_plugins_graph(plugins, {k: v.numpy() for k, v in inputs.items()})
        for value, ref in zip(got, _expected(toy, inputs), strict=True):
            np.testing.assert_allclose(value, ref, atol=1e-5, rtol=0)


def test_mismatched_names_are_refused(toy, traced):
    proto, calls = traced
    with pytest.raises(ExportError, match="outputs start with"):
        strip_markers(proto)  # the generator's output names
    with pytest.raises(ExportError, match="outputs start with"):
        insert_plugins(proto, calls, ("mixed", "image"))
    with pytest.raises(ExportError, match="no example tensor"):
        trace_marked(MarkedModule(toy, NAMES, OUTPUTS), {"q": torch.zeros(1)}, opset=OPSET)
    inputs = _inputs()
    with pytest.raises(ExportError, match=r"returned \['image', 'mixed'\], expected"):
        MarkedModule(toy, NAMES, ("image", "other"))(*inputs.values())
    with pytest.raises(ExportError, match="returned 2 outputs, expected 3"):
        MarkedModule(Pair(), ("x",), ("a", "b", "c"))(torch.zeros(2))
    out = MarkedModule(Pair(), ("x",), ("a", "b"))(torch.zeros(2))
    assert len(out) == 2 and float(out[1][0]) == 1.0  # a tuple result, no reference call
    with pytest.raises(ExportError, match="at least one"):
        MarkedModule(toy, NAMES, ())


def test_the_whole_generator_is_still_the_default():
    torch.manual_seed(0)
    cfg = MPDTConfig(height=16, width=16, frames=2, channels=8, blocks=1, head_divisors=(1, 2))
    model = MPDTGenerator(cfg).eval()
    proto, calls = trace_marked(model, generator_inputs(model, 2), opset=OPSET)
    assert [i.name for i in proto.graph.input] == list(INPUT_NAMES)
    assert [o.name for o in proto.graph.output[:3]] == list(OUTPUT_NAMES)
    kinds = collections.Counter(c.kind for c in calls)
    assert kinds == {"patch_attention": 2 * cfg.blocks, "composite": 1}
    marked = MarkedGenerator(model)
    assert marked.generator is model and marked.call_kwargs == {"impl": "reference"}
    assert any(n.name.startswith("/generator/") for n in proto.graph.node)  # names as before
