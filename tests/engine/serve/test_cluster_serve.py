"""``tryon serve --cluster`` on a local Ray (loopback, one worker): an aiortc client streams the
bundled clip and gets try-on frames back from the worker; a peer past the cluster's capacity
gets 503 busy; a lost worker ends its peer's stream with a message on the data channel and
``/health`` shows the dead worker. The worker uses the scripted detector and the tiny generator
(fast, deterministic); every wait is bounded."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
from pathlib import Path

import aiohttp
import numpy as np
import pytest

ray = pytest.importorskip("ray", reason="ray not installed: pip install -e '.[cluster]'")

from engine.sample_media import read_sample_clip  # noqa: E402
from engine.serve.app import STATE, create_app  # noqa: E402
from engine.serve.cli import add_serve_parser, build_app  # noqa: E402
from tests.engine.serve.helpers import Client, garment_change, read_stamp, serving  # noqa: E402
from tests.runtime_fixtures import ScriptedTracker, tiny_model_file  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
ROOT = Path(__file__).resolve().parents[3]


class ChannelClient(Client):
    """A :class:`Client` with a data channel, keeping the server's messages."""

    def __init__(self, frames) -> None:
        super().__init__(frames)
        self.messages: list[dict] = []
        self.channel = self.pc.createDataChannel("tryon")
        self.channel.on("message", lambda m: self.messages.append(json.loads(m)))

    async def wait_message(self, kind: str, timeout_s: float) -> dict | None:
        for _ in range(int(timeout_s / 0.05)):
            found = [m for m in self.messages if m.get("type") == kind]
            if found:
                return found[0]
            await asyncio.sleep(0.05)
        return None


def _parse(argv):
    parser = argparse.ArgumentParser()
    add_serve_parser(parser.add_subparsers(dest="verb"))
    return parser.parse_args(["serve", *argv])


@pytest.fixture(scope="module")
def clip():
    return read_sample_clip(24)


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """``tryon serve --cluster --workers 1 --streams-per-worker 1`` built in-process: a local
    Ray on 127.0.0.1 and one stream worker."""
    path = os.environ.get("PYTHONPATH", "")
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), path) if p)  # workers
    assert not ray.is_initialized()
    tiny = tiny_model_file(tmp_path_factory.mktemp("tiny"))
    args = _parse(["--cluster", "--workers", "1", "--streams-per-worker", "1",
                   "--model", str(tiny)])  # fmt: skip
    app, stop = build_app(args, tracker_factory=ScriptedTracker)
    try:
        yield app, tiny
    finally:
        stop()
    assert not ray.is_initialized()  # the local Ray it started is gone


async def _health(http, url) -> dict:
    async with http.get(url + "/health") as r:
        return await r.json()


async def _until(predicate, timeout_s: float) -> bool:
    for _ in range(int(timeout_s / 0.1)):
        if await predicate():
            return True
        await asyncio.sleep(0.1)
    return False


def test_the_clip_comes_back_tried_on_from_the_worker_and_a_second_peer_is_busy(served, clip):
    app, _ = served

    async def body():
        async with serving(app) as url, aiohttp.ClientSession() as http:
            a, b = ChannelClient(clip), ChannelClient(clip)
            try:
                assert await a.connect(http, url) == 200
                await b.pc.setLocalDescription(await b.pc.createOffer())
                offer = {"sdp": b.pc.localDescription.sdp, "type": "offer"}
                async with http.post(url + "/offer", json=offer) as r:
                    busy = (r.status, await r.json())
                health = await _health(http, url)
                await a.wait_frames(6, timeout_s=60)
                peer = next(iter(app[STATE].peers.values()))
                worker = peer.session.worker
            finally:
                await a.close()
                await b.close()

            async def freed():
                return (await _health(http, url))["cluster"]["free"] == 1

            return busy, health, worker, a, await _until(freed, 10)

    busy, health, worker, client, freed = asyncio.run(asyncio.wait_for(body(), 120))
    assert busy[0] == 503 and busy[1]["error"] == "busy" and "in use" in busy[1]["reason"]
    assert health["backend"] == "cluster" and health["sessions"] == 1
    assert health["max_sessions"] == 1 and worker == "worker-0"
    cluster = health["cluster"]
    assert cluster["workers"] == 1 and cluster["alive"] == 1 and cluster["dead"] == {}
    assert [len(ids) for ids in cluster["streams"].values()] == [1] and cluster["free"] == 0
    checked = []
    for _, image in client.received:
        number = read_stamp(image)
        if number is not None:
            source = client.track.source(number)
            background = np.abs(image[60:200, :96].astype(np.float32) - source[60:200, :96])
            checked.append((garment_change(image, source), float(background.mean())))
    assert len(client.received) >= 6 and len(checked) >= 4
    for garment, background in checked:
        assert garment > 20, "the person area must show the worker's try-on, not the camera frame"
        assert background < 12, "outside the person the frame is the camera's"
    assert any(m["type"] == "frame" for m in client.messages)
    assert freed, "closing the peer frees its stream on the worker"


def test_a_lost_worker_ends_its_peers_stream_with_a_message(served, clip):
    from engine.cluster.router import StreamRouter

    _, tiny = served  # the local Ray of the served app; a router of our own to kill
    router = StreamRouter.start(1, capacity=2, model=tiny, window=2, num_cpus=0.5,
                                tracker_factory=ScriptedTracker, timeout_s=30)  # fmt: skip
    app = create_app(router=router, model="tiny", max_sessions=2)

    async def body():
        async with serving(app) as url, aiohttp.ClientSession() as http:
            a, c = ChannelClient(clip), ChannelClient(clip)
            try:
                assert await a.connect(http, url) == 200
                assert await a.wait_frames(2, timeout_s=60) >= 2
                ray.kill(router._workers["worker-0"].actor)
                error = await a.wait_message("error", timeout_s=30)

                async def gone():
                    return (await _health(http, url))["sessions"] == 0

                closed = await _until(gone, 10)
                health = await _health(http, url)
                await c.pc.setLocalDescription(await c.pc.createOffer())
                offer = {"sdp": c.pc.localDescription.sdp, "type": "offer"}
                async with http.post(url + "/offer", json=offer) as r:
                    after = (r.status, await r.json())  # no live worker: refused as busy
            finally:
                await a.close()
                await c.close()
            return error, closed, health, after

    try:
        error, closed, health, after = asyncio.run(asyncio.wait_for(body(), 120))
    finally:
        router.shutdown()
    assert error is not None and "lost" in error["error"] and "worker-0" in error["error"]
    assert closed, "the peer whose stream ended is closed"
    assert health["status"] == "no live worker" and health["ended_streams"] == 1
    assert health["cluster"]["alive"] == 0 and "worker-0" in health["cluster"]["dead"]
    assert after[0] == 503 and after[1]["error"] == "busy"
    assert "0 live of 1" in after[1]["reason"]
