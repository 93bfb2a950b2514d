"""The ``tryon`` command line (:func:`engine.cli.main.main`): argument parsing, the report of
``tryon doctor`` (:mod:`~engine.cli.doctor`) and of ``tryon bench``
(:mod:`~engine.cli.bench_report`). The top layer: it may import everything, ``export`` included
(``tryon export`` and ``tryon aot`` are build-time verbs); nothing in the package imports it.
"""
