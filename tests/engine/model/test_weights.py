"""Weights files carry a sha256 of their tensors: a corrupt file (one flipped byte) is refused with
ModelLoadError, an older file without a checksum loads with a warning, and the bundled demo
carries the checksum of the very tensors it shipped with before checksums existed."""

import json
import logging
import struct

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from engine.errors import ModelLoadError
from engine.model.mpdt_generator import MPDTConfig, MPDTGenerator
from engine.model.weights import (
    FORMAT,
    bundled_path,
    load_generator,
    save_generator,
    tensors_digest,
)

TINY = dict(height=32, width=24, frames=2, channels=8, blocks=1, head_divisors=(1, 2))
# tensors_digest of engine/models/demo.safetensors, the outline-fit fine-tune (`tryon train --init
# demo --fit outline --steps 2000 --lr 1e-3 --temporal-weight 1.0`): the file must hold exactly
# these tensors (so `tryon eval`'s numbers in the README hold).
DEMO_TENSORS_SHA256 = "3854519dea3c2b3449b5a62ee2dc5a4683c23b3ef375fbce66b77ecba1c895f2"
DEMO_NOTES = ("preset=lite steps=2000 batch=2 pool=256 seed=0 temporal_weight=1.0 fit=outline "
              "mask_noise=True init=demo")  # fmt: skip
DEMO_CONFIG = {"name": "lite", "height": 128, "width": 96, "frames": 4, "channels": 32,
               "blocks": 2, "head_divisors": [1, 2, 4, 8], "pose_channels": 35}  # fmt: skip


def _tiny_file(tmp_path):
    torch.manual_seed(0)
    model = MPDTGenerator(MPDTConfig(name="tiny", **TINY))
    return model, save_generator(model, tmp_path / "tiny.safetensors", notes="test")


def _metadata(path):
    with safe_open(str(path), framework="pt", device="cpu") as f:
        return f.metadata()


def _tensor_data_offset(path, name):
    """Absolute file offset and byte length of tensor ``name``'s data (safetensors layout: an
    8-byte little-endian header size, the JSON header, then the data section)."""
    raw = path.read_bytes()
    (header_size,) = struct.unpack("<Q", raw[:8])
    start, end = json.loads(raw[8 : 8 + header_size])[name]["data_offsets"]
    return 8 + header_size + start, end - start


def test_save_stores_the_tensors_checksum_and_load_roundtrips(tmp_path):
    model, path = _tiny_file(tmp_path)
    metadata = _metadata(path)
    assert metadata["sha256"] == tensors_digest(model.state_dict())
    assert metadata["format"] == FORMAT and metadata["notes"] == "test"
    loaded = load_generator(path)
    for name, tensor in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[name], tensor), name


def test_one_flipped_tensor_byte_is_a_checksum_mismatch(tmp_path):
    model, path = _tiny_file(tmp_path)
    name = max(model.state_dict(), key=lambda k: model.state_dict()[k].numel())
    offset, length = _tensor_data_offset(path, name)
    raw = bytearray(path.read_bytes())
    raw[offset + length // 2] ^= 0x10
    path.write_bytes(bytes(raw))
    assert not torch.equal(load_file(str(path))[name], model.state_dict()[name])  # really hit
    with pytest.raises(ModelLoadError) as info:
        load_generator(path)
    assert "checksum mismatch" in str(info.value) and str(path) in str(info.value)


def test_a_file_without_a_checksum_loads_with_a_warning(tmp_path, caplog):
    model, _ = _tiny_file(tmp_path)
    old = tmp_path / "old.safetensors"
    metadata = {"format": FORMAT, "config": json.dumps(model.config.to_dict()), "notes": ""}
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(old), metadata)
    with caplog.at_level(logging.WARNING, logger="tryon"):
        loaded = load_generator(old)
    assert any("no sha256 checksum" in r.getMessage() and str(old) in r.getMessage()
               for r in caplog.records if r.name == "tryon")  # fmt: skip
    for name, tensor in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[name], tensor), name


def test_tensors_digest_covers_names_shapes_and_dtypes():
    a = {"x": torch.arange(6, dtype=torch.float32), "y": torch.ones(2)}
    assert tensors_digest(a) == tensors_digest(dict(reversed(list(a.items()))))  # name order
    assert tensors_digest(a) != tensors_digest({"z": a["x"], "y": a["y"]})
    assert tensors_digest(a) != tensors_digest({"x": a["x"].reshape(2, 3), "y": a["y"]})
    assert tensors_digest(a) != tensors_digest({"x": a["x"].view(torch.int32), "y": a["y"]})


def test_bundled_demo_carries_the_checksum_of_its_original_tensors(caplog):
    path = bundled_path("demo")
    metadata = _metadata(path)
    assert metadata["sha256"] == DEMO_TENSORS_SHA256
    assert tensors_digest(load_file(str(path))) == DEMO_TENSORS_SHA256  # bit-identical tensors
    assert metadata["notes"] == DEMO_NOTES and json.loads(metadata["config"]) == DEMO_CONFIG
    with caplog.at_level(logging.WARNING, logger="tryon"):
        model = load_generator("demo")
    assert not [r for r in caplog.records if r.name == "tryon"]
    assert tensors_digest(model.state_dict()) == DEMO_TENSORS_SHA256
