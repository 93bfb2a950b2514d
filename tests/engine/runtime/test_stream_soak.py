"""Soak: 4,000 frames through a stream on small frames, resident memory flat.

Runs the whole runtime (threads, bounded queues, crop, input building, the sliding window, the
composite back into the frame, statistics) with the tiny generator and the scripted detector of
:mod:`tests.runtime_fixtures`, so the soak takes about a minute on two cores.
"""

import sys

import numpy as np
import pytest

from engine.runtime.session import TryOnSession
from engine.sample_media import sample_garment_path
from tests.runtime_fixtures import ScriptedTracker, tiny_model_file

FRAMES = 4_000
WARMUP = 1_000
MAX_GROWTH_MB = 24.0


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * 4096 / 2**20


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/statm")
def test_four_thousand_frames_with_flat_memory(tmp_path):
    rng = np.random.default_rng(0)
    pool = [rng.integers(30, 220, (48, 64, 3), dtype=np.uint8) for _ in range(16)]
    pool[5] = np.zeros_like(pool[5])  # some frames without a person
    bad = {7, 3_321}  # and a couple of bad ones

    def frames():
        for i in range(FRAMES):
            yield None if i in bad else pool[i % len(pool)]

    session = TryOnSession(
        str(tiny_model_file(tmp_path)), backend="torch", tracker=ScriptedTracker()
    )
    session.set_garment(sample_garment_path())
    samples = []
    count = found = 0
    for result in session.stream(frames()):
        count += 1
        found += result.person_found
        if count == WARMUP or count % 500 == 0:
            samples.append(_rss_mb())
    stats = session.stats()
    assert count == FRAMES - len(bad) and stats["bad_frames"] == len(bad)
    assert found == count - stats["no_person_frames"] and stats["no_person_frames"] > 0
    growth = max(samples) - samples[0]
    assert growth < MAX_GROWTH_MB, f"RSS grew {growth:.1f} MB after warm-up: {samples}"
