"""Live try-on in the browser over WebRTC: an aiohttp server (:mod:`~engine.serve.app`) that
serves the page shipped in ``static/`` (camera in, try-on out, garment picker, before/after,
FPS and latency), answers WebRTC offers (aiortc), accepts garment uploads
(:mod:`~engine.serve.upload`), and runs one :class:`~engine.runtime.session.TryOnSession` per
peer behind a latest-frame-wins track (:mod:`~engine.serve.track`), or, with ``--cluster``, one
stream per peer on Ray stream workers (:mod:`~engine.serve.cluster`); ``tryon serve`` is
:mod:`~engine.serve.cli`.

A layer above ``engine.cluster`` and ``engine.runtime``: may import them and every layer below
(inputs, backends, perception, ``engine.errors``, ``engine.sample_media``); never ``export``,
training, the ``engine`` facade or the CLI. Only ``engine.cli`` imports it. Ray is imported only
inside functions (through :func:`engine.cluster.worker.import_ray`), so importing this package
never requires it.
"""
