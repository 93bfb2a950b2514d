import pytest
import torch
from safetensors.torch import load_file

import engine.training.train
from engine.errors import InputError
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


def test_fine_tuning_the_demo_on_the_outline_fit_changes_its_weights(tmp_path):
    from engine.model.weights import bundled_path

    out = tmp_path / "outline"
    tuned = train(TrainConfig(steps=2, init="demo", fit="outline", **TINY_RUN), out,
                  log=lambda _: None)  # fmt: skip
    demo, new = load_file(str(bundled_path("demo"))), load_file(str(tuned))
    assert demo.keys() == new.keys()
    assert any(not torch.equal(demo[k], new[k]) for k in demo)
    state = torch.load(out / "checkpoint.pt", weights_only=True)
    assert (state["fit"], state["mask_noise"]) == ("outline", True)
    # a checkpoint of one fit does not silently resume on the other
    with pytest.raises(InputError, match="fit"):
        train(TrainConfig(steps=3, init="demo", fit="keypoints", **TINY_RUN), out,
              log=lambda _: None)  # fmt: skip
    # nor on exact masks
    with pytest.raises(InputError, match="mask_noise"):
        train(TrainConfig(steps=3, init="demo", fit="outline", mask_noise=False, **TINY_RUN), out,
              log=lambda _: None)  # fmt: skip


def test_the_fit_changes_the_training_inputs():
    from engine.model.mpdt_generator import MPDTConfig
    from engine.training.train import make_pool

    cfg = MPDTConfig.from_name("lite")
    outline, keypoints = (make_pool(cfg, [5], fit=fit)[0] for fit in ("outline", "keypoints"))
    assert torch.equal(outline["target"], keypoints["target"])
    assert (outline["cloth"] - keypoints["cloth"]).abs().mean() > 0.01
    exact = make_pool(cfg, [5], fit="outline", mask_noise=False)[0]
    assert torch.equal(exact["target"], outline["target"])
    assert not torch.equal(exact["region"], outline["region"])  # the segmenter-like mask


@pytest.mark.parametrize("fit", ["mask", None, 1])
def test_a_bad_fit_is_refused_before_any_work(tmp_path, fit):
    with pytest.raises(InputError) as info:
        train(TrainConfig(steps=1, fit=fit, **TINY_RUN), tmp_path, log=lambda _: None)
    assert info.value.argument == "fit"
    assert not (tmp_path / "checkpoint.pt").exists()


def test_train_cli_flags_parse():
    from engine.cli.main import build_parser
    from engine.training.evaluate import DEFAULT_FIT

    parse = build_parser().parse_args
    args = parse(["train", "--out", "runs/x", "--fit", "outline", "--init", "demo"])
    assert (args.fit, args.init) == ("outline", "demo")
    assert DEFAULT_FIT == TrainConfig().fit == "outline" and TrainConfig().mask_noise
    assert parse(["train", "--out", "runs/x"]).fit == DEFAULT_FIT
    assert parse(["train", "--out", "runs/x", "--exact-masks"]).exact_masks
    with pytest.raises(SystemExit):
        parse(["train", "--out", "runs/x", "--fit", "mask"])
