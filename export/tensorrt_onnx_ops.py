"""ONNX operators that TensorRT's ONNX parser accepts, for auditing exported graphs.

Source: the operator support matrix of onnx/onnx-tensorrt, ``docs/operators.md`` (the "Y" rows),
taken at the TensorRT 8.4 revision on purpose: later TensorRT releases (10.x, 11.x) only add
operators, so a graph made of these parses on every TensorRT the engine targets; the one later
addition we use (GridSample, 4-D only) is listed separately with its restriction. Restrictions
from that table that matter to us are noted beside the op; ``audit`` checks them where the graph
alone can tell.
"""

from __future__ import annotations

import onnx

__all__ = ["TENSORRT_ONNX_OPS", "audit"]

TENSORRT_ONNX_OPS = frozenset(
    [
        "Abs",
        "Acos",
        "Acosh",
        "Add",
        "And",
        "ArgMax",
        "ArgMin",
        "Asin",
        "Asinh",
        "Atan",
        "Atanh",
        "AveragePool",
        "BatchNormalization",
        "Cast",
        "Ceil",
        "Celu",
        "Clip",
        "Concat",
        "Constant",
        "ConstantOfShape",
        "Conv",
        "ConvTranspose",
        "Cos",
        "Cosh",
        "CumSum",
        "DepthToSpace",
        "DequantizeLinear",
        "Div",
        "Dropout",
        "Einsum",
        "Elu",
        "Equal",
        "Erf",
        "Exp",
        "Expand",
        "EyeLike",
        "Flatten",
        "Floor",
        "Gather",
        "GatherElements",
        "GatherND",
        "Gemm",
        "GlobalAveragePool",
        "GlobalLpPool",
        "GlobalMaxPool",
        "Greater",
        "GreaterOrEqual",
        "GRU",
        "HardSigmoid",
        "Identity",
        "If",
        "ImageScaler",
        "InstanceNormalization",
        "IsNaN",
        "LeakyRelu",
        "Less",
        "LessOrEqual",
        "Log",
        "LogSoftmax",
        "Loop",
        "LRN",
        "LSTM",
        "LpNormalization",
        "LpPool",
        "MatMul",
        "Max",
        "MaxPool",
        "Mean",
        "Min",
        "Mul",
        "Neg",
        "NonMaxSuppression",
        "Not",
        "Or",
        "Pad",
        "ParametricSoftplus",
        "Pow",
        "PRelu",
        "QuantizeLinear",
        "RandomUniform",
        "RandomUniformLike",
        "Range",
        "ReduceL1",
        "ReduceL2",
        "ReduceLogSum",
        "ReduceLogSumExp",
        "ReduceMax",
        "ReduceMean",
        "ReduceMin",
        "ReduceProd",
        "ReduceSum",
        "ReduceSumSquare",
        "Relu",
        "Reshape",
        "Resize",
        "ReverseSequence",
        "RNN",
        "Round",
        "ScaledTanh",
        "Scan",
        "Scatter",
        "ScatterElements",
        "ScatterND",
        "Selu",
        "Shape",
        "Sigmoid",
        "Sign",
        "Sin",
        "Sinh",
        "Size",
        "Slice",
        "Softmax",
        "Softplus",
        "Softsign",
        "SpaceToDepth",
        "Split",
        "Sqrt",
        "Squeeze",
        "Sub",
        "Sum",
        "Tan",
        "Tanh",
        "ThresholdedRelu",
        "Tile",
        "TopK",
        "Transpose",
        "Unsqueeze",
        "Upsample",
        "Where",
        "Xor",
    ]
)
"""Operators of the default ONNX domain that TensorRT's parser supports (8.4 matrix)."""

# Added by later revisions of the same table, with their restriction: GridSample (TensorRT 8.5+,
# "Input must be 4D input").
TENSORRT_ONNX_OPS = TENSORRT_ONNX_OPS | {"GridSample"}

# Restrictions from the table (conv/pool/sampling rank) that the audit checks.
_SPATIAL_2D_3D = {"Conv", "ConvTranspose", "MaxPool", "AveragePool"}
_RANK_4_ONLY = {"GridSample"}


def audit(model: onnx.ModelProto, *, allowed_domains: tuple[str, ...] = ()) -> list[str]:
    """Problems that would stop TensorRT's parser, one line each; empty when the graph is fine.

    Args:
        model: the ONNX model (shapes inferred here for the rank checks).
        allowed_domains: custom domains whose nodes are plugins (e.g. ``("tryon",)``).
    """
    try:
        inferred = onnx.shape_inference.infer_shapes(model)
    except onnx.shape_inference.InferenceError:  # e.g. plugin nodes ONNX knows nothing about
        inferred = model
    ranks = {
        v.name: len(v.type.tensor_type.shape.dim)
        for v in list(inferred.graph.value_info) + list(inferred.graph.input)
        if v.type.tensor_type.HasField("shape")
    }
    problems = []
    for node in model.graph.node:
        domain = node.domain or ""
        if domain in ("", "ai.onnx"):
            if node.op_type not in TENSORRT_ONNX_OPS:
                problems.append(f"{node.name or node.op_type}: {node.op_type} is not supported")
            elif node.op_type in _SPATIAL_2D_3D and ranks.get(node.input[0], 4) not in (4, 5):
                problems.append(f"{node.name}: {node.op_type} must be 2-D or 3-D")
            elif node.op_type in _RANK_4_ONLY and ranks.get(node.input[0], 4) != 4:
                problems.append(f"{node.name}: {node.op_type} must have a 4-D input")
        elif domain not in allowed_domains:
            problems.append(f"{node.name or node.op_type}: custom domain {domain!r}")
    return problems
