"""Serving frames: :class:`~engine.runtime.session.TryOnSession` (arguments, garment, ``process``,
``stream``, ``stats``), the per-frame stages it chains (:mod:`~engine.runtime.stages`: perceive,
crop and inputs, generate, paste), the generic threaded stage pipeline
(:mod:`~engine.runtime.pipeline`), frame sources (:mod:`~engine.runtime.frame_sources`), stage
statistics (:mod:`~engine.runtime.stage_stats`) and running a whole video
(:mod:`~engine.runtime.video_run`). May import every layer below (perception, inputs, backends,
model, ``kernels``); never ``export`` (graphs come through :mod:`engine.backends.graph_cache`),
training or the CLI.
"""
