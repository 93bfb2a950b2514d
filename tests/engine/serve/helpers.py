"""Shared by the serve tests and bench/test_serve.py: frame-number stamps, the bundled clip as
a y4m file (Chromium's fake camera), an aiortc client that streams stamped frames through
``/offer``, and the server on 127.0.0.1 (in this event loop, or in a thread of its own).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from pathlib import Path

import aiohttp
import av
import cv2
import numpy as np
from aiohttp import web
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription, VideoStreamTrack
from aiortc.mediastreams import MediaStreamError

from engine.runtime.session import TryOnSession
from tests.runtime_fixtures import ScriptedTracker, tiny_model_file

BITS = 12
CELLS = BITS + 3  # marker 1, 0; the number; parity


def _cells(number: int) -> list[int]:
    bits = [(number >> (BITS - 1 - i)) & 1 for i in range(BITS)]
    return [1, 0, *bits, sum(bits) % 2]


def _cell_box(i: int, h: int, w: int) -> tuple[int, int, int, int]:
    cw, ch = w / 32, h / 16
    return round(i * cw), round((i + 1) * cw), 0, round(ch)


def stamp(image: np.ndarray, number: int) -> np.ndarray:
    """A copy of ``image`` with ``number % 4096`` written as black/white cells in the top-left
    strip (outside the person), sized relative to the frame so rescaling keeps it readable."""
    out = image.copy()
    h, w = out.shape[:2]
    for i, bit in enumerate(_cells(number % (1 << BITS))):
        x0, x1, y0, y1 = _cell_box(i, h, w)
        out[y0:y1, x0:x1] = 255 if bit else 0
    return out


def read_stamp(image: np.ndarray) -> int | None:
    """The number :func:`stamp` wrote, or None when the marker or the parity is wrong."""
    h, w = image.shape[:2]
    gray = image.mean(axis=2) if image.ndim == 3 else image
    cells = []
    for i in range(CELLS):
        x0, x1, y0, y1 = _cell_box(i, h, w)
        dx, dy = (x1 - x0) // 4, (y1 - y0) // 4
        cells.append(int(gray[y0 + dy : y1 - dy, x0 + dx : x1 - dx].mean() > 128))
    bits = cells[2 : 2 + BITS]
    if cells[:2] != [1, 0] or sum(bits) % 2 != cells[-1]:
        return None
    return sum(b << (BITS - 1 - i) for i, b in enumerate(bits))


def garment_box(h: int, w: int) -> tuple[slice, slice]:
    """Rows and columns inside the torso of :func:`tests.runtime_fixtures.upright_pose` (and of
    the person in the bundled clip): where the garment is pasted."""
    return slice(round(h * 0.5), round(h * 0.75)), slice(round(w * 0.42), round(w * 0.58))


def garment_change(output: np.ndarray, source: np.ndarray) -> float:
    """Mean absolute difference (0-255) of the garment area, the output resized to the source."""
    if output.shape != source.shape:
        output = cv2.resize(output, (source.shape[1], source.shape[0]))
    rows, cols = garment_box(*source.shape[:2])
    return float(np.abs(output[rows, cols].astype(np.float32) - source[rows, cols]).mean())


def write_y4m(frames: list[np.ndarray], path: Path, fps: int = 24) -> Path:
    """RGB frames -> a 4:2:0 y4m file (Chromium's --use-file-for-fake-video-capture)."""
    h, w = frames[0].shape[:2]
    with open(path, "wb") as f:
        f.write(f"YUV4MPEG2 W{w} H{h} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for frame in frames:
            f.write(b"FRAME\n" + cv2.cvtColor(frame, cv2.COLOR_RGB2YUV_I420).tobytes())
    return path


def tiny_session_factory(directory: Path):
    """Sessions of the tiny test generator with the scripted detector (fast, deterministic)."""
    model = tiny_model_file(directory)
    return lambda: TryOnSession(model, backend="torch", window=2, tracker=ScriptedTracker())


class ClipTrack(VideoStreamTrack):
    """Stamped frames of ``frames`` (looped) at 30 frames/s; ``sent[n]`` is frame n's clock."""

    def __init__(self, frames: list[np.ndarray]) -> None:
        super().__init__()
        self.frames = frames
        self.sent: dict[int, float] = {}
        self.count = 0

    def source(self, number: int) -> np.ndarray:
        return stamp(self.frames[number % len(self.frames)], number)

    async def recv(self) -> av.VideoFrame:
        pts, time_base = await self.next_timestamp()
        n = self.count
        self.count += 1
        frame = av.VideoFrame.from_ndarray(self.source(n), format="rgb24")
        frame.pts, frame.time_base = pts, time_base
        self.sent[n % (1 << BITS)] = time.monotonic()
        return frame


class Client:
    """An aiortc peer streaming a :class:`ClipTrack` through ``/offer``; keeps what comes back
    as ``(arrival clock, rgb array)``."""

    def __init__(self, frames: list[np.ndarray]) -> None:
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.track = ClipTrack(frames)
        self.received: list[tuple[float, np.ndarray]] = []
        self._task: asyncio.Task | None = None
        self.pc.addTrack(self.track)
        self.pc.on("track", self._on_track)

    def _on_track(self, track) -> None:
        async def consume() -> None:
            with contextlib.suppress(MediaStreamError):
                while True:
                    frame = await track.recv()
                    self.received.append((time.monotonic(), frame.to_ndarray(format="rgb24")))

        self._task = asyncio.ensure_future(consume())

    async def connect(self, http: aiohttp.ClientSession, url: str, **extra) -> int:
        """POST the offer; the HTTP status (200: connected to the answer)."""
        await self.pc.setLocalDescription(await self.pc.createOffer())
        body = {"sdp": self.pc.localDescription.sdp, "type": "offer", **extra}
        async with http.post(f"{url}/offer", json=body) as response:
            if response.status != 200:
                return response.status
            answer = await response.json()
        await self.pc.setRemoteDescription(RTCSessionDescription(**answer))
        return 200

    async def wait_frames(self, count: int, timeout_s: float) -> int:
        deadline = time.monotonic() + timeout_s
        while len(self.received) < count and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        return len(self.received)

    async def close(self) -> None:
        await self.pc.close()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task


@contextlib.asynccontextmanager
async def serving(app: web.Application):
    """The app on 127.0.0.1, a free port; yields its base URL."""
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


class ThreadedServer:
    """The app on 127.0.0.1 in a thread with its own event loop (for sync drivers)."""

    def __init__(self, app: web.Application) -> None:
        self.app = app
        self.loop = asyncio.new_event_loop()
        self.url: str | None = None
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, name="serve-test", daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self._main())

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        async with serving(self.app) as url:
            self.url = url
            self._ready.set()
            await self._stop.wait()

    def call(self, fn, timeout_s: float = 10.0):
        """``fn()`` on the server's loop (reads its state without races)."""

        async def run():
            return fn()

        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(timeout_s)

    def __enter__(self) -> ThreadedServer:
        self._thread.start()
        if not self._ready.wait(30):
            raise RuntimeError("the test server did not start")
        return self

    def __exit__(self, *exc) -> None:
        self.loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)
