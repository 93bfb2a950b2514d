"""``tryon serve``: the browser try-on server (:func:`engine.serve.app.create_app`).

``add_serve_parser(subparsers)`` adds the verb; ``run_serve(args)`` runs it and returns the exit
code. Binding anything but a loopback address requires ``--token``.
"""

from __future__ import annotations

import argparse
import ipaddress
import sys

from engine.backends.selection import BACKENDS
from engine.errors import InputError

__all__ = ["add_serve_parser", "run_serve", "check_bind"]

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765


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
    p.add_argument("--max-sessions", type=int, default=2, help="peers at once (default 2)")
    p.set_defaults(func=run_serve)
    return p


def run_serve(args: argparse.Namespace) -> int:
    """Run the server until interrupted; 0 on a clean stop, 2 for refused arguments."""
    from aiohttp import web

    from engine.serve.app import create_app

    try:
        check_bind(args.host, args.port, args.token, args.max_sessions)
        app = create_app(model=args.model, backend=args.backend, token=args.token,
                         max_sessions=args.max_sessions)  # fmt: skip
    except InputError as exc:
        print(f"tryon serve: {exc}", file=sys.stderr)
        return 2
    where = f"http://{args.host}:{args.port}/" + (f"?token={args.token}" if args.token else "")

    def announce(_message: str) -> None:
        sys.stderr.write(f"tryon serve: open {where} (Ctrl+C stops)\n")

    web.run_app(app, host=args.host, port=args.port, print=announce, handle_signals=True)
    return 0
