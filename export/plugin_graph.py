"""Both ONNX graphs from one trace: the *standard* graph and the *plugins* graph.

A module being exported (the whole generator, or the streaming graphs' window of
:mod:`export.streaming_graphs`) calls the plain references
:func:`kernels.patch_attention.patch_attention_ref` and :func:`kernels.composite.composite_ref`
(the generator's ``impl="reference"``).
onnx-simplifier must see the graph before any custom node goes in (it cannot infer shapes or fold
constants past an op it does not know), so:

1. **trace with boundary markers** (:func:`trace_marked`): :class:`MarkedModule` (any module
   with named inputs and outputs; :class:`MarkedGenerator` for the whole generator) runs the
   module under a per-thread profile hook (``sys.setprofile``; nothing in the model or in any
   module is replaced) that records each call of the two references: its tensor arguments and
   its result. These tensors are returned as extra outputs, so the traced graph names them;
2. **simplify** that standard-ops-only graph (the markers are graph outputs: onnx-simplifier keeps
   them, and the call boundaries survive as named tensors);
3. **standard graph** (:func:`strip_markers`): drop the marker outputs and every node only they
   needed; **plugins graph** (:func:`insert_plugins`): for each recorded call, custom nodes in the
   ``tryon`` domain computing the call's result from the call's input tensors; the reference
   subgraph, now unused, is removed.

Plugin nodes (TensorRT's ONNX parser maps op type + the ``plugin_namespace`` attribute to a
registered plugin; ``aot = 1`` selects its ahead-of-time implementation):

- ``tryon::patch_attention``, **one node per head**: inputs ``q, k, v`` (B, T, C, h, w) and the
  key mask (B, T, 1, h, w) cast to q's dtype (all ones where the call had no mask); attributes
  ``patch_h, patch_w, channel_offset, head_channels``; output (B, T, head_channels, h, w). A
  standard ``Concat`` (axis 2) joins the heads, as in the reference.
- ``tryon::composite``, one node per call: inputs ``cloth, rendered, cloth_mask, background,
  background_mask`` (N, 3|1, H, W) cast to rendered's dtype; output (N, 3, H, W).

:func:`evaluate_plugins_graph` runs a plugins graph on CPU (onnxruntime for the standard ops, the
kernels' torch references for the ``tryon`` nodes), which is how its parity is checked here.
"""

from __future__ import annotations

import copy
import io
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper, numpy_helper
from torch import nn

from engine.errors import ExportError
from engine.model.mpdt_generator import INPUT_NAMES, OUTPUT_NAMES
from export.tensorrt_plugins import COMPOSITE_OP, PATCH_ATTENTION_OP, PLUGIN_NAMESPACE
from kernels.composite import composite_ref
from kernels.patch_attention import patch_attention_ref

__all__ = [
    "Call",
    "MarkedModule",
    "MarkedGenerator",
    "trace_marked",
    "strip_markers",
    "insert_plugins",
    "plugin_nodes",
    "evaluate_plugins_graph",
]

ATTENTION_ROLES = ("q", "k", "v", "key_mask")
COMPOSITE_ROLES = ("cloth", "rendered", "cloth_mask", "background", "background_mask")
_TARGETS = {patch_attention_ref.__code__: PATCH_ATTENTION_OP, composite_ref.__code__: COMPOSITE_OP}
_ONNX_TYPES = {torch.float32: TensorProto.FLOAT, torch.float16: TensorProto.FLOAT16,
               torch.bool: TensorProto.BOOL}  # fmt: skip


@dataclass
class Call:
    """One call of a reference function recorded during the trace.

    Attributes:
        kind: ``"patch_attention"`` or ``"composite"``.
        inputs: role -> graph tensor name (in the trace: index of the marker).
        output: graph tensor name of the result (in the trace: index of the marker).
        shapes, dtypes: role (and ``"output"``) -> shape / torch dtype, as traced.
        patch_sizes: the heads' (ph, pw) for attention calls.
    """

    kind: str
    inputs: dict[str, Any]
    output: Any
    shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)
    dtypes: dict[str, torch.dtype] = field(default_factory=dict)
    patch_sizes: tuple[tuple[int, int], ...] = ()


def _new_call(kind: str, args: dict[str, Any], result: torch.Tensor) -> Call:
    roles = ATTENTION_ROLES if kind == PATCH_ATTENTION_OP else COMPOSITE_ROLES
    tensors = {r: args[r] for r in roles if isinstance(args.get(r), torch.Tensor)}
    if kind == COMPOSITE_OP and (
        args.get("feather", 0.0) != 0.0
        or args.get("out_dtype") is not None
        or args.get("out_layout", "nchw") != "nchw"
    ):
        raise ExportError("only composites without feathering, in rendered's dtype, in NCHW "
                          "can become tryon::composite plugins")  # fmt: skip
    call = Call(kind, tensors, result)
    for role, t in (*tensors.items(), ("output", result)):
        call.shapes[role], call.dtypes[role] = tuple(int(d) for d in t.shape), t.dtype
    if kind == PATCH_ATTENTION_OP:
        call.patch_sizes = tuple((int(ph), int(pw)) for ph, pw in args["patch_sizes"])
    return call


class _Recorder:
    """``sys.setprofile`` hook recording the calls of the reference functions (this thread)."""

    def __init__(self, previous: Any) -> None:
        self.previous = previous
        self.calls: list[Call] = []
        self._open: dict[Any, tuple[str, dict[str, Any]]] = {}

    def __call__(self, frame: Any, event: str, arg: Any) -> None:
        if event == "call" and frame.f_code in _TARGETS:
            self._open[frame] = (_TARGETS[frame.f_code], dict(frame.f_locals))
        elif event == "return" and frame in self._open:
            kind, args = self._open.pop(frame)
            self.calls.append(_new_call(kind, args, arg))
        if self.previous is not None:
            self.previous(frame, event, arg)


class MarkedModule(nn.Module):
    """Runs ``module`` and returns its outputs followed by every distinct tensor at a boundary of
    a recorded reference call (the markers); :attr:`calls` then holds the calls of the last run,
    with marker indices in place of tensors.

    Args:
        module: called as ``module(*inputs, **call_kwargs)``, inputs in ``input_names`` order; it
            must reach the references (e.g. ``impl="reference"``) so they can be recorded. Its
            result is a mapping with the keys ``output_names``, a tuple / list in that order, or
            one tensor (one name).
        input_names, output_names: the graph's input and output names, in order.
        call_kwargs: keyword arguments of every call.

    Raises:
        ExportError: (at :meth:`forward`) the result does not match ``output_names``.
    """

    _child = "module"  # the wrapped module's attribute: the prefix of the traced node names

    def __init__(
        self,
        module: nn.Module,
        input_names: Sequence[str],
        output_names: Sequence[str],
        **call_kwargs: Any,
    ) -> None:
        super().__init__()
        if not input_names or not output_names:
            raise ExportError("a marked module needs at least one input and one output name")
        self.add_module(self._child, module)
        self.input_names = tuple(input_names)
        self.output_names = tuple(output_names)
        self.call_kwargs = call_kwargs
        self.calls: list[Call] = []

    def _outputs(self, out: Any) -> tuple[torch.Tensor, ...]:
        names = self.output_names
        if isinstance(out, Mapping):
            if set(out) != set(names):
                raise ExportError(f"the module returned {sorted(out)}, expected {list(names)}")
            return tuple(out[name] for name in names)
        values = (out,) if isinstance(out, torch.Tensor) else tuple(out)
        if len(values) != len(names):
            raise ExportError(f"the module returned {len(values)} outputs, expected "
                              f"{len(names)} ({', '.join(names)})")  # fmt: skip
        return values

    def forward(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        previous = sys.getprofile()
        recorder = _Recorder(previous)
        sys.setprofile(recorder)
        try:
            out = getattr(self, self._child)(*inputs, **self.call_kwargs)
        finally:
            sys.setprofile(previous)
        outputs = self._outputs(out)
        markers: list[torch.Tensor] = []

        def index(t: torch.Tensor) -> int:
            for i, m in enumerate(markers):
                if m is t:
                    return i
            markers.append(t)
            return len(markers) - 1

        for call in recorder.calls:
            call.inputs = {role: index(t) for role, t in call.inputs.items()}
            call.output = index(call.output)
        self.calls = recorder.calls
        return (*outputs, *markers)


class MarkedGenerator(MarkedModule):
    """:class:`MarkedModule` of the whole generator: inputs :data:`INPUT_NAMES`, outputs
    :data:`OUTPUT_NAMES`, called with ``impl="reference"`` (standard ops, traceable); the model
    is its ``generator``."""

    _child = "generator"

    def __init__(self, generator: nn.Module) -> None:
        super().__init__(generator, INPUT_NAMES, OUTPUT_NAMES, impl="reference")


def trace_marked(
    module: nn.Module, inputs: Mapping[str, torch.Tensor], *, opset: int
) -> tuple[onnx.ModelProto, list[Call]]:
    """Trace ``module`` (TorchScript exporter, static shapes) with its boundary markers as extra
    graph outputs; returns the graph and the calls with tensor names.

    ``module``: a :class:`MarkedModule` (its input and output names name the graph's), or the
    whole generator (wrapped in :class:`MarkedGenerator`). ``inputs``: name -> example tensor
    for every input name. Strip the markers with :func:`strip_markers` or replace their calls
    with :func:`insert_plugins`, passing the same output names.

    Raises:
        ExportError: an input is missing, or the markers do not match the recorded calls.
    """
    marked = module if isinstance(module, MarkedModule) else MarkedGenerator(module)
    missing = [name for name in marked.input_names if name not in inputs]
    if missing:
        raise ExportError(f"no example tensor for the inputs {missing}")
    marked = marked.eval()
    buffer = io.BytesIO()
    with torch.no_grad():
        torch.onnx.export(
            marked,
            tuple(inputs[name] for name in marked.input_names),
            buffer,
            input_names=list(marked.input_names),
            output_names=list(marked.output_names),
            opset_version=opset,
            do_constant_folding=True,
            dynamo=False,
        )
    proto = onnx.load_from_string(buffer.getvalue())
    names = [o.name for o in proto.graph.output[len(marked.output_names) :]]
    if len(names) != 1 + max((i for c in marked.calls for i in (c.output, *c.inputs.values())),
                             default=-1):  # fmt: skip
        raise ExportError(f"the trace has {len(names)} marker outputs for {len(marked.calls)} "
                          "recorded calls")  # fmt: skip
    for call in marked.calls:
        call.inputs = {role: names[i] for role, i in call.inputs.items()}
        call.output = names[call.output]
    return proto, marked.calls


def _marker_start(graph: onnx.GraphProto, output_names: Sequence[str]) -> int:
    """Index of the first marker output: the graph's outputs must start with ``output_names``."""
    got = [o.name for o in graph.output[: len(output_names)]]
    if got != list(output_names):
        raise ExportError(f"the graph's outputs start with {got}, expected {list(output_names)}")
    return len(output_names)


def _prune(graph: onnx.GraphProto) -> None:
    """Remove the nodes, initializers and value infos no graph output needs (nodes in
    topological order)."""
    needed = {o.name for o in graph.output}
    kept = []
    for node in reversed(graph.node):
        if any(o in needed for o in node.output):
            kept.append(node)
            needed.update(i for i in node.input if i)
    kept.reverse()
    initializers = [i for i in graph.initializer if i.name in needed]
    infos = [v for v in graph.value_info if v.name in needed]
    for container, items in ((graph.node, kept), (graph.initializer, initializers),
                             (graph.value_info, infos)):  # fmt: skip
        items = list(items)
        del container[:]
        container.extend(items)


def _toposort(graph: onnx.GraphProto) -> None:
    """Order the nodes so every input is produced before it is read (Kahn's algorithm)."""
    producer = {o: i for i, n in enumerate(graph.node) for o in n.output if o}
    deps = [{producer[x] for x in n.input if x in producer} for n in graph.node]
    users: dict[int, list[int]] = {}
    for i, d in enumerate(deps):
        for j in d:
            users.setdefault(j, []).append(i)
    remaining = [len(d) for d in deps]
    ready = [i for i, r in enumerate(remaining) if r == 0]
    order = []
    while ready:
        i = ready.pop(0)
        order.append(i)
        for u in users.get(i, ()):
            remaining[u] -= 1
            if remaining[u] == 0:
                ready.append(u)
    if len(order) != len(graph.node):
        raise ExportError("the spliced graph has a cycle")
    nodes = [copy.deepcopy(graph.node[i]) for i in order]
    del graph.node[:]
    graph.node.extend(nodes)


def _resolve_identities(graph: onnx.GraphProto, name: str) -> str:
    """The tensor an Identity chain ending in ``name`` copies (the exporter adds Identity nodes
    when one tensor is returned twice)."""
    producer = {o: n for n in graph.node for o in n.output}
    while name in producer and producer[name].op_type == "Identity":
        name = producer[name].input[0]
    return name


def strip_markers(
    proto: onnx.ModelProto, output_names: Sequence[str] = OUTPUT_NAMES
) -> onnx.ModelProto:
    """The standard graph: ``proto`` (outputs ``output_names``, then the markers) without its
    marker outputs and what only they needed."""
    model = copy.deepcopy(proto)
    del model.graph.output[_marker_start(model.graph, output_names) :]
    _prune(model.graph)
    return model


def _value_info(name: str, dtype: torch.dtype, shape: Iterable[int]) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, _ONNX_TYPES[dtype], list(shape))


def _cast(
    call: Call,
    names: dict[str, str],
    role: str,
    dtype: torch.dtype,
    prefix: str,
    nodes: list[onnx.NodeProto],
    infos: dict[str, onnx.ValueInfoProto],
) -> str:
    """The name of ``call``'s ``role`` tensor in ``dtype``, adding a Cast node when needed."""
    if call.dtypes[role] == dtype:
        return names[role]
    name = f"{prefix}_{role}_cast"
    nodes.append(helper.make_node("Cast", [names[role]], [name], name=name,
                                  to=_ONNX_TYPES[dtype]))  # fmt: skip
    infos[name] = _value_info(name, dtype, call.shapes[role])
    return name


def insert_plugins(
    proto: onnx.ModelProto, calls: list[Call], output_names: Sequence[str] = OUTPUT_NAMES
) -> onnx.ModelProto:
    """The plugins graph: ``proto`` (simplified; outputs ``output_names``, then the markers) with
    every recorded call computed by ``tryon`` plugin nodes (see module docstring), markers
    removed.

    Raises:
        ExportError: the outputs do not start with ``output_names``, or a plugin node ended up
            unused (its call boundary was not where the graph reads the result).
    """
    model = copy.deepcopy(proto)
    graph = model.graph
    start = _marker_start(graph, output_names)
    nodes: list[onnx.NodeProto] = []
    infos: dict[str, onnx.ValueInfoProto] = {}
    consts: dict[str, onnx.TensorProto] = {}
    expected = 0
    for i, call in enumerate(calls):
        out = _resolve_identities(graph, call.output)
        names = {r: _resolve_identities(graph, n) for r, n in call.inputs.items()}
        for node in graph.node:  # disconnect the reference subgraph: it becomes dead code
            node.output[:] = [f"{out}__reference" if o == out else o for o in node.output]
        common = {"plugin_namespace": PLUGIN_NAMESPACE, "aot": 1}
        if call.kind == PATCH_ATTENTION_OP:
            dtype = call.dtypes["q"]
            b, t, c, h, w = call.shapes["q"]
            if "key_mask" in names:
                mask = _cast(call, names, "key_mask", dtype, f"tryon_{i}", nodes, infos)
            else:
                mask = f"tryon_all_keys_{b}x{t}x{h}x{w}_{str(dtype).removeprefix('torch.')}"
                consts[mask] = numpy_helper.from_array(
                    np.ones((b, t, 1, h, w), dtype=torch.empty((), dtype=dtype).numpy().dtype),
                    mask,
                )
            cn = c // len(call.patch_sizes)
            heads = []
            for j, (ph, pw) in enumerate(call.patch_sizes):
                name = f"tryon_patch_attention_{i}_head{j}"
                nodes.append(helper.make_node(
                    PATCH_ATTENTION_OP, [names["q"], names["k"], names["v"], mask], [name],
                    name=name, domain=PLUGIN_NAMESPACE, patch_h=ph, patch_w=pw,
                    channel_offset=j * cn, head_channels=cn, **common,
                ))  # fmt: skip
                infos[name] = _value_info(name, dtype, (b, t, cn, h, w))
                heads.append(name)
            nodes.append(helper.make_node("Concat", heads, [out], name=f"tryon_heads_{i}",
                                          axis=2))  # fmt: skip
            expected += len(heads)
        else:
            dtype = call.dtypes["rendered"]
            inputs = [_cast(call, names, role, dtype, f"tryon_{i}", nodes, infos)
                      for role in COMPOSITE_ROLES]  # fmt: skip
            nodes.append(helper.make_node(COMPOSITE_OP, inputs, [out], name=f"tryon_composite_{i}",
                                          domain=PLUGIN_NAMESPACE, **common))  # fmt: skip
            expected += 1
        for role, name in names.items():
            infos.setdefault(name, _value_info(name, call.dtypes[role], call.shapes[role]))
        infos[out] = _value_info(out, call.dtypes["output"], call.shapes["output"])
    graph.node.extend(nodes)
    graph.initializer.extend(consts.values())
    del graph.output[start:]
    _toposort(graph)
    _prune(graph)
    known = {v.name for v in graph.value_info}
    graph.value_info.extend(v for n, v in infos.items() if n not in known)
    _prune(graph)
    model.opset_import.append(helper.make_opsetid(PLUGIN_NAMESPACE, 1))
    got = len(plugin_nodes(model))
    if got != expected:
        raise ExportError(f"{expected - got} of {expected} plugin nodes are unused: a recorded "
                          "call's result is not what the graph reads")  # fmt: skip
    return model


def plugin_nodes(model: onnx.ModelProto) -> list[onnx.NodeProto]:
    """The ``tryon``-domain nodes of ``model``."""
    return [n for n in model.graph.node if n.domain == PLUGIN_NAMESPACE]


def _attrs(node: onnx.NodeProto) -> dict[str, Any]:
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _run_plugin(node: onnx.NodeProto, values: list[np.ndarray]) -> np.ndarray:
    """One ``tryon`` node by its kernel's torch reference (the plugins' semantics)."""
    tensors = [torch.from_numpy(np.array(v)) for v in values]  # writable copies
    if node.op_type == PATCH_ATTENTION_OP:
        a = _attrs(node)
        q, k, v, mask = tensors
        heads = slice(a["channel_offset"], a["channel_offset"] + a["head_channels"])
        out = patch_attention_ref(q[:, :, heads], k[:, :, heads], v[:, :, heads],
                                  [(a["patch_h"], a["patch_w"])], key_mask=mask > 0)  # fmt: skip
    elif node.op_type == COMPOSITE_OP:
        out = composite_ref(*tensors)
    else:
        raise ExportError(f"unknown plugin node {node.op_type}")
    return out.numpy()


def evaluate_plugins_graph(
    model: onnx.ModelProto, feeds: dict[str, np.ndarray]
) -> list[np.ndarray]:
    """Run a plugins graph on CPU and return its outputs (graph order).

    onnxruntime runs the standard ops of an *open* copy of the graph (each plugin node removed,
    its inputs made graph outputs, its output a graph input); the plugin nodes run through the
    torch references, in dependency order: each onnxruntime run makes the next level of plugin
    inputs exact (the first reads zeros for plugin results it does not use yet).
    """
    import onnxruntime as ort

    plugins = plugin_nodes(model)
    infos = {v.name: v for v in (*model.graph.value_info, *model.graph.input)}
    open_model = copy.deepcopy(model)
    graph = open_model.graph
    keep = [n for n in graph.node if n.domain != PLUGIN_NAMESPACE]
    del graph.node[:]
    graph.node.extend(keep)
    plugin_outputs = [n.output[0] for n in plugins]
    plugin_inputs = sorted({i for n in plugins for i in n.input} - {i.name for i in graph.input}
                           - {i.name for i in graph.initializer})  # fmt: skip
    constants = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    graph.input.extend(infos[name] for name in plugin_outputs)
    graph.output.extend(infos[name] for name in plugin_inputs)
    _prune(graph)  # the constants only plugin nodes read
    del open_model.opset_import[:]
    open_model.opset_import.extend(o for o in model.opset_import if o.domain != PLUGIN_NAMESPACE)
    session = ort.InferenceSession(open_model.SerializeToString(),
                                   providers=["CPUExecutionProvider"])  # fmt: skip

    depth: dict[str, int] = {}  # plugin nodes on the longest path to each tensor
    for node in model.graph.node:  # topologically sorted
        d = max((depth.get(i, 0) for i in node.input), default=0)
        for o in node.output:
            depth[o] = d + (node.domain == PLUGIN_NAMESPACE)
    levels = sorted({depth[n.output[0]] for n in plugins})
    known = {}
    for name in plugin_outputs:
        tensor_type = infos[name].type.tensor_type
        shape = [d.dim_value for d in tensor_type.shape.dim]
        known[name] = np.zeros(shape, dtype=helper.tensor_dtype_to_np_dtype(tensor_type.elem_type))
    names = [o.name for o in graph.output]
    for lvl in levels:
        values = constants | feeds | dict(zip(names, session.run(names, feeds | known),
                                              strict=True))  # fmt: skip
        for node in plugins:
            if depth[node.output[0]] == lvl:
                known[node.output[0]] = _run_plugin(node, [values[i] for i in node.input])
    outputs = session.run([o.name for o in model.graph.output], feeds | known)
    return outputs
