"""``tryon serve``: the browser try-on server (:func:`engine.serve.app.create_app`).

``add_serve_parser(subparsers)`` adds the verb; ``run_serve(args)`` runs it and returns the exit
code; ``build_app(args)`` makes the application (and starts the cluster) without serving it.
Binding anything but a loopback address requires ``--token``.

``--cluster [ADDRESS]`` serves every peer as a stream on Ray stream workers
(:mod:`engine.serve.cluster`): without ADDRESS a local Ray on this machine (loopback), with it
``ray.init(address=ADDRESS)``; ``--workers N`` and ``--streams-per-worker S`` size it, and the
cluster's capacity (N x S streams while every worker lives) bounds the peers instead of
``--max-sessions``.
"""

from __future__ import annotations

import argparse
import ipaddress
import sys
from collections.abc import Callable

from engine.backends.selection import BACKENDS
from engine.errors import InputError

__all__ = ["add_serve_parser", "run_serve", "check_bind"]

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765
LOCAL_CLUSTER = "local"
"""``--cluster`` without an address (or ``--cluster local``): a local Ray on this machine."""
DEFAULT_STREAMS_PER_WORKER = 4


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_bind(host: str, port: int, token: str | None, max_sessions: int) -> None:
    """Raises InputError for a bind the server refuses (non-loopback without a token, ...)."""
    if not isinstance(port, int) or not 0 <= port <= 65535:
        raise InputError("--port", "a port number in [0, 65535]", port)
    if not _is_loopback(host) and not token:
        raise InputError("--token", f"a token when binding a non-loopback host ({host}); "
                         "anyone who can reach it could use the camera stream", None)  # fmt: skip
    if token is not None and len(token) < 8:
        raise InputError("--token", "at least 8 characters", "(hidden)")
    if max_sessions < 1:
        raise InputError("--max-sessions", "an int >= 1", max_sessions)


def check_cluster(args: argparse.Namespace) -> None:
    """Raises InputError for cluster options the server refuses (cluster sizes < 1, or the
    cluster sizes without ``--cluster``)."""
    cluster = getattr(args, "cluster", None)
    workers = getattr(args, "workers", None)
    streams = getattr(args, "streams_per_worker", None)
    reopen = getattr(args, "reopen", False)
    if cluster is None:
        for flag, value in (("--workers", workers), ("--streams-per-worker", streams)):
            if value is not None:
                raise InputError(flag, "to be used with --cluster", value)
        if reopen:
            raise InputError("--reopen", "to be used with --cluster", True)
        return
    backend = getattr(args, "backend", "auto")
    if backend not in ("auto", "torch"):
        raise InputError("--backend", "auto or torch with --cluster (the workers batch the torch "
                         "generator across their streams)", backend)  # fmt: skip
    if workers is not None and workers < 1:
        raise InputError("--workers", "an int >= 1", workers)
    if streams is not None and streams < 1:
        raise InputError("--streams-per-worker", "an int >= 1", streams)


def add_serve_parser(subparsers) -> argparse.ArgumentParser:
    """Add ``serve`` to a ``parser.add_subparsers()`` object; sets ``func=run_serve``."""
    p = subparsers.add_parser("serve", help="live try-on in the browser over WebRTC",
                              description="Serve the try-on page: camera in, try-on out "
                              "(WebRTC). Open http://HOST:PORT/ in a browser.")  # fmt: skip
    p.add_argument("--host", default=DEFAULT_HOST, help="bind address (default 127.0.0.1; any "
                   "other needs --token)")  # fmt: skip
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help="default 8765")
    p.add_argument("--model", default="demo", help="'demo' or a weights file")
    p.add_argument("--backend", default="auto", choices=BACKENDS)
    p.add_argument("--token", default=None, help="required on every request (header "
                   "X-Tryon-Token or ?token=); needed for a non-loopback --host")  # fmt: skip
    p.add_argument("--max-sessions", type=int, default=2, help="peers at once (default 2; "
                   "with --cluster the cluster's capacity decides)")  # fmt: skip
    p.add_argument("--cluster", nargs="?", const=LOCAL_CLUSTER, default=None, metavar="ADDRESS",
                   help="serve the peers' streams on Ray stream workers: alone, a local Ray on "
                   "this machine (127.0.0.1); with ADDRESS, the Ray cluster there "
                   "(ray.init(address=ADDRESS), e.g. auto or ray://head:10001). Needs "
                   "pip install -e \".[cluster]\"")  # fmt: skip
    p.add_argument("--workers", type=int, default=None, help="with --cluster: stream workers "
                   "(default one per GPU of the cluster, else one per two CPUs)")  # fmt: skip
    p.add_argument("--streams-per-worker", type=int, default=None,
                   help=f"with --cluster: streams one worker serves at once (default "
                   f"{DEFAULT_STREAMS_PER_WORKER}); a peer past the cluster's capacity gets "
                   "503 busy")  # fmt: skip
    p.add_argument("--reopen", action="store_true", help="with --cluster: a peer whose worker "
                   "is lost goes on on another worker (its window restarts) instead of "
                   "ending")  # fmt: skip
    p.set_defaults(func=run_serve)
    return p


def build_app(args: argparse.Namespace, *, tracker_factory: Callable[[], object] | None = None):
    """``(app, stop)``: the application for these arguments, and the function that stops what
    it started (the cluster's workers, and a local Ray). With ``--cluster`` the workers are
    started here (``tracker_factory``: the person detector they make per stream; default
    mediapipe).

    Raises:
        InputError: refused arguments.
        BackendUnavailableError: ``--cluster`` without ray installed.
    """
    from engine.serve.app import create_app

    check_bind(args.host, args.port, args.token, args.max_sessions)
    check_cluster(args)
    if getattr(args, "cluster", None) is None:
        app = create_app(model=args.model, backend=args.backend, token=args.token,
                         max_sessions=args.max_sessions)  # fmt: skip
        return app, lambda: None
    from engine.serve.cluster import start_cluster

    address = None if args.cluster == LOCAL_CLUSTER else args.cluster
    streams = args.streams_per_worker or DEFAULT_STREAMS_PER_WORKER
    serving = start_cluster(address, workers=args.workers, streams_per_worker=streams,
                            model=args.model, tracker_factory=tracker_factory)  # fmt: skip
    try:
        app = create_app(model=args.model, token=args.token, max_sessions=serving.capacity,
                         router=serving.router, reopen=args.reopen)  # fmt: skip
    except BaseException:
        serving.shutdown()
        raise
    where = address or "a local Ray (127.0.0.1)"
    sys.stderr.write(f"tryon serve: {serving.workers} stream workers on {where}, "
                     f"{streams} streams each\n")  # fmt: skip
    return app, serving.shutdown


def run_serve(args: argparse.Namespace) -> int:
    """Run the server until interrupted; 0 on a clean stop, 2 for refused arguments."""
    from aiohttp import web

    try:
        app, stop = build_app(args)
    except InputError as exc:
        print(f"tryon serve: {exc}", file=sys.stderr)
        return 2
    where = f"http://{args.host}:{args.port}/" + (f"?token={args.token}" if args.token else "")

    def announce(_message: str) -> None:
        sys.stderr.write(f"tryon serve: open {where} (Ctrl+C stops)\n")

    try:
        web.run_app(app, host=args.host, port=args.port, print=announce, handle_signals=True)
    finally:
        stop()
    return 0
