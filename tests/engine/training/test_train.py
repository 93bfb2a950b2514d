import pytest
import torch
from safetensors.torch import load_file

import engine.training.train
from engine.model.weights import load_generator
from engine.training.train import TrainConfig, train

TINY_RUN = dict(model="lite", batch=1, pool=2, checkpoint_every=1)


def _same(a, b, atol=0.0):
    a, b = load_file(str(a)), load_file(str(b))
    return a.keys() == b.keys() and all(torch.allclose(a[k], b[k], atol=atol, rtol=0) for k in a)


def test_training_is_seeded(tmp_path):
    first = train(TrainConfig(steps=2, **TINY_RUN), tmp_path / "a", log=lambda _: None)
    again = train(TrainConfig(steps=2, **TINY_RUN), tmp_path / "b", log=lambda _: None)
    assert _same(first, again)
    model = load_generator(first)
    assert model.config.name == "lite" and not model.training


def test_an_interrupted_run_resumes_to_the_same_weights(tmp_path, monkeypatch):
    straight = train(TrainConfig(steps=3, **TINY_RUN), tmp_path / "straight", log=lambda _: None)

    real_save = torch.save

    def save_then_crash(state, path):
        real_save(state, path)
        if state["step"] == 2:
            raise KeyboardInterrupt("simulated crash after the step-2 checkpoint")

    monkeypatch.setattr(engine.training.train.torch, "save", save_then_crash)
    with pytest.raises(KeyboardInterrupt):
        train(TrainConfig(steps=3, **TINY_RUN), tmp_path / "resumed", log=lambda _: None)
    monkeypatch.setattr(engine.training.train.torch, "save", real_save)

    logs = []
    resumed = train(TrainConfig(steps=3, **TINY_RUN), tmp_path / "resumed", log=logs.append)
    assert any("resuming from step 2" in line for line in logs)
    assert _same(resumed, straight, atol=1e-6)


def test_temporal_term_counts_only_unexplained_change():
    from engine.training.train import tryon_loss

    gt = torch.rand((1, 3, 3, 8, 8), generator=torch.Generator().manual_seed(0))
    region = torch.ones((1, 3, 1, 8, 8))
    assert tryon_loss(gt + 0.05, gt, region)["temporal"] < 1e-6  # constant offset: no flicker
    popping = gt.clone()
    popping[:, 1] += 0.1
    assert tryon_loss(popping, gt, region)["temporal"] > 0.09
    off = tryon_loss(popping, gt, region, temporal_weight=0.0)
    on = tryon_loss(popping, gt, region, temporal_weight=1.0)
    assert on["total"] - off["total"] == pytest.approx(on["temporal"].item(), rel=1e-5)
