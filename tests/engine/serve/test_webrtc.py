"""Media over WebRTC with an aiortc client on 127.0.0.1: the bundled clip goes through /offer
and comes back with the garment on it; too many peers get 503; a peer that leaves mid-stream
frees its session while another keeps being served."""

import asyncio

import aiohttp
import numpy as np
import pytest

from engine.sample_media import read_sample_clip, read_sample_garment
from engine.serve.app import STATE, create_app
from tests.engine.serve.helpers import (
    Client,
    garment_change,
    read_stamp,
    serving,
    tiny_session_factory,
)

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture(scope="module")
def clip():
    return read_sample_clip(24)


def _checked(client: Client) -> list[tuple[float, float]]:
    """(garment-area change, background change) of each returned frame whose stamp reads."""
    out = []
    for _, image in client.received:
        number = read_stamp(image)
        if number is None:
            continue
        source = client.track.source(number)
        background = np.abs(image[60:200, :96].astype(np.float32) - source[60:200, :96]).mean()
        out.append((garment_change(image, source), float(background)))
    return out


async def _sessions(http, url) -> int:
    async with http.get(url + "/health") as r:
        return (await r.json())["sessions"]


def test_clip_comes_back_with_the_garment_on(tmp_path, clip):
    app = create_app(tiny_session_factory(tmp_path), model="tiny", backend="torch")

    async def body():
        async with serving(app) as url, aiohttp.ClientSession() as http:
            client = Client(clip)
            try:
                assert await client.connect(http, url) == 200
                assert await _sessions(http, url) == 1
                await client.wait_frames(6, timeout_s=60)
                peer = next(iter(app[STATE].peers.values()))
                track = peer.track
                counts = (track.received, track.processed, track.dropped)
            finally:
                await client.close()
            for _ in range(100):
                if await _sessions(http, url) == 0:
                    break
                await asyncio.sleep(0.1)
            return client, counts, await _sessions(http, url)

    client, (received, processed, dropped), sessions_after = asyncio.run(
        asyncio.wait_for(body(), 100)
    )
    checked = _checked(client)
    assert len(client.received) >= 6 and len(checked) >= 4
    h, w = clip[0].shape[:2]
    assert all(image.shape == (h, w, 3) for _, image in client.received)
    for garment, background in checked:
        assert garment > 20, "the garment area must show the garment, not the camera frame"
        assert background < 12, "outside the garment the frame is the camera's"
    # every frame accounted for: processed, dropped, or one in flight and one waiting
    assert processed <= received <= processed + dropped + 2
    assert sessions_after == 0


def test_busy_and_a_peer_leaving_mid_stream(tmp_path, clip):
    app = create_app(tiny_session_factory(tmp_path), max_sessions=2)

    async def body():
        async with serving(app) as url, aiohttp.ClientSession() as http:
            a, b, c, d = (Client(clip) for _ in range(4))
            try:
                assert await a.connect(http, url) == 200
                assert await b.connect(http, url) == 200
                await c.pc.setLocalDescription(await c.pc.createOffer())
                offer = {"sdp": c.pc.localDescription.sdp, "type": "offer"}
                async with http.post(url + "/offer", json=offer) as r:
                    busy = (r.status, await r.json())
                await a.wait_frames(2, timeout_s=40)
                await b.wait_frames(2, timeout_s=40)
                a_frames = len(a.received)
                await a.close()  # leaves mid-stream
                for _ in range(100):
                    if await _sessions(http, url) == 1:
                        break
                    await asyncio.sleep(0.1)
                after_leave = await _sessions(http, url)
                b_before = len(b.received)
                await b.wait_frames(b_before + 3, timeout_s=40)
                b_after = len(b.received)
                d_status = await d.connect(http, url)  # the freed slot is usable again
                await d.wait_frames(1, timeout_s=40)
                return busy, a_frames, after_leave, b_before, b_after, d_status, len(d.received)
            finally:
                for client in (a, b, c, d):
                    await client.close()

    busy, a_frames, after_leave, b_before, b_after, d_status, d_frames = asyncio.run(
        asyncio.wait_for(body(), 130)
    )
    assert busy == (503, {"error": "busy", "max_sessions": 2})
    assert a_frames >= 2
    assert after_leave == 1
    assert b_after >= b_before + 3, "the remaining peer keeps being served"
    assert d_status == 200 and d_frames >= 1


def test_uploaded_garment_is_used_by_an_offer(tmp_path, clip):
    import cv2

    app = create_app(tiny_session_factory(tmp_path))
    garment = read_sample_garment()[:, ::-1].copy()  # mirrored: another garment id
    png = cv2.imencode(".png", cv2.cvtColor(garment, cv2.COLOR_RGBA2BGRA))[1].tobytes()

    async def body():
        async with serving(app) as url, aiohttp.ClientSession() as http:
            async with http.post(url + "/garment", data=png) as r:
                key = (await r.json())["id"]
            client = Client(clip)
            try:
                status = await client.connect(http, url, garment=key)
                await client.wait_frames(3, timeout_s=60)
            finally:
                await client.close()
            return key, status, client

    key, status, client = asyncio.run(asyncio.wait_for(body(), 100))
    assert key != "sample" and status == 200
    checked = _checked(client)
    assert len(checked) >= 2 and all(g > 20 for g, _ in checked)
