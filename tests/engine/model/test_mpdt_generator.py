import json

import pytest
import torch

from engine.errors import InputError, ModelLoadError
from engine.model.mpdt_generator import INPUT_NAMES, OUTPUT_NAMES, MPDTConfig, MPDTGenerator
from engine.model.weights import load_generator, save_generator

TINY = dict(height=32, width=32, frames=2, channels=8, blocks=1)


def _inputs(cfg: MPDTConfig, b: int = 1, t: int | None = None, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    t = cfg.frames if t is None else t
    shape = (b, t, 0, cfg.height, cfg.width)
    channels = {"cloth": 4, "pose": cfg.pose_channels, "background": 3, "background_mask": 1}
    out = {n: torch.rand(shape[:2] + (channels[n],) + shape[3:], generator=g) for n in INPUT_NAMES}
    out["background_mask"] = (out["background_mask"] > 0.5).float()
    out["cloth"][:, :, 3] = (out["cloth"][:, :, 3] > 0.3).float()
    return out


def test_presets_and_derived_fields():
    lite = MPDTConfig.from_name("lite")
    assert (lite.feature_height, lite.feature_width) == (lite.height // 4, lite.width // 4)
    assert lite.patch_sizes[0] == (lite.feature_height, lite.feature_width)  # whole map head
    base = MPDTConfig.from_name("base")
    assert base.patch_sizes == ((64, 48), (32, 24), (16, 12), (8, 6))
    assert MPDTConfig.from_dict(json.loads(json.dumps(lite.to_dict()))) == lite


@pytest.mark.parametrize(
    "kwargs, argument",
    [
        ({"height": 100}, "height/width"),  # not a multiple of 32
        ({"channels": 6}, "channels"),  # 4 heads
        ({"frames": 0}, "frames"),
        ({"blocks": True}, "blocks"),
        ({"head_divisors": ()}, "head_divisors"),
    ],
)
def test_bad_configs(kwargs, argument):
    with pytest.raises(InputError) as info:
        MPDTConfig(**(TINY | kwargs))
    assert info.value.argument == argument
    with pytest.raises(InputError):
        MPDTConfig.from_name("huge")


def test_shapes_any_frame_count_and_value_ranges():
    cfg = MPDTConfig(**TINY)
    model = MPDTGenerator(cfg).eval()
    for b, t in [(1, 2), (2, 1), (1, 3)]:
        with torch.no_grad():
            out = model(**_inputs(cfg, b, t))
        assert set(out) == set(OUTPUT_NAMES)
        assert out["tryon"].shape == (b, t, 3, 32, 32)
        assert out["cloth_mask"].shape == (b, t, 1, 32, 32)
        for v in out.values():
            assert torch.isfinite(v).all() and v.min() >= 0 and v.max() <= 1


def test_background_is_kept_and_mask_limited_to_the_warp():
    cfg = MPDTConfig(**TINY)
    model = MPDTGenerator(cfg).eval()
    inputs = _inputs(cfg)
    with torch.no_grad():
        out = model(**inputs)
    keep = inputs["background_mask"].bool().expand_as(out["tryon"])
    torch.testing.assert_close(out["tryon"][keep], inputs["background"][keep])
    assert (out["cloth_mask"][inputs["cloth"][:, :, 3:4] == 0] == 0).all()


def test_deterministic():
    cfg = MPDTConfig(**TINY)
    torch.manual_seed(0)
    a = MPDTGenerator(cfg).eval()
    torch.manual_seed(0)
    b = MPDTGenerator(cfg).eval()
    inputs = _inputs(cfg)
    with torch.no_grad():
        assert torch.equal(a(**inputs)["tryon"], b(**inputs)["tryon"])
        assert torch.equal(a(**inputs)["tryon"], a(**inputs)["tryon"])


@pytest.mark.parametrize(
    "name, bad",
    [
        ("cloth", torch.zeros(1, 2, 3, 32, 32)),  # 3 channels, not 4
        ("pose", torch.zeros(1, 2, 5, 32, 32)),
        ("background", torch.zeros(1, 2, 3, 32, 16)),
        ("background_mask", torch.zeros(1, 3, 1, 32, 32)),  # T differs
        ("cloth", torch.zeros(2, 4, 32, 32)),  # rank 4
        ("pose", torch.zeros(1, 2, 35, 32, 32, dtype=torch.int64)),
    ],
)
def test_bad_inputs_are_named(name, bad):
    cfg = MPDTConfig(**TINY)
    inputs = _inputs(cfg) | {name: bad}
    with pytest.raises(InputError) as info:
        MPDTGenerator(cfg)(**inputs)
    assert info.value.argument == name


def test_save_load_round_trip(tmp_path):
    cfg = MPDTConfig(**TINY)
    model = MPDTGenerator(cfg).eval()
    path = save_generator(model, tmp_path / "g.safetensors", notes="test")
    loaded = load_generator(path)
    assert loaded.config == cfg and not loaded.training
    inputs = _inputs(cfg)
    with torch.no_grad():
        assert torch.equal(loaded(**inputs)["tryon"], model(**inputs)["tryon"])


def test_corrupt_and_mismatched_files_raise_model_load_error(tmp_path):
    with pytest.raises(ModelLoadError, match="no such file"):
        load_generator(tmp_path / "missing.safetensors")
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"\x00" * 64)
    with pytest.raises(ModelLoadError, match="safetensors"):
        load_generator(junk)
    good = save_generator(MPDTGenerator(MPDTConfig(**TINY)), tmp_path / "g.safetensors")
    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(good.read_bytes()[:-100])
    with pytest.raises(ModelLoadError):
        load_generator(truncated)
    from safetensors.torch import load_file, save_file

    tensors = load_file(str(good))
    meta = {
        "format": "tryon-mpdt/1",
        "config": json.dumps(MPDTConfig(**(TINY | {"channels": 16})).to_dict()),
    }
    save_file(tensors, str(tmp_path / "mismatch.safetensors"), metadata=meta)
    with pytest.raises(ModelLoadError, match="do not match"):
        load_generator(tmp_path / "mismatch.safetensors")
    save_file(tensors, str(tmp_path / "noformat.safetensors"), metadata={"config": "{}"})
    with pytest.raises(ModelLoadError, match="format"):
        load_generator(tmp_path / "noformat.safetensors")


def test_tiny_overfit_loss_falls():
    from engine.training.train import tryon_loss

    torch.manual_seed(0)
    cfg = MPDTConfig(**TINY)
    model = MPDTGenerator(cfg).train()
    inputs = _inputs(cfg, seed=1)
    keep = inputs["background_mask"]
    colour = torch.tensor([0.9, 0.2, 0.4]).reshape(1, 1, 3, 1, 1)
    target = keep * inputs["background"] + (1 - keep) * colour  # a reachable try-on
    region = 1 - keep
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(40):
        out = model(**inputs, impl="torch")["tryon"]
        loss = tryon_loss(out, target, region)["total"]
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.8 * losses[0], losses[::8]
