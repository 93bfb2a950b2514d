"""Export of trained try-on generators.

- :mod:`export.onnx_export`: the standard ONNX graph (simplified, checked, TensorRT-audited,
  onnxruntime parity) — ``tryon export --format onnx``;
- :mod:`export.tensorrt_onnx_ops`: the ONNX operators TensorRT's parser accepts, and the audit;
- :mod:`export.tensorrt_engine`: TensorRT engine builder, engine cache and runner (TensorRT is
  imported lazily; it is optional).
"""
