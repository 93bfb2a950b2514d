"""Export of trained try-on generators: ONNX graphs (simplified with onnx-simplifier) and
TensorRT fp16 engines. Not implemented yet in this version."""
