"""The WebRTC loop of ``tryon serve`` on loopback: an aiortc client streams the bundled 640x480
clip at 30 frames/s through ``/offer`` to the server (the demo generator, mediapipe, the
default backend) and reads the try-on back. Each sent frame carries its number as a binary
code in the top-left corner (outside the person); the number read back from a returned frame
gives its glass-to-glass latency (sent -> VP8 -> server try-on -> VP8 -> decoded here).
``extra_info``: output FPS, glass-to-glass p50 / p95 (ms), frames sent, returned, dropped by
the server (latest frame wins), the backend. Reported, not asserted (beyond frames flowing).
"""

from __future__ import annotations

import asyncio
import statistics

import aiohttp

from bench.conftest import percentile95
from engine.sample_media import read_sample_clip
from engine.serve.app import STATE, create_app
from tests.engine.serve.helpers import Client, read_stamp, serving

WARMUP_S = 8.0
MEASURE_S = 20.0


async def _loop(app, clip) -> dict:
    async with serving(app) as url, aiohttp.ClientSession() as http:
        client = Client(clip)
        try:
            assert await client.connect(http, url) == 200
            await client.wait_frames(3, timeout_s=120)  # model loaded, graphs exported, warm
            await asyncio.sleep(WARMUP_S)
            track = next(iter(app[STATE].peers.values())).track
            first = len(client.received)
            sent0, dropped0 = client.track.count, track.dropped
            await asyncio.sleep(MEASURE_S)
            frames = client.received[first:]
            sent, dropped = client.track.count - sent0, track.dropped - dropped0
            backend = app[STATE].backend
        finally:
            await client.close()
    latencies = []
    for arrival, image in frames:
        number = read_stamp(image)
        if number is not None and number in client.track.sent:
            latencies.append((arrival - client.track.sent[number]) * 1e3)
    return {"fps": len(frames) / MEASURE_S, "latencies": latencies, "sent": sent,
            "returned": len(frames), "dropped": dropped, "backend": backend}  # fmt: skip


def test_serve_webrtc_loop_640x480(benchmark):
    clip = read_sample_clip()
    app = create_app(model="demo", backend="auto", max_sessions=1)

    def run() -> dict:
        return asyncio.run(asyncio.wait_for(_loop(app, clip), 300))

    result = benchmark.pedantic(run, rounds=1, iterations=1)
    lat = sorted(result["latencies"])
    benchmark.extra_info.update(
        backend=result["backend"], fps=round(result["fps"], 2), sent=result["sent"],
        returned=result["returned"], dropped_by_server=result["dropped"],
        stamps_read=len(lat),
        glass_to_glass_p50_ms=round(statistics.median(lat), 1) if lat else None,
        glass_to_glass_p95_ms=round(percentile95(lat), 1) if lat else None,
    )  # fmt: skip
    print(benchmark.extra_info)
    assert result["returned"] > 0 and lat, "try-on frames came back with readable stamps"
