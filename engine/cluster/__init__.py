"""Scale-out: many live try-on streams on a Ray cluster.

Holds :mod:`engine.cluster.batched` (the torch generator stepped for B streams' windows in one
call), :mod:`engine.cluster.worker` (``StreamWorker``, the Ray actor that owns a device and
serves up to N streams, each with its own stages and ring buffers), :mod:`engine.cluster.router`
(``StreamRouter``, the driver-side placement, health and ``open_stream`` API) and
:mod:`engine.cluster.errors` (``ClusterBusyError``, ``StreamLostError``).

A layer above :mod:`engine.runtime` and below :mod:`engine.serve`: may import
:mod:`engine.runtime` and everything below it (backends, inputs, perception, model, errors);
never :mod:`engine.serve` (which imports this package: ``tryon serve --cluster``), the
``engine`` facade or :mod:`engine.cli`, and never ``export``. Ray itself is optional (the
``cluster`` extra) and imported only inside functions that need it, so importing this package
never requires it.
"""

from engine.cluster.errors import ClusterBusyError, StreamLostError

__all__ = ["ClusterBusyError", "StreamLostError"]
