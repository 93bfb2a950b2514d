"""Saving and loading generator weights: safetensors files with the config in their metadata.

A weights file holds every parameter of an :class:`engine.model.mpdt_generator.MPDTGenerator` as a
float32 tensor, plus string metadata: ``format`` (``"tryon-mpdt/1"``), ``config`` (the
:class:`engine.model.mpdt_generator.MPDTConfig` as JSON) and free-form ``notes`` (e.g. training
steps), and ``sha256``: the :func:`tensors_digest` of the tensors, checked on load so a corrupt
file (flipped bytes) raises :class:`~engine.errors.ModelLoadError` instead of loading silently;
a file without one (written before checksums) loads with a logged warning. Nothing is unpickled.
The bundled ``"demo"`` model ships inside the package (``engine/models/demo``).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping
from pathlib import Path

import torch

from engine.errors import InputError, ModelLoadError
from engine.model.mpdt_generator import MPDTConfig, MPDTGenerator

__all__ = [
    "FORMAT",
    "BUNDLED",
    "bundled_path",
    "save_generator",
    "load_generator",
    "weights_digest",
    "tensors_digest",
]

log = logging.getLogger("tryon")

FORMAT = "tryon-mpdt/1"
MODELS_DIR = Path(__file__).resolve().parents[1] / "models"
BUNDLED = ("demo",)


def bundled_path(name: str) -> Path:
    """Path of a bundled model's weights file."""
    return MODELS_DIR / f"{name}.safetensors"


def save_generator(model: MPDTGenerator, path: str | Path, *, notes: str = "") -> Path:
    """Write ``model``'s weights and config to ``path`` (a ``.safetensors`` file)."""
    from safetensors.torch import save_file

    if not isinstance(model, MPDTGenerator):
        raise InputError("model", "an MPDTGenerator", model)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().to(torch.float32).contiguous() for k, v in model.state_dict().items()}
    metadata = {"format": FORMAT, "config": json.dumps(model.config.to_dict()), "notes": notes,
                "sha256": tensors_digest(tensors)}  # fmt: skip
    save_file(tensors, str(path), metadata=metadata)
    return path


def load_generator(
    model: str | Path = "demo", *, device: str | torch.device = "cpu"
) -> MPDTGenerator:
    """Load a generator in eval mode: ``"demo"`` (bundled) or a path to a weights file.

    Raises:
        ModelLoadError: the file is missing, corrupt (unreadable, or its tensors do not match
            its ``sha256`` checksum), not a tryon weights file, or its tensors do not match its
            config. A file without a checksum loads, with a warning on the ``"tryon"`` logger.
    """
    from safetensors import SafetensorError, safe_open

    source = str(model)
    path = bundled_path(source) if source in BUNDLED else Path(source)
    if not path.is_file():
        hint = " (the package is missing its bundled weights)" if source in BUNDLED else ""
        raise ModelLoadError(source, f"no such file: {path}{hint}")
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            metadata = f.metadata() or {}
            tensors = {key: f.get_tensor(key) for key in f.keys()}  # noqa: SIM118
    except (SafetensorError, OSError, ValueError) as exc:
        raise ModelLoadError(source, f"not a readable safetensors file ({exc})") from exc
    if metadata.get("format") != FORMAT:
        raise ModelLoadError(source, f"format is {metadata.get('format')!r}, expected {FORMAT!r}")
    try:
        config = MPDTConfig.from_dict(json.loads(metadata["config"]))
    except (KeyError, ValueError, TypeError) as exc:
        raise ModelLoadError(source, f"bad config in metadata ({exc})") from exc
    checksum = metadata.get("sha256")
    if checksum is None:
        log.warning(
            "weights file %s has no sha256 checksum (written by an older version): corruption "
            "cannot be detected; save it again with save_generator",
            path,
        )
    elif tensors_digest(tensors) != checksum:
        raise ModelLoadError(source, f"checksum mismatch in {path}: its tensors do not match the "
                             "sha256 stored at save time (the file is corrupt)")  # fmt: skip
    generator = MPDTGenerator(config)
    expected = generator.state_dict()
    missing = sorted(set(expected) - set(tensors))
    extra = sorted(set(tensors) - set(expected))
    wrong = sorted(k for k in set(expected) & set(tensors) if tensors[k].shape != expected[k].shape)
    if missing or extra or wrong:
        raise ModelLoadError(
            source,
            f"tensors do not match the config: missing {missing[:3]}, unexpected {extra[:3]}, "
            f"wrong shape {wrong[:3]}",
        )
    generator.load_state_dict(tensors)
    return generator.to(device).eval()


def weights_digest(model: MPDTGenerator) -> str:
    """sha256 of the model's config and every tensor of its state dict (names, dtypes, bytes)."""
    digest = hashlib.sha256(json.dumps(model.config.to_dict(), sort_keys=True).encode())
    for name, tensor in model.state_dict().items():
        t = tensor.detach().cpu().contiguous()
        digest.update(f"{name}:{t.dtype}:{tuple(t.shape)}".encode())
        digest.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return digest.hexdigest()


def tensors_digest(tensors: Mapping[str, torch.Tensor]) -> str:
    """sha256 (hex) of named tensors, in name order: each name, dtype, shape and raw bytes.

    What a weights file's ``sha256`` metadata holds (of the tensors as saved, float32)."""
    digest = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        digest.update(f"{name}:{t.dtype}:{tuple(t.shape)}".encode())
        digest.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return digest.hexdigest()
