"""TryOnTrack: latest frame wins. Frames arriving while the session is busy replace the waiting
one and are counted; the next output is always the newest frame."""

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

import av
import numpy as np
from aiortc import MediaStreamTrack
from aiortc.mediastreams import MediaStreamError

from engine.errors import InputError
from engine.serve.track import TryOnTrack


class QueueSource(MediaStreamTrack):
    kind = "video"

    def __init__(self):
        super().__init__()
        self.queue: asyncio.Queue = asyncio.Queue()

    async def recv(self):
        frame = await self.queue.get()
        if frame is None:
            raise MediaStreamError
        return frame


class GatedSession:
    """process() waits for the gate; the output is the input plus one; 'bad' frames raise."""

    def __init__(self):
        self.gate = threading.Event()
        self.seen: list[int] = []

    def process(self, frame, timestamp_s=None):
        assert self.gate.wait(20)
        self.seen.append(int(frame[0, 0, 0]))
        if frame[0, 0, 1] == 7:
            raise InputError("frame", "a good frame", "a bad one")

        class Result:
            image = frame + 1
            person_found = True

        return Result()


def _frame(n: int, bad: bool = False) -> av.VideoFrame:
    image = np.full((16, 16, 3), n, np.uint8)
    image[0, 0, 1] = 7 if bad else 0
    frame = av.VideoFrame.from_ndarray(image, format="rgb24")
    frame.pts = n
    return frame


def test_newest_frame_wins_and_the_rest_are_counted():
    async def body():
        source, session = QueueSource(), GatedSession()
        timings = []
        with ThreadPoolExecutor(1) as pool:
            track = TryOnTrack(source, session, pool, timings.append)
            await source.queue.put(_frame(1))
            first = asyncio.ensure_future(track.recv())  # takes frame 1, blocks in process
            for _ in range(100):
                await asyncio.sleep(0.01)
                if track._latest is None and track.received == 1:
                    break
            for n in range(2, 12):  # ten frames arrive while the session is busy
                await source.queue.put(_frame(n))
            for _ in range(100):
                await asyncio.sleep(0.01)
                if track.received == 11:
                    break
            session.gate.set()
            out1 = await first
            out2 = await track.recv()  # the newest frame, not frame 2
            await source.queue.put(_frame(12, bad=True))
            out3 = await track.recv()  # a bad frame comes back unchanged
            await source.queue.put(None)  # the camera track ends
            try:
                await asyncio.wait_for(track.recv(), 5)
                ended = False
            except MediaStreamError:
                ended = True
            track.stop()
        return track, session, timings, (out1, out2, out3), ended

    track, session, timings, outs, ended = asyncio.run(asyncio.wait_for(body(), 60))
    images = [o.to_ndarray(format="rgb24") for o in outs]
    assert session.seen == [1, 11, 12]
    assert images[0][1, 1, 0] == 2 and images[1][1, 1, 0] == 12 and images[2][1, 1, 0] == 12
    assert [o.pts for o in outs] == [1, 11, 12]
    assert track.received == 12 and track.dropped == 9 and track.processed == 3 and track.bad == 1
    assert [t["n"] for t in timings] == [1, 2, 3] and timings[1]["dropped"] == 9
    assert ended
