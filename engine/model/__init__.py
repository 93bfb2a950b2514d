"""The generator: :class:`~engine.model.mpdt_generator.MPDTGenerator` (encode / attend / decode)
with its :class:`~engine.model.mpdt_generator.MPDTConfig` presets, its mixed-precision copy
(:mod:`engine.model.mixed_precision`) and its safetensors weights (:mod:`engine.model.weights`).
Pure model code: it runs whatever implementation the caller passes as ``impl`` and never looks
at global state. May import ``kernels``, :mod:`engine.errors` and :mod:`engine.keypoints`;
nothing else of ``engine`` and nothing of ``export``.
"""
