"""The aiohttp application of ``tryon serve``: the page, WebRTC offers, garments, health.

Routes::

    GET  /              the page (static/index.html; ?token=T sets the token cookie)
    GET  /static/...    its script and style
    POST /offer         {"sdp", "type": "offer", "garment": id?} -> {"sdp", "type": "answer"}
    POST /garment       an image body (PNG or JPEG, <= 10 MB) -> {"id"}
    GET  /health        {"status", "backend", "model", "sessions", "max_sessions"[, "cluster"]}

Each peer gets its own :class:`~engine.runtime.session.TryOnSession` (made by
``session_factory`` in a worker thread), a one-thread executor and a
:class:`~engine.serve.track.TryOnTrack`; a data channel (any label) carries per-frame timings
to the peer and takes ``{"garment": id}`` to switch garments live. A peer whose connection
closes or fails, whose camera track ends, or that does not connect within
``connect_timeout_s``, is closed and its session freed. A session error that ends the stream
(anything but a bad frame) is sent on the data channel as ``{"type": "error", "error": ...}``
and the peer is closed a moment later.

Cluster mode (``router=``, ``tryon serve --cluster``): each peer's session is instead a stream
on the router's Ray workers (:class:`~engine.serve.cluster.ClusterSession`), opened with the
peer's garment; when every live worker is full the offer gets 503 ``{"error": "busy",
"reason"}``; a lost worker ends that peer's stream with the error message above (or, with
``reopen``, moves it to another worker); ``/health`` adds ``"cluster"``, the router's view:
workers alive and dead (with the reason), stream ids per live worker, free slots.

Security: with a ``token``, every request must carry it (header ``X-Tryon-Token``,
``Authorization: Bearer``, ``?token=`` or the cookie the page gets) or gets 401. Without one
(loopback only, enforced by :mod:`engine.serve.cli`), requests whose ``Host`` is not a loopback
name get 403 (DNS rebinding), and so do cross-origin ``Origin`` headers.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import uuid
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from aiohttp import web
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription

from engine.cluster.errors import ClusterBusyError
from engine.cluster.router import StreamRouter
from engine.errors import InputError, TryOnError
from engine.runtime.session import TryOnSession
from engine.sample_media import read_sample_garment
from engine.serve.cluster import ClusterSession
from engine.serve.track import TryOnTrack
from engine.serve.upload import MAX_UPLOAD_BYTES, decode_garment

__all__ = ["SAMPLE_GARMENT", "create_app", "ServeState"]

log = logging.getLogger("tryon.serve")

STATIC = Path(__file__).with_name("static")
SAMPLE_GARMENT = "sample"
MAX_GARMENTS = 32
"""Uploaded garments kept in memory (the oldest is forgotten first; the sample stays)."""
MAX_SDP_CHARS = 100_000
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1", "[::1]")
TOKEN_HEADER = "X-Tryon-Token"
TOKEN_COOKIE = "tryon_token"
STATE = web.AppKey("tryon_state", "ServeState")
CLOSE_AFTER_ERROR_S = 1.0
"""How long a peer whose stream ended stays connected, so the error message reaches it."""


def _error(status: int, message: str, **extra) -> web.Response:
    return web.json_response({"error": message, **extra}, status=status)


@dataclass
class Peer:
    pc: RTCPeerConnection
    session: TryOnSession | None = None
    executor: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(1, thread_name_prefix="tryon-peer")
    )
    track: TryOnTrack | None = None
    channel: object | None = None
    closing: bool = False


class ServeState:
    """What the application holds: peers, garments, settings."""

    def __init__(self, session_factory, *, model, backend, token, max_sessions, connect_timeout_s,
                 router=None, reopen=False):  # fmt: skip
        self.session_factory = session_factory
        self.router: StreamRouter | None = router
        self.reopen = reopen
        self.model = model
        self.backend = backend
        self.token = token
        self.max_sessions = max_sessions
        self.connect_timeout_s = connect_timeout_s
        self.peers: dict[str, Peer] = {}
        self.garments: OrderedDict[str, np.ndarray] = OrderedDict()
        self.closed_peers = 0
        self.ended_streams = 0  # peers whose session ended with an error

    @property
    def sessions(self) -> int:
        return len(self.peers)

    def add_garment(self, rgba: np.ndarray, key: str) -> str:
        self.garments[key] = rgba
        self.garments.move_to_end(key)
        while len(self.garments) > MAX_GARMENTS:
            oldest = next(k for k in self.garments if k != SAMPLE_GARMENT)
            del self.garments[oldest]
        return key

    # ------------------------------------------------------------------ peers
    async def close_peer(self, peer_id: str) -> None:
        peer = self.peers.get(peer_id)
        if peer is None or peer.closing:
            return
        peer.closing = True
        if peer.track is not None:
            peer.track.stop()
        with contextlib.suppress(Exception):
            await peer.pc.close()
        if peer.session is not None:  # after the frame in flight, in the peer's own thread
            with contextlib.suppress(Exception):
                await asyncio.get_running_loop().run_in_executor(peer.executor, peer.session.close)
        peer.executor.shutdown(wait=False)
        self.peers.pop(peer_id, None)
        self.closed_peers += 1
        log.info("peer %s closed (%d active)", peer_id[:8], len(self.peers))

    async def close_all(self) -> None:
        await asyncio.gather(*(self.close_peer(p) for p in list(self.peers)))


# ---------------------------------------------------------------------- middleware
def _given_token(request: web.Request) -> str | None:
    auth = request.headers.get("Authorization", "")
    bearer = auth[7:] if auth.startswith("Bearer ") else None
    return (request.headers.get(TOKEN_HEADER) or bearer or request.query.get("token")
            or request.cookies.get(TOKEN_COOKIE))  # fmt: skip


@web.middleware
async def _guard(request: web.Request, handler):
    state: ServeState = request.app[STATE]
    if state.token is not None:
        given = _given_token(request)
        if given is None or not hmac.compare_digest(given.encode(), state.token.encode()):
            return _error(401, "a valid token is required (X-Tryon-Token header or ?token=)")
    else:
        host = request.host.rsplit(":", 1)[0] if not request.host.endswith("]") else request.host
        if host not in LOOPBACK_NAMES:
            return _error(403, f"host {request.host!r} is not a loopback name")
    origin = request.headers.get("Origin")
    if origin is not None and origin not in (f"http://{request.host}", f"https://{request.host}"):
        return _error(403, f"cross-origin request from {origin!r}")
    try:
        response = await handler(request)
    except web.HTTPRequestEntityTooLarge:
        return _error(413, f"the body is larger than {MAX_UPLOAD_BYTES} bytes")
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return _error(exc.status, exc.reason)
    if state.token is not None and request.path == "/" and "token" in request.query:
        response.set_cookie(TOKEN_COOKIE, state.token, httponly=True, samesite="Strict")
    return response


# ---------------------------------------------------------------------- handlers
async def _index(request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-store"})


async def _health(request: web.Request) -> web.Response:
    state = request.app[STATE]
    body = {"status": "ok", "backend": state.backend, "model": state.model,
            "sessions": state.sessions, "max_sessions": state.max_sessions}  # fmt: skip
    if state.router is not None:  # the router's own bookkeeping: no call to a worker
        cluster = state.router.health(ping=False)
        body["cluster"] = cluster
        body["ended_streams"] = state.ended_streams
        if cluster["alive"] == 0:
            body["status"] = "no live worker"
    return web.json_response(body)


async def _garment(request: web.Request) -> web.Response:
    state = request.app[STATE]
    if (request.content_length or 0) > MAX_UPLOAD_BYTES:
        return _error(413, f"the body is larger than {MAX_UPLOAD_BYTES} bytes")
    data = await request.read()  # client_max_size: 413 past the limit without a length
    if not data:
        return _error(400, "the body must be a PNG or JPEG image")
    try:
        rgba = await asyncio.get_running_loop().run_in_executor(None, decode_garment, data)
    except InputError as exc:
        return _error(400, str(exc))
    key = state.add_garment(rgba, hashlib.sha256(data).hexdigest()[:16])
    return web.json_response({"id": key, "width": rgba.shape[1], "height": rgba.shape[0]})


def _parse_offer(body: object, state: ServeState) -> tuple[RTCSessionDescription, str]:
    if not isinstance(body, dict):
        raise InputError("body", 'a JSON object {"sdp", "type": "offer", "garment"?}', body)
    sdp, kind, garment = body.get("sdp"), body.get("type"), body.get("garment", SAMPLE_GARMENT)
    if kind != "offer":
        raise InputError("type", '"offer"', kind)
    if not isinstance(sdp, str) or not sdp.startswith("v=0") or len(sdp) > MAX_SDP_CHARS:
        raise InputError("sdp", f"an SDP offer (starts with 'v=0', <= {MAX_SDP_CHARS} chars)",
                         sdp if not isinstance(sdp, str) else sdp[:40])  # fmt: skip
    garment = SAMPLE_GARMENT if garment is None else garment
    if garment not in state.garments:
        raise InputError("garment", "absent or the id of an uploaded garment", garment)
    return RTCSessionDescription(sdp=sdp, type="offer"), garment


async def _offer(request: web.Request) -> web.Response:
    state: ServeState = request.app[STATE]
    try:
        offer, garment = _parse_offer(await request.json(), state)
    except json.JSONDecodeError:
        return _error(400, "the body must be JSON")
    except InputError as exc:
        return _error(400, str(exc))
    if state.sessions >= state.max_sessions:
        if state.router is not None:
            reason = f"every stream slot of the cluster is in use ({state.max_sessions})"
            return _error(503, "busy", reason=reason, max_sessions=state.max_sessions)
        return _error(503, "busy", max_sessions=state.max_sessions)
    peer_id = uuid.uuid4().hex
    peer = Peer(RTCPeerConnection(RTCConfiguration(iceServers=[])))
    state.peers[peer_id] = peer  # the slot is taken before anything is awaited
    try:
        return await _answer(request.app, state, peer_id, peer, offer, garment)
    except ClusterBusyError as exc:
        await state.close_peer(peer_id)
        return _error(503, "busy", reason=str(exc), max_sessions=state.max_sessions)
    except InputError as exc:
        await state.close_peer(peer_id)
        return _error(400, str(exc))
    except TryOnError as exc:
        await state.close_peer(peer_id)
        return _error(500, str(exc))
    except BaseException:
        await state.close_peer(peer_id)
        raise


async def _answer(app, state: ServeState, peer_id: str, peer: Peer,
                  offer: RTCSessionDescription, garment: str) -> web.Response:  # fmt: skip
    loop = asyncio.get_running_loop()
    pc = peer.pc
    sources = []

    def on_frame(info: dict) -> None:
        if peer.channel is not None and peer.channel.readyState == "open":
            with contextlib.suppress(Exception):
                peer.channel.send(json.dumps({"type": "frame", **info}))

    def on_end(error: TryOnError) -> None:
        state.ended_streams += 1
        log.warning("peer %s: stream ended: %s", peer_id[:8], error)
        if peer.channel is not None and peer.channel.readyState == "open":
            with contextlib.suppress(Exception):
                peer.channel.send(json.dumps({"type": "error", "error": str(error)}))
        loop.call_later(CLOSE_AFTER_ERROR_S,
                        lambda: asyncio.ensure_future(state.close_peer(peer_id)))  # fmt: skip

    @pc.on("track")
    def on_track(track) -> None:
        if track.kind == "video" and not sources:
            sources.append(track)
            track.on("ended", lambda: asyncio.ensure_future(state.close_peer(peer_id)))

    @pc.on("datachannel")
    def on_datachannel(channel) -> None:
        peer.channel = channel

        @channel.on("message")
        def on_message(message) -> None:
            asyncio.ensure_future(_on_message(state, peer, channel, message))

    @pc.on("connectionstatechange")
    async def on_state() -> None:
        if pc.connectionState in ("failed", "closed"):
            await state.close_peer(peer_id)

    try:
        await pc.setRemoteDescription(offer)
    except Exception as exc:  # aiortc raises several kinds on a malformed SDP
        raise InputError("sdp", "a well-formed SDP offer", f"{type(exc).__name__}: {exc}") from None
    if not sources:
        raise InputError("sdp", "an offer with a video track (the camera)", "no video track")
    if state.router is not None:  # a stream on the cluster, opened with the garment
        peer.session = await loop.run_in_executor(peer.executor, ClusterSession.open,
                                                  state.router, state.garments[garment],
                                                  state.reopen)  # fmt: skip
    else:
        peer.session = await loop.run_in_executor(peer.executor, state.session_factory)
    if peer.closing:
        raise InputError("peer", "still connected", "closed while its session was made")
    if state.router is None:
        await loop.run_in_executor(peer.executor, peer.session.set_garment,
                                   state.garments[garment])  # fmt: skip
    if isinstance(state.backend, str) and state.backend == "auto":
        state.backend = peer.session.backend
    peer.track = TryOnTrack(sources[0], peer.session, peer.executor, on_frame, on_end)
    pc.addTrack(peer.track)
    await pc.setLocalDescription(await pc.createAnswer())

    def connect_deadline() -> None:
        if pc.connectionState != "connected" and peer_id in state.peers:
            log.info("peer %s did not connect in time", peer_id[:8])
            asyncio.ensure_future(state.close_peer(peer_id))

    loop.call_later(state.connect_timeout_s, connect_deadline)
    return web.json_response({"sdp": pc.localDescription.sdp, "type": pc.localDescription.type})


async def _on_message(state: ServeState, peer: Peer, channel, message) -> None:
    try:
        request = json.loads(message) if isinstance(message, str) else None
        key = request.get("garment") if isinstance(request, dict) else None
        if key not in state.garments:
            raise InputError("garment", "the id of an uploaded garment", key)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(peer.executor, peer.session.set_garment, state.garments[key])
        reply = {"type": "garment", "id": key, "ok": True}
    except (TryOnError, ValueError, AttributeError) as exc:  # a lost worker says so too
        reply = {"type": "garment", "ok": False, "error": str(exc)}
    if channel.readyState == "open":
        channel.send(json.dumps(reply))


# ---------------------------------------------------------------------- factory
def create_app(
    session_factory: Callable[[], TryOnSession] | None = None,
    *,
    model: str = "demo",
    backend: str = "auto",
    token: str | None = None,
    max_sessions: int = 2,
    connect_timeout_s: float = 30.0,
    router: StreamRouter | None = None,
    reopen: bool = False,
) -> web.Application:
    """The server's application.

    Args:
        session_factory: makes one peer's session (called in a worker thread); default
            ``TryOnSession(model, backend=backend)``. Not used with ``router``.
        model, backend: what the default factory uses, and what ``/health`` reports (the
            resolved backend once a session exists; ``"cluster"`` with ``router``).
        token: required on every request when set (see the module docstring).
        max_sessions: peers served at once; the next offer gets 503 ``{"error": "busy"}``.
        connect_timeout_s: a peer not connected this long after its answer is closed.
        router: serve every peer as a stream on these cluster workers (see the module
            docstring); the router refuses streams past its capacity (503 busy as well).
        reopen: with ``router``, a peer whose worker is lost goes on on another live worker
            (its window restarts) instead of ending.

    Raises:
        InputError: a bad argument.
    """
    if isinstance(max_sessions, bool) or not isinstance(max_sessions, int) or max_sessions < 1:
        raise InputError("max_sessions", "an int >= 1", max_sessions)
    if token is not None and (not isinstance(token, str) or len(token) < 8):
        raise InputError("token", "None or a string of at least 8 characters", "(hidden)")
    if router is not None and not isinstance(router, StreamRouter):
        raise InputError("router", "None or an engine.cluster.router.StreamRouter", router)
    if not isinstance(reopen, bool):
        raise InputError("reopen", "True or False", reopen)
    if router is not None:
        backend = "cluster"
    elif session_factory is None:
        session_factory = lambda: TryOnSession(model, backend=backend)  # noqa: E731
    state = ServeState(session_factory, model=str(model), backend=backend, token=token,
                       max_sessions=max_sessions, connect_timeout_s=connect_timeout_s,
                       router=router, reopen=reopen)  # fmt: skip
    state.add_garment(read_sample_garment(), SAMPLE_GARMENT)
    app = web.Application(middlewares=[_guard], client_max_size=MAX_UPLOAD_BYTES + 1)
    app[STATE] = state
    app.router.add_get("/", _index)
    app.router.add_static("/static", STATIC)
    app.router.add_get("/health", _health)
    app.router.add_post("/garment", _garment)
    app.router.add_post("/offer", _offer)

    async def on_shutdown(app: web.Application) -> None:
        await app[STATE].close_all()

    app.on_shutdown.append(on_shutdown)
    return app
