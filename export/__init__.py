"""Export of trained try-on generators (``tryon export``).

- :mod:`export.onnx_export`: both ONNX graphs from one trace, simplified, checked,
  TensorRT-audited and compared with PyTorch: ``standard.onnx`` (standard ops; onnxruntime) and
  ``plugins.onnx`` (attention heads and composite as ``tryon`` plugin nodes; TensorRT);
  fp32 or fp16;
- :mod:`export.plugin_graph`: the call markers, the splice of the plugin nodes, and the CPU
  evaluation of a plugins graph;
- :mod:`engine.model.mixed_precision`: which parts of the generator run in fp16 and which stay fp32;
- :mod:`export.streaming_graphs`: the per-frame encoder and window graphs of the streaming
  runtime;
- :mod:`export.tensorrt_onnx_ops`: the ONNX operators TensorRT's parser accepts, and the audit;
- :mod:`export.tensorrt_plugins`: ``tryon::patch_attention`` and ``tryon::composite`` as
  TensorRT quickly deployable plugins with ahead-of-time Triton kernels (PTX, launch maths);
- :mod:`export.tensorrt_engine`: TensorRT engine builder and engine cache (TensorRT is imported
  lazily; it is optional);
- :mod:`export.triton_repository`: an NVIDIA Triton Inference Server model repository of the
  streaming graphs with a batch dimension (``tryon export --triton-repository DIR``): the encoder
  with dynamic batching, the window as a stateful model (sequence batcher, implicit state), an
  ensemble of the two, and ``tensorrt_plan`` variants for plans built from them.
"""
