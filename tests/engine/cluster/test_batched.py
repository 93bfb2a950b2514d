"""Cross-stream batching gives what per-stream calls give (no Ray needed).

A batch-B convolution sums in another order than batch 1, so results agree to float rounding
(~1e-7 here): the generator outputs are compared with max abs diff < 1e-4, the uint8 images
within one level.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from engine.backends.selection import choose_backend
from engine.backends.streaming_runner import make_streaming_runner
from engine.cluster.batched import BatchedGenerator
from engine.cluster.errors import ClusterBusyError
from engine.cluster.worker import StreamWorkerCore
from engine.inputs.garment_image import load_garment_image
from engine.model.mpdt_generator import MPDTConfig, MPDTGenerator
from engine.model.weights import save_generator
from engine.sample_media import ASSETS_DIR, GARMENT_NAME
from tests.runtime_fixtures import TINY, ScriptedTracker, make_lively


@pytest.fixture(scope="module")
def lively(tmp_path_factory):
    torch.manual_seed(1)
    model = make_lively(MPDTGenerator(MPDTConfig(name="tiny", **TINY)))
    return save_generator(model, tmp_path_factory.mktemp("lively") / "m.safetensors", notes="t")


def _inputs(model, rng):
    cfg = model.config
    return {n: torch.from_numpy(rng.random((1, c, cfg.height, cfg.width), np.float32))
            for n, c in cfg.input_channels.items()}  # fmt: skip


def test_batched_step_equals_per_stream_steps_and_the_torch_runner(lively):
    from engine.model.weights import load_generator

    model = load_generator(lively)
    rng = np.random.default_rng(0)
    streams, steps, t = 3, 5, 2
    frames = [[_inputs(model, rng) for _ in range(steps)] for _ in range(streams)]
    batched, single = BatchedGenerator(model, t), BatchedGenerator(model, t)
    bw = [batched.new_window() for _ in range(streams)]
    sw = [single.new_window() for _ in range(streams)]
    runners = [make_streaming_runner(model, frames=t, choice=choose_backend("torch"))
               for _ in range(streams)]  # fmt: skip
    spread = 0.0
    for k in range(steps):
        together = batched.step(bw, [frames[s][k] for s in range(streams)])
        for s in range(streams):
            alone = single.step([sw[s]], [frames[s][k]])[0]
            reference = runners[s].step(frames[s][k])
            for name in ("rendered", "cloth_mask"):
                assert (together[s][name] - alone[name]).abs().max() < 1e-4
                assert (alone[name] - reference[name]).abs().max() < 1e-4
        spread = max(spread, float((together[0]["rendered"] - together[1]["rendered"]).abs().max()))
    assert spread > 1e-3  # the streams' outputs differ: a mixed-up scatter would show


def test_step_streams_equals_process_per_stream(lively):
    garment = load_garment_image(str(ASSETS_DIR / GARMENT_NAME))
    a = StreamWorkerCore("a", lively, window=2, capacity=3, tracker_factory=ScriptedTracker)
    b = StreamWorkerCore("b", lively, window=2, capacity=3, tracker_factory=ScriptedTracker)
    ids = ["x", "y", "z"]
    for sid in ids:
        a.open(sid, garment)
        b.open(sid, garment)
    rng = np.random.default_rng(3)
    for k in range(4):
        frames = {sid: (rng.integers(30, 220, (48, 64, 3), dtype=np.uint8), k / 30) for sid in ids}
        together = a.step_streams(frames)
        for sid in ids:
            alone = b.process(sid, *frames[sid])
            assert together[sid].person_found and alone.person_found
            diff = np.abs(together[sid].image.astype(int) - alone.image.astype(int)).max()
            assert diff <= 1
    assert a.batches == [3, 3, 3, 3] and b.batches == [1] * 12
    with pytest.raises(ClusterBusyError):
        a.open("w", garment)
