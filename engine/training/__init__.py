"""Making and judging generators: synthetic webcam-like clips (:mod:`~engine.training.synthetic`),
the training loop (:mod:`~engine.training.train`), the held-out evaluation against two baselines
(:mod:`~engine.training.evaluate`), its metrics (:mod:`~engine.training.metrics`) and the
regeneration of the bundled sample media (:mod:`~engine.training.sample_assets`). May import the
model, inputs, ``kernels`` and the bottom modules of ``engine``; never backends, runtime, export
or the CLI.
"""
