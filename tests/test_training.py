import pytest
import torch
from safetensors.torch import load_file

import engine.training
from engine.training import TrainConfig, train
from engine.weights import load_generator

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

    monkeypatch.setattr(engine.training.torch, "save", save_then_crash)
    with pytest.raises(KeyboardInterrupt):
        train(TrainConfig(steps=3, **TINY_RUN), tmp_path / "resumed", log=lambda _: None)
    monkeypatch.setattr(engine.training.torch, "save", real_save)

    logs = []
    resumed = train(TrainConfig(steps=3, **TINY_RUN), tmp_path / "resumed", log=logs.append)
    assert any("resuming from step 2" in line for line in logs)
    assert _same(resumed, straight, atol=1e-6)
